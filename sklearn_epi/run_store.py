"""A store of EPI runs on disk: a repeated fit loads, every run and epoch is listed and loadable.

Give an estimator ``checkpoint=RunStore(directory)`` and each fit gets a
sub-directory of its own, named by a hash of what determines its result
(the statistic's content, bounds, property, flow, optimisation parameters,
the seeds), holding the per-epoch checkpoint of every seed
(:mod:`sklearn_epi._checkpoint`) and, once ``fit`` returns, the fitted
estimator ``fit.npz``. A fit with settings seen before resumes or, if it
had ended, loads its seeds instead of computing them; a grid search over
``al_params`` keeps one run per candidate. :func:`runs` lists every run,
seed and epoch of a store as a DataFrame, and :func:`load_run` returns the
estimator of any run at any of its epochs.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

from . import _checkpoint, _safe_file, persistence
from ._checkpoint import FIT_FILE, RunStore, run_key
from ._seed_state import Saved
from .persistence import load

__all__ = ["RunStore", "run_key", "runs", "load_run", "load"]


def _run_directories(directory) -> list:
    path = Path(directory)
    if not path.is_dir():
        raise ValueError(f"directory {path} does not exist or is not a directory")
    if (path / "run.json").is_file():
        return [path]  # one run (a plain checkpoint directory)
    return sorted(p for p in path.iterdir() if (p / "run.json").is_file())


def _seed_states(run) -> dict:
    """``{seed_index: (state, finished, result)}`` of every seed a run holds."""
    key = _checkpoint.key_of(run)
    return {index: _unwrap(_load_seed(run, index, key)) for index in _checkpoint.seed_indices(run)}


def _unwrap(data) -> tuple:
    """``(state, finished, result)`` of a seed's saved state, ended or not."""
    saved = Saved.from_file(data)
    return saved.state, saved.finished, saved.result


def _load_seed(run, index, key):
    try:
        saved = _checkpoint.load_seed(run, index, key)
    except ValueError as exc:
        raise ValueError(f"{exc}{_written_by(run)}") from exc
    return saved


def _written_by(run) -> str:
    """Which versions wrote a run, for an error message."""
    from . import __version__

    try:
        held = _checkpoint.read_description(run)
    except ValueError:
        return ""
    return (
        f" (the run was written by sklearn_epi {held.get('sklearn_epi', '?')} with TensorFlow "
        f"{held.get('tensorflow', '?')}, checkpoint format {held.get('format', '?')}; this is "
        f"sklearn_epi {__version__}, which reads format {_checkpoint.FORMAT})"
    )


def runs(directory) -> pd.DataFrame:
    """Every run, seed and finished epoch of a run store (or of one checkpoint directory).

    Parameters
    ----------
    directory : str or path-like
        A :class:`RunStore`'s directory, or one run's checkpoint directory.

    Returns
    -------
    pandas.DataFrame
        One row per run, seed and epoch (epoch 0 is the initial
        distribution): ``run`` (the sub-directory's name), ``status``
        (``"ok"``, or ``"unreadable: <file>: <reason>"`` in the one row of a
        run or seed whose file is damaged: the other runs are still
        listed), ``seed`` (the
        seed's index, as in ``history_``),
        ``epoch``, ``converged``, ``entropy``, ``entropy_se``, ``iteration``,
        ``wall_time`` (seconds into the seed), ``selected`` (the epoch the
        seed's result keeps, once the seed ended), ``finished`` (the seed
        ended; otherwise a fit with the same settings continues it),
        ``fitted`` (``fit.npz`` is there for :func:`load_run`),
        ``statistic``, ``mu``, ``sigma2``, ``sklearn_epi`` (the version that
        wrote it) and ``path``.
    """
    rows = []
    # A damaged run or seed is one row, False in the flag columns (so that
    # table[table["selected"]] still works), NaN elsewhere.
    damaged = dict.fromkeys(("converged", "selected", "finished", "fitted"), False)
    for run in _run_directories(directory):
        try:
            held = _checkpoint.read_description(run)
        except ValueError as exc:
            rows.append(
                {**damaged, "run": run.name, "status": f"unreadable: {exc}", "path": str(run)}
            )
            continue
        key = run_key(held)
        fitted = (run / FIT_FILE).is_file()
        for index in _checkpoint.seed_indices(run):
            try:
                state, finished, result = _unwrap(_load_seed(run, index, key))
            except Exception as exc:  # damaged: listed as such, the other seeds still are
                file = _checkpoint.seed_file(run, index)
                if not file.exists():  # only sklearn_epi 0.1's pickle
                    file = _checkpoint.seed_file(run, index, ".pkl")
                status = f"unreadable: {file}: {exc}"
                rows.append(
                    {**damaged, "run": run.name, "seed": index, "status": status, "path": str(run)}
                )
                continue
            epochs = state["epochs"] if state is not None else []
            for record in epochs:
                rows.append(
                    {
                        "run": run.name,
                        "status": "ok",
                        "seed": index,
                        "epoch": record.epoch,
                        "converged": bool(record.converged),
                        "entropy": float(record.entropy),
                        "entropy_se": float(record.entropy_se),
                        "iteration": int(record.iteration),
                        "wall_time": float(record.wall_time),
                        "selected": bool(finished and result.epoch == record.epoch),
                        "finished": finished,
                        "fitted": fitted,
                        "statistic": held.get("statistic_name", held["statistic"]),
                        "mu": held.get("mu"),
                        "sigma2": held.get("sigma2"),
                        "sklearn_epi": held.get("sklearn_epi"),
                        "path": str(run),
                    }
                )
    columns = [
        "run",
        "status",
        "seed",
        "epoch",
        "converged",
        "entropy",
        "entropy_se",
        "iteration",
        "wall_time",
        "selected",
        "finished",
        "fitted",
        "statistic",
        "mu",
        "sigma2",
        "sklearn_epi",
        "path",
    ]
    return pd.DataFrame(rows, columns=columns)


