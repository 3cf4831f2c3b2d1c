"""Flow densities: normalisation, each stage's passes, the fused and inverse paths."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.base import clone

from sklearn_epi import MAF, RealNVP
from sklearn_epi._bijectors import (
    Autoregressive,
    Coupling,
    Elementwise,
    FromTFP,
    Permute,
    RationalQuadraticSpline,
)
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
    if spec.base_modes > 1:
        # Modes at their starting distance (6) put mass so far into the
        # tails of random weights that no grid resolves it; the mixture's
        # algebra is the same at any distance.
        flow.base_locs.assign(flow.base_locs / 3.0)
    return flow


@pytest.mark.parametrize("spec", [clone(spec).set_params(base_modes=1) for spec in SPECS], ids=repr)
def test_density_integrates_to_one_on_a_box(spec):
    flow = _perturbed(spec, [[-1.0, 2.0], [0.0, 3.0]])
    n = 400
    a = (np.arange(n) + 0.5) / n
    g0, g1 = np.meshgrid(-1.0 + 3.0 * a, 3.0 * a, indexing="ij")
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1)
    density = np.exp(flow.log_prob(tf.constant(grid)).numpy())
    assert density.sum() * (3.0 / n) ** 2 == pytest.approx(1.0, abs=5e-3)


def test_density_with_two_base_modes_integrates_to_one_on_a_box():
    # Random weights around two modes pile mass within 0.01 of the box's
    # edges, so integrate over the unconstrained x, z = low + 3 sigmoid(x).
    # (Random spline or MAF weights around two modes make spikes no grid
    # resolves, 0.91 to 1.09 here, tending to 1 as the grid is refined; the
    # fused path's test covers those flows with two modes.)
    flow = _perturbed(SPECS[0], [[-1.0, 2.0], [0.0, 3.0]])
    n, reach = 1200, 18.0
    x = np.linspace(-reach, reach, n)
    x0, x1 = np.meshgrid(x, x, indexing="ij")
    grid = np.stack([x0.ravel(), x1.ravel()], axis=1)
    z = np.array([-1.0, 0.0]) + 3.0 / (1.0 + np.exp(-grid))
    dz_dx = np.prod(3.0 * np.exp(-np.logaddexp(0.0, grid) - np.logaddexp(0.0, -grid)), axis=1)
    density = np.exp(flow.log_prob(tf.constant(z)).numpy()) * dz_dx
    assert density.sum() * (x[1] - x[0]) ** 2 == pytest.approx(1.0, abs=5e-3)


def test_density_integrates_to_one_on_a_half_line():
    flow = _perturbed(RealNVP(num_units=16), [[0.5, np.inf]])
    # Integrate over the unconstrained variable x = softplus^-1(z - 0.5).
    x = np.linspace(-30, 30, 60001)
    z = 0.5 + np.logaddexp(0.0, x)
    log_q = flow.log_prob(tf.constant(z[:, None])).numpy()
    dz_dx = 1.0 / (1.0 + np.exp(-x))
    assert np.trapezoid(np.exp(log_q) * dz_dx, x) == pytest.approx(1.0, abs=1e-3)


def _fresh(t):
    """A copy of ``t`` unknown to TFP's bijector cache, so inverses are computed."""
    return tf.constant(t.numpy())


def _standard_normal_log_prob(x):
    return -0.5 * np.sum(x**2, axis=-1) - 0.5 * x.shape[-1] * np.log(2 * np.pi)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_fused_sample_log_prob_matches_the_inverse_pass(spec):
    bounds = [[-2.0, 3.0], [0.0, np.inf], [-np.inf, np.inf]]
    flow = _perturbed(spec, bounds)
    z, log_q = flow.sample_and_log_prob(64, seed=tf.constant([3, 4]))
    np.testing.assert_allclose(
        log_q.numpy(), flow.log_prob(_fresh(z)).numpy(), rtol=1e-6, atol=1e-6
    )
    z, log_q, _ = flow.stratified_sample_and_log_prob(64, seed=tf.constant([3, 4]), split=30)
    np.testing.assert_allclose(
        log_q.numpy(), flow.log_prob(_fresh(z)).numpy(), rtol=1e-6, atol=1e-6
    )


