"""Noise draws for the stochastic circuits: stateless when given a seed.

EPIEstimator passes ``seed=`` (a stateless seed, shape (2,)) to a statistic
that accepts it, derived from the fit's own random stream, so fits of
stochastic models repeat exactly for the same ``random_state``. Without a
seed the draws come from TensorFlow's global generator.
"""

import tensorflow as tf


def standard_normal(shape, dtype, seed=None):
    """N(0, 1) draws; stateless when ``seed`` is given."""
    if seed is None:
        return tf.random.normal(shape, dtype=dtype)
    return tf.random.stateless_normal(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)


def standard_uniform(shape, dtype, seed=None):
    """U(0, 1) draws; stateless when ``seed`` is given."""
    if seed is None:
        return tf.random.uniform(shape, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed=tf.cast(seed, tf.int32), dtype=dtype)


def split_seed(seed, num=2):
    """``num`` independent stateless seeds from one, shape (num, 2)."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), num=num)
