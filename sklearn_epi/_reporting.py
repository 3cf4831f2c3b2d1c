"""What a fit reports: the history frame, and the progress bar and epoch lines as callbacks.

Reporting hangs on the epoch-end hook of :func:`sklearn_epi.optimize.fit_seed`
like any user callback: an :class:`EpochCallback` hears each logged training
chunk (:meth:`~EpochCallback.on_chunk`), each epoch's test record
(:meth:`~EpochCallback.on_epoch_end`, which may stop the seed by returning
``True``) and the seed's end (:meth:`~EpochCallback.on_seed_end`).
"""

from __future__ import annotations

import os
import re
import sys
import time

import numpy as np
import pandas as pd

__all__ = ["EpochCallback", "history_frame", "train_row"]


class EpochCallback:
    """Base of the epoch-end hook; subclass and override what you need.

    A plain function ``f(record) -> bool | None`` passed in ``callbacks`` acts
    as :meth:`on_epoch_end`. Callbacks run in the process fitting the seed
    (a worker when ``n_jobs > 1``).
    """

    def on_seed_start(self, seed_index: int, total_iterations: int) -> None:
        """A seed begins; ``total_iterations`` is the most it may run."""

    def on_chunk(self, seed_index: int, epoch: int, iteration: int, row: dict) -> None:
        """A logged training chunk ended; ``row`` is its ``history_`` row."""

    def on_epoch_end(self, record) -> bool | None:
        """An epoch's test ended (its :class:`~sklearn_epi.optimize.EpochRecord`).

        Return ``True`` to stop this seed after this epoch.
        """

    def on_seed_end(self, seed_index: int, iterations: int) -> None:
        """The seed ended after ``iterations`` training iterations."""


class _FunctionCallback(EpochCallback):
    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, record):
        return self.function(record)


def as_callbacks(callbacks) -> list:
    """The user's callbacks as :class:`EpochCallback` objects."""
    return [c if isinstance(c, EpochCallback) else _FunctionCallback(c) for c in callbacks or ()]


def train_row(seed_index, epoch, iteration, H, cost, c, R, names) -> dict:
    """One ``phase == "train"`` row of ``history_``."""
    row = {
        "seed": seed_index,
        "epoch": epoch,
        "iteration": iteration,
        "phase": "train",
        "H": float(H),
        "cost": float(cost),
        "c": float(c),
    }
    row.update({f"R_{name}": float(r) for name, r in zip(names, R)})
    return row


def history_frame(rows, epochs, seed_index, names) -> pd.DataFrame:
    """A seed's ``history_``: its training rows and one test row per epoch end."""
    test_rows = []
    for e in epochs:
        row = {
            "seed": seed_index,
            "epoch": e.epoch,
            "iteration": e.iteration,
            "phase": "test",
            "H": e.entropy,
            "H_se": e.entropy_se,
            "c": e.c,
            "H_corrected": e.entropy - e.slack,
            "moment_error": e.moment_error,
            "reached": e.reached,
            "converged": e.converged,
            "c_pvalue": e.c_pvalue,
        }
        row.update({f"R_{k}": r for k, r in zip(names, e.R)})
        row.update({f"p_{k}": p for k, p in zip(names, e.pvalues)})
        row.update({f"eta_{k}": v for k, v in zip(names, e.eta)})
        test_rows.append(row)
    columns = (
        ["seed", "epoch", "iteration", "phase", "H", "H_se", "H_corrected", "cost", "c"]
        + [f"R_{k}" for k in names]
        + [f"p_{k}" for k in names]
        + [f"eta_{k}" for k in names]
        + ["moment_error", "reached", "converged", "c_pvalue"]
    )
    frame = pd.DataFrame(rows + test_rows, columns=columns)
    for flag in ("reached", "converged"):
        frame[flag] = frame[flag].astype("boolean")
    frame["phase"] = pd.Categorical(frame["phase"], categories=["train", "test"])
    # Within an epoch, the test row comes after that epoch's training rows.
    order = np.lexsort((frame["phase"].cat.codes, frame["iteration"], frame["epoch"]))
    return frame.iloc[order].reset_index(drop=True)


_PARENT_PID = os.getpid()


