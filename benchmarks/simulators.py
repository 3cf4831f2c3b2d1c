"""The cost of one training iteration when the statistic simulates a noisy network.

A full iteration of an :class:`~sklearn_epi.EPIEstimator` fit (sample the
flow, simulate, the gradient through both, Adam's update: the compiled
``Trainer.train`` step) at the paper's batch of 100, for the V1 model
(200 Euler-Maruyama steps of 100 trials) and the SC model (75 steps of
2 x 200 trials), each with

* today's statistics (:mod:`sklearn_epi.circuits`, built on
  :func:`sklearn_epi.simulate.euler_maruyama`),
* the implementations they replaced (below, ``_ScanV1`` and ``_ScanSC``:
  ``tf.scan`` over the stacked trajectory, all noise drawn up front with
  ``tf.random.stateless_normal``), the baseline of the ratio,

each compiled with XLA and as a plain graph; the faster path of each is the
row's value and baseline. The floor is an estimate of the statistic's own
cost (the flow's is left out): operations and bytes per step (counts
below) over this machine's matmul throughput and memory bandwidth, both
measured in the same run; the larger of the two bounds is printed.
``--quick`` times V1 only, with fewer steps, compiled with XLA only.

Without ``--quick``, each model's step is also timed inside a whole
``EPIEstimator.fit`` (XLA): a callback notes the time of every logged
training chunk, and the seconds between the second chunk and the last over
the iterations between them are what a fit's iteration costs (the first
chunk pays for compilation; the tests fall outside). Goal: at most 1.1
times the step alone (issue 28).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

import numpy as np
import tensorflow as tf
from sklearn.base import clone

from sklearn_epi import ALParams, EPIEstimator, EpochCallback, RealNVP
from sklearn_epi._train import checkin, checkout, initial_weights
from sklearn_epi.circuits import (
    SC_BOUNDS,
    SC_MU,
    SC_SIGMA2,
    V1_BOUNDS,
    V1_MU_5HZ,
    V1_SIGMA2,
    sc_connectivity,
    sc_task_accuracy,
    v1_excitatory_variability,
)
from sklearn_epi.circuits import sc as _sc
from sklearn_epi.circuits import v1 as _v1

from .problems import Problem

GOAL_MS = 150.0
BATCH = 100

# Operations per state element per Euler step (forward, then backward) and
# state-sized tensors moved per step (written or read, forward and backward),
# counted from the two statistics' code: V1's x carries a 4 x 4 matmul (8),
# relu, square and the update (6); eps its decay and kick (4); each draw a
# Philox word per two draws plus the lookup (about 10). SC adds a tanh
# (about 20 operations as a rational function). The backward pass costs about
# twice the forward arithmetic, without the draws.
_COUNTS = {
    "V1": {
        "elements": BATCH * 100 * 4 * 2,
        "steps": 200,
        "forward": 14,
        "backward": 24,
        "tensors": 12,
    },
    "SC": {
        "elements": BATCH * 2 * 200 * 4,
        "steps": 75,
        "forward": 42,
        "backward": 64,
        "tensors": 14,
    },
}


class _ScanV1:
    """The V1 statistic before ``euler_maruyama``: tf.scan over stacked states."""

    def __init__(self, n_trials=100):
        self.n_trials = n_trials

    def __call__(self, z, seed):
        n, dtype = tf.shape(z)[0], z.dtype
        s_x0, s_noise = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        u = tf.random.stateless_uniform(tf.stack([n, self.n_trials, 4]), s_x0, dtype=dtype)
        x0 = 10.0 + 15.0 * u
        noise = tf.random.stateless_normal(
            tf.stack([_v1._T, n, self.n_trials, 4]), s_noise, dtype=dtype
        )
        W = tf.constant(_v1.V1_W, dtype)
        h = tf.constant(_v1.V1_H_B, dtype)
        tau, tau_n, dt = _v1._TAU, _v1._TAU_NOISE, _v1._DT
        kick = z[:, None, :] * np.sqrt(1.0 + tau / tau_n) * np.sqrt(2.0 * dt / tau_n)

        def step(state, xi):
            x, eps = state
            drive = tf.nn.relu(tf.linalg.matvec(W, x) + h + eps)
            x = x + (dt / tau) * (-x + tf.square(drive))
            eps = eps - (dt / tau_n) * eps + kick * xi
            return x, eps

        xs, _ = tf.scan(step, noise, initializer=(x0, tf.zeros_like(x0)))
        x_e = tf.concat([x0[None], xs], axis=0)[150:, :, :, 0]
        var = tf.reduce_mean(tf.square(x_e - tf.reduce_mean(x_e, axis=0)), axis=0)
        return tf.reduce_mean(tf.sqrt(var + 1e-12), axis=1)[:, None]


class _ScanSC:
    """The SC statistic before ``euler_maruyama``: tf.scan over stacked states."""

    def __init__(self, n_trials=200):
        self.n_trials = n_trials

    def __call__(self, z, seed):
        n, dtype, K = tf.shape(z)[0], z.dtype, _sc._n_steps()
        noise = tf.random.stateless_normal(
            tf.stack([K, n, 2, self.n_trials, 4]), tf.cast(seed, tf.int32), dtype=dtype
        )
        W = sc_connectivity(z)
        h = tf.constant(_sc._inputs()[:, None, :, None, :], dtype)
        gain = tf.ones([K], dtype)
        a, b, tau, dt = _sc._A, _sc._B, _sc._TAU, _sc._DT

        def step(state, inputs):
            u, x = state
            h_k, xi, g_next = inputs
            recurrent = tf.einsum("nij,nctj->ncti", W, x)
            u = u + (dt / tau) * (-u + recurrent + h_k + _sc._SIGMA * xi)
            return u, g_next * (0.5 * tf.tanh((u - a) / b) + 0.5)

        x0 = tf.fill(tf.stack([n, 2, self.n_trials, 4]), tf.constant(_sc._X0, dtype))
        u0 = a + b * tf.atanh(2.0 * x0 - 1.0)
        _, xs = tf.scan(step, (h, noise, gain), initializer=(u0, x0))
        diff = xs[-1][..., 0] - xs[-1][..., 2]
        pro = tf.reduce_mean(tf.sigmoid(100.0 * diff[:, 0]), axis=1)
        anti = tf.reduce_mean(tf.sigmoid(-100.0 * diff[:, 1]), axis=1)
        return tf.stack([pro, anti], axis=1)


def _problem(name, statistic):
    """The paper's V1 or SC fit (Methods, "EPI details"): RealNVP 3 x 2 x 50, batch 100."""
    bounds, mu, sigma2 = {
        "V1": (V1_BOUNDS, V1_MU_5HZ, V1_SIGMA2),
        "SC": (SC_BOUNDS, SC_MU, SC_SIGMA2),
    }[name]
    return Problem(
        name=name,
        statistic=statistic,
        bounds=dict(bounds),
        mu=mu,
        sigma2=sigma2,
        flow=RealNVP(num_stages=3, num_layers=2, num_units=50),
        al=ALParams(batch_size=BATCH, num_iters=100, init_iters=0),
        n_test=100,
    )


