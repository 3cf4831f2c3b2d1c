"""EPIEstimator: emergent property inference with the scikit-learn API."""

from __future__ import annotations

import copy
import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from numbers import Real
from pathlib import Path

import numpy as np
import tensorflow as tf
from joblib import effective_n_jobs
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_memory

from . import _checkpoint, _queries, persistence
from ._property import EmergentProperty
from ._seeds import run_seeds, seed_tables, usable_seeds
from ._train import _fingerprint
from ._validation import (
    _check_dtype,
    _check_init,
    _check_int,
    _check_precision,
    _check_sendable,
    _check_targets,
    _check_verbose,
    _probe_statistic,
    _resolve_al_params,
    user_stacklevel,
)
from .convergence import select_best
from .flows import MAF, RealNVP
from .optimize import SeedSpec
from .persistence import pack_statistic, unpack_statistic
from .run_store import RunStore
from .support import parse_bounds

__all__ = ["EPIEstimator"]


@contextmanager
def _sigterm_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt, so a fit ends as on Ctrl-C.

    Only in the main thread and where nobody else handles SIGTERM (a
    handler already set, by dask or the user, is left alone).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _statistic_key(statistic) -> str:
    """The statistic's identity in a checkpoint's ``run.json``: its content, or its name."""
    fingerprint = _fingerprint(statistic)
    if isinstance(fingerprint, str):
        return fingerprint
    return f"{getattr(statistic, '__module__', '?')}.{getattr(statistic, '__qualname__', '?')}"


_N_TEST_BATCHES = 200


