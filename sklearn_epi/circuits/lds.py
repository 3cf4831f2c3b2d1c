r"""Oscillating 2D linear dynamical system (paper, "Example: 2D LDS").

The model is :math:`\tau \dot x = A x` with
:math:`A = [[a_{11}, a_{12}], [a_{21}, a_{22}]]` and :math:`\tau = 1` s. The
statistic is the real and imaginary part of the primary eigenvalue
:math:`\lambda_1` (Eq. 28), from the quadratic formula (Eq. 31):

.. math:: \lambda = \frac{a_{11} + a_{22}}{2\tau} \pm
          \sqrt{\left(\frac{a_{11} + a_{22}}{2\tau}\right)^2
          - \frac{a_{11} a_{22} - a_{12} a_{21}}{\tau^2}} .

The emergent property of a band of systems oscillating near 1 Hz (Eq. 29) is
``mu = [0, 2 pi]``, ``sigma2 = [0.25**2, (pi / 5)**2]`` on the support
:math:`a_{ij} \in [-10, 10]`.
"""

import numpy as np
import tensorflow as tf

__all__ = ["lds_eigenvalues", "LDS_PARAM_NAMES", "LDS_BOUNDS", "LDS_MU", "LDS_SIGMA2"]

LDS_PARAM_NAMES = ("a11", "a12", "a21", "a22")
#: The paper's support, a_ij in [-10, 10].
LDS_BOUNDS = dict.fromkeys(LDS_PARAM_NAMES, (-10.0, 10.0))
#: Means of [real(lambda_1), imag(lambda_1)] (Eq. 29).
LDS_MU = np.array([0.0, 2 * np.pi])
#: Variances of [real(lambda_1), imag(lambda_1)] (Eq. 29).
LDS_SIGMA2 = np.array([0.25**2, (np.pi / 5) ** 2])


def lds_eigenvalues(z, tau: float = 1.0):
    r"""Real and imaginary part of the primary eigenvalue of ``A / tau``.

    :math:`\lambda_1` is the eigenvalue of greatest real part when both are
    real, and the one with positive imaginary part for a complex pair.

    Parameters
    ----------
    z : tf.Tensor of shape (n, 4)
        Rows ``[a11, a12, a21, a22]``.
    tau : float, default=1.0
        Time constant in seconds.

    Returns
    -------
    tf.Tensor of shape (n, 2)
        Columns ``[real(lambda_1), imag(lambda_1)]``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.circuits import lds_eigenvalues
    >>> A = np.array([[0.0, -2 * np.pi, 2 * np.pi, 0.0]])  # rotation at 1 Hz
    >>> np.round(lds_eigenvalues(A).numpy(), 4)
    array([[0.    , 6.2832]])
    """
    z = tf.convert_to_tensor(z)
    a11, a12, a21, a22 = tf.unstack(z / tau, axis=1)
    half_trace = 0.5 * (a11 + a22)
    disc = tf.square(half_trace) - (a11 * a22 - a12 * a21)
    # sqrt has an infinite derivative at 0: feed each branch a positive value
    # where it is not selected so the unselected gradient is exactly zero.
    one = tf.ones_like(disc)
    root_real = tf.sqrt(tf.where(disc > 0, disc, one))
    root_imag = tf.sqrt(tf.where(disc < 0, -disc, one))
    real = half_trace + tf.where(disc > 0, root_real, tf.zeros_like(disc))
    imag = tf.where(disc < 0, root_imag, tf.zeros_like(disc))
    return tf.stack([real, imag], axis=1)
