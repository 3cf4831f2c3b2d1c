"""sklearn_epi.simulate: table Gaussian noise and the Euler-Maruyama loop, against known answers."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from sklearn_epi.simulate import _normal_quantiles, euler_maruyama, gaussian_noise


# ----------------------------------------------------------------- noise
def test_quantile_table_is_symmetric_with_unit_variance():
    q = _normal_quantiles("float64")
    assert q.shape == (2**16,)
    np.testing.assert_allclose(q, -q[::-1], atol=1e-12)
    assert np.mean(q * q) == pytest.approx(1.0, abs=1e-12)
    assert 4.2 < q.max() < 4.4  # the last quantile: where the draws stop


def test_gaussian_noise_is_standard_normal():
    x = gaussian_noise((1000, 1001), seed=[3, 4]).numpy().ravel()
    assert x.dtype == np.float32
    assert abs(x.mean()) < 4 / np.sqrt(x.size)
    assert x.var() == pytest.approx(1.0, abs=4 * np.sqrt(2 / x.size))
    assert stats.kurtosis(x, fisher=False) == pytest.approx(3.0, abs=0.02)
    assert stats.kstest(x[:200_000], "norm").pvalue > 1e-3


def test_gaussian_noise_repeats_for_a_seed_and_not_across_seeds():
    a = gaussian_noise((7, 3), seed=[1, 2], dtype=tf.float64).numpy()
    assert a.shape == (7, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, gaussian_noise((7, 3), seed=[1, 2], dtype=tf.float64))
    assert not np.allclose(a, gaussian_noise((7, 3), seed=[2, 1], dtype=tf.float64))


def test_gaussian_noise_refuses_an_integer_dtype():
    with pytest.raises(TypeError, match="dtype must be a floating dtype"):
        gaussian_noise((2,), seed=[0, 0], dtype=tf.int32)


# ---------------------------------------------------------- Euler-Maruyama
def test_deterministic_decay_and_its_gradient_are_exact():
    theta, dt, K = tf.constant(0.7, tf.float64), 0.01, 150
    x0 = tf.constant([1.0, -2.0], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(theta)
        x = euler_maruyama(lambda k, x: -theta * x, x0, K, dt, None)
        total = tf.reduce_sum(x)
    grad = tape.gradient(total, theta)
    factor = (1 - 0.7 * dt) ** K
    np.testing.assert_allclose(x, x0.numpy() * factor, rtol=1e-12)
    expected = np.sum(x0.numpy()) * K * (1 - 0.7 * dt) ** (K - 1) * (-dt)
    assert grad.numpy() == pytest.approx(expected, rel=1e-10)


def test_ornstein_uhlenbeck_reaches_the_discrete_stationary_variance():
    # x_{k+1} = (1 - dt) x_k + sqrt(2 dt) xi: stationary variance 2 / (2 - dt).
    dt, K, paths = 0.1, 400, 20_000

    def squares(k, x, acc):
        return acc + tf.cast(k > 100, x.dtype) * x * x

    x, total = euler_maruyama(
        lambda k, x: -x,
        tf.zeros([paths], tf.float64),
        K,
        dt,
        np.sqrt(2.0),
        seed=[5, 6],
        observe=squares,
        initial=tf.zeros([paths], tf.float64),
    )
    variance = float(tf.reduce_mean(total)) / (K - 100)
    # 300 correlated steps per path (correlation time 10 steps): about
    # 20000 * 15 independent values, a standard error near 0.3 %.
    assert variance == pytest.approx(2 / (2 - dt), rel=0.015)


def _reference(x0, y0, noise, dt, scale, K):
    """dx = (y - x) dt, dy = -y dt + scale dB, written out in NumPy."""
    x, y = x0.copy(), y0.copy()
    for k in range(K):
        x, y = x + dt * (y - x), y - dt * y + scale * np.sqrt(dt) * noise[k]
    return x, y


def test_given_noise_drives_only_the_noisy_component_as_written():
    rng = np.random.default_rng(0)
    K, dt, scale = 30, 0.05, 0.8
    x0, y0 = rng.standard_normal(5), rng.standard_normal(5)
    noise = rng.standard_normal((K, 5))
    x, y = euler_maruyama(
        lambda k, s: (s[1] - s[0], -s[1]),
        (tf.constant(x0), tf.constant(y0)),
        K,
        dt,
        (None, scale),
        noise=(None, noise),
    )
    ref = _reference(x0, y0, noise, dt, scale, K)
    np.testing.assert_allclose(x, ref[0], rtol=1e-12)
    np.testing.assert_allclose(y, ref[1], rtol=1e-12)


def test_seeded_paths_repeat_and_compile_with_xla():
    def run(seed):
        return euler_maruyama(lambda k, x: -x, tf.zeros([4, 3]), 20, 0.1, 1.0, seed=seed)

    compiled = tf.function(run, jit_compile=True)
    a = compiled(tf.constant([1, 2]))
    np.testing.assert_array_equal(a, compiled(tf.constant([1, 2])))
    assert not np.allclose(a, compiled(tf.constant([2, 1])))
    np.testing.assert_allclose(a, run(tf.constant([1, 2])), rtol=1e-5, atol=1e-6)


def test_time_varying_drift_reads_the_step_index():
    # dx = k dt: after K steps x = dt^2 * K (K - 1) / 2.
    x = euler_maruyama(
        lambda k, x: tf.cast(k, x.dtype) * 0.5 + 0 * x, tf.zeros([1], tf.float64), 10, 0.5, 0.0
    )
    assert float(x[0]) == pytest.approx(0.25 * 10 * 9 / 2)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_steps": 0}, ValueError, "n_steps must be a positive integer"),
        ({"n_steps": 2.5}, ValueError, "n_steps must be a positive integer"),
        ({"dt": -0.1}, ValueError, "dt must be a positive number"),
        ({"drift": None}, TypeError, "drift must be callable"),
        ({"observe": lambda k, x, a: a}, ValueError, "observe and initial must be given together"),
        ({"noise_scale": (1.0, 1.0)}, ValueError, "noise_scale must match x0"),
        ({"x0": (tf.zeros(2),) * 2, "noise_scale": (1.0,)}, ValueError, "noise_scale must have"),
        (
            {"x0": (tf.zeros(2),) * 2, "noise_scale": (1.0, None), "noise": (None, None)},
            ValueError,
            "noise has no increments for noisy state component 0",
        ),
        (
            {"x0": (tf.zeros(2),) * 2, "noise_scale": None, "drift": lambda k, x: -x[0]},
            ValueError,
            "drift must return one rate per state component",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    args = {
        "drift": lambda k, x: -x,
        "x0": tf.zeros(2),
        "n_steps": 3,
        "dt": 0.1,
        "noise_scale": 1.0,
        "seed": [0, 1],
    }
    args.update(kwargs)
    with pytest.raises(error, match=message):
        euler_maruyama(**args)
