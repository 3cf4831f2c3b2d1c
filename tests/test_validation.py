"""Bad input ends in a clear error naming the argument, before any training."""

import numpy as np
import pytest
import tensorflow as tf
from conftest import identity
from sklearn.exceptions import NotFittedError

from sklearn_epi import ALParams, EPIEstimator, RealNVP

BOUNDS = {"a": (-1.0, 1.0), "b": (-1.0, 1.0)}


def make(**kwargs):
    params = {"statistic": identity, "bounds": BOUNDS}
    params.update(kwargs)
    return EPIEstimator(**params)


@pytest.mark.parametrize(
    "kwargs, fit_args, error, match",
    [
        (
            {"statistic": "eigs"},
            ([0, 0],),
            TypeError,
            "'statistic' parameter .* must be a callable",
        ),
        (
            {"statistic": lambda z: z[:, :1]},
            ([0, 0],),
            ValueError,
            r"statistic must return shape \(n, 2\)",
        ),
        (
            {"statistic": lambda z: tf.reduce_sum(z)},
            ([0],),
            ValueError,
            "statistic must return shape",
        ),
        ({"statistic": lambda z: tf.cast(z > 0, tf.int32)}, ([0, 0],), TypeError, "floating-point"),
        ({"statistic": lambda z: tf.math.log(z - 5.0)}, ([0, 0],), ValueError, "non-finite"),
        (
            {"statistic": lambda z: 1 / 0},
            ([0, 0],),
            ValueError,
            "statistic raised ZeroDivisionError",
        ),
        ({}, ([0, 0], [1.0]), ValueError, "sigma2 must have the same length as mu"),
        ({}, ([0, 0], [1.0, 0.0]), ValueError, r"sigma2\[1\] = 0.0"),
        ({}, ([0, 0], [1.0, -0.5]), ValueError, r"sigma2\[1\] = -0.5"),
        ({}, ([np.nan, 0],), ValueError, r"mu must be finite; got mu\[0\] = nan"),
        ({}, (["x", 0],), TypeError, "mu must be an array of numbers"),
        ({"bounds": {"a": (1.0, -1.0)}}, ([0],), ValueError, "bounds for 'a' need low < high"),
        ({"flow": "realnvp"}, ([0, 0],), TypeError, r"'flow' parameter .*RealNVP.*MAF"),
        ({"flow": RealNVP(num_stages=0)}, ([0, 0],), ValueError, "flow.num_stages"),
        (
            {"al_params": {"c_0": 1.0}},
            ([0, 0],),
            ValueError,
            r"al_params has unknown fields \['c_0'\]",
        ),
        (
            {"al_params": ALParams(batch_size=301)},
            ([0, 0],),
            ValueError,
            "al_params.batch_size must be even",
        ),
        (
            {"al_params": ALParams(batch_size=4), "flow": RealNVP(base_modes=3)},
            ([0, 0],),
            ValueError,
            r"al_params.batch_size must be at least 2 \* flow.base_modes = 6",
        ),
        ({"al_params": ALParams(beta=0.5)}, ([0, 0],), ValueError, "al_params.beta must be > 1"),
        (
            {"al_params": ALParams(gamma=1.5)},
            ([0, 0],),
            ValueError,
            r"al_params.gamma must be in \(0, 1\)",
        ),
        ({"al_params": ALParams(c0=0.0)}, ([0, 0],), ValueError, "al_params.c0"),
        ({"al_params": ALParams(patience=0)}, ([0, 0],), ValueError, "al_params.patience"),
        ({"al_params": ALParams(patience=1.5)}, ([0, 0],), TypeError, "al_params.patience"),
        ({"al_params": 3}, ([0, 0],), TypeError, "'al_params' parameter .* must be"),
        ({"alpha": 1.5}, ([0, 0],), ValueError, r"'alpha' parameter .* range \(0.0, 1.0\)"),
        ({"n_seeds": 0}, ([0, 0],), ValueError, r"'n_seeds' parameter .* range \[1, inf\)"),
        ({"n_test": 1}, ([0, 0],), ValueError, r"'n_test' parameter .* range \[2, inf\)"),
        ({"jit_compile": "auto"}, ([0, 0],), TypeError, "'jit_compile' parameter .*bool"),
        ({"callbacks": print}, ([0, 0],), TypeError, "'callbacks' parameter .*list"),
        ({"callbacks": [3]}, ([0, 0],), TypeError, r"callbacks\[0\] = 3"),
        ({"dtype": "float16"}, ([0, 0],), ValueError, "dtype must be"),
        ({"init": {"mean": 5.0}}, ([0, 0],), ValueError, "init"),
        ({"init": {"scale": 1.0}}, ([0, 0],), ValueError, "unknown"),
        (
            {"init": {"samples": np.zeros((2, 10))}},
            ([0, 0],),
            ValueError,
            r"init\['samples'\] must have shape \(n, 2\).*transposed",
        ),
        (
            {"init": {"samples": np.full((10, 2), 1.0)}},
            ([0, 0],),
            ValueError,
            r"init\['samples'\] must lie strictly inside the bounds",
        ),
        (
            {"init": {"samples": np.zeros((10, 2)), "std": 0.1}},
            ([0, 0],),
            ValueError,
            r"init\['samples'\] replaces the initial Gaussian",
        ),
        (
            {"init": {"samples": np.zeros((10, 2))}},
            ([0, 0],),
            ValueError,
            r"init\['samples'\] must vary in every parameter; constant in \['a', 'b'\]",
        ),
        (
            {"init": {"samples": [["x", "y"]] * 3}},
            ([0, 0],),
            TypeError,
            r"init\['samples'\] must be a numeric array",
        ),
    ],
)
def test_bad_input_is_rejected_with_the_argument_named(kwargs, fit_args, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs).fit(*fit_args)


