"""Per-epoch checkpoints of a fit's seeds, so that a killed or timed-out fit can resume.

A checkpoint directory holds ``run.json``, a readable description of the run
(package and TensorFlow versions, the settings that determine the result,
the property and the seeds), and per seed ``seed-<index>.npz`` (the safe
format of :mod:`sklearn_epi._safe_file`, which holds data, never code): everything
:func:`~sklearn_epi.optimize.fit_seed` needs to go on after its last finished
epoch (flow weights, random-stream position, ``eta``, ``c``, the violations'
units, the generator of the ``c`` decisions, the epochs and history so far).
Adam needs nothing: its moments restart with every epoch.

Every write goes to a temporary file that is then renamed over the old one,
and the previous checkpoint is kept as ``seed-<index>.prev.npz``: a kill at
any moment leaves a readable checkpoint, and a damaged one falls back to the
one before, with a warning that names the file. Every file carries its run's
key (:func:`run_key`), and a file of another run is refused, never resumed.
Checkpoints of sklearn_epi 0.1 were pickles (``seed-<index>.pkl``); they are
read only after :func:`~sklearn_epi.convert`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from . import _safe_file
from ._safe_file import atomic_write as _atomic_write
from ._seed_state import Saved
from ._validation import _resolve_al_params, user_stacklevel

#: Estimator parameters that do not change a fit's result.
NOT_SETTINGS = (
    "checkpoint",
    "n_jobs",
    "verbose",
    "callbacks",
    "memory",
    "max_time",
    "warm_start",
    "coverage_draws",
)

#: Longer settings are compared by a hash of their content (:func:`_setting`).
MAX_SETTING_CHARS = 1000

#: Bumped when the content of a seed's checkpoint changes (part of the run key).
FORMAT = 1

#: The fitted estimator's file in a run's directory.
FIT_FILE = "fit.npz"


#: A partial write older than this was abandoned by a killed process (a
#: write takes seconds); opening the run removes it.
ABANDONED_AFTER = 3600.0
_PARTIALS = (".seed-*.npz.*", ".run.json.*", f".{FIT_FILE}.*")


def _remove_abandoned_writes(directory: Path) -> None:
    """Delete the partial writes (``.seed-0.npz.XXXX``) that a kill mid-write left behind.

    Only old ones: a younger file may be another process's write in progress.
    """
    partials = [p for pattern in _PARTIALS for p in directory.glob(pattern)]
    for partial in partials:
        try:
            if time.time() - partial.stat().st_mtime > ABANDONED_AFTER:
                partial.unlink()
        except OSError:  # removed by another process meanwhile
            pass


def describe(estimator, prop, seeds, statistic_key) -> dict:
    """The run's description: what determines the result, and the versions that made it."""
    import tensorflow as tf

    from . import __version__

    params = {
        name: _setting(value)
        for name, value in sorted(estimator.get_params(deep=False).items())
        if name not in NOT_SETTINGS and name not in ("statistic", "al_params")
    }
    # max_epochs may grow: a seed that ended for want of epochs goes on.
    al = _resolve_al_params(estimator.al_params).get_params()
    params.update({f"al_params.{k}": repr(v) for k, v in sorted(al.items()) if k != "max_epochs"})
    return {
        "format": FORMAT,
        "sklearn_epi": __version__,
        "tensorflow": tf.__version__,
        "statistic": statistic_key,
        "statistic_name": readable_name(estimator.statistic),
        "params": params,
        "mu": [float(v) for v in prop.mu],
        "sigma2": None if prop.sigma2 is None else [float(v) for v in prop.sigma2],
        "constraints": list(prop.constraint_names),
        "seeds": [int(s) for s in seeds],
    }


