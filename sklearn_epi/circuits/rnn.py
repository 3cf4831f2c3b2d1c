r"""Stable amplification in rank-2 recurrent networks (paper, Eq. 4-5 and 62-66).

A network of :math:`N` neurons has dynamics (Eq. 62)

.. math:: \tau \dot{\mathbf{x}} = -\mathbf{x} + W \mathbf{x}, \qquad
          W = U V^\top,

with :math:`U = [\mathbf{U}_1\ \mathbf{U}_2] + g \chi^{(U)}` and
:math:`V = [\mathbf{V}_1\ \mathbf{V}_2] + g \chi^{(V)}`, where
:math:`\chi^{(U)}_{ij}, \chi^{(V)}_{ij} \sim \mathcal{N}(0, 1)` are drawn once
and then held fixed. The parameters are
:math:`\mathbf{z} = [\mathbf{U}_1, \mathbf{U}_2, \mathbf{V}_1, \mathbf{V}_2]
\in [-1, 1]^{4N}`.

The network amplifies stably if and only if (Bondanelli and Ostojic, 2020)
:math:`\mathrm{real}(\lambda_1) < 1`, with :math:`\lambda_1` the eigenvalue of
:math:`W` of greatest real part, and :math:`\lambda^s_1 > 1`, with
:math:`\lambda^s_1` the largest eigenvalue of :math:`W^s = (W + W^\top) / 2`.
The nonzero eigenvalues of the rank-2 :math:`W` are those of the
rank-reduced :math:`W_r = V^\top U` (2 x 2), in closed form (Eq. 66)

.. math:: \lambda_\pm = \frac{\mathrm{Tr}(W_r) \pm
          \sqrt{\mathrm{Tr}(W_r)^2 - 4 \mathrm{Det}(W_r)}}{2} .

The emergent property (Eq. 5, 63-65) is
:math:`\mathbb{E}[\mathrm{real}(\lambda_1), \lambda^s_1] = [0.5, 1.5]` with
variances :math:`[0.25^2, 0.25^2]`.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import tensorflow as tf
from sklearn.utils import check_random_state

__all__ = [
    "RNNStableAmplification",
    "rnn_stable_amplification",
    "rnn_param_names",
    "rnn_bounds",
    "RNN_MU",
    "RNN_SIGMA2",
]

#: Means of ``[real(lambda_1), lambda_1^s]`` (Eq. 64).
RNN_MU = np.array([0.5, 1.5])
#: Variances of ``[real(lambda_1), lambda_1^s]`` (Eq. 65).
RNN_SIGMA2 = np.array([0.25**2, 0.25**2])


def _check_N(N):
    if not isinstance(N, Integral) or isinstance(N, bool):
        raise TypeError(f"N must be an integer number of neurons; got {N!r}")
    if N < 2:
        raise ValueError(f"N must be >= 2 (the connectivity has rank 2); got N = {N}")
    return int(N)


def rnn_param_names(N: int) -> tuple[str, ...]:
    """Names of the 4N parameters: ``U1_0``-``U1_{N-1}``, then ``U2_*``, ``V1_*``, ``V2_*``."""
    N = _check_N(N)
    return tuple(f"{vec}_{i}" for vec in ("U1", "U2", "V1", "V2") for i in range(N))


def rnn_bounds(N: int) -> dict[str, tuple[float, float]]:
    """The paper's support, every entry of U1, U2, V1, V2 in [-1, 1]."""
    return dict.fromkeys(rnn_param_names(N), (-1.0, 1.0))


