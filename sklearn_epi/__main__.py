"""Demo: ``python -m sklearn_epi`` fits the paper's oscillating 2D linear system.

Prints whether EPI converged, the entropy, a table of the constraints
(target, value on fresh samples, p-value) and the wall time.
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

    from sklearn_epi import ALParams, EPIEstimator
    from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues

    print("EPI on the 2D linear system tau dx/dt = A x, z = [a11, a12, a21, a22] in [-10, 10]^4")
    print("property: real(lambda_1) ~ 0 +- 0.25, imag(lambda_1) ~ 2 pi +- pi/5 (1 Hz)\n")
    start = time.perf_counter()
    est = EPIEstimator(
        lds_eigenvalues,
        LDS_BOUNDS,
        al_params=ALParams(stop_early=True),
        # The first epoch to pass the test is near its edge; passing it with
        # 1000 samples per batch estimate leaves margin for fresh samples.
        n_test=1000,
        n_seeds=args.seeds,
        n_jobs=args.n_jobs,
        random_state=args.random_state,
        verbose=args.verbose,
    )
    est.fit(pd.Series(LDS_MU, index=["real_lambda1", "imag_lambda1"]), LDS_SIGMA2)
    elapsed = time.perf_counter() - start

    Z = est.sample(10_000, random_state=0)
    f = lds_eigenvalues(Z).numpy()
    values = np.concatenate([f.mean(axis=0), ((f - LDS_MU) ** 2).mean(axis=0)])
    table = pd.DataFrame(
        {
            "target": np.concatenate([LDS_MU, LDS_SIGMA2]),
            "fresh samples": values,
            "p-value": est.pvalues_,
        },
        index=est.constraint_names_,
    )
    print()
    print(f"converged: {est.converged_} (seed {est.best_seed_}, epoch {est.epoch_})")
    print(f"entropy:   {est.entropy_:.3f} +- {est.entropy_se_:.3f} nats")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"time:      {elapsed:.1f} s")
    return 0 if est.converged_ else 1


if __name__ == "__main__":
    raise SystemExit(main())