def load_run(path, seed=None, epoch=None):
    """The fitted estimator of a run, at its selected epoch or at any other.

    Parameters
    ----------
    path : str or path-like
        A run's directory (the ``path`` column of :func:`runs`).
    seed : int, default=None
        Index of the seed whose epoch to use (the ``seed`` column of
        :func:`runs` and ``history_``); ``None`` with ``epoch=None`` returns
        the fit as it ended, with an ``epoch`` the fit's best seed.
    epoch : int, default=None
        The epoch (1 or more) whose distribution to use: weights, entropy,
        p-values, multipliers and penalty of that epoch's test. ``None``:
        the seed's selected epoch.

    Returns
    -------
    EPIEstimator
        ``history_`` and ``seeds_`` are the whole fit's; ``best_seed_`` and
        ``epoch_`` name the distribution returned.
    """
    run = Path(path)
    fitted = run / FIT_FILE
    if not fitted.is_file():
        if (run / "fit.joblib").is_file():
            raise ValueError(
                f"{run / 'fit.joblib'} is a fit of sklearn_epi 0.1, a pickle; reading a pickle "
                "can run any code it holds, so sklearn_epi reads one only when asked: if you "
                "trust where it came from, convert the run once with "
                f"sklearn_epi.convert({str(run)!r})"
            )
        raise ValueError(
            f"{run} holds no {FIT_FILE}: its fit never returned (killed, or still running); "
            "fit again with the same settings to resume it"
        )
    key = _checkpoint.key_of(run)
    try:
        content, header = _safe_file.load(fitted, "fit")
    except _safe_file.NotSafeFileError as exc:
        raise ValueError(f"{exc}{_written_by(run)}") from exc
    if header.get("run") != key:
        raise ValueError(
            f"{fitted} belongs to run {header.get('run')}, not to run {key} described by "
            f"{run / 'run.json'}: a fit from another run is never loaded as this one"
        )
    est = persistence.estimator_from_content(content)
    if seed is None and epoch is None:
        return est
    index = est.best_seed_ if seed is None else seed
    states = _seed_states(run)
    if index not in states:
        raise ValueError(f"seed {index} is not in {run} (seeds: {sorted(states)})")
    state, finished, result = states[index]
    records = {r.epoch: r for r in state["epochs"] if r.epoch > 0}
    if epoch is None:
        if result is None or result.epoch is None:
            raise ValueError(f"seed {index} of {run} has no selected epoch yet; pass epoch")
        epoch = result.epoch
    if epoch not in records:
        raise ValueError(
            f"epoch {epoch} of seed {index} is not in {run} (epochs: {sorted(records)})"
        )
    record = records[epoch]
    est = copy.copy(est)
    est._select(index, record, record.iteration)
    return est
