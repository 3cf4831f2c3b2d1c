"""Fit the EPI distributions of 5 Hz and 10 Hz E-population variability in V1.

Run from the repository root (``python examples/fit_v1.py``); it writes
``examples/data/v1_5hz.npz`` and ``examples/data/v1_10hz.npz``, which
``plot_v1_variability.py`` loads. Settings follow the paper (Methods, "EPI
details for the V1 model": real NVP with three coupling stages of 2 x 50
units, support [0, 0.5]^4, c0 = 0.1, beta = 2, batch 100, N_test = 100,
100 trials per s_E) with 600 instead of 2,000 iterations per epoch, up to 15
epochs, and one seed instead of three. Both constraints have unit spread
(sigma = 1 Hz, sigma^2 = 1 Hz^2), so ``ALParams.c0`` is the paper's value.
A training iteration costs about 0.11 s on 2 CPU cores (``python -m
benchmarks --sections simulators``), a fit about 20 minutes. With
``--checkpoint DIR`` a killed run continues where it stopped.
"""

import argparse
import time
from pathlib import Path

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.circuits import (
    V1_BOUNDS,
    V1_MU_5HZ,
    V1_MU_10HZ,
    V1_SIGMA2,
    v1_excitatory_variability,
)

parser = argparse.ArgumentParser()
parser.add_argument("--only", choices=["5hz", "10hz"], help="fit one of the two properties")
parser.add_argument("--checkpoint", type=Path, help="directory of per-epoch checkpoints")
args = parser.parse_args()
DATA = Path(__file__).resolve().parent / "data"
DATA.mkdir(exist_ok=True)

for label, mu in (("5hz", V1_MU_5HZ), ("10hz", V1_MU_10HZ)):
    if args.only and label != args.only:
        continue
    est = EPIEstimator(
        v1_excitatory_variability(n_trials=100),
        V1_BOUNDS,
        # The paper's standard normal base (one mode), as the stored fit used.
        flow=RealNVP(num_stages=3, num_layers=2, num_units=50, base_modes=1),
        al_params=ALParams(
            c0=0.1, beta=2.0, batch_size=100, num_iters=600, max_epochs=15, init_iters=500
        ),
        n_test=100,
        random_state=0,
        verbose=2,
        checkpoint=None if args.checkpoint is None else args.checkpoint / f"v1_{label}",
    )
    start = time.perf_counter()
    est.fit(mu, V1_SIGMA2)
    print(
        f"{label}: wall time {time.perf_counter() - start:.0f} s; converged={est.converged_} "
        f"at epoch {est.epoch_}; entropy={est.entropy_:.3f} nats; p-values={est.pvalues_}"
    )
    est.save(DATA / f"v1_{label}.npz")
