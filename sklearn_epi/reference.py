r"""The exact maximum-entropy distribution of a low-dimensional property, by its dual.

EPI fits a normalizing flow by stochastic optimisation, so its answer is only
as good as the optimisation. For a few parameters (D up to about 6) the
maximum itself can be computed without a flow: the maximum-entropy
distribution under the constraints :math:`\mathbb{E}_q[T(z)] = \mu_{opt}` is
an exponential family,

.. math:: q^*(z) = \frac{\exp(\eta^{*\top} T(z))}{Z(\eta^*)}, \qquad
          \eta^* = \arg\min_\eta \; \log Z(\eta) - \eta^\top \mu_{opt},

whose dual objective is convex in :math:`\eta`.
:func:`~sklearn_epi.analysis.maxent_reference` estimates
:math:`Z(\eta) = \int \exp(\eta^\top T(z))\, dz` on uniform samples of the
support and minimises the dual by Newton's method; the entropy is the dual's
minimum, :math:`H^* = \log Z(\eta^*) - \eta^{*\top} \mu_{opt}`. It serves as a
test oracle for the estimator and as a user's check of a fit on a small
version of their model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import tensorflow as tf
from scipy import optimize
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from ._validation import _check_targets, user_stacklevel
from .property import EmergentProperty, call_statistic
from .support import parse_bounds

__all__ = ["LowEffectiveSampleSizeWarning", "MaxEntReference", "maxent_reference"]

#: Standardised constraint residual (in standard deviations of the statistic
#: on the box) below which the dual problem counts as solved.
_RESIDUAL_TOL = 1e-6


class LowEffectiveSampleSizeWarning(UserWarning):
    """The importance weights of a reference solution are too concentrated to trust."""


@dataclass(frozen=True, eq=False)
class MaxEntReference:
    r"""Maximum-entropy distribution on importance samples.

    Returned by :func:`~sklearn_epi.analysis.maxent_reference`.

    :math:`q^*` is represented by the uniform ``samples`` of the support and
    their normalised ``weights``: the expectation of any :math:`g` under
    :math:`q^*` is ``weights @ g(samples)``.

    Attributes
    ----------
    entropy : float
        :math:`H^*`, in nats, with respect to Lebesgue measure on the support
        (the estimator's ``entropy_`` measures the same quantity).
    entropy_se : float
        Monte Carlo standard error of ``entropy`` by the delta method,
        :math:`\sqrt{1/\mathrm{ESS} - 1/n}` (the optimum's dependence on
        :math:`\eta` vanishes to first order). Its bias is of order
        :math:`m / \mathrm{ESS}`, negligible beside the standard error when
        the ESS is in the thousands.
    eta : ndarray of shape (m,)
        Multipliers :math:`\eta^*` in the statistic's units, ordered as
        ``constraint_names``, with :math:`q^* \propto \exp(+\eta^{*\top} T)`.
        The estimator's ``lagrange_multipliers_`` enter its objective as
        :math:`-H + \eta^\top R`, so at the maximum they approach ``-eta``.
    constraint_names : tuple of str
        ``mean_<stat>`` for every statistic, then ``var_<stat>`` when
        variances are constrained.
    targets : ndarray of shape (m,)
        :math:`\mu_{opt} = [\mu, \sigma^2]` (or :math:`\mu` alone).
    moments : ndarray of shape (m,)
        Achieved :math:`\mathbb{E}_{q^*}[T(z)]`.
    residuals : ndarray of shape (m,)
        ``moments - targets``.
    ess : float
        Kish effective sample size :math:`1 / \sum_i w_i^2` of ``weights``.
    converged : bool
        Whether the dual optimiser met its gradient tolerance.
    n_iter : int
        Newton iterations of the dual optimiser.
    message : str
        The optimiser's termination message.
    samples : ndarray of shape (n_samples, D)
        Uniform draws from the support.
    weights : ndarray of shape (n_samples,)
        Normalised importance weights of :math:`q^*`; they sum to 1.
    statistics : ndarray of shape (n_samples, m_f)
        :math:`f` at every sample.
    param_names : tuple of str
        Parameter names, from ``bounds``.
    log_volume : float
        Log volume of the support.
    dtype : str
        Precision the statistic was evaluated in, ``"float64"`` unless it
        failed on float64 input.
    """

    entropy: float
    entropy_se: float
    eta: np.ndarray
    constraint_names: tuple
    targets: np.ndarray
    moments: np.ndarray
    residuals: np.ndarray
    ess: float
    converged: bool
    n_iter: int
    message: str
    samples: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    statistics: np.ndarray = field(repr=False)
    param_names: tuple = ()
    log_volume: float = 0.0
    dtype: str = "float64"

    @property
    def max_residual(self) -> float:
        """Largest absolute constraint residual, in the statistic's units."""
        return float(np.max(np.abs(self.residuals)))

    def sample(self, n: int, random_state=None) -> np.ndarray:
        """Draw ``n`` parameter sets from :math:`q^*` by weighted resampling.

        Draws repeat whenever ``n`` approaches ``ess``: use ``weights``
        directly for expectations.

        Parameters
        ----------
        n : int
            Number of draws.
        random_state : int, RandomState instance or None, default=None
            Seed of the resampling.

        Returns
        -------
        ndarray of shape (n, D)
        """
        _check_int(n, "n", 1)
        rng = check_random_state(random_state)
        index = rng.choice(self.weights.size, size=n, p=self.weights)
        return self.samples[index]


def maxent_reference(
    statistic,
    bounds,
    mu,
    sigma2=None,
    n_samples: int = 1_000_000,
    random_state=None,
    *,
    chunk_size: int = 100_000,
    max_iter: int = 200,
    tol: float = 1e-8,
    min_ess: float = 1000,
) -> MaxEntReference:
    r"""Solve the maximum-entropy problem exactly, up to Monte Carlo error, for small D.

    The sufficient statistics are :math:`T(z) = [f(z), (f(z) - \mu)^2]`
    (:math:`f(z)` alone when ``sigma2`` is None) with targets
    :math:`\mu_{opt} = [\mu, \sigma^2]`, as in the estimator (paper, Eq. 14).
    The maximum-entropy distribution is
    :math:`q^*(z) \propto \exp(\eta^{*\top} T(z))` on the support, with
    :math:`\eta^*` the minimiser of the convex dual

    .. math:: g(\eta) &= \log \int \exp(\eta^\top T(z))\, dz - \eta^\top \mu_{opt} \\
              &\approx \log V + \log \frac{1}{n} \sum_{i=1}^n
              \exp(\eta^\top T(z_i)) - \eta^\top \mu_{opt},

    estimated on ``n_samples`` uniform draws :math:`z_i` of the box of volume
    :math:`V`. The columns of :math:`T` are standardised before the
    minimisation (trust-region Newton with the exact gradient
    :math:`\mathbb{E}_q[T] - \mu_{opt}` and Hessian :math:`\mathrm{Cov}_q[T]`)
    and :math:`\eta` is mapped back to the statistic's units. The entropy is
    the minimum, :math:`H^* = g(\eta^*)`.

    Every parameter must have finite bounds: on an open side a
    maximum-entropy distribution need not exist (its entropy is infinite
    when :math:`f` does not confine that direction), and a proposal there
    would be a guess. Cap open sides at values the distribution cannot
    reach, then check that widening them leaves :math:`H^*` unchanged.

    The answer is trustworthy when the effective sample size ``ess`` of the
    weights is large: it falls as :math:`q^*` concentrates on a small part of
    the box, and so as the dimension grows. Below ``min_ess`` a
    :class:`~sklearn_epi.reference.LowEffectiveSampleSizeWarning` is raised.

    Parameters
    ----------
    statistic : callable
        TensorFlow function mapping a ``tf.Tensor`` of shape ``(n, D)`` to the
        statistics, shape ``(n, m_f)`` (``(n,)`` when ``m_f = 1``), as for
        :class:`~sklearn_epi.EPIEstimator`. It is called on chunks of float64
        input (float32 if float64 fails); it need not be differentiable. A
        statistic with a ``seed`` keyword receives a stateless seed per chunk.
    bounds : dict or array-like of shape (D, 2)
        Finite support of each parameter, ``{name: (low, high)}`` or rows
        ``[low, high]``.
    mu : array-like of shape (m_f,), dict or Series
        Target means of the statistics.
    sigma2 : array-like of shape (m_f,), dict or Series, default=None
        Target variances; ``None`` constrains the means only.
    n_samples : int, default=1_000_000
        Uniform draws of the support.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.
    chunk_size : int, default=100_000
        Rows per call of the statistic; bounds the memory of TensorFlow.
    max_iter : int, default=200
        Iterations of the dual optimiser.
    tol : float, default=1e-8
        Gradient tolerance of the dual optimiser, on the standardised
        statistics (constraint residuals relative to their spread on the box).
    min_ess : float, default=1000
        Effective sample size below which a warning is raised.

    Returns
    -------
    MaxEntReference
        ``entropy`` and ``entropy_se``, multipliers ``eta``, ``samples`` and
        their ``weights`` under :math:`q^*`, ``ess``, ``moments`` and
        ``residuals``, ``converged``; see
        :class:`~sklearn_epi.reference.MaxEntReference`.

    Raises
    ------
    TypeError
        If ``statistic`` is not callable, or an integer argument is not an
        integer.
    ValueError
        If a bound is infinite, the targets are malformed, a size or
        tolerance is out of range, or the statistic returns the wrong shape,
        non-finite values or a constant column.

    Warns
    -----
    LowEffectiveSampleSizeWarning
        When ``ess < min_ess``.
    sklearn.exceptions.ConvergenceWarning
        When the dual optimiser does not converge (the targets may be
        unreachable on the support).

    See Also
    --------
    sklearn_epi.EPIEstimator : The flow fit whose entropy this validates.

    Examples
    --------
    A Gaussian is the maximum-entropy distribution of given mean and
    variance; on a box much wider than its spread the reference finds it:

    >>> import numpy as np
    >>> from sklearn_epi.analysis import maxent_reference
    >>> ref = maxent_reference(lambda z: z, [[-10.0, 10.0]], mu=[1.0], sigma2=[0.25],
    ...                        n_samples=200_000, random_state=0)
    >>> print(f"{ref.entropy:.2f} +- {ref.entropy_se:.2f} nats, converged: {ref.converged}")
    0.73 +- 0.01 nats, converged: True
    >>> print(f"{0.5 * np.log(2 * np.pi * np.e * 0.25):.2f}")  # exact
    0.73
    >>> np.round(ref.eta, 1)  # log q = -(z - 1)^2 / (2 * 0.25) + const
    array([-0., -2.])
    """
    if not callable(statistic):
        raise TypeError(f"statistic must be callable; got {type(statistic).__name__}")
    support = parse_bounds(bounds)
    for i, name in enumerate(support.names):
        if not (np.isfinite(support.low[i]) and np.isfinite(support.high[i])):
            raise ValueError(
                f"bounds must be finite for maxent_reference; got bounds for {name!r} = "
                f"({support.low[i]}, {support.high[i]}). Cap the open side at a value the "
                "distribution cannot reach and check the entropy does not change when you "
                "widen it"
            )
    mu, sigma2, stat_names = _check_targets(mu, sigma2)
    _check_int(n_samples, "n_samples", 2)
    _check_int(chunk_size, "chunk_size", 1)
    _check_int(max_iter, "max_iter", 1)
    _check_positive(tol, "tol")
    _check_positive(min_ess, "min_ess")
    rng = check_random_state(random_state)

    prop = EmergentProperty(mu, sigma2, tuple(stat_names))
    names, targets = tuple(prop.constraint_names), prop.targets
    Z = rng.uniform(support.low, support.high, size=(n_samples, support.dim))
    F, dtype = _evaluate_statistic(statistic, Z, mu.size, chunk_size, rng)
    T = prop.sufficient_statistics(F)

    centre, scale = T.mean(axis=0), T.std(axis=0)
    constant = np.flatnonzero(scale == 0)
    if constant.size:
        raise ValueError(
            f"statistic is constant on the support for constraint {names[constant[0]]!r} "
            f"(value {centre[constant[0]]}); a constant cannot be constrained"
        )
    dual = _Dual((T - centre) / scale, (targets - centre) / scale)
    del T
    with np.errstate(over="ignore", under="ignore"):
        result = optimize.minimize(
            dual.value,
            np.zeros(targets.size),
            jac=dual.gradient,
            hess=dual.hessian,
            method="trust-exact",
            options={"gtol": tol, "maxiter": max_iter},
        )
    weights = dual.weights(result.x)
    ess = 1.0 / np.sum(weights**2)
    moments = weights @ prop.sufficient_statistics(F)
    log_volume = float(np.sum(np.log(support.high - support.low)))
    ref = MaxEntReference(
        entropy=log_volume + float(dual.value(result.x)),
        entropy_se=float(np.sqrt(max(1.0 / ess - 1.0 / n_samples, 0.0))),
        eta=result.x / scale,
        constraint_names=names,
        targets=targets,
        moments=moments,
        residuals=moments - targets,
        ess=float(ess),
        # Newer SciPy's trust-exact can report failure ("A bad approximation
        # caused failure to predict improvement") when it starts or ends at the
        # optimum: a standardised residual far below the Monte Carlo error
        # is converged whatever the flag says.
        converged=bool(result.success)
        or float(np.max(np.abs(dual.gradient(result.x)))) <= _RESIDUAL_TOL,
        n_iter=int(result.nit),
        message=str(result.message),
        samples=Z,
        weights=weights,
        statistics=F,
        param_names=support.names,
        log_volume=log_volume,
        dtype=dtype,
    )
    if not ref.converged:
        warnings.warn(
            f"maxent_reference: the dual optimiser did not converge after {ref.n_iter} "
            f"iterations ({ref.message}); largest constraint residual {ref.max_residual:.3g}. "
            "The targets may be unreachable on the support, or n_samples too small",
            ConvergenceWarning,
            stacklevel=user_stacklevel(),
        )
    if ref.ess < min_ess:
        warnings.warn(
            f"effective sample size {ref.ess:.0f} is too small to trust H*; increase "
            f"n_samples or tighten the bounds (n_samples = {n_samples}, threshold "
            f"min_ess = {min_ess:g})",
            LowEffectiveSampleSizeWarning,
            stacklevel=user_stacklevel(),
        )
    return ref


class _Dual:
    r"""Sample estimate of :math:`g(\eta) - \log V` with its gradient and Hessian.

    The three share one pass over the samples per :math:`\eta` (cached).
    """

    def __init__(self, T: np.ndarray, targets: np.ndarray):
        self._T, self._targets = T, targets
        self._eta = None

    def _update(self, eta):
        if self._eta is not None and np.array_equal(eta, self._eta):
            return
        a = self._T @ eta
        top = a.max()
        w = np.exp(a - top)
        total = w.sum()
        self._eta = np.array(eta, copy=True)
        self._p = w / total
        self._value = top + np.log(total / a.size) - eta @ self._targets
        self._mean = self._p @ self._T

    def value(self, eta):
        self._update(eta)
        return self._value

    def gradient(self, eta):
        self._update(eta)
        return self._mean - self._targets

    def hessian(self, eta):
        self._update(eta)
        centred = self._T - self._mean
        return (centred * self._p[:, None]).T @ centred

    def weights(self, eta):
        self._update(eta)
        return self._p


def _evaluate_statistic(statistic, Z, m_f, chunk_size, rng):
    """``statistic`` on the rows of ``Z`` in chunks, as float64 (n, m_f) and the dtype used."""
    n = Z.shape[0]
    out = np.empty((n, m_f))
    seeds = rng.randint(0, 2**31 - 1, size=(-(-n // chunk_size), 2))
    dtype = tf.float64
    for k, start in enumerate(range(0, n, chunk_size)):
        z = Z[start : start + chunk_size]
        try:
            f = call_statistic(statistic, tf.constant(z, dtype), seeds[k])
        except Exception as exc:
            if k > 0 or dtype != tf.float64:
                raise
            try:
                dtype = tf.float32
                f = call_statistic(statistic, tf.constant(z, dtype), seeds[k])
            except Exception as exc32:
                raise ValueError(
                    f"statistic raised {type(exc).__name__} on a batch of shape {z.shape}: {exc}"
                ) from exc32
            warnings.warn(
                f"statistic raised {type(exc).__name__} on float64 input ({exc}); "
                "it is evaluated in float32",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        out[start : start + z.shape[0]] = _check_output(f, z.shape, m_f)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if bad.size:
        raise ValueError(
            f"statistic returned non-finite values at {bad.size} of {n} samples, e.g. at "
            f"z = {Z[bad[0]].tolist()}; maxent_reference needs a finite statistic on the "
            "whole support"
        )
    return out, dtype.name


def _check_output(f, in_shape, m_f):
    try:
        f = np.asarray(tf.convert_to_tensor(f), dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"statistic must return a tensor of shape (n, {m_f}); got {type(f).__name__}"
        ) from exc
    n = in_shape[0]
    if m_f == 1 and f.shape == (n,):
        f = f[:, None]
    if f.shape != (n, m_f):
        raise ValueError(
            f"statistic must return shape (n, {m_f}) (m_f = len(mu)) for an input of shape "
            f"{in_shape}; got {f.shape}"
        )
    return f


def _check_int(value, name, minimum):
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_positive(value, name):
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and positive; got {value}")
