"""One seed's augmented Lagrangian optimisation: Algorithm 1 of the paper, step by step.

:func:`fit_seed` reads as the algorithm: fit the flow to a Gaussian
(:func:`initialise`), then per epoch :func:`train_epoch`, :func:`test_epoch`
and :func:`update_multipliers`, and finally the kept epoch is chosen by
:func:`~sklearn_epi.convergence.select_best`, the rule that also picks the
seed. It is pure: a :class:`SeedSpec` goes in, a :class:`SeedResult` of NumPy
arrays and DataFrames comes out, so it runs in any joblib worker (local
process, dask, ray) and nothing TensorFlow crosses a process boundary. The
compiled TensorFlow steps live in :mod:`sklearn_epi._train`, the reporting in
:mod:`sklearn_epi._reporting`.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.base import BaseEstimator

from . import _checkpoint, _reporting
from ._al_params import ALParams
from ._property import EmergentProperty
from ._quiet import start_xla
from ._train import NonFinite, checkin, checkout
from .convergence import entropy_estimate, penalty_should_grow, select_best
from .support import Support

__all__ = ["ALParams", "SeedSpec", "SeedResult", "EpochRecord", "fit_seed", "initial_weights"]


@dataclass
class SeedSpec:
    """Everything one seed's optimisation needs (picklable)."""

    flow: BaseEstimator
    support: Support
    statistic: object
    prop: EmergentProperty
    al: ALParams
    init_mean: np.ndarray
    init_std: np.ndarray
    alpha: float
    n_test: int
    n_test_batches: int = 200
    dtype: str = "float32"
    jit_compile: bool = True
    verbose: int = 0
    threads: int | None = None
    memory: object = None
    callbacks: tuple = ()
    checkpoint: str | None = None
    deadline: float | None = None
    warm_states: dict | None = None
    keep_state: bool = False
    init_samples: np.ndarray | None = None


@dataclass
class EpochRecord:
    """An epoch's test on fresh samples: what the epoch-end hook receives.

    ``c`` and ``eta`` are the values the epoch trained with; the update that
    follows the test is in the next record.
    """

    seed_index: int
    epoch: int
    iteration: int
    entropy: float
    entropy_se: float
    R: np.ndarray
    pvalues: np.ndarray
    converged: bool
    c: float
    eta: np.ndarray
    R_batches: np.ndarray = field(repr=False)
    worst_t: float
    weights: list = field(repr=False)
    wall_time: float
    statistic_range: np.ndarray = field(repr=False, default=None)
    c_pvalue: float = np.nan


@dataclass
class SeedResult:
    """A seed's outcome: plain arrays and DataFrames, no TensorFlow objects."""

    seed_index: int
    seed: int
    weights: list | None
    converged: bool
    failed: bool
    epoch: int | None
    entropy: float
    entropy_se: float
    eta: np.ndarray | None
    c: float
    history: pd.DataFrame
    n_iter: int
    wall_time: float
    jit_compile: bool
    message: str = ""
    pvalues: np.ndarray | None = None
    worst_t: float = np.inf
    interrupted: bool = False
    traceback: str = ""
    statistic_range: np.ndarray | None = None
    n_simulations: int = 0
    final_state: dict | None = field(default=None, repr=False)


