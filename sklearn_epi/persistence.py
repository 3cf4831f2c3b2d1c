"""Saving fits as data that cannot run code when read, and loading them.

A fitted :class:`~sklearn_epi.EPIEstimator` is its flow weights, history and
hyperparameters (plain arrays and DataFrames) plus the user's statistic.
:meth:`~EPIEstimator.save` writes the data in the safe format of
:mod:`sklearn_epi._safe_file` and the statistic as its importable name
(``module:function``, or an instance of an importable class with its data,
such as :func:`~sklearn_epi.circuits.rnn_stable_amplification`'s), never as
code. :func:`load` reads that format; a pickle (a fit saved by sklearn_epi
0.1, or by ``joblib.dump``) only with ``trusted=True``.

A statistic that cannot be restored (not importable by name, or not
installed where the fit is read) leaves a :class:`MissingStatistic` that
explains itself, so weights, history, sampling, log densities, gradients
and Hessians always come back. Pickling (worker processes, ``GridSearchCV``,
``joblib.dump``) keeps the statistic in a blob of its own, by reference or
by value with cloudpickle, for the same reason.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from pathlib import Path
from typing import NamedTuple

import cloudpickle
import joblib
import numpy as np

from . import _safe_file
from ._validation import _resolve_al_params, user_stacklevel
from .property import EmergentProperty

__all__ = ["save", "load", "convert", "file_info", "MissingStatistic", "SavedFitMixin"]


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
        return _not_restored(name, exc)


def statistic_record(statistic, where: str = "statistic") -> dict:
    """How the safe format stores a statistic (or a callback): by name, never by value.

    ``{"function": "module:qualname"}`` for an importable function or class,
    ``{"instance": "module:qualname", "state": {...}}`` for an instance of an
    importable class whose attributes are plain data, ``{"missing": name,
    "reason": ...}`` otherwise (with a ``UserWarning`` that says how to make it
    storable).
    """
    if isinstance(statistic, MissingStatistic):
        return {"missing": statistic.name, "reason": statistic.reason}
    name = _name_of(statistic)
    reference = _safe_file.reference(statistic)
    if reference is not None and callable(statistic):
        return {"function": reference}
    cls_reference = _safe_file.reference(type(statistic))
    if (
        cls_reference is not None
        and not inspect.isroutine(statistic)
        and type(statistic).__module__ != "builtins"
        and hasattr(statistic, "__dict__")
    ):
        state = dict(vars(statistic))
        try:
            _safe_file.dumps(state, {})
        except TypeError as exc:
            reason = f"its attributes are not plain data ({exc})"
        else:
            return {"instance": cls_reference, "state": state}
    elif getattr(statistic, "__module__", None) in ("__main__", "__mp_main__"):
        reason = "it is defined in the script that saved the fit (__main__), not in a module"
    else:
        reason = "it is a lambda, a closure or a local function, which has no importable name"
    warnings.warn(
        f"the {where} {name!r} is saved by name only and will not load by itself: {reason}. "
        "Saved fits never hold code; to make it load, define it in a module (a .py file "
        "on the path, e.g. mystats.py); or set it back after loading: "
        "est.set_params(statistic=...)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return {"missing": name, "reason": f"{reason}, so the saved fit does not name it"}


def statistic_from_record(record: dict):
    """Inverse of :func:`statistic_record`; a :class:`MissingStatistic` when it fails."""
    if "missing" in record:
        return MissingStatistic(record["missing"], record["reason"])
    name = record.get("function") or record.get("instance")
    try:
        obj = _safe_file.resolve(name)
        if "instance" in record:
            if not isinstance(obj, type):
                raise TypeError(f"{name} is not a class")
            obj = obj.__new__(obj)
            obj.__dict__.update(record["state"])
        if not callable(obj):
            raise TypeError(f"{name} is not callable")
        return obj
    except Exception as exc:  # not installed here, renamed, ...
        return _not_restored(name, exc)


def _not_restored(name, exc) -> MissingStatistic:
    """The placeholder of a saved statistic that cannot be restored here, with a warning."""
    reason = f"it could not be loaded here: {type(exc).__name__}: {exc}"
    warnings.warn(
        f"the statistic {name!r} of this saved fit could not be restored ({reason}); "
        "sampling and log densities work, but score and analysis.predictive need it "
        "back: est.set_params(statistic=...)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return MissingStatistic(name, reason)


def fit_content(estimator) -> dict:
    """An estimator's attributes as the safe format stores them (statistic by name)."""
    state = dict(vars(estimator))
    state.pop("_flow_cache", None)
    state["statistic"] = statistic_record(state["statistic"])
    callbacks = state.get("callbacks")
    if isinstance(callbacks, (list, tuple)):
        state["callbacks"] = [statistic_record(c, "callback") for c in callbacks]
    elif callbacks is not None:
        state["callbacks"] = statistic_record(callbacks, "callback")
    return state


