"""The compiled TensorFlow pieces of Algorithm 1, compiled once per process.

A :class:`Trainer` holds a flow, Adam's state, the multipliers ``eta``, the
penalty ``c``, the targets and the random stream as ``tf.Variable`` objects,
and the ``tf.function`` steps that read them. Everything that differs
between seeds, refits and grid-search candidates of one problem (weights,
seed, ``lr``, ``c0``, targets) is a variable, so a trainer is traced and
XLA-compiled once and then reused: :func:`checkout` takes one from a pool
keyed by what fixes the graph (flow architecture, support, statistic,
batch size, dtype, compile path) and :func:`checkin` returns it. A trainer
is in one fit at a time, so fits in two threads never share one.
"""

from __future__ import annotations

import hashlib
import threading
import warnings

import cloudpickle
import numpy as np
import tensorflow as tf

from ._reporting import OPTIMISER_ADVICE
from .property import call_statistic

__all__ = [
    "Trainer",
    "GaussianFit",
    "SampleFit",
    "checkout",
    "checkin",
    "clear_pool",
    "NonFinite",
    "initial_weights",
]

#: Trainers kept per process for reuse (the least recently returned go first).
POOL_SIZE = 8


class NonFinite(Exception):
    """A non-finite loss, gradient, statistic or density stopped a seed."""

    def __init__(self, epoch, iteration, what="loss or gradient", advice=""):
        super().__init__(f"non-finite {what} at epoch {epoch}, iteration {iteration}{advice}")
        self.epoch, self.iteration = epoch, iteration


class _Adam(tf.Module):
    """Adam (Kingma & Ba, 2015) with explicit, resettable moments and a variable rate.

    With a ``horizon`` of ``K`` steps the rate rises linearly over the first
    ``WARMUP * K`` steps, then follows a cosine from ``lr`` down to
    ``FLOOR * lr`` at step ``K`` (Loshchilov & Hutter's SGDR with warm-up,
    one cycle per reset); a horizon of 0 keeps it constant.
    """

    FLOOR = 0.01
    WARMUP = 0.05

    def __init__(self, variables, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(name="adam")
        self.variables_ = list(variables)
        dtype = self.variables_[0].dtype
        self.lr = tf.Variable(1e-3, dtype=dtype, trainable=False)
        self.horizon = tf.Variable(0.0, dtype=dtype, trainable=False)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables_]
        self.t = tf.Variable(0.0, dtype=dtype, trainable=False)

    def reset(self, horizon=0):
        """Zero the moments and start a new rate cycle of ``horizon`` steps (0: constant)."""
        for slot in self.m + self.v:
            slot.assign(tf.zeros_like(slot))
        self.t.assign(0.0)
        self.horizon.assign(horizon)

    def _rate(self):
        done = tf.minimum(self.t / tf.maximum(self.horizon, 1.0), 1.0)
        cosine = self.FLOOR + (1.0 - self.FLOOR) * 0.5 * (1.0 + tf.cos(np.pi * done))
        # A linear warm-up over the cycle's first WARMUP share: Adam's first
        # steps from zeroed moments move every weight by about lr at once.
        cosine *= tf.minimum(done / self.WARMUP, 1.0)
        return self.lr * tf.where(self.horizon > 0, cosine, tf.ones_like(cosine))

    @tf.autograph.experimental.do_not_convert
    def apply(self, grads):
        self.t.assign_add(1.0)
        dtype = self.t.dtype
        b1, b2 = tf.constant(self.beta1, dtype), tf.constant(self.beta2, dtype)
        step = self._rate() * tf.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for var, g, m, v in zip(self.variables_, grads, self.m, self.v):
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * tf.square(g))
            var.assign_sub(step * m / (tf.sqrt(v) + self.eps))


