"""Normalizing-flow architectures as small scikit-learn parameter objects.

A flow object (:class:`RealNVP`, :class:`MAF`) only stores hyperparameters,
so it can be cloned, pickled and searched over with ``GridSearchCV`` through
the estimator's ``flow__*`` parameters. :meth:`build` turns it into a
:class:`FlowDistribution`: a ``tf.Module`` with the chain of stages

    base -> stage 1 -> permute -> stage 2 -> ... -> post-affine -> support

Each stage is written once, in ``_bijectors.py``, with a fused forward pass
(the sample and its log-determinant together) and an inverse pass; sampling
and density evaluation both run through the same objects.

The base is a mixture of ``base_modes`` unit Gaussians, well apart, with
trainable weights and means (``base_modes=1``: the standard normal). A
bijection cannot tear one Gaussian into two separate lobes without leaving
a bridge of mass between them; separate base modes need no bridge, and
their weights move mass between lobes directly.

Conditioners are plain ``tf.Module`` MLPs with ``tanh`` hidden units. A smooth
activation matters here: Hessians of log q are a product of the package, and
ReLU conditioners would make them piecewise zero.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorflow as tf
from sklearn.base import BaseEstimator

from . import _bijectors as bij
from ._conditioners import MADE, MLP
from .support import Support

__all__ = ["RealNVP", "MAF", "FlowDistribution"]


class _FlowSpec(BaseEstimator):
    """Shared validation and building of the coupling / autoregressive flows."""

    _integer_fields = ("num_stages", "num_layers", "num_units", "num_bins", "base_modes")

    def __init__(
        self,
        num_stages: int = 3,
        num_layers: int = 2,
        num_units: int = 50,
        elementwise: str = "affine",
        num_bins: int = 8,
        spline_range: float = 4.0,
        post_affine: bool = True,
        permutation: str = "reverse",
        base_modes: int = 2,
    ):
        self.num_stages = num_stages
        self.num_layers = num_layers
        self.num_units = num_units
        self.elementwise = elementwise
        self.num_bins = num_bins
        self.spline_range = spline_range
        self.post_affine = post_affine
        self.permutation = permutation
        self.base_modes = base_modes

    def __setstate__(self, state):
        # Saved before ``permutation`` existed: those flows reversed the
        # coordinates between stages. Saved before ``base_modes``: a
        # standard normal base (their weights hold no mixture variables).
        state.setdefault("permutation", "reverse")
        state.setdefault("base_modes", 1)
        super().__setstate__(state)

    def _validate(self) -> None:
        for field in self._integer_fields:
            value = getattr(self, field)
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise TypeError(f"flow.{field} must be an integer >= 1; got {value!r}")
            if value < 1:
                raise ValueError(f"flow.{field} must be an integer >= 1; got {value!r}")
        if self.elementwise not in ("affine", "spline"):
            raise ValueError(
                f"flow.elementwise must be 'affine' or 'spline'; got {self.elementwise!r}"
            )
        if self.elementwise == "spline" and self.num_bins < 2:
            raise ValueError(f"flow.num_bins must be >= 2 for splines; got {self.num_bins}")
        if not isinstance(self.post_affine, (bool, np.bool_)):
            raise TypeError(f"flow.post_affine must be a bool; got {self.post_affine!r}")
        if self.permutation not in ("reverse", "random"):
            raise ValueError(
                f"flow.permutation must be 'reverse' or 'random'; got {self.permutation!r}"
            )
        if not isinstance(self.spline_range, Real) or isinstance(self.spline_range, bool):
            raise TypeError(f"flow.spline_range must be a number > 0; got {self.spline_range!r}")
        if not self.spline_range > 0:
            raise ValueError(f"flow.spline_range must be > 0; got {self.spline_range!r}")

    def build(self, support: Support, seed: int, dtype=tf.float32) -> FlowDistribution:
        """Create the flow's variables and bijector chain.

        Parameters
        ----------
        support : Support
            Bounds of the parameter space; sets ``D`` and the final bijector.
        seed : int
            Seed of the initial weights (NumPy, so no TF global state is used).
        dtype : tf.DType, default=tf.float32

        Returns
        -------
        FlowDistribution
        """
        self._validate()
        return FlowDistribution(self, support, seed, dtype)


class RealNVP(_FlowSpec):
    """Real NVP coupling flow (Dinh et al., 2017), the paper's architecture.

    Each stage leaves the first ``D // 2`` coordinates unchanged and transforms
    the rest elementwise, with parameters computed from the unchanged half by
    an MLP. Between stages the coordinates are permuted (see
    ``permutation``). Sampling and density evaluation each take one pass.

    Parameters
    ----------
    num_stages : int, default=3
        Number of coupling stages.
    num_layers : int, default=2
        Hidden layers of each conditioner MLP.
    num_units : int, default=50
        Units per hidden layer.
    elementwise : {"affine", "spline"}, default="affine"
        Transformation of the coupled half: affine (shift and log-scale) or a
        rational-quadratic spline (Durkan et al., 2019) on
        ``[-spline_range, spline_range]``, identity outside.
    num_bins : int, default=8
        Spline bins (used when ``elementwise="spline"``).
    spline_range : float, default=4.0
        Half-width of the spline's interval.
    post_affine : bool, default=True
        Append a trainable elementwise affine before the support bijector.
    permutation : {"reverse", "random"}, default="reverse"
        Order of the coordinates between stages. ``"reverse"`` splits them
        into the same two halves at every stage when D is even: no stage
        conditions a coordinate on another of its own half, so the
        statistic's key pairs should lie across the halves (``z[:D // 2]``
        against ``z[D // 2:]``). ``"random"`` draws a new split for each
        stage (from a fixed stream: the same orders for every seed; with
        D = 2 there is only one split, and it reverses). On the paper's
        oscillator, whose key pairs (a11, a22) and (a12, a21) lie across the
        halves, reversal is the better choice: with random splits one stage
        couples neither pair, and fits stalled about 5.5 nats below the
        maximum on 1 of 5 seeds (on 5 of 5 with a narrower initial Gaussian;
        ``python -m benchmarks --sections maxent``).
    base_modes : int, default=2
        Gaussian components of the base distribution. Each has unit
        variance; their means start 6 apart (at +-3 along one axis for two
        modes) and train, as do their weights. A flow of one Gaussian keeps
        a bridge of mass between two separate lobes, and its split between
        them freezes early; two modes can each become one lobe, and their
        weights share the mass between lobes as the maximum shares it. On
        the paper's oscillator every one of 10 seeds came within 0.1 nats
        of the maximum with 50-51% of the mass on each lobe; with one base
        Gaussian, one seed of 5 lost a lobe (``python -m benchmarks
        --sections maxent``). Given the default budget, a fit whose answer
        has one lobe merges both modes into it; on a short budget it can
        keep a shallow second mode, so use ``1`` there. ``1`` is the
        standard normal base of the paper and of earlier versions.
        ``al_params.batch_size`` must be at least ``2 * base_modes``.

    See Also
    --------
    MAF : autoregressive alternative.

    Examples
    --------
    >>> from sklearn_epi import RealNVP
    >>> RealNVP(num_units=25).get_params()["num_units"]
    25
    """

    def _stage(self, dim, rng, dtype, index):
        num_masked = dim // 2
        elementwise, per_dim = _elementwise_from(self)
        conditioner = MLP(
            num_masked,
            (dim - num_masked) * per_dim,
            self.num_layers,
            self.num_units,
            rng,
            dtype,
            name=f"coupling_{index}",
        )
        return bij.Coupling(conditioner, elementwise, num_masked, per_dim, name=f"real_nvp_{index}")


class MAF(_FlowSpec):
    """Masked autoregressive flow (Papamakarios et al., 2017).

    Each stage transforms coordinate ``i`` with parameters computed by a MADE
    network from coordinates ``< i``. Density evaluation is one pass; sampling
    takes ``D`` sequential passes, so it trains more slowly than
    :class:`RealNVP` when ``D`` is large.

    Parameters
    ----------
    num_stages : int, default=3
    num_layers : int, default=2
    num_units : int, default=50
    elementwise : {"affine", "spline"}, default="affine"
    num_bins : int, default=8
    spline_range : float, default=4.0
    post_affine : bool, default=True
    permutation : {"reverse", "random"}, default="reverse"
        See :class:`RealNVP`. Reversal alternates the autoregressive order;
        ``"random"`` draws a new order per stage.
    base_modes : int, default=2
        Gaussian components of the base distribution; see :class:`RealNVP`.

    See Also
    --------
    RealNVP : coupling flow with fast sampling and density.
    """

    def _stage(self, dim, rng, dtype, index):
        elementwise, per_dim = _elementwise_from(self)
        made = MADE(dim, per_dim, self.num_layers, self.num_units, rng, dtype, name=f"made_{index}")
        return bij.Autoregressive(made, elementwise, name=f"maf_{index}")


def _elementwise_from(spec):
    """Conditioner outputs -> elementwise transform, and the outputs per coordinate."""
    if spec.elementwise == "affine":
        return bij.Affine.from_params, bij.Affine.params_per_dim
    bins, bound = spec.num_bins, float(spec.spline_range)
    return (
        lambda params: bij.RationalQuadraticSpline.from_params(params, bins, bound),
        bij.RationalQuadraticSpline.params_per_dim(bins),
    )


def _mode_means(modes, dim):
    """Starting means of the base modes: 6 apart, from a stream fixed by ``dim``.

    Two modes sit at +-3 along one direction, 6 standard deviations apart
    (they overlap by under 0.3%); more modes at radius 3 along directions
    drawn from the stream.
    """
    directions = np.random.RandomState(dim).normal(size=(modes, dim))
    if modes == 2:
        directions[1] = -directions[0]
    return 3.0 * directions / np.linalg.norm(directions, axis=1, keepdims=True)


class FlowDistribution(tf.Module):
    r"""A built flow: its variables, its stages and the distribution q(z).

    Not constructed directly: use ``RealNVP(...).build(support, seed)``.
    :math:`z = f(x)`, :math:`x \sim p_0`, with
    :math:`\log q(z) = \log p_0(x) - \log|\det J_f(x)|`: sampling runs the
    stages' fused forward passes, densities of given points their inverse
    passes, both through the same :attr:`bijector`.

    Attributes
    ----------
    bijector : Chain
        The stages, from the base to the support, in the order applied.
    conditioners : list of tf.Module
        The network of each coupling / autoregressive stage, in order.
    """

    def __init__(self, spec: _FlowSpec, support: Support, seed: int, dtype=tf.float32):
        super().__init__(name="epi_flow")
        dim = support.dim
        rng = np.random.RandomState(seed)
        # A fixed stream: the permutations depend on the dimension only, never
        # on the seed, so that weights set into any flow of this spec and
        # support (a pooled trainer, a loaded fit) mean the same density.
        permutations = np.random.RandomState(0)
        self.dtype = tf.as_dtype(dtype)
        self.dim = dim
        stages, self.conditioners = [], []
        for index in range(spec.num_stages):
            if index > 0 and dim > 1:
                if spec.permutation == "random" and dim >= 3:
                    order = bij.mixing_order(dim, permutations)
                else:
                    order = np.arange(dim)[::-1].copy()
                stages.append(bij.Permute(order, name=f"permute_{index}"))
            stages.append(spec._stage(dim, rng, self.dtype, index))
            self.conditioners.append(stages[-1].conditioner)
        self.post_affine = bool(spec.post_affine)
        if self.post_affine:
            self.shift = tf.Variable(tf.zeros([dim], self.dtype), name="post_shift")
            self.log_scale = tf.Variable(tf.zeros([dim], self.dtype), name="post_log_scale")
            stages.append(
                bij.Elementwise(bij.Affine(self.shift, self.log_scale), name="post_affine")
            )
        stages.append(bij.FromTFP(support.bijector(self.dtype), name="support"))
        self.bijector = bij.Chain(stages, name="flow")
        self.modes = spec.base_modes
        if self.modes > 1:
            # Like the permutations, the starting means depend on the
            # dimension only; they are variables, saved with the weights.
            self.base_logits = tf.Variable(tf.zeros([self.modes], self.dtype), name="base_logits")
            self.base_locs = tf.Variable(
                _mode_means(self.modes, dim).astype(self.dtype.as_numpy_dtype), name="base_locs"
            )

    @property
    def trainable_variables(self) -> tuple:
        """The weights in the order saved fits hold them (``tf.Module``'s order when
        first saved), written out so that renaming an attribute cannot reorder them.
        """
        own = [self.base_locs, self.base_logits] if self.modes > 1 else []
        own += [self.log_scale, self.shift] if self.post_affine else []
        return tuple(own) + sum((c.trainable_variables for c in self.conditioners), ())

    def _base_log_prob(self, x, logits=None):
        r"""The base density, :math:`\log \sum_k p_k N(x; m_k, I)`, for every path.

        ``logits`` (log :math:`p_k` up to a constant; default the flow's) may
        be held out of the gradient by the caller. With one mode, the
        standard normal: :math:`k = 1`, :math:`m_1 = 0`.
        """
        if self.modes == 1:
            logits, locs = tf.zeros([1], self.dtype), tf.zeros([1, self.dim], self.dtype)
        else:
            logits, locs = self.base_logits if logits is None else logits, self.base_locs
        square = tf.reduce_sum(tf.square(x[..., None, :] - locs), axis=-1)
        log_base = tf.reduce_logsumexp(tf.nn.log_softmax(logits) - 0.5 * square, axis=-1)
        return log_base - 0.5 * self.dim * np.log(2 * np.pi)

    def _push(self, x, logits=None):
        """Base draws ``x`` to ``(z, log q(z))``: one fused forward pass of the stages."""
        z, log_det = self.bijector.forward_and_log_det(x)
        return z, self._base_log_prob(x, logits) - log_det

    # The flow's methods are plain TensorFlow, with Python control flow on
    # Python values only: autograph, which the training loop needs for the
    # user's statistic, is kept out of them and of TFP beneath them (it spent
    # seconds of every new process converting their source).
    @tf.autograph.experimental.do_not_convert
    def sample_and_log_prob(self, n, seed):
        r"""Draw ``n`` samples and their log densities in one forward pass.

        The change of variables is accumulated stage by stage,
        :math:`\log q(z) = \log p_0(\epsilon) - \sum_k \log|\det J_k|`
        with :math:`p_0` the base, each coupling network evaluated once per
        stage. With several base modes the mode of each sample is a
        categorical draw: no gradient reaches the mode weights through it
        (training uses :meth:`stratified_sample_and_log_prob`).

        Parameters
        ----------
        n : int
        seed : tf.Tensor of shape (2,)
            Stateless seed.

        Returns
        -------
        z : tf.Tensor of shape (n, D)
        log_q : tf.Tensor of shape (n,)
        """
        if self.modes == 1:
            return self._push(
                tf.random.stateless_normal([n, self.dim], seed=seed, dtype=self.dtype)
            )
        pick, noise = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        mode = tf.random.stateless_categorical(self.base_logits[None], n, seed=pick)[0]
        x = tf.random.stateless_normal([n, self.dim], seed=noise, dtype=self.dtype)
        return self._push(x + tf.gather(self.base_locs, mode))

    def sample(self, n, seed) -> tf.Tensor:
        """``n`` draws of z; ``seed`` a stateless seed of shape (2,) or an int."""
        if isinstance(seed, Integral):
            seed = tf.constant([0, seed], tf.int64)
        return self.sample_and_log_prob(n, seed)[0]

    @tf.autograph.experimental.do_not_convert
    def stratified_sample_and_log_prob(self, n, seed, split=None, train_weights=True):
        r"""``n`` samples in equal shares from each base mode, with weights.

        For training: sample ``i`` of a block comes from mode ``i mod K``,
        and its weight is the mode's probability over its share of the
        block, so that ``mean(w * g(z))`` over a block estimates
        :math:`E_q[g]` without bias, and its gradient reaches the mode
        weights, which a categorical draw would not pass on. A rare mode
        keeps its share of the batch. With one mode every weight is 1.

        Parameters
        ----------
        n : int
        seed : tf.Tensor of shape (2,)
        split : int, optional
            Stratify ``[:split]`` and ``[split:]`` separately (the two
            half-batches of the penalty gradient).
        train_weights : bool, default=True
            False holds the mode weights out of the gradient.

        Returns
        -------
        z : tf.Tensor of shape (n, D)
        log_q : tf.Tensor of shape (n,)
        w : tf.Tensor of shape (n,)
        """
        x = tf.random.stateless_normal([n, self.dim], seed=seed, dtype=self.dtype)
        if self.modes == 1:
            return (*self._push(x), tf.ones([n], self.dtype))
        modes, shares = [], []
        for size in [n] if split is None else [split, n - split]:
            block = np.arange(size) % self.modes
            modes.append(block)
            shares.append(size / np.bincount(block, minlength=self.modes)[block])
        mode, share = np.concatenate(modes), np.concatenate(shares)
        logits = self.base_logits if train_weights else tf.stop_gradient(self.base_logits)
        w = tf.gather(tf.nn.softmax(logits), mode) * tf.constant(share, self.dtype)
        z, log_q = self._push(x + tf.gather(self.base_locs, mode), logits)
        return z, log_q, w

    @tf.autograph.experimental.do_not_convert
    def log_prob(self, z):
        """Log density of points ``z`` (inside the support): one inverse pass."""
        x, log_det = self.bijector.inverse_and_log_det(z)
        return self._base_log_prob(x) + log_det

    def get_weights(self) -> list:
        """The trainable variables' values, as NumPy arrays, in a fixed order."""
        return [v.numpy() for v in self.trainable_variables]

    def set_weights(self, weights) -> None:
        """Assign values returned by :meth:`get_weights`."""
        variables = self.trainable_variables
        if len(weights) != len(variables):
            raise ValueError(
                f"expected {len(variables)} weight arrays for this flow; got {len(weights)}"
            )
        for var, value in zip(variables, weights):
            var.assign(np.asarray(value, dtype=var.dtype.as_numpy_dtype))
