"""Queries of a fitted flow: Hessians of log q per second, samples per second, memory.

Uses the compiled functions ``EPIEstimator.hessian`` and ``.sample`` run
(``sklearn_epi._queries.FittedFunctions``) on flows of the paper's sizes:
D = 4 (oscillator flow), D = 40 and D = 200 (RNN flows, N = 10 and 50). The
weights are the flow's initial ones perturbed at random, so every stage is
far from the identity; cost does not depend on the values. As evidence for
possible changes, the same Hessian under ``jit_compile=True`` is timed too.

:func:`memory` measures the peak memory beyond the result of
``EPIEstimator.sample`` and ``.hessian``, chunked within scikit-learn's
``working_memory`` (the package) against one chunk for all rows (the
baseline), each in a fresh process.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import tensorflow as tf

from sklearn_epi import EPIEstimator
from sklearn_epi._queries import FittedFunctions

from . import problems


def _perturbed_flow(problem, seed=0):
    spec = problem.seed_spec()
    flow = spec.flow.build(spec.support, seed=seed)
    rng = np.random.default_rng(seed)
    flow.set_weights([w + 0.05 * rng.standard_normal(w.shape) for w in flow.get_weights()])
    return flow


def _best_seconds(fn, repeats):
    fn()  # trace and compile
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick=False):
    repeats = 2 if quick else 3
    cases = [(problems.oscillator(), 1000), (problems.rnn(10), 200)]
    cases += [] if quick else [(problems.rnn(50), 50)]
    rows = []
    for problem, n_points in cases:
        flow = _perturbed_flow(problem)
        fns = FittedFunctions(flow)
        z, _ = fns.sample(n_points, tf.constant([0, 1]))
        # The package's query (XLA, rows padded to a power of two) against
        # the same function as a plain graph.
        package = _best_seconds(lambda: fns.hessian(z).numpy(), repeats)
        plain = _best_seconds(lambda: fns.hessian.plain(z).numpy(), repeats)
        rows.append(
            {
                "section": "queries",
                "benchmark": f"Hessians of log q, D={problem.dim}",
                "value": n_points / package,
                "baseline": n_points / plain,
                "unit": "1/s",
                "ratio": plain / package,
                "goal": "> 1",
                "met": plain > package,
                "notes": f"{n_points} points per call; baseline: plain graph (no XLA)",
            }
        )
    n = 20_000 if quick else 100_000
    fns = FittedFunctions(_perturbed_flow(problems.rnn(50)))
    seed = tf.constant([0, 2])
    seconds = _best_seconds(lambda: fns.sample(n, seed)[0].numpy(), repeats)
    rows.append(
        {
            "section": "queries",
            "benchmark": "samples (+ log q) of q, D=200",
            "value": n / seconds,
            "baseline": np.nan,
            "unit": "1/s",
            "ratio": np.nan,
            "goal": "",
            "met": None,
            "notes": f"{n} per call",
        }
    )
    return rows


_PEAK_SCRIPT = """
import resource, sys, joblib, sklearn
est = joblib.load(sys.argv[1])
n, query, working_memory = int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
Z = est.sample(256, random_state=1)
est.hessian(Z[:8])  # load TF's kernels before the baseline reading
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with sklearn.config_context(working_memory=working_memory):
    if query == "sample":
        out = est.sample(n, random_state=0)
    else:
        out = est.hessian(est.sample(n, random_state=0))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024 - out.nbytes, out.nbytes)
"""


def _tiny_fit(problem, path):
    est = EPIEstimator(
        **problem.estimator_kwargs(num_iters=1, max_epochs=1, init_iters=0), random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(problem.mu, problem.sigma2)
    joblib.dump(est, path)


def _peak_beyond_result(path, n, query, working_memory):
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path), str(n), query, str(working_memory)],
        check=True,
        capture_output=True,
        text=True,
    )
    extra, result = (int(v) for v in out.stdout.split())
    return extra / 2**20, result / 2**20


def memory(quick=False):
    """Peak memory beyond the result of large queries: chunked vs one chunk.

    Not in ``--quick`` (each case starts fresh processes); the test suite
    checks the bound on a large sample instead.
    """
    if quick:
        return []
    cases = [(problems.oscillator(), "sample", 20_000_000)]
    cases += [(problems.rnn(50), "hessian", 1024)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for problem, query, n in cases:
            path = Path(tmp, f"{problem.dim}.joblib")
            if not path.exists():
                _tiny_fit(problem, path)
            chunked, result = _peak_beyond_result(path, n, query, 1024)
            whole, _ = _peak_beyond_result(path, n, query, 1e9)
            rows.append(
                {
                    "section": "queries",
                    "benchmark": f"memory beyond the result, {query}({n:.0e}), D={problem.dim}",
                    "value": chunked,
                    "baseline": whole,
                    "unit": "MiB",
                    "ratio": whole / max(chunked, 1.0),
                    "goal": "<= 1024",
                    "met": chunked <= 1024,
                    "notes": f"result {result:.0f} MiB; baseline: one chunk (no working_memory)",
                }
            )
    return rows