class _Stepper(tf.Module):
    """A flow, its Adam state and a stateless random stream.

    Batch ``k`` of a seed is drawn with the stateless seed
    ``fold_in([seed, 7919], k)``, so the Gaussian initialisation and the AL
    phase (two trainers, or a cache) continue one reproducible stream.
    """

    def __init__(self, flow, batch_size, name):
        super().__init__(name=name)
        self.flow = flow
        self.batch = batch_size
        self.adam = _Adam(flow.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.base_seed = tf.Variable([0, 7919], dtype=tf.int64, trainable=False)

    def start(self, weights, seed, step, lr):
        """Begin a seed: its weights, its stream at ``step``, fresh Adam moments."""
        self.flow.set_weights(weights)
        self.base_seed.assign([seed % (2**31 - 1), 7919])
        self.step.assign(step)
        self.adam.lr.assign(lr)
        self.adam.reset()

    def _next_seed(self):
        self.step.assign_add(1)
        # TFP's stateless samplers take int32 seeds; the cast wraps, which is fine.
        folded = tf.random.experimental.stateless_fold_in(self.base_seed, self.step)
        return tf.cast(folded, tf.int32)

    def _gradients(self, tape, loss):
        return tape.gradient(
            loss, self.flow.trainable_variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
        )

    def _descend(self, num_steps, loss_of):
        """``num_steps`` Adam steps on ``loss_of(seed)``, each with the stream's next seed.

        Returns the mean loss and whether every loss and weight stayed finite.
        The loop is written out as a ``tf.while_loop``: no user code runs in
        these fits, so they are traced without autograph, whose conversion of
        the flow's and TFP's Python cost each new process about a second.
        """

        def body(i, total, all_finite):
            seed = self._next_seed()
            with tf.GradientTape() as tape:
                loss = loss_of(seed)
            self.adam.apply(self._gradients(tape, loss))
            return i + 1, total + loss, tf.logical_and(all_finite, tf.math.is_finite(loss))

        _, total, all_finite = tf.while_loop(
            lambda i, *_: i < num_steps,
            body,
            (tf.constant(0), tf.zeros([], self.flow.dtype), tf.constant(True)),
        )
        all_finite = tf.logical_and(all_finite, self._all_weights_finite())
        return total / tf.cast(num_steps, self.flow.dtype), all_finite

    def _all_weights_finite(self):
        finite = tf.constant(True)
        for var in self.flow.trainable_variables:
            finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(var)))
        return finite


class GaussianFit(_Stepper):
    """Fits the flow to an isotropic Gaussian by minimising KL(q || N) (Algorithm 1, line 1)."""

    def __init__(self, flow, batch_size, jit_compile):
        super().__init__(flow, batch_size, name="gaussian_fit")
        dim, dtype = flow.dim, flow.dtype
        self.mean = tf.Variable(tf.zeros([dim], dtype), trainable=False)
        self.std = tf.Variable(tf.ones([dim], dtype), trainable=False)
        self.steps = tf.function(
            self._steps,
            input_signature=[tf.TensorSpec([], tf.int32)],
            jit_compile=jit_compile,
            autograph=False,
        )

    def _steps(self, num_steps):
        """Adam steps on KL(q || N(mean, std^2)); return the mean KL and a finite flag."""
        log_norm = tf.reduce_sum(tf.math.log(self.std)) + 0.5 * self.flow.dim * np.log(2 * np.pi)

        def kl(seed):
            # The base modes' weights stay even here: the Gaussian shapes
            # the flow, and the property, not the start, sets the weights.
            z, log_q, w = self.flow.stratified_sample_and_log_prob(
                self.batch, seed=seed, train_weights=False
            )
            u = (z - self.mean) / self.std
            log_n = -0.5 * tf.reduce_sum(u * u, axis=1) - log_norm
            return tf.reduce_mean(w * (log_q - log_n))

        return self._descend(num_steps, kl)


class SampleFit(_Stepper):
    """Fits the flow to given points by maximum likelihood (``init={"samples": ...}``).

    Each Adam step minimises ``-mean(log q(z))`` over a batch drawn with
    replacement from the points, so the flow starts as a smoothed copy of
    their distribution: several modes, a curved ridge, an earlier fit.
    """

    def __init__(self, flow, batch_size, jit_compile):
        super().__init__(flow, batch_size, name="sample_fit")
        self.steps = tf.function(
            self._steps,
            input_signature=[
                tf.TensorSpec([None, flow.dim], flow.dtype),
                tf.TensorSpec([], tf.int32),
            ],
            jit_compile=jit_compile,
            autograph=False,
        )

    def _steps(self, samples, num_steps):
        """Adam steps on the negative log likelihood; return its mean and a finite flag."""
        n = tf.shape(samples)[0]

        def negative_log_likelihood(seed):
            pick = tf.random.stateless_uniform([self.batch], seed=seed, maxval=n, dtype=tf.int32)
            return -tf.reduce_mean(self.flow.log_prob(tf.gather(samples, pick)))

        return self._descend(num_steps, negative_log_likelihood)


