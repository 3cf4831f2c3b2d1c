"""One seed's augmented Lagrangian optimisation (Algorithm 1 of the paper).

:func:`fit_seed` is pure: a :class:`SeedSpec` goes in, a :class:`SeedResult`
of NumPy arrays and DataFrames comes out, so it can run in any joblib worker
(local process, dask, ray) and nothing TensorFlow crosses a process boundary.
"""

from __future__ import annotations

import inspect
import os
import re
import threading
import time
import traceback
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.base import BaseEstimator

from .convergence import constraint_pvalues, entropy_estimate, is_converged, penalty_should_grow
from .support import Support

__all__ = ["ALParams", "SeedSpec", "SeedResult", "fit_seed"]


class ALParams(BaseEstimator):
    r"""Hyperparameters of the augmented Lagrangian optimisation.

    The objective minimised in each epoch is (paper, Eq. 21)

    .. math:: L(\theta; \eta, c) = -H(q_\theta) + \eta^\top R(\theta)
              + \frac{c}{2} \|R(\theta)\|^2 .

    Defaults follow the paper's 2D linear-system settings (Adam with learning
    rate 1e-3, ``beta = 4``, ``gamma = 0.25``) with a budget that converges on
    two CPU cores in about a minute.

    Parameters
    ----------
    c0 : float, default=1.0
        Initial penalty coefficient ``c``.
    beta : float, default=4.0
        Factor by which ``c`` grows after an epoch that did not reduce the
        constraint violation by ``gamma``. Must be > 1.
    gamma : float, default=0.25
        Required reduction of ``E||R||`` per epoch, in (0, 1).
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=500
        Samples of q per step; even, so that the penalty gradient can use two
        independent halves.
    num_iters : int, default=2000
        Adam steps per epoch. Adam's moment estimates are reset at the start
        of every epoch, because the objective changes with ``eta`` and ``c``.
    max_epochs : int, default=10
        Maximum number of epochs (``k_max``).
    init_iters : int, default=1000
        Adam steps fitting the flow to the initial Gaussian, before epoch 1.
    log_rate : int, default=50
        Iterations between logged rows of ``history_`` (and the only points
        where training values are copied to the host).
    stop_early : bool, default=False
        Stop at the first converged epoch instead of running ``max_epochs``
        and keeping the converged epoch of greatest entropy.

    Examples
    --------
    >>> from sklearn_epi import ALParams
    >>> ALParams(c0=1e-2).set_params(beta=2.0).beta
    2.0
    """

    def __init__(
        self,
        c0: float = 1.0,
        beta: float = 4.0,
        gamma: float = 0.25,
        lr: float = 1e-3,
        batch_size: int = 500,
        num_iters: int = 2000,
        max_epochs: int = 10,
        init_iters: int = 1000,
        log_rate: int = 50,
        stop_early: bool = False,
    ):
        self.c0 = c0
        self.beta = beta
        self.gamma = gamma
        self.lr = lr
        self.batch_size = batch_size
        self.num_iters = num_iters
        self.max_epochs = max_epochs
        self.init_iters = init_iters
        self.log_rate = log_rate
        self.stop_early = stop_early

    def _validate(self) -> None:
        def positive(name, value):
            if not isinstance(value, Real) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"al_params.{name} must be a number > 0; got {value!r}")

        def count(name, value, minimum):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"al_params.{name} must be an integer >= {minimum}; got {value!r}")

        positive("c0", self.c0)
        positive("lr", self.lr)
        positive("beta", self.beta)
        if not self.beta > 1:
            raise ValueError(f"al_params.beta must be > 1; got {self.beta!r}")
        positive("gamma", self.gamma)
        if not self.gamma < 1:
            raise ValueError(f"al_params.gamma must be in (0, 1); got {self.gamma!r}")
        count("batch_size", self.batch_size, 2)
        if self.batch_size % 2:
            raise ValueError(
                "al_params.batch_size must be even (the penalty gradient uses two "
                f"halves); got {self.batch_size}"
            )
        count("num_iters", self.num_iters, 1)
        count("max_epochs", self.max_epochs, 1)
        count("init_iters", self.init_iters, 0)
        count("log_rate", self.log_rate, 1)
        if not isinstance(self.stop_early, (bool, np.bool_)):
            raise TypeError(f"al_params.stop_early must be a bool; got {self.stop_early!r}")


