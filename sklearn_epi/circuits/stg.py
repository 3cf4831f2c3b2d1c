r"""Hub frequency in a five-neuron stomatogastric ganglion model (paper, Eq. 41-61).

Two fast neurons (f1, f2) and two slow neurons (s1, s2) form reciprocally
inhibitory pairs (synaptic conductance :math:`g_{synB} = 5` nS); the hub
neuron is electrically coupled to f2 and s2 (:math:`g_{el}`) and inhibited by
f1 and s1 (:math:`g_{synA}`) (Gutierrez et al., 2013). The parameters are
:math:`\mathbf{z} = [g_{el}, g_{synA}]` in nS. Each membrane potential obeys
(Eq. 41)

.. math:: C_m \frac{dx_\alpha}{dt} = -[h_{leak} + h_{Ca} + h_K + h_{hyp}
          + h_{elec} + h_{syn}] + dB,

with :math:`h_{leak} = g_{leak}(x_\alpha - V_{leak})`,
:math:`h_{elec} = g_{el}(x_\alpha^{post} - x_\alpha^{pre})`,
:math:`h_{syn} = g_{syn} S_\infty^{pre}(x_\alpha^{post} - V_{syn})`,
:math:`h_{Ca} = g_{Ca} M_\infty (x_\alpha - V_{Ca})`,
:math:`h_K = g_K N (x_\alpha - V_K)`, :math:`h_{hyp} = g_h H (x_\alpha - V_{hyp})`
(Eq. 42-47) and gating (Eq. 48-55)

.. math:: M_\infty = \tfrac12\left(1 + \tanh\tfrac{x - v_1}{v_2}\right), \quad
          \frac{dN}{dt} = \lambda_N (N_\infty - N), \quad
          N_\infty = \tfrac12\left(1 + \tanh\tfrac{x - v_3}{v_4}\right), \quad
          \lambda_N = \phi_N \cosh\tfrac{x - v_3}{2 v_4},

.. math:: \frac{dH}{dt} = \frac{H_\infty - H}{\tau_h}, \quad
          H_\infty = \frac{1}{1 + e^{(x + v_5)/v_6}}, \quad
          \tau_h = 272 + \frac{1499}{1 + e^{(v_7 - x)/v_8}}\ \mathrm{ms}, \quad
          S_\infty = \frac{1}{1 + e^{(v_{th} - x)/v_9}} .

The model is integrated with Euler steps of ``dt = 25`` ms for ``T = 300``
steps, with a current noise of standard deviation ``sigma_I = 1e-12`` A added
at every step. Hub frequency (Eq. 56-58): drop the first 20 samples,
rectify the hub potential (in volts), smooth it with a 20-sample moving
average, remove its mean, project on complex exponentials
:math:`\Phi = [0, 0.01, \ldots, 1]` Hz and take the soft-argmax

.. math:: \psi = \mathrm{softmax}(\beta_\psi |X_{hub}|), \qquad
          \omega_{hub} = 0.01\, \psi^\top [0, 1, \ldots, 100]\ \mathrm{Hz},

with :math:`\beta_\psi = 100`. The emergent property of intermediate hub
frequency (Eq. 2-3, 59-61) is :math:`\mathbb{E}[\omega_{hub}] = 0.55` Hz,
:math:`\mathrm{Var}[\omega_{hub}] = 0.025^2` Hz² on the support
:math:`[4, 8] \times [0.01, 4]` nS.

.. rubric:: Where every constant comes from

* Printed in the paper (Methods, "STG model", "Hub frequency calculation"):
  :math:`C_m`, every reversal potential, :math:`g_{leak}`, the per-type
  :math:`g_{Ca}, g_K, g_h`, :math:`v_1 \ldots v_9`, :math:`v_{th}`, the noise
  level, ``dt``, ``T``, the frequency basis, the 20-sample window and
  discarded transient, :math:`\beta_\psi`, the support and the property.
* From the authors' public model code (not printed): :math:`g_{synB} = 5`
  nS, :math:`\phi_N = 2 \times 10^{-3}` /ms, the form of :math:`\tau_h`
  (Eq. 54 lost its signs in the published text) and the initial state of
  every neuron (``_V0``, ``_N0``, ``_H0``).
* Checked (``tests/test_circuits.py``): at :math:`g_{el} = 4.5` nS,
  :math:`g_{synA} = 3` nS (Figure 1B) the fast neurons spike at 0.68 Hz and
  the slow ones at 0.33-0.35 Hz, the two rhythms the paper names (".35Hz"
  and ".68Hz", with the labels fast and slow the other way round there;
  0.68 Hz is the fast one here as in Gutierrez et al.).
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorflow as tf

from ._random import standard_normal

__all__ = [
    "STGHubFrequency",
    "stg_hub_frequency",
    "stg_simulate",
    "STG_PARAM_NAMES",
    "STG_BOUNDS",
    "STG_MU",
    "STG_SIGMA2",
    "STG_NEURONS",
    "hub_frequency",
]

STG_PARAM_NAMES = ("g_el", "g_synA")
#: The paper's support in nS (g_synA >= 0.01 for numerical stability).
STG_BOUNDS = {"g_el": (4.0, 8.0), "g_synA": (0.01, 4.0)}
#: Mean hub frequency in Hz (Eq. 60).
STG_MU = np.array([0.55])
#: Variance of the hub frequency in Hz^2 (Eq. 61).
STG_SIGMA2 = np.array([0.025**2])
STG_NEURONS = ("f1", "f2", "hub", "s1", "s2")

# Units: mV, ms, uS, nF, nA (uS * mV = nA; nA / nF = mV / ms).
_C_M = 1.0  # nF
_G_LEAK = 1e-4  # uS
_G_SYN_B = 5e-3  # uS (5 nS)
_V_LEAK, _V_CA, _V_K, _V_HYP, _V_SYN = -40.0, 100.0, -80.0, -20.0, -75.0
_V1, _V2, _V3, _V4 = 0.0, 20.0, 0.0, 15.0
_V5, _V6, _V7, _V8, _V9, _V_TH = 78.3, 10.5, -42.2, 87.3, 5.0, -25.0
_PHI_N = 2e-3  # 1/ms
# Per-neuron conductances in uS, order f1, f2, hub, s1, s2.
_G_CA = np.array([1.9e-2, 1.9e-2, 1.7e-2, 8.5e-3, 8.5e-3])
_G_K = np.array([3.9e-2, 3.9e-2, 1.9e-2, 1.5e-2, 1.5e-2])
_G_H = np.array([2.5e-2, 2.5e-2, 8.0e-3, 1.0e-2, 1.0e-2])
# Initial state [V (mV), N, H] of the five neurons.
_V0 = np.array([-41.69771, -43.19491, 8.83992, -68.79824, 30.48103])
_N0 = np.array([0.00151316, 0.19784773, 0.56514935, 0.12214069, 0.35290397])
_H0 = np.array([0.08614699, 0.04938177, 0.05568701, 0.07007949, 0.05790969])

_N_DISCARD = 20  # initial transient samples ignored
_WINDOW = 20  # moving-average length (spike extraction low-pass)
_FREQS = np.linspace(0.0, 1.0, 101)  # Eq. 56, Hz


def _check_positive(value, name, integer=False, allow_zero=False):
    kind = Integral if integer else Real
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a number'}; got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}; got {name} = {value}")
    return value


def _check_z(z, D=2):
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_floating:
        z = tf.cast(z, tf.float32)
    if z.shape.rank != 2 or z.shape[-1] != D:
        raise ValueError(f"z must have shape (n, {D}) ([g_el, g_synA] in nS); got {tuple(z.shape)}")
    return z


def stg_simulate(z, noise=None, dt: float = 0.025, T: int = 300, sigma_I: float = 1e-12, seed=None):
    """Euler simulation of the five membrane potentials (Eq. 41-55).

    Parameters
    ----------
    z : tf.Tensor or array of shape (n, 2)
        ``[g_el, g_synA]`` in nS.
    noise : tf.Tensor or array of shape (n, T, 5), default=None
        Standard-normal draws for the current noise; ``None`` draws them.
    dt : float, default=0.025
        Euler step in seconds.
    T : int, default=300
        Number of steps.
    sigma_I : float, default=1e-12
        Standard deviation of the current noise in amperes (0 for a
        deterministic run).
    seed : tf.Tensor of shape (2,), default=None
        Stateless seed of the noise draws (``noise=None`` only); ``None``
        uses TensorFlow's global generator.

    Returns
    -------
    tf.Tensor of shape (n, T + 1, 5)
        Membrane potentials in mV, neurons ordered as ``STG_NEURONS``.
    """
    z = _check_z(z)
    _check_positive(dt, "dt")
    _check_positive(T, "T", integer=True)
    _check_positive(sigma_I, "sigma_I", allow_zero=True)
    dtype = z.dtype
    n = tf.shape(z)[0]
    if noise is None:
        noise = standard_normal((n, T, 5), dtype, seed)
    noise = tf.cast(noise, dtype)
    dt_ms = dt * 1e3
    sigma_nA = sigma_I * 1e9
    c = lambda a: tf.constant(a, dtype)  # noqa: E731
    g_el = 1e-3 * z[:, :1]  # nS -> uS, shape (n, 1)
    g_synA = 1e-3 * z[:, 1:2]
    g_ca, g_k, g_h = c(_G_CA), c(_G_K), c(_G_H)
    # Electrical coupling matrix (Laplacian of f2 - hub - s2): h_elec = g_el * (L x).
    lap = c(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, -1.0, 0.0, 0.0],
            [0.0, -1.0, 2.0, 0.0, -1.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, -1.0, 0.0, 1.0],
        ]
    )
    # Synaptic input weights: presynaptic S -> postsynaptic conductance.
    syn_b = c(
        [
            [0.0, 1.0, 0.0, 0.0, 0.0],
            [1.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [0.0, 0.0, 0.0, 1.0, 0.0],
        ]
    )
    syn_a = c([[0.0] * 5, [0.0] * 5, [1.0, 0.0, 0.0, 1.0, 0.0], [0.0] * 5, [0.0] * 5])

    def step(state, xi):
        x, N, H = state
        m_inf = 0.5 * (1.0 + tf.tanh((x - _V1) / _V2))
        n_inf = 0.5 * (1.0 + tf.tanh((x - _V3) / _V4))
        h_inf = tf.sigmoid(-(x + _V5) / _V6)
        s_inf = tf.sigmoid((x - _V_TH) / _V9)
        lam_n = _PHI_N * tf.cosh((x - _V3) / (2.0 * _V4))
        tau_h = 272.0 + 1499.0 * tf.sigmoid((x - _V7) / _V8)
        g_syn = _G_SYN_B * tf.matmul(s_inf, syn_b, transpose_b=True) + g_synA * tf.matmul(
            s_inf, syn_a, transpose_b=True
        )
        current = (
            _G_LEAK * (x - _V_LEAK)
            + g_ca * m_inf * (x - _V_CA)
            + g_k * N * (x - _V_K)
            + g_h * H * (x - _V_HYP)
            + g_el * tf.matmul(x, lap, transpose_b=True)
            + g_syn * (x - _V_SYN)
        )
        x_new = x + dt_ms * (-current + sigma_nA * xi) / _C_M
        N_new = N + dt_ms * lam_n * (n_inf - N)
        H_new = H + dt_ms * (h_inf - H) / tau_h
        return x_new, N_new, H_new

    ones = tf.ones((n, 1), dtype)
    init = (ones * c(_V0), ones * c(_N0), ones * c(_H0))
    xs = tf.scan(step, tf.transpose(noise, (1, 0, 2)), initializer=init)[0]
    return tf.transpose(tf.concat([init[0][None], xs], axis=0), (1, 0, 2))


def hub_frequency(v, dt: float = 0.025, beta: float = 100.0):
    r"""Soft-argmax frequency (Hz) of membrane potentials ``v`` (mV), Eq. 56-58.

    Parameters
    ----------
    v : tf.Tensor of shape (n, T + 1)
        Membrane potential traces in mV.
    dt : float, default=0.025
        Sampling step in seconds.
    beta : float, default=100.0
        Soft-argmax temperature :math:`\beta_\psi` (spectrum of the signal in
        volts).

    Returns
    -------
    tf.Tensor of shape (n,)
    """
    dtype = v.dtype
    r = tf.nn.relu(1e-3 * v[:, _N_DISCARD:])  # volts
    csum = tf.cumsum(tf.pad(r, [[0, 0], [1, 0]]), axis=1)
    smooth = (csum[:, _WINDOW:] - csum[:, :-_WINDOW]) / _WINDOW
    smooth = smooth - tf.reduce_mean(smooth, axis=1, keepdims=True)
    L = int(smooth.shape[1])
    phase = 2.0 * np.pi * np.outer(np.arange(L) * dt, _FREQS)
    re = tf.matmul(smooth, tf.constant(np.cos(phase), dtype))
    im = tf.matmul(smooth, tf.constant(np.sin(phase), dtype))
    modulus = tf.sqrt(re**2 + im**2 + tf.constant(1e-20, dtype))
    psi = tf.nn.softmax(beta * modulus, axis=1)
    return tf.reduce_sum(psi * tf.constant(_FREQS, dtype), axis=1)


class STGHubFrequency:
    """Statistic ``z -> omega_hub`` (n, 1) of the STG model; see :func:`stg_hub_frequency`."""

    def __init__(self, dt=0.025, T=300, sigma_I=1e-12, beta=100.0):
        self.dt = _check_positive(dt, "dt")
        self.T = _check_positive(T, "T", integer=True)
        if T <= _N_DISCARD + _WINDOW:
            raise ValueError(f"T must be > {_N_DISCARD + _WINDOW} steps; got T = {T}")
        self.sigma_I = _check_positive(sigma_I, "sigma_I", allow_zero=True)
        self.beta = _check_positive(beta, "beta")

    def __call__(self, z, noise=None, seed=None):
        v = stg_simulate(z, noise, dt=self.dt, T=self.T, sigma_I=self.sigma_I, seed=seed)
        return hub_frequency(v[:, :, 2], dt=self.dt, beta=self.beta)[:, None]

    def __repr__(self):
        return (
            f"stg_hub_frequency(dt={self.dt}, T={self.T}, sigma_I={self.sigma_I}, "
            f"beta={self.beta})"
        )


def stg_hub_frequency(
    dt: float = 0.025, T: int = 300, sigma_I: float = 1e-12, beta: float = 100.0
) -> STGHubFrequency:
    r"""EPI statistic of hub-neuron frequency in the STG model (Eq. 59).

    Parameters
    ----------
    dt : float, default=0.025
        Euler step in seconds.
    T : int, default=300
        Simulation steps (the first 20 samples are discarded).
    sigma_I : float, default=1e-12
        Current noise standard deviation in A; one noisy trial per ``z``.
    beta : float, default=100.0
        Soft-argmax temperature (Eq. 57).

    Returns
    -------
    STGHubFrequency
        Picklable callable ``z (n, 2) -> omega_hub (n, 1)`` in Hz; the
        optional second argument ``noise`` (n, T, 5) fixes the noise draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.circuits import stg_hub_frequency
    >>> f = stg_hub_frequency(sigma_I=0.0)
    >>> f(np.array([[4.5, 3.0]])).shape
    TensorShape([1, 1])
    """
    return STGHubFrequency(dt=dt, T=T, sigma_I=sigma_I, beta=beta)
