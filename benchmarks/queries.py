"""Queries of a fitted flow: Hessians of log q per second and samples per second.

Uses the compiled functions ``EPIEstimator.hessian`` and ``.sample`` run
(``sklearn_epi.estimator._FittedFunctions``) on flows of the paper's sizes:
D = 4 (oscillator flow), D = 40 and D = 200 (RNN flows, N = 10 and 50). The
weights are the flow's initial ones perturbed at random, so every stage is
far from the identity; cost does not depend on the values. As evidence for
possible changes, the same Hessian under ``jit_compile=True`` is timed too.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from sklearn_epi.estimator import _FittedFunctions

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
        fns = _FittedFunctions(flow)
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
    fns = _FittedFunctions(_perturbed_flow(problems.rnn(50)))
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
