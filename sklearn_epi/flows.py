"""Normalizing-flow architectures as small scikit-learn parameter objects.

A flow object (:class:`RealNVP`, :class:`MAF`) only stores hyperparameters,
so it can be cloned, pickled and searched over with ``GridSearchCV`` through
the estimator's ``flow__*`` parameters. :meth:`build` turns it into a
:class:`FlowDistribution`: a ``tf.Module`` with the TFP bijector chain

    base -> stage 1 -> permute -> stage 2 -> ... -> post-affine -> support

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
import tensorflow_probability as tfp
from sklearn.base import BaseEstimator

from .support import Support

tfb = tfp.bijectors
tfd = tfp.distributions

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
                "flow.elementwise must be 'affine' or 'spline'; got " f"{self.elementwise!r}"
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
        transformed = dim - num_masked
        per_dim = _params_per_dim(self)
        conditioner = _MLP(
            num_masked,
            transformed * per_dim,
            self.num_layers,
            self.num_units,
            rng,
            dtype,
            name=f"coupling_{index}",
        )
        elementwise = _elementwise_from(self, per_dim)

        def coupled(x0, output_units):
            shape = tf.concat([tf.shape(x0)[:-1], [output_units, per_dim]], 0)
            return elementwise(tf.reshape(conditioner(x0), shape))

        def forward(x):
            # One conditioner call for both the sample and its log-Jacobian;
            # TFP's RealNVP evaluates the network once for each.
            x0, x1 = x[..., :num_masked], x[..., num_masked:]
            bij = coupled(x0, transformed)
            y1 = bij.forward(x1)
            ldj = tf.reduce_sum(bij.forward_log_det_jacobian(x1, event_ndims=0), axis=-1)
            return tf.concat([x0, y1], axis=-1), ldj

        bijector = tfb.RealNVP(
            num_masked=num_masked,
            bijector_fn=lambda x, output_units, **_: coupled(x, output_units),
            name=f"real_nvp_{index}",
        )
        return bijector, conditioner, forward


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
        per_dim = _params_per_dim(self)
        made = _MADE(
            dim, per_dim, self.num_layers, self.num_units, rng, dtype, name=f"made_{index}"
        )
        elementwise = _elementwise_from(self, per_dim)
        bijector = tfb.MaskedAutoregressiveFlow(
            bijector_fn=lambda x, **_: elementwise(made(x)), name=f"maf_{index}"
        )
        # Sampling a MAF takes D sequential passes whatever we do: no fused form.
        return bijector, made, _bijector_step(bijector)


def _bijector_step(bijector):
    """``x -> (y, log|dy/dx|)`` of a TFP bijector on vectors."""
    return lambda x: (bijector.forward(x), bijector.forward_log_det_jacobian(x, event_ndims=1))


def _params_per_dim(spec) -> int:
    return 2 if spec.elementwise == "affine" else 3 * spec.num_bins - 1


def _elementwise_from(spec, per_dim):
    """Map conditioner outputs (..., d, per_dim) to an elementwise bijector."""
    if spec.elementwise == "affine":

        def affine(params):
            shift, raw_scale = params[..., 0], params[..., 1]
            # tanh soft-clips the log-scale of one stage to +-5 so that a bad
            # step cannot blow a stage up to inf; stacked stages still reach
            # any scale the problem needs.
            log_scale = 5.0 * tf.tanh(raw_scale / 5.0)
            return tfb.Shift(shift)(tfb.Scale(log_scale=log_scale))

        return affine

    bins, bound = spec.num_bins, float(spec.spline_range)

    def spline(params):
        dtype = params.dtype
        widths = tf.math.softmax(params[..., :bins], axis=-1)
        heights = tf.math.softmax(params[..., bins : 2 * bins], axis=-1)
        min_bin = tf.constant(1e-3, dtype)
        scale = tf.constant(2 * bound, dtype) - bins * min_bin
        slopes = tf.math.softplus(params[..., 2 * bins :]) + tf.constant(1e-3, dtype)
        return tfb.RationalQuadraticSpline(
            bin_widths=widths * scale + min_bin,
            bin_heights=heights * scale + min_bin,
            knot_slopes=slopes,
            range_min=-bound,
        )

    return spline


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


def _glorot(rng, fan_in, fan_out, dtype):
    limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
    return tf.Variable(rng.uniform(-limit, limit, size=(fan_in, fan_out)), dtype=dtype)


class _MLP(tf.Module):
    """tanh MLP whose last layer starts at zero, so each stage starts as identity."""

    def __init__(self, n_in, n_out, num_layers, num_units, rng, dtype, name):
        super().__init__(name=name)
        sizes = [n_in] + [num_units] * num_layers
        self.weights = [_glorot(rng, a, b, dtype) for a, b in zip(sizes[:-1], sizes[1:])]
        self.biases = [tf.Variable(tf.zeros([b], dtype)) for b in sizes[1:]]
        self.out_weight = tf.Variable(tf.zeros([sizes[-1], n_out], dtype))
        self.out_bias = tf.Variable(tf.zeros([n_out], dtype))

    def __call__(self, x):
        h = x
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            if layer == 0 and w.shape[0] == 0:
                # D = 1 couplings condition on nothing; oneDNN aborts on a
                # matmul with an empty inner dimension, so skip it.
                h = tf.tanh(tf.broadcast_to(b, tf.stack([tf.shape(x)[0], tf.shape(b)[0]])))
            else:
                h = tf.tanh(tf.matmul(h, w) + b)
        return tf.matmul(h, self.out_weight) + self.out_bias


class _MADE(tf.Module):
    """Masked autoencoder (Germain et al., 2015): output i sees inputs < i."""

    def __init__(self, dim, per_dim, num_layers, num_units, rng, dtype, name):
        super().__init__(name=name)
        self.dim, self.per_dim = dim, per_dim
        in_deg = np.arange(1, dim + 1)
        hidden_deg = (np.arange(num_units) % max(dim - 1, 1)) + 1
        degrees = [in_deg] + [hidden_deg] * num_layers
        self.masks = [
            tf.constant((d_out[None, :] >= d_in[:, None]).astype(np.float64), dtype)
            for d_in, d_out in zip(degrees[:-1], degrees[1:])
        ]
        out_deg = np.repeat(in_deg, per_dim)
        self.out_mask = tf.constant(
            (out_deg[None, :] > degrees[-1][:, None]).astype(np.float64), dtype
        )
        sizes = [dim] + [num_units] * num_layers
        self.weights = [_glorot(rng, a, b, dtype) for a, b in zip(sizes[:-1], sizes[1:])]
        self.biases = [tf.Variable(tf.zeros([b], dtype)) for b in sizes[1:]]
        self.out_weight = tf.Variable(tf.zeros([sizes[-1], dim * per_dim], dtype))
        self.out_bias = tf.Variable(tf.zeros([dim * per_dim], dtype))

    def __call__(self, x):
        h = x
        for w, b, m in zip(self.weights, self.biases, self.masks):
            h = tf.tanh(tf.matmul(h, w * m) + b)
        out = tf.matmul(h, self.out_weight * self.out_mask) + self.out_bias
        return tf.reshape(out, tf.concat([tf.shape(x)[:-1], [self.dim, self.per_dim]], 0))


def _mixing_permutation(dim, rng):
    """A random order whose conditioning half differs from the current one's.

    Reversing the coordinates between coupling stages, with ``dim // 2`` of
    them conditioning, splits them into the same two halves at every stage
    (for even ``dim``): no stage then conditions a coordinate on another of
    its own half. A random order redraws the split; a draw that gives the same
    halves again is redrawn. Needs ``dim >= 3``: two coordinates have one split.
    """
    half = dim // 2
    same = set(range(half)), set(range(dim - half, dim))
    while True:
        order = rng.permutation(dim)
        if set(order[:half]) not in same:
            return order


class FlowDistribution(tf.Module):
    """A built flow: variables, bijector chain and the distribution q(z).

    Not constructed directly: use ``RealNVP(...).build(support, seed)``.

    Attributes
    ----------
    bijector : tfp.bijectors.Bijector
        Chain from the standard normal base to the support.
    distribution : tfp.distributions.TransformedDistribution
        q(z) as a TFP distribution.
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
        # (bijector, x -> (y, log|dy/dx|)) in the order they are applied.
        steps = []
        for index in range(spec.num_stages):
            if index > 0 and dim > 1:
                if spec.permutation == "random" and dim >= 3:
                    order = _mixing_permutation(dim, permutations)
                else:
                    order = np.arange(dim)[::-1].copy()
                stages.append(tfb.Permute(order, name=f"permute_{index}"))
                steps.append(lambda x, p=order: (tf.gather(x, p, axis=-1), 0.0))
            stage, conditioner, step = spec._stage(dim, rng, self.dtype, index)
            stages.append(stage)
            steps.append(step)
            self.conditioners.append(conditioner)
        if spec.post_affine:
            self.shift = tf.Variable(tf.zeros([dim], self.dtype), name="post_shift")
            self.log_scale = tf.Variable(tf.zeros([dim], self.dtype), name="post_log_scale")
            stages.append(tfb.Shift(self.shift)(tfb.Scale(log_scale=self.log_scale)))
            steps.append(
                lambda x: (
                    x * tf.exp(self.log_scale) + self.shift,
                    tf.reduce_sum(self.log_scale),
                )
            )
        stages.append(support.bijector(self.dtype))
        steps.append(_bijector_step(stages[-1]))
        self._steps = steps
        self.bijector = tfb.Chain(stages[::-1], name="flow")
        self.modes = spec.base_modes
        if self.modes == 1:
            self.base = tfd.MultivariateNormalDiag(loc=tf.zeros([dim], self.dtype))
        else:
            # Like the permutations, the starting means depend on the
            # dimension only; they are variables, saved with the weights.
            self.base_logits = tf.Variable(tf.zeros([self.modes], self.dtype), name="base_logits")
            self.base_locs = tf.Variable(
                _mode_means(self.modes, dim).astype(self.dtype.as_numpy_dtype), name="base_locs"
            )
            self.base = tfd.MixtureSameFamily(
                tfd.Categorical(logits=self.base_logits),
                tfd.MultivariateNormalDiag(loc=self.base_locs),
            )
        self.distribution = tfd.TransformedDistribution(self.base, self.bijector)

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
            x = tf.random.stateless_normal([n, self.dim], seed=seed, dtype=self.dtype)
            return self._push(x, self.base.log_prob(x))
        pick, noise = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        mode = tf.random.stateless_categorical(self.base_logits[None], n, seed=pick)[0]
        x = tf.random.stateless_normal([n, self.dim], seed=noise, dtype=self.dtype)
        x = x + tf.gather(self.base_locs, mode)
        return self._push(x, self._mixture_log_prob(x, self.base_logits))

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
            z, log_q = self._push(x, self.base.log_prob(x))
            return z, log_q, tf.ones([n], self.dtype)
        modes, shares = [], []
        for size in [n] if split is None else [split, n - split]:
            block = np.arange(size) % self.modes
            modes.append(block)
            shares.append(size / np.bincount(block, minlength=self.modes)[block])
        mode, share = np.concatenate(modes), np.concatenate(shares)
        logits = self.base_logits if train_weights else tf.stop_gradient(self.base_logits)
        x = x + tf.gather(self.base_locs, mode)
        w = tf.gather(tf.nn.softmax(logits), mode) * tf.constant(share, self.dtype)
        z, log_q = self._push(x, self._mixture_log_prob(x, logits))
        return z, log_q, w

    def _mixture_log_prob(self, x, logits):
        """The base's log density, log sum_k p_k N(x; m_k, I), with ``logits`` for log p_k.

        Written out rather than TFP's ``MixtureSameFamily.log_prob`` so that
        training can hold the logits out of the gradient; the same
        arithmetic serves both sampling paths.
        """
        square = tf.reduce_sum(tf.square(x[:, None, :] - self.base_locs), axis=-1)
        log_base = tf.reduce_logsumexp(tf.nn.log_softmax(logits) - 0.5 * square, axis=-1)
        return log_base - 0.5 * self.dim * np.log(2 * np.pi)

    def _push(self, x, log_q):
        """Carry base points ``x`` and their base log density through the stages."""
        for step in self._steps:
            x, log_det = step(x)
            log_q = log_q - log_det
        return x, log_q

    def log_prob(self, z):
        """Log density of points ``z`` (inside the support)."""
        return self.distribution.log_prob(z)

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
