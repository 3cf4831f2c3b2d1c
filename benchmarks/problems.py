"""The problems every benchmark section runs on, built the way ``fit`` builds them.

Two families: the paper's 2D oscillator (:mod:`sklearn_epi.circuits.lds`,
RealNVP 3 x 2 x 50, the estimator's defaults otherwise) and the rank-2 RNN
of stable amplification (paper, Methods "Scaling EPI for stable
amplification in RNNs": RealNVP 3 x 2 x 100, batch 200, 500 iterations per
epoch, ``N_test = 200``; the AL schedule is the package's default, or with
``schedule="paper"`` the paper's ``c0 = 1e-3``, ``beta = 4`` and constant
learning rate 1e-3, its ``c0`` now in the targets' units).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

from sklearn.base import clone

from sklearn_epi import ALParams, RealNVP
from sklearn_epi.circuits import (
    LDS_BOUNDS,
    LDS_MU,
    LDS_SIGMA2,
    RNN_MU,
    RNN_SIGMA2,
    lds_eigenvalues,
    rnn_bounds,
    rnn_stable_amplification,
)
from sklearn_epi.optimize import SeedSpec
from sklearn_epi.property import EmergentProperty
from sklearn_epi.support import parse_bounds

#: Paper's distance criterion: ||E_q[f] - mu||_2 below this (Methods,
#: "Methodological comparison").
CRITERION = 0.5


@dataclass(frozen=True)
class Problem:
    """Statistic, support, targets and the paper's optimiser settings."""

    name: str
    statistic: object
    bounds: dict
    mu: object
    sigma2: object
    flow: RealNVP
    al: ALParams
    n_test: int

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def estimator_kwargs(self, **al_overrides) -> dict:
        """Keyword arguments of an :class:`~sklearn_epi.EPIEstimator` for this problem."""
        al = self.al.set_params(**al_overrides) if al_overrides else self.al
        return {
            "statistic": self.statistic,
            "bounds": self.bounds,
            "flow": self.flow,
            "al_params": al,
            "n_test": self.n_test,
        }

    def seed_spec(self, **changes) -> SeedSpec:
        """The :class:`SeedSpec` ``EPIEstimator.fit`` would hand a worker (one seed)."""
        support = parse_bounds(self.bounds)
        mean, std = support.default_gaussian()
        names = tuple(f"f{i}" for i in range(len(self.mu)))
        spec = SeedSpec(
            flow=self.flow,
            support=support,
            statistic=self.statistic,
            prop=EmergentProperty(self.mu, self.sigma2, names, n_test=self.n_test),
            al=self.al,
            init_mean=mean,
            init_std=std,
        )
        return replace(spec, **changes)


def oscillator() -> Problem:
    """The 2D linear system oscillating at 1 Hz (paper, Eq. 29), D = 4."""
    return Problem(
        name="oscillator",
        statistic=lds_eigenvalues,
        bounds=dict(LDS_BOUNDS),
        mu=LDS_MU,
        sigma2=LDS_SIGMA2,
        flow=RealNVP(num_stages=3, num_layers=2, num_units=50),
        al=ALParams(),
        n_test=500,
    )


def one_base_mode(problem: Problem) -> Problem:
    """``problem`` with a standard normal base (``base_modes=1``), as in the paper.

    The hand-written step and the ablations of the throughput sections are
    written for that base.
    """
    return replace(problem, flow=clone(problem.flow).set_params(base_modes=1))


#: AL schedules of the RNN problem beyond its batch and epoch length.
RNN_SCHEDULES = {
    "defaults": {},
    "paper": {"c0": 1e-3, "beta": 4.0, "lr": 1e-3, "lr_schedule": "constant"},
}


def rnn(N: int, schedule: str = "defaults") -> Problem:
    """Stable amplification in a rank-2 RNN of N neurons (paper, Eq. 63-65), D = 4N."""
    return Problem(
        name=f"rnn N={N}",
        statistic=rnn_stable_amplification(N),
        bounds=rnn_bounds(N),
        mu=RNN_MU,
        sigma2=RNN_SIGMA2,
        flow=RealNVP(num_stages=3, num_layers=2, num_units=100),
        al=ALParams(batch_size=200, num_iters=500, init_iters=500, **RNN_SCHEDULES[schedule]),
        n_test=200,
    )


def quiet_fit_seconds(est, mu, sigma2) -> float:
    """Fit ``est`` with its warnings silenced (the tables report convergence); wall seconds."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(mu, sigma2)
    return time.perf_counter() - start