@pytest.mark.parametrize(
    "method, args",
    [
        ("sample", (3,)),
        ("score_samples", (np.zeros((2, 2)),)),
        ("hessian", (np.zeros((2, 2)),)),
        ("gradient", (np.zeros((2, 2)),)),
        ("score", ([0, 0],)),
    ],
)
def test_unfitted_estimator_raises_not_fitted(method, args):
    with pytest.raises(NotFittedError):
        getattr(make(), method)(*args)


def test_init_samples_dataframe_columns_are_matched_by_name():
    pd = pytest.importorskip("pandas")
    from sklearn_epi._validation import _check_init
    from sklearn_epi.support import parse_bounds

    support = parse_bounds(BOUNDS)
    Z = np.random.default_rng(0).uniform(-0.5, 0.5, (20, 2))
    Z[:, 1] *= 0.1
    frame = pd.DataFrame({"b": Z[:, 1], "a": Z[:, 0]})
    _, std, samples = _check_init({"samples": frame}, support)
    np.testing.assert_array_equal(samples, Z)
    np.testing.assert_allclose(std, Z.std(axis=0))
    with pytest.raises(ValueError, match=r"columns \['a', 'c'\]; expected the parameters"):
        _check_init({"samples": frame.rename(columns={"b": "c"})[["a", "c"]]}, support)


def test_init_stores_arguments_unchanged():
    al = {"c0": 2.0}
    est = make(al_params=al, n_seeds="many")
    assert est.al_params is al and est.n_seeds == "many"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"al_params": ALParams(num_iters=1.5)}, "al_params.num_iters"),
        ({"al_params": ALParams(lr="fast")}, "al_params.lr"),
        ({"flow": RealNVP(num_units=2.5)}, "flow.num_units"),
    ],
)
def test_a_wrong_type_is_a_type_error_everywhere(kwargs, name):
    with pytest.raises(TypeError, match=rf"{name} must be an? (integer|number)"):
        make(**kwargs).fit([0, 0])


def test_a_wrong_scalar_parameter_names_it_before_any_training():
    # scikit-learn's parameter validation: one exception for wrong types and values.
    with pytest.raises(TypeError, match=r"'n_seeds' parameter .* int in the range \[1, inf\)"):
        make(n_seeds=1.5).fit([0, 0])
