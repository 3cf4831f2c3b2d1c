"""Known answers for modes, Hessian sensitivities and predictions on a fitted Gaussian.

With the identity statistic, the maximum-entropy distribution with given
means and variances is the Gaussian N(mu, diag(sigma2)): its mode is mu, a
conditional mode keeps the other coordinates at their means, and the Hessian
of log q is -diag(1 / sigma2).
"""

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import identity

import sklearn_epi
from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.analysis import CoverageWarning, coverage, find_mode, predictive, sensitivity
from sklearn_epi.cli import EXIT_CONVERGED, _write_outputs

MU = np.array([1.0, -2.0])
SIGMA2 = np.array([0.25, 1.0])
SD = np.sqrt(SIGMA2)
# y has a lower bound far out in the tail (8 sd): it leaves the Gaussian
# answer intact but gives find_mode a bound it must not cross.
BOUNDS = {"x": (-np.inf, np.inf), "y": (-10.0, np.inf)}


@pytest.fixture(scope="module")
def gaussian():
    est = EPIEstimator(
        identity,
        BOUNDS,
        al_params=ALParams(
            c0=1.0, beta=4.0, num_iters=300, max_epochs=8, init_iters=200, batch_size=500
        ),
        init={"mean": [0.0, 0.0], "std": 1.0},
        # A short budget: one base mode (see tests/test_estimator.py).
        flow=RealNVP(base_modes=1),
        random_state=0,
        jit_compile=False,
    ).fit(MU, SIGMA2)
    assert est.converged_
    return est


def test_mode_of_the_fitted_gaussian_is_its_mean(gaussian):
    mode = find_mode(gaussian)
    np.testing.assert_allclose(mode, MU, atol=0.2 * SD.min())


def test_mode_from_a_given_start_reaches_the_same_mode(gaussian):
    mode = find_mode(gaussian, z0=[2.5, 1.0])
    np.testing.assert_allclose(mode, find_mode(gaussian), atol=0.05)


def test_mode_raises_log_density_above_every_sample(gaussian):
    mode = find_mode(gaussian)
    samples = gaussian.sample(2000, random_state=1)
    assert gaussian.score_samples(mode[None])[0] >= gaussian.score_samples(samples).max()


def test_conditional_mode_holds_fixed_value_and_keeps_the_other_at_its_mean(gaussian):
    mode = find_mode(gaussian, fixed={"y": -1.0})
    assert mode[1] == -1.0
    # Independent coordinates: fixing y one sd away leaves x's mode at mu_x.
    assert abs(mode[0] - MU[0]) < 0.3 * SD[0]


def test_conditional_mode_by_index_equals_by_name(gaussian):
    by_name = find_mode(gaussian, fixed={"x": 0.5})
    by_index = find_mode(gaussian, fixed={0: 0.5})
    np.testing.assert_allclose(by_name, by_index)
    assert by_name[0] == 0.5
    assert abs(by_name[1] - MU[1]) < 0.3 * SD[1]


def test_mode_search_with_a_huge_step_stays_inside_the_bounds(gaussian):
    # The first steps overshoot far past y = -10: they must be rejected, not taken.
    mode = find_mode(gaussian, z0=[1.0, -9.0], lr=100.0)
    assert mode[1] > -10.0
    assert np.isfinite(gaussian.score_samples(mode[None])[0])


@pytest.mark.parametrize(
    "fixed, match",
    [({"w": 0.0}, "unknown parameter"), ({"y": -11.0}, "inside the bounds"), ({5: 0.0}, "range")],
)
def test_invalid_fixed_is_rejected_with_its_name(gaussian, fixed, match):
    with pytest.raises(ValueError, match=match):
        find_mode(gaussian, fixed=fixed)


def test_sensitivity_eigenvalues_are_minus_inverse_variances_most_negative_first(gaussian):
    eigenvalues, _ = sensitivity(gaussian, MU)
    np.testing.assert_allclose(eigenvalues, -1.0 / SIGMA2, rtol=0.25)
    assert eigenvalues[0] <= eigenvalues[1]


def test_sensitivity_dimension_is_the_low_variance_axis(gaussian):
    _, eigenvectors = sensitivity(gaussian, MU)
    # v1 (most sensitive) is along x, which has the smaller variance.
    assert abs(eigenvectors[0, 0]) > 0.95


def test_sensitivity_eigenvectors_are_orthonormal_columns(gaussian):
    eigenvalues, eigenvectors = sensitivity(gaussian, MU)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(2), atol=1e-10)
    H = gaussian.hessian(MU[None])[0]
    H = 0.5 * (H + H.T)
    np.testing.assert_allclose(H @ eigenvectors, eigenvectors * eigenvalues, atol=1e-6)


def test_sensitivity_sign_makes_largest_component_positive(gaussian):
    _, eigenvectors = sensitivity(gaussian, MU)
    for v in eigenvectors.T:
        assert v[np.argmax(np.abs(v))] > 0


def test_sensitivity_sign_follows_the_reference_parameter(gaussian):
    _, eigenvectors = sensitivity(gaussian, MU + 0.3, reference="y")
    assert np.all(eigenvectors[1] >= 0)
    _, by_index = sensitivity(gaussian, MU + 0.3, reference=1)
    np.testing.assert_array_equal(by_index, eigenvectors)


def test_sensitivity_most_robust_first_reverses_the_order(gaussian):
    ascending, v_asc = sensitivity(gaussian, MU)
    descending, v_desc = sensitivity(gaussian, MU, order="most_robust_first")
    np.testing.assert_array_equal(descending, ascending[::-1])
    np.testing.assert_allclose(np.abs(v_desc), np.abs(v_asc[:, ::-1]))