class EPIEstimator(BaseEstimator):
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
        ``{"samples": Z}``, points of shape ``(n, D)`` (an array in the
        bounds' order, or a DataFrame with the parameter names as columns)
        strictly inside the bounds: after the Gaussian of their mean and
        spread, the flow is fitted to them by maximum likelihood for another
        ``init_iters`` steps. Use it for a property so rare that a Gaussian
        start sees no gradient towards it: start from the parameters a
        brute-force search kept, or from the pooled samples of fits that
        each found one region. A mixture of distributions that have the
        property has it too (the constraints are linear in the
        distribution), so a fit started from such a pool starts near the
        property (the flow is smoother than the points: more
        ``init_iters`` fit them closer).
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
        Cache of the initialisation (as in scikit-learn's
        ``Pipeline``): a directory path or a ``joblib.Memory``. The cache key
        is the content of what determines the result (flow hyperparameters,
        bounds, ``init``, ``init_iters``, ``batch_size``, ``lr``,
        seed, dtype), so refits and grid searches over ``c0``, ``beta`` or
        the iteration budget skip the initialisation.
    random_state : int, RandomState instance or None, default=None
        Seeds of the per-seed fits are drawn from it; global TF and NumPy
        states are never touched.
    verbose : int or bool, default=0
        0 silent; 1 a tqdm progress bar per seed (iterations, with the
        entropy and the largest constraint violation) in a terminal or a
        notebook, and one line per epoch on stderr when the output goes to a
        file (a cluster job's log); 2 also one line per epoch on stdout
        (entropy, ``||R||``, ``c``, p-values, converged).
    callbacks : list of callables or EpochCallback, default=None
        The epoch-end hook: each is called with every epoch's
        :class:`~sklearn_epi.optimize.EpochRecord` (entropy, violations,
        p-values, ``c``, ``eta``, wall time) and may stop the seed by returning
        ``True``. An :class:`~sklearn_epi.EpochCallback` also hears each logged
        training chunk and the seed's start and end. Callbacks run in the
        process that fits the seed (a worker when ``n_jobs > 1``).
    checkpoint : str, path-like or RunStore, default=None
        A directory where every seed's state is written after every epoch
        (atomically: a kill at any moment leaves the last one readable), with
        ``run.json`` describing the run and, once ``fit`` returns, the fitted
        estimator as ``fit.joblib``. A later ``fit`` with the same
        directory and the same settings resumes each seed from its last
        finished epoch and ends as an uninterrupted fit would; seeds that had
        ended (converged, failed or at ``max_epochs``) are loaded, not fitted
        again. Other settings in an existing directory raise a ``ValueError``;
        ``n_jobs``, ``verbose``, ``callbacks``, ``memory``, ``max_time`` and
        ``al_params.max_epochs`` may change (a seed that ended for want of
        epochs goes on). A :class:`~sklearn_epi.RunStore` gives every
        distinct fit (every grid-search candidate, say) a directory of its
        own inside the store, named by its settings;
        :func:`~sklearn_epi.runs` lists them.
    max_time : float, default=None
        Wall-clock budget of the fit in seconds, for a batch job's time
        limit. A seed does not start an epoch that, as long as its last one,
        would end after the budget; the fit then stops as on Ctrl-C (the
        epochs done are kept, later seeds are skipped, a ``UserWarning`` says
        so) and, with ``checkpoint``, the next ``fit`` goes on from there.
        ``None``: no limit.
    warm_start : bool, default=False
        Keep each seed's final state (its weights, multipliers, random-stream
        position, epochs so far; a few MB, pickled with the fit), so that the
        next ``fit`` continues: seeds that ended at ``max_epochs`` go on for
        the epochs a raised ``al_params.max_epochs`` allows, interrupted
        seeds from their last epoch, and the result is the one a single fit
        of that many epochs gives. Other changed settings raise a
        ``ValueError``; ``random_state`` must be fixed. A checkpoint
        directory does the same across processes.

    Notes
    -----
    Ctrl-C during ``fit``, or a ``SIGTERM`` (what a batch scheduler sends at
    a job's time limit), keeps what is done: the interrupted seed keeps its
    best epoch so far and its history, later seeds are skipped, and a
    ``UserWarning`` says so; with ``checkpoint`` the next ``fit`` goes on.
    With ``n_jobs > 1`` only seeds that had already finished are kept. If
    nothing is usable yet, the interrupt propagates.

    A seed that fails (its statistic raises, the loss becomes non-finite, its
    worker process dies) never takes the others down: it is marked failed in
    ``seeds_``, its finished epochs are kept, and a ``RuntimeWarning`` names
    it. ``fit`` raises only if no seed has a usable epoch, naming each cause.

    Fits are saved with :meth:`save` (atomic) and read with
    :func:`sklearn_epi.load`; the statistic travels by value when it cannot
    be imported by name, so fits made in scripts and notebooks load anywhere.

    Attributes
    ----------
    history_ : pandas.DataFrame
        One ``phase == "train"`` row per logged iteration per seed (``H``,
        ``cost``, ``c``, ``R_<constraint>``) and one ``phase == "test"`` row
        per epoch end (entropy estimate with ``H_se``, ``R_*`` from fresh
        samples, p-values ``p_*``, multipliers ``eta_*``, ``converged``).
        Epoch 0 is the state after the Gaussian initialisation.
    seeds_ : pandas.DataFrame
        One row per seed: ``seed``, ``random_seed``, ``converged``,
        ``entropy``, ``entropy_se``, ``epoch``, ``n_iter``, ``n_simulations``
        (statistic evaluations: training and test samples), ``wall_time``,
        ``failed``, ``message``, ``traceback``, ``jit_compile``. A failed
        seed (its statistic raised, the loss became non-finite, its worker
        process was killed) says why in ``message`` and, for exceptions,
        ``traceback``; its finished epochs are still candidates.
    converged_ : bool
        Whether the selected fit satisfies the emergent property by the test.
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
    n_test_ : int
        Samples per batch estimate of the convergence test in this fit (what
        :meth:`score` uses too).
    param_names_ : ndarray of str
        Parameter names (keys of ``bounds`` or ``z0, z1, ...``).
    bounds_ : ndarray of shape (D, 2)
        The support, ``[low, high]`` per parameter (``-inf``/``inf`` on open
        sides), in the order of ``param_names_``.
    constraint_names_ : list of str
        ``mean_<stat>`` and ``var_<stat>`` names of the constraints.
    lagrange_multipliers_ : ndarray of shape (m,)
        :math:`\eta` at the selected epoch.
    penalty_ : float
        :math:`c` at the selected epoch.
    pvalues_ : ndarray of shape (m,)
        Convergence-test p-values at the selected epoch.
    flow_weights_ : list of ndarray
        Weights of the selected flow; with ``flow`` and ``bounds`` they
        rebuild it (this is what is pickled).
    fit_time_ : float
        Wall time of the last ``fit`` in seconds.
    checkpoint_dir_ : str or None
        The directory of this fit's checkpoints and ``fit.joblib`` (inside
        the store for a :class:`~sklearn_epi.RunStore`); ``None`` without
        ``checkpoint``.

    See Also
    --------
    RealNVP, MAF : flow architectures.
    ALParams : optimisation hyperparameters.

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

    # ------------------------------------------------------------------ fit
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

        The other seeds are marked skipped; with ``checkpoint`` a later
        ``fit`` loads the seeds done here. A partial fit is not saved as
        ``fit.joblib``.
        """
        flow, al = self._check_params()
        dtype, verbose = _check_dtype(self.dtype), _check_verbose(self.verbose)
        support = parse_bounds(self.bounds)
        mu, sigma2, stat_names = _check_targets(mu, sigma2)
        init_mean, init_std, init_samples = _check_init(self.init, support)
        _check_precision(dtype, mu, sigma2, support, init_mean, init_std)
        _probe_statistic(self.statistic, init_mean, len(mu))
        prop = EmergentProperty(mu, sigma2, tuple(stat_names))
        n_test = al.batch_size if self.n_test is None else self.n_test

        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=self.n_seeds)
        workers = min(effective_n_jobs(self.n_jobs), self.n_seeds)
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
        if workers > 1:
            _check_sendable(self.statistic)
        spec = SeedSpec(
            flow=flow,
            support=support,
            statistic=self.statistic,
            prop=prop,
            al=al,
            init_mean=init_mean,
            init_std=init_std,
            init_samples=init_samples,
            alpha=float(self.alpha),
            n_test=int(n_test),
            n_test_batches=_N_TEST_BATCHES,
            dtype=dtype,
            jit_compile=bool(self.jit_compile),
            verbose=verbose,
            threads=threads,
            memory=None if self.memory is None else check_memory(self.memory),
            callbacks=tuple(self.callbacks or ()),
        )
        if self.checkpoint is not None or self.warm_start:
            description = _checkpoint.describe(self, prop, seeds, _statistic_key(self.statistic))
        if self.checkpoint is not None:
            directory = self.checkpoint
            if isinstance(directory, RunStore):
                directory = directory.run_directory(description)
            spec.checkpoint = str(_checkpoint.open_run(directory, description))
        if self.warm_start:
            spec.keep_state = True
            spec.warm_states = self._warm_states(description)
        start = time.perf_counter()
        if self.max_time is not None:
            spec.deadline = time.time() + float(self.max_time)
        with _sigterm_as_interrupt():
            results, interrupted = run_seeds(spec, seeds, self.n_jobs, seed_indices)
        self._store(results, spec, support, interrupted)
        if self.warm_start:
            self._warm_start_ = {
                "description": description,
                "states": {r.seed_index: r.final_state for r in results if r.final_state},
            }
        else:  # an earlier warm-start fit's states describe another fit
            self.__dict__.pop("_warm_start_", None)
        self.fit_time_ = time.perf_counter() - start
        self._score_seed = int(rng.randint(0, 2**31 - 1))
        self.checkpoint_dir_ = spec.checkpoint
        if spec.checkpoint is not None and seed_indices is None:
            self._save_beside_checkpoint(Path(spec.checkpoint) / "fit.joblib")
        return self

    def _save_beside_checkpoint(self, path):
        """The fitted estimator beside its checkpoints, for :func:`~sklearn_epi.load_run`.

        Callbacks do not change the result and are often local functions
        that cannot be pickled: the copy is saved without them.
        """
        saved = copy.copy(self)
        saved.callbacks = None
        try:
            persistence.save(saved, path)
        except Exception as exc:  # the fit itself is done and returned
            warnings.warn(
                f"could not save the fitted estimator to {path} ({type(exc).__name__}: {exc}); "
                "load_run will not find this fit",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )

    def _warm_states(self, description):
        """The seeds' states of the last fit to continue from, if its settings match."""
        held = getattr(self, "_warm_start_", None)
        if held is None:
            return None  # a first fit: a cold start, as in scikit-learn
        differ = _checkpoint.differences(held["description"], description)
        if differ:
            raise ValueError(
                f"warm_start: the fitted estimator had other settings (differing: "
                f"{', '.join(differ)}); only al_params.max_epochs may change, or set "
                "warm_start=False"
            )
        return held["states"]

    def get_params(self, deep=True):
        """Parameters of the estimator; with ``deep``, the nested ``flow__*`` and ``al_params__*``.

        A default (``None``) ``flow`` or ``al_params``, or an ``al_params``
        dict, lists the fields of the object it stands for, so every name a
        grid search can set is discoverable here.

        Parameters
        ----------
        deep : bool, default=True

        Returns
        -------
        dict
        """
        params = super().get_params(deep=deep)
        if deep:
            stand_ins = {
                "flow": RealNVP() if self.flow is None else None,
                "al_params": (
                    _resolve_al_params(self.al_params)
                    if self.al_params is None or isinstance(self.al_params, dict)
                    else None
                ),
            }
            for name, obj in stand_ins.items():
                if obj is not None:
                    params.update({f"{name}__{k}": v for k, v in obj.get_params().items()})
        return params

    def set_params(self, **params):
        """Set parameters, including nested ``flow__*`` and ``al_params__*`` ones.

        A nested name on a default (``None``) ``flow`` or ``al_params``, or on
        an ``al_params`` dict, first replaces it by the equivalent object, so
        ``set_params(flow__num_units=25)`` works on ``EPIEstimator(f, bounds)``.

        Returns
        -------
        self : EPIEstimator
        """
        nested = {key.split("__", 1)[0] for key in params if "__" in key}
        if "flow" in nested and self.flow is None and "flow" not in params:
            self.flow = RealNVP()
        if "al_params" in nested and "al_params" not in params:
            if self.al_params is None or isinstance(self.al_params, dict):
                self.al_params = _resolve_al_params(self.al_params)
        return super().set_params(**params)

    def _check_params(self):
        if not callable(self.statistic):
            raise TypeError(
                f"statistic must be callable (n, D) -> (n, m_f); got "
                f"{type(self.statistic).__name__}"
            )
        flow = RealNVP() if self.flow is None else self.flow
        if not isinstance(flow, (RealNVP, MAF)):
            raise TypeError(f"flow must be a RealNVP or MAF instance; got {type(flow).__name__}")
        flow._validate()
        al = _resolve_al_params(self.al_params)
        al._validate()
        if al.batch_size < 2 * flow.base_modes:
            raise ValueError(
                f"al_params.batch_size must be at least 2 * flow.base_modes = "
                f"{2 * flow.base_modes} (each half-batch draws from every base mode); "
                f"got {al.batch_size}"
            )
        _check_int(self.n_seeds, "n_seeds", 1)
        if self.n_jobs is not None:
            _check_int(self.n_jobs, "n_jobs", None)
        if not isinstance(self.alpha, Real) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {self.alpha!r}")
        if self.n_test is not None:
            _check_int(self.n_test, "n_test", 2)
        if self.max_time is not None:
            if not isinstance(self.max_time, Real) or isinstance(self.max_time, bool):
                raise TypeError(
                    f"max_time must be a number of seconds; got {type(self.max_time).__name__}"
                )
            if not self.max_time > 0:
                raise ValueError(f"max_time must be > 0 seconds; got {self.max_time!r}")
        if self.checkpoint is not None and not isinstance(
            self.checkpoint, (str, os.PathLike, RunStore)
        ):
            raise TypeError(
                "checkpoint must be a directory path (str or os.PathLike) or a RunStore; got "
                f"{type(self.checkpoint).__name__}"
            )
        return flow, al

    def _store(self, results, spec, support, interrupted):
        self.param_names_ = np.asarray(support.names, dtype=object)
        self.bounds_ = np.column_stack([support.low, support.high])
        self.constraint_names_ = spec.prop.constraint_names
        self.statistic_names_ = list(spec.prop.statistic_names)
        self.mu_, self.sigma2_ = spec.prop.mu, spec.prop.sigma2
        self.n_test_ = spec.n_test
        self.history_, self.seeds_ = seed_tables(results)
        usable = usable_seeds(results, interrupted)
        best = select_best(usable)
        self.best_seed_ = best.seed_index
        self.converged_ = bool(best.converged)
        self.entropy_, self.entropy_se_ = float(best.entropy), float(best.entropy_se)
        self.epoch_ = int(best.epoch)
        self.n_iter_ = int(best.n_iter)
        self.lagrange_multipliers_ = np.asarray(best.eta, dtype=float)
        self.penalty_ = float(best.c)
        self.pvalues_ = np.asarray(best.pvalues, dtype=float)
        self.flow_weights_ = [np.asarray(w) for w in best.weights]
        self._support, self._flow_spec = support, spec.flow
        self._flow_cache = {}
        if not self.converged_:
            warnings.warn(
                _not_converged_message(results, best, spec.prop, self.alpha),
                ConvergenceWarning,
                stacklevel=user_stacklevel(),
            )

    # ------------------------------------------------------- fitted queries
    def _fitted_flow(self, dtype=None):
        """Compiled queries of the fitted flow in ``dtype`` (default: the fit's)."""
        check_is_fitted(self, "flow_weights_")
        dtype = tf.as_dtype(self.dtype if dtype is None else _check_dtype(dtype))
        cache = self.__dict__.setdefault("_flow_cache", {})
        if dtype not in cache:
            flow = self._flow_spec.build(self._support, seed=0, dtype=dtype)
            flow.set_weights(self.flow_weights_)
            cache[dtype] = _queries.FittedFunctions(flow)
        return cache[dtype]

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw parameter samples from the fitted distribution.

        Samples are drawn in chunks, so the memory used beyond the result
        stays within scikit-learn's ``working_memory``
        (:func:`sklearn.set_config`, 1 GiB by default) whatever ``n_samples``.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Same value, same samples.

        Returns
        -------
        ndarray of shape (n_samples, D)
        """
        fns = self._fitted_flow()
        _check_int(n_samples, "n_samples", 1)
        seed = check_random_state(random_state).randint(0, 2**31 - 1, size=2)
        out = np.empty((int(n_samples), len(self.param_names_)))
        for k, rows in enumerate(_queries.row_chunks(self, int(n_samples), fns, order=0)):
            # Chunk k continues the stream with a stateless seed of its own.
            chunk_seed = seed if k == 0 else [seed[0], (seed[1] + 7919 * k) % (2**31 - 1)]
            z, _ = fns.sample(rows.stop - rows.start, tf.constant(chunk_seed, tf.int32))
            out[rows] = z.numpy()
        return out

    def score_samples(self, Z, dtype=None) -> np.ndarray:
        """Log density ``log q(z)`` of each row of ``Z``.

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation; ``None`` uses the fit's ``dtype``.
            The fitted weights are exact in float64, so ``"float64"`` removes
            the rounding of the flow's own arithmetic.

        Returns
        -------
        ndarray of shape (n,)
            ``-inf`` for rows on or outside the bounds (never NaN).
        """
        out = _queries.evaluate(self, self._fitted_flow(dtype), Z, 0)
        return np.where(np.isnan(out), -np.inf, out)

    def gradient(self, Z, dtype=None) -> np.ndarray:
        r"""Gradient :math:`\nabla_z \log q(z)` at each row of ``Z``.

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`).

        Returns
        -------
        ndarray of shape (n, D)
            NaN rows for points on or outside the bounds.
        """
        return _queries.evaluate(self, self._fitted_flow(dtype), Z, 1)

    def hessian(self, Z, dtype=None) -> np.ndarray:
        r"""Hessian :math:`\nabla_z^2 \log q(z)` at each row of ``Z``.

        Its eigenvectors at a mode are the paper's sensitivity dimensions
        (Methods, "Hessian sensitivity vectors").

        Parameters
        ----------
        Z : array-like or pandas DataFrame of shape (n, D)
            A DataFrame's columns are matched to ``param_names_`` by name.
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`); second
            derivatives gain most from ``"float64"``.

        Returns
        -------
        ndarray of shape (n, D, D)
            NaN blocks for points on or outside the bounds.
        """
        return _queries.evaluate(self, self._fitted_flow(dtype), Z, 2)

    def score(self, mu, sigma2=None) -> float:
        """Entropy if the fitted distribution has the property, else ``-inf``.

        The property ``(mu, sigma2)`` is tested like convergence during fit:
        200 batch estimates of every constraint violation from fresh samples,
        two-sided p-values, Bonferroni level ``alpha / m``.

        Parameters
        ----------
        mu : array-like of shape (m_f,), pandas Series or dict
            Labelled targets are matched to ``statistic_names_`` by label.
        sigma2 : array-like of shape (m_f,), pandas Series or dict, default=None

        Returns
        -------
        float
        """
        fns = self._fitted_flow()
        mu, sigma2, _ = _check_targets(mu, sigma2, expected_names=self.statistic_names_)
        if len(mu) != len(self.mu_):
            raise ValueError(
                f"mu must have length {len(self.mu_)} (the statistic's output); got {len(mu)}"
            )
        # The fit's own test size, whatever al_params says after a set_params.
        prop = EmergentProperty(mu, sigma2, tuple(self.statistic_names_))
        z, _ = fns.sample(
            _N_TEST_BATCHES * self.n_test_, tf.constant([self._score_seed, 1], tf.int32)
        )
        T = prop.sufficient_statistics(prop.evaluate(self.statistic, z, [self._score_seed, 2]))
        R = prop.batch_violations(T, _N_TEST_BATCHES)
        if not np.all(np.isfinite(R)):
            return -np.inf
        return self.entropy_ if prop.test(R, self.alpha)[1] else -np.inf

    def plot_history(self, **kwargs):
        """Optimisation trace; see :func:`sklearn_epi.plotting.plot_history`.

        Returns
        -------
        fig, axes
        """
        from .plotting import plot_history

        return plot_history(self, **kwargs)

    def pairplot(self, **kwargs):
        """Pairwise scatter of samples; see :func:`sklearn_epi.plotting.pairplot`.

        Returns
        -------
        fig, axes
        """
        from .plotting import pairplot

        return pairplot(self, **kwargs)

    def plot_predictive(self, **kwargs):
        """Predictive check; see :func:`sklearn_epi.plotting.plot_predictive`.

        Returns
        -------
        fig, axes
        """
        from .plotting import plot_predictive

        return plot_predictive(self, **kwargs)

    def save(self, path):
        """Write the estimator to ``path`` atomically; read it back with :func:`sklearn_epi.load`.

        A failure leaves an existing file at ``path`` untouched. The statistic
        is stored by value when it cannot be imported by name (defined in a
        script's ``__main__``, a lambda, a closure), so the file loads in any
        script; if it cannot be stored at all, a warning says why and the
        rest of the fit is saved.

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        pathlib.Path
        """
        return persistence.save(self, path)

    def __getstate__(self):
        # object.__getstate__ may hand back the live __dict__: edit a copy.
        state = dict(super().__getstate__())
        state.pop("_flow_cache", None)
        # The statistic travels in a blob of its own, so a statistic that
        # cannot be restored never keeps the weights and history from loading.
        if "statistic" in state:
            state["statistic"] = persistence.PackedStatistic(*pack_statistic(state["statistic"]))
        return state

    def __setstate__(self, state):
        state.setdefault("checkpoint", None)  # saved before checkpoints existed
        state.setdefault("max_time", None)
        state.setdefault("warm_start", False)
        if isinstance(state.get("statistic"), persistence.PackedStatistic):
            state["statistic"] = unpack_statistic(state["statistic"])
        if "_support" in state and "bounds_" not in state:  # saved by version 0.1.0
            state["bounds_"] = np.column_stack([state["_support"].low, state["_support"].high])
            al = _resolve_al_params(state.get("al_params"))
            state["n_test_"] = state.get("n_test") or al.batch_size
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        return tags


def _not_converged_message(results, best, prop, alpha):
    """Which constraints fail, and for each whether its target is out of reach or out of budget.

    A mean target outside the range the statistic took on every test sample
    of every seed and epoch is reported as unreachable: no distribution over
    these bounds can have it, so more iterations will not help.
    """
    ranges = [r.statistic_range for r in results if r.statistic_range is not None]
    low = np.min([r[0] for r in ranges], axis=0) if ranges else None
    high = np.max([r[1] for r in ranges], axis=0) if ranges else None
    level = alpha / len(best.pvalues)
    parts = []
    for i, (name, p) in enumerate(zip(prop.constraint_names, best.pvalues)):
        if p > level:
            continue
        k = i % prop.n_statistics
        if i < prop.n_statistics and low is not None and not low[k] <= prop.mu[k] <= high[k]:
            why = (
                f"unreachable: the statistic took values in [{low[k]:.4g}, {high[k]:.4g}] only, "
                f"target {prop.mu[k]:.4g}; check the bounds and the statistic"
            )
        else:
            why = "not reached within the budget"
        parts.append(f"{name} (p = {p:.3g}): {why}")
    return (
        f"no seed converged to the emergent property; constraints that fail the test at "
        f"alpha/m = {level:.3g}: {'; '.join(parts)}. For a budget shortfall: more iterations "
        "or epochs (al_params), more seeds, or a larger c0."
    )
