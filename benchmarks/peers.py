"""The peers in the same run: sbi's truncated sequential NPE and pyABC's SMC-ABC beside EPI.

Neither sbi nor pyABC is a dependency of sklearn_epi; ``pip install -e
".[peers]"`` installs both (and PyTorch) for this section only. A peer that
is not importable gets skipped rows; without either, the section prints one
skipped row.

Every method runs on the same problem (:func:`benchmarks.problems.rnn`: the
rank-2 RNN's stable amplification, uniform box ``[-1, 1]^{4N}``) and stops at
the same criterion as the paper's comparison (Methods, "Methodological
comparison"): the end of the first epoch (EPI), round (sbi) or generation
(ABC) whose predictive mean of ``[real(lambda_1), lambda_1^s]`` is within 0.5
(L2) of ``mu``. Four peers, each a row per N beside EPI:

* **sbi** (``"sbi"``): truncated sequential NPE (TSNPE, Deistler et al.
  2022), the sequential variant its authors present as robust (the paper's
  SNPE-C atomic loss is prone to leakage), at sbi's defaults: each round
  simulates ``n_round`` parameters from the prior truncated to the
  ``1 - 1e-4`` highest-density region of the latest posterior (rejection
  from the prior box; the threshold from 10^6 posterior samples, sbi's
  ``get_density_thresholder``), trains NPE on all simulations with the
  first-round (maximum-likelihood) loss, and the predictive mean is
  estimated from 2,000 posterior samples (simulated, and counted). Sampling
  the posterior is rejection of the flow's samples outside the prior box
  (``DirectPosterior``), which has no time limit: where the flow's mass
  leaks out of the box, it stalls. The density estimator is the paper's: a
  masked autoregressive flow, 3 transforms of 50 hidden units. ``n_round``
  is the paper's: 1,000 up to N = 25 and more for larger networks (the
  paper needed 25,000 at N = 50; 5,000 here, to fit a round in the budget).
* **sbi + MCMC** (``"sbi-mcmc"``): the same TSNPE with sbi's documented
  remedy for leakage (its FAQ "posterior samples are outside the prior
  support", and the warning it prints while rejection stalls: "switching to
  ``build_posterior(..., sample_with='mcmc')``"): the posterior is sampled
  by MCMC (sbi's vectorised slice sampler on the flow's density times the
  prior, chains started by resampling prior draws, :data:`MCMC_PARAMETERS`),
  which never leaves the box. The truncation threshold is the ``1e-4``
  quantile of the posterior's log density over the same 2,000 samples (10^6
  MCMC samples a round would not fit any budget; of 2,000, the quantile is
  the lowest), and the truncated prior is drawn as in TSNPE (rejection from
  the prior box, where the threshold's region can be too small to hit).
* **sbi + direct sampling** (``"sbi-direct"``): sbi's other remedy, the
  flow's samples kept wherever they fall (``posterior.sample(...,
  reject_outside_prior=False)``, "faster but may include samples outside
  the prior support"). It cannot stall, but the criterion is then measured
  on parameters partly outside the problem's support: each round records
  the share of its samples inside the box, and a row met this way is not
  the same property. Threshold as for MCMC, on the flow's own density.
* **SMC-ABC** (``"abc"``, pyABC, the paper's second peer): uniform prior on
  the box (``pyabc.RV("uniform", -1, 2)`` per coordinate), 1,000 particles,
  ``MultivariateNormalTransition``, pyABC's default epsilon schedule (the
  median of the last generation's distances, the first from a calibration
  sample of the prior), minimum epsilon 0.5, distance the L2 norm between
  the simulated statistic and ``mu``, one core (``SingleCoreSampler``), a
  temporary SQLite database. The simulator calls ``problem.statistic`` on
  one particle at a time (how pyABC simulates), traced once with
  ``tf.function`` (0.3-0.5 ms a call against 2-2.5 ms eager), TensorFlow
  on one thread; pyABC's own work per particle costs more (the prior's
  density, one scipy distribution per coordinate, about 3 ms at D = 100;
  the transition's proposals and weights): about 3 ms a simulation at
  N = 2 and 7 ms at N = 25, on 2 loaded cores. The statistic is
  deterministic, so the accepted particles' statistics are exactly ``f``
  at the population's parameters: the predictive mean is their mean under
  the population's weights, with no further simulations. Simulations count
  every call of the simulator, the calibration sample included. The run
  stops at the criterion (or at epsilon 0.5, which implies it: every
  accepted statistic then lies in the ball); each generation's epsilon,
  simulations and acceptance rate are recorded (``info``, ``trace``).
* **EPI**: :func:`benchmarks.time_to_property.one_run` with the same
  seed, an ``EPIEstimator`` at the package's defaults for this problem.

Each peer run lives in its own process (``spawn``): it reports after every
round or generation, and is killed when its wall-time budget (:data:`PLAN`)
is spent, since a step can stall inside the library. The budget counts from
the moment the child has imported everything; before each step that can
stall, the child names it, so a killed run says where it was. A run that
never met the criterion counts as +inf in the median. Times include imports
of nothing, but every compile and the first simulation, for every method.
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import queue
import tempfile
import time

import numpy as np

from . import problems, time_to_property

#: Per N: simulations per sbi round and the wall-time budget of one peer run
#: (s), the same for every peer. N = 100 runs only when asked (``--sizes``).
PLAN = {2: (1000, 300), 10: (1000, 300), 25: (1000, 300), 50: (5000, 600), 100: (5000, 900)}
#: The sizes run by default.
SIZES = (2, 10, 25, 50)
#: The peers, in the table's order, and the package each needs.
PEERS = {"sbi": "sbi", "sbi-mcmc": "sbi", "sbi-direct": "sbi", "abc": "pyabc"}
LABELS = {
    "sbi": "sbi TSNPE",
    "sbi-mcmc": "sbi TSNPE + MCMC",
    "sbi-direct": "sbi TSNPE + direct sampling",
    "abc": "pyABC SMC-ABC",
}
#: sbi's MCMC for the remedy (``slice_np_vectorized``). sbi's defaults, 20
#: chains and 200 warm-up steps, cost 350 sweeps over every coordinate for
#: 2,000 samples (its slice sampler adds 50 sweeps tuning the brackets); 100
#: chains of 20 samples after 10 warm-up steps cost 80.
MCMC_PARAMETERS = {"num_chains": 100, "warmup_steps": 10, "thin": 1, "init_strategy": "resample"}
#: SMC-ABC: particles per generation and the minimum epsilon (the paper's).
ABC_PARTICLES, ABC_EPSILON = 1000, 0.5
#: Seconds a child may take to import before its budget starts.
IMPORT_GRACE = 120
#: The budget of every run with ``quick`` (N = 10: sbi's default meets the
#: criterion in its first round, about 10 s; the others show their first steps).
QUICK_BUDGET = 30


def available(peer: str | None = None) -> bool:
    """Whether ``peer``'s package (any peer's, if None) is importable."""
    names = [PEERS[peer]] if peer else set(PEERS.values())
    return any(importlib.util.find_spec(name) is not None for name in names)


def _tsnpe(N, seed, n_round, report, sampler="rejection"):
    """Run TSNPE until the criterion, reporting to the ``report`` queue.

    Parameters
    ----------
    N : int
        Neurons of the RNN problem.
    seed : int
        Seeds PyTorch.
    n_round : int
        Simulations per round.
    report : multiprocessing.Queue
        Gets ``("ready",)`` once everything is imported and built,
        ``("stage", text)`` before each step that can stall and
        ``("step", seconds, sims, distance, info)`` after every round.
    sampler : {"rejection", "mcmc", "direct"}, default="rejection"
        How the posterior is sampled: sbi's default (rejection of the
        flow's samples outside the box), its MCMC remedy, or the flow's
        samples kept wherever they fall (see the module docstring).
    """
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
        f = problem.statistic(tf.constant(theta.detach().numpy(), tf.float32)).numpy()
        return torch.as_tensor(f, dtype=torch.float32)

    prior = BoxUniform(low=-torch.ones(D), high=torch.ones(D))
    x0 = torch.as_tensor(problem.mu, dtype=torch.float32)
    inference = NPE(
        prior=prior,
        density_estimator=posterior_nn(model="maf", hidden_features=50, num_transforms=3),
        show_progress_bars=False,
    )
    how = {
        "rejection": "rejection outside the prior box",
        "mcmc": "MCMC",
        "direct": "the flow, without rejection",
    }[sampler]
    report.put(("ready",))
    start, proposal, rnd, accepted = time.perf_counter(), prior, 1, ""
    while True:
        if proposal is prior:
            theta = prior.sample((n_round,))
        else:
            report.put(("stage", f"round {rnd}: drawing the truncated prior (rejection)"))
            theta = proposal.sample(
                (n_round,), save_acceptance_rate=True, print_rejected_frac=False
            )
            accepted = f", truncated prior accepted {float(proposal.acceptance_rate):.2%}"
        x = simulate(theta)
        report.put(("stage", f"round {rnd}: training"))
        inference.append_simulations(theta, x).train(force_first_round_loss=True)
        report.put(("stage", f"round {rnd}: sampling the posterior ({how})"))
        info = f"round {rnd}{accepted}"
        if sampler == "mcmc":
            posterior = inference.build_posterior(
                sample_with="mcmc",
                mcmc_method="slice_np_vectorized",
                mcmc_parameters=MCMC_PARAMETERS,
            ).set_default_x(x0)
            samples = posterior.sample((2000,), show_progress_bars=False)
        else:
            posterior = inference.build_posterior().set_default_x(x0)
            samples = posterior.sample(
                (2000,), show_progress_bars=False, reject_outside_prior=sampler == "rejection"
            )
        if sampler == "direct":
            inside = float((samples.abs() <= 1).all(dim=1).float().mean())
            info += f", {inside:.1%} of the posterior samples in the box"
        predictive = simulate(samples)
        distance = float(np.linalg.norm(predictive.numpy().mean(axis=0) - problem.mu))
        report.put(("step", time.perf_counter() - start, sims, distance, info))
        if distance < problems.CRITERION:
            return
        report.put(("stage", f"round {rnd}: the truncation threshold"))
        if sampler == "rejection":
            threshold = get_density_thresholder(posterior, quantile=1e-4)
        else:
            # The 1e-4 quantile of the log density over this round's 2,000
            # samples (their lowest value): MCMC's density is the flow's times
            # the prior, the direct samples' the flow's alone.
            if sampler == "mcmc":
                log_prob = posterior.log_prob
            else:
                estimator = posterior.posterior_estimator

                def log_prob(theta, estimator=estimator):
                    with torch.no_grad():
                        return estimator.log_prob(theta[:, None], condition=x0[None])[:, 0]

            log_probs = log_prob(samples)
            floor = torch.sort(log_probs).values[int(1e-4 * len(log_probs))]

            def threshold(theta, log_prob=log_prob, floor=floor):
                return log_prob(theta) > floor

        proposal = RestrictedPrior(prior, threshold, sample_with="rejection")
        rnd += 1


def _smc_abc(N, seed, report, n_particles=ABC_PARTICLES, until_epsilon=False):
    """Run pyABC's SMC-ABC until the criterion, reporting every generation.

    Parameters
    ----------
    N : int
        Neurons of the RNN problem.
    seed : int
        Seeds NumPy's global generator (pyABC draws from it).
    report : multiprocessing.Queue
        Gets ``("ready",)`` once everything is imported and built,
        ``("stage", text)`` before every generation and
        ``("step", seconds, sims, distance, info)`` after it, ``info`` giving
        the generation, its epsilon, simulations and acceptance rate.
    n_particles : int, default=1000
        Population size.
    until_epsilon : bool, default=False
        Go on past the criterion until epsilon reaches
        :data:`ABC_EPSILON` (for a smoke test of the paper's stopping rule).
    """
    import logging
    import os

    import pyabc
    import tensorflow as tf
    from pyabc.sampler import SingleCoreSampler

    logging.getLogger("ABC").setLevel(logging.WARNING)
    np.random.seed(seed)
    problem = problems.rnn(N)
    D, names = problem.dim, list(problem.bounds)
    mu = np.asarray(problem.mu, dtype=float)
    sims = 0
    statistic = tf.function(
        problem.statistic, input_signature=[tf.TensorSpec((None, D), tf.float64)]
    )

    def model(parameters):
        nonlocal sims
        sims += 1
        z = np.fromiter((parameters[k] for k in names), dtype=float, count=D)[None]
        return {"f": statistic(tf.constant(z)).numpy()[0]}

    def distance(x, x0):
        return float(np.linalg.norm(x["f"] - x0["f"]))

    prior = pyabc.Distribution(**{k: pyabc.RV("uniform", -1, 2) for k in names})
    db = "sqlite:///" + os.path.join(os.getcwd(), "abc.db")
    report.put(("ready",))
    start = time.perf_counter()
    abc = pyabc.ABCSMC(
        model,
        prior,
        distance,
        population_size=n_particles,
        transitions=pyabc.MultivariateNormalTransition(),
        sampler=SingleCoreSampler(),
    )
    abc.new(db, {"f": mu})
    report.put(("stage", "calibrating the first epsilon (prior sample)"))
    t = abc.initialize_components_before_run(
        minimum_epsilon=ABC_EPSILON,
        max_nr_populations=np.inf,
        min_acceptance_rate=0.0,
        max_total_nr_simulations=np.inf,
        max_walltime=None,
        min_eps_diff=0.0,
    )
    met = False
    while True:
        epsilon, before = float(abc.eps(t)), sims
        report.put(("stage", f"generation {t} (epsilon {epsilon:.3g})"))
        result = abc.run_generation(t=t)
        if not result["successful"]:
            raise RuntimeError(f"pyABC generation {t} was not successful")
        weights, stats = abc.history.get_weighted_sum_stats(t=t)
        weights = np.asarray(weights, dtype=float)
        mean = weights @ np.array([s["f"] for s in stats]) / weights.sum()
        dist = float(np.linalg.norm(mean - mu))
        info = f"gen {t} eps {epsilon:.3g} sims {sims - before} acc {result['acceptance_rate']:.2%}"
        report.put(("step", time.perf_counter() - start, sims, dist, info))
        met = met or dist < problems.CRITERION
        if (met and not until_epsilon) or abc.check_terminate(t, result["acceptance_rate"]):
            return
        t += 1


def _child(method, N, seed, options, report, workdir):
    """One peer run in a spawned process, in ``workdir``; errors go to ``report``."""
    import os
    import warnings

    import sklearn_epi  # noqa: F401 - starts TensorFlow without its start-up notices

    warnings.simplefilter("ignore")
    # sbi writes its training logs to ./sbi-logs, pyABC its database to ./abc.db.
    os.chdir(workdir)
    try:
        if method == "abc":
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(1)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already started: its defaults stay
                pass
            _smc_abc(N, seed, report, **options)
        else:
            _tsnpe(N, seed, report=report, **options)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, not lost
        report.put(("failed", f"{type(exc).__name__}: {exc}"[:200]))
    report.put(("done",))


def peer_run(method, N, seed, budget_s, **options):
    """Run one peer in its own process, killed when its budget is spent.

    Parameters
    ----------
    method : {"sbi", "sbi-mcmc", "sbi-direct", "abc"}
        The peer (see the module docstring).
    N : int
        Neurons of the RNN problem.
    seed : int
        The run's seed.
    budget_s : float
        Wall seconds from the end of the child's imports.
    **options
        Passed to the runner: ``n_round`` (sbi, required), ``n_particles``
        or ``until_epsilon`` (ABC).

    Returns
    -------
    dict
        ``seconds`` and ``sims`` to the criterion (NaN if never), ``steps``
        (rounds or generations reported), ``closest`` predictive distance,
        ``info`` of the step that met the criterion (or of the last one),
        ``trace`` (every step as seconds/simulations/distance (info)) and ``note``
        (empty if met; else what happened, with the stage a killed run was
        in).
    """
    if method.startswith("sbi-"):
        options = {"sampler": method[4:], **options}
    with tempfile.TemporaryDirectory(prefix="peer-") as workdir:
        steps, note = _supervise(method, N, seed, budget_s, options, workdir)
    hits = [s for s in steps if s[2] < problems.CRITERION and s[0] <= budget_s]
    seconds, sims = (hits[0][0], hits[0][1]) if hits else (np.nan, np.nan)
    if not hits and not note:
        note = "criterion not met in the budget"
    return {
        "seconds": seconds,
        "sims": sims,
        "steps": len(steps),
        "closest": min((s[2] for s in steps), default=np.nan),
        "info": (hits[0] if hits else steps[-1])[3] if steps else "",
        "trace": "; ".join(f"{s[0]:.1f}s/{s[1]}/{s[2]:.2f} ({s[3]})" for s in steps),
        "note": note,
    }


def _supervise(method, N, seed, budget_s, options, workdir):
    """Start the child, collect its steps until done or the budget; (steps, note)."""
    ctx = mp.get_context("spawn")
    report = ctx.Queue()
    args = ("abc" if method == "abc" else "sbi", N, seed, options, report, workdir)
    proc = ctx.Process(target=_child, args=args, daemon=True)
    proc.start()
    deadline, steps, note, stage = time.monotonic() + IMPORT_GRACE, [], "", "importing"
    while time.monotonic() < deadline:
        try:
            message = report.get(timeout=1.0)
        except queue.Empty:
            if not proc.is_alive():
                note = note or "process ended without a report"
                break
            continue
        kind = message[0]
        if kind == "done":
            break
        if kind == "ready":
            deadline = time.monotonic() + budget_s + 1
        elif kind == "stage":
            stage = message[1]
        elif kind == "failed":
            note = f"failed: {message[1]}"
        elif kind == "step":
            steps.append(message[1:])
            if message[1] > budget_s:
                break
    else:
        note = note or f"killed at the budget during {stage}"
    if proc.is_alive():
        proc.kill()
    proc.join()
    return steps, note


def _skipped(what, why):
    return {
        "section": "peers",
        "benchmark": what,
        "value": np.nan,
        "baseline": np.nan,
        "unit": "s",
        "ratio": np.nan,
        "goal": "",
        "met": None,
        "notes": f"skipped: {why}",
    }


def run(quick=False, sizes=None, n_seeds=None, peers=None):
    """EPI and each peer to the criterion per N and seed.

    Parameters
    ----------
    quick : bool, default=False
        A smoke test: N = 10, one seed, :data:`QUICK_BUDGET` seconds per run.
    sizes : sequence of int, optional
        N values; default :data:`SIZES`. Budgets and sbi's round size come
        from :data:`PLAN` (5,000 and 900 s beyond it).
    n_seeds : int, optional
        Seeds per N; default 3 (1 if ``quick``).
    peers : sequence of str, optional
        Keys of :data:`PEERS`; default all of them.

    Returns
    -------
    rows : list of dict
        One table row per N and peer: EPI's median time (``value``) against
        the peer's (``baseline``).
    runs : list of dict
        One row per N, seed and method (EPI included).
    """
    peers = list(peers or PEERS)
    missing = [p for p in peers if not available(p)]
    if missing:
        print(f'peers: {", ".join(missing)} not importable; pip install -e ".[peers]"')
    active = [p for p in peers if p not in missing]
    if not active:
        return [_skipped("EPI vs peers: time to ||E f - mu|| < 0.5", "no peer importable")], []
    sizes = sizes or ((10,) if quick else SIZES)
    n_seeds = n_seeds or (1 if quick else 3)
    rows, runs = [], []
    for N in sizes:
        n_round, budget = PLAN.get(N, (5000, 900))
        if quick:
            budget = QUICK_BUDGET
        ours, theirs = [], {p: [] for p in active}
        for seed in range(n_seeds):
            for peer in active:
                options = {} if peer == "abc" else {"n_round": n_round}
                result = peer_run(peer, N, seed, budget, **options)
                theirs[peer].append(result)
                runs.append({"N": N, "seed": seed, "method": peer, **result})
                print(
                    f"peers N={N} seed {seed}: {LABELS[peer]} {result['seconds']:.1f} s / "
                    f"{result['sims']:.3g} sims ({result['steps']} steps, closest "
                    f"{result['closest']:.2f}, {result['info']}) {result['note']}",
                    flush=True,
                )
            mine = time_to_property.one_run(N, seed, budget, max_epochs=25)
            ours.append(mine)
            runs.append(
                {
                    "N": N,
                    "seed": seed,
                    "method": "epi",
                    "seconds": mine["t_criterion"],
                    "sims": mine["sims_criterion"],
                    "steps": mine["epoch_criterion"],
                    "closest": np.nan,
                    "info": "",
                    "trace": "",
                    "note": "" if np.isfinite(mine["t_criterion"]) else "criterion not met",
                }
            )
            print(
                f"peers N={N} seed {seed}: EPI {mine['t_criterion']:.1f} s / "
                f"{mine['sims_criterion']:.3g} sims",
                flush=True,
            )
        t_ours, k_ours = time_to_property.median_reached([r["t_criterion"] for r in ours])
        sims_ours, _ = time_to_property.median_reached([r["sims_criterion"] for r in ours])
        for peer in active:
            t_peer, k_peer = time_to_property.median_reached([r["seconds"] for r in theirs[peer]])
            sims_peer, _ = time_to_property.median_reached([r["sims"] for r in theirs[peer]])
            detail = f"{n_round} per round" if peer != "abc" else f"{ABC_PARTICLES} particles"
            happened = sorted({r["note"] for r in theirs[peer] if r["note"]})
            rows.append(
                {
                    "section": "peers",
                    "benchmark": (
                        f"rnn N={N} (D={4 * N}): EPI vs {LABELS[peer]}, to ||E f - mu|| < 0.5"
                    ),
                    "value": t_ours,
                    "baseline": t_peer,
                    "unit": "s",
                    "ratio": t_ours / t_peer if np.isfinite(t_peer) else 0.0,
                    "goal": "",
                    "met": None,
                    "notes": (
                        f"median of {n_seeds} seeds (not reached = inf); reached: EPI {k_ours}/"
                        f"{n_seeds}, {peer} {k_peer}/{n_seeds} within {budget} s; sims: EPI "
                        f"{sims_ours:.3g}, {peer} {sims_peer:.3g} ({detail})"
                        + (f"; {peer}: {'; '.join(happened)}" if happened else "")
                    ),
                }
            )
        for peer in missing:
            rows.append(_skipped(f"rnn N={N}: EPI vs {LABELS[peer]}", f"{PEERS[peer]} missing"))
    return rows, runs
