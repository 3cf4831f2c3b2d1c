"""Known answers for the maximum-entropy reference solver.

Each case has a maximum known independently of the solver: a Gaussian, a
truncated exponential (closed form up to one 1-D root), the uniform
distribution, a bimodal 1-D density solved by quadrature, and the paper's
2D oscillator (H* = 7.040 nats from 6M independent samples).
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import identity
from scipy import optimize
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from sklearn_epi.analysis import maxent_reference
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues
from sklearn_epi.reference import LowEffectiveSampleSizeWarning


@pytest.fixture(scope="module")
def gaussian():
    return maxent_reference(
        identity, [[-20.0, 20.0]], mu=[1.0], sigma2=[0.25], n_samples=1_000_000, random_state=0
    )


@pytest.fixture(scope="module")
def oscillator():
    return maxent_reference(
        lds_eigenvalues, LDS_BOUNDS, LDS_MU, LDS_SIGMA2, n_samples=1_000_000, random_state=1
    )


def test_mean_and_variance_on_a_wide_box_give_the_gaussian_entropy(gaussian):
    exact = 0.5 * np.log(2 * np.pi * np.e * 0.25)
    assert gaussian.converged
    assert abs(gaussian.entropy - exact) < max(0.01, 4 * gaussian.entropy_se)


def test_gaussian_multipliers_are_zero_and_minus_one_over_two_sigma2(gaussian):
    # q(z) ∝ exp(eta_0 z + eta_1 (z - mu)^2) = N(mu, sigma2) needs eta = [0, -1 / (2 sigma2)].
    assert gaussian.constraint_names == ("mean_f0", "var_f0")
    np.testing.assert_allclose(gaussian.eta, [0.0, -2.0], atol=0.05)


def test_weights_are_normalised_and_reproduce_the_targets(gaussian):
    assert gaussian.weights.shape == (1_000_000,)
    assert gaussian.samples.shape == (1_000_000, 1)
    assert np.isclose(gaussian.weights.sum(), 1.0)
    np.testing.assert_allclose(gaussian.moments, [1.0, 0.25], rtol=1e-5)
    assert gaussian.max_residual < 1e-5
    assert gaussian.ess == pytest.approx(1.0 / np.sum(gaussian.weights**2))


def test_resampled_draws_follow_the_maximum_entropy_distribution(gaussian):
    draws = gaussian.sample(20_000, random_state=0)
    assert draws.shape == (20_000, 1)
    assert abs(draws.mean() - 1.0) < 0.02
    assert abs(draws.var() - 0.25) < 0.02


def test_mean_only_on_an_interval_gives_the_truncated_exponential():
    length, mu = 2.0, 0.6

    def mean(eta):
        return length / (1.0 - np.exp(-eta * length)) - 1.0 / eta

    eta = optimize.brentq(lambda e: mean(e) - mu, -50.0, -1e-6)
    entropy = np.log((np.exp(eta * length) - 1.0) / eta) - eta * mu
    ref = maxent_reference(
        identity, {"x": (0.0, length)}, mu=[mu], n_samples=200_000, random_state=0
    )
    assert ref.converged
    assert ref.constraint_names == ("mean_f0",)
    assert ref.eta[0] == pytest.approx(eta, abs=0.03)
    assert abs(ref.entropy - entropy) < max(0.005, 4 * ref.entropy_se)


def test_a_target_the_uniform_already_meets_gives_the_log_volume():
    ref = maxent_reference(
        lambda z: z[:, 0], [[0.0, 1.0], [0.0, 2.0]], mu=[0.5], n_samples=100_000, random_state=0
    )
    assert ref.converged
    assert abs(ref.eta[0]) < 0.05
    assert ref.entropy == pytest.approx(np.log(2.0), abs=1e-3)
    assert ref.ess > 0.99 * 100_000


def test_an_optimiser_that_reports_failure_at_the_optimum_still_converged(monkeypatch):
    # SciPy 1.16's trust-exact says "A bad approximation caused failure to
    # predict improvement" when it ends at the optimum (seen with TF 2.21's
    # environment); the residual, not the flag, decides.
    import scipy.optimize

    real = scipy.optimize.minimize

    def flagged(*args, **kwargs):
        result = real(*args, **kwargs)
        result.success = False
        return result

    monkeypatch.setattr(scipy.optimize, "minimize", flagged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning either
        ref = maxent_reference(
            lambda z: z[:, 0], [[0.0, 1.0], [0.0, 2.0]], mu=[0.5], n_samples=100_000, random_state=0
        )
    assert ref.converged


def _quadrature_maxent(statistic, low, high, targets):
    """Entropy of the 1-D maximum-entropy density, with the dual on a fine grid."""
    grid = np.linspace(low, high, 60_001)
    log_dz = np.log(np.full(grid.size, grid[1] - grid[0]))
    log_dz[[0, -1]] -= np.log(2.0)  # trapezoid rule
    T = statistic(grid)

    def dual(eta):
        logits = T @ eta + log_dz
        p = np.exp(logits - logsumexp(logits))
        return logsumexp(logits) - eta @ targets, p @ T - targets

    result = optimize.minimize(dual, np.zeros(len(targets)), jac=True, method="BFGS", tol=1e-9)
    assert np.abs(result.jac).max() < 1e-6
    return result.fun


def test_a_two_lobed_answer_puts_half_the_mass_on_each_lobe():
    # f = z0^2 = 4 +- 0.5 forces z0 to +-2; z1 is unconstrained on [-1, 1].
    ref = maxent_reference(
        lambda z: z[:, :1] ** 2,
        [[-3.0, 3.0], [-1.0, 1.0]],
        mu=[4.0],
        sigma2=[0.25],
        n_samples=200_000,
        random_state=0,
    )
    assert ref.converged
    right = ref.weights[ref.samples[:, 0] > 0].sum()
    assert 0.45 < right < 0.55
    near_lobes = np.abs(np.abs(ref.samples[:, 0]) - 2.0) < 0.5
    assert ref.weights[near_lobes].sum() > 0.99


def test_a_two_lobed_answer_has_the_entropy_found_by_quadrature():
    ref = maxent_reference(
        lambda z: z[:, :1] ** 2,
        [[-3.0, 3.0], [-1.0, 1.0]],
        mu=[4.0],
        sigma2=[0.25],
        n_samples=200_000,
        random_state=1,
    )
    exact_z0 = _quadrature_maxent(
        lambda z: np.stack([z**2, (z**2 - 4.0) ** 2], axis=1), -3.0, 3.0, np.array([4.0, 0.25])
    )
    exact = exact_z0 + np.log(2.0)  # z1 uniform on [-1, 1]
    assert abs(ref.entropy - exact) < max(0.01, 4 * ref.entropy_se)


def test_oscillator_maximum_is_7_040_nats(oscillator):
    assert oscillator.converged
    assert abs(oscillator.entropy - 7.040) < max(0.05, 4 * oscillator.entropy_se)


def test_oscillator_multipliers_match_the_independent_solution(oscillator):
    assert oscillator.constraint_names == ("mean_f0", "mean_f1", "var_f0", "var_f1")
    np.testing.assert_allclose(oscillator.eta, [0.00, 0.26, -7.99, -1.19], atol=0.1, rtol=0.03)


def test_oscillator_maximum_puts_half_the_mass_on_each_lobe(oscillator):
    a12, a21 = oscillator.samples[:, 1], oscillator.samples[:, 2]
    lobe = oscillator.weights[(a12 > 0) & (a21 < 0)].sum()
    mirror = oscillator.weights[(a12 < 0) & (a21 > 0)].sum()
    assert lobe + mirror > 0.99
    assert 0.45 < lobe / (lobe + mirror) < 0.55


def test_constraint_names_follow_labelled_targets():
    ref = maxent_reference(
        identity,
        {"x": (0.0, 1.0), "y": (0.0, 1.0)},
        mu={"a": 0.5, "b": 0.5},
        sigma2={"b": 1 / 12, "a": 1 / 12},
        n_samples=10_000,
        random_state=0,
        min_ess=10,
    )
    assert ref.constraint_names == ("mean_a", "mean_b", "var_a", "var_b")
    assert ref.param_names == ("x", "y")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_narrow_target_on_a_big_box_warns_that_the_sample_is_too_small():
    with pytest.warns(LowEffectiveSampleSizeWarning, match="effective sample size .* too small"):
        ref = maxent_reference(
            identity, [[-100.0, 100.0]], mu=[0.0], sigma2=[1e-4], n_samples=1000, random_state=0
        )
    assert ref.ess < 1000


def test_an_unreachable_target_warns_that_the_optimiser_did_not_converge():
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        ref = maxent_reference(
            identity, [[0.0, 1.0]], mu=[2.0], n_samples=1000, random_state=0, min_ess=1
        )
    assert not ref.converged


def test_a_statistic_that_fails_on_float64_is_evaluated_in_float32():
    def float32_only(z):
        return z * tf.constant(1.0, tf.float32)

    with pytest.warns(UserWarning, match="evaluated in float32"):
        ref = maxent_reference(
            float32_only, [[0.0, 1.0]], mu=[0.5], n_samples=2000, random_state=0, min_ess=1
        )
    assert ref.dtype == "float32"
    assert ref.entropy == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"statistic": "z"}, TypeError, "statistic must be callable"),
        ({"bounds": [[0.0, np.inf]]}, ValueError, "bounds must be finite"),
        ({"bounds": [[1.0, 0.0]]}, ValueError, "low < high"),
        ({"mu": [np.nan]}, ValueError, "mu must be finite"),
        ({"sigma2": [-1.0]}, ValueError, "sigma2 must be finite and positive"),
        ({"sigma2": [1.0, 1.0]}, ValueError, "sigma2 must have the same length"),
        ({"n_samples": 1}, ValueError, "n_samples must be >= 2"),
        ({"n_samples": 1e4}, TypeError, "n_samples must be an integer"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
        ({"tol": -1.0}, ValueError, "tol must be finite and positive"),
        ({"min_ess": "many"}, TypeError, "min_ess must be a real number"),
    ],
)
def test_bad_arguments_are_refused_before_the_statistic_runs(kwargs, error, match):
    calls = []

    def statistic(z):
        calls.append(z.shape)
        return z

    args = {"statistic": statistic, "bounds": [[0.0, 1.0]], "mu": [0.5], "n_samples": 100}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        maxent_reference(**args)
    assert calls == []


@pytest.mark.parametrize(
    "statistic, match",
    [
        (lambda z: tf.concat([z, z], axis=1), r"statistic must return shape \(n, 1\)"),
        (lambda z: tf.math.log(z - 0.5), "statistic returned non-finite values"),
        (lambda z: tf.ones_like(z), "constant on the support for constraint 'mean_f0'"),
    ],
)
def test_a_bad_statistic_output_is_refused_with_its_name(statistic, match):
    with pytest.raises(ValueError, match=match):
        maxent_reference(statistic, [[0.0, 1.0]], mu=[0.5], n_samples=100, random_state=0)
