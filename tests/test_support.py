"""The support bijector: parsing, round trips, staying inside the bounds."""

import numpy as np
import pytest
import tensorflow as tf

from sklearn_epi.support import parse_bounds

inf = np.inf
MIXED = [[-2.0, 3.0], [0.5, inf], [-inf, -1.0], [-inf, inf]]


def test_dict_bounds_keep_names_in_order():
    support = parse_bounds({"gE": (0, 1), "tau": (0.1, inf)})
    assert support.names == ("gE", "tau")
    np.testing.assert_array_equal(support.low, [0, 0.1])
    np.testing.assert_array_equal(support.high, [1, inf])


def test_array_bounds_get_default_names():
    assert parse_bounds(np.array(MIXED)).names == ("z0", "z1", "z2", "z3")


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_forward_stays_inside_every_bound_type(dtype):
    support = parse_bounds(MIXED)
    x = tf.constant(np.random.default_rng(0).normal(scale=3.0, size=(500, 4)), dtype)
    z = support.bijector(dtype).forward(x).numpy()
    assert support.contains(z).all()


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_inverse_round_trips(dtype):
    support = parse_bounds(MIXED)
    bij = support.bijector(dtype)
    x = tf.constant(np.random.default_rng(1).normal(scale=2.0, size=(200, 4)), dtype)
    tol = 1e-4 if dtype == tf.float32 else 1e-10
    np.testing.assert_allclose(bij.inverse(bij.forward(x)).numpy(), x.numpy(), atol=tol, rtol=tol)


def test_log_det_jacobian_matches_autodiff():
    support = parse_bounds(MIXED)
    bij = support.bijector(tf.float64)
    x = tf.constant(np.random.default_rng(2).normal(size=(50, 4)), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        z = bij.forward(x)
    # The bijector is elementwise, so the Jacobian is diagonal.
    diag = tape.batch_jacobian(z, x).numpy().diagonal(axis1=1, axis2=2)
    expected = np.log(np.abs(diag)).sum(axis=1)
    np.testing.assert_allclose(bij.forward_log_det_jacobian(x, 1).numpy(), expected, rtol=1e-10)


def test_log_det_jacobian_stays_finite_when_sigmoid_saturates():
    bij = parse_bounds([[0.0, 1.0], [0.0, inf]]).bijector(tf.float32)
    x = tf.constant([[80.0, -80.0], [-80.0, 80.0]])
    assert np.isfinite(bij.forward_log_det_jacobian(x, 1).numpy()).all()


def test_inverse_gradient_is_finite_at_zero_on_every_dimension():
    # tf.where gradients through unselected branches must not turn into NaN.
    bij = parse_bounds(MIXED).bijector(tf.float64)
    z = tf.constant([[0.0, 1.0, -2.0, 0.0]], tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(z)
        x = bij.inverse(z)
    assert np.isfinite(tape.gradient(x, z).numpy()).all()


def test_contains_excludes_the_bounds_themselves():
    support = parse_bounds([[0.0, 1.0]])
    np.testing.assert_array_equal(
        support.contains([[0.0], [0.5], [1.0], [np.nan]]), [False, True, False, False]
    )


@pytest.mark.parametrize(
    "bounds, error, match",
    [
        ({"a": (1.0, 1.0)}, ValueError, "low < high"),
        ({"a": (2.0, 1.0)}, ValueError, "'a'"),
        ([[0.0, np.nan]], ValueError, "NaN"),
        ([[0.0, 1.0, 2.0]], ValueError, r"shape \(D, 2\)"),
        ({1: (0.0, 1.0)}, TypeError, "names"),
        ({"a": (0.0,)}, ValueError, "pair"),
        ("box", TypeError, "bounds must be"),
        ({}, ValueError, "at least one"),
    ],
)
def test_bad_bounds_are_rejected_with_the_argument_named(bounds, error, match):
    with pytest.raises(error, match=match):
        parse_bounds(bounds)


def test_default_gaussian_is_centred_in_two_sided_bounds():
    mean, std = parse_bounds([[-10.0, 10.0], [0.0, inf]]).default_gaussian()
    np.testing.assert_allclose(mean, [0.0, 1.0])
    np.testing.assert_allclose(std, [20 / 6, 1.0])
