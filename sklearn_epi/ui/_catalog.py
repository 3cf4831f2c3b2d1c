"""The runs a store directory holds, read from their safe files and re-read only when they change.

A store is a directory of CLI output directories (``sklearn-epi fit CONFIG
--out DIR``: ``config.*``, ``checkpoint/``, then ``result.json`` and
``fit.npz``) and of :class:`~sklearn_epi.RunStore` runs (``run.json``, seed
files, ``fit.npz``), directly or one :class:`~sklearn_epi.RunStore` directory
down; or one run of either kind. Only JSON, TOML, YAML (safe loader) and the
package's safe ``.npz`` format are read, never a pickle; a file that cannot
be read makes its run a row whose status says why.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _checkpoint, _config
from .._reporting import history_frame
from .._seed_state import Saved

#: What the interface writes beside a run it launched: command, pid, exit code.
LAUNCH_FILE = "ui-launch.json"

#: The columns of the runs table, in order.
COLUMNS = (
    "run",
    "status",
    "statistic",
    "mu",
    "sigma2",
    "entropy",
    "converged",
    "epochs",
    "seeds",
    "wall_time",
    "flow",
    "al_params",
    "kind",
)

#: The AL parameters the runs table shows (the run's page shows them all).
SHOWN_AL_PARAMS = ("num_iters", "max_epochs", "batch_size", "c0", "beta", "lr")


@dataclass(frozen=True)
class RunEntry:
    """One run of a store: its name in the store, its kind and its directories.

    ``kind`` is ``"cli"`` (an output directory of ``sklearn-epi fit``, whose
    checkpoint is ``root / "checkpoint"``) or ``"store"`` (a
    :class:`~sklearn_epi.RunStore` run, its own checkpoint).
    """

    name: str
    kind: str
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint" if self.kind == "cli" else self.root

    @property
    def fit_file(self) -> Path:
        return self.root / "fit.npz"

    def config_file(self) -> Path | None:
        """The configuration copy of a CLI run, if it has one."""
        return next(iter(_config.copies_in(self.root)), None)


def _is_cli_output(path: Path) -> bool:
    markers = ("checkpoint", "result.json", LAUNCH_FILE, *_config.COPY_NAMES)
    return any((path / marker).exists() for marker in markers)


def _is_store_run(path: Path) -> bool:
    return (path / "run.json").is_file()


def discover(store) -> list:
    """The :class:`RunEntry` of every run in ``store``, sorted by name."""
    store = Path(store)
    for kind, test in (("cli", _is_cli_output), ("store", _is_store_run)):
        if test(store):
            return [RunEntry(store.resolve().name, kind, store)]
    entries = []
    for child in sorted(p for p in store.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if _is_cli_output(child):
            entries.append(RunEntry(child.name, "cli", child))
        elif _is_store_run(child):
            entries.append(RunEntry(child.name, "store", child))
        else:  # a RunStore's directory: its runs one level down
            for run in sorted(p for p in child.iterdir() if p.is_dir() and _is_store_run(p)):
                entries.append(RunEntry(f"{child.name}/{run.name}", "store", run))
    return entries


def _stamp(*paths) -> tuple:
    """What changes when any of ``paths`` is rewritten (an atomic rename included)."""
    stamps = []
    for path in paths:
        try:
            stat = os.stat(path)
            stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


class StampedCache:
    """Values computed from files, kept until the files' :func:`_stamp` changes.

    An error is kept like a value (a damaged file is not read again until it
    changes) and raised to each caller. With ``lock``, computing is
    serialised under it.
    """

    def __init__(self, lock=None):
        self._held = {}
        self._lock = lock if lock is not None else contextlib.nullcontext()

    def get(self, key, stamp, compute):
        """``compute()``, or its value (or error) from the last call with this ``stamp``."""
        with self._lock:
            held = self._held.get(key)
            if held is None or held[0] != stamp:
                try:
                    held = (stamp, compute(), None)
                except Exception as exc:  # reported by the caller; the server goes on
                    held = (stamp, None, exc)
                self._held[key] = held
        if held[2] is not None:
            raise held[2]
        return held[1]


class RunCatalog:
    """Reads runs on disk, keeping each parsed file until its modification time changes.

    Parameters
    ----------
    store : path-like
        The store directory (see the module docstring).
    """

    def __init__(self, store):
        self.store = Path(store)
        self._cache = StampedCache()

    def entries(self) -> list:
        return discover(self.store)

    def entry(self, name: str) -> RunEntry | None:
        """The run named ``name`` in the store, or None."""
        return next((e for e in self.entries() if e.name == name), None)

    def json_file(self, path: Path):
        """A JSON file's content (None if absent)."""
        if not path.is_file():
            return None
        return self._cache.get(("json", path), _stamp(path), lambda: json.loads(path.read_text()))

    def config(self, entry: RunEntry) -> dict | None:
        path = entry.config_file()
        if path is None:
            return None
        return self._cache.get(("config", path), _stamp(path), lambda: _config.read(path))

    def description(self, entry: RunEntry) -> dict | None:
        """The checkpoint's ``run.json`` (None before the fit wrote it)."""
        path = entry.checkpoint / "run.json"
        if not path.is_file():
            return None
        return self._cache.get(
            ("run", path), _stamp(path), lambda: _checkpoint.read_description(entry.checkpoint)
        )

    def seeds(self, entry: RunEntry) -> dict:
        """``{seed index: Saved}`` of every seed the run's checkpoint holds."""
        held = self.description(entry)
        if held is None:
            return {}
        key = _checkpoint.run_key(held)
        seeds = {}
        for index in _checkpoint.seed_indices(entry.checkpoint):
            file = _checkpoint.seed_file(entry.checkpoint, index)
            stamp = _stamp(file, file.with_suffix(".prev.npz"))

            def read(index=index):
                with warnings.catch_warnings():  # a fallback to .prev is still a reading
                    warnings.simplefilter("ignore")
                    data = _checkpoint.load_seed(entry.checkpoint, index, key)
                return Saved.from_file(data)

            seeds[index] = self._cache.get(("seed", file), stamp, read)
        return seeds

    def history(self, entry: RunEntry) -> pd.DataFrame:
        """The run's ``history_`` so far: training rows and epoch tests of every seed."""
        held = self.description(entry)
        names = held.get("constraints", []) if held else []
        frames = [
            history_frame(saved.state["rows"], saved.state["epochs"], index, names)
            for index, saved in self.seeds(entry).items()
            if saved is not None and saved.state is not None
        ]
        if not frames:
            return history_frame([], [], 0, names)
        return pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)

    def kept_record(self, entry: RunEntry):
        """``(seed, EpochRecord)`` the run reports: the result's, else the latest epoch."""
        seeds = {i: s for i, s in self.seeds(entry).items() if s is not None and s.epochs}
        if not seeds:
            return None
        result = self.json_file(entry.root / "result.json") if entry.kind == "cli" else None
        if result and result.get("best_seed") in seeds:
            index = result["best_seed"]
            wanted = [r for r in seeds[index].epochs if r.epoch == result.get("epoch")]
            if wanted:
                return index, wanted[0]
        for index, saved in seeds.items():
            if saved.finished and saved.result.epoch is not None:
                kept = [r for r in saved.epochs if r.epoch == saved.result.epoch]
                if kept:
                    return index, kept[0]
        index = max(seeds, key=lambda i: seeds[i].epochs[-1].epoch)
        return index, seeds[index].epochs[-1]

    def summary(self, entry: RunEntry, process=None) -> dict:
        """The run's row of the runs table; a damaged file makes a row saying so.

        ``process`` is ``(state, returncode)`` of a process the interface
        launched for the run (:meth:`~sklearn_epi.ui._launcher.Launcher.state`).
        """
        row = dict.fromkeys(COLUMNS)
        row.update(run=entry.name, kind=entry.kind, id=entry.name)
        try:
            self._fill(row, entry)
            row["status"] = self._status(entry, row, process)
        except Exception as exc:  # any damage: the row says what, the other runs are listed
            row["status"] = f"unreadable: {type(exc).__name__}: {exc}"
        if process is not None and process[0] == "running":
            row["status"] = "running"
        return row

    def _fill(self, row, entry):
        config = self.config(entry) if entry.kind == "cli" else None
        if config:
            model, prop = config.get("model", {}), config.get("property", {})
            row.update(
                statistic=str(model.get("statistic", "")),
                mu=_short(prop.get("mu")),
                sigma2=_short(prop.get("sigma2")),
                flow=_short(config.get("flow", {})),
                al_params=_short(config.get("al_params", {})),
                seeds=config.get("fit", {}).get("n_seeds", 1),
            )
        held = self.description(entry)
        if held is not None:
            params = held.get("params", {})
            al = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("al_params.")}
            if config and "max_epochs" in config.get("al_params", {}):
                al["max_epochs"] = repr(config["al_params"]["max_epochs"])
            row.update(
                statistic=held.get("statistic_name", row["statistic"]),
                mu=_short(held.get("mu")),
                sigma2=_short(held.get("sigma2")),
                flow=params.get("flow", row["flow"]),
                al_params=", ".join(f"{k}={al[k]}" for k in SHOWN_AL_PARAMS if k in al),
                seeds=len(held.get("seeds", [])),
            )
        seeds = self.seeds(entry)
        records = [r for s in seeds.values() if s is not None for r in s.epochs]
        if records:
            row["epochs"] = max(r.epoch for r in records)
            row["converged"] = any(r.converged for r in records)
            row["wall_time"] = round(
                sum(s.epochs[-1].wall_time for s in seeds.values() if s and s.epochs), 2
            )
            kept = self.kept_record(entry)
            row["entropy"] = round(float(kept[1].entropy), 4)
        result = self.json_file(entry.root / "result.json") if entry.kind == "cli" else None
        if result:
            row.update(
                converged=bool(result.get("converged")),
                entropy=round(float(result.get("entropy", math.nan)), 4),
                wall_time=round(float(result.get("seed_time", math.nan)), 2),
            )
        row["_result"] = result
        ended = [s is not None and s.finished for s in seeds.values()]
        row["_seeds_ended"] = bool(ended) and all(ended)

    def _status(self, entry, row, process) -> str:
        result = row.pop("_result")
        ended = row.pop("_seeds_ended")
        returncode = None if process is None else process[1]
        if result and returncode in (None, 0, 1, 75):
            return str(result.get("status", "?"))
        if returncode == 75:
            return "stopped"
        if returncode == 2:
            return "configuration error"
        if returncode not in (None, 0, 1):
            return f"failed (exit {returncode})"
        if entry.kind == "store" and entry.fit_file.is_file():
            return "converged" if row["converged"] else "not converged"
        if row["epochs"] is not None:
            return "ended" if ended else "unfinished"
        return "not started"


def _short(value) -> str:
    """A setting as a short readable string for a table cell."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_short(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