@dataclass
class SeedSpec:
    """Everything one seed's optimisation needs (picklable)."""

    flow: BaseEstimator
    support: Support
    statistic: object
    mu: np.ndarray
    sigma2: np.ndarray | None
    constraint_names: list
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
    param_names: list | None = None
    statistic_names: list | None = None


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


class _Adam(tf.Module):
    """Adam (Kingma & Ba, 2015) with explicit, resettable moment variables."""

    def __init__(self, variables, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(name="adam")
        self.variables_ = list(variables)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.t = tf.Variable(0.0, dtype=self.variables_[0].dtype, trainable=False)

    def reset(self):
        for slot in self.m + self.v:
            slot.assign(tf.zeros_like(slot))
        self.t.assign(0.0)

    def apply(self, grads):
        self.t.assign_add(1.0)
        dtype = self.t.dtype
        b1, b2 = tf.constant(self.beta1, dtype), tf.constant(self.beta2, dtype)
        step = self.lr * tf.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for var, g, m, v in zip(self.variables_, grads, self.m, self.v):
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            var.assign_sub(step * m / (tf.sqrt(v) + self.eps))


class _Stepper(tf.Module):
    """Flow, Adam state and the stateless random stream shared by both phases.

    Batch ``k`` of a seed is drawn with the stateless seed ``fold_in(seed, k)``,
    so the initialisation and the AL phase can run in different objects (or
    come from a cache) and still continue one reproducible stream.
    """

    def __init__(self, flow, batch_size, lr, seed, name):
        super().__init__(name=name)
        self.flow = flow
        self.batch = batch_size
        self.adam = _Adam(flow.trainable_variables, lr)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.base_seed = tf.constant([seed % (2**31 - 1), 7919], tf.int64)

    def _next_seed(self):
        self.step.assign_add(1)
        # TFP's stateless samplers take int32 seeds; the cast wraps, which is fine.
        folded = tf.random.experimental.stateless_fold_in(self.base_seed, self.step)
        return tf.cast(folded, tf.int32)

    def _gradients(self, tape, loss):
        return tape.gradient(
            loss, self.flow.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )

    def _all_weights_finite(self):
        finite = tf.constant(True)
        for var in self.flow.trainable_variables:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(var)))
        return finite


class _GaussianInit(_Stepper):
    """Fit the flow to an isotropic Gaussian by minimising KL(q || N)."""

    def __init__(self, flow, batch_size, lr, seed, mean, std):
        super().__init__(flow, batch_size, lr, seed, name="gaussian_init")
        self.mean = tf.constant(mean, flow.dtype)
        self.std = tf.constant(std, flow.dtype)

    def steps(self, num_steps):
        """Adam steps on KL(q || N(mean, std^2)); return the mean KL and a finite flag."""
        dtype = self.flow.dtype
        total = tf.zeros([], dtype)
        all_finite = tf.constant(True)
        log_norm = tf.reduce_sum(tf.math.log(self.std)) + 0.5 * self.flow.dim * np.log(2 * np.pi)
        for _ in tf.range(num_steps):
            with tf.GradientTape() as tape:
                z, log_q = self.flow.sample_and_log_prob(self.batch, seed=self._next_seed())
                u = (z - self.mean) / self.std
                log_n = -0.5 * tf.reduce_sum(u * u, axis=1) - log_norm
                loss = tf.reduce_mean(log_q - log_n)
            self.adam.apply(self._gradients(tape, loss))
            all_finite = tf.logical_and(all_finite, tf.math.is_finite(loss))
            total += loss
        all_finite = tf.logical_and(all_finite, self._all_weights_finite())
        return total / tf.cast(num_steps, dtype), all_finite


def initial_weights(
    flow_spec, support, mean, std, init_iters, batch_size, lr, seed, dtype, jit_compile
) -> list:
    """Flow weights after fitting q to N(mean, diag(std^2)) (Algorithm 1, line 1).

    A pure function of its arguments, so ``joblib.Memory`` can cache it: grid
    searches over AL hyperparameters (``c0``, ``beta``, ...) then share one
    initialisation per flow, support, Gaussian and seed.

    Returns
    -------
    list of ndarray
        The weights, in :meth:`FlowDistribution.get_weights` order.
    """
    flow = flow_spec.build(support, seed=seed, dtype=tf.as_dtype(dtype))
    if init_iters:
        init = _GaussianInit(flow, batch_size, lr, seed, mean, std)
        steps = tf.function(
            init.steps, input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=jit_compile
        )
        _, finite = steps(tf.constant(init_iters, tf.int32))
        if not bool(finite):
            raise _NonFinite(0, 0, "loss in the Gaussian initialisation", _OPTIMISER_ADVICE)
    return flow.get_weights()


