"""Checks of what users pass in: one place, one exception type per kind of mistake.

Everything here runs before any TensorFlow work, and every message names
the argument, what was expected and what was received.
"""

from __future__ import annotations

import os
import sys
from numbers import Integral

import cloudpickle
import numpy as np
import pandas as pd
import tensorflow as tf
from scipy import sparse

from ._al_params import ALParams
from .property import call_statistic

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

#: A bounded interval must hold at least this many numbers of the fit's dtype.
MIN_DISTINCT_VALUES = 2**12


def _check_int(value, name, minimum):
    if not isinstance(value, Integral) or isinstance(value, bool):
        at_least = "" if minimum is None else f" >= {minimum}"
        raise TypeError(f"{name} must be an integer{at_least}; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_dtype(dtype) -> str:
    """``"float32"`` or ``"float64"`` from a name, a NumPy or a TensorFlow dtype."""
    try:
        name = tf.as_dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(
            f"dtype must be 'float32' or 'float64' (a name, NumPy or TensorFlow dtype); "
            f"got {dtype!r}"
        )
    return name


def _check_verbose(verbose) -> int:
    """Verbosity as an int; ``True``/``False`` mean 1/0, as in scikit-learn."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    _check_int(verbose, "verbose", 0)
    return int(verbose)


def user_stacklevel() -> int:
    """``stacklevel`` for :func:`warnings.warn` that points at the user's line.

    Counts the frames from the function calling ``warnings.warn`` back to the
    first one outside this package, so a warning names the line that called
    ``fit`` (or a query), not a line of ours, however deep the call.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _resolve_al_params(al_params) -> ALParams:
    if al_params is None:
        return ALParams()
    if isinstance(al_params, ALParams):
        return al_params
    if isinstance(al_params, dict):
        valid = set(ALParams().get_params())
        unknown = sorted(set(al_params) - valid)
        if unknown:
            raise ValueError(
                f"al_params has unknown fields {unknown}; valid fields are {sorted(valid)}"
            )
        return ALParams(**al_params)
    raise TypeError(
        f"al_params must be an ALParams, a dict or None; got {type(al_params).__name__}"
    )


def _labels(value, name):
    """Labels of a dict or Series target (None for plain arrays), checked unique."""
    if isinstance(value, dict):
        labels = [str(k) for k in value]
    elif isinstance(value, pd.Series):
        labels = [str(k) for k in value.index]
    else:
        return None
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name} has repeated labels: {labels}")
    return labels


def _values(value):
    return list(value.values()) if isinstance(value, dict) else value