def iteration_seconds(problem, jit_compile, steps, repeats):
    """(first call, best seconds per iteration) of the compiled training step."""
    spec = replace(problem.seed_spec(), jit_compile=jit_compile)
    start = time.perf_counter()
    key, trainer = checkout(
        "al", spec.flow, spec.support, spec.al.batch_size, spec.dtype, spec.jit_compile,
        spec.statistic, spec.prop,
    )  # fmt: skip
    try:
        # Lines 1-2 of Algorithm 1 without initialise's epoch-0 test, whose
        # 200 x n_test samples of a stored-trajectory simulator would not fit
        # in memory: the step alone is what is timed.
        weights = initial_weights(
            spec.flow, spec.support, spec.init_mean, spec.init_std, spec.al.init_iters,
            spec.al.batch_size, spec.al.lr, 0, spec.dtype, spec.jit_compile,
        )  # fmt: skip
        trainer.start_al(weights, 0, spec.al.init_iters, spec.al.lr, spec.al.c0, spec.prop)
        trainer.train(tf.constant(1, tf.int32))
        first = time.perf_counter() - start
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            trainer.train(tf.constant(steps, tf.int32))[0].numpy()
            best = min(best, (time.perf_counter() - start) / steps)
    finally:
        checkin(key, trainer)
    return first, best


