r"""Questions asked of a fitted EPI distribution: modes, sensitivities, predictions.

Once :math:`q_\theta(z)` is learned, its log density, gradient and Hessian
are cheap, and the paper's analyses reduce to a few lines:

* :func:`find_mode` climbs :math:`\log q` to a (conditional) mode, as in the
  paper's "Mode identification with EPI";
* :func:`sensitivity` eigen-decomposes the Hessian of :math:`\log q` at a
  point: the eigenvector of most negative eigenvalue is the sensitivity
  dimension :math:`v_1` (paper, "Hessian sensitivity vectors");
* :func:`predictive` evaluates the statistic on fresh samples, the check that
  the emergent property holds.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .reference import maxent_reference
from .support import parse_bounds

__all__ = ["find_mode", "sensitivity", "predictive", "maxent_reference"]


def find_mode(
    est,
    z0=None,
    fixed=None,
    n_steps: int = 500,
    lr: float = 1e-2,
    method: str = "newton",
    max_step: float | None = None,
    n_candidates: int = 500,
    tol: float = 1e-6,
    random_state=0,
) -> np.ndarray:
    r"""Climb the fitted log density to a mode, optionally with parameters held fixed.

    Each step moves the free parameters by

    .. math:: \Delta z = (\mu I - \nabla_z^2 \log q)^{-1} \nabla_z \log q

    and is kept only if it raises :math:`\log q`, so the iterate never leaves
    the support (where :math:`\log q = -\infty`). After a kept step the
    damping :math:`\mu` halves, after a rejected one it grows fourfold
    (Levenberg-Marquardt). With ``method="newton"`` the step uses the
    Hessian and converges in a few steps even when :math:`\log q` is far
    sharper in some directions than in others, as EPI distributions usually
    are; ``method="gradient"`` drops the Hessian: plain gradient ascent with
    step size :math:`1/\mu`, the paper's procedure with an adaptive instead
    of a scheduled learning rate. Where the Hessian is not negative definite
    :math:`\mu` is raised above its largest eigenvalue.

    With ``fixed``, the climb runs over the free parameters only, giving the
    conditional mode :math:`\arg\max_{z_{free}} q(z_{free}, z_{fixed})` used by
    the paper's mode continuation (sweep one parameter, start each search at
    the previous mode).

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    z0 : array-like of shape (D,), default=None
        Starting point, strictly inside the bounds. ``None`` starts from the
        highest-density of ``n_candidates`` samples of ``est`` (with the
        ``fixed`` values substituted in).
    fixed : dict, default=None
        Parameters held fixed, as ``{name: value}`` or ``{index: value}``.
        Each value must lie strictly inside its bounds and overrides ``z0``.
    n_steps : int, default=500
        Maximum number of trial steps.
    lr : float, default=1e-2
        Initial step size: the first damping is :math:`\mu = 1 / lr`.
    method : {"newton", "gradient"}, default="newton"
        Damped Newton steps, or gradient ascent.
    max_step : float, default=None
        Longest step (Euclidean norm, parameter units). A cap keeps the
        search near its start, as a mode continuation wants: a Newton step
        on a sharp ridge can otherwise leap to another mode. ``None``: no cap.
    n_candidates : int, default=500
        Samples drawn to pick the start when ``z0`` is None.
    tol : float, default=1e-6
        Stop when a kept step is shorter than ``tol * (1 + |z|)``, the free
        gradient's norm is below ``tol``, or the damping exceeds
        :math:`10^{12}` (no step raises :math:`\log q` any more).
    random_state : int, RandomState instance or None, default=0
        Seeds the candidate samples.

    Returns
    -------
    ndarray of shape (D,)
        The (conditional) mode.

    See Also
    --------
    sensitivity : Hessian eigenvectors at the mode.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi import ALParams, EPIEstimator
    >>> from sklearn_epi.analysis import find_mode
    >>> est = EPIEstimator(lambda z: z, [[-np.inf, np.inf]] * 2, random_state=0,
    ...     al_params=ALParams(c0=1.0, beta=4.0, num_iters=200, max_epochs=4,
    ...                        init_iters=200, batch_size=500))
    >>> est = est.fit(mu=[1.0, -1.0], sigma2=[0.25, 0.25])  # doctest: +SKIP
    >>> find_mode(est, fixed={"z1": -1.0}).round(1)  # doctest: +SKIP
    array([ 1., -1.])
    """
    check_is_fitted(est, "flow_weights_")
    names = list(est.param_names_)
    D = len(names)
    fixed_idx, fixed_val = _check_fixed(est, fixed, names)
    _check_positive_int(n_steps, "n_steps")
    _check_positive_int(n_candidates, "n_candidates")
    if not lr > 0:
        raise ValueError(f"lr must be > 0; got {lr!r}")
    if max_step is not None and not max_step > 0:
        raise ValueError(f"max_step must be > 0 or None; got {max_step!r}")
    if method not in ("newton", "gradient"):
        raise ValueError(f"method must be 'newton' or 'gradient'; got {method!r}")

    if z0 is None:
        Z = est.sample(n_candidates, random_state=random_state)
        Z[:, fixed_idx] = fixed_val
        logq = est.score_samples(Z)
        z = Z[int(np.argmax(logq))]
    else:
        z = np.asarray(z0, dtype=float).copy()
        if z.shape != (D,):
            raise ValueError(f"z0 must have shape ({D},) (one value per parameter); got {z.shape}")
        z[fixed_idx] = fixed_val
    logq = est.score_samples(z[None])[0]
    if not np.isfinite(logq):
        raise ValueError(
            f"the starting point must lie strictly inside the bounds; got z = {z.tolist()}"
        )

    free = np.ones(D, dtype=bool)
    free[fixed_idx] = False
    if not free.any():
        return z
    damping = 1.0 / float(lr)
    grad, curvature = _local_model(est, z, free, method)
    for _ in range(n_steps):
        if np.linalg.norm(grad) < tol or damping > 1e12:
            break
        step = _damped_step(grad, curvature, damping)
        if max_step is not None and np.linalg.norm(step) > max_step:
            step *= max_step / np.linalg.norm(step)
        candidate = z.copy()
        candidate[free] += step
        new_logq = est.score_samples(candidate[None])[0]
        if new_logq > logq:
            z, logq = candidate, new_logq
            grad, curvature = _local_model(est, z, free, method)
            damping *= 0.5
            if np.linalg.norm(step) < tol * (1.0 + np.linalg.norm(z)):
                break
        else:
            damping *= 4.0
    return z


def sensitivity(est, z, order: str = "most_sensitive_first", reference=None):
    r"""Eigen-decomposition of the Hessian of :math:`\log q` at ``z``.

    At a mode the Hessian :math:`\nabla_z^2 \log q(z)` is negative
    (semi-)definite. Its eigenvector of most negative eigenvalue is the
    *sensitivity dimension* :math:`v_1`: the parameter combination along
    which the emergent property deteriorates fastest. Eigenvalues near zero
    mark robust combinations (paper, "Hessian sensitivity vectors"). For a
    Gaussian :math:`q` the eigenvalues are :math:`-1/\sigma_k^2`, with
    :math:`\sigma_k` the standard deviations along the principal axes, so
    :math:`1/\sqrt{|\lambda_k|}` is a natural length for drawing
    :math:`v_k`.

    Eigenvectors are defined only up to sign. The convention here: the
    component ``reference`` of every eigenvector is positive (as the paper
    chooses positive :math:`g_{synA}`); with ``reference=None``, or where that
    component is zero, the component of largest magnitude is positive
    (the first such, on ties).

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    z : array-like of shape (D,)
        Point strictly inside the bounds, usually a mode from
        :func:`find_mode`.
    order : {"most_sensitive_first", "most_robust_first"}, default="most_sensitive_first"
        Eigenvalues ascending (most negative first, the paper's :math:`v_1,
        v_2, \dots`) or descending.
    reference : str or int, default=None
        Parameter name or index whose component is made positive.

    Returns
    -------
    eigenvalues : ndarray of shape (D,)
        Sorted as ``order`` says.
    eigenvectors : ndarray of shape (D, D)
        Unit eigenvectors as **columns**: ``eigenvectors[:, k]`` belongs to
        ``eigenvalues[k]``.

    See Also
    --------
    find_mode : the mode at which to evaluate the Hessian.

    Examples
    --------
    >>> from sklearn_epi.analysis import find_mode, sensitivity
    >>> mode = find_mode(est)  # doctest: +SKIP
    >>> eigenvalues, eigenvectors = sensitivity(est, mode)  # doctest: +SKIP
    >>> v1 = eigenvectors[:, 0]  # the sensitivity dimension  # doctest: +SKIP
    """
    check_is_fitted(est, "flow_weights_")
    names = list(est.param_names_)
    D = len(names)
    z = np.asarray(z, dtype=float)
    if z.shape != (D,):
        raise ValueError(f"z must have shape ({D},) (one value per parameter); got {z.shape}")
    if order not in ("most_sensitive_first", "most_robust_first"):
        raise ValueError(
            f"order must be 'most_sensitive_first' or 'most_robust_first'; got {order!r}"
        )
    ref = None if reference is None else _parameter_index(reference, names, "reference")
    H = est.hessian(z[None])[0]
    if not np.all(np.isfinite(H)):
        raise ValueError(
            f"the Hessian of log q is not finite at z = {z.tolist()}; z must lie strictly "
            "inside the bounds"
        )
    # The autodiff Hessian is symmetric up to round-off; eigh needs it exactly.
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (H + H.T))
    if order == "most_robust_first":
        eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    for k in range(D):
        v = eigenvectors[:, k]
        pivot = ref if ref is not None and v[ref] != 0 else int(np.argmax(np.abs(v)))
        if v[pivot] < 0:
            eigenvectors[:, k] = -v
    return eigenvalues.copy(), eigenvectors.copy()


def predictive(est, n_samples: int = 1000, random_state=0) -> pd.DataFrame:
    r"""The statistic :math:`f(z)` on fresh samples :math:`z \sim q`.

    A posterior-predictive style check: the columns' means and variances
    should match ``est.property_.mu`` and ``est.property_.sigma2`` when the fit
    converged.

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    n_samples : int, default=1000
        Number of fresh samples.
    random_state : int, RandomState instance or None, default=0
        Seeds the samples.

    Returns
    -------
    pandas.DataFrame of shape (n_samples, m_f)
        Columns ``est.property_.statistic_names``.

    See Also
    --------
    sklearn_epi.plotting.plot_predictive : histograms of this frame.
    """
    check_is_fitted(est, "flow_weights_")
    _check_positive_int(n_samples, "n_samples")
    rng = check_random_state(random_state)
    Z = est.sample(n_samples, random_state=rng)
    # A stochastic simulator that takes seed= gets one from the same stream.
    seed = rng.randint(0, 2**31 - 1, size=2)
    prop = est.property_
    f = prop.evaluate(est.statistic, tf.constant(Z, dtype=est.dtype), seed)
    return pd.DataFrame(f, columns=list(prop.statistic_names))


def _local_model(est, z, free, method):
    """Gradient and (for Newton) Hessian of log q in the free coordinates."""
    grad = est.gradient(z[None])[0][free]
    grad = np.where(np.isfinite(grad), grad, 0.0)
    if method == "gradient":
        return grad, None
    H = est.hessian(z[None])[0][np.ix_(free, free)]
    if not np.all(np.isfinite(H)):
        return grad, None
    return grad, 0.5 * (H + H.T)


def _damped_step(grad, curvature, damping):
    """Solve (damping * I - H) step = grad, keeping the matrix positive definite."""
    if curvature is None:
        return grad / damping
    eigenvalues, vectors = np.linalg.eigh(curvature)
    # -H + damping I must be positive definite for an ascent direction.
    shift = max(damping, eigenvalues.max() + 1e-8 * (1.0 + np.abs(eigenvalues).max()))
    return vectors @ ((vectors.T @ grad) / (shift - eigenvalues))


def _parameter_index(key, names, what):
    if isinstance(key, str):
        if key not in names:
            raise ValueError(f"{what} names an unknown parameter {key!r}; parameters are {names}")
        return names.index(key)
    if isinstance(key, Integral) and not isinstance(key, bool):
        if not -len(names) <= key < len(names):
            raise ValueError(
                f"{what} index {key} is out of range for {len(names)} parameters {names}"
            )
        return int(key) % len(names)
    raise TypeError(f"{what} must be a parameter name or an integer index; got {key!r}")


def _check_fixed(est, fixed, names):
    if fixed is None:
        return np.array([], dtype=int), np.array([], dtype=float)
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict {{name or index: value}}; got {fixed!r}")
    support = _support_of(est)
    idx, val = [], []
    for key, value in fixed.items():
        i = _parameter_index(key, names, "fixed")
        if i in idx:
            raise ValueError(f"fixed holds parameter {names[i]!r} twice")
        value = float(value)
        if not support.low[i] < value < support.high[i]:
            raise ValueError(
                f"fixed[{key!r}] must lie strictly inside the bounds "
                f"({support.low[i]}, {support.high[i]}); got {value}"
            )
        idx.append(i)
        val.append(value)
    return np.asarray(idx, dtype=int), np.asarray(val, dtype=float)


def _check_positive_int(value, name):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}")


def _support_of(est):
    """The fitted estimator's bounds as a ``Support`` (``.low``, ``.high``, ``.names``)."""
    check_is_fitted(est, "bounds_")
    return parse_bounds(dict(zip(est.param_names_, map(tuple, est.bounds_))))