def _check_targets(mu, sigma2, expected_names=None):
    """Validate the property's means and variances; return arrays and names.

    Labelled targets (dicts, Series) are matched by label, never by position:
    ``sigma2`` is reordered to ``mu``'s labels, and with ``expected_names``
    (the fitted statistics, in :meth:`EPIEstimator.score`) both are reordered
    to those. A missing or extra label is an error.
    """
    for name, value in (("mu", mu), ("sigma2", sigma2)):
        if sparse.issparse(value):
            raise TypeError(f"{name} must be a dense array; sparse input is not supported")
        if np.iscomplexobj(value):
            raise ValueError(f"Complex data not supported; {name} must be real")
    names = _labels(mu, "mu")
    labels2 = None if sigma2 is None else _labels(sigma2, "sigma2")
    if names is not None and expected_names is not None:
        _same_labels(names, expected_names, "mu", "the fitted statistics")
        mu = pd.Series(list(_values(mu)), index=names)[list(expected_names)]
        names = list(expected_names)
    if labels2 is not None:
        if names is None:
            raise ValueError(
                f"sigma2 is labelled {labels2} but mu is not: label both (dict or Series) "
                "or neither"
            )
        _same_labels(labels2, names, "sigma2", "mu's")
        sigma2 = pd.Series(list(_values(sigma2)), index=labels2)[names].to_numpy()
    mu = _values(mu)
    if isinstance(mu, pd.Series):
        mu = mu.to_numpy()
    try:
        mu = np.asarray(mu, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"mu must be an array of numbers; got {mu!r}") from exc
    if mu.ndim == 0:
        mu = mu[None]
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"mu must be a non-empty 1-D array; got shape {mu.shape}")
    bad = np.flatnonzero(~np.isfinite(mu))
    if bad.size:
        raise ValueError(f"mu must be finite; got mu[{bad[0]}] = {mu[bad[0]]}")
    if sigma2 is not None:
        sigma2 = _values(sigma2)
        if isinstance(sigma2, pd.Series):
            sigma2 = sigma2.to_numpy()
        try:
            sigma2 = np.atleast_1d(np.asarray(sigma2, dtype=float))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"sigma2 must be an array of numbers; got {sigma2!r}") from exc
        if sigma2.shape != mu.shape:
            raise ValueError(
                f"sigma2 must have the same length as mu ({mu.size}); got shape {sigma2.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(sigma2) & (sigma2 > 0)))
        if bad.size:
            raise ValueError(
                f"sigma2 must be finite and positive; got sigma2[{bad[0]}] = {sigma2[bad[0]]}"
            )
    if names is None:
        names = [f"f{i}" for i in range(mu.size)]
    return mu, sigma2, names


def _same_labels(labels, expected, name, against):
    missing = [k for k in expected if k not in labels]
    extra = [k for k in labels if k not in expected]
    if missing or extra:
        raise ValueError(
            f"{name} labels must match {against} {list(expected)}; "
            f"missing {missing}, unexpected {extra}"
        )


def _check_precision(dtype, mu, sigma2, support, init_mean, init_std):
    """Refuse numbers the fit's dtype cannot carry, before any TensorFlow work.

    The objective squares constraint violations (``||R||^2``) and variance
    statistics, so magnitudes must stay well below the square root of the
    dtype's largest number; and a bounded interval must hold enough distinct
    numbers of the dtype at its scale for a density to live on it.
    """
    info = np.finfo(dtype)
    limit = float(np.sqrt(info.max)) * 1e-3
    advice = "use dtype='float64' or rescale the parameters or statistics"
    for name, low, high in zip(support.names, support.low, support.high):
        for bound in (low, high):
            if np.isfinite(bound) and abs(bound) > limit:
                raise ValueError(
                    f"bounds for {name!r} = ({low:.3g}, {high:.3g}) exceed what "
                    f"dtype={dtype!r} can carry (about {limit:.2g}): {advice}"
                )
        if np.isfinite(low) and np.isfinite(high):
            spacing = float(np.spacing(np.asarray(max(abs(low), abs(high)), dtype=dtype)))
            distinct = (high - low) / spacing
            if distinct < MIN_DISTINCT_VALUES:
                raise ValueError(
                    f"bounds for {name!r} = ({float(low)!r}, {float(high)!r}) hold only "
                    f"about {distinct:.0f} distinct {dtype} numbers (spacing {spacing:.3g} at "
                    f"that scale), too few for a density: {advice} (e.g. fit the offset "
                    f"z - {float(low)!r})"
                )
    checks = [
        ("mu", mu),
        ("sigma2", sigma2),
        ("init['mean']", init_mean),
        ("init['std']", init_std),
    ]
    for name, values in checks:
        if values is None:
            continue
        big = np.flatnonzero(np.abs(values) > limit)
        if big.size:
            raise ValueError(
                f"{name}[{big[0]}] = {values[big[0]]:.3g} is too large for dtype={dtype!r} "
                f"(the objective squares it; the limit is about {limit:.2g}): {advice}"
            )


def _probe_statistic(statistic, center, m_f):
    """Call the statistic on a small batch at the initial mean and check its output.

    The probe batch has ``m_f + 3`` rows, a number that cannot be confused
    with the ``m_f`` statistics, so a transposed result (``tf.stack`` without
    ``axis=1``) is caught. The statistic is also traced once as a graph, the
    way the fit runs it, to catch NumPy calls on symbolic tensors.
    """
    n, D = m_f + 3, center.size
    probe = tf.constant(np.repeat(center[None, :], n, axis=0), tf.float32)
    stack_hint = f"tf.stack([...], axis=1) gives shape (n, {m_f})"
    try:
        out = call_statistic(statistic, probe, [0, 0])
    except Exception as exc:
        raise ValueError(
            f"statistic raised {type(exc).__name__} on a probe batch of shape ({n}, "
            f"{D}) at the centre of the support: {exc}"
        ) from exc
    if isinstance(out, (list, tuple)):
        raise TypeError(
            f"statistic must return one tensor of shape (n, {m_f}); got a "
            f"{type(out).__name__} of {len(out)} items: {stack_hint}"
        )
    if isinstance(out, np.ndarray):
        raise TypeError(
            "statistic returned a NumPy array: write it with TensorFlow operations "
            "(tf.math, tf.linalg, ...) so that EPI can differentiate it and run it as a graph"
        )
    try:
        out = tf.convert_to_tensor(out)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"statistic must return a tensor of shape (n, {m_f}); got {type(out).__name__}"
        ) from exc
    if not out.dtype.is_floating:
        raise TypeError(f"statistic must return floating-point values; got dtype {out.dtype.name}")
    shape = tuple(out.shape)
    if shape != (n, m_f) and not (m_f == 1 and shape == (n,)):
        transposed = shape == (m_f, n)
        raise ValueError(
            f"statistic must return shape (n, {m_f}) (n = batch size, {m_f} = len(mu)) "
            f"for an input of shape (n, {D}); got {shape} for n = {n}"
            + (f": the statistics are stacked along axis 0; {stack_hint}" if transposed else "")
        )
    bad = ~np.isfinite(out.numpy())
    if bad.any():
        raise ValueError(
            f"statistic returned non-finite values at the centre of the support "
            f"z = {center.tolist()}: {out.numpy()[0].tolist()}"
        )
    try:
        tf.function(lambda z: call_statistic(statistic, z, [0, 0])).get_concrete_function(probe)
    except Exception as exc:
        numpy_hint = (
            ": write it with TensorFlow operations (tf.math, tf.linalg, ...), not NumPy"
            if "numpy" in str(exc).lower() or isinstance(exc, NotImplementedError)
            else ""
        )
        raise TypeError(
            "statistic works on eager tensors but fails when traced as a TensorFlow graph, "
            f"as the fit runs it ({type(exc).__name__}: {exc}){numpy_hint}"
        ) from exc