class Trainer(_Stepper):
    r"""The augmented Lagrangian phase: Adam steps on L and fresh-sample evaluation.

    The objective (paper, Eq. 21, with each violation in its own unit
    :math:`s_i`, :meth:`EmergentProperty.scales`) is
    :math:`L = -H(q) + \eta^\top R + \frac{c}{2}\|R / s\|^2`; its penalty
    gradient is unbiased through two independent half-batches (DESIGN,
    "The algorithm").
    """

    def __init__(self, flow, statistic, prop, batch_size, jit_compile):
        super().__init__(flow, batch_size, name="epi_trainer")
        dtype = flow.dtype
        self.statistic = statistic
        self.prop = prop  # its structure (m_f, variances or not) is this graph's
        self.m_f, m = prop.n_statistics, len(prop.targets)
        self.mu = tf.Variable(tf.zeros([self.m_f], dtype), trainable=False)
        self.targets = tf.Variable(tf.zeros([m], dtype), trainable=False)
        self.eta = tf.Variable(tf.zeros([m], dtype), trainable=False)
        self.scale = tf.Variable(tf.ones([m], dtype), trainable=False)
        self.c = tf.Variable(1.0, dtype=dtype, trainable=False)
        self.train, self.evaluate, self.jit_compile = _compile_with_fallback(self, jit_compile)

    def start_al(self, weights, seed, step, lr, c0, prop):
        """Begin a seed's AL phase: weights, stream, ``c = c0``, ``eta = 0``, its targets.

        The violations' units start as the property's target spreads (1 for
        a means-only property until :func:`~sklearn_epi.optimize.fit_seed`
        measures them).
        """
        self.start(weights, seed, step, lr)
        self.c.assign(c0)
        self.eta.assign(tf.zeros_like(self.eta))
        self.mu.assign(prop.mu)
        self.targets.assign(prop.targets)
        self.scale.assign(prop.scales())

    def sufficient_statistics(self, z, seed):
        """T(z) of :meth:`EmergentProperty.sufficient_statistics` at the trainer's targets.

        ``seed`` (the batch's stateless seed) reaches a statistic that takes a
        ``seed`` argument, folded so its draws are independent of the flow's.
        """
        own = tf.random.experimental.stateless_fold_in(seed, 1)
        f = tf.cast(call_statistic(self.statistic, z, own), self.flow.dtype)
        # The static width keeps loop shapes fixed even for statistics whose
        # output shape TF cannot infer (py_function, dynamic reshapes).
        f = tf.reshape(f, [tf.shape(z)[0], self.m_f])
        return self.prop.sufficient_statistics(f, mu=self.mu)

    def _train_steps(self, num_steps):
        """Run ``num_steps`` Adam steps on L; return chunk means and two flags.

        ``all_finite``: the loss and the final weights are finite.
        ``undefined``: the statistic was not finite at a finite sampled point,
        which tells a statistic undefined on part of the support from a
        diverging optimisation (the weights cannot, once a step made them NaN).
        """
        dtype = self.flow.dtype
        zero = tf.zeros([], dtype)
        sums = (zero, zero, tf.zeros_like(self.targets))
        all_finite = tf.constant(True)
        seen = tf.constant(False)
        half = self.batch // 2
        for _ in tf.range(num_steps):
            with tf.GradientTape() as tape:
                seed = self._next_seed()
                z, log_q, w = self.flow.stratified_sample_and_log_prob(
                    self.batch, seed=seed, split=half
                )
                T_unweighted = self.sufficient_statistics(z, seed)
                T = T_unweighted * w[:, None]
                H = -tf.reduce_mean(w * log_q)
                R1 = tf.reduce_mean(T[:half], axis=0) - self.targets
                R2 = tf.reduce_mean(T[half:], axis=0) - self.targets
                R = 0.5 * (R1 + R2)
                # E[R1 . R2] = ||E R||^2 for independent halves, so this one
                # backward pass gives an unbiased gradient of (c/2)||R/s||^2.
                loss = (
                    -H
                    + tf.tensordot(self.eta, R, 1)
                    + self.c * tf.tensordot(R1 / self.scale, tf.stop_gradient(R2 / self.scale), 1)
                )
            self.adam.apply(self._gradients(tape, loss))
            # A non-finite gradient makes the weights non-finite, which the
            # check after the loop catches: per step only the scalar loss is
            # tested. The seed then fails and keeps its last epoch-end weights.
            all_finite = tf.logical_and(all_finite, tf.math.is_finite(loss))
            f = T_unweighted[:, : self.m_f]
            undefined = tf.logical_and(
                tf.reduce_all(tf.math.is_finite(z), axis=1),
                tf.logical_not(tf.reduce_all(tf.math.is_finite(f), axis=1)),
            )
            seen = tf.logical_or(seen, tf.reduce_any(undefined))
            penalty = 0.5 * self.c * tf.reduce_sum(tf.square(R / self.scale))
            cost = -H + tf.tensordot(self.eta, R, 1) + penalty
            sums = (sums[0] + H, sums[1] + cost, sums[2] + R)
        all_finite = tf.logical_and(all_finite, self._all_weights_finite())
        n = tf.cast(num_steps, dtype)
        return sums[0] / n, sums[1] / n, sums[2] / n, all_finite, seen

    def _evaluate(self, n):
        """Fresh samples z (n, D), their sufficient statistics T (n, m) and log q (n,)."""
        seed = self._next_seed()
        z, log_q = self.flow.sample_and_log_prob(n, seed=seed)
        return z, self.sufficient_statistics(z, seed), log_q