class _Objective(_Stepper):
    """The augmented Lagrangian phase: training loop and epoch-end evaluation."""

    def __init__(self, flow, spec: SeedSpec, seed: int):
        super().__init__(flow, spec.al.batch_size, spec.al.lr, seed, name="epi_objective")
        dtype = flow.dtype
        self.spec = spec
        self.statistic = spec.statistic
        self.mu = tf.constant(spec.mu, dtype)
        target = spec.mu if spec.sigma2 is None else np.concatenate([spec.mu, spec.sigma2])
        self.mu_opt = tf.constant(target, dtype)
        self.m = len(target)
        self.eta = tf.Variable(tf.zeros([self.m], dtype), trainable=False)
        self.c = tf.Variable(spec.al.c0, dtype=dtype, trainable=False)

    def sufficient_statistics(self, z, seed):
        """T(z) = [f(z), (f(z) - mu)^2] (paper, Eq. 19), or f(z) alone.

        ``seed`` (the batch's stateless seed) reaches a statistic that takes a
        ``seed`` argument, folded so its draws are independent of the flow's.
        """
        own = tf.random.experimental.stateless_fold_in(seed, 1)
        f = tf.cast(call_statistic(self.statistic, z, own), self.flow.dtype)
        # The static width keeps loop shapes fixed even for statistics whose
        # output shape TF cannot infer (py_function, dynamic reshapes).
        f = tf.reshape(f, [tf.shape(z)[0], len(self.spec.mu)])
        if self.spec.sigma2 is None:
            return f
        return tf.concat([f, tf.square(f - self.mu)], axis=1)

    def train_steps(self, num_steps):
        """Run ``num_steps`` Adam steps on L; return chunk means and a finite flag."""
        dtype = self.flow.dtype
        zero = tf.zeros([], dtype)
        sums = (zero, zero, tf.zeros([self.m], dtype))
        all_finite = tf.constant(True)
        half = self.batch // 2
        for _ in tf.range(num_steps):
            with tf.GradientTape() as tape:
                seed = self._next_seed()
                z, log_q = self.flow.sample_and_log_prob(self.batch, seed=seed)
                T = self.sufficient_statistics(z, seed)
                H = -tf.reduce_mean(log_q)
                R1 = tf.reduce_mean(T[:half], axis=0) - self.mu_opt
                R2 = tf.reduce_mean(T[half:], axis=0) - self.mu_opt
                R = 0.5 * (R1 + R2)
                # E[R1 . R2] = ||E R||^2 for independent halves, so this one
                # backward pass gives an unbiased gradient of (c/2)||R||^2.
                loss = (
                    -H
                    + tf.tensordot(self.eta, R, 1)
                    + self.c * tf.tensordot(R1, tf.stop_gradient(R2), 1)
                )
            self.adam.apply(self._gradients(tape, loss))
            # A non-finite gradient makes the weights non-finite, which the
            # check after the loop catches: per step only the scalar loss is
            # tested. The seed then fails and keeps its last epoch-end weights.
            all_finite = tf.logical_and(all_finite, tf.math.is_finite(loss))
            cost = -H + tf.tensordot(self.eta, R, 1) + 0.5 * self.c * tf.reduce_sum(R * R)
            sums = (sums[0] + H, sums[1] + cost, sums[2] + R)
        all_finite = tf.logical_and(all_finite, self._all_weights_finite())
        n = tf.cast(num_steps, dtype)
        return sums[0] / n, sums[1] / n, sums[2] / n, all_finite

    def evaluate(self, n):
        """Fresh samples z (n, D), their sufficient statistics T (n, m) and log q (n,)."""
        seed = self._next_seed()
        z, log_q = self.flow.sample_and_log_prob(n, seed=seed)
        return z, self.sufficient_statistics(z, seed), log_q


def call_statistic(statistic, z, seed):
    """``statistic(z)``, passing ``seed`` (shape (2,)) when the statistic takes one."""
    if statistic_takes_seed(statistic):
        return statistic(z, seed=tf.cast(seed, tf.int32))
    return statistic(z)


