r"""Questions asked of a fitted EPI distribution: modes, sensitivities, predictions.

Once :math:`q_\theta(z)` is learned, its log density, gradient and Hessian
are cheap, and the paper's analyses reduce to a few lines:

* :func:`find_mode` climbs :math:`\log q` to a (conditional) mode, as in the
  paper's "Mode identification with EPI";
* :func:`sensitivity` eigen-decomposes the Hessian of :math:`\log q` at a
  point: the eigenvector of most negative eigenvalue is the sensitivity
  dimension :math:`v_1` (paper, "Hessian sensitivity vectors");
* :func:`predictive` evaluates the statistic on fresh samples, the check that
  the emergent property holds;
* :func:`coverage` looks for the part of the box where the property holds
  that the distribution leaves out (a fit that found one region of several).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import _resolve_al_params
from .property import call_statistic
from .reference import maxent_reference
from .support import parse_bounds

__all__ = [
    "find_mode",
    "sensitivity",
    "predictive",
    "coverage",
    "Coverage",
    "CoverageWarning",
    "maxent_reference",
]


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


class CoverageWarning(UserWarning):
    """A fitted distribution leaves out part of the region where its property holds."""


@dataclass(frozen=True, eq=False)
class Coverage:
    """What :func:`coverage` found.

    Attributes
    ----------
    n_draws : int
        Uniform draws from the box.
    n_with_property : int
        Draws ``z`` whose statistic lies within ``within`` standard
        deviations of every target mean: the region where the property
        holds point-wise.
    n_left_out : int
        Of those, the draws where the fitted density is negligible (below
        ``threshold``).
    left_out : float
        ``n_left_out / n_with_property``: the share of the region's volume
        the distribution leaves out (NaN without draws in the region).
    left_out_se : float
        Its binomial standard error.
    threshold : float
        The log density below which a draw counts as left out: 1/100 of the
        density (``log 100`` nats below) that 99% of the distribution's own
        samples with the property exceed.
    regions : pandas.DataFrame
        One row per parameter: where most left-out draws lie (their 5th and
        95th percentiles, ``left_out_low`` and ``left_out_high``), and the range
        of the distribution's own samples with the property (``q_low``,
        ``q_high``, their 1st and 99th percentiles). Empty ranges are NaN.
    """

    n_draws: int
    n_with_property: int
    n_left_out: int
    left_out: float
    left_out_se: float
    threshold: float
    regions: pd.DataFrame

    @property
    def measurable(self) -> bool:
        """Whether the left-out share is measurably above 2% (at least 5 draws, 2 se above it)."""
        return self.n_left_out >= 5 and self.left_out - 2 * self.left_out_se > 0.02

    def describe(self) -> str:
        """One sentence: how much is left out, and where."""
        if self.n_with_property == 0:
            return (
                f"none of {self.n_draws} uniform draws from the box has the property: "
                "coverage cannot be judged (more draws, or a smaller box)"
            )
        text = (
            f"{self.n_left_out} of the {self.n_with_property} uniform draws (of {self.n_draws}) "
            f"where the property holds point-wise have a negligible density under the fit: "
            f"it leaves out {self.left_out:.0%} (+-{self.left_out_se:.0%}) of that region"
        )
        if self.n_left_out:
            found = self.regions.dropna(subset=["left_out_low"])
            where = "; ".join(
                f"{name} in [{row.left_out_low:.3g}, {row.left_out_high:.3g}] "
                f"(the fit's: [{row.q_low:.3g}, {row.q_high:.3g}])"
                for name, row in found.iterrows()
            )
            text += f", 90% of them at {where}"
        return text


def coverage(
    est, n_draws: int = 10000, within: float = 2.0, random_state=0, warn: bool = True
) -> Coverage:
    r"""The part of the box where the property holds that the fitted distribution leaves out.

    The maximum-entropy distribution's density depends on :math:`z` only
    through :math:`T(f(z))`, so it gives every part of the parameter box
    where the statistic takes the property's values its share of mass. A
    fit that found one such region and missed another (a multimodal answer
    fitted with too few seeds, or a flaw in a user's simulator that makes
    one region easier to reach) can pass the convergence test and still
    fall short of the maximum. This check draws ``n_draws`` uniform points
    from the box, keeps those whose statistic lies within ``within``
    standard deviations :math:`\sqrt{\sigma^2_i}` of every target mean, and
    counts those where the fitted density is negligible: more than 100
    times below what 99% of the distribution's own samples with the
    property exceed.

    It costs ``2 * n_draws`` evaluations of the statistic (the uniform draws
    and as many samples of the fit) and of the density: with 10,000 draws,
    4 s for the STG model, 23 s for V1 and 25 s for SC on 2 cores, 1-2% of
    their fits' time. It says nothing where uniform draws rarely have
    the property (a rare property in many dimensions); the result then
    counts few draws, and :meth:`Coverage.describe` says so.

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator with a bounded support and a property with
        variances (``sigma2``).
    n_draws : int, default=10000
        Uniform draws from the box.
    within : float, default=2.0
        Half-width of the region where the property holds point-wise, in
        target standard deviations.
    random_state : int, RandomState instance or None, default=0
    warn : bool, default=True
        Issue a :class:`CoverageWarning` when the left-out share is
        measurably above 2% (:attr:`Coverage.measurable`).

    Returns
    -------
    Coverage

    Raises
    ------
    ValueError
        For an unbounded parameter, a property of means only, or bad
        ``n_draws`` / ``within``.

    Examples
    --------
    >>> from sklearn_epi.analysis import coverage
    >>> found = coverage(est)  # doctest: +SKIP
    >>> print(found.describe())  # doctest: +SKIP
    """
    check_is_fitted(est, "flow_weights_")
    _check_positive_int(n_draws, "n_draws")
    if not isinstance(within, Real) or isinstance(within, bool) or not within > 0:
        raise ValueError(f"within must be a number > 0; got {within!r}")
    support = _support_of(est)
    unbounded = [
        n
        for n, lo, hi in zip(support.names, support.low, support.high)
        if not np.isfinite(lo) or not np.isfinite(hi)
    ]
    if unbounded:
        raise ValueError(
            f"coverage draws uniformly from the box, but parameters {', '.join(unbounded)} are "
            "unbounded: give them finite bounds"
        )
    prop = est.property_
    if prop.sigma2 is None:
        raise ValueError(
            "coverage needs a property with variances (sigma2): they set how close to the "
            "target means the statistic must be for the property to hold at a point"
        )
    rng = check_random_state(random_state)
    low, high = np.asarray(support.low), np.asarray(support.high)
    draws = rng.uniform(low, high, size=(n_draws, len(low)))
    own = est.sample(n_draws, random_state=rng)

    # Traced once, as in training: a simulator's loop run eagerly costs many
    # times its graph. Chunks of at least the fit's batch, which the
    # statistic met in training.
    statistic = tf.function(lambda z, seed: call_statistic(est.statistic, z, seed))
    chunk = max(1000, _resolve_al_params(est.al_params).batch_size)

    def with_property(Z):
        f = np.concatenate(
            [
                np.asarray(
                    statistic(
                        tf.constant(Z[i : i + chunk], dtype=est.dtype),
                        tf.constant(rng.randint(0, 2**31 - 1, size=2), tf.int32),
                    ),
                    dtype=float,
                ).reshape(-1, prop.n_statistics)
                for i in range(0, len(Z), chunk)
            ]
        )
        return np.all(np.abs(f - prop.mu) <= within * np.sqrt(prop.sigma2), axis=1)

    inside, own_inside = with_property(draws), with_property(own)
    threshold = np.nan
    if own_inside.any():
        threshold = float(np.quantile(est.score_samples(own[own_inside]), 0.01) - np.log(100.0))
    log_q = est.score_samples(draws[inside]) if inside.any() else np.empty(0)
    out = draws[inside][~(log_q >= threshold)]  # NaN threshold: nothing of q has it
    n_in = int(inside.sum())
    share = len(out) / n_in if n_in else np.nan
    regions = pd.DataFrame(
        {
            "left_out_low": np.percentile(out, 5, axis=0) if len(out) else np.nan,
            "left_out_high": np.percentile(out, 95, axis=0) if len(out) else np.nan,
            "q_low": np.percentile(own[own_inside], 1, axis=0) if own_inside.any() else np.nan,
            "q_high": np.percentile(own[own_inside], 99, axis=0) if own_inside.any() else np.nan,
        },
        index=pd.Index(list(support.names), name="parameter"),
    )
    found = Coverage(
        n_draws=n_draws,
        n_with_property=n_in,
        n_left_out=len(out),
        left_out=share,
        left_out_se=float(np.sqrt(share * (1 - share) / n_in)) if n_in else np.nan,
        threshold=threshold,
        regions=regions,
    )
    if warn and found.measurable:
        warnings.warn(
            f"{found.describe()}. The fit is likely below the maximum entropy: more seeds, a "
            "flow whose base has several modes (RealNVP(base_modes=2)), or a start in the "
            "left-out region (init=) may find it",
            CoverageWarning,
            stacklevel=2,
        )
    return found


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
