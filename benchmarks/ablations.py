"""Before/after ratios for the optimisations the package already has.

Each optimisation is measured in this one process against a variant written
here that switches it off, everything else equal:

* XLA: ``_compile(objective, jit_compile=False)`` against ``True``.
* Fused sample-and-log-prob: a flow whose ``sample_and_log_prob`` samples and
  then evaluates ``log_prob`` on the samples (the inverse pass; ``tf.identity``
  keeps TFP's bijector cache from short-cutting it).
* One-pass unbiased penalty gradient: the same loss differentiated in two
  backward passes (entropy + Lagrange term, then the penalty) and summed.
* Batched convergence test: ``_epoch_end`` drawing its ``200 x N_test`` test
  samples in passes of up to 20,000 against 200 passes of ``N_test``.
* Early stopping: ``stop_early=True`` against ``False`` (whole fit).
* Init caching: the second fit with ``memory=`` against the first.

Per-worker thread caps live in :mod:`benchmarks.parallel`.
"""

from __future__ import annotations

import tempfile
import time
import warnings

import numpy as np
import tensorflow as tf

from sklearn_epi import EPIEstimator
from sklearn_epi.optimize import _compile, _epoch_end, _Objective

from . import problems
from .throughput import package_step, steady_rates


class _SampleThenInvert(tf.Module):
    """A flow whose samples and densities take a forward and an inverse pass."""

    def __init__(self, flow):
        super().__init__(name="sample_then_invert")
        self.flow, self.dtype, self.dim = flow, flow.dtype, flow.dim

    def sample_and_log_prob(self, n, seed):
        z = self.flow.distribution.sample(n, seed=seed)
        return z, self.flow.log_prob(tf.identity(z))


class _TwoPassPenalty(_Objective):
    """The AL step with the penalty gradient in its own backward pass."""

    def train_steps(self, num_steps):
        dtype = self.flow.dtype
        H_sum = tf.zeros([], dtype)
        all_finite = tf.constant(True)
        half = self.batch // 2
        for _ in tf.range(num_steps):
            with tf.GradientTape(persistent=True) as tape:
                seed = self._next_seed()
                z, log_q = self.flow.sample_and_log_prob(self.batch, seed=seed)
                T = self.sufficient_statistics(z, seed)
                H = -tf.reduce_mean(log_q)
                R1 = tf.reduce_mean(T[:half], axis=0) - self.mu_opt
                R2 = tf.reduce_mean(T[half:], axis=0) - self.mu_opt
                lagrangian = -H + tf.tensordot(self.eta, 0.5 * (R1 + R2), 1)
                penalty = self.c * tf.tensordot(R1, tf.stop_gradient(R2), 1)
            first = self._gradients(tape, lagrangian)
            second = self._gradients(tape, penalty)
            del tape
            grads = [a + b for a, b in zip(first, second)]
            self.adam.apply(grads)
            all_finite = tf.logical_and(all_finite, tf.math.is_finite(lagrangian))
            H_sum += H
        n = tf.cast(num_steps, dtype)
        return H_sum / n, H_sum / n, tf.zeros([self.m], dtype), all_finite


def _ratio_row(name, after, before, unit, higher_is_better, notes=""):
    ratio = after / before if higher_is_better else before / after
    return {
        "section": "optimisations",
        "benchmark": name,
        "value": after,
        "baseline": before,
        "unit": unit,
        "ratio": ratio,
        "goal": "> 1",
        "met": ratio > 1,
        "notes": notes,
    }