def _setting(value) -> str:
    """A parameter as compared between runs: its repr, or a hash of its content.

    NumPy abbreviates the repr of arrays over 1000 numbers and pandas that of
    long frames, so two different ``bounds`` rows of a large model, or two
    ``init={"samples": ...}``, would compare equal. The repr is taken in
    full; a long one, or one pandas shortened (``...``), is replaced by a
    hash of the value's content.
    """
    with np.printoptions(threshold=sys.maxsize):
        text = repr(value)
    if len(text) <= MAX_SETTING_CHARS and "..." not in text:
        return text
    import joblib

    return f"{type(value).__name__}, joblib.hash {joblib.hash(value)}"


def readable_name(statistic) -> str:
    """A statistic's name for people: ``module.function``, or the repr of a configured object."""
    qualname = getattr(statistic, "__qualname__", None)
    if qualname is not None:
        return f"{getattr(statistic, '__module__', '?')}.{qualname}"
    if type(statistic).__repr__ is not object.__repr__:
        return repr(statistic)
    return f"{type(statistic).__module__}.{type(statistic).__qualname__}"


def differences(held: dict, description: dict) -> list:
    """The settings in which two run descriptions differ (versions aside)."""
    params = held.get("params", {})
    return [
        f"params.{k}"
        for k in sorted(set(params) | set(description["params"]))
        if params.get(k) != description["params"].get(k)
    ] + [
        k for k in ("format", "statistic", "mu", "sigma2", "seeds") if held.get(k) != description[k]
    ]


def read_description(run) -> dict:
    """A run's ``run.json``; a ``ValueError`` naming the file if it is not a readable object."""
    path = Path(run) / "run.json"
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(held, dict):
        raise ValueError(f"{path}: a JSON {type(held).__name__}, not the run's description")
    return held


def open_run(directory, description: dict) -> Path:
    """Create ``directory`` for this run, or check that the run it holds has the same settings.

    Raises
    ------
    ValueError
        If the directory holds a run with other settings, naming those that differ.
    """
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint must be a directory; {path} is a file")
    path.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_writes(path)
    run_file = path / "run.json"
    if run_file.exists():
        try:
            held = read_description(path)
        except ValueError as exc:
            raise ValueError(f"checkpoint: cannot read {exc}") from exc
        differ = differences(held, description)
        if differ:
            raise ValueError(
                f"checkpoint directory {path} holds a fit with other settings "
                f"(differing: {', '.join(differ)}); use a new directory, or the same settings "
                "to resume"
            )
    else:
        strays = sorted(p.name for p in _run_files(path))
        if strays:
            raise ValueError(
                f"checkpoint directory {path} holds {', '.join(strays)} but no run.json, so "
                "the run they belong to is unknown and they are not resumed; use a new "
                "directory, or move them away"
            )
        _atomic_write(run_file, json.dumps(description, indent=2).encode())
    return path


def _run_files(directory: Path) -> list:
    """The seed and fit files in a run's directory, this version's and 0.1's pickles."""
    names = ("seed-*.npz", "seed-*.pkl", FIT_FILE, "fit.joblib")
    return [p for pattern in names for p in directory.glob(pattern)]


def seed_file(directory, index: int, suffix: str = ".npz") -> Path:
    return Path(directory) / f"seed-{index}{suffix}"


def seed_indices(run) -> list:
    """The indices of the seeds a run holds (``seed-<i>.npz``, or 0.1's ``.pkl``), in order."""
    stems = {
        p.stem[len("seed-") :] for p in Path(run).glob("seed-*.*") if p.suffix in (".npz", ".pkl")
    }
    # seed-<i>.prev.npz is the fallback of load_seed, not a seed of its own.
    return sorted(int(stem) for stem in stems if stem.isdigit())


def save_seed(directory, index: int, state: dict, run: str | None) -> None:
    """Write seed ``index``'s state atomically, keeping the previous one as ``.prev``.

    ``run`` is the run's key (:func:`run_key`), kept in the file.
    """
    path = seed_file(directory, index)
    data = _safe_file.dumps(state, _safe_file.header("seed", run))
    try:
        os.replace(path, path.with_suffix(".prev.npz"))
    except FileNotFoundError:  # the first epoch, or another process just moved it
        pass
    _atomic_write(path, data)