def fit_seed(spec: SeedSpec, seed: int, seed_index: int = 0) -> SeedResult:
    """Run Algorithm 1 (paper, Methods) for one seed and return its result as plain data.

    :func:`initialise` (line 1: the flow fitted to the initial Gaussian),
    then per epoch :func:`train_epoch` (Adam on the augmented Lagrangian),
    :func:`test_epoch` (the convergence test on fresh samples) and
    :func:`update_multipliers` (``eta`` and ``c``), until ``max_epochs``,
    a converged epoch with ``stop_early``, ``patience`` epochs after the
    best converged one, or a callback asking to stop; the kept epoch is
    :func:`~sklearn_epi.convergence.select_best`'s choice.

    A non-finite step or an exception (from the statistic, say) marks the
    seed failed, with the message and traceback text, and its last usable
    epoch is still returned; Ctrl-C ends it early with the epochs done so far.

    With ``spec.checkpoint`` (a directory) the seed's state is written after
    every epoch (:func:`_state`) and its result when it ends; a later
    call continues from the last finished epoch (:func:`resume`) exactly as
    an uninterrupted fit would, or returns the result of a seed that ended.

    Parameters
    ----------
    spec : SeedSpec
    seed : int
        Seed of this fit's weights, samples and decisions.
    seed_index : int, default=0
        Position of the seed, recorded in the history.

    Returns
    -------
    SeedResult
    """
    start = time.perf_counter()
    al, names = spec.al, spec.prop.constraint_names
    _limit_threads(spec.threads)
    start_xla()  # after the thread caps: XLA's first compilation fixes the pools
    saved = _saved_state(spec, seed_index)
    if saved is not None and saved["finished"]:
        if not _can_continue(saved, al):
            return saved["result"]  # ended before: the same result again
        saved = saved["state"]  # ended at a smaller max_epochs: go on
    callbacks = _seed_callbacks(spec)
    for callback in callbacks:
        callback.on_seed_start(seed_index, al.max_epochs * al.num_iters)
    rows, epochs, progress = [], [], {"iteration": 0}
    outcome = {"failed": False, "interrupted": False, "message": "", "traceback": ""}
    key = trainer = None
    epoch_seconds, ended_by, state = 0.0, "max_epochs", None
    try:
        if _out_of_time(spec, epoch_seconds):
            raise _OutOfTime("max_time reached before this seed started")
        if saved is None:
            key, trainer = initialise(spec, seed)
            rng = np.random.default_rng(seed)
            epochs.append(test_epoch(trainer, spec, seed_index, 0, 0, start))
            calibrate(trainer, spec, epochs[0])
        else:
            key, trainer, rng = resume(spec, seed, saved)
            rows, epochs = list(saved["rows"]), list(saved["epochs"])
            progress["iteration"] = saved["iteration"]
            start -= saved["wall_time"]
        for epoch in range(len(epochs), al.max_epochs + 1):
            if _out_of_time(spec, epoch_seconds):
                raise _OutOfTime(f"stopped by max_time after epoch {epoch - 1}")
            epoch_start = time.perf_counter()
            rows += train_epoch(trainer, spec, seed_index, epoch, progress, callbacks)
            record = test_epoch(trainer, spec, seed_index, epoch, progress["iteration"], start)
            update_multipliers(trainer, record, epochs[-1], al, rng)
            epochs.append(record)
            state = _state(trainer, rng, rows, epochs, progress, start)
            if spec.checkpoint is not None:
                _checkpoint.save_seed(spec.checkpoint, seed_index, state)
            stop = [callback.on_epoch_end(record) for callback in callbacks]
            if any(stop) or (record.converged and al.stop_early) or _past_patience(epochs, al):
                ended_by = "stop"
                break
            epoch_seconds = time.perf_counter() - epoch_start
    except _OutOfTime as exc:
        # Like an interrupt: the epochs done are kept, and a checkpointed
        # seed is not marked finished, so the next fit goes on.
        outcome.update(interrupted=True, message=str(exc))
    except NonFinite as exc:
        ended_by = "failed"
        outcome.update(failed=True, message=str(exc))
    except Exception as exc:
        # A statistic that raises (a rare solver failure, a bug) fails this
        # seed only: its finished epochs and the other seeds are kept.
        where = f"raised in epoch {len(epochs)}, iteration {progress['iteration']}"
        ended_by = "failed"
        outcome.update(
            failed=True,
            message=f"{_reporting.root_cause(exc)} ({where})",
            traceback=traceback.format_exc(),
        )
    except KeyboardInterrupt:
        where = f"during epoch {len(epochs)} at iteration {progress['iteration']}"
        outcome.update(interrupted=True, message=f"interrupted {where}")
    finally:
        if trainer is not None:
            checkin(key, trainer)
        for callback in callbacks:
            callback.on_seed_end(seed_index, progress["iteration"])
    result = _seed_result(
        seed,
        seed_index,
        chosen=_kept_epoch(epochs),
        history=_reporting.history_frame(rows, epochs, seed_index, names),
        epochs=epochs,
        iterations=progress["iteration"],
        wall_time=time.perf_counter() - start,
        jit_compile=spec.jit_compile if trainer is None else trainer.jit_compile,
        **outcome,
    )
    # Statistic evaluations: every training sample and every test sample
    # (epoch 0's included), what simulation-based peers count.
    result.n_simulations = progress["iteration"] * al.batch_size + len(epochs) * (
        spec.n_test * spec.n_test_batches
    )
    if state is None and saved is not None:
        state = saved  # no epoch finished in this call
    # What a later call needs: to go on (interrupted, or more epochs), or to
    # return this result again.
    final = (
        state  # not finished: the next call resumes it
        if result.interrupted
        else {"finished": True, "ended_by": ended_by, "state": state, "result": result}
    )
    keep = state is not None or not result.interrupted
    if spec.checkpoint is not None and keep:
        _checkpoint.save_seed(spec.checkpoint, seed_index, final)
    if spec.keep_state and keep:
        result.final_state = final
    return result


