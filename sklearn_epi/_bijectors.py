r"""The stages of a flow, each written once (their networks: :mod:`sklearn_epi._conditioners`).

A stage is a bijection :math:`y = f(x)` of vectors (the last axis; leading
axes are a batch). Its maths lives in two methods:

* :meth:`Bijector.forward_and_log_det`: ``(y, log|det df/dx|)`` in one pass
  (zuko's ``call_and_ladj``), what sampling needs;
* :meth:`Bijector.inverse_and_log_det`: ``(x, log|det df^{-1}/dy|)``, what
  the density of a given point needs.

``forward``, ``inverse`` and the two log-determinants are read off them, and
:class:`Chain` composes them, so a flow's samples and its densities run
through the same objects: no stage has a second copy of its maths to keep in
step. Sharing the pass matters for coupling and autoregressive stages, whose
network would otherwise run once for ``y`` and again for the log-determinant.

Elementwise transforms (:class:`Affine`, :class:`RationalQuadraticSpline`)
are plain objects built from a conditioner's outputs on every call; their
log-determinants are per coordinate, and the stage that uses them sums.

The package keeps its flows behind this small interface rather than TFP's
``Bijector`` machinery; only the support's bijector (``support.py``) is a TFP
one, adapted by :class:`FromTFP`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class Transform:
    """A bijection defined by its fused passes; the rest is read off them."""

    def forward_and_log_det(self, x):
        """``(f(x), log|det df/dx|)``."""
        raise NotImplementedError

    def inverse_and_log_det(self, y):
        """``(f^-1(y), log|det df^-1/dy|)``."""
        raise NotImplementedError

    def forward(self, x):
        return self.forward_and_log_det(x)[0]

    def inverse(self, y):
        return self.inverse_and_log_det(y)[0]

    def forward_log_det_jacobian(self, x):
        return self.forward_and_log_det(x)[1]

    def inverse_log_det_jacobian(self, y):
        return self.inverse_and_log_det(y)[1]


class Bijector(Transform, tf.Module):
    """A stage: a :class:`Transform` of vectors, its log-determinant of shape
    ``x.shape[:-1]`` (or a scalar where it does not depend on ``x``).
    """


class Chain(Bijector):
    r"""Stages applied in order: :math:`f = f_K \circ \dots \circ f_1`.

    The log-determinants add up along the pass,
    :math:`\log|\det J_f| = \sum_k \log|\det J_{f_k}|`, each stage's taken
    at its own input: one pass, each network run once.

    Parameters
    ----------
    stages : list of Bijector
        In the order they act on a base draw.
    """

    def __init__(self, stages, name="chain"):
        super().__init__(name=name)
        self.stages = list(stages)

    def forward_and_log_det(self, x):
        total = tf.zeros([], x.dtype)
        for stage in self.stages:
            x, log_det = stage.forward_and_log_det(x)
            total = total + log_det
        return x, total

    def inverse_and_log_det(self, y):
        total = tf.zeros([], y.dtype)
        for stage in reversed(self.stages):
            y, log_det = stage.inverse_and_log_det(y)
            total = total + log_det
        return y, total


class Permute(Bijector):
    """Reorder the coordinates: ``y = x[..., order]``; volume-preserving."""

    def __init__(self, order, name="permute"):
        super().__init__(name=name)
        self.order = np.asarray(order)
        self.inverse_order = np.argsort(self.order)

    def forward_and_log_det(self, x):
        return tf.gather(x, self.order, axis=-1), tf.zeros([], x.dtype)

    def inverse_and_log_det(self, y):
        return tf.gather(y, self.inverse_order, axis=-1), tf.zeros([], y.dtype)


def mixing_order(dim, rng):
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


class Coupling(Bijector):
    r"""Real NVP coupling (Dinh et al., 2017, Eq. 7).

    The first ``num_masked`` coordinates pass unchanged and condition an
    elementwise transform of the rest:
    :math:`y_{1:d} = x_{1:d}`, :math:`y_{d+1:D} = g_{\theta(x_{1:d})}(x_{d+1:D})`,
    so :math:`\log|\det J| = \sum_i \log|g'_{\theta,i}|`.

    Parameters
    ----------
    conditioner : callable
        ``(..., num_masked) -> (..., (D - num_masked) * params_per_dim)``.
    elementwise : callable
        Conditioner outputs of shape ``(..., D - num_masked, params_per_dim)``
        to an elementwise transform (:class:`Affine`, ...).
    num_masked, params_per_dim : int
    """

    def __init__(self, conditioner, elementwise, num_masked, params_per_dim, name="coupling"):
        super().__init__(name=name)
        self.conditioner = conditioner
        self.elementwise = elementwise
        self.num_masked, self.params_per_dim = num_masked, params_per_dim

    def _transform(self, x0, num_transformed):
        out = self.conditioner(x0)
        shape = tf.concat([tf.shape(x0)[:-1], [num_transformed, self.params_per_dim]], 0)
        return self.elementwise(tf.reshape(out, shape))

    def _pass(self, v, direction):
        v0, v1 = v[..., : self.num_masked], v[..., self.num_masked :]
        transform = self._transform(v0, v.shape[-1] - self.num_masked)
        w1, log_det = getattr(transform, direction)(v1)
        return tf.concat([v0, w1], axis=-1), tf.reduce_sum(log_det, axis=-1)

    def forward_and_log_det(self, x):
        return self._pass(x, "forward_and_log_det")

    def inverse_and_log_det(self, y):
        return self._pass(y, "inverse_and_log_det")


class Autoregressive(Bijector):
    r"""Masked autoregressive stage (Papamakarios et al., 2017, Eq. 3).

    :math:`y_i = g_{\theta_i(y_{<i})}(x_i)`. The inverse is one pass of the
    network on ``y``. The forward pass needs ``D`` of them: after pass ``k``
    the first ``k`` coordinates of ``y`` are final. The last pass already sees
    every coordinate its outputs depend on, so its transform gives ``y`` and
    the log-determinant together, without a pass more.

    Parameters
    ----------
    conditioner : callable
        ``(..., D) -> (..., D, params_per_dim)``, output ``i`` a function of
        inputs ``< i`` only (:class:`MADE`).
    elementwise : callable
        As for :class:`Coupling`.
    """

    def __init__(self, conditioner, elementwise, name="autoregressive"):
        super().__init__(name=name)
        self.conditioner = conditioner
        self.elementwise = elementwise

    def forward_and_log_det(self, x):
        dim = x.shape[-1]
        y = tf.zeros_like(x)
        if dim > 1:
            # A while loop, not D unrolled copies of the network in the graph.
            (y,) = tf.while_loop(
                lambda _: True,
                lambda y: (self.elementwise(self.conditioner(y)).forward(x),),
                (y,),
                maximum_iterations=dim - 1,
            )
        y, log_det = self.elementwise(self.conditioner(y)).forward_and_log_det(x)
        return y, tf.reduce_sum(log_det, axis=-1)

    def inverse_and_log_det(self, y):
        x, log_det = self.elementwise(self.conditioner(y)).inverse_and_log_det(y)
        return x, tf.reduce_sum(log_det, axis=-1)


class Elementwise(Bijector):
    """A fixed elementwise transform (e.g. an :class:`Affine` of variables) as a stage."""

    def __init__(self, transform, name="elementwise"):
        super().__init__(name=name)
        self.transform = transform

    def forward_and_log_det(self, x):
        y, log_det = self.transform.forward_and_log_det(x)
        return y, tf.reduce_sum(log_det, axis=-1)

    def inverse_and_log_det(self, y):
        x, log_det = self.transform.inverse_and_log_det(y)
        return x, tf.reduce_sum(log_det, axis=-1)


class FromTFP(Bijector):
    """A TFP bijector on vectors (``event_ndims=1``) as a stage."""

    def __init__(self, bijector, name="from_tfp"):
        super().__init__(name=name)
        self.bijector = bijector

    def forward_and_log_det(self, x):
        y = self.bijector.forward(x)
        return y, self.bijector.forward_log_det_jacobian(x, event_ndims=1)

    def inverse_and_log_det(self, y):
        x = self.bijector.inverse(y)
        return x, self.bijector.inverse_log_det_jacobian(y, event_ndims=1)


class Affine(Transform):
    r"""Elementwise :math:`y = x e^{s} + t`, :math:`\log|dy/dx| = s`."""

    params_per_dim = 2

    def __init__(self, shift, log_scale):
        self.shift, self.log_scale = shift, log_scale

    @classmethod
    def from_params(cls, params):
        """From conditioner outputs ``(..., 2)``: shift and raw log-scale."""
        # tanh soft-clips the log-scale of one stage to +-5 so that a bad
        # step cannot blow a stage up to inf; stacked stages still reach
        # any scale the problem needs.
        return cls(params[..., 0], 5.0 * tf.tanh(params[..., 1] / 5.0))

    def forward_and_log_det(self, x):
        return x * tf.exp(self.log_scale) + self.shift, self.log_scale

    def inverse_and_log_det(self, y):
        return (y - self.shift) * tf.exp(-self.log_scale), -self.log_scale


class RationalQuadraticSpline(Transform):
    r"""Monotone rational-quadratic spline (Durkan et al., 2019), identity outside.

    On ``[range_min, range_min + sum(bin_widths)]`` the map passes through
    knots :math:`(x_k, y_k)` with slopes :math:`d_k` (1 at both ends, so the
    identity continues it smoothly). In bin :math:`k`, with
    :math:`\xi = (x - x_k) / w_k`, :math:`s_k = h_k / w_k` (Eqs. 4 and 19-22
    of the paper's appendix):

    .. math::

        y = y_k + \frac{h_k [s_k \xi^2 + d_k \xi (1 - \xi)]}
                       {s_k + (d_{k+1} + d_k - 2 s_k) \xi (1 - \xi)},\qquad
        \frac{dy}{dx} = \frac{s_k^2 [d_{k+1} \xi^2 + 2 s_k \xi (1 - \xi)
                        + d_k (1 - \xi)^2]}
                        {[s_k + (d_{k+1} + d_k - 2 s_k) \xi (1 - \xi)]^2}.

    The inverse solves the quadratic for :math:`\xi` in the form that stays
    accurate when :math:`4ac` is small. The same arithmetic as TFP's
    ``RationalQuadraticSpline``.

    Parameters
    ----------
    bin_widths, bin_heights : Tensor of shape (..., K)
    knot_slopes : Tensor of shape (..., K - 1)
        Slopes at the interior knots, positive.
    range_min : float
    """

    def __init__(self, bin_widths, bin_heights, knot_slopes, range_min):
        self.kx = _knot_positions(bin_widths, range_min)
        self.ky = _knot_positions(bin_heights, range_min)
        ones = tf.ones_like(knot_slopes[..., :1])
        self.kd = tf.concat([ones, knot_slopes, ones], axis=-1)

    @staticmethod
    def params_per_dim(num_bins):
        return 3 * num_bins - 1

    @classmethod
    def from_params(cls, params, num_bins, bound):
        """From conditioner outputs ``(..., 3K - 1)`` on ``[-bound, bound]``."""
        dtype = params.dtype
        widths = tf.math.softmax(params[..., :num_bins], axis=-1)
        heights = tf.math.softmax(params[..., num_bins : 2 * num_bins], axis=-1)
        # Bins no narrower than 1e-3 and slopes no flatter: both keep the
        # log-determinant finite.
        min_bin = tf.constant(1e-3, dtype)
        scale = tf.constant(2 * bound, dtype) - num_bins * min_bin
        slopes = tf.math.softplus(params[..., 2 * num_bins :]) + tf.constant(1e-3, dtype)
        return cls(widths * scale + min_bin, heights * scale + min_bin, slopes, -bound)

    def _bin(self, knots, v):
        """Where ``v`` lies among ``knots``: out-of-range mask and the bin's geometry."""
        outside = (v <= knots[..., 0]) | (v >= knots[..., -1])
        v = tf.where(outside, knots[..., 0], v)
        shape = tf.broadcast_dynamic_shape(tf.shape(v[..., None]), tf.shape(self.kx))
        kx, ky, kd = (tf.broadcast_to(k, shape) for k in (self.kx, self.ky, self.kd))
        knots = tf.broadcast_to(knots, shape)
        v = tf.broadcast_to(v, shape[:-1])[..., None]
        index = tf.maximum(
            tf.searchsorted(knots[..., :-1], v, side="right", out_type=tf.int64) - 1,
            tf.zeros([], tf.int64),
        )
        batch_dims = index.shape.rank - 1

        def at(k, offset=0):
            return tf.gather(k, index + offset, axis=-1, batch_dims=batch_dims)[..., 0]

        x_k, y_k, d_k, d_kp1 = at(kx), at(ky), at(kd), at(kd, 1)
        w_k, h_k = at(kx, 1) - x_k, at(ky, 1) - y_k
        return outside, x_k, y_k, d_k, d_kp1, w_k, h_k, h_k / w_k

    @staticmethod
    def _log_slope(xi, d_k, d_kp1, s_k):
        # Products in TFP's order, so that results agree to the last bit.
        return (
            2 * tf.math.log(s_k)
            + tf.math.log(d_kp1 * xi**2 + 2 * s_k * xi * (1 - xi) + d_k * (1 - xi) ** 2)
            - 2 * tf.math.log((d_kp1 + d_k - 2 * s_k) * xi * (1 - xi) + s_k)
        )

    def forward_and_log_det(self, x):
        outside, x_k, y_k, d_k, d_kp1, w_k, h_k, s_k = self._bin(self.kx, x)
        # Outside the range a harmless xi keeps the unselected branch (and
        # so its gradient) finite.
        xi = tf.where(outside, tf.constant(0.5, x.dtype), (x - x_k) / w_k)
        numerator = h_k * (s_k * xi**2 + d_k * xi * (1 - xi))
        inside = y_k + numerator / (s_k + (d_kp1 + d_k - 2 * s_k) * xi * (1 - xi))
        log_det = self._log_slope(xi, d_k, d_kp1, s_k)
        return tf.where(outside, x, inside), tf.where(outside, tf.zeros([], x.dtype), log_det)

    def inverse_and_log_det(self, y):
        outside, x_k, y_k, d_k, d_kp1, w_k, h_k, s_k = self._bin(self.ky, y)
        zero = tf.zeros([], y.dtype)
        rel_y = tf.where(outside, zero, y - y_k)
        term = rel_y * (d_kp1 + d_k - 2 * s_k)
        a = h_k * (s_k - d_k) + term
        b = h_k * d_k - term
        c = -s_k * rel_y
        xi = tf.where(tf.equal(rel_y, 0), zero, (2 * c) / (-b - tf.sqrt(b**2 - 4 * a * c)))
        log_det = -self._log_slope(tf.where(outside, 0.5 * tf.ones_like(xi), xi), d_k, d_kp1, s_k)
        return tf.where(outside, y, xi * w_k + x_k), tf.where(outside, zero, log_det)


def _knot_positions(bin_sizes, range_min):
    start = tf.fill(tf.shape(bin_sizes[..., :1]), tf.cast(range_min, bin_sizes.dtype))
    return tf.concat([start, tf.cumsum(bin_sizes, axis=-1) + range_min], axis=-1)
