"""Seeds in parallel: ``n_jobs=2`` against one process, and per-worker thread caps.

Both measurements fit 4 seeds of the same short problem. joblib's worker
processes are started (and TensorFlow imported in them) before the clock
starts, as they are in any fit after the first; TensorFlow's thread pools are
not yet created there, so the caps of ``SeedSpec.threads`` still apply.
"""

from __future__ import annotations

import time
import warnings

from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor

from sklearn_epi import EPIEstimator
from sklearn_epi.optimize import fit_seed

from . import problems


def _import_tensorflow():
    import sklearn_epi.optimize  # noqa: F401 - imports TF without creating its thread pools


def _fresh_workers(n_jobs):
    """Start new loky workers with TF imported, so no pool settings leak between runs."""
    get_reusable_executor().shutdown(wait=True)
    Parallel(n_jobs=n_jobs)(delayed(_import_tensorflow)() for _ in range(n_jobs))


def _problem(quick):
    # --quick checks that the section runs: the oscillator, the cheapest compile.
    if quick:
        return problems.oscillator(), {"num_iters": 100, "max_epochs": 1, "init_iters": 100}
    return problems.rnn(10), {"num_iters": 500, "max_epochs": 4, "init_iters": 500}


def parallel_seeds(quick=False, n_seeds=None):
    n_seeds = n_seeds or (2 if quick else 4)
    problem, al = _problem(quick)
    kwargs = dict(problem.estimator_kwargs(**al), n_seeds=n_seeds, random_state=0)
    times = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        EPIEstimator(**kwargs, n_jobs=None).fit(problem.mu, problem.sigma2)
        times["sequential"] = time.perf_counter() - start
        _fresh_workers(2)
        start = time.perf_counter()
        EPIEstimator(**kwargs, n_jobs=2).fit(problem.mu, problem.sigma2)
        times["parallel"] = time.perf_counter() - start
    ratio = times["parallel"] / times["sequential"]
    return [
        {
            "section": "parallel",
            "benchmark": f"{n_seeds} seeds, n_jobs=2 vs sequential, {problem.name}",
            "value": times["parallel"],
            "baseline": times["sequential"],
            "unit": "s",
            "ratio": ratio,
            "goal": "<= 0.6",
            "met": ratio <= 0.6,
            "notes": f"{al['max_epochs']} epochs x {al['num_iters']} it per seed; warm workers",
        }
    ]


def thread_caps(quick=False, n_seeds=4):
    """4 seeds through joblib with ``SeedSpec.threads=1`` (as fit sets it) vs ``None``."""
    problem, al = _problem(quick)
    times = {}
    for threads in (1, None):
        spec = problem.seed_spec(al=problem.al.set_params(**al), threads=threads)
        _fresh_workers(2)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Parallel(n_jobs=2)(
                delayed(fit_seed)(spec, seed, i) for i, seed in enumerate(range(n_seeds))
            )
        times[threads] = time.perf_counter() - start
    ratio = times[None] / times[1]
    return [
        {
            "section": "optimisations",
            "benchmark": f"thread caps in workers (n_jobs=2), {problem.name}",
            "value": times[1],
            "baseline": times[None],
            "unit": "s",
            "ratio": ratio,
            "goal": "> 1",
            "met": ratio > 1,
            "notes": "4 seeds; threads=1 per worker vs TF default pools",
        }
    ]


def run(quick=False):
    return parallel_seeds(quick) + ([] if quick else thread_caps())