def _kept_epoch(epochs):
    """The epoch a seed keeps: :func:`select_best` over its trained epochs (not epoch 0)."""
    return select_best([e for e in epochs if e.epoch > 0])


def _past_patience(epochs, al) -> bool:
    """Whether ``al.patience`` epochs have ended since the converged epoch a fit would keep."""
    if al.patience is None:
        return False
    kept = _kept_epoch(epochs)
    return kept is not None and kept.converged and epochs[-1].epoch - kept.epoch >= al.patience


def _saved_state(spec, seed_index):
    """A seed's state from an earlier call: its checkpoint, or the estimator's warm start."""
    if spec.checkpoint is not None:
        return _checkpoint.load_seed(spec.checkpoint, seed_index)
    if spec.warm_states is not None:
        return spec.warm_states.get(seed_index)
    return None


def _can_continue(saved, al) -> bool:
    """Whether a seed that ended did so only for want of epochs that ``al`` now allows."""
    state = saved.get("state")
    return (
        saved.get("ended_by") == "max_epochs"
        and state is not None
        and state["epochs"][-1].epoch < al.max_epochs
    )


class _OutOfTime(Exception):
    """The fit's ``max_time`` would be passed by the next epoch."""


def _out_of_time(spec, epoch_seconds) -> bool:
    """Whether an epoch as long as the last one would end after the fit's deadline."""
    return spec.deadline is not None and _clock() + epoch_seconds > spec.deadline


#: The clock of ``SeedSpec.deadline`` (wall time: it holds across processes).
_clock = time.time


def _state(trainer, rng, rows, epochs, progress, start) -> dict:
    """A seed's state after an epoch: what :func:`resume` needs to go on exactly as before."""
    return {
        "finished": False,
        "weights": trainer.flow.get_weights(),
        "step": int(trainer.step.numpy()),
        "eta": trainer.eta.numpy(),
        "c": trainer.c.numpy(),
        "scale": trainer.scale.numpy(),
        "rng": rng.bit_generator.state,
        "rows": list(rows),
        "epochs": list(epochs),
        "iteration": progress["iteration"],
        "wall_time": time.perf_counter() - start,
    }


def _seed_result(seed, seed_index, chosen, failed, interrupted, message, **fields):
    """The seed's :class:`SeedResult`: the chosen epoch's values, or no weights if none."""
    result = SeedResult(
        seed_index=seed_index,
        seed=seed,
        weights=None,
        converged=False,
        failed=failed or (chosen is None and not interrupted),
        epoch=None,
        entropy=np.nan,
        entropy_se=np.nan,
        eta=None,
        c=np.nan,
        history=fields["history"],
        n_iter=fields["iterations"],
        wall_time=fields["wall_time"],
        jit_compile=fields["jit_compile"],
        message=message or ("" if chosen is not None else "no usable epoch"),
        interrupted=interrupted,
        traceback=fields["traceback"],
    )
    ranges = [e.statistic_range for e in fields["epochs"]]
    if ranges:
        result.statistic_range = np.stack(
            [np.min([r[0] for r in ranges], axis=0), np.max([r[1] for r in ranges], axis=0)]
        )
    if chosen is not None:
        for name in ("weights", "converged", "epoch", "entropy", "entropy_se", "eta", "c"):
            setattr(result, name, getattr(chosen, name))
        result.pvalues, result.worst_t = chosen.pvalues, chosen.worst_t
    return result


def initialise(spec: SeedSpec, seed: int):
    """Algorithm 1, line 1: fit q to the initial Gaussian, then ready the AL trainer.

    The Gaussian fit is :func:`initial_weights`, cached by ``spec.memory``;
    the trainer is a compiled one from the process's pool, started at this
    seed's weights and random stream with ``c = c0`` and ``eta = 0``.

    Returns
    -------
    key, trainer
        Give the trainer back with :func:`sklearn_epi._train.checkin`.
    """
    al = spec.al
    init = initial_weights if spec.memory is None else spec.memory.cache(initial_weights)
    weights = init(
        spec.flow,
        spec.support,
        spec.init_mean,
        spec.init_std,
        al.init_iters,
        al.batch_size,
        al.lr,
        seed,
        spec.dtype,
        spec.jit_compile,
        spec.init_samples,
    )
    key, trainer = _checkout_trainer(spec)
    # The AL phase continues the initialisation's random stream.
    trainer.start_al(weights, seed, al_start_step(spec), al.lr, al.c0, spec.prop)
    return key, trainer


