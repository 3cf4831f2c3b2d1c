"""Misbehaving statistics, extreme points and bad luck end in clear outcomes."""

import warnings

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from conftest import identity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.support import parse_bounds

TINY = ALParams(num_iters=50, max_epochs=2, init_iters=20, batch_size=100)


def fails_on_large_batches(z):
    if z.shape[0] is not None and z.shape[0] > 8:  # passes the small probe batch only
        raise ArithmeticError("simulator diverged")
    return z


def test_statistic_error_in_a_worker_names_the_seed_and_keeps_the_traceback():
    est = EPIEstimator(
        fails_on_large_batches, [[-np.inf, np.inf]], al_params=TINY, n_seeds=2, n_jobs=2
    )
    # TF re-raises errors from traced user code as StagingError, with the
    # original exception and the user's frame in the message.
    with pytest.raises(RuntimeError, match="every seed failed") as info:
        est.fit([0.0])
    message = str(info.value)
    for index in (0, 1):
        assert f"seed {index} (random seed " in message
    assert "ArithmeticError: simulator diverged (raised in epoch 0" in message
    assert "fails_on_large_batches" in message  # the worker's traceback
    assert 'raise ArithmeticError("simulator diverged")' in message


def test_statistic_that_xla_cannot_compile_falls_back_with_a_warning():
    def through_python(z):
        return tf.py_function(lambda x: 2.0 * x, [z], z.dtype)

    with pytest.warns(RuntimeWarning, match="could not be compiled with XLA"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = EPIEstimator(
                through_python, [[-np.inf, np.inf]], al_params=TINY, random_state=0
            ).fit([1.0])
    assert not est.seeds_.loc[0, "jit_compile"]


def test_float64_statistic_in_a_float32_fit_is_cast():
    def doubled(z):
        return tf.cast(z, tf.float64) * 2.0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = EPIEstimator(
            doubled, [[-np.inf, np.inf]], al_params=TINY, random_state=0, jit_compile=False
        )
        est.fit([1.0])
    assert np.isfinite(est.entropy_)


class NaNFromCall:
    """Identity through py_function that returns NaN from the given statistic call on."""

    def __init__(self, first_bad_call):
        self.first_bad_call, self.count = first_bad_call, 0

    def __call__(self, z):
        return tf.py_function(self._run, [z], z.dtype)

    def _run(self, z):
        self.count += 1
        return z * np.nan if self.count >= self.first_bad_call else z


def test_nan_after_a_converged_epoch_keeps_that_epoch():
    # Calls: 1 probe, 2 epoch-0 test passes, then 300 steps + 2 test passes
    # per epoch: call 1816 is the first step of epoch 7. Epochs 5 and 6
    # converge, and the fit runs on past them.
    al = ALParams(
        c0=1.0,
        beta=4.0,
        num_iters=300,
        max_epochs=8,
        init_iters=100,
        batch_size=200,
        patience=None,
    )
    est = EPIEstimator(NaNFromCall(1816), [[-np.inf, np.inf]], al_params=al, random_state=0)
    with pytest.warns(RuntimeWarning, match="seed 0: non-finite statistic 'f0' .* at epoch 7"):
        est.set_params(jit_compile=False).fit([1.0], [0.5])
    assert est.seeds_.loc[0, "failed"]
    assert "epoch 7, iteration 1850" in est.seeds_.loc[0, "message"]
    assert est.epoch_ in (5, 6) and est.converged_


def test_impossible_property_warns_with_failing_constraints_and_pvalues():
    with pytest.warns(ConvergenceWarning, match=r"mean_f0 \(p = 0\)"):
        est = EPIEstimator(
            identity, [[0.0, 1.0], [0.0, 1.0]], al_params=TINY, random_state=0, jit_compile=False
        ).fit([2.0, 0.5])
    assert not est.converged_ and est.score([2.0, 0.5]) == -np.inf


@pytest.fixture(scope="module")
def mixed_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EPIEstimator(
            identity,
            {
                "box": (0.0, 1.0),
                "rate": (0.0, np.inf),
                "drive": (-np.inf, 2.0),
                "free": (-np.inf, np.inf),
            },
            al_params=TINY,
            random_state=0,
            jit_compile=False,
        ).fit([0.5, 1.0, 1.0, 0.0])


@pytest.mark.parametrize(
    "point",
    [
        [0.5, 1e-6, 1.0, 0.0],
        [0.5, 1e4, 1.0, 0.0],
        [0.5, 1.0, -1e4, 0.0],
        [0.5, 1.0, 1.0, 1e3],
        [1e-6, 1.0, 1.0, 0.0],
        [1 - 1e-6, 1.0, 1.0, 0.0],
    ],
)
def test_log_density_far_in_the_tails_is_finite(mixed_fit, point):
    assert np.isfinite(mixed_fit.score_samples(np.array([point]), dtype="float64")[0])


def test_points_on_or_outside_the_bounds_score_minus_inf(mixed_fit):
    Z = np.array(
        [
            [0.0, 1.0, 1.0, 0.0],
            [0.5, 0.0, 1.0, 0.0],
            [0.5, 1.0, 2.0, 0.0],
            [0.5, 1.0, 1.0, np.inf],
            [0.5, np.nan, 1.0, 0.0],
            [2.0, -1.0, 3.0, 0.0],
        ]
    )
    np.testing.assert_array_equal(mixed_fit.score_samples(Z), -np.inf)


def test_float64_hessian_agrees_with_float32(mixed_fit):
    Z = mixed_fit.sample(5, random_state=0)
    h32, h64 = mixed_fit.hessian(Z), mixed_fit.hessian(Z, dtype="float64")
    np.testing.assert_allclose(h32, h64, rtol=1e-2, atol=1e-3 * np.abs(h64).max())


def test_different_random_state_gives_different_samples(mixed_fit):
    assert not np.array_equal(
        mixed_fit.sample(5, random_state=0), mixed_fit.sample(5, random_state=1)
    )


def test_bad_dtype_in_a_query_is_rejected(mixed_fit):
    with pytest.raises(ValueError, match="dtype must be"):
        mixed_fit.hessian(np.zeros((1, 4)) + 0.5, dtype="float16")


_bound = st.sampled_from(["both", "lower", "upper", "none"])


@st.composite
def bound_configs(draw):
    rows = []
    for kind in draw(st.lists(_bound, min_size=1, max_size=4)):
        low = draw(st.floats(-100, 100))
        width = draw(st.floats(1e-2, 100))
        rows.append(
            {
                "both": (low, low + width),
                "lower": (low, np.inf),
                "upper": (-np.inf, low),
                "none": (-np.inf, np.inf),
            }[kind]
        )
    return np.array(rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bounds=bound_configs(), seed=st.integers(0, 2**16))
def test_support_round_trips_and_flow_density_is_finite_inside(bounds, seed):
    support = parse_bounds(bounds)
    bij = support.bijector(tf.float64)
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(32, support.dim))
    z = bij.forward(tf.constant(x)).numpy()
    assert support.contains(z).all()
    np.testing.assert_allclose(bij.inverse(tf.constant(z)).numpy(), x, rtol=1e-6, atol=1e-6)
    flow = RealNVP(num_units=8).build(support, seed=seed, dtype=tf.float64)
    flow.set_weights([w + rng.normal(scale=0.2, size=w.shape) for w in flow.get_weights()])
    assert np.isfinite(flow.log_prob(tf.constant(z)).numpy()).all()


def noisy_identity(z, seed):
    return z + 0.1 * tf.random.stateless_normal(tf.shape(z), seed=seed, dtype=z.dtype)


def test_stochastic_statistic_with_a_seed_argument_fits_reproducibly():
    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return EPIEstimator(
                noisy_identity, [[-np.inf, np.inf]], al_params=TINY, random_state=5
            ).fit([1.0], [0.5])

    first, second = fit(), fit()
    pd.testing.assert_frame_equal(first.history_, second.history_)
    assert first.score([1.0], [0.5]) == second.score([1.0], [0.5])


def test_n_jobs_beyond_the_seeds_starts_one_worker_per_seed():
    # joblib was handed n_jobs itself and refused 10**6 ("Numeric literal
    # 2000000 is too large") although one seed needs one process.
    est = EPIEstimator(
        identity,
        [[-np.inf, np.inf]],
        al_params=TINY,
        n_jobs=10**6,
        random_state=0,
        jit_compile=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit([1.0], [0.5])
    assert len(est.seeds_) == 1 and not est.seeds_["failed"].any()
