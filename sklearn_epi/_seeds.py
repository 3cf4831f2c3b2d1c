"""Running the seeds of a fit through joblib, so that no seed's failure loses another's work."""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from joblib.externals.loky.process_executor import TerminatedWorkerError

from ._validation import user_stacklevel
from .optimize import SeedResult, fit_seed

__all__ = ["run_seeds", "seed_tables", "usable_seeds"]


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
    return _failed_seed(index, seed, "skipped: the fit was interrupted before this seed ran", "")


def _lost_seed(index, seed, exc, started):
    """Failed result of a seed whose worker pool died before it returned."""
    codes = re.search(r"exit codes of the workers are \{([^}]*)\}", str(exc))
    codes = codes.group(1) if codes else "unknown"
    if started:
        message = (
            f"killed: its worker process died while it ran (exit codes {codes}; "
            "SIGKILL(-9) is what the out-of-memory killer sends)"
        )
    else:
        message = f"not run: a worker process died before this seed started (exit codes {codes})"
    return _failed_seed(index, seed, message, f"{type(exc).__name__}: {exc}")


def _failed_seed(index, seed, message, trace):
    return SeedResult(
        seed_index=index,
        seed=seed,
        weights=None,
        converged=False,
        failed=not message.startswith("skipped"),
        epoch=None,
        entropy=np.nan,
        entropy_se=np.nan,
        eta=None,
        c=np.nan,
        history=pd.DataFrame(),
        n_iter=0,
        wall_time=np.nan,
        jit_compile=False,
        message=message,
        traceback=trace,
        interrupted=message.startswith("skipped"),
    )


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
            "epoch": pd.array([r.epoch for r in results], dtype="Int64"),
            "n_iter": [r.n_iter for r in results],
            "n_simulations": [r.n_simulations for r in results],
            "wall_time": [r.wall_time for r in results],
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
        if not usable and any(
            r.message.startswith(("max_time", "stopped by max_time")) for r in results
        ):
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
    failed = [r for r in results if r.failed and not r.interrupted]
    if failed:
        warnings.warn(
            "; ".join(f"seed {r.seed_index}: {r.message}" for r in failed)
            + ". Those seeds are marked failed in seeds_ (with tracebacks); their last "
            "usable epochs and the other seeds are kept",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )
    return usable
