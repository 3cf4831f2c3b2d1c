"""What checkpointing every epoch costs a fit (goal: under 2% of its wall time).

A fit with ``checkpoint=<directory>`` writes each seed's state after every
epoch (``sklearn_epi._checkpoint.save_seed``). Two whole fits, with and
without, differ by less than their run-to-run noise on a shared machine, so
this section times the writes themselves inside one checkpointed fit: the
ratio is the writes' total time over the fit's wall time, on the paper's
oscillator (defaults) and on the RNN at N = 50 (D = 200, the largest flow of
the paper's scaling study). ``--quick`` fits two short epochs of the
oscillator: a smoke test, not a measurement.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sklearn_epi import EPIEstimator, _checkpoint

from . import problems


def timed_fit(problem, quick=False):
    """Wall time of a checkpointed fit, the time spent writing, epochs and checkpoint size."""
    writes = []
    save = _checkpoint.save_seed

    def timed_save(*args, **kwargs):
        start = time.perf_counter()
        save(*args, **kwargs)
        writes.append(time.perf_counter() - start)

    al = {"num_iters": 200, "max_epochs": 2, "init_iters": 100} if quick else {}
    with tempfile.TemporaryDirectory() as directory:
        est = EPIEstimator(**problem.estimator_kwargs(**al), random_state=0, checkpoint=directory)
        _checkpoint.save_seed = timed_save
        try:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(problem.mu, problem.sigma2)
            wall = time.perf_counter() - start
        finally:
            _checkpoint.save_seed = save
        size = max(p.stat().st_size for p in Path(directory).glob("seed-*.pkl"))
    return wall, float(np.sum(writes)), len(writes), size


def run(quick=False):
    chosen = [problems.oscillator()] if quick else [problems.oscillator(), problems.rnn(50)]
    rows = []
    for problem in chosen:
        wall, writing, n_writes, size = timed_fit(problem, quick)
        rows.append(
            {
                "section": "checkpoint",
                "benchmark": f"{problem.name}: time writing checkpoints / fit time",
                "value": writing,
                "baseline": wall,
                "unit": "s",
                "ratio": writing / wall,
                "goal": "<= 0.02",
                "met": None if quick else bool(writing / wall <= 0.02),
                "notes": f"{n_writes} writes, {1e3 * writing / n_writes:.0f} ms each; "
                f"largest file {size / 1e6:.1f} MB",
            }
        )
    return rows
