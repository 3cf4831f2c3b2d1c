"""EPIEstimator on problems with known answers.

The identity statistic on an unbounded space has a closed-form EPI solution:
the maximum-entropy density with given means and variances is the Gaussian
N(mu, diag(sigma2)), of entropy 0.5 * sum(log(2 pi e sigma2)).
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import TINY_AL, TINY_MU, TINY_SIGMA2, identity
from sklearn.exceptions import ConvergenceWarning

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.optimize import SeedSpec, fit_seed
from sklearn_epi.property import EmergentProperty
from sklearn_epi.support import parse_bounds

MU, SIGMA2 = TINY_MU.to_numpy(), TINY_SIGMA2


@pytest.fixture
def gaussian_fit(tiny_fit):
    """The canonical tiny problem (conftest): the Gaussian N(MU, diag(SIGMA2))."""
    return tiny_fit


def test_fit_converges_to_the_analytic_max_entropy(gaussian_fit):
    assert gaussian_fit.converged_
    analytic = 0.5 * np.sum(np.log(2 * np.pi * np.e * SIGMA2))
    assert abs(gaussian_fit.entropy_ - analytic) < 0.1


def test_samples_have_the_target_moments(gaussian_fit):
    Z = gaussian_fit.sample(20_000, random_state=1)
    np.testing.assert_allclose(Z.mean(axis=0), MU, atol=0.1)
    np.testing.assert_allclose(Z.var(axis=0), SIGMA2, rtol=0.15)


def test_hessian_is_minus_inverse_covariance(gaussian_fit):
    Z = gaussian_fit.sample(50, random_state=2)
    central = Z[np.all(np.abs(Z - MU) < np.sqrt(SIGMA2), axis=1)]
    H = gaussian_fit.hessian(central)
    assert H.shape == (len(central), 2, 2)
    np.testing.assert_allclose(H.mean(axis=0), -np.diag(1 / SIGMA2), atol=0.2)
    np.testing.assert_allclose(H, np.transpose(H, (0, 2, 1)), atol=1e-4)


def test_gradient_is_inverse_covariance_times_offset(gaussian_fit):
    Z = gaussian_fit.sample(50, random_state=3)
    central = Z[np.all(np.abs(Z - MU) < np.sqrt(SIGMA2), axis=1)]
    expected = (MU - central) / SIGMA2
    np.testing.assert_allclose(gaussian_fit.gradient(central), expected, atol=0.3)


def test_score_samples_matches_the_gaussian_density(gaussian_fit):
    Z = np.array([[1.0, -2.0], [1.5, -1.0]])
    gauss = -0.5 * np.sum((Z - MU) ** 2 / SIGMA2 + np.log(2 * np.pi * SIGMA2), axis=1)
    np.testing.assert_allclose(gaussian_fit.score_samples(Z), gauss, atol=0.1)


def test_score_is_entropy_when_property_holds_and_minus_inf_otherwise(gaussian_fit):
    assert gaussian_fit.score(MU, SIGMA2) == gaussian_fit.entropy_
    assert gaussian_fit.score(MU + 1.0, SIGMA2) == -np.inf
    assert gaussian_fit.score(MU) == gaussian_fit.entropy_


def test_fitted_attributes_describe_the_fit(gaussian_fit):
    est = gaussian_fit
    assert list(est.param_names_) == ["x", "y"]
    assert est.property_.constraint_names == ["mean_x", "mean_y", "var_x", "var_y"]
    assert est.lagrange_multipliers_.shape == (4,)
    assert est.penalty_ > 0 and est.best_seed_ == 0 and 1 <= est.epoch_ <= 8
    assert list(est.seeds_.columns[:4]) == ["seed", "random_seed", "converged", "entropy"]
    test_rows = est.history_[est.history_["phase"] == "test"]
    # The fit ran until `patience` epochs after the epoch it kept (or max_epochs).
    last = min(8, est.epoch_ + TINY_AL.patience)
    assert list(test_rows["epoch"]) == list(range(last + 1))
    assert est.n_iter_ == last * 300
    train_rows = est.history_[est.history_["phase"] == "train"]
    assert len(train_rows) == last * 300 // TINY_AL.log_rate
    for column in ["H", "cost", "c", "R_mean_x", "p_var_y", "eta_var_y", "converged"]:
        assert column in est.history_.columns
    chosen = test_rows[test_rows["epoch"] == est.epoch_].iloc[0]
    assert bool(chosen["converged"]) and chosen["H"] == est.entropy_
    later = test_rows[(test_rows["epoch"] > est.epoch_) & test_rows["converged"]]
    assert (later["H"] < est.entropy_).all()


def test_same_random_state_gives_same_samples(gaussian_fit):
    a = gaussian_fit.sample(10, random_state=7)
    np.testing.assert_array_equal(a, gaussian_fit.sample(10, random_state=7))
    assert not np.array_equal(a, gaussian_fit.sample(10, random_state=8))


def test_same_random_state_gives_same_history():
    def fit():
        return EPIEstimator(
            identity,
            [[-np.inf, np.inf]],
            al_params=ALParams(num_iters=100, max_epochs=2, init_iters=50, batch_size=500),
            random_state=3,
        ).fit([0.0], [1.0])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first, second = fit(), fit()
    pd.testing.assert_frame_equal(first.history_, second.history_)
    np.testing.assert_array_equal(first.sample(5, random_state=0), second.sample(5, random_state=0))


@pytest.fixture(scope="module")
def bounded_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EPIEstimator(
            identity,
            {"a": (0.0, 1.0), "b": (0.0, np.inf), "c": (-np.inf, 2.0)},
            al_params=ALParams(num_iters=50, max_epochs=1, init_iters=50, batch_size=500),
            random_state=0,
            jit_compile=False,
        ).fit([0.5, 1.0, 1.0])


def test_score_samples_is_minus_inf_on_and_outside_the_bounds(bounded_fit):
    Z = np.array(
        [
            [0.0, 1.0, 1.0],
            [1.0, 1.0, 1.0],
            [1.5, 1.0, 1.0],
            [0.5, -1.0, 1.0],
            [0.5, 1.0, 2.0],
            [0.5, 1.0, 1.0],
        ]
    )
    logq = bounded_fit.score_samples(Z)
    np.testing.assert_array_equal(logq[:5], -np.inf)
    assert np.isfinite(logq[5])


def test_samples_stay_inside_mixed_bounds(bounded_fit):
    Z = bounded_fit.sample(2000, random_state=0)
    assert Z.shape == (2000, 3)
    assert np.isfinite(bounded_fit.score_samples(Z)).all()


def test_wrong_number_of_columns_is_rejected(bounded_fit):
    with pytest.raises(ValueError, match=r"Z must have shape \(n, 3\)"):
        bounded_fit.score_samples(np.zeros((4, 2)))


@pytest.mark.parametrize("n", [0, -3])
def test_sample_rejects_non_positive_counts(bounded_fit, n):
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        bounded_fit.sample(n)


def test_no_convergence_warns_and_keeps_a_best_effort_fit():
    with pytest.warns(ConvergenceWarning, match="mean_f0"):
        est = EPIEstimator(
            identity,
            [[0.0, 1.0]],
            al_params=ALParams(num_iters=20, max_epochs=1, init_iters=0, batch_size=500),
            random_state=0,
            jit_compile=False,
        ).fit([5.0])  # unreachable on (0, 1)
    assert not est.converged_ and est.score([5.0]) == -np.inf
    assert est.sample(3, random_state=0).shape == (3, 1)


def _nan_below_minus_one(z):
    return tf.sqrt(z + 1.0)


def test_nan_during_training_marks_the_seed_failed():
    support = parse_bounds([[-np.inf, np.inf]])
    spec = SeedSpec(
        flow=__import__("sklearn_epi").RealNVP(),
        support=support,
        statistic=_nan_below_minus_one,
        prop=EmergentProperty(np.array([1.0]), None, ("f0",), n_test=100),
        al=ALParams(num_iters=100, max_epochs=2, init_iters=0, batch_size=500),
        init_mean=np.zeros(1),
        init_std=np.ones(1),
        jit_compile=False,
    )
    result = fit_seed(spec, seed=0)
    # The epoch-0 test (after the Gaussian initialisation) is the first to
    # evaluate the statistic below -1.
    assert result.failed and result.weights is None
    assert "non-finite statistic 'f0' (nan) at " in result.message
    assert "at epoch 0, iteration 0" in result.message


def _nan_above_six(z):
    return tf.where(z > 6.0, tf.constant(np.nan, z.dtype), z)


def test_a_statistic_undefined_where_training_goes_is_named_for_every_seed():
    # The start N(0, 1) never samples z > 6, the target pulls the flow there:
    # the NaN appears in a training step, whose weights are NaN by the time
    # the chunk reports. A seed said "try a smaller al_params.lr" then.
    est = EPIEstimator(
        _nan_above_six,
        [[-np.inf, np.inf]],
        n_seeds=2,
        al_params=ALParams(num_iters=300, max_epochs=3, init_iters=100, batch_size=200),
        init={"mean": 0.0, "std": 1.0},
        random_state=0,
        jit_compile=False,
    )
    with pytest.raises(RuntimeError) as raised:
        est.fit([8.0])
    messages = str(raised.value)
    assert messages.count("non-finite statistic at a training sample at epoch") == 2
    assert "tighten the bounds" in messages and "al_params.lr" not in messages


def test_every_seed_failing_raises_with_where_they_failed():
    est = EPIEstimator(
        _nan_below_minus_one,
        [[-np.inf, np.inf]],
        n_seeds=2,
        al_params=ALParams(num_iters=100, max_epochs=2, init_iters=0, batch_size=500),
        random_state=0,
        jit_compile=False,
    )
    with pytest.raises(
        RuntimeError,
        match=r"(?s)seed 0 \(random seed \d+\): non-finite statistic 'f0'.*"
        r"seed 1 \(random seed \d+\): .*tighten the bounds",
    ):
        est.fit([1.0])