def resume(spec: SeedSpec, seed: int, saved: dict):
    """Ready the AL trainer where a checkpoint (:func:`_state`) left the seed.

    Returns
    -------
    key, trainer, rng
        The trainer at the saved weights, stream position, ``eta``, ``c`` and
        units, and the generator of the ``c`` decisions at its saved state.
    """
    al = spec.al
    key, trainer = _checkout_trainer(spec)
    trainer.start_al(saved["weights"], seed, saved["step"], al.lr, al.c0, spec.prop)
    for name in ("eta", "c", "scale"):
        getattr(trainer, name).assign(saved[name])
    rng = np.random.default_rng(seed)
    rng.bit_generator.state = saved["rng"]
    return key, trainer, rng


def _checkout_trainer(spec):
    return checkout(
        "al",
        spec.flow,
        spec.support,
        spec.al.batch_size,
        spec.dtype,
        spec.jit_compile,
        spec.statistic,
        spec.prop,
    )


def calibrate(trainer, spec, initial) -> None:
    """Give a means-only property its violations' units from the test of the initial q.

    With ``sigma2`` the units are the target spreads; without, the
    statistic's spread under the initial q (:meth:`EmergentProperty.scales`).
    """
    if spec.prop.sigma2 is None:
        spread = initial.R_batches.std(axis=0, ddof=1) * np.sqrt(spec.n_test)
        trainer.scale.assign(spec.prop.scales(spread).astype(trainer.scale.dtype.as_numpy_dtype))


def initial_weights(
    flow_spec,
    support,
    mean,
    std,
    init_iters,
    batch_size,
    lr,
    seed,
    dtype,
    jit_compile,
    samples=None,
) -> list:
    """Flow weights after fitting q to the initial distribution (Algorithm 1, line 1).

    ``init_iters`` Adam steps on KL(q || N(mean, diag(std^2))); with
    ``samples``, a further ``init_iters`` steps of maximum likelihood on them,
    so the fit of the points starts from a flow already at their scale.
    A pure function of its arguments, so ``joblib.Memory`` can cache it: grid
    searches over AL hyperparameters (``c0``, ``beta``, ...) then share one
    initialisation per flow, support, initial distribution and seed.

    Returns
    -------
    list of ndarray
        The weights, in :meth:`FlowDistribution.get_weights` order.
    """
    weights = flow_spec.build(support, seed=seed, dtype=tf.as_dtype(dtype)).get_weights()
    if not init_iters:
        return weights
    steps = tf.constant(init_iters, tf.int32)
    key, gaussian = checkout("gaussian", flow_spec, support, batch_size, dtype, jit_compile)
    try:
        gaussian.start(weights, seed, 0, lr)
        gaussian.mean.assign(mean)
        gaussian.std.assign(std)
        _, finite = gaussian.steps(steps)
        if not bool(finite):
            raise NonFinite(
                0, 0, "loss in the Gaussian initialisation", _reporting.OPTIMISER_ADVICE
            )
        weights = gaussian.flow.get_weights()
    finally:
        checkin(key, gaussian)
    if samples is None:
        return weights
    key, fit = checkout("samples", flow_spec, support, batch_size, dtype, jit_compile)
    try:
        fit.start(weights, seed, init_iters, lr)
        _, finite = fit.steps(tf.constant(samples, fit.flow.dtype), steps)
        if not bool(finite):
            raise NonFinite(0, 0, "loss in the fit of init['samples']", _reporting.OPTIMISER_ADVICE)
        return fit.flow.get_weights()
    finally:
        checkin(key, fit)


def al_start_step(spec: SeedSpec) -> int:
    """Position in the seed's random stream where the AL phase begins (after the init)."""
    return spec.al.init_iters * (1 if spec.init_samples is None else 2)


def train_epoch(trainer, spec, seed_index, epoch, progress, callbacks) -> list:
    """Algorithm 1, lines 4-7: ``num_iters`` Adam steps on the augmented Lagrangian.

    Adam's moments restart with the epoch, because ``eta`` and ``c`` changed
    the objective. The steps run in compiled chunks of ``log_rate``; the host
    reads values (one ``history_`` row) only between chunks.

    Returns
    -------
    list of dict
        The epoch's training rows of ``history_``.
    """
    al, names = spec.al, spec.prop.constraint_names
    trainer.adam.reset(al.num_iters if al.lr_schedule == "cosine" else 0)
    rows, done = [], 0
    while done < al.num_iters:
        chunk = min(al.log_rate, al.num_iters - done)
        H, cost, R, finite = trainer.train(tf.constant(chunk, tf.int32))
        done += chunk
        progress["iteration"] += chunk
        if not bool(finite):
            raise NonFinite(epoch, progress["iteration"], advice=_reporting.OPTIMISER_ADVICE)
        row = _reporting.train_row(
            seed_index, epoch, progress["iteration"], H, cost, trainer.c.numpy(), R.numpy(), names
        )
        rows.append(row)
        for callback in callbacks:
            callback.on_chunk(seed_index, epoch, progress["iteration"], row)
    return rows