def _live_display() -> bool:
    """A terminal or a notebook redraws a bar; a log file gets lines instead."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


#: What a seed's progress shows until its first training steps have run.
STARTING = "initialising and compiling the training step"


class ProgressReport(EpochCallback):
    """``verbose >= 1``: a live tqdm bar per seed, or one stderr line per epoch in a log file.

    The bar counts iterations and shows the entropy and the largest
    violation; it ends at 100 % also when the seed stops early. Until the
    first steps have run it says that the seed is initialising and
    compiling, and its rate and time left leave that time out.

    Parameters
    ----------
    constraint_names : list of str
    live : bool, default=None
        Draw a live bar (a terminal or a notebook) or write lines (a log
        file); ``None`` tells from the process's stderr.
    """

    def __init__(self, constraint_names, live=None):
        self.names = constraint_names
        self.live = _live_display() if live is None else live
        self.bar = None

    def on_seed_start(self, seed_index, total_iterations):
        self.seed_index, self.total, self.start = seed_index, total_iterations, time.perf_counter()
        self.started = False
        if self.live:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total_iterations,
                desc=f"EPI seed {seed_index}",
                leave=True,
                position=seed_index if os.getpid() != _PARENT_PID else None,
            )
            # Until the first chunk: the Gaussian initialisation, tracing and
            # compiling, which can take a minute for a long simulation.
            self.bar.set_postfix_str(STARTING)
        else:
            print(f"EPI seed {seed_index}: {STARTING}", file=sys.stderr, flush=True)

    def on_chunk(self, seed_index, epoch, iteration, row):
        if self.bar is not None:
            if not self.started:
                # The rate and time left count from here, not from the start,
                # which included compiling.
                self.bar.reset()
                self.started = True
            self.bar.update(iteration - self.bar.n)
            max_r = max(abs(row[f"R_{k}"]) for k in self.names)
            self.bar.set_postfix(H=f"{row['H']:.3f}", maxR=f"{max_r:.3g}")

    def on_epoch_end(self, record):
        if self.bar is None and record.epoch > 0:
            print(
                f"EPI seed {self.seed_index}: epoch {record.epoch}, iteration "
                f"{record.iteration}/{self.total}, H={record.entropy:.4f}, "
                f"max|R|={np.max(np.abs(record.R)):.3g}, "
                f"{time.perf_counter() - self.start:.1f} s",
                file=sys.stderr,
                flush=True,
            )

    def on_seed_end(self, seed_index, iterations):
        if self.bar is not None:
            self.bar.total = max(iterations, 1)  # stopped early: the bar still ends full
            self.bar.n = iterations
            self.bar.refresh()
            self.bar.close()


class EpochLines(EpochCallback):
    """``verbose >= 2``: one stdout line per epoch (entropy, ||R||, c, p-values)."""

    def __init__(self, constraint_names):
        self.names = constraint_names

    def on_epoch_end(self, record):
        p = ", ".join(f"{k}={v:.3f}" for k, v in zip(self.names, record.pvalues))
        line = (
            f"[seed {record.seed_index}] epoch {record.epoch:2d}  H={record.entropy:.4f}  "
            f"||R||={np.linalg.norm(record.R):.4g}  c={record.c:.3g}  p: {p}  "
            f"converged={record.converged}"
        )
        if _live_display():
            from tqdm.auto import tqdm

            tqdm.write(line, file=sys.stdout)  # above the bar, not glued to it
        else:
            print(line, flush=True)


OPTIMISER_ADVICE = (
    "; the optimisation diverged: try a smaller al_params.lr or al_params.c0, or tighter bounds"
)


def root_cause(exc) -> str:
    """``"Type: message"`` of the user's error inside TensorFlow's wrapping.

    Errors raised in traced or ``py_function`` code reach us wrapped (a
    ``StagingError`` or ``UnknownError`` whose text embeds the original
    ``Type: message`` line after a traceback); the last such line is the cause.
    """
    text = str(exc)
    causes = re.findall(r"\b([A-Za-z_][\w.]*(?:Error|Exception|Exit)): ([^\n]*)", text)
    if causes:
        kind, detail = causes[-1]
        return f"{kind.rsplit('.', 1)[-1]}: {detail.strip()}"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first}"


#: What to do about a statistic that is not finite on part of the support.
STATISTIC_ADVICE = (
    ": the statistic is undefined on part of the support; make it finite there "
    "(e.g. guard a log or sqrt) or tighten the bounds"
)


def _undefined_statistic(z, column, value, spec) -> tuple[str, dict]:
    """``"statistic 'x' (nan)"`` and the point ``z`` in parameter names."""
    example = {k: float(f"{v:.4g}") for k, v in zip(spec.support.names, z)}
    return f"statistic {spec.prop.statistic_names[column]!r} ({value})", example


def training_cause(trainer, state, spec, undefined: bool) -> tuple[str, str]:
    """``(what, advice)`` for a training chunk that went non-finite.

    ``undefined`` (the trainer's flag) says whether the statistic was not
    finite at a finite sampled point. An example point is then looked for
    in samples of the epoch's starting distribution (``state.weights``; the
    weights after the failed step are NaN): a seed that fails in training
    gets the same diagnosis as one that fails in a test.
    """
    if not undefined:
        return "loss or gradient", OPTIMISER_ADVICE
    trainer.flow.set_weights(state.weights)
    z, T, log_q = (v.numpy() for v in trainer.evaluate(20 * spec.prop.n_test))
    m_f = spec.prop.n_statistics
    if np.isfinite(T[:, :m_f]).all():
        return "statistic at a training sample", STATISTIC_ADVICE
    return non_finite_cause(z, T.astype(float), log_q, spec, "samples of the epoch's start")


def non_finite_cause(z, T, log_q, spec, samples="test samples") -> tuple[str, str]:
    """What is non-finite on the test samples, how often and where; and what to do.

    Returns ``(what, advice)`` for :class:`sklearn_epi._train.NonFinite`: a
    non-finite statistic is named with one example point in parameter names
    (the fix is in the statistic or the bounds); otherwise the density or a
    squared deviation overflowed (the optimisation diverged).
    """
    n, m_f = len(z), spec.prop.n_statistics
    bad_f = ~np.isfinite(T[:, :m_f])
    if bad_f.any():
        column = int(np.argmax(bad_f.sum(axis=0)))
        rows = np.flatnonzero(bad_f[:, column])
        name, example = _undefined_statistic(z[rows[0]], column, T[rows[0], column], spec)
        return f"{name} at {len(rows)} of {n} {samples}, e.g. z = {example},", STATISTIC_ADVICE
    rows = np.flatnonzero(~np.isfinite(log_q) | ~np.isfinite(T).all(axis=1))
    return f"log density or squared deviation at {len(rows)} of {n} {samples}", OPTIMISER_ADVICE
