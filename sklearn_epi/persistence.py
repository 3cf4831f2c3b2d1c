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
import numpy as np

from ._validation import _resolve_al_params, user_stacklevel
from .property import EmergentProperty

__all__ = ["save", "MissingStatistic", "SavedFitMixin", "pack_statistic", "unpack_statistic"]


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


class SavedFitMixin:
    """Saving a fitted estimator, and pickling it so that the statistic never blocks a load.

    Mixed into :class:`~sklearn_epi.EPIEstimator`. The statistic travels in a
    blob of its own (:func:`pack_statistic`), so a statistic that cannot be
    restored never keeps the weights and history from loading; fits pickled
    by earlier versions gain the attributes added since.
    """

    def save(self, path):
        """Write the estimator to ``path`` atomically; read it back with :func:`sklearn_epi.load`.

        A failure leaves an existing file at ``path`` untouched. The statistic
        is stored by value when it cannot be imported by name (defined in a
        script's ``__main__``, a lambda, a closure), so the file loads in any
        script; if it cannot be stored at all, a warning says why and the
        rest of the fit is saved.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        pathlib.Path
        """
        return save(self, path)

    def __getstate__(self):
        # object.__getstate__ may hand back the live __dict__: edit a copy.
        state = dict(super().__getstate__())
        state.pop("_flow_cache", None)
        if "statistic" in state:
            state["statistic"] = PackedStatistic(*pack_statistic(state["statistic"]))
        return state

    def __setstate__(self, state):
        state.setdefault("checkpoint", None)  # saved before checkpoints existed
        state.setdefault("max_time", None)
        state.setdefault("warm_start", False)
        if isinstance(state.get("statistic"), PackedStatistic):
            state["statistic"] = unpack_statistic(state["statistic"])
        if "_support" in state and "bounds_" not in state:  # saved by version 0.1.0
            state["bounds_"] = np.column_stack([state["_support"].low, state["_support"].high])
            al = _resolve_al_params(state.get("al_params"))
            state["n_test_"] = state.get("n_test") or al.batch_size
        if "mu_" in state and "property_" not in state:  # saved before property_
            state["property_"] = EmergentProperty(
                state.pop("mu_"),
                state.pop("sigma2_"),
                tuple(state.pop("statistic_names_")),
                alpha=float(state.get("alpha", 0.05)),
                n_test=int(state.pop("n_test_")),
            )
            state.pop("constraint_names_", None)
        super().__setstate__(state)
