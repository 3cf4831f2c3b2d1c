"""Everything a seed does around Algorithm 1: the hooks of :func:`~sklearn_epi.optimize.fit_seed`.

:class:`SeedRun` owns what the algorithm's loop leaves out: the compiled
trainer (checked out of the process's pool and given back), the state an
earlier call saved (a checkpoint or a warm start), the epoch-end hooks
(checkpoint write, callbacks, the stopping rules), the ``max_time``
deadline, and what ends a seed early (a failure, a non-finite step, Ctrl-C,
the deadline), which becomes the result's ``status`` and ``message``.
"""

from __future__ import annotations

import copy
import time
import traceback

import numpy as np
import tensorflow as tf

from . import _checkpoint, _reporting
from ._quiet import start_xla
from ._seed_state import UNFINISHED, Saved, SeedResult, SeedState
from ._train import NonFinite, checkin, checkout
from .convergence import patience_ran_out

__all__ = ["SeedRun"]


class _OutOfTime(Exception):
    """The fit's ``max_time`` would be passed by the next epoch."""


class SeedRun:
    """The hooks around one call of :func:`~sklearn_epi.optimize.fit_seed`.

    Used as a context manager around the epoch loop: :meth:`trainer` checks
    a compiled trainer out of the pool; leaving gives it back and turns an
    exception that ends the seed (compiling the statistic included) into
    its status and message.
    """

    def __init__(self, spec, seed: int, seed_index: int):
        self.spec, self.seed, self.seed_index = spec, seed, seed_index
        self.started = time.perf_counter()
        self.state = self.ended = self._key = self._trainer = None
        self.status, self.message, self.traceback = "", "", ""
        self.ended_by, self.stopped, self.epoch_seconds = "max_epochs", False, 0.0
        self.jit_compile = spec.jit_compile
        _limit_threads(spec.threads)
        start_xla()  # after the thread caps: XLA's first compilation fixes the pools
        given = _saved_state(spec, seed_index)
        saved = Saved.from_file(given)
        if saved is not None and saved.finished and not saved.can_continue(spec.al.max_epochs):
            # Nothing to do: the same result again, and for a warm start the
            # same state, which the next call (a larger max_epochs) goes on from.
            self.ended = copy.copy(saved.result)
            self.ended.final_state = given if spec.keep_state else None
        #: The state at the last finished epoch: what a checkpoint holds.
        self.snapshot = None if saved is None else saved.state
        self.callbacks = _seed_callbacks(spec)

    @property
    def epochs(self) -> list:
        """The seed's epoch records so far (none before its initial test)."""
        return [] if self.state is None else self.state.epochs

    @property
    def iteration(self) -> int:
        return 0 if self.state is None else self.state.iteration

    def __enter__(self):
        al = self.spec.al
        for callback in self.callbacks:
            callback.on_seed_start(self.seed_index, al.max_epochs * al.num_iters)
        return self

    def trainer(self):
        """A compiled trainer from the process's pool, if the seed may start before the deadline."""
        if self._out_of_time():
            raise _OutOfTime("max_time reached before this seed started")
        spec = self.spec
        self._key, self._trainer = checkout(
            "al", spec.flow, spec.support, spec.al.batch_size, spec.dtype, spec.jit_compile,
            spec.statistic, spec.prop,
        )  # fmt: skip
        self.jit_compile = self._trainer.jit_compile
        return self._trainer

    def new_state(self) -> SeedState:
        """A fresh seed's state: no epochs yet, the ``c`` decisions' generator at ``seed``."""
        return SeedState(
            self.seed_index, np.random.default_rng(self.seed), [], started=self.started
        )

    def resumed(self, trainer):
        """The saved :class:`~sklearn_epi._seed_state.SeedState`, restored into ``trainer``."""
        if self.snapshot is None:
            return None
        state = SeedState.from_file(self.snapshot, self.seed_index)
        al = self.spec.al
        trainer.start_al(state.weights, self.seed, state.step, al.lr, al.c0, self.spec.prop)
        state.restore(trainer)
        self.started = state.started
        return state

    def goes_on(self, state) -> bool:
        """Whether another epoch runs: one is left, no rule stopped the seed, it ends in time."""
        self.state = state
        if self.stopped or state.epochs[-1].epoch >= self.spec.al.max_epochs:
            return False
        if self._out_of_time():
            raise _OutOfTime(f"stopped by max_time after epoch {state.epochs[-1].epoch}")
        self._epoch_start = time.perf_counter()
        return True

    def epoch_end(self, trainer, state, record) -> None:
        """Checkpoint the state, tell the callbacks, and apply the stopping rules."""
        state.capture(trainer)
        self.snapshot = state.to_file()
        if self.spec.checkpoint is not None:
            _checkpoint.save_seed(
                self.spec.checkpoint, self.seed_index, self.snapshot, self.spec.run_key
            )
        stop = [callback.on_epoch_end(record) for callback in self.callbacks]
        al = self.spec.al
        if (
            any(stop)
            or (record.converged and al.stop_early)
            or patience_ran_out(state.epochs, al.patience)
        ):
            self.stopped, self.ended_by = True, "stop"
        self.epoch_seconds = time.perf_counter() - self._epoch_start

    def __exit__(self, kind, exc, tb):
        where = f"epoch {len(self.epochs)}, iteration {self.iteration}"
        if kind is _OutOfTime:
            # Like an interrupt: the epochs done are kept, and a checkpointed
            # seed is not marked finished, so the next fit goes on.
            self.status, self.message = "out of time", str(exc)
        elif kind is KeyboardInterrupt:
            self.status, self.message = "interrupted", f"interrupted during {where}"
        elif kind is NonFinite:
            self.status, self.message, self.ended_by = "failed", str(exc), "failed"
        elif kind is not None and issubclass(kind, Exception):
            # A statistic that raises (a rare solver failure, a bug) fails this
            # seed only: its finished epochs and the other seeds are kept.
            self.status, self.ended_by = "failed", "failed"
            self.message = f"{_reporting.root_cause(exc)} (raised in {where})"
            self.traceback = "".join(traceback.format_exception(kind, exc, tb))
        if self._trainer is not None:
            checkin(self._key, self._trainer)
            self._trainer = None
        for callback in self.callbacks:
            callback.on_seed_end(self.seed_index, self.iteration)
        return kind is None or issubclass(kind, (Exception, KeyboardInterrupt))

    def result(self, chosen) -> SeedResult:
        """The seed's :class:`SeedResult` around its chosen epoch, saved for a later call."""
        spec, epochs = self.spec, self.epochs
        unfinished = self.status in UNFINISHED
        if chosen is None and not unfinished:
            self.status = "failed"
        elif not self.status:
            self.status = "converged" if chosen.converged else "ended"
        rows = [] if self.state is None else self.state.rows
        result = SeedResult.without_epochs(
            self.seed_index, self.seed, self.status, self.message, self.traceback
        )
        result.message = self.message or ("" if chosen is not None else "no usable epoch")
        result.history = _reporting.history_frame(
            rows, epochs, self.seed_index, spec.prop.constraint_names
        )
        result.n_iter, result.jit_compile = self.iteration, self.jit_compile
        result.wall_time = time.perf_counter() - self.started
        # Statistic evaluations: every training sample and every test sample
        # (epoch 0's included), what simulation-based peers count.
        result.n_simulations = (
            self.iteration * spec.al.batch_size
            + len(epochs) * spec.prop.n_test * spec.prop.n_batches
        )
        _fill_from(result, chosen, epochs)
        # What a later call needs: the state to go on from, or this result.
        # A copy: with keep_state, result.final_state holds this Saved, which
        # must not hold result itself (a cycle a saved fit could not write).
        ended = Saved(self.snapshot, copy.copy(result), self.ended_by)
        saved = Saved(self.snapshot) if unfinished else ended
        if self.snapshot is not None or not unfinished:
            if spec.checkpoint is not None:
                _checkpoint.save_seed(
                    spec.checkpoint, self.seed_index, saved.to_file(), spec.run_key
                )
            if spec.keep_state:
                result.final_state = saved.to_file()
        return result

    def _out_of_time(self) -> bool:
        """Whether an epoch as long as the last one would end after the fit's deadline."""
        deadline = self.spec.deadline
        return deadline is not None and self.spec.clock() + self.epoch_seconds > deadline