def step_variants(quick=False):
    """XLA, fused sampling and one-pass penalty, as training throughput."""
    iters, repeats = (300, 2) if quick else (1000, 3)
    rows = []
    for problem in [problems.oscillator()] + ([] if quick else [problems.rnn(50)]):
        ours, flow, spec = package_step(problem)
        graph, _, _ = package_step(problem, jit_compile=False)
        unfused, _, _ = package_step(
            problem, flow=_SampleThenInvert(spec.flow.build(spec.support, seed=0))
        )
        two_pass, _, _ = package_step(problem, objective_cls=_TwoPassPenalty)
        rates = steady_rates(
            {"ours": ours, "graph": graph, "unfused": unfused, "two_pass": two_pass},
            iters,
            repeats,
        )
        where = f"{problem.name} (D={problem.dim})"
        rows += [
            _ratio_row(f"XLA vs graph, {where}", rates["ours"], rates["graph"], "it/s", True),
            _ratio_row(
                f"fused sample+log q vs inverse pass, {where}",
                rates["ours"],
                rates["unfused"],
                "it/s",
                True,
            ),
            _ratio_row(
                f"one-pass vs two-pass penalty gradient, {where}",
                rates["ours"],
                rates["two_pass"],
                "it/s",
                True,
            ),
        ]
    return rows


def batched_test(quick=False, repeats=3):
    """Seconds per epoch-end test: 200 x N_test samples in big passes vs 200 passes."""
    rows = []
    for problem in [problems.rnn(10)] + ([] if quick else [problems.rnn(50)]):
        spec = problem.seed_spec()
        objective = _Objective(spec.flow.build(spec.support, seed=0), spec, 0)
        fns = _compile(objective, spec.jit_compile)
        evaluate = fns["evaluate"]

        def one_batch_per_pass(total, n=spec.n_test):
            parts = [evaluate(n) for _ in range(total // n)]
            return tuple(
                tf.constant(np.concatenate([part[i].numpy() for part in parts])) for i in range(3)
            )

        variants = {"batched": fns, "small": dict(fns, evaluate=one_batch_per_pass)}
        best = dict.fromkeys(variants, np.inf)
        rng = np.random.default_rng(0)
        for f in variants.values():  # warm-up: traces each pass size once
            _epoch_end(objective, f, spec, 0, 0, rng, None)
        for _ in range(repeats):
            for name, f in variants.items():
                start = time.perf_counter()
                _epoch_end(objective, f, spec, 0, 0, rng, None)
                best[name] = min(best[name], time.perf_counter() - start)
        rows.append(
            _ratio_row(
                f"batched convergence test, {problem.name} (200 x {spec.n_test} samples)",
                best["batched"],
                best["small"],
                "s",
                False,
            )
        )
    return rows


def _fit_time(problem, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = EPIEstimator(**kwargs).fit(problem.mu, problem.sigma2)
    return est


def early_stopping(quick=False):
    """Whole-fit wall time on the oscillator with and without ``stop_early``."""
    problem = problems.oscillator()
    al = {"num_iters": 200, "max_epochs": 2} if quick else {"num_iters": 2000, "max_epochs": 10}
    fits = {
        flag: _fit_time(problem, **problem.estimator_kwargs(stop_early=flag, **al), random_state=0)
        for flag in (True, False)
    }
    on, off = fits[True], fits[False]
    return [
        _ratio_row(
            "early stopping (stop_early), oscillator fit",
            on.fit_time_,
            off.fit_time_,
            "s",
            False,
            notes=f"epochs {on.history_.epoch.max()} vs {off.history_.epoch.max()}; "
            f"converged {on.converged_} vs {off.converged_}; "
            f"H {on.entropy_:.3f} vs {off.entropy_:.3f}",
        )
    ]


def init_caching(quick=False):
    """Second fit with ``memory=`` (initialisation from the cache) against the first."""
    problem = problems.oscillator()
    al = (
        {"num_iters": 100, "max_epochs": 1, "init_iters": 500}
        if quick
        else {"num_iters": 200, "max_epochs": 2, "init_iters": 2000}
    )
    with tempfile.TemporaryDirectory() as cache:
        kwargs = dict(problem.estimator_kwargs(**al), memory=cache, random_state=0)
        first = _fit_time(problem, **kwargs).fit_time_
        second = _fit_time(problem, **kwargs).fit_time_
    return [
        _ratio_row(
            f"init caching (memory=), oscillator fit, init_iters={al['init_iters']}",
            second,
            first,
            "s",
            False,
            notes="2nd fit vs 1st, same seed",
        )
    ]


def run(quick=False):
    return step_variants(quick) + batched_test(quick) + early_stopping(quick) + init_caching(quick)
