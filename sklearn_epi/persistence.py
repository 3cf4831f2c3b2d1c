"""Saving fits so that they cannot be destroyed and can always be loaded.

A fitted :class:`~sklearn_epi.EPIEstimator` is its flow weights, history and
hyperparameters (plain arrays and DataFrames) plus the user's statistic. The
statistic is the fragile part: a function defined in a script's ``__main__``,
a lambda or a closure pickles by reference or not at all, so a file written
in one script could not be read in another, and a failed ``joblib.dump``
truncated the file it was replacing. Here the statistic travels in a blob of
its own (by reference when it can be imported anywhere, by value with
cloudpickle otherwise), and a blob that cannot be restored leaves a
placeholder that explains itself, so weights, history, sampling, log
densities, gradients and Hessians always come back.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import cloudpickle
import joblib

from ._validation import user_stacklevel

__all__ = ["save", "load", "MissingStatistic"]


class PackedStatistic(NamedTuple):
    """A statistic serialised on its own inside a saved estimator."""

    how: str
    name: str
    payload: bytes


class MissingStatistic:
    """Stands in for a statistic that could not be saved or restored.

    Calling it raises a ``RuntimeError`` that says why and how to put the
    statistic back (``est.set_params(statistic=f)``); everything that does
    not evaluate the statistic (sampling, ``score_samples``, gradients,
    Hessians, ``history_``) works without it.

    Parameters
    ----------
    name : str
        Name of the original statistic.
    reason : str
        Why it is missing.
    """

    def __init__(self, name: str, reason: str):
        self.name = name
        self.reason = reason

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            f"this fit's statistic {self.name!r} is not available ({self.reason}). "
            "Sampling, score_samples, gradient and hessian work without it; for score, "
            "analysis.predictive and refits set it back: est.set_params(statistic=...)"
        )

    def __repr__(self) -> str:
        return f"MissingStatistic({self.name!r})"


def _name_of(statistic) -> str:
    return getattr(statistic, "__qualname__", None) or type(statistic).__name__


def _importable_by_reference(statistic) -> bool:
    """Whether plain pickle stores ``statistic`` as a name another process can import."""
    module = getattr(statistic, "__module__", None) or type(statistic).__module__
    qualname = getattr(statistic, "__qualname__", "") or type(statistic).__qualname__
    return module not in (None, "__main__", "__mp_main__") and "<" not in qualname


def pack_statistic(statistic) -> tuple[str, str, bytes]:
    """Serialise a statistic for a saved fit: ``(how, name, payload)``.

    ``how`` is ``"reference"`` (plain pickle of an importable name),
    ``"value"`` (cloudpickle of the function's code and closure) or
    ``"missing"`` (neither worked; a warning says how to fix the statistic).
    """
    name = _name_of(statistic)
    if isinstance(statistic, MissingStatistic):
        return "missing", statistic.name, pickle.dumps(statistic.reason)
    if _importable_by_reference(statistic):
        try:
            return "reference", name, pickle.dumps(statistic)
        except Exception:  # pickle raises many types (PicklingError, TypeError, ...)
            pass
    try:
        return "value", name, cloudpickle.dumps(statistic)
    except Exception as exc:
        reason = f"it could not be pickled: {type(exc).__name__}: {exc}"
        warnings.warn(
            f"the statistic {name!r} is saved without its code ({reason}). To save it, "
            "make it a module-level function, or a closure over picklable values "
            "(numbers, arrays), not over open files, locks or TensorFlow variables.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return "missing", name, pickle.dumps(reason)


def unpack_statistic(packed):
    """Inverse of :func:`pack_statistic`; a :class:`MissingStatistic` when it fails."""
    how, name, payload = packed
    if how == "missing":
        return MissingStatistic(name, pickle.loads(payload))
    try:
        return pickle.loads(payload)  # cloudpickle output is read by plain pickle
    except Exception as exc:
        reason = f"it could not be loaded here: {type(exc).__name__}: {exc}"
        warnings.warn(
            f"the statistic {name!r} of this saved fit could not be restored ({reason}); "
            "sampling and log densities work, but score and analysis.predictive need it "
            "back: est.set_params(statistic=...)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return MissingStatistic(name, reason)


def save(estimator, path) -> Path:
    """Write ``estimator`` to ``path`` atomically (a temporary file, then a rename).

    A failure at any point leaves an existing file at ``path`` untouched.
    The statistic is stored by reference when it is importable and by value
    otherwise, so a fit made in a script or notebook loads anywhere.

    Parameters
    ----------
    estimator : EPIEstimator
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        joblib.dump(estimator, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(path):
    """Read an estimator written by :func:`save` (or by ``joblib.dump``).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    EPIEstimator
        With a :class:`MissingStatistic` in place of a statistic that could
        not be restored (a ``UserWarning`` says why).
    """
    from .estimator import EPIEstimator

    estimator = joblib.load(path)
    if not isinstance(estimator, EPIEstimator):
        raise TypeError(f"{path} holds a {type(estimator).__name__}, not an EPIEstimator")
    return estimator
