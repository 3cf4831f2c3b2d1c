"""Optional peer: sbi's sequential NPE on the same RNN criterion (skipped without sbi).

sbi is never a dependency of sklearn_epi and is not installed by this suite.
When it is importable, NPE runs as in the paper's comparison (Methods,
"Methodological comparison"): uniform prior on ``[-1, 1]^{4N}``, observation
``x0 = mu``, rounds of ``n_round`` simulations from the latest posterior,
done at the end of the first round whose posterior predictive mean is within
0.5 (L2) of ``mu`` (2,000 predictive samples, not counted as simulations).
"""

from __future__ import annotations

import importlib.util
import time

import numpy as np

from . import problems


def available() -> bool:
    return importlib.util.find_spec("sbi") is not None


def _npe_time_to_criterion(N, seed, n_round=1000, max_rounds=10, budget_s=600):
    import tensorflow as tf
    import torch
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    problem = problems.rnn(N)
    torch.manual_seed(seed)
    D = problem.dim

    def simulate(theta):
        f = problem.statistic(tf.constant(theta.numpy(), tf.float32)).numpy()
        return torch.as_tensor(f, dtype=torch.float32)

    prior = BoxUniform(low=-torch.ones(D), high=torch.ones(D))
    x0 = torch.as_tensor(problem.mu, dtype=torch.float32)
    inference, proposal = NPE(prior=prior), prior
    start, sims = time.perf_counter(), 0
    for _ in range(max_rounds):
        theta = proposal.sample((n_round,))
        x = simulate(theta)
        sims += n_round
        estimator = inference.append_simulations(theta, x, proposal=proposal).train()
        proposal = inference.build_posterior(estimator).set_default_x(x0)
        predictive = simulate(proposal.sample((2000,))).numpy().mean(axis=0)
        elapsed = time.perf_counter() - start
        if np.linalg.norm(predictive - problem.mu) < problems.CRITERION:
            return elapsed, sims
        if elapsed > budget_s:
            break
    return np.nan, np.nan


def run(quick=False, sizes=None):
    if not available():
        print(
            "peers: sbi is not importable; skipping the NPE column (install sbi yourself to add it)"
        )
        return [
            {
                "section": "peers",
                "benchmark": "sbi NPE time to ||E f - mu|| < 0.5",
                "value": np.nan,
                "baseline": np.nan,
                "unit": "s",
                "ratio": np.nan,
                "goal": "",
                "met": None,
                "notes": "skipped: sbi not importable",
            }
        ]
    rows = []
    for N in sizes or ((2,) if quick else (2, 10, 25)):
        try:
            seconds, sims = _npe_time_to_criterion(N, seed=0)
            note = f"1 seed, 1000 simulations per round; sims {sims:.3g}"
        except Exception as exc:  # noqa: BLE001 - a peer's failure must not stop the suite
            seconds, note = np.nan, f"failed: {type(exc).__name__}: {exc}"[:200]
        rows.append(
            {
                "section": "peers",
                "benchmark": f"sbi NPE, rnn N={N}: to ||E f - mu|| < 0.5",
                "value": seconds,
                "baseline": np.nan,
                "unit": "s",
                "ratio": np.nan,
                "goal": "",
                "met": None,
                "notes": note,
            }
        )
    return rows
