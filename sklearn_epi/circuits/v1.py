r"""Excitatory variability in a stochastic stabilised supralinear V1 network (Eq. 68-80).

Rates :math:`\mathbf{x} = [x_E, x_P, x_S, x_V]` (Hz) of excitatory,
parvalbumin, somatostatin and VIP populations follow (Eq. 68-70)

.. math:: \tau \frac{d\mathbf{x}}{dt} = -\mathbf{x}
          + \phi(W\mathbf{x} + \mathbf{h} + \boldsymbol{\epsilon}), \qquad
          \phi(u) = [u]_+^2,

.. math:: \tau_{noise}\, d\epsilon_\alpha = -\epsilon_\alpha\, dt
          + \sqrt{2 \tau_{noise}}\, \tilde\sigma_\alpha\, dB, \qquad
          \tilde\sigma_\alpha = \sigma_\alpha \sqrt{1 + \tau / \tau_{noise}},

with :math:`\tau = 1` ms and :math:`\tau_{noise} = 5` ms, the connectivity
:math:`W` of Eq. 74 and input :math:`\mathbf{h} = \mathbf{h}_b + c\,
\mathbf{h}_c` (Eq. 75-76; :math:`\mathbf{h}_b = [4.16, 4.29, 4.91, 4.86]`,
:math:`\mathbf{h}_c = [3.59, 4.03, 0, 0]`, i.e. ten times the fitted inputs of
Eq. 72-73, the scaling that maps Eq. 71 to Eq. 74). Each trial starts from
:math:`\mathbf{x}(0) \sim U[10, 25]` Hz and :math:`\boldsymbol\epsilon(0) = 0`
and runs :math:`T = 200` Euler-Maruyama steps of 0.5 ms. The statistic is the
E-population standard deviation over :math:`t \in [75, 100]` ms (Eq. 77),

.. math:: s_E = \sqrt{\mathbb{E}_{t > t_{ss}}\left[(x_E(t)
          - \mathbb{E}_{t > t_{ss}}[x_E(t)])^2\right]},

averaged over 100 trials. The parameters are the input noise levels
:math:`\mathbf{z} = [\sigma_E, \sigma_P, \sigma_S, \sigma_V] \in [0, 0.5]^4`;
the emergent properties (Eq. 7, 78-80) are
:math:`\mathbb{E}[s_E] = 5` Hz (or 10 Hz) with :math:`\mathrm{Var}[s_E] = 1`
Hz².
.. rubric:: Where every constant comes from

* Printed in the paper (Methods, "Primary visual cortex"): :math:`W` (Eq.
  74), :math:`\mathbf{h}_c` (Eq. 76), :math:`\phi`, :math:`\tau = 1` ms and
  :math:`\tau_{noise} = 5` ms (Eq. 68-69), the noise parameterisation (Eq.
  70), ``dt = 0.5`` ms, ``T = 200``, :math:`t_{ss} = 75` ms and the initial
  rates U[10, 25] Hz (text after Eq. 76); the support and batch in "EPI
  details for the V1 model"; the properties in Eq. 7.
* Derived: :math:`\mathbf{h}_b`. Eq. 75 is blank in the published text. The
  paper maps the fitted model (Eq. 71-73) to rates 100 times larger; for
  :math:`\phi(u) = [u]_+^2`, :math:`\mathbf{x}' = 100\,\mathbf{x}` solves
  the model with :math:`W' = W / 10` and :math:`\mathbf{h}' = 10\,
  \mathbf{h}`, which is how Eq. 74 follows from Eq. 71 and Eq. 76 from Eq.
  73 (every printed entry), so :math:`\mathbf{h}_b = 10 \times` Eq. 72.
* Checked (``tests/test_circuits.py``): the noise-free steady state at
  contrast 0, :math:`[x_E, x_P, x_S, x_V] = [19.2, 19.4, 11.6, 42.2]` Hz, is
  100 times that of Eq. 71-73, and the E and P rates lie inside the U[10,
  25] Hz range the paper starts its trials from.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorflow as tf

from ..simulate import euler_maruyama
from ._random import split_seed, standard_uniform

__all__ = [
    "V1ExcitatoryVariability",
    "v1_excitatory_variability",
    "v1_simulate",
    "V1_PARAM_NAMES",
    "V1_BOUNDS",
    "V1_MU_5HZ",
    "V1_MU_10HZ",
    "V1_SIGMA2",
    "V1_W",
    "V1_H_B",
    "V1_H_C",
]

V1_PARAM_NAMES = ("sigma_E", "sigma_P", "sigma_S", "sigma_V")
#: The paper's support, every noise level in [0, 0.5].
V1_BOUNDS = dict.fromkeys(V1_PARAM_NAMES, (0.0, 0.5))
#: Mean E-population variability of the 5 Hz property (Eq. 79).
V1_MU_5HZ = np.array([5.0])
#: Mean E-population variability of the 10 Hz property.
V1_MU_10HZ = np.array([10.0])
#: Variance of s_E in both properties, Hz^2 (Eq. 80).
V1_SIGMA2 = np.array([1.0])
#: Effective connectivity on the 100-fold rate scale (Eq. 74), rows = post-synaptic E, P, S, V.
V1_W = np.array(
    [
        [0.218, -0.119, -0.0594, -0.0229],
        [0.166, -0.0651, -0.068, -0.0242],
        [0.0895, -5.22e-4, -1.51e-5, -0.0761],
        [0.334, -0.231, -0.0254, -2.52e-5],
    ]
)
#: Baseline input (ten times Eq. 72).
V1_H_B = np.array([4.16, 4.29, 4.91, 4.86])
#: Contrast-dependent input (Eq. 76).
V1_H_C = np.array([3.59, 4.03, 0.0, 0.0])

_TAU, _TAU_NOISE = 1e-3, 5e-3  # s
_DT, _T = 5e-4, 200
_T_SS = 75e-3  # start of the stationary window, s
_X0_RANGE = (10.0, 25.0)  # Hz


def _check_options(n_trials, contrast):
    if not isinstance(n_trials, Integral) or isinstance(n_trials, bool):
        raise TypeError(f"n_trials must be an integer; got {n_trials!r}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1; got n_trials = {n_trials}")
    if not isinstance(contrast, Real) or isinstance(contrast, bool):
        raise TypeError(f"contrast must be a number in [0, 1]; got {contrast!r}")
    if not 0.0 <= contrast <= 1.0:
        raise ValueError(f"contrast must be in [0, 1]; got contrast = {contrast}")


def _check_z(z):
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_floating:
        z = tf.cast(z, tf.float32)
    if z.shape.rank != 2 or z.shape[-1] != 4:
        raise ValueError(
            f"z must have shape (n, 4) ([sigma_E, sigma_P, sigma_S, sigma_V]); got {tuple(z.shape)}"
        )
    return z


def _global_seed():
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)


def _initial_rates(z, n_trials, seed):
    """x(0) ~ U[10, 25] Hz, shape (n, n_trials, 4), from the first half of ``seed``."""
    low, high = _X0_RANGE
    u = standard_uniform(tf.stack([tf.shape(z)[0], n_trials, 4]), z.dtype, split_seed(seed)[0])
    return low + (high - low) * u


def _run(z, n_trials, contrast, x0, noise, seed, observe, initial):
    """Euler-Maruyama steps of Eq. 68-70 from ``x0``; see :func:`v1_simulate`."""
    z = _check_z(z)
    _check_options(n_trials, contrast)
    dtype = z.dtype
    if seed is None and (x0 is None or noise is None):
        seed = _global_seed()
    x0 = _initial_rates(z, n_trials, seed) if x0 is None else tf.cast(x0, dtype)
    W_T = tf.constant(V1_W.T, dtype)
    h = tf.constant(V1_H_B + contrast * V1_H_C, dtype)
    # OU input noise: d eps = -eps / tau_n dt + sqrt(2 / tau_n) sigma_tilde dB.
    sigma_tilde = z[:, None, :] * np.sqrt(1.0 + _TAU / _TAU_NOISE)

    def drift(k, state):
        x, eps = state
        drive = tf.nn.relu(tf.tensordot(x, W_T, 1) + h + eps)
        return (tf.square(drive) - x) / _TAU, -eps / _TAU_NOISE

    return euler_maruyama(
        drift,
        (x0, tf.zeros_like(x0)),
        _T,
        _DT,
        (None, sigma_tilde * np.sqrt(2.0 / _TAU_NOISE)),
        seed=None if seed is None else split_seed(seed)[1],
        noise=None if noise is None else (None, noise),
        observe=observe,
        initial=initial,
    )


def v1_simulate(z, n_trials: int = 100, contrast: float = 0.0, x0=None, noise=None, seed=None):
    """Euler-Maruyama simulation of the stochastic V1 network (Eq. 68-70).

    Parameters
    ----------
    z : tf.Tensor or array of shape (n, 4)
        Input noise levels ``[sigma_E, sigma_P, sigma_S, sigma_V]``.
    n_trials : int, default=100
        Independent trials per parameter.
    contrast : float, default=0.0
        Stimulus contrast ``c`` in ``h = h_b + c h_c``.
    x0 : tf.Tensor or array of shape (n, n_trials, 4), default=None
        Initial rates in Hz; ``None`` draws them from U[10, 25].
    noise : tf.Tensor or array of shape (T, n, n_trials, 4), default=None
        Standard-normal increments of the OU noise; ``None`` draws them
        (:func:`~sklearn_epi.simulate.gaussian_noise`).
    seed : tf.Tensor of shape (2,), default=None
        Stateless seed of the draws of ``x0`` and ``noise`` left as None;
        ``None`` takes one from TensorFlow's global generator.

    Returns
    -------
    tf.Tensor of shape (T + 1, n, n_trials, 4)
        Rates in Hz at ``t = 0, 0.5, ..., 100`` ms.
    """
    z = _check_z(z)
    _check_options(n_trials, contrast)
    if seed is None and (x0 is None or noise is None):
        seed = _global_seed()
    x0 = _initial_rates(z, n_trials, seed) if x0 is None else tf.cast(x0, z.dtype)

    def record(k, state, path):
        return path.write(k, state[0])

    path = tf.TensorArray(z.dtype, size=_T + 1)
    _, path = _run(z, n_trials, contrast, x0, noise, seed, record, path.write(0, x0))
    return path.stack()


class V1ExcitatoryVariability:
    """Statistic ``z -> s_E`` (n, 1) of the V1 model; see :func:`v1_excitatory_variability`."""

    def __init__(self, n_trials=100, contrast=0.0):
        _check_options(n_trials, contrast)
        self.n_trials = int(n_trials)
        self.contrast = float(contrast)

    def __call__(self, z, x0=None, noise=None, seed=None):
        start = int(round(_T_SS / _DT))

        def moments(k, state, acc):
            # Sums of x_E - x_E(t_ss) over the window: shifting by a value
            # inside the window keeps the variance free of cancellation.
            shift, total, squares = acc
            x_e = state[0][..., 0]
            shift = tf.where(k == start, x_e, shift)
            inside = tf.cast(k >= start, x_e.dtype)
            d = (x_e - shift) * inside
            return shift, total + d, squares + d * d

        zeros = tf.zeros(tf.stack([tf.shape(z)[0], self.n_trials]), _check_z(z).dtype)
        _, (_, total, squares) = _run(
            z, self.n_trials, self.contrast, x0, noise, seed, moments, (zeros, zeros, zeros)
        )
        count = float(_T - start + 1)
        mean = total / count
        var = tf.maximum(squares / count - tf.square(mean), 0.0)
        # The tiny offset keeps the gradient of sqrt finite at zero variance.
        s_e = tf.sqrt(var + tf.constant(1e-12, var.dtype))
        return tf.reduce_mean(s_e, axis=1)[:, None]

    def __repr__(self):
        return f"v1_excitatory_variability(n_trials={self.n_trials}, contrast={self.contrast})"


def v1_excitatory_variability(n_trials: int = 100, contrast: float = 0.0):
    r"""EPI statistic of E-population variability :math:`s_E` (Eq. 77-78).

    Parameters
    ----------
    n_trials : int, default=100
        Noisy trials averaged per parameter.
    contrast : float, default=0.0
        Stimulus contrast :math:`c \in [0, 1]`.

    Returns
    -------
    V1ExcitatoryVariability
        Picklable callable ``z (n, 4) -> s_E (n, 1)`` in Hz; optional
        arguments ``x0`` and ``noise`` fix the random draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.circuits import v1_excitatory_variability
    >>> f = v1_excitatory_variability(n_trials=5)
    >>> f(np.full((2, 4), 0.1)).shape
    TensorShape([2, 1])
    """
    return V1ExcitatoryVariability(n_trials=n_trials, contrast=contrast)
