"""One seed's augmented Lagrangian optimisation: Algorithm 1 of the paper, on one screen.

:func:`fit_seed` is the algorithm, line by line (paper, Methods, "Augmented
Lagrangian optimization", Algorithm 1): :func:`initialise` (lines 1-2),
then per epoch :func:`train_epoch` (lines 4-7), :func:`test_epoch` (line 8
and the convergence test), :func:`update_eta` (line 9) and
:func:`update_c` (line 10), and at the end
:func:`~sklearn_epi.convergence.kept_epoch` (the converged epoch of greatest
entropy). Everything else a seed does
(checkpoints, warm starts, the ``max_time`` deadline, progress and user
callbacks, failures and interrupts) hangs on the epoch-end hooks of
:class:`~sklearn_epi._seed_run.SeedRun`.

It is pure: a :class:`SeedSpec` goes in, a :class:`SeedResult` of NumPy
arrays and DataFrames comes out, so it runs in any joblib worker (local
process, dask, ray) and nothing TensorFlow crosses a process boundary. The
compiled TensorFlow steps live in :mod:`sklearn_epi._train`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from sklearn.base import BaseEstimator

from . import _reporting
from ._al_params import ALParams
from ._seed_run import SeedRun
from ._seed_state import EpochRecord, SeedResult, SeedState
from ._train import NonFinite, initial_weights
from .convergence import (
    entropy_estimate,
    entropy_slack,
    kept_epoch,
    moment_errors,
    penalty_should_grow,
)
from .property import EmergentProperty
from .support import Support

__all__ = [
    "ALParams",
    "SeedSpec",
    "SeedResult",
    "EpochRecord",
    "fit_seed",
    "initialise",
    "train_epoch",
    "test_epoch",
    "update_eta",
    "update_c",
]


@dataclass
class SeedSpec:
    """Everything one seed's optimisation needs (picklable).

    ``clock`` is the wall clock that ``deadline`` is read on (``time.time``:
    it holds across processes).
    """

    flow: BaseEstimator
    support: Support
    statistic: object
    prop: EmergentProperty
    al: ALParams
    init_mean: np.ndarray
    init_std: np.ndarray
    dtype: str = "float32"
    jit_compile: bool = True
    verbose: int = 0
    threads: int | None = None
    memory: object = None
    callbacks: tuple = ()
    checkpoint: str | None = None
    run_key: str | None = None
    deadline: float | None = None
    warm_states: dict | None = None
    keep_state: bool = False
    init_samples: np.ndarray | None = None
    clock: Callable[[], float] = time.time


def fit_seed(spec: SeedSpec, seed: int, seed_index: int = 0) -> SeedResult:
    """Run Algorithm 1 for one seed and return its result as plain data.

    Ends at ``max_epochs``, at a converged epoch with ``stop_early``,
    ``patience`` epochs after the best converged one, or when a callback
    asks; a failure, Ctrl-C or the deadline ends it early, keeping the epochs
    done. With ``spec.checkpoint`` a later call goes on from the last
    finished epoch exactly as an unbroken fit would.

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
    run = SeedRun(spec, seed, seed_index)
    if run.ended is not None:
        return run.ended  # an earlier call ended this seed: the same result again
    with run:  # a failure, Ctrl-C or the deadline leaves the loop here
        trainer = run.trainer()  # compiled once per process and problem
        state = run.resumed(trainer)  # where an earlier call left this seed, if one did
        state = state or initialise(trainer, spec, seed, run.new_state())  # lines 1-2
        while run.goes_on(state):  # line 3: epoch k = 1, ..., k_max
            train_epoch(trainer, spec, state, run.callbacks)  # lines 4-7
            record = test_epoch(trainer, spec, state)  # line 8, and the test
            update_eta(trainer, record)  # line 9
            update_c(trainer, record, state.epochs[-1], spec.al, state.rng)  # line 10
            state.epochs.append(record)
            run.epoch_end(trainer, state, record)  # checkpoint, callbacks, stopping rules
    return run.result(kept_epoch(run.epochs))  # the converged epoch of greatest entropy


