"""A first fit's fixed cost in a new process, with XLA's persistent cache empty and filled.

Each measurement is a new Python process (what a command-line rerun or a
job array's next task is): it imports the package, then fits the problem
twice with one short epoch. The second fit reuses the first one's compiled
functions (the process's pool), so the difference of the two is the fixed
cost a process pays before its first iteration: tracing the training
functions and compiling them with XLA. The first process runs with an empty
cache directory (cold: every program is compiled, as without a cache), the
second with the directory the first filled (warm: XLA loads the programs).
The package's import is timed apart (TensorFlow's start), since no cache
of ours can shorten it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sklearn_epi import _compile_cache

ROOT = Path(__file__).resolve().parents[1]

MEASURE = """
import json, sys, time, warnings
start = time.perf_counter()
import sklearn_epi
imported = time.perf_counter() - start
from benchmarks import problems
problem = problems.oscillator() if sys.argv[1] == "oscillator" else problems.rnn(int(sys.argv[1]))
times = []
for _ in range(2):
    est = sklearn_epi.EPIEstimator(
        **problem.estimator_kwargs(num_iters=20, init_iters=20, max_epochs=1), random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        est.fit(problem.mu, problem.sigma2)
        times.append(time.perf_counter() - start)
print(json.dumps({"import": imported, "first": times[0], "second": times[1]}))
"""


def _process(problem, cache) -> dict:
    env = {**os.environ, _compile_cache.VARIABLE: str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_XLA_FLAGS", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, problem],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _row(benchmark, value, baseline, goal, met, notes):
    return {
        "section": "compile",
        "benchmark": benchmark,
        "value": value,
        "unit": "s",
        "baseline": baseline,
        "ratio": value / baseline if baseline else float("nan"),
        "goal": goal,
        "met": met,
        "notes": notes,
    }


def run(quick: bool = False) -> list:
    """Rows per problem: fixed cost cold and warm, and the package's import."""
    rows = []
    for problem in ["oscillator"] if quick else ["oscillator", "50"]:
        name = "oscillator" if problem == "oscillator" else f"RNN N={problem}"
        with tempfile.TemporaryDirectory() as cache:
            cold = _process(problem, cache)
            warm = _process(problem, cache)
        cold_fixed = cold["first"] - cold["second"]
        warm_fixed = warm["first"] - warm["second"]
        rows.append(_row(f"{name}: fixed cost, cold cache", cold_fixed, None, "", None, "compiles"))
        rows.append(
            _row(
                f"{name}: fixed cost, warm cache (vs cold)",
                warm_fixed,
                cold_fixed,
                "<= 2 s",
                warm_fixed <= 2.0,
                "a second process on the same problem",
            )
        )
        rows.append(_row(f"{name}: import sklearn_epi", warm["import"], None, "", None, "TF start"))
    return rows
