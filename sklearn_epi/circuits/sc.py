r"""Rapid task switching in a four-population superior colliculus model (Eq. 87-110).

Populations :math:`\mathbf{x} = [x_{LP}, x_{LA}, x_{RP}, x_{RA}]` (left/right
Pro and Anti, Eq. 88) are driven by internal variables (Eq. 87, 89)

.. math:: x_\alpha = \phi(u_\alpha) = \tfrac12 \tanh\frac{u_\alpha - a}{b}
          + \tfrac12, \qquad
          \tau \frac{d\mathbf{u}}{dt} = -\mathbf{u} + W \mathbf{x} + \mathbf{h}
          + d\mathbf{B},

with :math:`a = 0.05`, :math:`b = 0.5`, :math:`\tau = 0.09` s, Euler steps of
24 ms over a 1.8 s trial and noise of standard deviation 0.2 per step. The
connectivity (Eq. 90) has self, vertical, horizontal and diagonal weights,

.. math:: W = \begin{bmatrix} sW & vW & hW & dW \\ vW & sW & dW & hW \\
          hW & dW & sW & vW \\ dW & hW & vW & sW \end{bmatrix},
          \qquad \mathbf{z} = [sW, vW, hW, dW] \in [-5, 5]^4 .

The input (Eq. 91-97) sums a constant 0.75 to all, a Pro bias 0.5 to
:math:`[1, 0, 1, 0]`, a rule cue 0.6 to the Pro (``[1, 0, 1, 0]``) or Anti
(``[0, 1, 0, 1]``) populations for :math:`t \le 1.2` s, a choice input 0.25
to all for :math:`t > 1.2` s and a left light 0.5 to ``[1, 1, 0, 0]`` for
:math:`1.2 < t < 1.5` s. Accuracies on left-stimulus trials (Eq. 98-102)
average the smoothed decision :math:`\Theta(x) = \mathrm{sigmoid}(100 x)` over
200 trials:

.. math:: p_P = \mathbb{E}\,\Theta[x_{LP}(1.8) - x_{RP}(1.8)], \qquad
          p_A = \mathbb{E}\,\Theta[x_{RP}(1.8) - x_{LP}(1.8)] .

Optogenetic silencing with strength :math:`\gamma` (Eq. 110) scales the
activity to :math:`x_\alpha = (1 - \gamma)\phi(u_\alpha)` during the delay
period :math:`0.8 < t < 1.2` s. The emergent property of rapid task switching
(Eq. 9, 103-105) is :math:`\mathbb{E}[p_P, p_A] = [0.75, 0.75]`, variances
:math:`[0.075^2, 0.075^2]`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorflow as tf

from ..simulate import euler_maruyama

__all__ = [
    "SCTaskAccuracy",
    "sc_task_accuracy",
    "sc_simulate",
    "sc_connectivity",
    "SC_PARAM_NAMES",
    "SC_BOUNDS",
    "SC_MU",
    "SC_SIGMA2",
    "SC_EIGENMODES",
]

SC_PARAM_NAMES = ("sW", "vW", "hW", "dW")
#: The paper's support, every weight in [-5, 5].
SC_BOUNDS = dict.fromkeys(SC_PARAM_NAMES, (-5.0, 5.0))
#: Mean Pro and Anti accuracy (Eq. 104).
SC_MU = np.array([0.75, 0.75])
#: Variances of Pro and Anti accuracy (Eq. 105).
SC_SIGMA2 = np.array([0.075**2, 0.075**2])
#: Unit parameter directions v_a that raise one connectivity eigenvalue
#: (all, side, task, diag; Eq. 106-109), rows in z = [sW, vW, hW, dW] order.
SC_EIGENMODES = 0.5 * np.array(
    [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, -1.0, 1.0]]
)

_A, _B, _TAU = 0.05, 0.5, 0.09
_DT, _T_TOTAL = 0.024, 1.8
_SIGMA = 0.2
_X0 = 0.1  # initial activity of every population
_I_CONST, _I_PBIAS, _I_RULE, _I_CHOICE, _I_LIGHT = 0.75, 0.5, 0.6, 0.25, 0.5
_DELAY = (0.8, 1.2)
_BETA_THETA = 100.0


def _n_steps():
    return int(round(_T_TOTAL / _DT))


def _inputs():
    """Input h(t_k) of shape (K, 2, 4) for the Pro-left and Anti-left trials."""
    t = np.arange(_n_steps()) * _DT
    base = _I_CONST + _I_PBIAS * np.array([1.0, 0.0, 1.0, 0.0])
    rules = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])  # Pro, Anti
    cue = _I_RULE * (t <= 1.2)[:, None, None] * rules
    choice = _I_CHOICE * (t > 1.2)[:, None, None] * np.ones((1, 2, 4))
    light = _I_LIGHT * ((t > 1.2) & (t < 1.5))[:, None, None] * np.array([1.0, 1.0, 0.0, 0.0])
    return base + cue + choice + light


def sc_connectivity(z):
    """Connectivity matrices of Eq. 90, shape (n, 4, 4), from ``z = [sW, vW, hW, dW]``."""
    z = _check_z(z)
    s, v, h, d = tf.unstack(z, axis=1)
    rows = [[s, v, h, d], [v, s, d, h], [h, d, s, v], [d, h, v, s]]
    return tf.stack([tf.stack(r, axis=-1) for r in rows], axis=1)


def _check_z(z):
    z = tf.convert_to_tensor(z)
    if not z.dtype.is_floating:
        z = tf.cast(z, tf.float32)
    if z.shape.rank != 2 or z.shape[-1] != 4:
        raise ValueError(f"z must have shape (n, 4) ([sW, vW, hW, dW]); got {tuple(z.shape)}")
    return z


def _check_options(n_trials, opto_strength):
    if not isinstance(n_trials, Integral) or isinstance(n_trials, bool):
        raise TypeError(f"n_trials must be an integer; got {n_trials!r}")
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1; got n_trials = {n_trials}")
    if not isinstance(opto_strength, Real) or isinstance(opto_strength, bool):
        raise TypeError(f"opto_strength must be a number in [0, 1]; got {opto_strength!r}")
    if not 0.0 <= opto_strength <= 1.0:
        raise ValueError(f"opto_strength must be in [0, 1]; got opto_strength = {opto_strength}")


def _run(z, n_trials, opto_strength, noise, seed, observe, initial):
    """Euler steps of Eq. 87-97 and 110 from rest; see :func:`sc_simulate`."""
    z = _check_z(z)
    _check_options(n_trials, opto_strength)
    dtype = z.dtype
    n = tf.shape(z)[0]
    # In v = (u - a) / b, x = g (tanh(v) + 1) / 2 and the recurrent input
    # W x = g (W' tanh(v) + c) with W' = W / 2b, c = W' 1: fewer operations
    # per step than Eq. 87 as written, the same trajectory.
    W = sc_connectivity(z) / (2.0 * _B)
    W_T = tf.linalg.matrix_transpose(W)[:, None]  # (n, 1, 4, 4)
    c = tf.reduce_sum(W, axis=2)[:, None, None, :]  # (n, 1, 1, 4)
    t = np.arange(_n_steps() + 1) * _DT
    silenced = (t > _DELAY[0]) & (t < _DELAY[1])
    gain = tf.constant(np.where(silenced, 1.0 - opto_strength, 1.0), dtype)
    h = tf.constant((_inputs()[:, None, :, None, :] - _A) / _B, dtype)  # (K, 1, 2, 1, 4)

    def drift(k, v):
        # The gain scales the small W' and c, not the (n, 2, trials, 4) state.
        g = gain[k]
        return (tf.matmul(tf.tanh(v), g * W_T) + (g * c + h[k]) - v) / _TAU

    x0 = tf.fill(tf.stack([n, 2, n_trials, 4]), tf.constant(_X0, dtype))
    v0 = tf.atanh(2.0 * x0 - 1.0)
    # u + dt / tau (... + sigma xi): a per-step noise of dt / tau * sigma in u.
    out = euler_maruyama(
        drift,
        v0,
        _n_steps(),
        _DT,
        _SIGMA * np.sqrt(_DT) / (_TAU * _B),
        seed=seed,
        noise=noise,
        observe=observe,
        initial=initial,
    )
    u, acc = out if observe is not None else (out, None)
    return gain[-1] * _activity(u), acc


def _activity(v):
    """x = phi(u) of Eq. 89 in terms of v = (u - a) / b."""
    return 0.5 * tf.tanh(v) + 0.5


def sc_simulate(z, n_trials: int = 200, opto_strength: float = 0.0, noise=None, seed=None):
    """Simulate Pro-left and Anti-left trials (Eq. 87-97, 110).

    Parameters
    ----------
    z : tf.Tensor or array of shape (n, 4)
        ``[sW, vW, hW, dW]``.
    n_trials : int, default=200
        Trials per condition.
    opto_strength : float, default=0.0
        Delay-period silencing strength :math:`\\gamma` (Eq. 110).
    noise : tf.Tensor or array of shape (K, n, 2, n_trials, 4), default=None
        Standard-normal noise for the ``K = 75`` steps; ``None`` draws it
        (:func:`~sklearn_epi.simulate.gaussian_noise`).
    seed : tf.Tensor of shape (2,), default=None
        Stateless seed of the draws when ``noise`` is None; ``None`` takes
        one from TensorFlow's global generator.

    Returns
    -------
    tf.Tensor of shape (K + 1, n, 2, n_trials, 4)
        Activities ``x`` at ``t = 0, 0.024, ..., 1.8`` s; axis 2 is
        (Pro, Anti), the last axis ``[LP, LA, RP, RA]``.
    """
    z = _check_z(z)
    _check_options(n_trials, opto_strength)
    K = _n_steps()
    t = np.arange(K + 1) * _DT
    silenced = (t > _DELAY[0]) & (t < _DELAY[1])
    gain = tf.constant(np.where(silenced, 1.0 - opto_strength, 1.0), z.dtype)

    def record(k, v, path):
        return path.write(k, gain[k] * _activity(v))

    x0 = tf.fill(tf.stack([tf.shape(z)[0], 2, n_trials, 4]), tf.constant(_X0, z.dtype))
    path = tf.TensorArray(z.dtype, size=K + 1).write(0, x0)
    _, path = _run(z, n_trials, opto_strength, noise, seed, record, path)
    return path.stack()


class SCTaskAccuracy:
    """Statistic ``z -> [p_P, p_A]`` (n, 2) of the SC model; see :func:`sc_task_accuracy`."""

    def __init__(self, n_trials=200, opto_strength=0.0):
        _check_options(n_trials, opto_strength)
        self.n_trials = int(n_trials)
        self.opto_strength = float(opto_strength)

    def __call__(self, z, noise=None, seed=None):
        x_end, _ = _run(z, self.n_trials, self.opto_strength, noise, seed, None, None)
        diff = x_end[..., 0] - x_end[..., 2]  # x_LP - x_RP, (n, 2, trials)
        pro = tf.reduce_mean(tf.sigmoid(_BETA_THETA * diff[:, 0]), axis=1)
        anti = tf.reduce_mean(tf.sigmoid(-_BETA_THETA * diff[:, 1]), axis=1)
        return tf.stack([pro, anti], axis=1)

    def __repr__(self):
        return f"sc_task_accuracy(n_trials={self.n_trials}, opto_strength={self.opto_strength})"


def sc_task_accuracy(n_trials: int = 200, opto_strength: float = 0.0) -> SCTaskAccuracy:
    r"""EPI statistic of Pro and Anti accuracy in the SC model (Eq. 98-103).

    Parameters
    ----------
    n_trials : int, default=200
        Noisy trials per task that each accuracy averages.
    opto_strength : float, default=0.0
        Optogenetic strength :math:`\gamma \in [0, 1]` of delay-period
        silencing (Eq. 110); 0 is the unperturbed model.

    Returns
    -------
    SCTaskAccuracy
        Picklable callable ``z (n, 4) -> [p_P, p_A] (n, 2)``; the optional
        second argument ``noise`` fixes the noise draws.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.circuits import sc_task_accuracy
    >>> f = sc_task_accuracy(n_trials=10)
    >>> f(np.zeros((3, 4))).shape
    TensorShape([3, 2])
    """
    return SCTaskAccuracy(n_trials=n_trials, opto_strength=opto_strength)
