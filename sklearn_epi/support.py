"""The support of an EPI distribution and the bijector onto it.

Each parameter lives on an interval that may be two-sided ``(low, high)``,
one-sided ``(low, inf)`` / ``(-inf, high)`` or the whole real line. The flow
produces unconstrained values; :class:`SupportBijector` maps them onto the
support dimension by dimension with a scaled sigmoid (two-sided) or a
softplus (one-sided), and the identity on unbounded dimensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors

__all__ = ["Support", "SupportBijector", "parse_bounds"]

_UNBOUNDED, _LOWER, _UPPER, _BOTH = 0, 1, 2, 3


@dataclass(frozen=True)
class Support:
    """Per-dimension bounds of the parameter space, validated.

    Parameters
    ----------
    names : tuple of str
        Parameter names, one per dimension.
    low, high : ndarray of shape (D,)
        Lower and upper bounds (``-inf`` / ``inf`` where open).
    """

    names: tuple
    low: np.ndarray
    high: np.ndarray

    @property
    def dim(self) -> int:
        """Number of parameters ``D``."""
        return len(self.names)

    @property
    def kinds(self) -> np.ndarray:
        """Bound kind per dimension: 0 none, 1 lower, 2 upper, 3 both."""
        return np.isfinite(self.low) * _LOWER + np.isfinite(self.high) * _UPPER

    def contains(self, Z: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of ``Z`` strictly inside the support."""
        Z = np.asarray(Z)
        inside = (Z > self.low) & (Z < self.high) & np.isfinite(Z)
        return inside.all(axis=-1)

    def default_gaussian(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the default initial Gaussian.

        Two-sided dimensions: the centre of the interval and a sixth of its
        width (so +-3 sd spans the interval). One-sided dimensions: one unit
        inside the bound with unit spread. Unbounded dimensions: N(0, 1).
        """
        kinds = self.kinds
        mean = np.zeros(self.dim)
        std = np.ones(self.dim)
        both = kinds == _BOTH
        mean[both] = 0.5 * (self.low[both] + self.high[both])
        std[both] = (self.high[both] - self.low[both]) / 6.0
        lower = kinds == _LOWER
        mean[lower] = self.low[lower] + 1.0
        upper = kinds == _UPPER
        mean[upper] = self.high[upper] - 1.0
        return mean, std

    def bijector(self, dtype=tf.float32) -> SupportBijector:
        """The bijector from R^D onto this support."""
        return SupportBijector(self.low, self.high, dtype=dtype)


def parse_bounds(bounds) -> Support:
    """Validate ``bounds`` and return a :class:`Support`.

    Parameters
    ----------
    bounds : dict or array-like of shape (D, 2)
        ``{name: (low, high)}`` or an array of ``[low, high]`` rows. Infinite
        values open a side of the interval.

    Returns
    -------
    Support

    Raises
    ------
    TypeError
        If ``bounds`` is neither a dict nor array-like, or a name is not a str.
    ValueError
        If the shape is wrong, a bound is NaN, or ``low >= high``.
    """
    if isinstance(bounds, dict):
        names = tuple(bounds.keys())
        for name in names:
            if not isinstance(name, str):
                raise TypeError(
                    f"bounds keys must be parameter names (str); got {name!r} "
                    f"of type {type(name).__name__}"
                )
        rows = []
        for name, pair in bounds.items():
            arr = _as_float_array(pair, f"bounds[{name!r}]")
            if arr.shape != (2,):
                raise ValueError(
                    f"bounds[{name!r}] must be a (low, high) pair; got shape {arr.shape}"
                )
            rows.append(arr)
        if not rows:
            raise ValueError("bounds must name at least one parameter; got {}")
        array = np.stack(rows)
    elif isinstance(bounds, (str, bytes)) or bounds is None:
        raise TypeError(
            "bounds must be a dict {name: (low, high)} or an array of shape "
            f"(D, 2); got {type(bounds).__name__}"
        )
    else:
        array = _as_float_array(bounds, "bounds")
        if array.ndim != 2 or array.shape[1] != 2 or array.shape[0] < 1:
            raise ValueError(f"bounds must have shape (D, 2) with D >= 1; got shape {array.shape}")
        names = tuple(f"z{i}" for i in range(array.shape[0]))
    low, high = array[:, 0].copy(), array[:, 1].copy()
    for i, name in enumerate(names):
        if np.isnan(low[i]) or np.isnan(high[i]):
            raise ValueError(f"bounds for {name!r} must not be NaN; got {tuple(array[i])}")
        if not low[i] < high[i]:
            raise ValueError(
                f"bounds for {name!r} need low < high; got low = {low[i]}, high = {high[i]}"
            )
    return Support(names=names, low=low, high=high)


def _as_float_array(value, what: str) -> np.ndarray:
    if isinstance(value, Real):
        return np.asarray(value, dtype=float)
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be numeric; got {value!r}") from exc


class SupportBijector(tfb.Bijector):
    r"""Elementwise bijector from :math:`\mathbb{R}^D` onto a box of intervals.

    For dimension :math:`i` with bounds :math:`(l_i, h_i)`:

    * two-sided: :math:`z = l + (h - l)\,\sigma(x)`, with
      :math:`\log|dz/dx| = \log(h - l) + \log\sigma(x) + \log\sigma(-x)`;
    * lower only: :math:`z = l + \mathrm{softplus}(x)`,
      :math:`\log|dz/dx| = \log\sigma(x)`;
    * upper only: :math:`z = h - \mathrm{softplus}(-x)`,
      :math:`\log|dz/dx| = \log\sigma(-x)`;
    * unbounded: the identity.

    All log-Jacobians use ``log_sigmoid`` so they stay finite when the
    sigmoid saturates in floating point.
    """

    def __init__(self, low, high, dtype=tf.float32, validate_args=False, name="support"):
        parameters = dict(locals())
        low = np.asarray(low, dtype=float)
        high = np.asarray(high, dtype=float)
        kinds = np.isfinite(low) * _LOWER + np.isfinite(high) * _UPPER
        with tf.name_scope(name) as name:
            np_dtype = tf.as_dtype(dtype).as_numpy_dtype
            # Infinite bounds are replaced by zeros: tf.where selects the branch,
            # and the masked-out arithmetic must not produce inf * 0 = NaN.
            self._low = tf.constant(np.where(np.isfinite(low), low, 0.0), dtype)
            self._high = tf.constant(np.where(np.isfinite(high), high, 0.0), dtype)
            self._log_width = tf.constant(
                np.log(np.where(kinds == _BOTH, high - low, 1.0)).astype(np_dtype)
            )
            self._kinds = tf.constant(kinds.astype(np.int32))
            super().__init__(
                forward_min_event_ndims=1,
                validate_args=validate_args,
                parameters=parameters,
                dtype=dtype,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype):
        return {}

    def _select(self, both, lower, upper, none):
        k = self._kinds
        return tf.where(
            k == _BOTH, both, tf.where(k == _LOWER, lower, tf.where(k == _UPPER, upper, none))
        )

    def _forward(self, x):
        width = tf.exp(self._log_width)
        return self._select(
            self._low + width * tf.sigmoid(x),
            self._low + tf.math.softplus(x),
            self._high - tf.math.softplus(-x),
            x,
        )

    def _inverse(self, z):
        # Each branch gets a harmless input where it is not selected, so that
        # neither it nor its gradient can be NaN/inf (tf.where's gradient
        # multiplies the unselected branch by zero, and 0 * inf = NaN).
        k = self._kinds
        one = tf.ones_like(z)
        u = tf.where(k == _BOTH, (z - self._low) / tf.exp(self._log_width), 0.5 * one)
        above = tf.where(k == _LOWER, z - self._low, one)
        below = tf.where(k == _UPPER, self._high - z, one)
        return self._select(
            tf.math.log(u) - tf.math.log1p(-u),
            tfp.math.softplus_inverse(above),
            -tfp.math.softplus_inverse(below),
            z,
        )

    def _forward_log_det_jacobian(self, x):
        zero = tf.zeros_like(x)
        per_dim = self._select(
            self._log_width + tf.math.log_sigmoid(x) + tf.math.log_sigmoid(-x),
            tf.math.log_sigmoid(x),
            tf.math.log_sigmoid(-x),
            zero,
        )
        return tf.reduce_sum(per_dim, axis=-1)
