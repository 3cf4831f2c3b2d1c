"""EPIEstimator: emergent property inference with the scikit-learn API."""

from __future__ import annotations

import os
import time
import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import tensorflow as tf
from joblib import Parallel, delayed, effective_n_jobs
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_memory

from . import optimize
from .convergence import constraint_pvalues, is_converged
from .flows import MAF, RealNVP
from .optimize import ALParams, SeedSpec, call_statistic, fit_seed
from .support import parse_bounds

__all__ = ["EPIEstimator"]

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
        Initial isotropic Gaussian the flow is fitted to before epoch 1, as
        ``{"mean": ..., "std": ...}`` (scalars or length-D arrays; either
        key may be omitted). Default: centre of each interval with a sixth of
        its width as standard deviation; one unit inside one-sided bounds
        with unit spread; N(0, 1) on unbounded dimensions.
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
        Cache of the Gaussian initialisation (as in scikit-learn's
        ``Pipeline``): a directory path or a ``joblib.Memory``. The cache key
        is the content of what determines the result (flow hyperparameters,
        bounds, initial Gaussian, ``init_iters``, ``batch_size``, ``lr``,
        seed, dtype), so refits and grid searches over ``c0``, ``beta`` or
        the iteration budget skip the initialisation.
    random_state : int, RandomState instance or None, default=None
        Seeds of the per-seed fits are drawn from it; global TF and NumPy
        states are never touched.
    verbose : int, default=0
        0 silent, 1 a tqdm progress bar per seed (epochs x iterations, with
        the entropy and the largest constraint violation), 2 also one line per
        epoch (entropy, ``||R||``, ``c``, p-values, converged).

    Notes
    -----
    Ctrl-C during ``fit`` keeps what is done: the interrupted seed keeps its
    best epoch so far and its history, later seeds are skipped, and a
    ``UserWarning`` says so. With ``n_jobs > 1`` only seeds that had already
    finished are kept. If nothing is usable yet, the interrupt propagates.

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
        ``entropy``, ``entropy_se``, ``epoch``, ``n_iter``, ``wall_time``,
        ``failed``, ``message``, ``jit_compile``.
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
    param_names_ : ndarray of str
        Parameter names (keys of ``bounds`` or ``z0, z1, ...``).
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
    ...     al_params=ALParams(num_iters=200, max_epochs=3, init_iters=100),
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

    # ------------------------------------------------------------------ fit
    def fit(self, mu, sigma2=None):
        """Run EPI for the emergent property ``E[f] = mu``, ``Var[f] = sigma2``.

        Parameters
        ----------
        mu : array-like of shape (m_f,), pandas Series or dict
            Target means of the statistics. Index / keys of a Series or dict
            name the statistics in ``history_``.
        sigma2 : array-like of shape (m_f,), default=None
            Target variances, all > 0. ``None`` constrains the means only.

        Returns
        -------
        self : EPIEstimator
            The fitted estimator.
        """
        flow, al = self._check_params()
        support = parse_bounds(self.bounds)
        mu, sigma2, stat_names = _check_targets(mu, sigma2)
        init_mean, init_std = self._check_init(support)
        _probe_statistic(self.statistic, init_mean, len(mu))
        names = [f"mean_{s}" for s in stat_names]
        if sigma2 is not None:
            names += [f"var_{s}" for s in stat_names]
        n_test = al.batch_size if self.n_test is None else self.n_test

        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, 2**31 - 1, size=self.n_seeds)
        workers = min(effective_n_jobs(self.n_jobs), self.n_seeds)
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
        spec = SeedSpec(
            flow=flow,
            support=support,
            statistic=self.statistic,
            mu=mu,
            sigma2=sigma2,
            constraint_names=names,
            al=al,
            init_mean=init_mean,
            init_std=init_std,
            alpha=float(self.alpha),
            n_test=int(n_test),
            n_test_batches=_N_TEST_BATCHES,
            dtype=self.dtype,
            jit_compile=bool(self.jit_compile),
            verbose=int(self.verbose),
            threads=threads,
            memory=None if self.memory is None else check_memory(self.memory),
        )
        start = time.perf_counter()
        results, interrupted = _run_seeds(spec, seeds, self.n_jobs)
        self._store(results, spec, support, stat_names, interrupted)
        self.fit_time_ = time.perf_counter() - start
        self._score_seed = int(rng.randint(0, 2**31 - 1))
        return self

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
        _check_int(self.n_seeds, "n_seeds", 1)
        if self.n_jobs is not None:
            _check_int(self.n_jobs, "n_jobs", None)
        if not isinstance(self.alpha, Real) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1); got {self.alpha!r}")
        if self.n_test is not None:
            _check_int(self.n_test, "n_test", 2)
        _check_dtype(self.dtype)
        _check_int(self.verbose, "verbose", 0)
        return flow, al

    def _check_init(self, support):
        mean, std = support.default_gaussian()
        if self.init is None:
            return mean, std
        if not isinstance(self.init, dict):
            raise TypeError(f"init must be None or a dict with 'mean'/'std'; got {self.init!r}")
        unknown = set(self.init) - {"mean", "std"}
        if unknown:
            raise ValueError(
                f"init accepts the keys 'mean' and 'std'; got unknown {sorted(unknown)}"
            )
        D = support.dim
        for key, target in (("mean", mean), ("std", std)):
            if key not in self.init:
                continue
            value = np.asarray(self.init[key], dtype=float)
            if value.ndim > 1 or value.size not in (1, D):
                raise ValueError(
                    f"init[{key!r}] must be a scalar or have length {D}; got {self.init[key]!r}"
                )
            target[:] = value
        if not np.all(np.isfinite(mean)) or not support.contains(mean[None])[0]:
            raise ValueError(f"init['mean'] must lie inside the bounds; got {mean}")
        if not np.all(std > 0) or not np.all(np.isfinite(std)):
            raise ValueError(f"init['std'] must be finite and > 0; got {std}")
        return mean, std

    def _store(self, results, spec, support, stat_names, interrupted):
        self.param_names_ = np.asarray(support.names, dtype=object)
        self.constraint_names_ = list(spec.constraint_names)
        self.statistic_names_ = list(stat_names)
        self.mu_, self.sigma2_ = spec.mu, spec.sigma2
        self.history_ = pd.concat([r.history for r in results], ignore_index=True)
        self.seeds_ = pd.DataFrame(
            {
                "seed": [r.seed_index for r in results],
                "random_seed": [r.seed for r in results],
                "converged": [r.converged for r in results],
                "entropy": [r.entropy for r in results],
                "entropy_se": [r.entropy_se for r in results],
                "epoch": pd.array([r.epoch for r in results], dtype="Int64"),
                "n_iter": [r.n_iter for r in results],
                "wall_time": [r.wall_time for r in results],
                "failed": [r.failed for r in results],
                "message": [r.message for r in results],
                "jit_compile": [r.jit_compile for r in results],
            }
        )
        usable = [r for r in results if r.weights is not None]
        if interrupted:
            if not usable:
                raise KeyboardInterrupt("fit interrupted before any epoch of any seed finished")
            warnings.warn(
                "fit interrupted: keeping the best epoch so far of the seeds that ran "
                f"({'; '.join(f'seed {r.seed_index}: {r.message}' for r in results if r.message)})",
                UserWarning,
                stacklevel=3,
            )
        if not usable:
            where = "; ".join(f"seed {r.seed_index}: {r.message}" for r in results)
            raise RuntimeError(
                f"every seed failed ({where}). Usual fixes: a smaller al_params.lr, "
                "tighter bounds, a smaller al_params.c0, or a statistic that stays "
                "finite on the whole support."
            )
        converged = [r for r in usable if r.converged]
        if converged:
            best = max(converged, key=lambda r: r.entropy)
        else:
            best = min(usable, key=lambda r: r.worst_t)
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
            failing = ", ".join(
                f"{n} (p = {p:.3g})"
                for n, p in zip(self.constraint_names_, self.pvalues_)
                if p <= self.alpha / len(self.pvalues_)
            )
            warnings.warn(
                f"no seed converged to the emergent property; constraints that fail "
                f"the test at alpha/m = {self.alpha / len(self.pvalues_):.3g}: {failing}. "
                "Try more iterations or epochs (al_params), more seeds, or a larger c0.",
                ConvergenceWarning,
                stacklevel=2,
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
            cache[dtype] = _FittedFunctions(flow)
        return cache[dtype]

    def sample(self, n_samples: int = 1, random_state=None) -> np.ndarray:
        """Draw parameter samples from the fitted distribution.

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
        z, _ = fns.sample(int(n_samples), tf.constant(seed, tf.int32))
        return z.numpy().astype(float)

    def score_samples(self, Z, dtype=None) -> np.ndarray:
        """Log density ``log q(z)`` of each row of ``Z``.

        Parameters
        ----------
        Z : array-like of shape (n, D)
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation; ``None`` uses the fit's ``dtype``.
            The fitted weights are exact in float64, so ``"float64"`` removes
            the rounding of the flow's own arithmetic.

        Returns
        -------
        ndarray of shape (n,)
            ``-inf`` for rows on or outside the bounds (never NaN).
        """
        fns = self._fitted_flow(dtype)
        Z, inside = self._check_Z(Z, fns.dtype)
        out = np.full(Z.shape[0], -np.inf)
        if inside.any():
            out[inside] = fns.log_prob(tf.constant(Z[inside], fns.dtype)).numpy()
        return np.where(np.isnan(out), -np.inf, out)

    def gradient(self, Z, dtype=None) -> np.ndarray:
        r"""Gradient :math:`\nabla_z \log q(z)` at each row of ``Z``.

        Parameters
        ----------
        Z : array-like of shape (n, D)
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`).

        Returns
        -------
        ndarray of shape (n, D)
            NaN rows for points on or outside the bounds.
        """
        return self._derivatives(Z, 1, dtype)

    def hessian(self, Z, dtype=None) -> np.ndarray:
        r"""Hessian :math:`\nabla_z^2 \log q(z)` at each row of ``Z``.

        Its eigenvectors at a mode are the paper's sensitivity dimensions
        (Methods, "Hessian sensitivity vectors").

        Parameters
        ----------
        Z : array-like of shape (n, D)
        dtype : {"float32", "float64"}, default=None
            Precision of the evaluation (see :meth:`score_samples`); second
            derivatives gain most from ``"float64"``.

        Returns
        -------
        ndarray of shape (n, D, D)
            NaN blocks for points on or outside the bounds.
        """
        return self._derivatives(Z, 2, dtype)

    def _derivatives(self, Z, order, dtype):
        fns = self._fitted_flow(dtype)
        Z, inside = self._check_Z(Z, fns.dtype)
        D = Z.shape[1]
        out = np.full((Z.shape[0],) + (D,) * order, np.nan)
        if inside.any():
            z = tf.constant(Z[inside], fns.dtype)
            values = fns.gradient(z) if order == 1 else fns.hessian(z)
            out[inside] = values.numpy()
        return out

    def _check_Z(self, Z, dtype):
        D = len(self.param_names_)
        try:
            Z = np.asarray(Z, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"Z must be an array of numbers; got {type(Z).__name__}") from exc
        if Z.ndim == 1 and D == 1:
            Z = Z[:, None]
        if Z.ndim != 2 or Z.shape[1] != D:
            raise ValueError(
                f"Z must have shape (n, {D}) (one column per parameter); got {Z.shape}"
            )
        # Inside-ness is judged after rounding to the evaluation dtype: a point
        # that rounds onto a bound has density zero there.
        rounded = Z.astype(dtype.as_numpy_dtype)
        return rounded, self._support.contains(rounded)

    def score(self, mu, sigma2=None) -> float:
        """Entropy if the fitted distribution has the property, else ``-inf``.

        The property ``(mu, sigma2)`` is tested like convergence during fit:
        200 batch estimates of every constraint violation from fresh samples,
        two-sided p-values, Bonferroni level ``alpha / m``.

        Parameters
        ----------
        mu : array-like of shape (m_f,)
        sigma2 : array-like of shape (m_f,), default=None

        Returns
        -------
        float
        """
        fns = self._fitted_flow()
        mu, sigma2, _ = _check_targets(mu, sigma2)
        if len(mu) != len(self.mu_):
            raise ValueError(
                f"mu must have length {len(self.mu_)} (the statistic's output); got {len(mu)}"
            )
        n_test = self.n_test or _resolve_al_params(self.al_params).batch_size
        z, _ = fns.sample(_N_TEST_BATCHES * n_test, tf.constant([self._score_seed, 1], tf.int32))
        f = np.asarray(call_statistic(self.statistic, z, [self._score_seed, 2]), dtype=float)
        f = f.reshape(z.shape[0], -1)
        T = f if sigma2 is None else np.hstack([f, (f - mu) ** 2])
        target = mu if sigma2 is None else np.concatenate([mu, sigma2])
        R = T.reshape(_N_TEST_BATCHES, n_test, -1).mean(axis=1) - target
        if not np.all(np.isfinite(R)):
            return -np.inf
        return self.entropy_ if is_converged(constraint_pvalues(R), self.alpha) else -np.inf

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

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_flow_cache", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"
        return tags


class _FittedFunctions:
    """Compiled queries of a fitted flow (kept out of pickles)."""

    def __init__(self, flow):
        self.flow = flow
        self.dtype = flow.dtype
        self.sample = tf.function(flow.sample_and_log_prob)
        self.log_prob = tf.function(flow.log_prob)

        def gradient(z):
            with tf.GradientTape() as tape:
                tape.watch(z)
                log_q = flow.log_prob(z)
            return tape.gradient(log_q, z)

        def hessian(z):
            with tf.GradientTape() as outer:
                outer.watch(z)
                with tf.GradientTape() as inner:
                    inner.watch(z)
                    log_q = flow.log_prob(z)
                grad = inner.gradient(log_q, z)
            # Row i of log q depends on row i of z only, so the batch Jacobian
            # of the gradient is the stack of per-point Hessians.
            return outer.batch_jacobian(grad, z)

        self.gradient = _XLAWithFallback(gradient)
        self.hessian = _XLAWithFallback(hessian)


class _XLAWithFallback:
    """A per-point query compiled with XLA, rows padded to powers of two.

    XLA compiles once per input shape; padding the batch to the next power of
    two bounds the compilations at log2(n) while keeping the 1.6-2.3x speed-up
    of compiled Hessians (benchmarks/queries.py). If XLA cannot compile the
    query, it falls back to a plain graph for good.
    """

    def __init__(self, fn):
        self.xla = tf.function(fn, jit_compile=True)
        self.plain = tf.function(fn)
        self.use_xla = True

    def __call__(self, z):
        n = int(z.shape[0])
        if self.use_xla:
            size = 1 << max(n - 1, 0).bit_length()
            padded = tf.concat([z, tf.repeat(z[:1], size - n, axis=0)], axis=0)
            try:
                return self.xla(padded)[:n]
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
                warnings.warn(
                    f"XLA could not compile {self.plain.python_function.__name__}; using a "
                    f"plain graph ({str(exc).strip().splitlines()[-1][:200]})",
                    RuntimeWarning,
                    stacklevel=3,
                )
                self.use_xla = False
        return self.plain(z)


def _run_seeds(spec, seeds, n_jobs):
    """Fit every seed through joblib; on Ctrl-C keep the seeds that finished.

    Returns the results in seed order and whether the fit was interrupted.
    """
    optimize.INTERRUPTED.clear()
    tasks = (delayed(fit_seed)(spec, int(seed), index) for index, seed in enumerate(seeds))
    results, interrupted = [], False
    try:
        # A sequential run catches Ctrl-C inside fit_seed (which keeps the
        # seed's epochs); here it only arrives while workers run.
        for result in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
            results.append(result)
    except KeyboardInterrupt:
        interrupted = True
    results.sort(key=lambda r: r.seed_index)
    return results, interrupted or any(r.interrupted for r in results)


def _resolve_al_params(al_params) -> ALParams:
    if al_params is None:
        return ALParams()
    if isinstance(al_params, ALParams):
        return al_params
    if isinstance(al_params, dict):
        valid = set(ALParams().get_params())
        unknown = sorted(set(al_params) - valid)
        if unknown:
            raise ValueError(
                f"al_params has unknown fields {unknown}; valid fields are {sorted(valid)}"
            )
        return ALParams(**al_params)
    raise TypeError(
        f"al_params must be an ALParams, a dict or None; got {type(al_params).__name__}"
    )


def _check_dtype(dtype):
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
    return dtype


def _check_int(value, name, minimum):
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def _check_targets(mu, sigma2):
    """Validate the property's means and variances; return arrays and names."""
    for name, value in (("mu", mu), ("sigma2", sigma2)):
        if sparse.issparse(value):
            raise TypeError(f"{name} must be a dense array; sparse input is not supported")
        if np.iscomplexobj(value):
            raise ValueError(f"Complex data not supported; {name} must be real")
    names = None
    if isinstance(mu, dict):
        names, mu = list(mu.keys()), list(mu.values())
    elif isinstance(mu, pd.Series):
        names, mu = [str(i) for i in mu.index], mu.to_numpy()
    try:
        mu = np.asarray(mu, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"mu must be an array of numbers; got {mu!r}") from exc
    if mu.ndim == 0:
        mu = mu[None]
    if mu.ndim != 1 or mu.size == 0:
        raise ValueError(f"mu must be a non-empty 1-D array; got shape {mu.shape}")
    bad = np.flatnonzero(~np.isfinite(mu))
    if bad.size:
        raise ValueError(f"mu must be finite; got mu[{bad[0]}] = {mu[bad[0]]}")
    if sigma2 is not None:
        if isinstance(sigma2, dict):
            if names is not None and list(sigma2.keys()) != names:
                raise ValueError(f"sigma2 keys {list(sigma2)} must match mu's {names}")
            sigma2 = list(sigma2.values())
        elif isinstance(sigma2, pd.Series):
            sigma2 = sigma2.to_numpy()
        try:
            sigma2 = np.atleast_1d(np.asarray(sigma2, dtype=float))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"sigma2 must be an array of numbers; got {sigma2!r}") from exc
        if sigma2.shape != mu.shape:
            raise ValueError(
                f"sigma2 must have the same length as mu ({mu.size}); got shape {sigma2.shape}"
            )
        bad = np.flatnonzero(~(np.isfinite(sigma2) & (sigma2 > 0)))
        if bad.size:
            raise ValueError(
                f"sigma2 must be finite and positive; got sigma2[{bad[0]}] = {sigma2[bad[0]]}"
            )
    if names is None:
        names = [f"f{i}" for i in range(mu.size)]
    return mu, sigma2, names


def _probe_statistic(statistic, center, m_f):
    """Call the statistic on a small batch at the initial mean and check its output."""
    probe = tf.constant(np.repeat(center[None, :], 2, axis=0), tf.float32)
    try:
        out = call_statistic(statistic, probe, [0, 0])
    except Exception as exc:
        raise ValueError(
            f"statistic raised {type(exc).__name__} on a probe batch of shape (2, "
            f"{center.size}) at the centre of the support: {exc}"
        ) from exc
    try:
        out = tf.convert_to_tensor(out)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"statistic must return a tensor of shape (n, {m_f}); got {type(out).__name__}"
        ) from exc
    if not out.dtype.is_floating:
        raise TypeError(f"statistic must return floating-point values; got dtype {out.dtype.name}")
    shape = tuple(out.shape)
    if shape != (2, m_f) and not (m_f == 1 and shape == (2,)):
        raise ValueError(
            f"statistic must return shape (n, {m_f}) (n = batch size, {m_f} = len(mu)) "
            f"for an input of shape (n, {center.size}); got {shape} for n = 2"
        )
    bad = ~np.isfinite(out.numpy())
    if bad.any():
        raise ValueError(
            f"statistic returned non-finite values at the centre of the support "
            f"z = {center.tolist()}: {out.numpy()[0].tolist()}"
        )
