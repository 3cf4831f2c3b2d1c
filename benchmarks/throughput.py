"""Training iterations per second on the 2D oscillator, with and without XLA.

Same flow (RealNVP 3 stages x 2 layers x 50 units), same batch (500), same
statistic, same optimiser state; only ``jit_compile`` differs. Both are
measured in this one process, after a warm-up chunk that pays for tracing and
compilation, so the ratio compares steady-state step cost.

Run: ``python benchmarks/throughput.py [--iters 2000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from sklearn_epi import ALParams, RealNVP  # noqa: E402
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues  # noqa: E402
from sklearn_epi.optimize import SeedSpec, _compile, _Objective  # noqa: E402
from sklearn_epi.support import parse_bounds  # noqa: E402


def iterations_per_second(jit_compile: bool, iters: int, repeats: int, chunk: int = 50) -> float:
    """Best-of-``repeats`` training throughput of one compiled configuration."""
    support = parse_bounds(LDS_BOUNDS)
    mean, std = support.default_gaussian()
    spec = SeedSpec(
        flow=RealNVP(num_stages=3, num_layers=2, num_units=50),
        support=support,
        statistic=lds_eigenvalues,
        mu=LDS_MU,
        sigma2=LDS_SIGMA2,
        constraint_names=["m0", "m1", "v0", "v1"],
        al=ALParams(batch_size=500),
        init_mean=mean,
        init_std=std,
        alpha=0.05,
        n_test=500,
    )
    flow = spec.flow.build(support, seed=0)
    train = _compile(_Objective(flow, spec, seed=0), jit_compile)["train"]
    steps = tf.constant(chunk, tf.int32)
    train(steps)  # trace + compile
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters // chunk):
            H, *_ = train(steps)
        float(H)  # one host sync per chunk, as in fit
        best = max(best, (iters // chunk) * chunk / (time.perf_counter() - start))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    plain = iterations_per_second(False, args.iters, args.repeats)
    xla = iterations_per_second(True, args.iters, args.repeats)
    print(f"threads: {tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()}")
    print(f"{'configuration':<24}{'iterations/s':>14}")
    print(f"{'graph (no XLA)':<24}{plain:>14.1f}")
    print(f"{'XLA (jit_compile=True)':<24}{xla:>14.1f}")
    print(f"ratio XLA / graph: {xla / plain:.2f}x")
    return np.array([plain, xla])


if __name__ == "__main__":
    main()
