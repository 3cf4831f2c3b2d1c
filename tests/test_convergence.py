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
    moment_error_bound,
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


def test_a_violation_the_papers_batch_test_admits_is_many_standard_errors_wide():
    # Half a batch's spread in every batch: one batch in three lies below
    # zero, so the paper's test passes, yet 200 batches together put the
    # violation 7 standard errors from zero.
    R = np.random.default_rng(0).normal(size=(200, 1)) + 0.5
    assert constraint_pvalues(R)[0] > 0.05
    assert moment_errors(R)[0] > 6


def _batches(offsets, m=40, B=200, seed=0):
    """B batch estimates of m violations: unit spread, whole-sample means ``offsets`` in se."""
    R = np.random.default_rng(seed).normal(size=(B, m))
    R = (R - R.mean(axis=0)) / R.std(axis=0, ddof=1)
    return R + np.asarray(offsets, float) / np.sqrt(B)


def test_the_whole_sample_holds_each_violation_within_three_times_the_bonferroni_bound():
    # 40 constraints at alpha = 0.05: the Bonferroni bound is 3.23 standard
    # errors, widened to 9.68.
    assert NOISE_ALLOWANCE == 3.0
    bound = NOISE_ALLOWANCE * 3.2272
    assert moment_error_bound(40, 0.05) == pytest.approx(bound, abs=1e-3)
    assert constraints_hold(_batches(np.r_[bound - 0.01, np.zeros(39)]), 0.05)
    assert not constraints_hold(_batches(np.r_[bound + 0.01, np.zeros(39)]), 0.05)
    # 20 standard errors, which the paper's test admits here, do not hold.
    wide = _batches(np.full(40, 20.0))
    assert is_converged(constraint_pvalues(wide), 0.05)
    assert not constraints_hold(wide, 0.05)


def test_many_small_violations_of_one_sign_fail_on_the_entropy_they_buy():
    # Each violation at 3 standard errors holds alone; with multipliers of
    # one sign their first-order entropy, 40 x 3 / sqrt(200) = 8.5, is
    # measurable (its standard error is sqrt(40 / 200) = 0.45).
    R = _batches(np.full(40, 3.0))
    assert constraints_hold(R, 0.05)
    assert not constraints_hold(R, 0.05, multipliers=np.ones(40))
    # Multipliers of both signs cancel it, as does an entropy estimate too
    # noisy to resolve it.
    assert constraints_hold(R, 0.05, multipliers=np.tile([1.0, -1.0], 20))
    assert constraints_hold(R, 0.05, multipliers=np.ones(40), entropy_se=3.0)


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


def test_a_fit_that_passes_only_the_papers_test_is_told_which_test_failed():
    prop = EmergentProperty(np.array([0.0, 1.0]), np.array([1.0, 1.0]), ("a", "b"))
    wide = _batches(np.full(4, 20.0), m=4)
    pvalues, converged = prop.test(wide)
    assert prop.reached(pvalues) and not converged
    message = prop.diagnose(pvalues, moment_error=np.max(np.abs(moment_errors(wide))))
    assert "passes the paper's batch test" in message and "(20 standard errors)" in message
    assert "outside its noise" in prop.diagnose(pvalues)
    # A constraint that fails the paper's test is named with its p-value.
    far = _batches(np.r_[400.0, 0.0, 0.0, 0.0], m=4)
    assert "mean_a (p = 0)" in prop.diagnose(prop.test(far)[0])
