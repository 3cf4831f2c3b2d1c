r"""The emergent property as one object: targets, names, T(z), violations, the test.

EPI constrains the first two moments of a statistic :math:`f(z)` (paper,
Eq. 14): :math:`\mathbb{E}_q[f] = \mu` and, optionally,
:math:`\mathbb{E}_q[(f - \mu)^2] = \sigma^2`. Written with the sufficient
statistics :math:`T(z) = [f(z), (f(z) - \mu)^2]` and targets
:math:`\mu_{opt} = [\mu, \sigma^2]` (Eq. 19), the constraint violation is
:math:`R = \mathbb{E}_q[T(z)] - \mu_{opt}`. Training, the epoch-end test,
:meth:`EPIEstimator.score`, the predictive check, the plots and the command
line all use this one object (a fitted estimator's ``property_``), so fit
and score cannot drift apart.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .convergence import constraint_pvalues, constraints_hold, is_converged

__all__ = ["EmergentProperty", "call_statistic", "statistic_takes_seed"]


@dataclass(frozen=True, eq=False)
class EmergentProperty:
    r"""An emergent property: moment constraints on a statistic, and the test that they hold.

    Parameters
    ----------
    mu : ndarray of shape (m_f,)
        Target means of the statistics.
    sigma2 : ndarray of shape (m_f,) or None
        Target variances; ``None`` constrains the means only.
    statistic_names : tuple of str
        One name per statistic (``mu``'s labels, or ``f0, f1, ...``).
    alpha : float, default=0.05
        Level of the test, Bonferroni-corrected over the ``m`` constraints.
    n_test : int, default=500
        Samples per batch estimate of each violation.
    n_batches : int, default=200
        Batch estimates per test (the paper's 200).

    Examples
    --------
    >>> import numpy as np
    >>> prop = EmergentProperty(np.array([0.0]), np.array([1.0]), ("x",), n_test=100)
    >>> prop.constraint_names
    ['mean_x', 'var_x']
    >>> f = np.random.default_rng(0).normal(size=(prop.n_batches * prop.n_test, 1))
    >>> bool(prop.test(prop.batch_violations(prop.sufficient_statistics(f)))[1])
    True
    """

    mu: np.ndarray
    sigma2: np.ndarray | None
    statistic_names: tuple
    alpha: float = 0.05
    n_test: int = 500
    n_batches: int = 200

    @property
    def n_statistics(self) -> int:
        """``m_f``, the statistic's output width."""
        return len(self.mu)

    @property
    def constraint_names(self) -> list:
        """``mean_<stat>`` for every statistic, then ``var_<stat>`` when constrained."""
        names = [f"mean_{s}" for s in self.statistic_names]
        if self.sigma2 is not None:
            names += [f"var_{s}" for s in self.statistic_names]
        return names

    @property
    def targets(self) -> np.ndarray:
        r""":math:`\mu_{opt}`, shape (m,)."""
        return self.mu if self.sigma2 is None else np.concatenate([self.mu, self.sigma2])

    def scales(self, spread=None) -> np.ndarray:
        r"""The unit of each constraint violation, shape (m,): what the optimisation divides R by.

        The target spread when the property states one: :math:`\sigma` for a
        mean and :math:`\sigma^2` for a variance (a Gaussian's
        :math:`(f - \mu)^2` has standard deviation :math:`\sqrt 2\,\sigma^2`).
        For a means-only property, ``spread`` (the statistic's standard
        deviation under the initial q). Dividing by these makes the penalty,
        its growth and the multiplier updates independent of the units in
        which each statistic is written.

        Parameters
        ----------
        spread : ndarray of shape (m_f,), optional
            Used when ``sigma2`` is None; entries that are zero or not finite
            count as 1.
        """
        if self.sigma2 is not None:
            return np.concatenate([np.sqrt(self.sigma2), self.sigma2])
        spread = np.ones(self.n_statistics) if spread is None else np.asarray(spread, float)
        return np.where(np.isfinite(spread) & (spread > 0), spread, 1.0)

    def sufficient_statistics(self, f, mu=None):
        r"""T = [f, (f - \mu)^2] (paper, Eq. 19), or f alone; NumPy or TensorFlow, shape (n, m).

        ``mu`` replaces the targets' means (the trainer passes its variable,
        so a new property needs no new graph).
        """
        if self.sigma2 is None:
            return f
        mu = self.mu if mu is None else mu
        if isinstance(f, np.ndarray):
            return np.hstack([f, (f - mu) ** 2])
        return tf.concat([f, tf.square(f - tf.cast(mu, f.dtype))], axis=1)

    def batch_violations(self, T: np.ndarray) -> np.ndarray:
        """Violation estimates of ``n_batches`` equal batches of rows of T, shape (n_batches, m)."""
        T = np.asarray(T, dtype=float)
        return T.reshape(self.n_batches, -1, T.shape[1]).mean(axis=1) - self.targets

    def test(
        self, R_batches: np.ndarray, multipliers=None, entropy_se: float = 0.0
    ) -> tuple[np.ndarray, bool]:
        """The convergence test: the paper's p-values, and whether the property holds.

        It holds when every p-value exceeds ``alpha / m`` (the paper's test
        on batches, :meth:`reached`) and the constraints hold within the
        noise of the whole sample
        (:func:`~sklearn_epi.convergence.constraints_hold`; with
        ``multipliers``, the entropy's slack too, against the larger of its
        own noise and ``entropy_se``).
        """
        pvalues = constraint_pvalues(R_batches)
        holds = self.reached(pvalues) and constraints_hold(
            R_batches, self.alpha, multipliers, entropy_se
        )
        return pvalues, holds

    def reached(self, pvalues) -> bool:
        """Whether every p-value of the paper's batch test exceeds ``alpha / m``."""
        return is_converged(pvalues, self.alpha)

    def evaluate(self, statistic, z, seed) -> np.ndarray:
        """The statistic at the rows of ``z`` as a float NumPy array of shape (n, m_f)."""
        f = np.asarray(call_statistic(statistic, z, seed), dtype=float)
        return f.reshape(len(f), self.n_statistics)

    def holds(self, statistic, z, seed) -> bool:
        """Whether samples ``z`` (``n_batches * n_test`` rows) pass the test.

        The pipeline of :meth:`EPIEstimator.score`: statistic, sufficient
        statistics, batch violations, :meth:`test` (without multipliers: the
        paper's test and the whole sample's violations, not the entropy's
        slack); a non-finite violation fails.
        """
        R = self.batch_violations(self.sufficient_statistics(self.evaluate(statistic, z, seed)))
        return bool(np.all(np.isfinite(R)) and self.test(R)[1])

    def diagnose(self, pvalues, statistic_range=None, moment_error=None) -> str:
        """Which constraints fail the test, and whether each is out of reach or out of budget.

        A mean target outside ``statistic_range`` (rows: the lowest and the
        highest value the statistic took on every test sample) is reported
        as unreachable: no distribution over the bounds can have it, so more
        iterations will not help. When every constraint passes the paper's
        batch test, the largest violation on the whole test sample
        (``moment_error``, in standard errors) is what failed.
        """
        if self.reached(pvalues):
            size = "" if moment_error is None else f" ({moment_error:.3g} standard errors)"
            return (
                "every constraint passes the paper's batch test, but the largest violation on "
                f"the whole test sample{size} is outside its noise, or the entropy the "
                "violations buy is measurable (history_: moment_error, H_corrected)"
            )
        low, high = (None, None) if statistic_range is None else statistic_range
        level = self.alpha / len(pvalues)
        parts = []
        for i, (name, p) in enumerate(zip(self.constraint_names, pvalues)):
            if p > level:
                continue
            k = i % self.n_statistics
            if i < self.n_statistics and low is not None and not low[k] <= self.mu[k] <= high[k]:
                why = (
                    f"unreachable: the statistic took values in [{low[k]:.4g}, {high[k]:.4g}] "
                    f"only, target {self.mu[k]:.4g}; check the bounds and the statistic"
                )
            else:
                why = "not reached within the budget"
            parts.append(f"{name} (p = {p:.3g}): {why}")
        return f"constraints that fail the test at alpha/m = {level:.3g}: {'; '.join(parts)}"


def call_statistic(statistic, z, seed):
    """``statistic(z)``, passing ``seed`` (shape (2,)) when the statistic takes one."""
    if statistic_takes_seed(statistic):
        return statistic(z, seed=tf.cast(seed, tf.int32))
    return statistic(z)


def statistic_takes_seed(statistic) -> bool:
    """Whether ``statistic`` has a ``seed`` parameter (stochastic simulators)."""
    try:
        return "seed" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False