def machine_rates():
    """(float32 operations per second of a large matmul, bytes per second of a large add)."""
    a = tf.random.normal([2048, 2048])
    matmul = tf.function(lambda a: tf.matmul(a, a))
    x = tf.random.normal([32 * 2**20])
    add = tf.function(lambda x: x + 1.0)
    matmul(a).numpy(), add(x).numpy()
    flops, traffic = 0.0, 0.0
    for _ in range(3):
        start = time.perf_counter()
        matmul(a).numpy()
        flops = max(flops, 2 * 2048**3 / (time.perf_counter() - start))
        start = time.perf_counter()
        add(x)[0].numpy()
        traffic = max(traffic, 2 * 4 * x.shape[0] / (time.perf_counter() - start))
    return flops, traffic


def floor_seconds(name, flops, traffic):
    """(compute bound, memory bound) of one iteration's simulation, in seconds."""
    c = _COUNTS[name]
    work = c["elements"] * c["steps"]
    compute = work * (c["forward"] + c["backward"]) / flops
    memory = work * c["tensors"] * 4 / traffic
    return compute, memory


class _ChunkClock(EpochCallback):
    """Notes ``(iteration, time)`` at the end of every logged training chunk."""

    def __init__(self):
        self.ticks = []

    def on_chunk(self, seed_index, epoch, iteration, row):
        self.ticks.append((iteration, time.perf_counter()))


def fit_iteration_seconds(problem, chunks=6, log_rate=5):
    """Seconds per training iteration inside a one-epoch ``EPIEstimator.fit``."""
    al = clone(problem.al).set_params(
        num_iters=chunks * log_rate, log_rate=log_rate, max_epochs=1, patience=None
    )
    clock = _ChunkClock()
    est = EPIEstimator(**{**problem.estimator_kwargs(), "al_params": al}, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch does not converge
        est.set_params(callbacks=[clock]).fit(problem.mu, problem.sigma2)
    (first_it, first_t), (last_it, last_t) = clock.ticks[1], clock.ticks[-1]
    return (last_t - first_t) / (last_it - first_it)


def run(quick=False):
    steps, repeats = (2, 1) if quick else (5, 3)
    # --quick compiles each simulator once (XLA), not also as a plain graph.
    paths = (True,) if quick else (True, False)
    flops, traffic = machine_rates()
    cases = [("V1", v1_excitatory_variability(n_trials=100), _ScanV1())]
    cases += [] if quick else [("SC", sc_task_accuracy(), _ScanSC())]
    rows = []
    for name, new, old in cases:
        timings = {}
        for label, statistic in (("new", new), ("old", old)):
            for jit in paths:
                problem = _problem(name, statistic)
                timings[label, jit] = iteration_seconds(problem, jit, steps, repeats)
        best = {
            label: min((timings[label, jit][1], jit) for jit in paths) for label in ("new", "old")
        }
        compute, memory = floor_seconds(name, flops, traffic)
        path = {True: "XLA", False: "graph"}
        detail = "; ".join(
            f"{label} {path[jit]} {1e3 * timings[label, jit][1]:.0f} ms "
            f"(first call {timings[label, jit][0]:.1f} s)"
            for label in ("new", "old")
            for jit in paths
        )
        rows.append(
            {
                "section": "simulators",
                "benchmark": f"{name}: one training iteration, batch {BATCH} (ms)",
                "value": 1e3 * best["new"][0],
                "baseline": 1e3 * best["old"][0],
                "unit": "ms",
                "ratio": best["new"][0] / best["old"][0],
                "goal": f"<= {GOAL_MS:.0f} ms",
                "met": bool(1e3 * best["new"][0] <= GOAL_MS),
                "notes": f"{detail}; floor of the simulation {1e3 * max(compute, memory):.0f} ms "
                f"(compute {1e3 * compute:.0f} ms at {flops / 1e9:.0f} GFLOP/s, memory "
                f"{1e3 * memory:.0f} ms at {traffic / 1e9:.0f} GB/s)",
            }
        )
        if not quick:
            in_fit = fit_iteration_seconds(_problem(name, new))
            step = timings["new", True][1]
            rows.append(
                {
                    "section": "simulators",
                    "benchmark": f"  {name} inside a fit / step alone (XLA, ms)",
                    "value": 1e3 * in_fit,
                    "baseline": 1e3 * step,
                    "unit": "ms",
                    "ratio": in_fit / step,
                    "goal": "<= 1.1",
                    "met": bool(in_fit / step <= 1.1),
                    "notes": "seconds between the fit's logged training chunks, per iteration",
                }
            )
    return rows