def estimator_from_content(state: dict):
    """Inverse of :func:`fit_content`."""
    from .estimator import EPIEstimator

    state = dict(state)
    state["statistic"] = statistic_from_record(state["statistic"])
    if state.get("callbacks") is not None:
        callbacks = [statistic_from_record(c) for c in state["callbacks"]]
        state["callbacks"] = callbacks if state.pop("_callbacks_was_list", True) else callbacks[0]
    estimator = EPIEstimator.__new__(EPIEstimator)
    estimator.__dict__.update(_add_later_attributes(state))
    return estimator


def _add_later_attributes(state: dict) -> dict:
    """``state`` of an estimator saved by an earlier version, with what was added since.

    A parameter added since (``checkpoint``, ``max_time``, ``warm_start``,
    ``coverage_draws``, ...) takes its default, read from the signature.
    """
    from .estimator import EPIEstimator

    for name, parameter in inspect.signature(EPIEstimator.__init__).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            state.setdefault(name, parameter.default)
    if "flow_weights_" in state:  # fitted before the coverage check
        state.setdefault("coverage_", None)
    return state


def save(estimator, path, run: str | None = None) -> Path:
    """Write ``estimator`` to ``path`` in the safe format, atomically.

    A failure at any point leaves an existing file at ``path`` untouched.

    Parameters
    ----------
    estimator : EPIEstimator
    path : str or os.PathLike
    run : str, default=None
        The run key of the checkpoint directory the fit belongs to.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return _safe_file.write(path, fit_content(estimator), _safe_file.header("fit", run))


#: What a refused pickle's message says to do.
PICKLE_ADVICE = (
    "Reading a pickle can run any code it holds, so sklearn_epi reads one only when asked: "
    "if you trust where it came from, sklearn_epi.load(path, trusted=True), or convert "
    "it once with sklearn_epi.convert(path)"
)


def load(path, trusted: bool = False):
    """Read a fit written by :meth:`EPIEstimator.save`.

    Parameters
    ----------
    path : str or os.PathLike
    trusted : bool, default=False
        Also read a pickle: a fit saved by sklearn_epi 0.1, or with
        ``joblib.dump`` or :mod:`pickle`. **Loading a pickle can run any code
        its author put in it** (as with scikit-learn's and joblib's
        persistence); pass ``True`` only for files from a source you trust,
        and :meth:`~EPIEstimator.save` them again to convert them. The safe
        format, what ``save`` writes, never runs code: it is read the same
        either way.

    Returns
    -------
    EPIEstimator
        With a :class:`~sklearn_epi.persistence.MissingStatistic` in place of
        a statistic that cannot be restored here (a ``UserWarning`` says why).

    Raises
    ------
    ValueError
        If the file is not a fit in the safe format (a pickle without
        ``trusted=True``, a damaged file, a checkpoint), naming it.
    """
    from .estimator import EPIEstimator

    if not isinstance(trusted, bool):
        raise TypeError(f"trusted must be True or False; got {trusted!r}")
    path = Path(path)
    if _safe_file.is_safe_file(path):
        content, _ = _safe_file.load(path, "fit")
        return estimator_from_content(content)
    if not trusted:
        raise ValueError(
            f"{path} is not a fit in sklearn_epi's safe format: it looks like a pickle (a fit "
            f"saved by sklearn_epi 0.1, or with joblib.dump). {PICKLE_ADVICE}."
        )
    estimator = joblib.load(path)
    if not isinstance(estimator, EPIEstimator):
        raise TypeError(f"{path} holds a {type(estimator).__name__}, not an EPIEstimator")
    return estimator


def file_info(path) -> dict:
    """What made a saved fit or checkpoint file, read without loading it.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :meth:`EPIEstimator.save`, a checkpoint's
        ``seed-<i>.npz`` or a run store's ``fit.npz``.

    Returns
    -------
    dict
        ``kind`` (``"fit"`` or ``"seed"``), ``format``, ``sklearn_epi`` (the
        version that wrote it), ``commit`` (the git commit of the package's
        source checkout, ``"+dirty"`` with local changes to the package; None
        for an installed copy), ``tensorflow`` (its version) and ``run`` (the
        checkpoint key). Files written before version 0.2.0's provenance
        fields lack ``commit`` and ``tensorflow``; they read as None.

    Raises
    ------
    ValueError
        If the file is not in sklearn_epi's safe format, naming it.

    Examples
    --------
    >>> import sklearn_epi
    >>> from sklearn_epi.persistence import file_info
    >>> info = file_info("examples/data/stg_hub_frequency.npz")  # doctest: +SKIP
    >>> info["sklearn_epi"], info["commit"]  # doctest: +SKIP
    ('0.2.0', '3673bf37aee890d6b6230f0154fc38514f76d98b')
    """
    found = _safe_file.read_file_header(path)
    return {
        key: found.get(key)
        for key in ("kind", "format", "sklearn_epi", "commit", "tensorflow", "run")
    }


def convert(path) -> list:
    """Rewrite the pickles of sklearn_epi 0.1 under ``path`` in the safe format.

    **This reads pickles, which can run any code their author put in them:
    convert only files from a source you trust.** ``path`` is a saved fit
    (rewritten in place), a checkpoint directory or a run store (each
    ``seed-<i>.pkl`` becomes ``seed-<i>.npz`` and ``fit.joblib`` becomes
    ``fit.npz``; the pickles are removed once their copy is written).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from . import _checkpoint

    path = Path(path)
    if path.is_file():
        est = load(path, trusted=True)
        return [save(est, path)]
    if not path.is_dir():
        raise ValueError(f"path {path} does not exist")
    return _checkpoint.convert_pickles(path)


class SavedFitMixin:
    """Saving a fitted estimator, and pickling it so that the statistic never blocks a load.

    Mixed into :class:`~sklearn_epi.EPIEstimator`. The statistic travels in a
    blob of its own (:func:`pack_statistic`), so a statistic that cannot be
    restored never keeps the weights and history from loading; fits pickled
    by earlier versions gain the attributes added since.
    """

    def save(self, path):
        """Write the estimator to ``path``; read it back with :func:`sklearn_epi.load`.

        The file holds data only (arrays, numbers, text; see "Sharing fits"
        in the user guide), so anyone may open it safely, and it is written
        atomically: a failure leaves an existing file at ``path`` untouched.
        The statistic is stored by its importable name (``module:function``,
        or an importable class with its data): a statistic defined in a
        script's ``__main__``, a lambda or a closure is saved by name only,
        with a warning, and is set back after loading with
        ``est.set_params(statistic=f)``. The suffix is yours to choose;
        ``.npz`` says what the file is.

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
        _add_later_attributes(state)
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