def _check_sendable(statistic):
    """Worker processes receive the statistic by cloudpickle: say how to fix one that fails."""
    try:
        cloudpickle.dumps(statistic)
    except Exception as exc:
        raise TypeError(
            f"statistic cannot be sent to worker processes (n_jobs > 1): {type(exc).__name__}: "
            f"{exc}. Make it a module-level function or a closure over picklable values "
            "(numbers, arrays), not over open files, locks or TensorFlow variables; or fit "
            "with n_jobs=1"
        ) from exc


def _check_init(init, support):
    """The initial distribution: ``(mean, std, samples)``.

    ``samples`` is ``None`` for a Gaussian start (the support's default, with
    ``init``'s mean/std where given); for ``init={"samples": Z}`` it is ``Z``
    as float64, and mean/std are its column means and spreads (for the
    precision check and the statistic's probe).
    """
    mean, std = support.default_gaussian()
    if init is None:
        return mean, std, None
    if not isinstance(init, dict):
        raise TypeError(f"init must be None or a dict with 'mean'/'std' or 'samples'; got {init!r}")
    unknown = set(init) - {"mean", "std", "samples"}
    if unknown:
        raise ValueError(
            f"init accepts the keys 'mean', 'std' and 'samples'; got unknown {sorted(unknown)}"
        )
    if "samples" in init:
        return _check_init_samples(init, support)
    D = support.dim
    for key, target in (("mean", mean), ("std", std)):
        if key not in init:
            continue
        value = np.asarray(init[key], dtype=float)
        if value.ndim > 1 or value.size not in (1, D):
            raise ValueError(
                f"init[{key!r}] must be a scalar or have length {D}; got {init[key]!r}"
            )
        target[:] = value
    if not np.all(np.isfinite(mean)) or not support.contains(mean[None])[0]:
        raise ValueError(f"init['mean'] must lie inside the bounds; got {mean}")
    if not np.all(std > 0) or not np.all(np.isfinite(std)):
        raise ValueError(f"init['std'] must be finite and > 0; got {std}")
    return mean, std, None


def _check_init_samples(init, support):
    """``init={"samples": Z}``: Z of shape (n, D), strictly inside the bounds.

    A DataFrame's columns must be the parameter names (they are put in the
    bounds' order); a plain array is taken in the bounds' order and must be
    ``(n, D)`` with ``n > D``, so that a transposed ``(D, n)`` array is refused.
    """
    if set(init) != {"samples"}:
        raise ValueError(
            "init['samples'] replaces the initial Gaussian: give it alone, without "
            f"'mean'/'std'; got keys {sorted(init)}"
        )
    D, names = support.dim, list(support.names)
    Z = init["samples"]
    if hasattr(Z, "columns"):
        columns = [str(c) for c in Z.columns]
        if sorted(columns) != sorted(names):
            raise ValueError(
                f"init['samples'] has columns {columns}; expected the parameters {names}"
            )
        Z = Z[names].to_numpy()
    try:
        Z = np.asarray(Z, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"init['samples'] must be a numeric array of shape (n, {D})") from exc
    if Z.ndim != 2 or Z.shape[1] != D or Z.shape[0] <= D:
        raise ValueError(
            f"init['samples'] must have shape (n, {D}) with n > {D} points; got shape "
            f"{Z.shape}" + (" (transposed?)" if Z.ndim == 2 and Z.shape[0] == D else "")
        )
    outside = np.flatnonzero(~support.contains(Z))
    if outside.size:
        raise ValueError(
            f"init['samples'] must lie strictly inside the bounds (and be finite); "
            f"{outside.size} of {len(Z)} rows do not, the first is row {outside[0]}: "
            f"{Z[outside[0]]}"
        )
    std = Z.std(axis=0)
    if not np.all(std > 0):
        raise ValueError(
            f"init['samples'] must vary in every parameter; constant in "
            f"{[n for n, s in zip(names, std) if s == 0]}"
        )
    return Z.mean(axis=0), std, Z