def test_epoch(trainer, spec, seed_index, epoch, iteration, start) -> EpochRecord:
    """The epoch-end test on fresh samples (paper, Methods, "Augmented Lagrangian optimization").

    Draws ``n_test_batches`` batches of ``n_test`` samples in a few large
    passes and computes, from the one sample: the batch estimates of every
    constraint violation and their two-sided p-values (converged when all
    exceed ``alpha / m``), the entropy with its standard error, and the
    batch norms ``||R||`` that the penalty test compares across epochs.
    """
    B, n = spec.n_test_batches, spec.n_test
    z_parts, T_parts, logq_parts = [], [], []
    chunk = max(1, min(B, 20_000 // max(n, 1)))
    for first in range(0, B, chunk):
        z, T, log_q = trainer.evaluate(min(chunk, B - first) * n)
        z_parts.append(z.numpy())
        T_parts.append(T.numpy())
        logq_parts.append(log_q.numpy())
    T = np.concatenate(T_parts).astype(float)
    log_q = np.concatenate(logq_parts).astype(float)
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(log_q))):
        what, advice = _reporting.non_finite_cause(np.concatenate(z_parts), T, log_q, spec)
        raise NonFinite(epoch, iteration, what, advice)
    R_batches = spec.prop.batch_violations(T, B)
    pvalues, converged = spec.prop.test(R_batches, spec.alpha)
    H, H_se = entropy_estimate(log_q)
    spread = R_batches.std(axis=0, ddof=1) + np.finfo(float).tiny
    return EpochRecord(
        seed_index=seed_index,
        epoch=epoch,
        iteration=iteration,
        entropy=H,
        entropy_se=H_se,
        # Against the targets in the fit's dtype, the ones training sees.
        R=T.mean(axis=0) - trainer.targets.numpy().astype(float),
        pvalues=pvalues,
        converged=epoch > 0 and converged,
        c=float(trainer.c.numpy()),
        eta=trainer.eta.numpy().astype(float),
        R_batches=R_batches,
        # Best effort when nothing converges: the worst constraint's distance
        # from zero in units of its batch-to-batch spread.
        worst_t=float(np.max(np.abs(R_batches.mean(axis=0)) / spread)),
        weights=trainer.flow.get_weights(),
        wall_time=time.perf_counter() - start,
        # What the statistic reached on these samples: tells an unreachable
        # target from a fit that ran out of budget.
        statistic_range=np.stack(
            [T[:, : spec.prop.n_statistics].min(axis=0), T[:, : spec.prop.n_statistics].max(axis=0)]
        ),
    )


def update_multipliers(trainer, record, previous, al, rng) -> None:
    r"""Algorithm 1, lines 9-13: :math:`\eta \leftarrow \eta + c \hat R / s^2`, then maybe grow c.

    ``eta`` moves by the gradient of the penalty
    :math:`\frac{c}{2}\|R / s\|^2` of the epoch that just ended (``s``, the
    violations' units, is ``trainer.scale``). ``c`` is multiplied by ``beta``
    with probability ``1 - p``, where ``p`` tests that ``E||R / s||`` shrank
    by the factor ``gamma`` since the previous epoch
    (:func:`~sklearn_epi.convergence.penalty_should_grow`, decided with the
    seed's own generator). The test's p-value is stored in the record.

    A converged epoch leaves ``c`` as it is: its violations are already
    indistinguishable from zero, so they cannot shrink by ``gamma`` and the
    paper's rule would grow ``c`` every epoch, without bound.
    """
    scale = trainer.scale.numpy().astype(float)
    eta = record.eta + record.c * record.R / scale**2
    trainer.eta.assign(eta.astype(trainer.eta.dtype.as_numpy_dtype))
    norms, before = (np.linalg.norm(r.R_batches / scale, axis=1) for r in (record, previous))
    grow, record.c_pvalue = penalty_should_grow(norms, before, al.gamma, rng)
    if grow and not record.converged:
        trainer.c.assign(record.c * al.beta)


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