class RNNStableAmplification:
    r"""Statistic ``z -> [real(lambda_1), lambda_1^s]`` of a rank-2 RNN.

    Instances are plain picklable objects (the random part is stored as
    arrays), so an :class:`~sklearn_epi.EPIEstimator` fitted with one can be
    saved with :func:`joblib.dump`. Build them with
    :func:`rnn_stable_amplification`.

    Parameters
    ----------
    N : int
        Number of neurons, >= 2.
    g : float, default=0.01
        Strength of the fixed random part of the connectivity, >= 0.
    random_state : int, RandomState instance or None, default=0
        Draws :math:`\chi^{(U)}` and :math:`\chi^{(V)}` once.

    Attributes
    ----------
    chi_U, chi_V : ndarray of shape (N, 2)
        The fixed standard-normal draws.
    """

    def __init__(self, N: int, g: float = 0.01, random_state=0):
        self.N = _check_N(N)
        if not isinstance(g, Real) or isinstance(g, bool):
            raise TypeError(f"g must be a real number; got {g!r}")
        if not (np.isfinite(g) and g >= 0):
            raise ValueError(f"g must be finite and >= 0; got g = {g}")
        self.g = float(g)
        rng = check_random_state(random_state)
        self.chi_U = rng.standard_normal((self.N, 2))
        self.chi_V = rng.standard_normal((self.N, 2))

    def factors(self, z):
        """Connectivity factors ``U, V`` of shape (n, N, 2) (``W = U V^T``)."""
        z = tf.convert_to_tensor(z)
        if z.shape.rank != 2 or z.shape[-1] != 4 * self.N:
            raise ValueError(
                f"z must have shape (n, {4 * self.N}) = (n, 4N) for N = {self.N}; "
                f"got {tuple(z.shape)}"
            )
        n = tf.shape(z)[0]
        # z = [U1, U2, V1, V2]: (n, 4, N) -> columns of U and of V.
        parts = tf.transpose(tf.reshape(z, (n, 4, self.N)), (0, 2, 1))
        U = parts[..., :2] + tf.constant(self.g * self.chi_U, z.dtype)
        V = parts[..., 2:] + tf.constant(self.g * self.chi_V, z.dtype)
        return U, V

    def connectivity(self, z):
        """Connectivity ``W = U V^T``, shape (n, N, N)."""
        U, V = self.factors(z)
        return tf.matmul(U, V, transpose_b=True)

    def __call__(self, z):
        """Return ``[real(lambda_1), lambda_1^s]``, shape (n, 2)."""
        return self._eigenvalues(*self.factors(z))

    def _eigenvalues(self, U, V):
        """``[real(lambda_1), lambda_1^s]`` of ``W = U V^T`` from its factors, shape (n, 2)."""
        Wr = tf.matmul(V, U, transpose_a=True)  # (n, 2, 2), Eq. 66
        half_trace = 0.5 * (Wr[:, 0, 0] + Wr[:, 1, 1])
        det = Wr[:, 0, 0] * Wr[:, 1, 1] - Wr[:, 0, 1] * Wr[:, 1, 0]
        disc = tf.square(half_trace) - det
        # For a complex pair the real part is the half trace. Feed sqrt a
        # positive value where its branch is unused: zero gradient, never NaN.
        root = tf.sqrt(tf.where(disc > 0, disc, tf.ones_like(disc)))
        real_lambda1 = half_trace + tf.where(disc > 0, root, tf.zeros_like(disc))
        return tf.stack([real_lambda1, self._max_symmetric_eigenvalue(U, V)], axis=1)

    def _max_symmetric_eigenvalue(self, U, V):
        if self.N <= 4:
            W = tf.matmul(U, V, transpose_b=True)
            return tf.linalg.eigvalsh(0.5 * (W + tf.linalg.matrix_transpose(W)))[:, -1]
        # W^s = A B A^T with A = [U V] (N x 4) and B = [[0, I], [I, 0]] / 2, so
        # its nonzero eigenvalues are those of L^T B L with G = A^T A = L L^T
        # (similar to B G). B is indefinite (two eigenvalues +-1/2), hence the
        # largest eigenvalue is positive and dominates the N - 4 zeros. A 4x4
        # problem instead of an NxN one, for any N.
        A = tf.concat([U, V], axis=-1)
        L = tf.linalg.cholesky(tf.matmul(A, A, transpose_a=True))
        # B L swaps the row blocks of L.
        BL = 0.5 * tf.concat([L[:, 2:, :], L[:, :2, :]], axis=1)
        M = tf.matmul(L, BL, transpose_a=True)
        return tf.linalg.eigvalsh(0.5 * (M + tf.linalg.matrix_transpose(M)))[:, -1]

    def __repr__(self):
        return f"rnn_stable_amplification(N={self.N}, g={self.g})"


def rnn_stable_amplification(N: int, g: float = 0.01, random_state=0) -> RNNStableAmplification:
    r"""EPI statistic of stable amplification for a rank-2 RNN of N neurons.

    Parameters
    ----------
    N : int
        Number of neurons, >= 2; the parameter dimension is ``4 N``.
    g : float, default=0.01
        Strength of the fixed random connectivity :math:`g \chi` (the paper
        uses 0.01 and 0.1).
    random_state : int, RandomState instance or None, default=0
        Draws the fixed random part once.

    Returns
    -------
    RNNStableAmplification
        Callable mapping ``z`` of shape (n, 4N) to a tensor of shape (n, 2):
        ``[real(lambda_1), lambda_1^s]`` (Eq. 63), in ``z``'s dtype.
        ``real(lambda_1)`` is :math:`\mathrm{real}(\lambda_+)` of Eq. 66; for
        ``N > 2`` the other ``N - 2`` eigenvalues of ``W`` are zero.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.circuits import rnn_stable_amplification, RNN_MU
    >>> f = rnn_stable_amplification(N=2, g=0.0)
    >>> z = np.array([[1.0, 0.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0]])  # W = [[.5, 1], [0, 0]]
    >>> np.round(f(z).numpy(), 4)
    array([[0.5  , 0.809]])
    """
    return RNNStableAmplification(N, g=g, random_state=random_state)
