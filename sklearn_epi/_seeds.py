"""Running the seeds of a fit through joblib, so that no seed's failure loses another's work."""

from __future__ import annotations

import re
import signal
import tempfile
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_memory

from ._seed_state import STATUSES, SeedResult
from ._validation import (
    _check_dtype,
    _check_init,
    _check_precision,
    _check_targets,
    _probe_statistic,
    _resolve_al_params,
    user_stacklevel,
)
from .flows import RealNVP
from .optimize import SeedSpec, fit_seed
from .property import EmergentProperty
from .support import parse_bounds

__all__ = [
    "run_seeds",
    "seed_tables",
    "usable_seeds",
    "sigterm_as_interrupt",
    "seed_spec",
    "warn_not_converged",
]


@contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt, so a fit ends as on Ctrl-C.

    Only in the main thread and where nobody else handles SIGTERM (a
    handler already set, by dask or the user, is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run_seeds(spec, seeds, n_jobs, indices=None):
    """Fit every seed (or those at ``indices``) through joblib, keeping every seed that finished.

    On Ctrl-C, or when a worker process dies (killed, out of memory), the
    seeds already returned are kept; each unfinished seed gets a failed
    result saying why: the signal that ended its worker, if it was running,
    or that it never started. Returns the results in seed order and whether
    the fit was interrupted.
    """
    with tempfile.TemporaryDirectory(prefix="sklearn_epi_seeds_") as started:
        tasks = (
            delayed(_fit_seed_task)(spec, int(seed), index, started)
            for index, seed in enumerate(seeds)
            if indices is None or index in indices
        )
        results, interrupted = [], False
        try:
            # A sequential run catches Ctrl-C inside fit_seed (which keeps the
            # seed's epochs) and stops there: the generator runs a seed only
            # when asked for its result. With workers, Ctrl-C arrives here.
            for result in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
                results.append(result)
                if result.interrupted:
                    break
        except KeyboardInterrupt:
            interrupted = True
        except TerminatedWorkerError as exc:
            done = {r.seed_index for r in results}
            results += [
                _lost_seed(index, int(seed), exc, Path(started, f"seed-{index}").exists())
                for index, seed in enumerate(seeds)
                if index not in done
            ]
    done = {r.seed_index for r in results}
    results += [
        _skipped_seed(index, int(seed)) for index, seed in enumerate(seeds) if index not in done
    ]
    results.sort(key=lambda r: r.seed_index)
    return results, interrupted or any(r.interrupted for r in results)


def _fit_seed_task(spec, seed, index, started):
    """:func:`fit_seed` in a worker, leaving a mark that the seed started."""
    try:
        Path(started, f"seed-{index}").touch()
    except OSError:  # a remote worker (dask, ray) without the parent's disk
        pass
    return fit_seed(spec, seed, index)


def _skipped_seed(index, seed):
    """Result of a seed that never ran because the fit was interrupted first."""
    return SeedResult.without_epochs(
        index, seed, "not run", "skipped: the fit was interrupted before this seed ran"
    )


def _lost_seed(index, seed, exc, started):
    """Result of a seed whose worker pool died before it returned."""
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    codes = codes.group(1) if codes else "unknown"
    trace = f"{type(exc).__name__}: {exc}"
    if started:
        message = (
            f"killed: its worker process died while it ran (exit codes {codes}; "
            "SIGKILL(-9) is what the out-of-memory killer sends)"
        )
        return SeedResult.without_epochs(index, seed, "failed", message, trace)
    message = f"not run: a worker process died before this seed started (exit codes {codes})"
    return SeedResult.without_epochs(index, seed, "failed", message, trace)


def seed_tables(results):
    """``history_`` (every seed's rows) and ``seeds_`` (one row per seed) of a fit."""
    # A seed lost with its worker process has no history at all.
    histories = [r.history for r in results if len(r.history)]
    history = pd.concat(histories, ignore_index=True) if histories else pd.DataFrame()
    seeds = pd.DataFrame(
        {
            "seed": [r.seed_index for r in results],
            "random_seed": [r.seed for r in results],
            "converged": [r.converged for r in results],
            "entropy": [r.entropy for r in results],
            "entropy_se": [r.entropy_se for r in results],
            "entropy_corrected": [r.entropy - r.slack for r in results],
            "moment_error": [r.moment_error for r in results],
            "epoch": pd.array([r.epoch for r in results], dtype="Int64"),
            "n_iter": [r.n_iter for r in results],
            "n_simulations": [r.n_simulations for r in results],
            "wall_time": [r.wall_time for r in results],
            "status": pd.Categorical([r.status for r in results], categories=STATUSES),
            "failed": [r.failed for r in results],
            "message": [r.message for r in results],
            "traceback": [r.traceback for r in results],
            "jit_compile": [r.jit_compile for r in results],
        }
    )
    return history, seeds


def usable_seeds(results, interrupted):
    """The seeds with a usable epoch; say what happened to the others.

    Warns once for an interrupt and once for failed seeds, naming each; raises
    ``KeyboardInterrupt`` or ``RuntimeError`` (listing every seed's cause and
    traceback) when no seed has a usable epoch.
    """
    usable = [r for r in results if r.weights is not None]
    if interrupted:
        if not usable and any(r.status == "out of time" for r in results):
            raise RuntimeError(
                "max_time reached before any epoch of any seed finished; allow more time"
            )
        if not usable:
            raise KeyboardInterrupt("fit interrupted before any epoch of any seed finished")
        warnings.warn(
            "fit interrupted: keeping the best epoch so far of the seeds that ran "
            f"({'; '.join(f'seed {r.seed_index}: {r.message}' for r in results if r.message)})",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if not usable:
        where = "\n".join(
            f"seed {r.seed_index} (random seed {r.seed}): {r.message}"
            + (f"\n{r.traceback}" if r.traceback else "")
            for r in results
        )
        raise RuntimeError(f"every seed failed; no epoch is usable:\n{where}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        warnings.warn(
            "; ".join(f"seed {r.seed_index}: {r.message}" for r in failed)
            + ". Those seeds are marked failed in seeds_ (with tracebacks); their last "
            "usable epochs and the other seeds are kept",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return usable


def seed_spec(est, mu, sigma2) -> SeedSpec:
    """Every parameter and the property checked, before any TensorFlow work."""
    est._validate_params()
    for i, callback in enumerate(est.callbacks or ()):
        if not callable(callback) and not hasattr(callback, "on_epoch_end"):
            raise InvalidParameterError(
                f"The 'callbacks' parameter of {type(est).__name__} must hold callables or "
                f"EpochCallbacks. Got callbacks[{i}] = {callback!r} instead."
            )
    flow = RealNVP() if est.flow is None else est.flow
    flow._validate()
    al = _resolve_al_params(est.al_params)
    al._validate()
    if al.batch_size < 2 * flow.base_modes:
        raise ValueError(
            f"al_params.batch_size must be at least 2 * flow.base_modes = "
            f"{2 * flow.base_modes} (each half-batch draws from every base mode); "
            f"got {al.batch_size}"
        )
    dtype = _check_dtype(est.dtype)
    support = parse_bounds(est.bounds)
    mu, sigma2, names = _check_targets(mu, sigma2)
    init_mean, init_std, init_samples = _check_init(est.init, support)
    _check_precision(dtype, mu, sigma2, support, init_mean, init_std)
    _probe_statistic(est.statistic, init_mean, len(mu))
    n_test = al.batch_size if est.n_test is None else est.n_test
    prop = EmergentProperty(mu, sigma2, tuple(names), float(est.alpha), int(n_test))
    return SeedSpec(
        flow=flow,
        support=support,
        statistic=est.statistic,
        prop=prop,
        al=al,
        init_mean=init_mean,
        init_std=init_std,
        init_samples=init_samples,
        dtype=dtype,
        jit_compile=bool(est.jit_compile),
        verbose=int(est.verbose),
        memory=None if est.memory is None else check_memory(est.memory),
        callbacks=tuple(est.callbacks or ()),
    )


def warn_not_converged(results, best, prop) -> None:
    """The ``ConvergenceWarning`` of a fit whose kept seed did not converge, with the diagnosis."""
    ranges = [r.statistic_range for r in results if r.statistic_range is not None]
    where = None if not ranges else (np.min(ranges, axis=0)[0], np.max(ranges, axis=0)[1])
    warnings.warn(
        "no seed converged to the emergent property; "
        f"{prop.diagnose(best.pvalues, where, best.moment_error)}. "
        "For a budget shortfall: more iterations or epochs (al_params), more seeds, or a "
        "larger c0.",
        ConvergenceWarning,
        stacklevel=user_stacklevel(),
    )
