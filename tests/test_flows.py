"""Flow densities: normalisation, agreement of the fused and inverse paths."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from sklearn_epi import MAF, RealNVP
from sklearn_epi.support import parse_bounds

SPECS = [
    RealNVP(num_units=16),
    RealNVP(num_units=16, elementwise="spline"),
    MAF(num_units=16),
    MAF(num_units=16, elementwise="spline"),
]


def _perturbed(spec, bounds, seed=0):
    """A flow whose weights are random (the zero-initialised one is trivial)."""
    flow = spec.build(parse_bounds(bounds), seed=seed, dtype=tf.float64)
    rng = np.random.default_rng(seed)
    flow.set_weights([w + rng.normal(scale=0.3, size=w.shape) for w in flow.get_weights()])
    return flow


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_density_integrates_to_one_on_a_box(spec):
    flow = _perturbed(spec, [[-1.0, 2.0], [0.0, 3.0]])
    n = 400
    a = (np.arange(n) + 0.5) / n
    g0, g1 = np.meshgrid(-1.0 + 3.0 * a, 3.0 * a, indexing="ij")
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1)
    density = np.exp(flow.log_prob(tf.constant(grid)).numpy())
    assert density.sum() * (3.0 / n) ** 2 == pytest.approx(1.0, abs=5e-3)


def test_density_integrates_to_one_on_a_half_line():
    flow = _perturbed(RealNVP(num_units=16), [[0.5, np.inf]])
    # Integrate over the unconstrained variable x = softplus^-1(z - 0.5).
    x = np.linspace(-30, 30, 60001)
    z = 0.5 + np.logaddexp(0.0, x)
    log_q = flow.log_prob(tf.constant(z[:, None])).numpy()
    dz_dx = 1.0 / (1.0 + np.exp(-x))
    assert np.trapezoid(np.exp(log_q) * dz_dx, x) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_fused_sample_log_prob_matches_transformed_distribution(spec):
    bounds = [[-2.0, 3.0], [0.0, np.inf], [-np.inf, np.inf]]
    flow = _perturbed(spec, bounds)
    z, log_q = flow.sample_and_log_prob(64, seed=tf.constant([3, 4]))
    reference = tfp.distributions.TransformedDistribution(
        tfp.distributions.MultivariateNormalDiag(loc=tf.zeros(3, tf.float64)), flow.bijector
    )
    np.testing.assert_allclose(log_q.numpy(), reference.log_prob(z).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_one_dimensional_flow_samples_inside_its_bounds(spec):
    flow = _perturbed(spec, [[0.0, 1.0]])
    z, log_q = flow.sample_and_log_prob(100, seed=tf.constant([1, 2]))
    assert z.shape == (100, 1)
    assert ((z.numpy() > 0) & (z.numpy() < 1)).all()
    assert np.isfinite(log_q.numpy()).all()


def test_weights_round_trip_rebuilds_the_same_density():
    support = parse_bounds([[-1.0, 1.0], [-1.0, 1.0]])
    source = _perturbed(RealNVP(num_units=8), [[-1.0, 1.0], [-1.0, 1.0]])
    copy = RealNVP(num_units=8).build(support, seed=123, dtype=tf.float64)
    copy.set_weights(source.get_weights())
    z = tf.constant(np.random.default_rng(0).uniform(-0.9, 0.9, size=(20, 2)))
    np.testing.assert_array_equal(copy.log_prob(z).numpy(), source.log_prob(z).numpy())


def test_same_seed_builds_identical_weights():
    support = parse_bounds([[-1.0, 1.0]] * 3)
    a = RealNVP().build(support, seed=5).get_weights()
    b = RealNVP().build(support, seed=5).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"num_stages": 0}, ValueError, "flow.num_stages"),
        ({"num_units": 2.5}, TypeError, "flow.num_units"),  # a wrong type, not value
        ({"elementwise": "relu"}, ValueError, "flow.elementwise"),
        ({"spline_range": -1.0}, ValueError, "flow.spline_range"),
    ],
)
def test_bad_flow_fields_name_the_field(params, error, match):
    with pytest.raises(error, match=match):
        RealNVP(**params).build(parse_bounds([[0.0, 1.0]]), seed=0)


def test_unknown_flow_field_is_rejected_by_set_params():
    with pytest.raises(ValueError, match="num_hidden"):
        RealNVP().set_params(num_hidden=3)
