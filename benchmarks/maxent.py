"""How close EPI gets to the true maximum entropy, per optimisation setting and seed.

The paper's 2D oscillator (:func:`benchmarks.problems.oscillator`) has a
computable maximum: :func:`sklearn_epi.analysis.maxent_reference` solves the
dual on uniform importance samples of the box in this same run (H* = 7.04
nats, half of the mass on each lobe: a12 > 0 > a21 and the mirror). Each
setting is fitted on several seeds; a row reports the entropy gap
``H* - H`` (negative when the fit's estimate lies above H*, within its test
tolerance), the shares of fresh samples on each lobe (a12 > 0 and a12 < 0;
0.5 each for the maximum),
whether the fit converged, its epoch, the training iterations to that
epoch and in all, and its wall time. A summary row per
setting gives the median and worst gap, the spread of converged entropies
and the range of the smallest lobe's share; it is met when every seed
converged within 0.1 nats of H* with every share within 0.1 of the
maximum's and the converged entropies
spread less than 0.1 nats (issue "The maximum in maximum entropy"). A
second row gives the most iterations any seed ran to its kept epoch,
against :data:`ITERATION_GOAL` (on the oscillator; met only if every seed converged).

``problem="four lobes"`` (:data:`PROBLEMS`) fits the test suite's
four-lobed answer instead (``z ** 2`` on ``[-3, 3]^2``, four base modes;
a quarter of the mass on each quadrant), where a schedule too fast for the
modes to find their lobes shows: a setting is kept only if it holds on
both.

The settings (:data:`SETTINGS`) are changes to the estimator's defaults,
so a setting's meaning follows them; ``benchmarks/README.md`` says which
defaults each was measured against. First the defaults (a base of two
Gaussian modes, ``c0 = 1e-3``, ``beta = 1.5``, 600 steps of lr 2e-3 per
epoch; the fit stops two epochs after the converged epoch it keeps); then
the fifteenth session's schedules for a third of the iterations (a larger
``c0`` with ``beta = 2`` and shorter epochs, or shorter epochs alone); the
same defaults run to epoch 25 (``patience=None``, the earlier default);
one base mode, run to epoch 25 (the standard normal base of the paper and
the earlier defaults); then, each with the default base and measured
while fits ran every epoch: ``c0 = 1``, a strong start;
``beta = 2`` with 15 longer epochs of 1000 steps; a constant learning rate
instead of the per-epoch cosine with warm-up; half and twice the learning
rate. Twice the rate is also combined with the narrower Gaussian below,
with a faster tightening (``beta = 2``; once more with two restarts per
fit that stop at their first converged epoch), with twice the batch and
half the steps, and with a slower tightening or longer epochs, each
stopping at the first converged epoch. Then twice the batch with half the
steps; a narrower initial Gaussian (std 1 instead of the default 20 / 6);
twice the units in the flow's conditioners; a fourth coupling stage;
random splits between the flow's stages instead of reversal (alone and
with the narrower Gaussian); and the paper's schedule (``beta = 4``, 10
epochs of 2000 constant-rate steps at 1e-3).
``--quick`` fits only 400 iterations of the defaults: a smoke test of the
section, not a measurement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from sklearn_epi import EPIEstimator, RealNVP
from sklearn_epi.analysis import maxent_reference
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues

from .problems import quiet_fit_seconds

#: Settings compared: name -> EPIEstimator keyword arguments beyond the defaults.
SETTINGS = {
    "defaults": {},
    # Schedules that reach the oscillator's maximum in a third of the
    # iterations (fifteenth session): a stronger, faster penalty, or short
    # epochs at the default penalty schedule.
    "c0 1e-2, beta 2, 400 it": {"al_params": {"c0": 1e-2, "beta": 2.0, "num_iters": 400}},
    "c0 1e-2, beta 2, 350 it": {"al_params": {"c0": 1e-2, "beta": 2.0, "num_iters": 350}},
    "c0 1e-2, beta 2, 350 it, lr 3e-3": {
        "al_params": {"c0": 1e-2, "beta": 2.0, "num_iters": 350, "lr": 3e-3}
    },
    "c0 1e-2, beta 2, 300 it": {"al_params": {"c0": 1e-2, "beta": 2.0, "num_iters": 300}},
    "c0 2e-2, beta 2, 400 it": {"al_params": {"c0": 2e-2, "beta": 2.0, "num_iters": 400}},
    "c0 3e-2, beta 2, 300 it": {"al_params": {"c0": 3e-2, "beta": 2.0, "num_iters": 300}},
    "c0 4e-2, beta 2, 400 it": {"al_params": {"c0": 4e-2, "beta": 2.0, "num_iters": 400}},
    "c0 1e-2, beta 2.5, 400 it": {"al_params": {"c0": 1e-2, "beta": 2.5, "num_iters": 400}},
    "170 it per epoch": {"al_params": {"num_iters": 170}},
    "300 it per epoch": {"al_params": {"num_iters": 300}},
    "170 it per epoch, lr 1e-2": {"al_params": {"num_iters": 170, "lr": 1e-2}},
    "all 25 epochs (before: patience=None)": {"al_params": {"patience": None}},
    "one base mode, all 25 epochs (before: a standard normal base)": {
        "flow": RealNVP(base_modes=1),
        "al_params": {"patience": None},
    },
    "c0=1 (a strong start)": {"al_params": {"c0": 1.0}},
    "beta=2, 15 x 1000 it": {"al_params": {"beta": 2.0, "num_iters": 1000, "max_epochs": 15}},
    "constant lr": {"al_params": {"lr_schedule": "constant"}},
    "lr 1e-3": {"al_params": {"lr": 1e-3}},
    "lr 4e-3": {"al_params": {"lr": 4e-3}},
    "lr 4e-3, init std 1": {"al_params": {"lr": 4e-3}, "init": {"std": 1.0}},
    "lr 4e-3, beta 2": {"al_params": {"lr": 4e-3, "beta": 2.0}},
    "lr 4e-3, batch 2000 x 300 it": {
        "al_params": {"lr": 4e-3, "batch_size": 2000, "num_iters": 300}
    },
    "lr 4e-3, beta 1.3, stop early": {
        "al_params": {"lr": 4e-3, "beta": 1.3, "max_epochs": 30, "stop_early": True}
    },
    "lr 4e-3, 900 it, stop early": {
        "al_params": {"lr": 4e-3, "num_iters": 900, "max_epochs": 20, "stop_early": True}
    },
    "lr 4e-3, beta 2, stop early, 2 seeds": {
        "al_params": {"lr": 4e-3, "beta": 2.0, "stop_early": True},
        "n_seeds": 2,
    },
    "batch 2000 x 300 it": {"al_params": {"batch_size": 2000, "num_iters": 300}},
    "init std 1 (default: a sixth of the width, 3.3)": {"init": {"std": 1.0}},
    "100 units per layer": {"flow": RealNVP(num_units=100)},
    "4 coupling stages": {"flow": RealNVP(num_stages=4)},
    "random permutations between flow stages": {"flow": RealNVP(permutation="random")},
    "random permutations, init std 1": {
        "flow": RealNVP(permutation="random"),
        "init": {"std": 1.0},
    },
    "paper schedule (beta=4, 10 x 2000 it, lr 1e-3 constant)": {
        "al_params": {
            "beta": 4.0,
            "num_iters": 2000,
            "max_epochs": 10,
            "lr": 1e-3,
            "lr_schedule": "constant",
        }
    },
}


#: Training iterations to the kept epoch that issue 28 asks of the defaults on
#: the oscillator: a third of the 10,200 they take.
ITERATION_GOAL = 3000


def _squares(z):
    return z**2


def _quadrants(Z):
    right, top = Z[:, 0] > 0, Z[:, 1] > 0
    return [np.mean((right == a) & (top == b)) for a in (False, True) for b in (False, True)]


@dataclass(frozen=True)
class KnownMaximum:
    """A problem with a computable maximum and the lobes it puts its mass on.

    ``lobes(Z)`` gives the share of samples ``Z`` on each lobe; the maximum
    puts ``1 / len(lobes)`` on each (by symmetry), and a fit is balanced when
    every share is within 0.1 of that.
    """

    statistic: Callable
    bounds: object
    mu: list
    sigma2: list
    lobes: Callable
    fit_kwargs: dict = field(default_factory=dict)


#: The known maxima: the paper's oscillator (two lobes, a12 > 0 and a12 < 0)
#: and the test suite's four lobes (``z ** 2`` on ``[-3, 3]^2`` with both
#: means 4: one lobe per quadrant, fitted with four base modes).
PROBLEMS = {
    "oscillator": KnownMaximum(
        lds_eigenvalues,
        LDS_BOUNDS,
        LDS_MU,
        LDS_SIGMA2,
        lambda Z: [np.mean(Z[:, 1] > 0), np.mean(Z[:, 1] <= 0)],
    ),
    "four lobes": KnownMaximum(
        _squares,
        [[-3.0, 3.0]] * 2,
        [4.0, 4.0],
        [0.25, 0.25],
        _quadrants,
        {"flow": RealNVP(base_modes=4)},
    ),
}


def reference(problem="oscillator", n_samples=2_000_000):
    """H*, its standard error and the lobe shares of the exact maximum."""
    p = PROBLEMS[problem]
    ref = maxent_reference(
        p.statistic, p.bounds, p.mu, p.sigma2, n_samples=n_samples, random_state=0
    )
    return ref.entropy, ref.entropy_se, p.lobes(ref.sample(200_000, random_state=0))


def one_fit(kwargs, seed, quick=False, problem="oscillator"):
    """Entropy, lobe shares, converged, epoch, wall time, kept and all iterations of a fit."""
    if quick:  # a smoke test of the section: a short fit
        kwargs = {**kwargs, "al_params": {"num_iters": 200, "max_epochs": 2, "init_iters": 200}}
    p = PROBLEMS[problem]
    kwargs = {**p.fit_kwargs, **kwargs}
    est = EPIEstimator(p.statistic, p.bounds, random_state=seed, **kwargs)
    wall = quiet_fit_seconds(est, p.mu, p.sigma2)
    shares = p.lobes(est.sample(20_000, random_state=seed))
    kept = est.history_.query("phase == 'test' and epoch == @est.epoch_")["iteration"].iloc[0]
    return est.entropy_, shares, est.converged_, est.epoch_, wall, int(kept), est.n_iter_


def run(quick=False, seeds=None, settings=None, first_seed=0, problem="oscillator"):
    """Rows of the section: the reference, then per setting each seed and a summary.

    ``seeds`` fits per setting (default 5), with ``random_state`` from
    ``first_seed`` on; ``settings``, names in :data:`SETTINGS` (default all);
    ``problem``, a key of :data:`PROBLEMS`.
    """
    n_seeds = seeds or (1 if quick else 5)
    names = settings or (["defaults"] if quick else list(SETTINGS))
    h_star, h_se, ref_shares = reference(problem, 200_000 if quick else 2_000_000)
    fair = 1 / len(ref_shares)
    rows = [
        {
            "section": "maxent",
            "benchmark": f"{problem}: reference H* (dual on importance samples)",
            "value": h_star,
            "baseline": np.nan,
            "unit": "nats",
            "ratio": np.nan,
            "goal": "",
            "met": None,
            "notes": f"se {h_se:.3f}; lobe shares {_shares(ref_shares)}",
        }
    ]
    for name in names:
        seed_list = range(first_seed, first_seed + n_seeds)
        results = [one_fit(SETTINGS[name], seed, quick, problem) for seed in seed_list]
        balanced = [max(abs(np.asarray(r[1]) - fair)) <= 0.1 for r in results]
        for seed, ok, (H, shares, converged, epoch, wall, kept, n_iter) in zip(
            seed_list, balanced, results
        ):
            rows.append(
                {
                    "section": "maxent",
                    "benchmark": f"{problem}, {name}, seed {seed}: gap H* - H",
                    "value": h_star - H,
                    "baseline": h_star,
                    "unit": "nats",
                    "ratio": np.nan,
                    "goal": "<= 0.1",
                    "met": bool(converged and h_star - H <= 0.1 and ok),
                    "notes": f"H {H:.3f}; lobe shares {_shares(shares)}; converged {converged}; "
                    f"epoch {epoch} (iteration {kept} of {n_iter}); {wall:.0f} s",
                }
            )
        gaps = np.array([h_star - r[0] for r in results])
        converged_H = [r[0] for r in results if r[2]]
        smallest = [min(r[1]) for r in results]
        rows.append(
            {
                "section": "maxent",
                "benchmark": f"{problem}, {name}: median gap over {n_seeds} seeds",
                "value": float(np.median(gaps)),
                "baseline": h_star,
                "unit": "nats",
                "ratio": np.nan,
                "goal": "<= 0.1",
                "met": bool(
                    np.max(gaps) <= 0.1
                    and len(converged_H) == n_seeds
                    and np.ptp(converged_H) < 0.1
                    and all(balanced)
                ),
                "notes": f"worst gap {np.max(gaps):.2f}; converged {len(converged_H)}/{n_seeds}; "
                f"entropy spread {np.ptp(converged_H) if converged_H else np.nan:.2f}; "
                f"smallest lobe {min(smallest):.2f}-{max(smallest):.2f} (maximum {fair:.2f}); "
                f"mean wall {np.mean([r[4] for r in results]):.0f} s",
            }
        )
        kept = [r[5] for r in results]
        rows.append(
            {
                "section": "maxent",
                "benchmark": f"{problem}, {name}: iterations to the kept epoch, "
                f"worst of {n_seeds} seeds",
                "value": max(kept),
                "baseline": np.nan,
                "unit": "iterations",
                "ratio": np.nan,
                "goal": f"<= {ITERATION_GOAL}" if problem == "oscillator" else "",
                "met": bool(len(converged_H) == n_seeds and max(kept) <= ITERATION_GOAL)
                if problem == "oscillator"
                else None,
                "notes": f"per seed {', '.join(map(str, kept))}; all iterations run "
                f"{', '.join(str(r[6]) for r in results)}",
            }
        )
    return rows


def _shares(shares):
    return "/".join(f"{s:.2f}" for s in shares)
