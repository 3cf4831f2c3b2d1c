"""The networks that parameterise the flow's stages: an MLP for coupling, MADE for autoregression.

Each maps its input to the per-coordinate parameters of an elementwise
transform (:mod:`sklearn_epi._bijectors`); their variables are the flow's
weights, in the order :meth:`FlowDistribution.get_weights` saves them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["MLP", "MADE"]


def _glorot(rng, fan_in, fan_out, dtype):
    limit = np.sqrt(6.0 / max(fan_in + fan_out, 1))
    return tf.Variable(rng.uniform(-limit, limit, size=(fan_in, fan_out)), dtype=dtype)


class MLP(tf.Module):
    """tanh MLP whose last layer starts at zero, so each stage starts as identity.

    A smooth activation because Hessians of log q are a product of the
    package: ReLU conditioners would make them piecewise zero.
    """

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


class MADE(tf.Module):
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