def statistic_takes_seed(statistic) -> bool:
    """Whether ``statistic`` has a ``seed`` parameter (stochastic simulators)."""
    try:
        return "seed" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def _compile(objective: _Objective, jit_compile: bool):
    """tf.functions for the training loop and the evaluation pass."""
    sig_steps = [tf.TensorSpec([], tf.int32)]
    return {
        "train": tf.function(
            objective.train_steps, input_signature=sig_steps, jit_compile=jit_compile
        ),
        "evaluate": tf.function(objective.evaluate, jit_compile=jit_compile),
    }


class _NonFinite(Exception):
    def __init__(self, epoch, iteration, what="loss or gradient", advice=""):
        super().__init__(f"non-finite {what} at epoch {epoch}, iteration {iteration}{advice}")
        self.epoch, self.iteration = epoch, iteration


_OPTIMISER_ADVICE = (
    "; the optimisation diverged: try a smaller al_params.lr or al_params.c0, or tighter bounds"
)


#: Set when Ctrl-C stopped a seed in this process: seeds that start
#: afterwards in the same process (a sequential multi-seed fit) are skipped.
INTERRUPTED = threading.Event()


def fit_seed(spec: SeedSpec, seed: int, seed_index: int = 0) -> SeedResult:
    """Run Algorithm 1 for one seed and return its result as plain data.

    Steps: fit the flow to the initial Gaussian (cached by ``spec.memory``),
    then up to ``max_epochs`` epochs of Adam on the augmented Lagrangian;
    after each epoch test convergence on fresh samples, update
    ``eta <- eta + c R`` and grow ``c`` by the paper's randomised test. The
    kept epoch is the converged one of greatest entropy, or, when none
    converged, the one whose worst constraint is closest to zero.

    A non-finite step or an exception (from the statistic, say) marks the
    seed failed, with the message and traceback text, and its last usable
    epoch is still returned; Ctrl-C ends it early with the epochs done so far.

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
    return _fit_seed(spec, seed, seed_index)


def _fit_seed(spec, seed, seed_index):
    start = time.perf_counter()
    al = spec.al
    rows, epochs = [], []
    iteration = 0
    trace = ""
    message, failed, interrupted = "", False, INTERRUPTED.is_set()
    if interrupted:
        message = "skipped: the fit was interrupted before this seed started"
    _limit_threads(spec.threads)
    bar = None if interrupted else _progress_bar(spec, seed_index)
    jit_used = spec.jit_compile
    try:
        if not interrupted:
            init_weights = initial_weights
            if spec.memory is not None:
                init_weights = spec.memory.cache(initial_weights)
            weights = init_weights(
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
            )
            flow = spec.flow.build(spec.support, seed=seed, dtype=tf.as_dtype(spec.dtype))
            flow.set_weights(weights)
            objective = _Objective(flow, spec, seed)
            objective.step.assign(al.init_iters)  # continue the initialisation's stream
            rng = np.random.default_rng(seed)
            fns, jit_used = _compile_with_fallback(objective, spec.jit_compile)
            previous = _epoch_end(objective, fns, spec, 0, 0, rng, None)
            epochs.append(previous)
            for epoch in range(1, al.max_epochs + 1):
                objective.adam.reset()
                done = 0
                while done < al.num_iters:
                    chunk = min(al.log_rate, al.num_iters - done)
                    H, cost, R, finite = fns["train"](tf.constant(chunk, tf.int32))
                    done += chunk
                    iteration += chunk
                    if not bool(finite):
                        raise _NonFinite(epoch, iteration, advice=_OPTIMISER_ADVICE)
                    rows.append(
                        _train_row(seed_index, epoch, iteration, H, cost, objective, R, spec)
                    )
                    if bar is not None:
                        bar.update(chunk)
                        bar.set_postfix(H=f"{float(H):.3f}", maxR=f"{np.max(np.abs(R)):.3g}")
                current = _epoch_end(objective, fns, spec, epoch, iteration, rng, previous)
                epochs.append(current)
                previous = current
                if spec.verbose >= 2:
                    _print_epoch(seed_index, current, spec)
                if current["converged"] and al.stop_early:
                    break
    except _NonFinite as exc:
        failed = True
        message = str(exc)
    except Exception as exc:
        # A statistic that raises (a rare solver failure, a bug) fails this
        # seed only: its finished epochs and the other seeds are kept.
        failed = True
        message = f"{_root_cause(exc)} (raised in epoch {len(epochs)}, iteration {iteration})"
        trace = traceback.format_exc()
    except KeyboardInterrupt:
        INTERRUPTED.set()
        interrupted = True
        message = f"interrupted during epoch {len(epochs)} at iteration {iteration}"
    finally:
        if bar is not None:
            bar.close()
    history = _history_frame(rows, epochs, seed_index, spec)
    chosen = _choose_epoch(epochs)
    wall = time.perf_counter() - start
    if chosen is None:
        return SeedResult(
            seed_index=seed_index,
            seed=seed,
            weights=None,
            converged=False,
            failed=failed or not interrupted,
            epoch=None,
            entropy=np.nan,
            entropy_se=np.nan,
            eta=None,
            c=np.nan,
            history=history,
            n_iter=iteration,
            wall_time=wall,
            jit_compile=jit_used,
            message=message or "no usable epoch",
            interrupted=interrupted,
            traceback=trace,
        )
    return SeedResult(
        seed_index=seed_index,
        seed=seed,
        weights=chosen["weights"],
        converged=chosen["converged"],
        failed=failed,
        epoch=chosen["epoch"],
        entropy=chosen["H"],
        entropy_se=chosen["H_se"],
        eta=chosen["eta"],
        c=chosen["c"],
        history=history,
        n_iter=iteration,
        wall_time=wall,
        jit_compile=jit_used,
        message=message,
        pvalues=chosen["pvalues"],
        worst_t=chosen["worst_t"],
        interrupted=interrupted,
        traceback=trace,
    )


def _compile_with_fallback(objective, jit_compile):
    """Lower the training loop to XLA once; without XLA, with a warning, if it fails.

    Lowering to HLO compiles the statistic and its gradient without running
    a step, so the fallback leaves the weights and random stream untouched.
    An error that also occurs without XLA is the statistic's own and is
    raised as it is.
    """
    plain = _compile(objective, False)
    steps = tf.TensorSpec([], tf.int32)
    if jit_compile:
        fns = _compile(objective, True)
        try:
            fns["train"].experimental_get_compiler_ir(tf.constant(1, tf.int32))(stage="hlo")
            return fns, True
        except Exception as exc:  # XLA reports unsupported ops with many types
            from ._validation import user_stacklevel  # imports this module

            plain["train"].get_concrete_function(steps)
            warnings.warn(
                "the statistic could not be compiled with XLA; running without "
                f"jit_compile ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]})",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
    return plain, False


def _epoch_end(objective, fns, spec, epoch, iteration, rng, previous):
    """Fresh-sample diagnostics, convergence test, then the eta and c updates."""
    B, n = spec.n_test_batches, spec.n_test
    z_parts, T_parts, logq_parts = [], [], []
    chunk = max(1, min(B, 20_000 // max(n, 1)))
    for start in range(0, B, chunk):
        z, T, log_q = fns["evaluate"]((min(chunk, B - start)) * n)
        z_parts.append(z.numpy())
        T_parts.append(T.numpy())
        logq_parts.append(log_q.numpy())
    T = np.concatenate(T_parts).astype(float)
    log_q = np.concatenate(logq_parts).astype(float)
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(log_q))):
        _raise_non_finite(np.concatenate(z_parts), T, log_q, spec, epoch, iteration)
    mu_opt = objective.mu_opt.numpy().astype(float)
    R_batches = T.reshape(B, n, -1).mean(axis=1) - mu_opt
    R_hat = T.mean(axis=0) - mu_opt
    pvalues = constraint_pvalues(R_batches)
    H, H_se = entropy_estimate(log_q)
    norms = np.linalg.norm(R_batches, axis=1)
    spread = R_batches.std(axis=0, ddof=1) + np.finfo(float).tiny
    c = float(objective.c.numpy())
    eta = objective.eta.numpy().astype(float)
    record = {
        "epoch": epoch,
        "iteration": iteration,
        "H": H,
        "H_se": H_se,
        "R": R_hat,
        "pvalues": pvalues,
        "converged": epoch > 0 and is_converged(pvalues, spec.alpha),
        "c": c,
        "eta": eta,
        "norms": norms,
        "weights": objective.flow.get_weights(),
        "c_pvalue": np.nan,
        # Best effort when nothing converges: the worst constraint's distance
        # from zero in units of its batch-to-batch spread.
        "worst_t": float(np.max(np.abs(R_batches.mean(axis=0)) / spread)),
    }
    if epoch > 0:
        # eta uses the penalty of the epoch that just ended (Algorithm 1, l. 9).
        objective.eta.assign((eta + c * R_hat).astype(objective.eta.dtype.as_numpy_dtype))
        grow, record["c_pvalue"] = penalty_should_grow(norms, previous["norms"], spec.al.gamma, rng)
        if grow:
            objective.c.assign(c * spec.al.beta)
    return record


def _root_cause(exc) -> str:
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


def _raise_non_finite(z, T, log_q, spec, epoch, iteration):
    """Say which statistic (or the density) is non-finite, how often, and where."""
    n = len(z)
    m_f = len(spec.mu)
    stats = spec.statistic_names or [f"f{i}" for i in range(m_f)]
    params = spec.param_names or [f"z{i}" for i in range(z.shape[1])]
    bad_f = ~np.isfinite(T[:, :m_f])
    if bad_f.any():
        column = int(np.argmax(bad_f.sum(axis=0)))
        rows = np.flatnonzero(bad_f[:, column])
        example = {k: float(f"{v:.4g}") for k, v in zip(params, z[rows[0]])}
        raise _NonFinite(
            epoch,
            iteration,
            f"statistic {stats[column]!r} ({T[rows[0], column]}) at {len(rows)} of {n} test "
            f"samples, e.g. z = {example},",
            ": the statistic is undefined on part of the support; make it finite there "
            "(e.g. guard a log or sqrt) or tighten the bounds",
        )
    rows = np.flatnonzero(~np.isfinite(log_q) | ~np.isfinite(T).all(axis=1))
    raise _NonFinite(
        epoch,
        iteration,
        f"log density or squared deviation at {len(rows)} of {n} test samples",
        _OPTIMISER_ADVICE,
    )


def _choose_epoch(epochs):
    candidates = [e for e in epochs if e["epoch"] > 0]
    if not candidates:
        return None
    converged = [e for e in candidates if e["converged"]]
    if converged:
        return max(converged, key=lambda e: e["H"])
    return min(candidates, key=lambda e: e["worst_t"])


def _train_row(seed_index, epoch, iteration, H, cost, objective, R, spec):
    row = {
        "seed": seed_index,
        "epoch": epoch,
        "iteration": iteration,
        "phase": "train",
        "H": float(H),
        "cost": float(cost),
        "c": float(objective.c.numpy()),
    }
    row.update({f"R_{name}": float(r) for name, r in zip(spec.constraint_names, R.numpy())})
    return row


def _history_frame(rows, epochs, seed_index, spec):
    names = spec.constraint_names
    test_rows = []
    for e in epochs:
        row = {
            "seed": seed_index,
            "epoch": e["epoch"],
            "iteration": e["iteration"],
            "phase": "test",
            "H": e["H"],
            "H_se": e["H_se"],
            "c": e["c"],
            "converged": e["converged"],
            "c_pvalue": e["c_pvalue"],
        }
        row.update({f"R_{k}": r for k, r in zip(names, e["R"])})
        row.update({f"p_{k}": p for k, p in zip(names, e["pvalues"])})
        row.update({f"eta_{k}": v for k, v in zip(names, e["eta"])})
        test_rows.append(row)
    columns = (
        ["seed", "epoch", "iteration", "phase", "H", "H_se", "cost", "c"]
        + [f"R_{k}" for k in names]
        + [f"p_{k}" for k in names]
        + [f"eta_{k}" for k in names]
        + ["converged", "c_pvalue"]
    )
    frame = pd.DataFrame(rows + test_rows, columns=columns)
    frame["converged"] = frame["converged"].astype("boolean")
    frame["phase"] = pd.Categorical(frame["phase"], categories=["train", "test"])
    # Within an epoch, the test row comes after that epoch's training rows.
    order = np.lexsort((frame["phase"].cat.codes, frame["iteration"], frame["epoch"]))
    return frame.iloc[order].reset_index(drop=True)


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


def _progress_bar(spec, seed_index):
    if spec.verbose < 1:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=spec.al.max_epochs * spec.al.num_iters,
        desc=f"EPI seed {seed_index}",
        leave=True,
        position=seed_index if os.getpid() != _PARENT_PID else None,
    )


_PARENT_PID = os.getpid()


def _print_epoch(seed_index, record, spec):
    p = ", ".join(f"{k}={v:.3f}" for k, v in zip(spec.constraint_names, record["pvalues"]))
    print(
        f"[seed {seed_index}] epoch {record['epoch']:2d}  H={record['H']:.4f}  "
        f"||R||={np.linalg.norm(record['R']):.4g}  c={record['c']:.3g}  p: {p}  "
        f"converged={record['converged']}",
        flush=True,
    )
