"""Fit the EPI distribution of rapid task switching in the SC model.

Run from the repository root (``python examples/fit_sc.py``); it writes
``examples/data/sc_task_switching.joblib``, which
``plot_sc_task_switching.py`` loads. Settings follow the paper (Methods,
"EPI details for the SC model": real NVP with three coupling stages of
2 x 50 units, support [-5, 5]^4, beta = 2, batch 100, 200 trials per
accuracy) with 600 iterations per epoch, up to 15 epochs, one seed instead
of five, and N_test = 100 instead of 25 (a stricter test). The paper's
c0 = 100 weighs the violations in accuracy units; ``ALParams.c0`` weighs
them in units of the targets' spread (0.075 for the means), where it is
100 x 0.075^2, about 0.5. A training iteration costs about 0.12 s on 2 CPU
cores (``python -m benchmarks --sections simulators``), the fit about 20
minutes. With ``--checkpoint DIR`` a killed run continues where it stopped.
"""

import argparse
import time
from pathlib import Path

import joblib

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.circuits import SC_BOUNDS, SC_MU, SC_SIGMA2, sc_task_accuracy

parser = argparse.ArgumentParser()
parser.add_argument("--checkpoint", type=Path, help="directory of per-epoch checkpoints")
args = parser.parse_args()
OUT = Path(__file__).resolve().parent / "data" / "sc_task_switching.joblib"

est = EPIEstimator(
    sc_task_accuracy(n_trials=200),
    SC_BOUNDS,
    flow=RealNVP(num_stages=3, num_layers=2, num_units=50),
    al_params=ALParams(
        c0=0.5, beta=2.0, batch_size=100, num_iters=600, max_epochs=15, init_iters=500
    ),
    n_test=100,
    random_state=0,
    verbose=2,
    checkpoint=args.checkpoint,
)
start = time.perf_counter()
est.fit(SC_MU, SC_SIGMA2)
print(
    f"wall time {time.perf_counter() - start:.0f} s; converged={est.converged_} at epoch "
    f"{est.epoch_}; entropy={est.entropy_:.3f} nats; p-values={est.pvalues_}"
)
OUT.parent.mkdir(exist_ok=True)
joblib.dump(est, OUT)
print(f"saved {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")