def load_seed(directory, index: int, run: str | None) -> dict | None:
    """Seed ``index``'s last readable state, or None if it has none yet.

    A damaged file is reported (a ``RuntimeWarning`` naming it) and the
    previous checkpoint is used; if that is damaged too, a ``ValueError``
    names both files. A file of another run than ``run`` (its key), and a
    pickle of sklearn_epi 0.1, raise a ``ValueError`` naming the file.
    """
    path = seed_file(directory, index)
    previous = path.with_suffix(".prev.npz")
    candidates = [p for p in (path, previous) if p.exists()]
    legacy = seed_file(directory, index, ".pkl")
    if not candidates and legacy.exists():
        raise ValueError(
            f"{legacy} is a checkpoint of sklearn_epi 0.1, a pickle; reading a pickle can run "
            "any code it holds, so sklearn_epi reads one only when asked: if you trust where "
            f"it came from, convert the run once with sklearn_epi.convert({str(directory)!r})"
        )
    if not candidates:
        return None
    problems = []
    for candidate in candidates:
        try:
            state, header = _safe_file.load(candidate, "seed")
        except _safe_file.NotSafeFileError as exc:  # truncated, overwritten, not ours
            problems.append(f"{candidate} ({exc})")
            continue
        if run is not None and header.get("run") != run:
            raise ValueError(
                f"{candidate} belongs to run {header.get('run')}, not to run {run} described "
                f"by {Path(directory) / 'run.json'}: a file from another run is never resumed; "
                "remove it, or fit in that run's own directory"
            )
        if problems:
            warnings.warn(
                f"checkpoint {problems[0]} is unreadable; resuming from {candidate}",
                RuntimeWarning,
                stacklevel=2,
            )
        return state
    raise ValueError(f"checkpoint: no readable checkpoint of seed {index}: {'; '.join(problems)}")


#: Entries of run.json that do not change the result (so not in the key).
_NOT_KEY = ("sklearn_epi", "tensorflow", "statistic_name")


class RunStore:
    """A directory of runs, one sub-directory per distinct fit; pass it as ``checkpoint``.

    Parameters
    ----------
    directory : str or path-like
        Created on the first fit. Runs of any model and property can share
        it; processes fitting different runs write to different
        sub-directories, and every file is written atomically.

    Examples
    --------
    >>> from sklearn_epi import EPIEstimator
    >>> from sklearn_epi import RunStore, runs
    >>> est = EPIEstimator(statistic, bounds, checkpoint=RunStore("epi_runs"))  # doctest: +SKIP
    >>> est.fit(mu, sigma2)  # doctest: +SKIP
    >>> runs("epi_runs")  # doctest: +SKIP
    """

    __module__ = "sklearn_epi.run_store"  # where it is documented (and old pickles find it)

    def __init__(self, directory):
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(
                f"directory must be a path (str or os.PathLike); got {type(directory).__name__}"
            )
        self.directory = directory

    def __repr__(self):
        return f"RunStore({os.fspath(self.directory)!r})"

    def __eq__(self, other):
        return isinstance(other, RunStore) and Path(other.directory) == Path(self.directory)

    def __hash__(self):
        return hash(Path(self.directory))

    def run_directory(self, description: dict) -> Path:
        """The sub-directory of the run that ``description`` (a ``run.json``) describes."""
        path = Path(self.directory)
        if path.exists() and not path.is_dir():
            raise ValueError(f"checkpoint: the run store {path} is a file, not a directory")
        return path / run_key(description)


def run_key(description: dict) -> str:
    """A run's name in a store: a hash of its description without versions and readable names."""
    content = {k: v for k, v in description.items() if k not in _NOT_KEY}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def key_of(run) -> str:
    """The key of the run in directory ``run``, from its ``run.json``."""
    return run_key(read_description(run))


