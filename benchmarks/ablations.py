"""Before/after ratios for the optimisations the package already has.

Each optimisation is measured in this one process against a variant written
here that switches it off, everything else equal:

* XLA: ``Trainer(..., jit_compile=False)`` against ``True``.
* Fused sample-and-log-prob: a flow whose ``sample_and_log_prob`` samples and
  then evaluates ``log_prob`` on the samples (the inverse pass).
* One-pass unbiased penalty gradient: the same loss differentiated in two
  backward passes (entropy + Lagrange term, then the penalty) and summed.
* Batched convergence test: ``test_epoch`` drawing its ``200 x N_test`` test
  samples in passes of up to 20,000 against 200 passes of ``N_test``.
* Early stopping: ``stop_early=True`` against ``False`` (whole fit).
* Init caching: the second fit with ``memory=`` against the first.
* Compile once per process: 4 sequential seeds and a 4-candidate grid
  search reusing the compiled step against each compiling its own
  (``sklearn_epi._train.POOL_SIZE = 0``).

Per-worker thread caps live in :mod:`benchmarks.parallel`.
"""

from __future__ import annotations

import tempfile
import time
import warnings
from types import SimpleNamespace

import numpy as np
import tensorflow as tf
from sklearn.model_selection import GridSearchCV

from sklearn_epi import EPIEstimator, _train
from sklearn_epi._seed_state import SeedState
from sklearn_epi._train import Trainer
from sklearn_epi.model_selection import property_cv
from sklearn_epi.optimize import test_epoch

from . import problems
from .throughput import package_step, ready_trainer, steady_rates


class _SampleThenInvert(tf.Module):
    """A flow whose samples and densities take a forward and an inverse pass."""

    def __init__(self, flow):
        super().__init__(name="sample_then_invert")
        self.flow, self.dtype, self.dim = flow, flow.dtype, flow.dim

    def sample_and_log_prob(self, n, seed):
        z = self.flow.sample(n, seed=seed)
        return z, self.flow.log_prob(tf.identity(z))

    def stratified_sample_and_log_prob(self, n, seed, split=None, train_weights=True):
        # One base mode (``step_variants``): every weight is 1.
        z, log_q = self.sample_and_log_prob(n, seed)
        return z, log_q, tf.ones([n], self.dtype)


class _TwoPassPenalty(Trainer):
    """The AL step with the penalty gradient in its own backward pass."""

    def _train_steps(self, num_steps):
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
                R1 = tf.reduce_mean(T[:half], axis=0) - self.targets
                R2 = tf.reduce_mean(T[half:], axis=0) - self.targets
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
        return H_sum / n, H_sum / n, tf.zeros_like(self.targets), all_finite


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
    iters, repeats = (100, 1) if quick else (1000, 3)
    rows = []
    chosen = [problems.oscillator()] + ([] if quick else [problems.rnn(50)])
    for problem in map(problems.one_base_mode, chosen):  # the variants' sampling has one
        ours, flow, spec = package_step(problem)
        graph, _, _ = package_step(problem, jit_compile=False)
        unfused, _, _ = package_step(
            problem, flow=_SampleThenInvert(spec.flow.build(spec.support, seed=0))
        )
        two_pass, _, _ = package_step(problem, trainer_cls=_TwoPassPenalty)
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
    repeats = 1 if quick else repeats
    for problem in [problems.rnn(10)] + ([] if quick else [problems.rnn(50)]):
        spec = problem.seed_spec()
        trainer = ready_trainer(Trainer, spec.flow.build(spec.support, seed=0), spec, True)
        evaluate = trainer.evaluate

        def one_batch_per_pass(total, n=spec.prop.n_test):
            parts = [evaluate(n) for _ in range(total // n)]
            return tuple(
                tf.constant(np.concatenate([part[i].numpy() for part in parts])) for i in range(3)
            )

        small = SimpleNamespace(
            evaluate=one_batch_per_pass,
            **{k: getattr(trainer, k) for k in ("c", "eta", "targets", "flow", "scale")},
        )
        variants = {"batched": trainer, "small": small}
        best = dict.fromkeys(variants, np.inf)
        state = SeedState(0, np.random.default_rng(0), epochs=[])
        for t in variants.values():  # warm-up: traces each pass size once
            test_epoch(t, spec, state)
        for _ in range(repeats):
            for name, t in variants.items():
                start = time.perf_counter()
                test_epoch(t, spec, state)
                best[name] = min(best[name], time.perf_counter() - start)
        rows.append(
            _ratio_row(
                f"batched convergence test, {problem.name} (200 x {spec.prop.n_test} samples)",
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


def _warm_up(problem, **al):
    """Compile the problem's trainers once, so the fits compared below all reuse them."""
    small = {"num_iters": 10, "max_epochs": 1, **al}
    _fit_time(problem, **problem.estimator_kwargs(**small), random_state=0)


def early_stopping(quick=False):
    """Whole-fit wall time on the oscillator with and without ``stop_early``."""
    problem = problems.oscillator()
    al = {"num_iters": 200, "max_epochs": 2} if quick else {"num_iters": 2000, "max_epochs": 10}
    _warm_up(problem)
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
    _warm_up(problem, init_iters=al["init_iters"])
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


def compile_once(quick=False):
    """Seeds and grid-search candidates reusing the compiled step, against compiling each.

    ``sklearn_epi._train.POOL_SIZE = 0`` keeps no trainer for reuse (every
    seed and candidate traces and compiles its own step, as before the pool);
    the default reuses one per problem. Both run in this process, after a
    warm-up fit of another problem so neither pays TensorFlow's start-up.
    """
    if quick:  # the test suite checks the pool's reuse directly
        return []
    problem = problems.rnn(10)
    al = {"num_iters": 500, "max_epochs": 2}
    n_seeds = 4
    _warm_up(problems.oscillator())
    grid = {"al_params__c0": [1e-3, 1e-2], "al_params__lr": [1e-3, 2e-3]}
    times = {}
    for label, pool in (("reuse", _train.POOL_SIZE), ("compile each", 0)):
        saved, _train.POOL_SIZE = _train.POOL_SIZE, pool
        _train.clear_pool()
        try:
            kwargs = dict(problem.estimator_kwargs(**al), random_state=0)
            seeds = _fit_time(problem, **kwargs, n_seeds=n_seeds).fit_time_
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                GridSearchCV(
                    EPIEstimator(**kwargs), grid, cv=property_cv(problem.mu), refit=False
                ).fit(problem.mu, problem.sigma2)
            times[label] = (seeds, time.perf_counter() - start)
        finally:
            _train.POOL_SIZE = saved
    (seeds_on, grid_on), (seeds_off, grid_off) = times["reuse"], times["compile each"]
    return [
        _ratio_row(
            f"compile once: {n_seeds} sequential seeds, {problem.name}",
            seeds_on,
            seeds_off,
            "s",
            False,
            notes=f"{al['num_iters']} iterations x {al['max_epochs']} epochs per seed",
        ),
        _ratio_row(
            f"compile once: 4-candidate grid search, {problem.name}",
            grid_on,
            grid_off,
            "s",
            False,
            notes="c0 x lr, same shapes; n_jobs=None",
        ),
    ]


def run(quick=False):
    return (
        step_variants(quick)
        + batched_test(quick)
        + early_stopping(quick)
        + init_caching(quick)
        + compile_once(quick)
    )