def initialise(trainer, spec: SeedSpec, seed: int, state: SeedState) -> SeedState:
    """Algorithm 1, lines 1-2: fit q to the initial Gaussian, then ``c = c0`` and ``eta = 0``.

    The Gaussian fit is :func:`~sklearn_epi._train.initial_weights`, cached
    by ``spec.memory``; the AL phase continues its random stream. The
    initial q is tested like an epoch (epoch 0): the baseline of the first
    ``c`` decision, and, for a means-only property, the violations' units.
    ``state`` is the seed's, still without epochs; it is returned with epoch 0.
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
    start = al.init_iters * (1 if spec.init_samples is None else 2)
    trainer.start_al(weights, seed, start, al.lr, al.c0, spec.prop)
    state.epochs.append(test_epoch(trainer, spec, state))
    if spec.prop.sigma2 is None:  # units: the statistic's spread under the initial q
        spread = state.epochs[0].R_batches.std(axis=0, ddof=1) * np.sqrt(spec.prop.n_test)
        trainer.scale.assign(spec.prop.scales(spread).astype(trainer.scale.dtype.as_numpy_dtype))
    state.capture(trainer)
    return state


def train_epoch(trainer, spec: SeedSpec, state: SeedState, callbacks=()) -> None:
    """Algorithm 1, lines 4-7: ``num_iters`` Adam steps on the augmented Lagrangian.

    Adam's moments restart with the epoch, because ``eta`` and ``c`` changed
    the objective. The steps run in compiled chunks of ``log_rate``; the host
    reads values (one ``history_`` row) only between chunks; the rows join
    ``state.rows`` when the epoch's training ends.
    """
    al, names, epoch = spec.al, spec.prop.constraint_names, len(state.epochs)
    trainer.adam.reset(al.num_iters if al.lr_schedule == "cosine" else 0)
    rows, done = [], 0
    while done < al.num_iters:
        chunk = min(al.log_rate, al.num_iters - done)
        H, cost, R, finite, undefined = trainer.train(tf.constant(chunk, tf.int32))
        done += chunk
        state.iteration += chunk
        if not bool(finite):
            what, advice = _reporting.training_cause(trainer, state, spec, bool(undefined))
            raise NonFinite(epoch, state.iteration, what, advice)
        c = trainer.c.numpy()
        row = _reporting.train_row(state.seed_index, epoch, state.iteration, H, cost, c, R, names)
        rows.append(row)
        for callback in callbacks:
            callback.on_chunk(state.seed_index, epoch, state.iteration, row)
    state.rows += rows  # an epoch cut short leaves no rows, as it leaves no test


def test_epoch(trainer, spec: SeedSpec, state: SeedState) -> EpochRecord:
    r"""Algorithm 1, line 8, and the epoch-end test (paper, Methods).

    Draws the property's ``n_batches`` batches of ``n_test`` samples in a
    few large passes and computes, from the one sample: the batch estimates
    of every constraint violation and their two-sided p-values (``reached``
    when all exceed ``alpha / m``, the paper's test), the entropy with its
    standard error, the multipliers :math:`\lambda = \eta + c R / s^2`, and
    from them whether the constraints hold on the whole sample
    (``converged``, :meth:`~sklearn_epi.property.EmergentProperty.test`),
    and the batch norms ``||R||`` that the penalty test compares across
    epochs.
    """
    B, n, epoch = spec.prop.n_batches, spec.prop.n_test, len(state.epochs)
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
        raise NonFinite(epoch, state.iteration, what, advice)
    R_batches = spec.prop.batch_violations(T)
    H, H_se = entropy_estimate(log_q)
    # Against the targets in the fit's dtype, the ones training sees.
    R = T.mean(axis=0) - trainer.targets.numpy().astype(float)
    c, eta = float(trainer.c.numpy()), trainer.eta.numpy().astype(float)
    multipliers = eta + c * R / trainer.scale.numpy().astype(float) ** 2
    pvalues, converged = spec.prop.test(R_batches, multipliers, H_se)
    spread = R_batches.std(axis=0, ddof=1) + np.finfo(float).tiny
    f = T[:, : spec.prop.n_statistics]
    return EpochRecord(
        seed_index=state.seed_index,
        epoch=epoch,
        iteration=state.iteration,
        entropy=H,
        entropy_se=H_se,
        R=R,
        pvalues=pvalues,
        converged=epoch > 0 and converged,
        reached=epoch > 0 and spec.prop.reached(pvalues),
        c=c,
        eta=eta,
        R_batches=R_batches,
        # Best effort when nothing converges: the worst constraint's distance
        # from zero in units of its batch-to-batch spread.
        worst_t=float(np.max(np.abs(R_batches.mean(axis=0)) / spread)),
        moment_error=float(np.max(np.abs(moment_errors(R_batches)))),
        slack=entropy_slack(R_batches, multipliers)[0],
        weights=trainer.flow.get_weights(),
        wall_time=state.wall_time,
        # What the statistic reached on these samples: tells an unreachable
        # target from a fit that ran out of budget.
        statistic_range=np.stack([f.min(axis=0), f.max(axis=0)]),
    )


def update_eta(trainer, record: EpochRecord) -> None:
    r"""Algorithm 1, line 9: :math:`\eta \leftarrow \eta + c \hat R / s^2`.

    ``eta`` moves by the gradient of the penalty :math:`\frac{c}{2}\|R / s\|^2`
    of the epoch that just ended, ``R`` from the test's fresh samples (``s``,
    the violations' units, is ``trainer.scale``).
    """
    scale = trainer.scale.numpy().astype(float)
    eta = record.eta + record.c * record.R / scale**2
    trainer.eta.assign(eta.astype(trainer.eta.dtype.as_numpy_dtype))


def update_c(trainer, record: EpochRecord, previous: EpochRecord, al: ALParams, rng) -> None:
    r"""Algorithm 1, line 10: :math:`c \leftarrow \beta c` with probability :math:`1 - p`.

    ``p`` tests that :math:`\mathbb{E}\|R / s\|` shrank by the factor
    ``gamma`` since the previous epoch
    (:func:`~sklearn_epi.convergence.penalty_should_grow`, decided with the
    seed's own generator); it is stored in the record as ``c_pvalue``.

    An epoch that passes the paper's test (``record.reached``) leaves ``c``
    as it is: its violations are within the noise of a batch, so they
    cannot shrink by ``gamma``, and the paper's rule would grow ``c`` every
    epoch, without bound. The multipliers alone take them the rest of the
    way to the whole sample's noise (:meth:`EmergentProperty.test
    <sklearn_epi.property.EmergentProperty.test>`): at a fixed ``c`` each
    update removes a fixed share of what remains (the linear-Gaussian
    problem in 20 dimensions, ``c`` fixed at 0.44: 0.55 nats above the
    maximum at the first passing epoch, then 0.28, 0.13, 0.08, 0.02).
    """
    scale = trainer.scale.numpy().astype(float)
    norms, before = (np.linalg.norm(r.R_batches / scale, axis=1) for r in (record, previous))
    grow, record.c_pvalue = penalty_should_grow(norms, before, al.gamma, rng)
    if grow and not record.reached:
        trainer.c.assign(record.c * al.beta)
