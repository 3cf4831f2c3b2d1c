r"""The emergent property as one object: targets, names, T(z), violations, test.

EPI constrains the first two moments of a statistic :math:`f(z)` (paper,
Eq. 14): :math:`\mathbb{E}_q[f] = \mu` and, optionally,
:math:`\mathbb{E}_q[(f - \mu)^2] = \sigma^2`. Written with the sufficient
statistics :math:`T(z) = [f(z), (f(z) - \mu)^2]` and targets
:math:`\mu_{opt} = [\mu, \sigma^2]` (Eq. 19), the constraint violation is
:math:`R = \mathbb{E}_q[T(z)] - \mu_{opt}`. Training, the epoch-end test,
:meth:`EPIEstimator.score` and the analysis helpers all use this one object,
so fit and score cannot drift apart.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .convergence import constraint_pvalues, is_converged

__all__ = ["EmergentProperty", "call_statistic", "statistic_takes_seed"]


@dataclass(frozen=True)
class EmergentProperty:
    """Moment constraints on a statistic, built once from ``mu`` and ``sigma2``.

    Parameters
    ----------
    mu : ndarray of shape (m_f,)
        Target means of the statistics.
    sigma2 : ndarray of shape (m_f,) or None
        Target variances; ``None`` constrains the means only.
    statistic_names : tuple of str
        One name per statistic (``mu``'s labels, or ``f0, f1, ...``).
    """

    mu: np.ndarray
    sigma2: np.ndarray | None
    statistic_names: tuple

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

    def sufficient_statistics(self, f):
        """T(f) = [f, (f - mu)^2] (or f alone), for a TF tensor or a NumPy array (n, m_f)."""
        if isinstance(f, np.ndarray):
            return f if self.sigma2 is None else np.hstack([f, (f - self.mu) ** 2])
        if self.sigma2 is None:
            return f
        return tf.concat([f, tf.square(f - tf.constant(self.mu, f.dtype))], axis=1)

    def batch_violations(self, T: np.ndarray, n_batches: int) -> np.ndarray:
        """Violation estimates of ``n_batches`` equal batches of rows of T, shape (B, m)."""
        T = np.asarray(T, dtype=float)
        return T.reshape(n_batches, -1, T.shape[1]).mean(axis=1) - self.targets

    def test(self, R_batches: np.ndarray, alpha: float) -> tuple[np.ndarray, bool]:
        """The paper's convergence test: p-values and whether all pass at ``alpha / m``."""
        pvalues = constraint_pvalues(R_batches)
        return pvalues, is_converged(pvalues, alpha)

    def evaluate(self, statistic, z, seed) -> np.ndarray:
        """The statistic at the rows of ``z`` as a float NumPy array of shape (n, m_f)."""
        f = np.asarray(call_statistic(statistic, z, seed), dtype=float)
        return f.reshape(len(f), self.n_statistics)


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
