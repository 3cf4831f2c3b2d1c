"""Queries of a fitted flow: compiled log q, gradients, Hessians and samples, in chunks.

The functions here serve :class:`~sklearn_epi.EPIEstimator`'s ``sample``,
``score_samples``, ``gradient`` and ``hessian``: they match the points to
the parameters, evaluate the rows inside the support in chunks that keep
memory within scikit-learn's ``working_memory``, and never build more than
a few compiled shapes.
"""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn import get_config
from sklearn.utils import check_random_state, gen_batches
from sklearn.utils.validation import check_is_fitted

from ._quiet import start_xla
from ._validation import _check_dtype, _check_int, user_stacklevel

__all__ = ["FittedDensityMixin", "FittedFunctions", "evaluate", "row_chunks", "check_points"]


class FittedDensityMixin:
    """The queries of a fitted flow: samples, log density, its gradient and Hessian.

    Mixed into :class:`~sklearn_epi.EPIEstimator`; reads ``flow_weights_``,
    ``param_names_``, ``_flow_spec``, ``_support`` and ``dtype``.
    """

    def _fitted_flow(self, dtype=None):
        """Compiled queries of the fitted flow in ``dtype`` (default: the fit's)."""
        check_is_fitted(self, "flow_weights_")
        dtype = tf.as_dtype(self.dtype if dtype is None else _check_dtype(dtype))
        cache = self.__dict__.setdefault("_flow_cache", {})
        if dtype not in cache:
            flow = self._flow_spec.build(self._support, seed=0, dtype=dtype)
            flow.set_weights(self.flow_weights_)
            cache[dtype] = FittedFunctions(flow)
        return cache[dtype]

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw parameter samples from the fitted distribution.

        Samples are drawn in chunks, so the memory used beyond the result
        stays within scikit-learn's ``working_memory``
        (:func:`sklearn.set_config`, 1 GiB by default) whatever ``n_samples``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Same value, same samples.

        Returns
        -------
        ndarray of shape (n_samples, D)
        """
        fns = self._fitted_flow()
        _check_int(n_samples, "n_samples", 1)
        seed = check_random_state(random_state).randint(0, 2**31 - 1, size=2)
        out = np.empty((int(n_samples), len(self.param_names_)))
        for k, rows in enumerate(row_chunks(self, int(n_samples), fns, order=0)):
            # Chunk k continues the stream with a stateless seed of its own.
            chunk_seed = seed if k == 0 else [seed[0], (seed[1] + 7919 * k) % (2**31 - 1)]
            z, _ = fns.sample(rows.stop - rows.start, tf.constant(chunk_seed, tf.int32))
            out[rows] = z.numpy()
        return out

    def score_samples(self, Z, dtype=None) -> np.ndarray:
        """Log density ``log q(z)`` of each row of ``Z``.

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation; ``None`` uses the fit's ``dtype``.
            The fitted weights are exact in float64, so ``"float64"`` removes
            the rounding of the flow's own arithmetic.

        Returns
        -------
        ndarray of shape (n,)
            ``-inf`` for rows on or outside the bounds (never NaN).
        """
        out = evaluate(self, self._fitted_flow(dtype), Z, 0)
        return np.where(np.isnan(out), -np.inf, out)

    def gradient(self, Z, dtype=None) -> np.ndarray:
        r"""Gradient :math:`\nabla_z \log q(z)` at each row of ``Z``.

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`).

        Returns
        -------
        ndarray of shape (n, D)
            NaN rows for points on or outside the bounds.
        """
        return evaluate(self, self._fitted_flow(dtype), Z, 1)

    def hessian(self, Z, dtype=None) -> np.ndarray:
        r"""Hessian :math:`\nabla_z^2 \log q(z)` at each row of ``Z``.

        Its eigenvectors at a mode are the paper's sensitivity dimensions
        (Methods, "Hessian sensitivity vectors").

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`); second
            derivatives gain most from ``"float64"``.

        Returns
        -------
        ndarray of shape (n, D, D)
            NaN blocks for points on or outside the bounds.
        """
        return evaluate(self, self._fitted_flow(dtype), Z, 2)


def evaluate(est, fns, Z, order):
    """log q (order 0), its gradient (1) or its Hessian (2) at the rows of Z.

    Rows inside the support are evaluated in chunks (see :func:`row_chunks`);
    the others get ``-inf`` (log q) or NaN (derivatives).
    """
    Z, inside = check_points(est, Z, fns.dtype)
    D = Z.shape[1]
    out = np.full((Z.shape[0],) + (D,) * order, np.nan if order else -np.inf)
    points = Z[inside]
    values = np.empty((len(points),) + (D,) * order)
    query = (fns.log_prob, fns.gradient, fns.hessian)[order]
    for rows in row_chunks(est, len(points), fns, order):
        values[rows] = query(tf.constant(points[rows], fns.dtype)).numpy()
    out[inside] = values
    return out


def row_chunks(est, n, fns, order):
    """Row slices that keep a query of ``order`` within ``working_memory``.

    The estimate per row counts the flow's activations (kept for the
    backward passes of derivatives) and, for Hessians, one gradient pass
    per parameter. Chunk sizes are powers of two, the shapes the XLA
    queries compile for.
    """
    spec, D = est._flow_spec, len(est.param_names_)
    per_pass = fns.dtype.size * (8 * D + 4 * spec.num_stages * spec.num_layers * spec.num_units)
    row_bytes = per_pass * (1, 3, 3 * D)[order] + 8 * D**order
    budget = get_config()["working_memory"] * 2**20  # MiB, as in pairwise_distances_chunked
    size = int(min(max(budget // row_bytes, 1), max(n, 1)))
    return gen_batches(n, 1 << (size.bit_length() - 1)) if n else []


def check_points(est, Z, dtype):
    """Points as a float array in ``param_names_`` order, and which lie inside the support."""
    names = [str(name) for name in est.param_names_]
    D = len(names)
    if isinstance(Z, pd.DataFrame):
        columns = [str(c) for c in Z.columns]
        if sorted(columns) != sorted(names):
            raise ValueError(
                f"Z's columns {columns} must be the parameter names {names} (in any order)"
            )
        Z = Z.set_axis(columns, axis=1)[names]  # matched by name, not position
    Z = np.asarray(Z)
    if Z.dtype.kind == "c":
        raise TypeError("Z must be real; got complex values")
    try:
        if Z.dtype.kind not in "iufO":
            raise TypeError
        if Z.dtype.kind == "O" and not all(isinstance(v, Real) for v in Z.flat):
            raise TypeError  # None or strings would become NaN silently
        Z = Z.astype(float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"Z must be an array of real numbers; got dtype {Z.dtype}") from exc
    if Z.ndim == 1 and D == 1:
        Z = Z[:, None]
    if Z.ndim != 2 or Z.shape[1] != D:
        raise ValueError(f"Z must have shape (n, {D}) (one column per parameter); got {Z.shape}")
    # Inside-ness is judged after rounding to the evaluation dtype: a point
    # that rounds onto a bound has density zero there.
    rounded = Z.astype(dtype.as_numpy_dtype)
    return rounded, est._support.contains(rounded)


class FittedFunctions:
    """Compiled queries of a fitted flow (kept out of pickles)."""

    def __init__(self, flow):
        start_xla()
        self.flow = flow
        self.dtype = flow.dtype

        # One trace for every sample size and batch of points: a traced
        # function per size made repeated queries retrace (TensorFlow warns).
        def sample(n, seed):
            return flow.sample_and_log_prob(n, seed)

        def log_prob(z):
            return flow.log_prob(z)

        self.sample = tf.function(
            sample, input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)]
        )
        self.log_prob = tf.function(
            log_prob, input_signature=[tf.TensorSpec([None, flow.dim], flow.dtype)]
        )

        def gradient(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                log_q = flow.log_prob(z)
            return tape.gradient(log_q, z)

        def hessian(z):
            with tf.GradientTape() as outer:
                outer.watch(z)
                with tf.GradientTape() as inner:
                    inner.watch(z)
                    log_q = flow.log_prob(z)
                grad = inner.gradient(log_q, z)
            # Row i of log q depends on row i of z only, so the batch Jacobian
            # of the gradient is the stack of per-point Hessians.
            return outer.batch_jacobian(grad, z)

        self.gradient = XLAWithFallback(gradient)
        self.hessian = XLAWithFallback(hessian)


class XLAWithFallback:
    """A per-point query compiled with XLA, rows padded to powers of two.

    XLA compiles once per input shape; padding the batch to the next power of
    two bounds the compilations at log2(n) while keeping the 1.6-2.3x speed-up
    of compiled Hessians (benchmarks/queries.py). If XLA cannot compile the
    query, it falls back to a plain graph for good.
    """

    def __init__(self, fn):
        self.xla = tf.function(fn, jit_compile=True)
        self.plain = tf.function(fn)
        self.use_xla = True

    def __call__(self, z):
        n = int(z.shape[0])
        if self.use_xla:
            size = 1 << max(n - 1, 0).bit_length()
            padded = tf.concat([z, tf.repeat(z[:1], size - n, axis=0)], axis=0)
            try:
                return self.xla(padded)[:n]
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
                warnings.warn(
                    f"XLA could not compile {self.plain.python_function.__name__}; using a "
                    f"plain graph ({str(exc).strip().splitlines()[-1][:200]})",
                    RuntimeWarning,
                    stacklevel=user_stacklevel(),
                )
                self.use_xla = False
        return self.plain(z)
