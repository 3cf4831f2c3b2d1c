"""The peer in the same run: sbi's truncated sequential NPE beside EPI on the RNN criterion.

sbi is never a dependency of sklearn_epi; ``pip install -e ".[peers]"``
installs it (and PyTorch) for this section only. Without it the section
prints one skipped row.

Both methods run on the same problem (:func:`benchmarks.problems.rnn`: the
rank-2 RNN's stable amplification, uniform box ``[-1, 1]^{4N}``) and stop at
the same criterion as the paper's comparison (Methods, "Methodological
comparison"): the end of the first epoch (EPI) or round (sbi) whose
predictive mean of ``[real(lambda_1), lambda_1^s]`` is within 0.5 (L2) of
``mu``.

* **sbi**: truncated sequential NPE (TSNPE, Deistler et al. 2022), the
  sequential variant its authors present as robust (the paper's SNPE-C
  atomic loss is prone to leakage): each round simulates
  ``n_round`` parameters from the prior truncated to the ``1 - 1e-4``
  highest-density region of the latest posterior, trains NPE on all
  simulations with the first-round (maximum-likelihood) loss, and the
  predictive mean is estimated from 2,000 posterior samples (simulated, and
  counted). The density estimator is the paper's: a masked autoregressive
  flow, 3 transforms of 50 hidden units. ``n_round`` is the paper's: 1,000
  up to N = 25 and more for larger networks (the paper needed 25,000 at
  N = 50; 5,000 here, to fit a round in the budget).
* **EPI**: :func:`benchmarks.time_to_property.one_run` with the same
  seed, an ``EPIEstimator`` at the package's defaults for this problem.

Each sbi run lives in its own process (``spawn``): it reports after every
round, and is killed when its wall-time budget is spent, since a round can
stall inside sbi (sampling a posterior whose mass leaks out of the prior box
is rejection sampling, with no time limit). A run that never met the
criterion counts as +inf in the median. Times include imports of nothing,
but every compile and the first simulation, for both.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import queue
import time

import numpy as np

from . import problems, time_to_property

#: Per N: simulations per sbi round and the wall-time budget of one run (s).
PLAN = {2: (1000, 300), 10: (1000, 300), 25: (1000, 300), 50: (5000, 600)}


def available() -> bool:
    return importlib.util.find_spec("sbi") is not None


def _tsnpe(N, seed, n_round, report):
    """Run TSNPE until the criterion; ``report`` gets (seconds, sims, distance) per round."""
    import tensorflow as tf
    import torch
    from sbi.inference import NPE
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform, RestrictedPrior, get_density_thresholder

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    problem = problems.rnn(N)
    D = problem.dim
    sims = 0

    def simulate(theta):
        nonlocal sims
        sims += len(theta)
        f = problem.statistic(tf.constant(theta.numpy(), tf.float32)).numpy()
        return torch.as_tensor(f, dtype=torch.float32)

    prior = BoxUniform(low=-torch.ones(D), high=torch.ones(D))
    x0 = torch.as_tensor(problem.mu, dtype=torch.float32)
    inference = NPE(
        prior=prior,
        density_estimator=posterior_nn(model="maf", hidden_features=50, num_transforms=3),
        show_progress_bars=False,
    )
    start, proposal = time.perf_counter(), prior
    while True:
        theta = proposal.sample((n_round,))
        x = simulate(theta)
        inference.append_simulations(theta, x).train(force_first_round_loss=True)
        posterior = inference.build_posterior().set_default_x(x0)
        predictive = simulate(posterior.sample((2000,), show_progress_bars=False))
        distance = float(np.linalg.norm(predictive.numpy().mean(axis=0) - problem.mu))
        report.put((time.perf_counter() - start, sims, distance))
        if distance < problems.CRITERION:
            return
        threshold = get_density_thresholder(posterior, quantile=1e-4)
        proposal = RestrictedPrior(prior, threshold, sample_with="rejection")


def _child(N, seed, n_round, report):
    import os
    import tempfile
    import warnings

    import sklearn_epi  # noqa: F401 - starts TensorFlow without its start-up notices

    warnings.simplefilter("ignore")
    os.chdir(tempfile.mkdtemp(prefix="sbi-"))  # sbi writes its training logs to ./sbi-logs
    try:
        _tsnpe(N, seed, n_round, report)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, not lost
        report.put(("failed", f"{type(exc).__name__}: {exc}"[:200]))
    report.put(("done",))


def sbi_run(N, seed, n_round, budget_s):
    """Seconds and simulations to the criterion (NaN if never), rounds run, and a note."""
    ctx = mp.get_context("spawn")
    report = ctx.Queue()
    proc = ctx.Process(target=_child, args=(N, seed, n_round, report), daemon=True)
    proc.start()
    deadline, rounds, note = time.monotonic() + budget_s + 60, [], ""
    while time.monotonic() < deadline:  # + 60 s: the child's imports are not timed
        try:
            message = report.get(timeout=1.0)
        except queue.Empty:
            if not proc.is_alive():
                note = "process ended without a report"
                break
            continue
        if message[0] == "done":
            break
        if message[0] == "failed":
            note = f"failed: {message[1]}"
            continue
        rounds.append(message)
        if message[0] > budget_s:
            break
    else:
        note = note or "killed at the budget"
    if proc.is_alive():
        proc.kill()
    proc.join()
    hits = [r for r in rounds if r[2] < problems.CRITERION and r[0] <= budget_s]
    seconds, sims = (hits[0][0], hits[0][1]) if hits else (np.nan, np.nan)
    best = min((r[2] for r in rounds), default=np.nan)
    return {
        "seconds": seconds,
        "sims": sims,
        "rounds": len(rounds),
        "closest": best,
        "note": note or ("" if hits else "criterion not met in the budget"),
    }


def run(quick=False, sizes=None, n_seeds=None):
    if not available():
        print('peers: sbi is not importable; install it with pip install -e ".[peers]"')
        return [
            {
                "section": "peers",
                "benchmark": "EPI vs sbi TSNPE: time to ||E f - mu|| < 0.5",
                "value": np.nan,
                "baseline": np.nan,
                "unit": "s",
                "ratio": np.nan,
                "goal": "",
                "met": None,
                "notes": "skipped: sbi not importable",
            }
        ], []
    sizes = sizes or ((10,) if quick else tuple(PLAN))
    n_seeds = n_seeds or (1 if quick else 3)
    rows, runs = [], []
    for N in sizes:
        n_round, budget = PLAN.get(N, (5000, 600))
        if quick:
            budget = 120
        ours, theirs = [], []
        for seed in range(n_seeds):
            peer = sbi_run(N, seed, n_round, budget)
            mine = time_to_property.one_run(N, seed, budget, max_epochs=25)
            print(
                f"peers N={N} seed {seed}: sbi {peer['seconds']:.1f} s / {peer['sims']:.3g} sims "
                f"({peer['rounds']} rounds, closest {peer['closest']:.2f}) {peer['note']}; "
                f"EPI {mine['t_criterion']:.1f} s / {mine['sims_criterion']:.3g} sims",
                flush=True,
            )
            theirs.append(peer)
            ours.append(mine)
            runs.append(
                {
                    "N": N,
                    "seed": seed,
                    **{f"sbi_{k}": v for k, v in peer.items()},
                    **{f"epi_{k}": mine[k] for k in ("t_criterion", "sims_criterion")},
                }
            )
        t_ours, k_ours = time_to_property.median_reached([r["t_criterion"] for r in ours])
        t_sbi, k_sbi = time_to_property.median_reached([r["seconds"] for r in theirs])
        sims_ours, _ = time_to_property.median_reached([r["sims_criterion"] for r in ours])
        sims_sbi, _ = time_to_property.median_reached([r["sims"] for r in theirs])
        rows.append(
            {
                "section": "peers",
                "benchmark": f"rnn N={N} (D={4 * N}): EPI vs sbi TSNPE, to ||E f - mu|| < 0.5",
                "value": t_ours,
                "baseline": t_sbi,
                "unit": "s",
                "ratio": t_ours / t_sbi if np.isfinite(t_sbi) else 0.0,
                "goal": "",
                "met": None,
                "notes": (
                    f"median of {n_seeds} seeds (not reached = inf); reached: EPI {k_ours}/"
                    f"{n_seeds}, sbi {k_sbi}/{n_seeds} within {budget} s; sims: EPI "
                    f"{sims_ours:.3g}, sbi {sims_sbi:.3g} ({n_round} per round)"
                ),
            }
        )
    return rows, runs
