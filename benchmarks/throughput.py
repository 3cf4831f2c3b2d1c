"""Training iterations per second: the package's compiled step against a hand-written one.

For each problem, the package's step (``sklearn_epi._train.Trainer(...).train``,
XLA) and :class:`~benchmarks.reference_step.ReferenceStep` (plain
``tf.function(jit_compile=True)``, the same maths without TFP or safety
checks) start from the same flow weights and draw batches of the same size,
both with a standard normal base (``base_modes=1``); the package's step with
its default two-mode base is timed beside them.
They are timed in this one process, interleaved, after a warm-up chunk that
pays for tracing and compilation; the best of ``repeats`` rounds is kept, so
load from other processes biases both the same way.

A whole ``EPIEstimator.fit`` is timed against the same hand-written step:
its cost per iteration is the difference of two one-epoch fits, short and
long, after a warm-up fit in the same process, so that initialisation,
tests, compilation and bookkeeping cancel and what remains is what a fit's
training iteration costs (issue 28 found fits at a third of their step's
speed while the step alone measured 0.96; the row keeps the two together).

Run: ``python -m benchmarks --sections throughput``
"""

from __future__ import annotations

import time
import warnings

import tensorflow as tf
from sklearn.base import clone

from sklearn_epi import EPIEstimator
from sklearn_epi._train import Trainer

from . import problems
from .reference_step import ReferenceStep, max_density_mismatch

CHUNK = 50  # iterations per call, the default log_rate of fit


def steady_rates(steps: dict, iters: int, repeats: int, chunk: int = CHUNK) -> dict:
    """Best-of-``repeats`` iterations/s of each ``train(num_steps)`` callable.

    Every callable is warmed up first; rounds interleave the callables so a
    burst of load from elsewhere hits all of them. One host sync per chunk,
    as in ``fit``.
    """
    num = tf.constant(chunk, tf.int32)
    for train in steps.values():
        _sync(train(num))
    best = dict.fromkeys(steps, 0.0)
    calls = max(1, iters // chunk)
    for _ in range(repeats):
        for name, train in steps.items():
            start = time.perf_counter()
            for _ in range(calls):
                out = train(num)
            _sync(out)
            best[name] = max(best[name], calls * chunk / (time.perf_counter() - start))
    return best


def _sync(out):
    first = out[0] if isinstance(out, (tuple, list)) else out
    return float(first)


def package_step(problem, jit_compile=True, trainer_cls=Trainer, flow=None, seed=0):
    """The package's compiled training loop for ``problem`` and its flow."""
    spec = problem.seed_spec()
    flow = flow if flow is not None else spec.flow.build(spec.support, seed=seed)
    trainer = ready_trainer(trainer_cls, flow, spec, jit_compile, seed)
    return trainer.train, flow, spec


def ready_trainer(trainer_cls, flow, spec, jit_compile, seed=0):
    """A compiled trainer of ``spec`` around ``flow`` at ``c0``, zero ``eta`` and the targets."""
    trainer = trainer_cls(flow, spec.statistic, spec.prop, spec.al.batch_size, jit_compile)
    trainer.base_seed.assign([seed, 7919])
    trainer.adam.lr.assign(spec.al.lr)
    trainer.c.assign(spec.al.c0)
    trainer.mu.assign(spec.prop.mu)
    trainer.targets.assign(spec.prop.targets)
    return trainer


def reference_step(problem, flow, spec, cls=ReferenceStep):
    ref = cls(
        flow,
        spec.support,
        problem.statistic,
        problem.mu,
        problem.sigma2,
        batch_size=spec.al.batch_size,
        lr=spec.al.lr,
        c0=spec.al.c0,
    )
    train = tf.function(ref.train, input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=True)
    return train, ref


def fit_iteration_seconds(problem, short: int, long: int, repeats: int) -> float:
    """Seconds per training iteration of a whole fit (best of ``repeats``).

    Two fits of one epoch, of ``short`` and ``long`` iterations, differ only
    in their training iterations: everything else (initialisation, the
    epoch-0 and epoch-1 tests, the fit's bookkeeping) cancels. A warm-up fit
    first pays for tracing and compilation, as the step's warm-up chunk does.
    """

    def fit_seconds(iters):
        al = clone(problem.al).set_params(num_iters=iters, max_epochs=1, patience=None)
        est = EPIEstimator(**{**problem.estimator_kwargs(), "al_params": al}, random_state=0)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one epoch does not converge
            est.fit(problem.mu, problem.sigma2)
        return time.perf_counter() - start

    fit_seconds(short)
    return min((fit_seconds(long) - fit_seconds(short)) / (long - short) for _ in range(repeats))


def run(quick=False):
    """Rows of the throughput table: ours, reference, ratio, per problem."""
    iters, repeats = (200, 2) if quick else (1000, 3)
    cases = [problems.oscillator()] + ([] if quick else [problems.rnn(10), problems.rnn(50)])
    rows = []
    for default in cases:
        # The hand-written step has a standard normal base: compare like with
        # like, and the default two-mode base against it in the same run.
        problem = problems.one_base_mode(default)
        ours, flow, spec = package_step(problem)
        ref_train, ref = reference_step(problem, flow, spec)
        mismatch = max_density_mismatch(flow, ref)
        steps = {"ours": ours, "reference": ref_train, "two_modes": package_step(default)[0]}
        rates = steady_rates(steps, iters, repeats)
        rows.append(
            {
                "section": "throughput",
                "benchmark": f"train it/s, {problem.name} (D={problem.dim}, "
                f"batch {spec.al.batch_size})",
                "value": rates["ours"],
                "baseline": rates["reference"],
                "unit": "it/s",
                "ratio": rates["ours"] / rates["reference"],
                "goal": ">= 0.9",
                "met": rates["ours"] / rates["reference"] >= 0.9,
                "notes": f"vs hand-written XLA step; max |log q diff| {mismatch:.1e}",
            }
        )
        rows.append(
            {
                "section": "throughput",
                "benchmark": f"  two base modes (default), {problem.name}",
                "value": rates["two_modes"],
                "baseline": rates["ours"],
                "unit": "it/s",
                "ratio": rates["two_modes"] / rates["ours"],
                "goal": "",
                "met": None,
                "notes": "vs one base mode: cost of the mixture base and its stratified batch",
            }
        )
        short, long = (50, 450) if quick else (500, 2500)
        fit_rate = 1.0 / fit_iteration_seconds(problem, short, long, 1 if quick else repeats)
        rows.append(
            {
                "section": "throughput",
                "benchmark": f"whole fit it/s, {problem.name} (D={problem.dim}, "
                f"batch {spec.al.batch_size})",
                "value": fit_rate,
                "baseline": rates["reference"],
                "unit": "it/s",
                "ratio": fit_rate / rates["reference"],
                "goal": ">= 0.9",
                "met": None if quick else fit_rate / rates["reference"] >= 0.9,
                "notes": f"(fit of {long} - fit of {short} iterations) vs hand-written XLA step",
            }
        )
    return rows