def _compile_with_fallback(trainer, jit_compile):
    """Lower the training loop to XLA once; without XLA, with a warning, if it fails.

    Lowering to HLO compiles the statistic and its gradient without running
    a step, so the fallback leaves the weights and random stream untouched.
    An error that also occurs without XLA is the statistic's own and is
    raised as it is.
    """
    steps = tf.TensorSpec([], tf.int32)

    def compiled(jit):
        train = tf.function(trainer._train_steps, input_signature=[steps], jit_compile=jit)
        return train, tf.function(trainer._evaluate, jit_compile=jit)

    if jit_compile:
        train, evaluate = compiled(True)
        try:
            train.experimental_get_compiler_ir(tf.constant(1, tf.int32))(stage="hlo")
            return train, evaluate, True
        except Exception as exc:  # XLA reports unsupported ops with many types
            from ._validation import user_stacklevel  # imports this module's package

            train, evaluate = compiled(False)
            train.get_concrete_function(steps)
            warnings.warn(
                "the statistic could not be compiled with XLA; running without "
                f"jit_compile ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]})",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )
            return train, evaluate, False
    train, evaluate = compiled(False)
    return train, evaluate, False


_POOL: dict = {}
_POOL_LOCK = threading.Lock()


def _fingerprint(statistic):
    """Content of a statistic: equal code and settings give equal keys."""
    try:
        return hashlib.sha256(cloudpickle.dumps(statistic)).hexdigest()
    except Exception:  # not picklable: the object itself (kept alive by the key)
        return ("object", id(statistic), statistic)


def _key(kind, flow_spec, support, batch_size, dtype, jit_compile, statistic=None, prop=None):
    structure = None
    if prop is not None:
        structure = (_fingerprint(statistic), prop.n_statistics, prop.sigma2 is not None)
    return (
        kind,
        type(flow_spec).__name__,
        tuple(sorted(flow_spec.get_params().items())),
        tuple(support.low.tolist()),
        tuple(support.high.tolist()),
        int(batch_size),
        str(dtype),
        bool(jit_compile),
        structure,
    )


def checkout(kind, flow_spec, support, batch_size, dtype, jit_compile, statistic=None, prop=None):
    """A compiled :class:`GaussianFit` (``kind="gaussian"``), :class:`SampleFit`
    (``"samples"``) or :class:`Trainer` (``"al"``).

    Returns ``(key, trainer)``; give it back with :func:`checkin` when the
    seed is done. A pooled trainer of the same key is reused (no tracing, no
    compilation); otherwise a new one is built and compiled.
    """
    key = _key(kind, flow_spec, support, batch_size, dtype, jit_compile, statistic, prop)
    with _POOL_LOCK:
        waiting = _POOL.get(key)
        if waiting:
            return key, waiting.pop()
    flow = flow_spec.build(support, seed=0, dtype=tf.as_dtype(dtype))
    if kind == "gaussian":
        return key, GaussianFit(flow, batch_size, jit_compile)
    if kind == "samples":
        return key, SampleFit(flow, batch_size, jit_compile)
    return key, Trainer(flow, statistic, prop, batch_size, jit_compile)


def checkin(key, trainer):
    """Return a trainer to the pool for the next seed or fit of the same problem."""
    with _POOL_LOCK:
        _POOL.setdefault(key, []).append(trainer)
        while sum(len(v) for v in _POOL.values()) > POOL_SIZE:
            oldest = next(k for k, v in _POOL.items() if v)
            _POOL[oldest].pop(0)
            if not _POOL[oldest]:
                del _POOL[oldest]


def clear_pool():
    """Drop every pooled trainer (their graphs and memory go with them)."""
    with _POOL_LOCK:
        _POOL.clear()


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
            raise NonFinite(0, 0, "loss in the Gaussian initialisation", OPTIMISER_ADVICE)
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
            raise NonFinite(0, 0, "loss in the fit of init['samples']", OPTIMISER_ADVICE)
        return fit.flow.get_weights()
    finally:
        checkin(key, fit)