def test_sensitivity_outside_the_bounds_is_an_error(gaussian):
    with pytest.raises(ValueError, match="inside the bounds"):
        sensitivity(gaussian, [1.0, -20.0])


def test_predictive_frame_has_the_property(gaussian):
    frame = predictive(gaussian, n_samples=4000, random_state=0)
    assert list(frame.columns) == list(gaussian.property_.statistic_names)
    assert frame.shape == (4000, 2)
    np.testing.assert_allclose(frame.mean(), MU, atol=0.1)
    np.testing.assert_allclose(frame.var(), SIGMA2, rtol=0.2)


def test_predictive_is_reproducible_with_random_state(gaussian):
    a = predictive(gaussian, n_samples=50, random_state=3)
    b = predictive(gaussian, n_samples=50, random_state=3)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


# ------------------------------------------------------------------ coverage
def square_and_identity(z):
    """f(z) = [z_1^2, z_2]: with mean [1, 0] the property holds at z_1 near -1 and near +1."""
    return tf.stack([z[:, 0] ** 2, z[:, 1]], axis=1)


TWO_LOBES = ([1.0, 0.0], [0.01, 0.25])  # |z_1^2 - 1| <= 0.2: z_1 in +-[0.894, 1.095]


def started_at(mean, std):
    """A distribution that is its Gaussian start (one training step): no fit moves it."""
    est = EPIEstimator(
        square_and_identity,
        {"a": (-2.0, 2.0), "b": (-2.0, 2.0)},
        flow=RealNVP(num_stages=2, num_units=8),
        al_params=ALParams(num_iters=1, max_epochs=1, init_iters=300, batch_size=100),
        init={"mean": mean, "std": std},
        random_state=0,
    )
    with pytest.warns(Warning):  # not converged
        return est.fit(*TWO_LOBES)


def test_coverage_finds_the_lobe_a_distribution_left_out_and_says_where():
    one_lobe = started_at([1.0, 0.0], [0.05, 0.5])  # covers z_1 near +1 only
    with pytest.warns(CoverageWarning, match=r"leaves out 5\d% .* at a in \[-1\.0\d*, -0\.9"):
        found = coverage(one_lobe, n_draws=20000)
    # The region: two strips of width 0.2 in a, 2 in b, in a box of area 16.
    assert found.n_with_property == pytest.approx(20000 * 2 * 0.2 * 2 / 16, rel=0.15)
    assert found.left_out == pytest.approx(0.5, abs=3 * found.left_out_se + 0.02)
    assert found.regions.loc["a", "left_out_high"] < -0.85 and found.measurable


def test_coverage_of_a_distribution_over_both_lobes_finds_nothing_left_out():
    both = started_at([0.0, 0.0], [1.0, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoverageWarning)
        found = coverage(both, n_draws=20000)
    assert found.n_left_out == 0 and not found.measurable
    assert "leaves out 0%" in found.describe()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_draws": 0}, "n_draws must be an integer >= 1"),
        ({"within": -1}, "within must be"),
        ({}, "parameters x, y are unbounded"),
    ],
)
def test_coverage_rejects_bad_arguments_by_name(gaussian, kwargs, match):
    with pytest.raises(ValueError, match=match):
        coverage(gaussian, **kwargs)


def on_the_right_lobe(statistic):
    """A short fit started on the right lobe: it meets the property there and passes the test.

    Batches of 200 and 300 steps an epoch leave the violations at about 6
    standard errors of 200 x 200 test samples; 200 x 50 (the paper's sizes)
    resolve what such a fit can reach, and it converges at epoch 3.
    """
    return EPIEstimator(
        statistic,
        {"a": (-2.0, 2.0), "b": (-2.0, 2.0)},
        flow=RealNVP(num_stages=2, num_units=16, base_modes=1),
        al_params=ALParams(
            c0=1.0, beta=4.0, num_iters=300, max_epochs=6, init_iters=200, batch_size=200
        ),
        init={"mean": [1.0, 0.0], "std": [0.05, 0.5]},
        n_test=50,
        random_state=0,
        jit_compile=False,
    )


def test_a_fit_converged_on_one_of_two_lobes_warns_where_the_other_is(tmp_path):
    # Only the check after the fit sees the left lobe.
    est = on_the_right_lobe(square_and_identity)
    with pytest.warns(CoverageWarning, match=r"at a in \[-1\.0\d*, -0\.9"):
        est.fit(*TWO_LOBES)
    assert est.converged_ and est.coverage_.left_out > 0.4
    loaded = sklearn_epi.load(est.save(tmp_path / "fit.npz"))
    assert loaded.coverage_.n_left_out == est.coverage_.n_left_out
    assert loaded.coverage_.regions.equals(est.coverage_.regions)
    # The command line's result (and so its report and the web interface) says it too.
    _write_outputs(est, tmp_path / "out", EXIT_CONVERGED)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["coverage"] == est.coverage_.describe()
    assert result["coverage_left_out"] == est.coverage_.left_out


def fails_far_right(z):
    """square_and_identity, but a simulator that breaks at a > 1.9 (where the fit never goes)."""
    with tf.control_dependencies([tf.debugging.assert_less(z[:, 0], 1.9, "simulator broke")]):
        return square_and_identity(z)


def test_a_failing_coverage_check_keeps_the_fit_and_says_why():
    est = on_the_right_lobe(fails_far_right)
    with pytest.warns(UserWarning, match="coverage check after the fit failed .*simulator broke"):
        est.fit(*TWO_LOBES)
    assert est.converged_ and est.coverage_ is None and len(est.flow_weights_) > 0