def _fill_from(result, chosen, epochs) -> None:
    """The chosen epoch's values, and the statistic's range over every epoch."""
    ranges = [e.statistic_range for e in epochs]
    if ranges:
        result.statistic_range = np.stack(
            [np.min([r[0] for r in ranges], axis=0), np.max([r[1] for r in ranges], axis=0)]
        )
    if chosen is not None:
        for name in ("weights", "converged", "epoch", "entropy", "entropy_se", "eta", "c"):
            setattr(result, name, getattr(chosen, name))
        for name in ("pvalues", "worst_t", "moment_error", "slack"):
            setattr(result, name, getattr(chosen, name))


def _saved_state(spec, seed_index) -> dict | None:
    """A seed's checkpoint dictionary from an earlier call: its checkpoint, or the warm start."""
    if spec.checkpoint is not None:
        return _checkpoint.load_seed(spec.checkpoint, seed_index, spec.run_key)
    if spec.warm_states is not None:
        return spec.warm_states.get(seed_index)
    return None


def _seed_callbacks(spec) -> list:
    """The built-in reporting for ``verbose``, then the user's callbacks."""
    names = spec.prop.constraint_names
    built_in = []
    if spec.verbose >= 1:
        built_in.append(_reporting.ProgressReport(names))
    if spec.verbose >= 2:
        built_in.append(_reporting.EpochLines(names))
    return built_in + _reporting.as_callbacks(spec.callbacks)


def _limit_threads(threads):
    """Cap TF's thread pools in a worker so n_jobs processes share the cores."""
    if not threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        # The runtime is already initialised in this process (reused worker
        # or the parent itself): keep its pools.
        pass
