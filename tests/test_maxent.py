"""The maximum in maximum entropy: unit-free optimisation, a bounded penalty, known maxima.

The known answers here are not Gaussian: a bimodal and a ring-shaped
maximum-entropy distribution, each a shape that a flow started from a
Gaussian must split or bend to reach, with H* from the reference solver
(:func:`sklearn_epi.analysis.maxent_reference`).
"""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from sklearn.exceptions import ConvergenceWarning

from benchmarks import scale
from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.analysis import find_mode, maxent_reference
from sklearn_epi.convergence import moment_error_bound, patience_ran_out
from sklearn_epi.optimize import update_c, update_eta
from sklearn_epi.property import EmergentProperty

SHORT = ALParams(num_iters=100, max_epochs=3, init_iters=50, batch_size=100)


def fit_quietly(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def test_violations_are_measured_in_the_targets_own_units():
    prop = EmergentProperty(np.array([1.0, 5.0]), np.array([0.04, 25.0]), ("a", "b"))
    np.testing.assert_allclose(prop.scales(), [0.2, 5.0, 0.04, 25.0])
    means_only = EmergentProperty(np.array([1.0, 5.0]), None, ("a", "b"))
    np.testing.assert_allclose(means_only.scales([3.0, 0.0]), [3.0, 1.0])


def test_the_fit_does_not_depend_on_the_units_of_the_statistics():
    # The same property written with one statistic in units 1000 times
    # smaller (a rate in Hz beside one in kHz, say) must give the same fit:
    # the objective divides each violation by its target spread.
    mu, sigma2, k = np.array([1.0, -2.0]), np.array([0.5, 2.0]), np.array([1.0, 1000.0])

    def in_other_units(z):
        return z * tf.constant(k, z.dtype)

    def fit(statistic, mu, sigma2):
        est = EPIEstimator(
            statistic,
            [[-np.inf, np.inf]] * 2,
            al_params=SHORT,
            dtype="float64",
            random_state=0,
            jit_compile=False,
        )
        return fit_quietly(est, mu, sigma2).history_

    plain = fit(lambda z: z, mu, sigma2)
    scaled = fit(in_other_units, mu * k, sigma2 * k**2)
    assert (plain["phase"] == "test").sum() == 4
    for column in ("H", "cost", "c", "p_mean_f0", "p_mean_f1", "p_var_f0", "p_var_f1"):
        np.testing.assert_allclose(scaled[column], plain[column], rtol=1e-6, err_msg=column)


def _record(reached, R_batches, c=1.0):
    return SimpleNamespace(
        reached=reached,
        converged=False,
        R_batches=R_batches,
        R=R_batches.mean(axis=0),
        eta=np.zeros(R_batches.shape[1]),
        c=c,
        c_pvalue=np.nan,
    )


def _trainer(scale):
    return SimpleNamespace(
        eta=tf.Variable(np.zeros(len(scale))),
        c=tf.Variable(1.0, dtype=tf.float64),
        scale=tf.Variable(np.asarray(scale, float)),
    )


def test_an_epoch_that_passes_the_papers_test_leaves_the_penalty_as_it_is():
    # Violations at a batch's noise level cannot shrink by gamma, so the
    # paper's rule alone multiplies c by beta every epoch after its test
    # passes: a fit without stop_early overflowed c near epoch 65 and marked a
    # converged seed failed. The multipliers close the rest, down to the
    # whole sample's noise, with c fixed (the epochs are not yet "converged").
    noise = np.random.default_rng(0).normal(scale=0.01, size=(200, 2))
    al = ALParams()
    for reached, expected_c in ((True, 1.0), (False, al.beta)):
        trainer = _trainer([1.0, 1.0])
        update_c(
            trainer, _record(reached, noise), _record(True, noise), al, np.random.default_rng(1)
        )
        assert trainer.c.numpy() == expected_c


def _epochs(entropies, converged):
    return [
        SimpleNamespace(epoch=k, entropy=h, converged=c, worst_t=0.0)
        for k, (h, c) in enumerate(zip(entropies, converged))
    ]


def test_a_fit_stops_patience_epochs_after_the_epoch_it_keeps():
    al = ALParams(patience=2)
    # Epochs 0-5: converged from epoch 3 on, the entropy falling after it.
    falling = _epochs([5, 9, 8, 7, 6, 5], [False, False, False, True, True, True])
    assert [patience_ran_out(falling[: k + 1], al.patience) for k in range(6)] == [False] * 5 + [
        True
    ]
    # Rising while eta settles, with a dip (the RNN with N = 10): it goes on.
    rising = _epochs([5, 9, 8, 7, 6.9, 7.5, 7.8], [False, False, False] + [True] * 4)
    assert not any(patience_ran_out(rising[: k + 1], al.patience) for k in range(7))
    # Epochs that fail the test after the kept one count too.
    lapsed = _epochs([5, 7, 8, 9], [False, True, False, False])
    assert patience_ran_out(lapsed, al.patience)
    # Never converged, or patience None: only max_epochs ends the fit.
    assert not patience_ran_out(_epochs([5, 4, 3, 2], [False] * 4), al.patience)
    assert not patience_ran_out(falling, None)


def test_the_multipliers_move_by_the_penalty_gradient_in_the_targets_units():
    R_batches = np.tile([0.5, 2.0], (10, 1))
    trainer = _trainer([0.5, 2.0])
    record = _record(True, R_batches, c=3.0)
    update_eta(trainer, record)
    # d/dR of (c/2)||R/s||^2 is c R / s^2.
    np.testing.assert_allclose(trainer.eta.numpy(), [3.0 * 0.5 / 0.25, 3.0 * 2.0 / 4.0])


def square_of_first(z):
    return z[:, :1] ** 2


def squared_radius(z):
    return tf.reduce_sum(z**2, axis=1, keepdims=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "statistic, bounds, mu, sigma2",
    [
        # Two modes, at z0 = -2 and z0 = +2, with z1 uniform.
        (square_of_first, [[-3.0, 3.0]] * 2, [4.0], [0.5**2]),
        # A ring of radius 2: no mass in the middle.
        (squared_radius, [[-3.0, 3.0]] * 2, [4.0], [1.0**2]),
    ],
    ids=["two-modes", "ring"],
)
def test_non_gaussian_maxima_are_reached(statistic, bounds, mu, sigma2):
    ref = maxent_reference(statistic, bounds, mu, sigma2, n_samples=1_000_000, random_state=0)
    est = fit_quietly(EPIEstimator(statistic, bounds, random_state=0), mu, sigma2)
    assert est.converged_
    assert abs(est.entropy_ - ref.entropy) < 0.1, (est.entropy_, ref.entropy)
    if statistic is square_of_first:
        share = np.mean(est.sample(20_000, random_state=1)[:, 0] > 0)
        assert 0.4 < share < 0.6


def squares(z):
    return z**2


@pytest.mark.slow
def test_four_lobes_need_four_base_modes():
    # z0^2 and z1^2 both near 4 on [-3, 3]^2: four lobes at (+-2, +-2), a
    # quarter of the mass each. Each base mode becomes one lobe: two modes
    # found two lobes (0.65 nats short, about log 2), one mode one lobe.
    mu, sigma2 = [4.0, 4.0], [0.25, 0.25]
    bounds = [[-3.0, 3.0]] * 2
    ref = maxent_reference(squares, bounds, mu, sigma2, n_samples=1_000_000, random_state=0)
    # Three restarts, keeping the best converged one as a user's n_seeds does:
    # single seeds end 0.08-0.25 nats short of H* and which one does depends
    # on the machine's arithmetic (seed 0: 0.08 on the eighth session's
    # machine, 0.19 on the ninth's, with the same code).
    est = fit_quietly(
        EPIEstimator(squares, bounds, flow=RealNVP(base_modes=4), n_seeds=3, random_state=0),
        mu,
        sigma2,
    )
    assert est.converged_
    assert abs(est.entropy_ - ref.entropy) < 0.1, (est.entropy_, ref.entropy)
    Z = est.sample(20_000, random_state=1)
    quadrants = np.histogram2d(Z[:, 0], Z[:, 1], bins=[[-3, 0, 3], [-3, 0, 3]])[0] / len(Z)
    # A quarter each at the maximum; 0.17 instead costs about 0.02 nats, so
    # the entropy above is the tight check. One or two modes leave 0 here.
    assert quadrants.min() > 0.12, quadrants


@pytest.mark.slow
def test_a_one_lobed_answer_leaves_the_default_two_base_modes_merged():
    # The Gaussian N(mu, diag(sigma2)): one mode, at mu, wherever the search
    # starts, and the Hessian of log q there is -diag(1 / sigma2).
    mu, sigma2 = np.array([1.0, -2.0]), np.array([0.25, 1.0])
    est = fit_quietly(
        EPIEstimator(lambda z: z, [[-np.inf, np.inf]] * 2, random_state=0), mu, sigma2
    )
    assert est.converged_
    starts = [[2.5, 1.0], [-0.5, -4.0], [1.0, 0.0], [0.0, -3.0]]
    modes = np.array([find_mode(est, z0=start) for start in starts])
    np.testing.assert_allclose(modes, np.tile(mu, (4, 1)), atol=0.15)
    hessian = est.hessian(modes[:1])[0]
    np.testing.assert_allclose(hessian, -np.diag(1 / sigma2), rtol=0.2, atol=0.1)


#: A faster schedule than the defaults' gentle start: these maxima are one-lobed.
FAST = ALParams(c0=0.1, beta=2.0, num_iters=300, init_iters=300, max_epochs=15)


@pytest.mark.slow
@pytest.mark.parametrize("family, D", [("gaussian", 6), ("box", 4)])
def test_a_known_maximum_beyond_the_plane_is_reached_with_the_constraints_holding(family, D):
    # The scale benchmark's families at a small D: a linear-Gaussian
    # statistic (analytic H*) and the RNN's box with per-coordinate targets
    # (H* by quadrature). Under the paper's test alone the kept epoch could
    # be many standard errors wide (the Gaussian at D = 20: 0.55 nats above
    # H*); converged now means the violations are within the whole test
    # sample's noise, so the entropy itself is the maximum's.
    statistic, bounds, mu, sigma2, h_star = scale.problem(family, D)
    est = fit_quietly(EPIEstimator(statistic, bounds, al_params=FAST, random_state=0), mu, sigma2)
    assert est.converged_
    assert abs(est.entropy_ - h_star) < 0.1, (est.entropy_, h_star)
    errors = scale.sample_moment_errors(statistic, est.sample(100_000, random_state=1), mu, sigma2)
    bound = moment_error_bound(errors.size, 0.05)
    assert np.max(np.abs(errors)) < bound, (errors, bound)
    kept = est.history_.query("phase == 'test' and epoch == @est.epoch_").iloc[0]
    assert abs(kept["H_corrected"] - h_star) < 0.1, (kept["H_corrected"], h_star)
    assert est.seeds_.loc[0, "entropy_corrected"] == pytest.approx(kept["H_corrected"])
    assert est.seeds_.loc[0, "moment_error"] == pytest.approx(kept["moment_error"])


def test_al_params_saved_before_patience_load_running_every_epoch_as_they_did():
    state = ALParams().__getstate__()
    del state["patience"]
    old = ALParams.__new__(ALParams)
    old.__setstate__(state)
    assert old.get_params()["patience"] is None


def test_al_params_saved_before_the_rate_schedule_load_with_the_constant_rate_they_used():
    state = ALParams().__getstate__()
    del state["lr_schedule"]
    old = ALParams.__new__(ALParams)
    old.__setstate__(state)
    assert old.get_params()["lr_schedule"] == "constant"
