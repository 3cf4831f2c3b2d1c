"""EPIEstimator: emergent property inference with the scikit-learn API."""

from __future__ import annotations

import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval

from . import _checkpoint
from ._al_params import ALParams
from ._checkpoint import RunStore
from ._nested_params import NestedParamsMixin
from ._queries import FittedDensityMixin
from ._seeds import (
    run_seeds,
    seed_spec,
    seed_tables,
    sigterm_as_interrupt,
    usable_seeds,
    warn_not_converged,
)
from ._validation import _check_sendable, _check_targets, user_stacklevel
from .convergence import select_best
from .flows import MAF, RealNVP
from .persistence import SavedFitMixin
from .property import EmergentProperty

__all__ = ["EPIEstimator"]


class EPIEstimator(FittedDensityMixin, SavedFitMixin, NestedParamsMixin, BaseEstimator):
    r"""Maximum-entropy distribution of parameters that produce an emergent property.

    Emergent property inference (Bittner et al., eLife 2021) fits a
    normalizing flow :math:`q_\theta(z)` over circuit parameters :math:`z` to

    .. math:: \max_\theta H(q_\theta) \quad \text{s.t.} \quad
              \mathbb{E}_q[f(z)] = \mu, \;
              \mathbb{E}_q[(f(z) - \mu)^2] = \sigma^2

    (paper, Eq. 14) with the augmented Lagrangian method of Algorithm 1.

    Parameters
    ----------
    statistic : callable
        Differentiable TensorFlow function mapping a ``tf.Tensor`` of shape
        ``(n, D)`` to the emergent property statistics, shape ``(n, m_f)``
        (shape ``(n,)`` is accepted when ``m_f = 1``). A stochastic simulator
        that takes a ``seed`` keyword receives a stateless seed (shape (2,))
        per batch from the fit's random stream, which makes its fits
        reproducible (use ``tf.random.stateless_normal(shape, seed)``). For multi-process
        fits it must be picklable by cloudpickle: a module-level function or
        a closure over picklable values.
    bounds : dict or array-like of shape (D, 2)
        Support of each parameter, ``{name: (low, high)}`` or rows
        ``[low, high]``; ``-inf``/``inf`` open a side.
    flow : RealNVP or MAF, default=None
        Flow architecture; ``None`` means ``RealNVP()`` (3 stages x 2 layers
        x 50 units, the paper's 2D LDS architecture).
    al_params : ALParams or dict, default=None
        Optimisation hyperparameters; ``None`` means ``ALParams()``.
    init : dict, default=None
        Initial distribution the flow is fitted to before epoch 1. A
        Gaussian ``{"mean": ..., "std": ...}`` (scalars or length-D arrays;
        either key may be omitted; default: centre of each interval with a
        sixth of its width as standard deviation, one unit inside one-sided
        bounds with unit spread, N(0, 1) on unbounded dimensions). Or
        ``{"samples": Z}``, points of shape ``(n, D)`` strictly inside the
        bounds (an array in the bounds' order, or a DataFrame with the
        parameter names as columns) that the flow is then fitted to by
        maximum likelihood for another ``init_iters`` steps: a start for a
        property so rare that a Gaussian sees no gradient towards it (see
        the user guide, "When a constraint stays unmet").
    n_seeds : int, default=1
        Independent fits (random restarts); the converged seed of greatest
        entropy is kept.
    n_jobs : int, default=None
        Processes for the seeds, through ``joblib.Parallel``; the backend
        follows ``joblib.parallel_config`` (e.g. dask or ray on a cluster).
    alpha : float, default=0.05
        Significance level of the convergence test, Bonferroni-corrected over
        the ``m`` constraints.
    n_test : int, default=None
        Samples per batch estimate in the convergence test (200 estimates are
        drawn). ``None`` means the training batch size.
    dtype : {"float32", "float64"}, default="float32"
        Floating-point type of the flow and the optimisation.
    jit_compile : bool, default=True
        Compile the training loop with XLA; if the statistic does not
        compile, the fit falls back to plain graphs with a warning.
    memory : str, joblib.Memory or None, default=None
        Cache of the initialisation (as in scikit-learn's ``Pipeline``),
        keyed by what determines it, so refits and grid searches over ``c0``,
        ``beta`` or the iteration budget skip it.
    random_state : int, RandomState instance or None, default=None
        Seeds of the per-seed fits are drawn from it; global TF and NumPy
        states are never touched.
    verbose : int or bool, default=0
        0 silent; 1 a progress bar per seed (one line per epoch on stderr
        when the output goes to a file, a cluster job's log); 2 also one
        line per epoch on stdout.
    callbacks : list of callables or EpochCallback, default=None
        The epoch-end hook: each is called with every epoch's
        :class:`~sklearn_epi.optimize.EpochRecord` (entropy, violations,
        p-values, ``c``, ``eta``, wall time) and may stop the seed by returning
        ``True``. An :class:`~sklearn_epi.EpochCallback` also hears each logged
        training chunk and the seed's start and end. Callbacks run in the
        process that fits the seed (a worker when ``n_jobs > 1``).
    checkpoint : str, path-like or RunStore, default=None
        A directory where every seed's state is written (atomically) after
        every epoch, with ``run.json`` describing the run and, once ``fit``
        returns, the fitted estimator as ``fit.npz``. A later ``fit`` with
        the same directory and settings resumes each seed from its last
        finished epoch and ends as an uninterrupted fit would; other settings
        raise a ``ValueError`` (``n_jobs``, ``verbose``, ``callbacks``,
        ``memory``, ``max_time`` and ``al_params.max_epochs`` may change). A
        :class:`~sklearn_epi.RunStore` gives every distinct fit a directory
        of its own inside the store; :func:`~sklearn_epi.runs` lists them.
    max_time : float, default=None
        Wall-clock budget of the fit in seconds, for a batch job's time
        limit. A seed does not start an epoch that, as long as its last one,
        would end after the budget; the fit then stops as on Ctrl-C (the
        epochs done are kept, later seeds are skipped, a ``UserWarning`` says
        so) and, with ``checkpoint``, the next ``fit`` goes on from there.
        ``None``: no limit.
    warm_start : bool, default=False
        Keep each seed's final state (a few MB, saved with the fit), so
        that the next ``fit`` continues as one longer fit would: after a
        raised ``al_params.max_epochs``, or after an interrupt. Other changed
        settings raise a ``ValueError``; ``random_state`` must be fixed.
    coverage_draws : int, default=10000
        After a converged fit on a bounded box with variance targets, look
        for the part of the box where the property holds point-wise that
        the distribution leaves out (:func:`~sklearn_epi.analysis.coverage`
        with this many uniform draws): a
        :class:`~sklearn_epi.analysis.CoverageWarning` names where, and
        ``coverage_`` keeps the result. It
        evaluates the statistic and the density at ``2 * coverage_draws``
        points: 1-2% of the wall time of the STG, V1 and SC fits (4, 23 and
        25 s on 2 cores). ``0`` switches it off.

    Attributes
    ----------
    history_ : pandas.DataFrame
        One ``phase == "train"`` row per logged iteration per seed (``H``,
        ``cost``, ``c``, ``R_<constraint>``) and one ``phase == "test"`` row
        per epoch end (entropy estimate with ``H_se``, ``R_*`` from fresh
        samples, p-values ``p_*``, multipliers ``eta_*``, ``moment_error``,
        ``H_corrected``, ``converged``). ``moment_error`` is the largest
        violation on the whole test sample in its own standard errors;
        ``H_corrected`` the entropy less what the violations buy to first
        order (:func:`~sklearn_epi.convergence.entropy_slack`), near ``H``
        when the constraints hold. ``reached``: the paper's batch test
        passed; ``converged``: the constraints also hold on the whole test
        sample (the user guide's "Reading convergence and the history").
        Epoch 0 is the state after the Gaussian initialisation.
    seeds_ : pandas.DataFrame
        One row per seed: ``seed``, ``random_seed``, ``converged``,
        ``entropy``, ``entropy_se``, ``entropy_corrected``,
        ``moment_error`` (of the kept epoch, as in ``history_``),
        ``epoch``, ``n_iter``, ``n_simulations``
        (statistic evaluations: training and test samples), ``wall_time``,
        ``status`` (``converged``, ``ended`` without converging, ``failed``,
        ``interrupted``, ``out of time`` or ``not run``), ``failed``,
        ``message``, ``traceback``, ``jit_compile``. A failed seed (its
        statistic raised, the loss became non-finite, its worker process was
        killed) says why in ``message`` and, for exceptions, ``traceback``;
        its finished epochs are still candidates.
    converged_ : bool
        Whether the selected fit satisfies the emergent property: the
        paper's test passes and every constraint holds within the sampling
        noise of the whole test sample, with no measurable entropy bought by
        the remaining violations
        (:func:`~sklearn_epi.convergence.constraints_hold`).
    entropy_ : float
        Entropy (nats) of the selected distribution.
    entropy_se_ : float
        Monte Carlo standard error of ``entropy_``.
    best_seed_ : int
        Index of the selected seed.
    epoch_ : int
        Selected epoch of the selected seed.
    n_iter_ : int
        Training iterations run by the selected seed.
    property_ : EmergentProperty
        The property fitted: targets, statistic and constraint names, and
        its test (``alpha``, ``n_test`` samples per batch estimate, what
        :meth:`score` uses too).
    param_names_ : ndarray of str
        Parameter names (keys of ``bounds`` or ``z0, z1, ...``).
    bounds_ : ndarray of shape (D, 2)
        The support, ``[low, high]`` per parameter (``-inf``/``inf`` on open
        sides), in the order of ``param_names_``.
    lagrange_multipliers_ : ndarray of shape (m,)
        :math:`\eta` at the selected epoch.
    penalty_ : float
        :math:`c` at the selected epoch.
    pvalues_ : ndarray of shape (m,)
        Convergence-test p-values at the selected epoch.
    flow_weights_ : list of ndarray
        Weights of the selected flow; with ``flow`` and ``bounds`` they
        rebuild it (this is what is saved).
    fit_time_ : float
        Wall time of the last ``fit`` in seconds.
    coverage_ : Coverage or None
        What the coverage check after the fit found (``coverage_draws``);
        None when it did not run (not converged, an unbounded parameter, no
        variance targets, or ``coverage_draws=0``).
    checkpoint_dir_ : str or None
        The directory of this fit's checkpoints and ``fit.npz`` (inside
        the store for a :class:`~sklearn_epi.RunStore`); ``None`` without
        ``checkpoint``.

    See Also
    --------
    RealNVP, MAF : flow architectures.
    ALParams : optimisation hyperparameters.
    sklearn_epi.property.EmergentProperty : the property and its test.

    Examples
    --------
    >>> import numpy as np, tensorflow as tf
    >>> from sklearn_epi import EPIEstimator, ALParams
    >>> est = EPIEstimator(
    ...     statistic=lambda z: z, bounds=[[-np.inf, np.inf]],
    ...     al_params=ALParams(c0=1.0, beta=4.0, num_iters=200, max_epochs=4,
    ...                        init_iters=100, batch_size=500),
    ...     random_state=0)
    >>> est = est.fit(mu=[1.0], sigma2=[0.25])
    >>> est.sample(3, random_state=0).shape
    (3, 1)
    """

    _parameter_constraints: dict = {
        "statistic": [callable],
        "bounds": ["array-like", dict],
        "flow": [RealNVP, MAF, None],
        "al_params": [ALParams, dict, None],
        "init": [dict, None],
        "n_seeds": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": [Integral, None],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "n_test": [Interval(Integral, 2, None, closed="left"), None],
        "dtype": "no_validation",  # a name, NumPy or TensorFlow dtype: _check_dtype
        "jit_compile": ["boolean"],
        "memory": [str, HasMethods(["cache"]), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "callbacks": [list, tuple, None],
        "checkpoint": [str, os.PathLike, RunStore, None],
        "max_time": [Interval(Real, 0, None, closed="neither"), None],
        "warm_start": ["boolean"],
        "coverage_draws": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        statistic,
        bounds,
        flow=None,
        al_params=None,
        init=None,
        n_seeds: int = 1,
        n_jobs: int | None = None,
        alpha: float = 0.05,
        n_test: int | None = None,
        dtype: str = "float32",
        jit_compile: bool = True,
        memory=None,
        random_state=None,
        verbose: int = 0,
        callbacks=None,
        checkpoint=None,
        max_time=None,
        warm_start=False,
        coverage_draws: int = 10000,
    ):
        self.statistic = statistic
        self.bounds = bounds
        self.flow = flow
        self.al_params = al_params
        self.init = init
        self.n_seeds = n_seeds
        self.n_jobs = n_jobs
        self.alpha = alpha
        self.n_test = n_test
        self.dtype = dtype
        self.jit_compile = jit_compile
        self.memory = memory
        self.random_state = random_state
        self.verbose = verbose
        self.callbacks = callbacks
        self.checkpoint = checkpoint
        self.max_time = max_time
        self.warm_start = warm_start
        self.coverage_draws = coverage_draws

    def fit(self, mu, sigma2=None):
        """Run EPI for the emergent property ``E[f] = mu``, ``Var[f] = sigma2``.

        Parameters
        ----------
        mu : array-like of shape (m_f,), pandas Series or dict
            Target means of the statistics. Index / keys of a Series or dict
            name the statistics in ``history_``; their order is the order of
            the statistic's output columns.
        sigma2 : array-like of shape (m_f,), pandas Series or dict, default=None
            Target variances, all > 0. ``None`` constrains the means only. A
            labelled ``sigma2`` is matched to ``mu``'s labels by label, in any
            order; a missing or extra label is an error.

        Returns
        -------
        self : EPIEstimator
            The fitted estimator.
        """
        return self._fit(mu, sigma2)

    def _fit(self, mu, sigma2=None, seed_indices=None):
        """``fit``, or with ``seed_indices`` only those seeds (a job array's task).

        The other seeds are marked not run; with ``checkpoint`` a later
        ``fit`` loads the seeds done here. A partial fit is not saved as
        ``fit.npz``.
        """
        spec = seed_spec(self, mu, sigma2)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=self.n_seeds)
        workers = min(effective_n_jobs(self.n_jobs), self.n_seeds)
        if workers > 1:
            _check_sendable(self.statistic)
            spec.threads = max(1, (os.cpu_count() or 1) // workers)
        description = _checkpoint.attach(self, spec, seeds)
        start = time.perf_counter()
        if self.max_time is not None:
            spec.deadline = spec.clock() + float(self.max_time)
        with sigterm_as_interrupt():
            results, interrupted = run_seeds(spec, seeds, workers, seed_indices)
        self.property_, self.history_, self.seeds_ = spec.prop, *seed_tables(results)
        self.param_names_ = np.asarray(spec.support.names, dtype=object)
        self.bounds_ = np.column_stack([spec.support.low, spec.support.high])
        self._support, self._flow_spec = spec.support, spec.flow
        best = select_best(usable_seeds(results, interrupted))
        self._select(best.seed_index, best, best.n_iter)
        if not self.converged_:
            warn_not_converged(results, best, spec.prop)
        if self.warm_start:
            states = {r.seed_index: r.final_state for r in results if r.final_state}
            self._warm_start_ = {"description": description, "states": states}
        else:  # an earlier warm-start fit's states describe another fit
            self.__dict__.pop("_warm_start_", None)
        self._score_seed = int(rng.randint(0, 2**31 - 1))
        self.coverage_ = self._check_coverage(rng)
        self.fit_time_ = time.perf_counter() - start
        self.checkpoint_dir_ = spec.checkpoint
        if spec.checkpoint is not None and seed_indices is None:
            _checkpoint.save_fit(self, spec.checkpoint, spec.run_key)
        return self

    def _check_coverage(self, rng):
        """:func:`~sklearn_epi.analysis.coverage` of a converged fit, where it can be checked."""
        if not (
            self.converged_
            and self.coverage_draws
            and self.property_.sigma2 is not None
            and np.isfinite(self.bounds_).all()
        ):
            return None
        from .analysis import coverage

        seed = int(rng.randint(0, 2**31 - 1))
        try:
            return coverage(self, n_draws=self.coverage_draws, random_state=seed)
        except Exception as exc:  # a check after the fit never costs the fit itself
            warnings.warn(
                f"the coverage check after the fit failed ({type(exc).__name__}: {exc}); the "
                "fit is kept. coverage_draws=0 skips the check",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            return None

    def _select(self, seed_index, chosen, n_iter) -> None:
        """Make ``chosen`` (a seed's result, or any epoch record) the fitted distribution."""
        self.best_seed_, self.epoch_, self.n_iter_ = int(seed_index), int(chosen.epoch), int(n_iter)
        self.converged_ = bool(chosen.converged)
        self.entropy_, self.entropy_se_ = float(chosen.entropy), float(chosen.entropy_se)
        self.lagrange_multipliers_ = np.asarray(chosen.eta, dtype=float)
        self.penalty_ = float(chosen.c)
        self.pvalues_ = np.asarray(chosen.pvalues, dtype=float)
        self.flow_weights_ = [np.asarray(w) for w in chosen.weights]
        self._flow_cache = {}

    def score(self, mu, sigma2=None) -> float:
        """Entropy if the fitted distribution has the property, else ``-inf``.

        The property ``(mu, sigma2)`` is tested like convergence during fit
        (:meth:`~sklearn_epi.property.EmergentProperty.holds`, with the fit's
        ``alpha`` and ``n_test``): 200 batch estimates of every constraint
        violation from fresh samples pass the paper's test (two-sided
        p-values above the Bonferroni level ``alpha / m``), and each
        violation of the whole sample lies within its noise
        (:func:`~sklearn_epi.convergence.constraints_hold`; the entropy's
        slack, which needs the multipliers of a fit to this property, is
        left out).

        Parameters
        ----------
        mu : array-like of shape (m_f,), pandas Series or dict
            Labelled targets are matched to the statistic names by label.
        sigma2 : array-like of shape (m_f,), pandas Series or dict, default=None

        Returns
        -------
        float
        """
        fns = self._fitted_flow()
        fitted = self.property_
        mu, sigma2, _ = _check_targets(mu, sigma2, expected_names=list(fitted.statistic_names))
        if len(mu) != fitted.n_statistics:
            raise ValueError(
                f"mu must have length {fitted.n_statistics} (the statistic's output); got {len(mu)}"
            )
        prop = EmergentProperty(mu, sigma2, fitted.statistic_names, fitted.alpha, fitted.n_test)
        seed = self._score_seed
        z, _ = fns.sample(prop.n_batches * prop.n_test, np.array([seed, 1], np.int32))
        return self.entropy_ if prop.holds(self.statistic, z, [seed, 2]) else -np.inf

    def plot_history(self, **kwargs):
        """Optimisation trace; see :func:`sklearn_epi.plotting.plot_history`."""
        from .plotting import plot_history

        return plot_history(self, **kwargs)

    def pairplot(self, **kwargs):
        """Pairwise scatter of samples; see :func:`sklearn_epi.plotting.pairplot`."""
        from .plotting import pairplot

        return pairplot(self, **kwargs)

    def plot_predictive(self, **kwargs):
        """Predictive check; see :func:`sklearn_epi.plotting.plot_predictive`."""
        from .plotting import plot_predictive

        return plot_predictive(self, **kwargs)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        return tags
