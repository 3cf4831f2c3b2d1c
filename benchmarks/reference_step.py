"""A minimal hand-written EPI training step: the baseline of the throughput section.

Same maths as :meth:`sklearn_epi._train.Trainer._train_steps` (paper,
Eq. 21 with the one-pass unbiased penalty gradient), written the shortest way
plain TensorFlow allows: the RealNVP chain as explicit matmuls (no TFP
bijectors), Adam as four lines (no ``tf.keras``), no finite-step guard, no
logging sums beyond the entropy. It copies the weights of a built
:class:`~sklearn_epi.flows.FlowDistribution`, so both steps start from the
same point and draw batches of the same size.

Only what the benchmarks need is covered: affine RealNVP stages and a support
bounded on both sides in every dimension.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class ReferenceStep(tf.Module):
    """``train(num_steps)``: Adam steps on the augmented Lagrangian, hand-written."""

    def __init__(self, flow, support, statistic, mu, sigma2, batch_size, lr, c0, seed=0):
        super().__init__(name="reference_step")
        if not (np.all(np.isfinite(support.low)) and np.all(np.isfinite(support.high))):
            raise ValueError("the reference step covers supports bounded on both sides only")
        dtype = flow.dtype
        self.dim, self.batch, self.lr = flow.dim, batch_size, lr
        self.statistic = statistic
        copy = lambda v: tf.Variable(v.numpy(), dtype=dtype)  # noqa: E731
        self.couplings = [
            (
                [copy(w) for w in c.weights],
                [copy(b) for b in c.biases],
                copy(c.out_weight),
                copy(c.out_bias),
            )
            for c in flow.conditioners
        ]
        self.post_shift, self.post_log_scale = copy(flow.shift), copy(flow.log_scale)
        self.low = tf.constant(support.low, dtype)
        self.log_width = tf.constant(np.log(support.high - support.low), dtype)
        self.mu = tf.constant(mu, dtype)
        self.mu_opt = tf.constant(np.concatenate([mu, sigma2]), dtype)
        self.eta = tf.Variable(tf.zeros([len(self.mu_opt)], dtype), trainable=False)
        self.c = tf.Variable(c0, dtype=dtype, trainable=False)
        self.params = [v for ws, bs, W, b in self.couplings for v in (*ws, *bs, W, b)]
        self.params += [self.post_shift, self.post_log_scale]
        self.m = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in self.params]
        self.t = tf.Variable(0.0, dtype=dtype)
        self.seed = tf.Variable([seed, 1], dtype=tf.int32)

    def sample_and_log_prob(self, x):
        """Push base draws ``x`` through the chain; return ``z`` and ``log q(z)``."""
        half = self.dim // 2
        log_q = -0.5 * tf.reduce_sum(x * x, axis=1) - 0.5 * self.dim * np.log(2 * np.pi)
        for index, (ws, bs, W, b) in enumerate(self.couplings):
            if index > 0:
                x = tf.reverse(x, axis=[1])
            x1, x2 = x[:, :half], x[:, half:]
            h = x1
            for w_l, b_l in zip(ws, bs):
                h = tf.tanh(h @ w_l + b_l)
            out = tf.reshape(h @ W + b, [-1, self.dim - half, 2])
            log_scale = 5.0 * tf.tanh(out[..., 1] / 5.0)
            x = tf.concat([x1, x2 * tf.exp(log_scale) + out[..., 0]], axis=1)
            log_q -= tf.reduce_sum(log_scale, axis=1)
        x = x * tf.exp(self.post_log_scale) + self.post_shift
        log_q -= tf.reduce_sum(self.post_log_scale)
        z = self.low + tf.exp(self.log_width) * tf.sigmoid(x)
        log_q -= tf.reduce_sum(
            self.log_width + tf.math.log_sigmoid(x) + tf.math.log_sigmoid(-x), axis=1
        )
        return z, log_q

    def train(self, num_steps):
        half = self.batch // 2
        H_sum = tf.zeros([], self.t.dtype)
        for _ in tf.range(num_steps):
            self.seed.assign_add([0, 1])
            x = tf.random.stateless_normal([self.batch, self.dim], self.seed, dtype=self.t.dtype)
            with tf.GradientTape() as tape:
                z, log_q = self.sample_and_log_prob(x)
                f = tf.cast(self.statistic(z), self.t.dtype)
                T = tf.concat([f, tf.square(f - self.mu)], axis=1)
                H = -tf.reduce_mean(log_q)
                R1 = tf.reduce_mean(T[:half], axis=0) - self.mu_opt
                R2 = tf.reduce_mean(T[half:], axis=0) - self.mu_opt
                loss = (
                    -H
                    + tf.tensordot(self.eta, 0.5 * (R1 + R2), 1)
                    + self.c * tf.tensordot(R1, tf.stop_gradient(R2), 1)
                )
            grads = tape.gradient(loss, self.params)
            self.t.assign_add(1.0)
            step = self.lr * tf.sqrt(1.0 - 0.999**self.t) / (1.0 - 0.9**self.t)
            for p, g, m, v in zip(self.params, grads, self.m, self.v):
                m.assign(0.9 * m + 0.1 * g)
                v.assign(0.999 * v + 0.001 * g * g)
                p.assign_sub(step * m / (tf.sqrt(v) + 1e-8))
            H_sum += H
        return H_sum / tf.cast(num_steps, H_sum.dtype)


def max_density_mismatch(flow, reference, n=256, seed=0) -> float:
    """Largest |log q| difference between the package's flow and the reference chain.

    Evaluated at the reference's samples, through the package's inverse pass,
    so it checks that both compute the same distribution.
    """
    x = tf.random.stateless_normal([n, flow.dim], [seed, 3], dtype=flow.dtype)
    z, log_q = reference.sample_and_log_prob(x)
    return float(tf.reduce_max(tf.abs(flow.log_prob(z) - log_q)))
