"""Demo: ``python -m sklearn_epi`` fits the paper's oscillating 2D linear system.

Prints whether EPI converged, the entropy beside the true maximum (solved
independently by :func:`sklearn_epi.analysis.maxent_reference`), the share
of samples on each of the distribution's two modes, a table of the
constraints (target, value on fresh samples, p-value) and the wall time.
"""

from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    """Run the demo fit and print its report; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_epi",
        description="Fit EPI to the oscillating 2D linear system (Bittner et al., 2021).",
    )
    parser.add_argument("--seeds", type=int, default=1, help="random restarts (default 1)")
    parser.add_argument("--n-jobs", type=int, default=None, help="processes for the seeds")
    parser.add_argument("--random-state", type=int, default=1)
    parser.add_argument("--verbose", type=int, default=1, help="0 quiet, 1 progress, 2 epochs")
    args = parser.parse_args(argv)

    import numpy as np
    import pandas as pd

    from sklearn_epi import EPIEstimator
    from sklearn_epi.analysis import maxent_reference
    from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues

    print("EPI on the 2D linear system tau dx/dt = A x, z = [a11, a12, a21, a22] in [-10, 10]^4")
    print("property: real(lambda_1) ~ 0 +- 0.25, imag(lambda_1) ~ 2 pi +- pi/5 (1 Hz)\n")
    start = time.perf_counter()
    est = EPIEstimator(
        lds_eigenvalues,
        LDS_BOUNDS,
        n_seeds=args.seeds,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        verbose=args.verbose,
    )
    est.fit(pd.Series(LDS_MU, index=["real_lambda1", "imag_lambda1"]), LDS_SIGMA2)
    elapsed = time.perf_counter() - start

    ref = maxent_reference(
        lds_eigenvalues, LDS_BOUNDS, LDS_MU, LDS_SIGMA2, n_samples=1_000_000, random_state=0
    )
    Z = est.sample(10_000, random_state=0)
    f = lds_eigenvalues(Z).numpy()
    values = np.concatenate([f.mean(axis=0), ((f - LDS_MU) ** 2).mean(axis=0)])
    table = pd.DataFrame(
        {
            "target": np.concatenate([LDS_MU, LDS_SIGMA2]),
            "fresh samples": values,
            "p-value": est.pvalues_,
        },
        index=est.property_.constraint_names,
    )
    print()
    print(f"converged: {est.converged_} (seed {est.best_seed_}, epoch {est.epoch_})")
    print(f"entropy:   {est.entropy_:.3f} +- {est.entropy_se_:.3f} nats")
    print(
        f"maximum:   {ref.entropy:.3f} +- {ref.entropy_se:.3f} nats (maxent_reference); "
        f"gap {ref.entropy - est.entropy_:.3f}"
    )
    print(
        f"modes:     {np.mean(Z[:, 1] > 0):.0%} of samples with a12 > 0 > a21, "
        f"{np.mean(Z[:, 1] < 0):.0%} with a12 < 0 < a21 (the maximum: 50% each)"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"time:      {elapsed:.1f} s")
    return 0 if est.converged_ else 1


if __name__ == "__main__":
    raise SystemExit(main())
