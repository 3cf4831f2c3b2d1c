"""What a fitted run shows: pairplot, predictive check, Hessian directions, samples.

The estimator comes from the run's ``fit.npz`` in the safe format, and is
checked to belong to the run's checkpoint. The interface imports no module
to read it: a statistic outside :mod:`sklearn_epi` is left unloaded (the
predictive check then is the one the CLI drew, ``figures/predictive.png``,
when there is one). Everything is computed once per ``fit.npz`` version.
"""

from __future__ import annotations

import base64
import io
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _checkpoint, _safe_file, persistence
from ._catalog import RunEntry, StampedCache, _stamp

#: Samples drawn for the pairplot, the predictive check and the marginals.
N_SAMPLES = 1000


def _without_foreign_code(record: dict) -> dict:
    """A statistic record that names no module outside :mod:`sklearn_epi`."""
    name = record.get("function") or record.get("instance")
    if name is None or name.startswith("sklearn_epi."):
        return record
    return {
        "missing": name,
        "reason": "the interface imports no module outside sklearn_epi; the launched fit "
        "ran it as the user",
    }


def load_fitted(entry: RunEntry):
    """The run's fitted estimator, read from the safe format without importing user code.

    Raises
    ------
    ValueError
        If ``fit.npz`` is damaged, not in the safe format, or of another run.
    """
    try:
        content, header = _safe_file.load(entry.fit_file, "fit")
    except _safe_file.NotSafeFileError as exc:
        raise ValueError(str(exc)) from exc
    if (entry.checkpoint / "run.json").is_file():
        key = _checkpoint.key_of(entry.checkpoint)
        if header.get("run") not in (None, key):
            raise ValueError(
                f"{entry.fit_file} belongs to run {header.get('run')}, not to run {key}; "
                "a fit from another run is never shown as this one"
            )
    content = dict(content)
    content["statistic"] = _without_foreign_code(content["statistic"])
    content["callbacks"] = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return persistence.estimator_from_content(content)


def png_source(png: bytes) -> str:
    """A ``data:`` URL of PNG bytes, for an ``<img>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


class FittedViews:
    """The fitted-run pictures and tables, computed once per ``fit.npz`` modification.

    Drawing is serialised (matplotlib's pyplot is not thread-safe, and the
    server answers requests in threads).
    """

    def __init__(self):
        self._cache = StampedCache(lock=threading.RLock())

    def _get(self, entry: RunEntry, what: str, compute):
        return self._cache.get((entry.fit_file, what), _stamp(entry.fit_file), compute)

    def estimator(self, entry: RunEntry):
        return self._get(entry, "estimator", lambda: load_fitted(entry))

    def figure(self, entry: RunEntry, name: str) -> bytes:
        """PNG bytes of ``"pairplot"`` or ``"predictive"`` for the kept epoch."""
        return self._get(entry, name, lambda: self._draw(entry, name))

    def _draw(self, entry, name) -> bytes:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..persistence import MissingStatistic
        from ..plotting import pairplot, plot_predictive

        est = self.estimator(entry)
        if name == "predictive" and isinstance(est.statistic, MissingStatistic):
            drawn = entry.root / "figures" / "predictive.png"
            if drawn.is_file():
                return drawn.read_bytes()
            raise ValueError(
                f"the statistic {est.statistic.name} is not loaded here (the interface imports "
                "no module outside sklearn_epi) and the run has no figures/predictive.png"
            )
        draw = {"pairplot": pairplot, "predictive": plot_predictive}[name]
        fig, _ = draw(est, n_samples=N_SAMPLES)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        plt.close(fig)
        return buffer.getvalue()

    def sensitivity(self, entry: RunEntry) -> tuple:
        """``(mode, eigenvalues, eigenvectors)`` of the Hessian of log q at the mode."""

        def compute():
            from ..analysis import find_mode, sensitivity

            est = self.estimator(entry)
            mode = find_mode(est)
            eigenvalues, eigenvectors = sensitivity(est, mode)
            names = list(est.param_names_)
            return (
                pd.Series(mode, index=names),
                eigenvalues,
                pd.DataFrame(eigenvectors, index=names),
            )

        return self._get(entry, "sensitivity", compute)

    def samples(self, entry: RunEntry) -> pd.DataFrame:
        """``N_SAMPLES`` draws of the kept distribution, one column per parameter."""

        def compute():
            est = self.estimator(entry)
            Z = np.asarray(est.sample(N_SAMPLES, random_state=0))
            return pd.DataFrame(Z, columns=list(est.param_names_))

        return self._get(entry, "samples", compute)


def has_fit(entry: RunEntry) -> bool:
    return Path(entry.fit_file).is_file()
