"""What checkpointing every epoch costs a fit (goal: under 2% of its wall time).

A fit with ``checkpoint=<directory>`` writes each seed's state after every
epoch (``sklearn_epi._checkpoint.save_seed``). Two whole fits, with and
without, differ by less than their run-to-run noise on a shared machine, so
this section times the writes themselves inside one checkpointed fit: the
ratio is the writes' total time over the fit's wall time, on the paper's
oscillator (defaults) and on the RNN at N = 50 (D = 200, the largest flow of
the paper's scaling study). ``--quick`` fits two short epochs of the
oscillator: a smoke test, not a measurement.

The same fit's last checkpoint and fitted estimator are then written and
read in the safe format (:mod:`sklearn_epi._safe_file`, what the package
writes) and as the pickles of sklearn_epi 0.1 that it replaced: time and
size, safe over pickle, best of five.
"""

from __future__ import annotations

import pickle
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sklearn_epi import EPIEstimator, _checkpoint, _safe_file, persistence

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
        size = max(p.stat().st_size for p in Path(directory).glob("seed-*.npz"))
        state = _checkpoint.load_seed(directory, 0, None)
    return wall, float(np.sum(writes)), len(writes), size, state, est


def _best_of(function, repeat=5):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - start)
    return min(times), out


def against_pickle(name, safe_dumps, safe_loads, pickle_dumps):
    """Rows of write time, read time and size: the safe format over pickle."""
    write, data = _best_of(safe_dumps)
    pickle_write, pickled = _best_of(pickle_dumps)
    read, _ = _best_of(lambda: safe_loads(data))
    pickle_read, _ = _best_of(lambda: pickle.loads(pickled))
    rows = []
    for what, value, baseline, unit in [
        ("write", write, pickle_write, "s"),
        ("read", read, pickle_read, "s"),
        ("size", len(data), len(pickled), "bytes"),
    ]:
        rows.append(
            {
                "section": "checkpoint",
                "benchmark": f"{name}: safe format / pickle, {what}",
                "value": value,
                "baseline": baseline,
                "unit": unit,
                "ratio": value / baseline,
                "goal": "-",
                "met": None,
                "notes": "best of 5" if unit == "s" else "",
            }
        )
    return rows


def run(quick=False):
    chosen = [problems.oscillator()] if quick else [problems.oscillator(), problems.rnn(50)]
    rows = []
    for problem in chosen:
        wall, writing, n_writes, size, state, est = timed_fit(problem, quick)
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
        rows += against_pickle(
            f"{problem.name} seed checkpoint",
            lambda: _safe_file.dumps(state, {"kind": "seed"}),
            lambda data: _safe_file.loads(data, "seed"),
            lambda: pickle.dumps({"format": 1, **state}, protocol=pickle.HIGHEST_PROTOCOL),
        )
        rows += against_pickle(
            f"{problem.name} fitted estimator",
            lambda: _safe_file.dumps(persistence.fit_content(est), {"kind": "fit"}),
            lambda data: persistence.estimator_from_content(_safe_file.loads(data, "fit")[0]),
            lambda: pickle.dumps(est, protocol=pickle.HIGHEST_PROTOCOL),
        )
    return rows