def test_one_base_mode_is_the_standard_normal():
    flow = _perturbed(RealNVP(num_units=8, base_modes=1), [[-1.0, 1.0], [0.0, np.inf]])
    assert not hasattr(flow, "base_logits")
    z, log_q = flow.sample_and_log_prob(32, seed=tf.constant([3, 4]))
    x, log_det = flow.bijector.inverse_and_log_det(_fresh(z))
    expected = _standard_normal_log_prob(x.numpy()) + log_det.numpy()
    np.testing.assert_allclose(log_q.numpy(), expected, rtol=1e-6, atol=1e-6)
    _, _, w = flow.stratified_sample_and_log_prob(32, seed=tf.constant([3, 4]), split=16)
    np.testing.assert_array_equal(w.numpy(), np.ones(32))


@pytest.mark.parametrize("modes, n, split", [(2, 100, 50), (3, 101, 40), (2, 7, None)])
def test_stratified_weights_give_each_mode_its_probability_and_its_gradient(modes, n, split):
    # Sample i of a block comes from mode i mod K. The weighted mean of the
    # indicator of mode 0 is then exactly p0 in each block, and its
    # gradient in the logits is exactly that of the softmax: dp0/dl =
    # p0 (e0 - p).
    flow = RealNVP(num_units=4, base_modes=modes).build(
        parse_bounds([[-1.0, 1.0]] * 2), seed=0, dtype=tf.float64
    )
    logits = np.log(np.linspace(1.0, 2.0, modes))
    flow.base_logits.assign(logits)
    p = np.exp(logits) / np.exp(logits).sum()
    blocks = [slice(0, n)] if split is None else [slice(0, split), slice(split, n)]
    with tf.GradientTape(persistent=True) as tape:
        _, _, w = flow.stratified_sample_and_log_prob(n, seed=tf.constant([1, 2]), split=split)
        mode = np.concatenate([np.arange(b.stop - b.start) % modes for b in blocks])
        is_mode_0 = tf.constant((mode == 0).astype(float))
        means = [tf.reduce_mean(w[b] * is_mode_0[b]) for b in blocks]
    for mean in means:
        assert mean.numpy() == pytest.approx(p[0], rel=1e-12)
        grad = tape.gradient(mean, flow.base_logits).numpy()
        np.testing.assert_allclose(grad, p[0] * (np.eye(modes)[0] - p), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_one_dimensional_flow_samples_inside_its_bounds(spec):
    flow = _perturbed(spec, [[0.0, 1.0]])
    z, log_q = flow.sample_and_log_prob(100, seed=tf.constant([1, 2]))
    assert z.shape == (100, 1)
    assert ((z.numpy() > 0) & (z.numpy() < 1)).all()
    assert np.isfinite(log_q.numpy()).all()


def _splits(flow):
    """The set of coordinates (by original index) that conditions each coupling stage."""
    dim = flow.dim
    order, splits = np.arange(dim), []
    for stage in flow.bijector.stages:  # in the order they are applied
        if isinstance(stage, Permute):
            order = order[stage.order]
        elif isinstance(stage, Coupling):
            splits.append(frozenset(order[: dim // 2].tolist()))
    return splits


@pytest.mark.parametrize("dim", [4, 5, 6, 200])
def test_random_permutations_give_each_stage_a_new_split(dim):
    support = parse_bounds([[-1.0, 1.0]] * dim)
    flow = RealNVP(num_stages=4, num_units=4, permutation="random").build(support, seed=0)
    splits = _splits(flow)
    assert len(splits) == 4
    for before, after in zip(splits, splits[1:]):
        # Neither the same conditioning half nor its complement.
        assert after != before and after != frozenset(range(dim)) - before


def test_reversal_keeps_one_split():
    support = parse_bounds([[-1.0, 1.0]] * 4)
    splits = _splits(RealNVP(num_stages=3).build(support, seed=0))
    assert {s if 0 in s else frozenset(range(4)) - s for s in splits} == {frozenset({0, 1})}


@pytest.mark.parametrize("flow_class", [RealNVP, MAF])
def test_random_permutation_fused_path_agrees_with_the_inverse_pass(flow_class):
    flow = _perturbed(flow_class(num_units=16, permutation="random"), [[-1.0, 1.0]] * 4)
    z, log_q = flow.sample_and_log_prob(2000, seed=tf.constant([3, 4]))
    np.testing.assert_allclose(
        flow.log_prob(_fresh(z)).numpy(), log_q.numpy(), rtol=1e-6, atol=1e-6
    )


# One flow per kind of stage, and the stage's class; D = 3 with every kind of bound.
STAGES = {
    "coupling-affine": (RealNVP(num_units=8), Coupling),
    "coupling-spline": (RealNVP(num_units=8, elementwise="spline", num_bins=4), Coupling),
    "autoregressive-affine": (MAF(num_units=8), Autoregressive),
    "autoregressive-spline": (MAF(num_units=8, elementwise="spline", num_bins=4), Autoregressive),
    "permute": (RealNVP(num_units=8, permutation="random"), Permute),
    "post-affine": (RealNVP(num_units=8), Elementwise),
    "support": (RealNVP(num_units=8), FromTFP),
    "whole-chain": (MAF(num_units=8, elementwise="spline", num_bins=4), None),
}


def _stage(name):
    spec, kind = STAGES[name]
    flow = _perturbed(spec, [[-2.0, 3.0], [0.0, np.inf], [-np.inf, np.inf]])
    if kind is None:
        return flow.bijector
    return next(stage for stage in flow.bijector.stages if isinstance(stage, kind))


def _points(n=16, dim=3, seed=0):
    # Wide enough that some points fall outside the splines' [-4, 4].
    return tf.constant(3.0 * np.random.default_rng(seed).standard_normal((n, dim)))


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_fused_forward_equals_its_forward_and_log_det(name):
    stage, x = _stage(name), _points()
    y, log_det = stage.forward_and_log_det(x)
    np.testing.assert_allclose(y.numpy(), stage.forward(x).numpy(), rtol=1e-12, atol=0)
    expected = np.broadcast_to(stage.forward_log_det_jacobian(x).numpy(), [16])
    np.testing.assert_allclose(np.broadcast_to(log_det.numpy(), [16]), expected, rtol=1e-12)


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_inverse_undoes_forward_and_negates_the_log_det(name):
    stage, x = _stage(name), _points()
    y, log_det = stage.forward_and_log_det(x)
    x_back, inverse_log_det = stage.inverse_and_log_det(_fresh(y))
    np.testing.assert_allclose(x_back.numpy(), x.numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        np.broadcast_to(inverse_log_det.numpy(), [16]),
        np.broadcast_to(-log_det.numpy(), [16]),
        rtol=1e-9,
        atol=1e-9,
    )


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_log_det_is_that_of_the_numerical_jacobian(name):
    stage, x = _stage(name), _points()
    # Persistent, without pfor: D = 3 backward passes, much faster than
    # vectorising the autoregressive loop.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = stage.forward(x)
    jacobian = tape.batch_jacobian(y, x, experimental_use_pfor=False).numpy()
    _, log_abs_det = np.linalg.slogdet(jacobian)
    log_det = np.broadcast_to(stage.forward_log_det_jacobian(x).numpy(), [16])
    np.testing.assert_allclose(log_det, log_abs_det, rtol=1e-9, atol=1e-9)


def test_spline_agrees_with_tfp_rational_quadratic_spline():
    rng = np.random.default_rng(0)
    params = tf.constant(rng.normal(size=(50, 3, 3 * 5 - 1)))
    ours = RationalQuadraticSpline.from_params(params, 5, 2.0)
    widths = 1e-3 + tf.math.softmax(params[..., :5]) * (4.0 - 5e-3)
    heights = 1e-3 + tf.math.softmax(params[..., 5:10]) * (4.0 - 5e-3)
    theirs = tfp.bijectors.RationalQuadraticSpline(
        widths, heights, tf.math.softplus(params[..., 10:]) + 1e-3, range_min=-2.0
    )
    x = tf.constant(rng.uniform(-2.5, 2.5, size=(50, 3)))
    np.testing.assert_allclose(ours.forward(x), theirs.forward(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.inverse(x), theirs.inverse(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        ours.forward_log_det_jacobian(x),
        theirs.forward_log_det_jacobian(x, event_ndims=0),
        rtol=1e-12,
        atol=1e-12,
    )


def test_weights_keep_the_order_saved_fits_hold():
    # Saved fits store get_weights() as a list: base means and logits,
    # post-affine log-scale and shift, then each conditioner's biases, output
    # bias, output weight and hidden weights.
    flow = RealNVP(num_stages=2, num_layers=1, num_units=5).build(
        parse_bounds([[-1.0, 1.0]] * 3), seed=0
    )
    conditioner = [(5,), (4,), (5, 4), (1, 5)]
    expected = [(2, 3), (2,), (3,), (3,)] + conditioner * 2
    assert [w.shape for w in flow.get_weights()] == expected
    np.testing.assert_array_equal(flow.get_weights()[0], flow.base_locs.numpy())
    np.testing.assert_array_equal(flow.get_weights()[-1], flow.conditioners[1].weights[0].numpy())


def test_distribution_samples_with_an_integer_seed():
    flow = _perturbed(RealNVP(num_units=8), [[0.0, 1.0], [-1.0, 2.0]])
    z = flow.sample(50, seed=1).numpy()
    assert z.shape == (50, 2)
    assert ((z > [0.0, -1.0]) & (z < [1.0, 2.0])).all()


def test_same_random_permutations_for_every_seed():
    # Weights set into a flow built with another seed (a pooled trainer, a
    # loaded fit) must mean the same density.
    support = parse_bounds([[-1.0, 1.0]] * 6)
    spec = RealNVP(num_units=4, permutation="random")
    assert _splits(spec.build(support, seed=0)) == _splits(spec.build(support, seed=7))


def test_flow_pickled_before_permutation_existed_loads_with_reversal():
    for flow_class in (RealNVP, MAF):
        state = flow_class(num_units=8, permutation="random").__getstate__()
        del state["permutation"]
        loaded = flow_class.__new__(flow_class)
        loaded.__setstate__(state)
        assert loaded.permutation == "reverse"


def test_flow_pickled_before_base_modes_existed_loads_with_the_standard_normal_base():
    # Its saved weights hold no mode weights or means.
    for flow_class in (RealNVP, MAF):
        state = flow_class(num_units=8).__getstate__()
        del state["base_modes"]
        loaded = flow_class.__new__(flow_class)
        loaded.__setstate__(state)
        assert loaded.base_modes == 1


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
        ({"permutation": "shuffle"}, ValueError, "flow.permutation"),
        ({"base_modes": 0}, ValueError, "flow.base_modes"),
        ({"base_modes": True}, TypeError, "flow.base_modes"),
    ],
)
def test_bad_flow_fields_name_the_field(params, error, match):
    with pytest.raises(error, match=match):
        RealNVP(**params).build(parse_bounds([[0.0, 1.0]]), seed=0)


def test_unknown_flow_field_is_rejected_by_set_params():
    with pytest.raises(ValueError, match="num_hidden"):
        RealNVP().set_params(num_hidden=3)
