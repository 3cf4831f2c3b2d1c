"""Convergence test, entropy estimate and penalty rule on known inputs."""

import numpy as np
import pytest

from sklearn_epi.convergence import (
    NOISE_ALLOWANCE,
    constraint_pvalues,
    constraints_hold,
    entropy_estimate,
    entropy_slack,
    is_converged,
    moment_errors,
    penalty_should_grow,
)
from sklearn_epi.property import EmergentProperty


def test_pvalue_is_twice_the_smaller_tail_fraction():
    R = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(constraint_pvalues(R), [0.5, 0.5])


def test_all_batches_on_one_side_give_p_zero():
    R = np.full((200, 3), 0.1)
    np.testing.assert_array_equal(constraint_pvalues(R), [0.0, 0.0, 0.0])


def test_symmetric_noise_gives_large_pvalues():
    R = np.random.default_rng(0).normal(size=(200, 2))
    assert (constraint_pvalues(R) > 0.5).all()


def test_bonferroni_threshold_is_alpha_over_m():
    # m = 4, alpha = 0.05: threshold 0.0125.
    assert is_converged(np.array([0.013, 0.5, 0.5, 0.5]), 0.05)
    assert not is_converged(np.array([0.012, 0.5, 0.5, 0.5]), 0.05)


def test_moment_errors_are_the_whole_samples_violation_in_its_standard_errors():
    # 200 batches, mean 0.1 and standard deviation 1: the whole sample's
    # violation is 0.1, its standard error 1 / sqrt(200).
    R = np.random.default_rng(0).normal(size=(200, 2))
    R = (R - R.mean(axis=0)) / R.std(axis=0, ddof=1) + [0.1, 0.0]
    np.testing.assert_allclose(moment_errors(R), [0.1 * np.sqrt(200), 0.0], atol=1e-12)
    assert moment_errors(np.full((200, 1), 0.1))[0] == np.inf


def _noise(B, m, seed=0):
    return np.random.default_rng(seed).normal(size=(B, m))


def test_a_violation_the_papers_batch_test_admits_does_not_hold():
    # Half a batch's spread in every batch: one batch in three lies below
    # zero, so the paper's test passes, yet 200 batches together put the
    # violation 7 standard errors from zero.
    prop = EmergentProperty(np.zeros(1), None, ("f",))
    R = _noise(200, 1) + 0.5
    assert constraint_pvalues(R)[0] > prop.alpha
    assert not constraints_hold(R, prop.alpha)
    assert not prop.test(R)[1]
    assert prop.test(_noise(200, 1))[1]


def test_constraints_within_the_noise_allowance_hold():
    # The bound is the two-sided Bonferroni quantile, doubled.
    m, alpha = 4, 0.05
    bound = NOISE_ALLOWANCE * 2.4977  # norm.isf(0.05 / 8)
    R = _noise(200, m)
    R = (R - R.mean(axis=0)) / R.std(axis=0, ddof=1)
    step = 1 / np.sqrt(200)
    assert constraints_hold(R + 0.999 * bound * step, alpha)
    assert not constraints_hold(R + 1.001 * bound * step, alpha)


def test_many_small_violations_of_one_sign_do_not_hold():
    # 100 constraints, each 1.4 standard errors wide (within its own
    # bound): together they buy 14 standard errors of entropy.
    R = _noise(200, 100) + 0.1
    assert np.abs(moment_errors(R)).max() < NOISE_ALLOWANCE * 3.48  # norm.isf(0.05 / 200)
    assert constraints_hold(R, 0.05)
    slack, se = entropy_slack(R, np.ones(100))
    assert slack / se > 10
    assert not constraints_hold(R, 0.05, multipliers=np.ones(100))
    assert constraints_hold(_noise(200, 100), 0.05, multipliers=np.ones(100))


def test_entropy_slack_is_the_multipliers_times_the_violations():
    R = np.array([[1.0, 2.0], [3.0, 4.0]])
    slack, se = entropy_slack(R, np.array([0.5, -1.0]))
    assert slack == pytest.approx(np.mean([0.5 - 2.0, 1.5 - 4.0]))
    assert se == pytest.approx(np.std([-1.5, -2.5], ddof=1) / np.sqrt(2))


def test_entropy_estimate_of_standard_normal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200_000)
    log_q = -0.5 * x**2 - 0.5 * np.log(2 * np.pi)
    H, se = entropy_estimate(log_q)
    assert abs(H - 0.5 * np.log(2 * np.pi * np.e)) < 4 * se
    assert 0 < se < 0.01


def test_penalty_grows_when_violation_did_not_shrink():
    rng = np.random.default_rng(0)
    same = np.random.default_rng(1).normal(1.0, 0.01, size=200)
    grow, p = penalty_should_grow(same, same, gamma=0.25, rng=rng)
    assert grow and p < 1e-6


def test_penalty_stays_when_violation_shrank_far_below_gamma():
    rng = np.random.default_rng(0)
    before = np.random.default_rng(1).normal(1.0, 0.01, size=200)
    after = np.random.default_rng(2).normal(0.01, 0.001, size=200)
    grow, p = penalty_should_grow(after, before, gamma=0.25, rng=rng)
    assert not grow and p > 1 - 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_penalty_decision_is_reproducible_from_the_rng(seed):
    a = np.random.default_rng(3).normal(0.25, 0.05, size=200)
    b = np.random.default_rng(4).normal(1.0, 0.05, size=200)
    first = penalty_should_grow(a, b, 0.25, np.random.default_rng(seed))
    second = penalty_should_grow(a, b, 0.25, np.random.default_rng(seed))
    assert first == second


def test_a_fit_that_fails_only_on_the_whole_sample_is_told_so():
    prop = EmergentProperty(np.zeros(2), None, ("a", "b"))
    message = prop.diagnose(np.array([0.5, 0.9]), moment_error=6.25)
    assert "passes the batch test" in message and "6.25 standard errors" in message
    assert "mean_a (p = 0.001)" in prop.diagnose(np.array([0.001, 0.9]))


def test_a_slack_the_entropy_estimate_cannot_resolve_is_no_excess():
    R = _noise(200, 100) + 0.1
    slack, se = entropy_slack(R, np.ones(100))
    assert not constraints_hold(R, 0.05, np.ones(100), entropy_se=slack / 10)
    assert constraints_hold(R, 0.05, np.ones(100), entropy_se=slack)
