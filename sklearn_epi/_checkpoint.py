"""Per-epoch checkpoints of a fit's seeds, so that a killed or timed-out fit can resume.

A checkpoint directory holds ``run.json``, a readable description of the run
(package and TensorFlow versions, the settings that determine the result,
the property and the seeds), and per seed ``seed-<index>.pkl``: everything
:func:`~sklearn_epi.optimize.fit_seed` needs to go on after its last finished
epoch (flow weights, random-stream position, ``eta``, ``c``, the violations'
units, the generator of the ``c`` decisions, the epochs and history so far).
Adam needs nothing: its moments restart with every epoch.

Every write goes to a temporary file that is then renamed over the old one,
and the previous checkpoint is kept as ``seed-<index>.prev.pkl``: a kill at
any moment leaves a readable checkpoint, and a damaged one falls back to the
one before, with a warning that names the file.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ._validation import _resolve_al_params

#: Estimator parameters that do not change a fit's result.
NOT_SETTINGS = ("checkpoint", "n_jobs", "verbose", "callbacks", "memory", "max_time", "warm_start")

#: Longer settings are compared by a hash of their content (:func:`_setting`).
MAX_SETTING_CHARS = 1000

#: Bumped when the content of a seed's checkpoint changes.
FORMAT = 1


def _atomic_write(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(f.name, path)


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
    run_file = path / "run.json"
    if run_file.exists():
        try:
            held = json.loads(run_file.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"checkpoint: cannot read {run_file} ({exc})") from exc
        differ = differences(held, description)
        if differ:
            raise ValueError(
                f"checkpoint directory {path} holds a fit with other settings "
                f"(differing: {', '.join(differ)}); use a new directory, or the same settings "
                "to resume"
            )
    else:
        _atomic_write(run_file, json.dumps(description, indent=2).encode())
    return path


def seed_file(directory, index: int) -> Path:
    return Path(directory) / f"seed-{index}.pkl"


def save_seed(directory, index: int, state: dict) -> None:
    """Write seed ``index``'s state atomically, keeping the previous one as ``.prev``."""
    path = seed_file(directory, index)
    data = pickle.dumps({"format": FORMAT, **state}, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        os.replace(path, path.with_suffix(".prev.pkl"))
    except FileNotFoundError:  # the first epoch, or another process just moved it
        pass
    _atomic_write(path, data)


def load_seed(directory, index: int) -> dict | None:
    """Seed ``index``'s last readable state, or None if it has none yet.

    A damaged file is reported (a ``RuntimeWarning`` naming it) and the
    previous checkpoint is used; if that is damaged too, a ``ValueError``
    names both files.
    """
    path = seed_file(directory, index)
    previous = path.with_suffix(".prev.pkl")
    candidates = [p for p in (path, previous) if p.exists()]
    if not candidates:
        return None
    problems = []
    for candidate in candidates:
        try:
            with open(candidate, "rb") as f:
                state = pickle.load(f)
            if state.get("format") != FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {FORMAT}")
        except Exception as exc:  # truncated, overwritten, another version's
            problems.append(f"{candidate} ({type(exc).__name__}: {exc})")
            continue
        if problems:
            warnings.warn(
                f"checkpoint {problems[0]} is unreadable; resuming from {candidate}",
                RuntimeWarning,
                stacklevel=2,
            )
        return state
    raise ValueError(f"checkpoint: no readable checkpoint of seed {index}: {'; '.join(problems)}")