def epoch_records(est, seed):
    """Every epoch of a fitted estimator's seed, weights included, in order.

    They come from the fit's checkpoint (``checkpoint``) or from the states
    kept with ``warm_start=True``.
    """
    held = getattr(est, "_warm_start_", None)
    saved = None
    if held is not None and seed in held["states"]:
        saved = held["states"][seed]
    elif getattr(est, "checkpoint_dir_", None) is not None:
        directory = Path(est.checkpoint_dir_)
        saved = load_seed(directory, seed, key_of(directory))
    if saved is None:
        raise ValueError(
            "the fit kept no per-epoch weights of seed "
            f"{seed}: fit with checkpoint=<directory> or warm_start=True to keep them"
        )
    return Saved.from_file(saved).epochs


def statistic_key(statistic) -> str:
    """The statistic's identity in a checkpoint's ``run.json``: its content, or its name."""
    from ._train import _fingerprint

    fingerprint = _fingerprint(statistic)
    if isinstance(fingerprint, str):
        return fingerprint
    return f"{getattr(statistic, '__module__', '?')}.{getattr(statistic, '__qualname__', '?')}"


def attach(est, spec, seeds) -> dict | None:
    """Give ``spec`` the fit's checkpoint directory and warm-start states; the run's description.

    Returns None when the fit neither checkpoints nor warm-starts.
    """
    if est.checkpoint is None and not est.warm_start:
        return None
    description = describe(est, spec.prop, seeds, statistic_key(est.statistic))
    if est.checkpoint is not None:
        directory = est.checkpoint
        if isinstance(directory, RunStore):
            directory = directory.run_directory(description)
        spec.checkpoint = str(open_run(directory, description))
        spec.run_key = run_key(description)
    if est.warm_start:
        spec.keep_state = True
        spec.warm_states = _warm_states(est, description)
    return description


def _warm_states(est, description):
    """The seeds' states of the last fit to continue from, if its settings match."""
    held = getattr(est, "_warm_start_", None)
    if held is None:
        return None  # a first fit: a cold start, as in scikit-learn
    differ = differences(held["description"], description)
    if differ:
        raise ValueError(
            f"warm_start: the fitted estimator had other settings (differing: "
            f"{', '.join(differ)}); only al_params.max_epochs may change, or set "
            "warm_start=False"
        )
    return held["states"]


def save_fit(est, directory, run: str) -> None:
    """The fitted estimator beside its checkpoints (``fit.npz``), for :func:`~sklearn_epi.load_run`.

    Callbacks do not change the result and are often local functions that
    have no importable name: the copy is saved without them. A failure warns:
    the fit itself is done and returned.
    """
    from . import persistence

    saved = copy.copy(est)
    saved.callbacks = None
    path = Path(directory) / FIT_FILE
    try:
        persistence.save(saved, path, run=run)
    except Exception as exc:
        warnings.warn(
            f"could not save the fitted estimator to {path} ({type(exc).__name__}: {exc}); "
            "load_run will not find this fit",
            RuntimeWarning,
            stacklevel=user_stacklevel(),
        )


def convert_pickles(directory: Path) -> list:
    """Rewrite the pickled checkpoints and fits of 0.1 in a run, or in every run of a store."""
    from . import persistence

    written = []
    runs = (
        [directory]
        if (directory / "run.json").is_file()
        else sorted(p for p in directory.iterdir() if (p / "run.json").is_file())
    )
    if not runs:
        raise ValueError(f"{directory} holds no run (no run.json in it or its sub-directories)")
    for run in runs:
        key = key_of(run)
        for pickled in sorted(run.glob("seed-*.pkl")):
            with open(pickled, "rb") as f:
                state = pickle.load(f)
            if not isinstance(state, dict) or state.pop("format", None) != FORMAT:
                raise ValueError(f"{pickled} is not a checkpoint of sklearn_epi 0.1")
            target = pickled.with_suffix(".npz")
            _atomic_write(target, _safe_file.dumps(state, _safe_file.header("seed", key)))
            pickled.unlink()
            written.append(target)
        if (run / "fit.joblib").is_file():
            target = persistence.save(
                persistence.load(run / "fit.joblib", trusted=True), run / FIT_FILE, run=key
            )
            (run / "fit.joblib").unlink()
            written.append(target)
    return written
