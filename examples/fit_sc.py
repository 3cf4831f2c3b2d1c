"""Fit the EPI distributions of rapid task switching in the SC model's two regimes.

Run from the repository root (``python examples/fit_sc.py``); it writes
``examples/data/sc_high_sW.npz`` and ``examples/data/sc_low_sW.npz``,
which ``plot_sc_task_switching.py`` loads. Settings follow the paper
(Methods, "EPI details for the SC model": real NVP with three coupling
stages of 2 x 50 units, support [-5, 5]^4, beta = 2, batch 100, 200 trials
per accuracy) with 600 iterations per epoch, up to 15 epochs, one seed
instead of five, and N_test = 100 instead of 25 (a stricter test).

The property is rare, so the fits do not start from N(0, I) as the
paper's did. Of connectivities drawn uniformly from the box, 0.05% reach 60-90%
accuracy in both tasks, and 75% sit at chance (0.4-0.6) in one task, where
the accuracy's gradient is flat; fits started from N(0, I) or from a wide
Gaussian about the middle of the box stayed at chance.

1. The paper's brute-force search (Figure 4, figure supplement 5): 60,000
   uniform draws, kept when both accuracies lie in 60-90% (29 of them,
   along a bent curve from sW = -2 to 1.3).
2. Two fits started from N(z, 0.1^2) about a kept draw z: the one whose
   neighbourhood comes closest to the property (violations in target
   spreads), and the same among the draws with sW < -1. Each converges and
   stays in the regime it started in: high sW (-0.8 to 0.6, 2nd to 98th
   percentile) and low sW (-2.0 to -0.4).

The paper's single distribution spans both regimes; ours are two. Three
tries at one fit over both did not get there: a flow fitted to 77 kept
draws of 200,000 (``init={"samples": kept}``, c0 = 0.1) spread out of the
property and drifted to chance in two epochs; a flow fitted to 2,000
samples of each regime's fit, which starts near the property because a
mixture of distributions that have it has it too, collapsed into one
regime, with c0 = 1 (the variance multipliers overshot in three epochs)
and with c0 = 0.3, lr 1e-3 and 2,000 initial steps (88% of the mass at
high sW by epoch 8, collapsed by epoch 12).

Two later tries of one fit (2026-12-05, a two-mode base, c0 = 0.3,
beta = 2, lr 1e-3, 600 iterations per epoch, 2,000 initial steps, n_test
100; 2 cores) converged, but neither is yet something this script can
regenerate and the gallery keep:

* started on 1,500 samples of the stored low-sW fit and 500 of the high-sW
  one (the split exp(H) of their entropies gives, 0.735 at low sW): converged
  at epoch 3 (345 s), entropy -0.25, 78% of the mass at sW < -0.6, and every
  finding the gallery asserts held on it (regimes split at sW = -0.6), but
  its accuracy spread is wider than the property (sd 0.080 and 0.092
  against 0.075; 0.128 for Anti at high sW), it starts from the two
  stored fits, which today's code does not reproduce, and it holds both
  regimes only for a while: two epochs later (c = 1.2, p-values 0.12 and
  above) 0.7% of its mass was left at sW > -0.6;
* started on 2,000 draws about the 77 of 200,000 uniform draws that have
  the property, jittered by 0.1: converged at epoch 3 (352 s), entropy
  -0.47, 53% of the mass at sW < -0.6, the spread right (0.076, 0.078),
  but two findings failed: lowering the task eigenvalue raised Anti
  accuracy at the low-sW mode, and the diagonal eigenvalue acted the same
  way in both regimes.

Each stayed near the split it started with (73% to 78%, and 47% to 53%, at
sW < -0.6), so the split comes from the start, not from the maximum.

``ALParams.c0`` weighs the violations in units of the targets' spreads
(0.075 for the means, 0.075^2 for the variances); the paper's c0 = 100
weighed them in accuracy units.

At commit 34ff929 (TensorFlow 2.21) this script's high-sW fit did not stay
in its regime: it drifted to sW of -1.28 to -0.22 over 11 epochs (55
minutes on one thread beside other work), so the gallery keeps the fits an
earlier version made (``plot_sc_task_switching.py`` says more).

A training iteration costs about 0.12 s on 2 CPU cores (``python -m
benchmarks --sections simulators``); each fit took 31 minutes on one
thread beside another fit. With
``--checkpoint DIR`` a killed run continues where it stopped.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.circuits import SC_BOUNDS, SC_MU, SC_SIGMA2, sc_task_accuracy

DATA = Path(__file__).resolve().parent / "data"
parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", type=Path, help="directory of per-epoch checkpoints")
parser.add_argument("--out", type=Path, default=DATA, help="directory of the two fits")
parser.add_argument("--only", choices=["high_sW", "low_sW"], help="fit one of the two regimes")
args = parser.parse_args()
statistic = sc_task_accuracy(n_trials=200)
low, high = np.array(list(SC_BOUNDS.values())).T


def fit(init, checkpoint=None):
    est = EPIEstimator(
        statistic,
        SC_BOUNDS,
        # The paper's standard normal base (one mode), as the stored fit used.
        flow=RealNVP(num_stages=3, num_layers=2, num_units=50, base_modes=1),
        al_params=ALParams(
            c0=0.1, beta=2.0, batch_size=100, num_iters=600, max_epochs=15, init_iters=500
        ),
        init=init,
        n_test=100,
        random_state=0,
        verbose=2,
        checkpoint=checkpoint,
    )
    start = time.perf_counter()
    est.fit(SC_MU, SC_SIGMA2)
    print(
        f"wall time {time.perf_counter() - start:.0f} s; converged={est.converged_} at "
        f"epoch {est.epoch_}; entropy={est.entropy_:.3f} nats; p-values={est.pvalues_}"
    )
    return est


def brute_force():
    """Step 1: the draws whose two accuracies lie in 60-90%, and the accuracy function."""
    start = time.perf_counter()
    draws = np.random.default_rng(1).uniform(low, high, (60_000, 4)).astype(np.float32)
    accuracy = tf.function(lambda z, seed: statistic(z, seed=seed), jit_compile=True)
    P = np.concatenate(
        [
            accuracy(tf.constant(draws[i : i + 2000]), tf.constant([2, i])).numpy()
            for i in range(0, len(draws), 2000)
        ]
    )
    kept = draws[np.all((P > 0.6) & (P < 0.9), axis=1)]
    print(
        f"brute force: {len(kept)} of {len(draws)} draws kept ({time.perf_counter() - start:.0f} s)"
    )
    return kept, accuracy


def closest(kept, accuracy, std=0.1):
    """The kept draw whose neighbourhood N(z, std^2) comes closest to the property."""
    target = np.concatenate([SC_MU, SC_SIGMA2])
    units = np.concatenate([np.sqrt(SC_SIGMA2), SC_SIGMA2])

    def violation(i, z):
        near = np.random.default_rng(i).normal(z, std, (1000, 4)).clip(low + 1e-3, high - 1e-3)
        p = accuracy(tf.constant(near, tf.float32), tf.constant([3, i])).numpy()
        T = np.concatenate([p.mean(axis=0), ((p - SC_MU) ** 2).mean(axis=0)])
        return np.abs((T - target) / units).max()

    return kept[np.argmin([violation(i, z) for i, z in enumerate(kept)])]


# Step 2: one fit per regime, each from a Gaussian about a kept draw.
kept, accuracy = brute_force()
args.out.mkdir(parents=True, exist_ok=True)
for name, below in {"high_sW": None, "low_sW": -1.0}.items():
    if args.only and name != args.only:
        continue
    path = args.out / f"sc_{name}.npz"
    start = closest(kept if below is None else kept[kept[:, 0] < below], accuracy)
    print(f"{name}: initial Gaussian N({start.round(2)}, 0.1^2)")
    checkpoint = None if args.checkpoint is None else args.checkpoint / name
    fit({"mean": start, "std": 0.1}, checkpoint).save(path)
    print(f"saved {path} ({path.stat().st_size / 1e3:.0f} kB)")
