"""How much entropy the RNN's kept epoch leaves against running on to a plateau.

The RNN of stable amplification has no known maximum, so its reference is
the fit itself run on long after convergence: ``patience=None`` and many
more epochs than the defaults use (``MAX_EPOCHS``), every epoch's test
recorded by an epoch-end callback. The same records say where the
defaults would have stopped and what they would have kept: the stop rule
(:func:`~sklearn_epi.convergence.patience_ran_out`) and the keep rule
(:func:`~sklearn_epi.convergence.kept_epoch`) are applied to each prefix
of the run, exactly as the fit applies them after each epoch (stopping
does not change the course before it: ``c``, ``eta`` and the random
stream do not depend on ``patience``).

Per run:

* the plateau, ``H_plateau``: the median entropy of the converged epochs
  in the last third of the run, and its drift, the slope of the entropy
  over that third (nats per 10 epochs), which says whether it is one;
* for each ``patience`` in ``PATIENCES`` (2 is the default): the epoch it
  stops at, the epoch it keeps, the entropy kept and the wall time to the
  stop;
* ``share``: the gap ``H_plateau - H_kept`` as a share of the fit's
  entropy span, ``H_plateau - H_start`` (``H_start`` the first epoch's
  test, 500 steps from the Gaussian start): the goal is at most 1% with
  the defaults.

``python -m benchmarks --sections plateau --sizes 10 25 50 100 --seeds 3``;
every epoch of every run is written to ``results/plateau_runs.csv``, and
:func:`summarise` reads it back, so a stop rule can be judged on the
recorded runs without fitting again.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from sklearn_epi import EPIEstimator, EpochCallback
from sklearn_epi.convergence import kept_epoch, patience_ran_out

from . import problems

#: Epochs per run, by N: two to three times the epochs the defaults need
#: to converge (19-29 in the time-to-property section).
MAX_EPOCHS = {2: 50, 10: 60, 25: 60, 50: 60, 100: 70, 200: 90}
#: Stop rules judged on the recorded runs; 2 is ``ALParams``' default.
PATIENCES = (2, 4, 8)
#: The goal: the defaults keep within this share of the entropy span.
GOAL_SHARE = 0.01
FIELDS = (
    "N",
    "seed",
    "epoch",
    "iteration",
    "entropy",
    "entropy_se",
    "converged",
    "reached",
    "c",
    "moment_error",
    "seconds",
)


class EpochLog(EpochCallback):
    """Every epoch's test as a plain row (the fields of :data:`FIELDS`)."""

    def __init__(self, N, seed):
        self.N, self.seed, self.rows, self.start = N, seed, [], time.perf_counter()

    def on_epoch_end(self, record):
        self.rows.append(
            {
                "N": self.N,
                "seed": self.seed,
                "epoch": record.epoch,
                "iteration": record.iteration,
                "entropy": float(record.entropy),
                "entropy_se": float(record.entropy_se),
                "converged": bool(record.converged),
                "reached": bool(record.reached),
                "c": float(record.c),
                "moment_error": float(record.moment_error),
                "seconds": time.perf_counter() - self.start,
            }
        )


def one_run(N, seed, max_epochs):
    """Every epoch's row of the default RNN fit of N neurons run to ``max_epochs``."""
    problem = problems.rnn(N)
    est = EPIEstimator(
        **problem.estimator_kwargs(max_epochs=max_epochs, patience=None),
        random_state=seed,
        n_jobs=None,
    )
    log = EpochLog(N, seed)
    problems.quiet_fit_seconds(est.set_params(callbacks=[log]), problem.mu, problem.sigma2)
    return log.rows


def _records(rows):
    # What kept_epoch and patience_ran_out read from an epoch record.
    return [
        SimpleNamespace(
            epoch=int(r["epoch"]),
            entropy=float(r["entropy"]),
            converged=r["converged"] in (True, "True"),
            worst_t=np.inf,
            seconds=float(r["seconds"]),
            iteration=int(r["iteration"]),
        )
        for r in rows
    ]


def stop_and_keep(epochs, patience):
    """``(stop epoch, kept record)`` of a fit with ``patience``; stop is None if it ran out."""
    for end in range(1, len(epochs) + 1):
        if patience_ran_out(epochs[:end], patience):
            return epochs[end - 1], kept_epoch(epochs[:end])
    return None, kept_epoch(epochs)


def plateau(epochs):
    """Median converged entropy of the last third of the run and its slope per 10 epochs."""
    last = epochs[-max(3, len(epochs) // 3) :]
    converged = [e for e in last if e.converged] or last
    x = np.array([e.epoch for e in converged], float)
    y = np.array([e.entropy for e in converged])
    slope = 10 * np.polyfit(x, y, 1)[0] if len(x) > 1 else np.nan
    return float(np.median(y)), float(slope)


def summarise(rows):
    """One dict per run (N, seed) from the epoch rows of :func:`one_run` or the CSV."""
    runs = {}
    for r in rows:
        runs.setdefault((int(r["N"]), int(r["seed"])), []).append(r)
    out = []
    for (N, seed), run_rows in sorted(runs.items()):
        epochs = _records(sorted(run_rows, key=lambda r: int(r["epoch"])))
        h_plateau, drift = plateau(epochs)
        span = h_plateau - epochs[0].entropy
        first = next((e for e in epochs if e.converged and e.epoch > 0), None)
        result = {
            "N": N,
            "seed": seed,
            "epochs_run": epochs[-1].epoch,
            "H_start": epochs[0].entropy,
            "first_converged": first.epoch if first else np.nan,
            "H_first": first.entropy if first else np.nan,
            "H_plateau": h_plateau,
            "drift_per_10": drift,
            "H_best": kept_epoch(epochs).entropy,
        }
        for p in PATIENCES:
            stop, kept = stop_and_keep(epochs, p)
            gap = h_plateau - kept.entropy if kept is not None and kept.converged else np.nan
            result.update(
                {
                    f"p{p}_stop": stop.epoch if stop else np.nan,
                    f"p{p}_kept": kept.epoch if kept and kept.converged else np.nan,
                    f"p{p}_H": kept.entropy if kept and kept.converged else np.nan,
                    f"p{p}_gap": gap,
                    f"p{p}_share": gap / abs(span),
                    f"p{p}_seconds": (stop or epochs[-1]).seconds,
                }
            )
        out.append(result)
    return out


def _summary_rows(results):
    rows = []
    for N in sorted({r["N"] for r in results}):
        runs = [r for r in results if r["N"] == N]
        shares = [r["p2_share"] for r in runs]
        worst = float(np.nanmax(np.abs(shares))) if np.isfinite(shares).any() else np.nan
        rows.append(
            {
                "section": "plateau",
                "benchmark": f"rnn N={N} (D={4 * N}): defaults' gap to the plateau / span",
                "value": worst,
                "unit": "share",
                "baseline": np.nan,
                "ratio": np.nan,
                "goal": f"<= {GOAL_SHARE}",
                "met": bool(np.all(np.abs(shares) <= GOAL_SHARE)),
                "notes": "; ".join(
                    f"seed {r['seed']}: kept {r['p2_kept']} H {r['p2_H']:.2f}, plateau "
                    f"{r['H_plateau']:.2f} (drift {r['drift_per_10']:+.2f}/10 ep), "
                    f"gap {r['p2_gap']:+.2f}"
                    for r in runs
                ),
            }
        )
    return rows


def run(quick=False, sizes=None, n_seeds=None, out=None):
    """Summary rows per N; every epoch's row is written to ``out`` (CSV) as runs finish."""
    sizes = sizes or ((2,) if quick else (10, 25, 50, 100))
    n_seeds = n_seeds or (1 if quick else 3)
    out = Path(out) if out else Path(__file__).with_name("results") / "plateau_runs.csv"
    out.parent.mkdir(exist_ok=True)
    rows = []
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        writer.writeheader()
        # Seed by seed, every N in each: a run cut short still has every N.
        for seed in range(n_seeds):
            for N in sizes:
                run_rows = one_run(N, seed, 6 if quick else MAX_EPOCHS.get(N, 60))
                writer.writerows(run_rows)
                fh.flush()
                rows += run_rows
    return _summary_rows(summarise(rows))


def read(path):
    """The epoch rows of a CSV written by :func:`run`."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
