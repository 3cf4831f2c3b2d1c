"""Nothing lost, nothing silently wrong: each case here once failed quietly or lost work."""

import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import tensorflow as tf
from conftest import identity
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import sklearn_epi
from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.persistence import MissingStatistic

# 50 steps per epoch, one logged chunk: statistic calls per seed are 1 (epoch-0
# test) + 2 x (50 training steps + 1 test) = 103, which the counters below use;
# both epochs run whether or not the first converges.
TINY = ALParams(num_iters=50, max_epochs=2, init_iters=20, batch_size=100, patience=None)
BOX = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}


def fit_quietly(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return est.fit(*args)


class RaisesOnCall:
    """Identity through py_function that raises once, on the given statistic calls."""

    def __init__(self, calls):
        self.calls, self.count = set(calls), 0

    def __call__(self, z):
        return tf.py_function(self._run, [z], z.dtype)

    def _run(self, z):
        self.count += 1
        if self.count in self.calls:
            raise FloatingPointError("solver failed to converge")
        return z


# ---------------------------------------------------------------- work lost
def test_an_exception_in_epoch_2_keeps_epoch_1():
    statistic = RaisesOnCall({1 + 51 + 10})  # the 10th training step of epoch 2
    est = EPIEstimator(statistic, BOX, al_params=TINY, random_state=0, jit_compile=False)
    with pytest.warns(RuntimeWarning, match="seed 0: FloatingPointError: solver failed"):
        fit_quietly_but_runtime(est, [0.0, 0.0])
    assert est.epoch_ == 1
    assert est.seeds_.loc[0, "failed"]
    assert "raised in epoch 2" in est.seeds_.loc[0, "message"]
    assert "FloatingPointError" in est.seeds_.loc[0, "traceback"]
    assert sorted(est.history_.query("phase == 'test'")["epoch"]) == [0, 1]


def fit_quietly_but_runtime(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def test_an_exception_in_seed_1_keeps_seed_0():
    statistic = RaisesOnCall({103 + 30})  # seed 1, epoch 1
    est = EPIEstimator(statistic, BOX, al_params=TINY, n_seeds=2, random_state=0, jit_compile=False)
    with pytest.warns(RuntimeWarning, match="seed 1: FloatingPointError"):
        fit_quietly_but_runtime(est, [0.0, 0.0])
    assert est.best_seed_ == 0
    assert list(est.seeds_["failed"]) == [False, True]
    assert "solver failed to converge" in est.seeds_.loc[1, "message"]


def test_every_seed_raising_reports_each_cause():
    statistic = RaisesOnCall(set(range(2, 400)))
    est = EPIEstimator(statistic, BOX, al_params=TINY, n_seeds=2, random_state=0, jit_compile=False)
    with pytest.raises(RuntimeError, match=r"(?s)seed 0 \(random seed \d+\): Floating.*seed 1"):
        fit_quietly_but_runtime(est, [0.0, 0.0])


class KillsItsSecondSeed:
    """Identity that SIGKILLs its worker process on that process's second seed.

    It first waits until another process has finished a whole seed, so that
    exactly one seed is running when the kill comes.
    """

    def __init__(self, directory):
        self.directory = str(directory)

    def __call__(self, z):
        return tf.py_function(self._run, [z], z.dtype)

    def _run(self, z):
        mine = Path(self.directory, str(os.getpid()))
        count = int(mine.read_text()) + 1 if mine.exists() else 1
        mine.write_text(str(count))
        if count == 103 + 60:
            for _ in range(1200):
                others = [
                    int(p.read_text() or 0) for p in Path(self.directory).iterdir() if p != mine
                ]
                if any(c >= 103 for c in others):
                    break
                time.sleep(0.05)
            time.sleep(1.0)  # let the other worker's result reach the parent
            os.kill(os.getpid(), signal.SIGKILL)
        return z


def test_a_killed_worker_is_named_and_the_finished_seeds_are_kept(tmp_path):
    est = EPIEstimator(
        KillsItsSecondSeed(tmp_path),
        BOX,
        al_params=TINY,
        n_seeds=3,
        n_jobs=2,
        random_state=0,
        jit_compile=False,
    )
    with pytest.warns(RuntimeWarning, match="seed 2: killed"):
        fit_quietly_but_runtime(est, [0.0, 0.0])
    assert list(est.seeds_["failed"]) == [False, False, True]
    assert "SIGKILL" in est.seeds_.loc[2, "message"]
    assert est.best_seed_ in (0, 1)


def lock_holding_statistic():
    lock = threading.Lock()

    def statistic(z):
        with lock:
            return z

    return statistic


@pytest.fixture(scope="module")
def small_fit():
    return fit_quietly(
        EPIEstimator(identity, BOX, al_params=TINY, random_state=0, jit_compile=False), [0.0, 0.0]
    )


def test_save_that_fails_leaves_the_previous_file_intact(small_fit, tmp_path):
    path = tmp_path / "fit.npz"
    small_fit.save(path)
    before = path.read_bytes()
    broken = pickle.loads(pickle.dumps(small_fit))
    broken.lock_ = threading.Lock()  # not data: the safe format cannot hold it
    with pytest.raises(TypeError, match=r"fit\['lock_'\]: a _thread.lock cannot be saved"):
        broken.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["fit.npz"]  # no temporary left
    np.testing.assert_array_equal(
        sklearn_epi.load(path).sample(5, random_state=0), small_fit.sample(5, random_state=0)
    )


def test_an_unpicklable_statistic_is_saved_without_its_code(small_fit, tmp_path):
    est = pickle.loads(pickle.dumps(small_fit)).set_params(statistic=lock_holding_statistic())
    with pytest.warns(UserWarning, match="module-level function, or a closure over picklable"):
        joblib.dump(est, tmp_path / "fit.joblib")
    loaded = joblib.load(tmp_path / "fit.joblib")
    Z = small_fit.sample(4, random_state=1)
    np.testing.assert_array_equal(loaded.score_samples(Z), small_fit.score_samples(Z))
    assert isinstance(loaded.statistic, MissingStatistic)
    with pytest.raises(RuntimeError, match=r"set_params\(statistic=\.\.\.\)"):
        loaded.score([0.0, 0.0])


def test_a_fit_made_in_a_scripts_main_loads_in_another_script_without_its_code(tmp_path):
    # The safe format never holds code: a statistic defined in __main__ is
    # saved by name, with a warning, and set back after loading.
    path = tmp_path / "fit.npz"
    make = f"""
import numpy as np, tensorflow as tf
from sklearn_epi import ALParams, EPIEstimator
def my_stat(z):
    return 2.0 * z
est = EPIEstimator(my_stat, [[-1.0, 1.0]], random_state=0, jit_compile=False,
                   al_params=ALParams(num_iters=20, max_epochs=1, init_iters=10, batch_size=50))
est.fit([0.0]).save({str(path)!r})
"""
    use = f"""
import sklearn_epi, numpy as np
est = sklearn_epi.load({str(path)!r})
print(est.statistic)
print(est.sample(3, random_state=0).shape)
est.set_params(statistic=lambda z: 2.0 * z)
print(est.score([0.0]) > -np.inf or est.score([0.0]) == -np.inf)
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    made = subprocess.run(
        [sys.executable, "-c", make], check=True, capture_output=True, text=True, env=env
    )
    assert "'my_stat' is saved by name only" in made.stderr
    assert "defined in the script that saved the fit (__main__)" in made.stderr
    out = subprocess.run(
        [sys.executable, "-c", use], check=True, capture_output=True, text=True, env=env
    )
    assert out.stdout.split("\n")[:3] == ["MissingStatistic('my_stat')", "(3, 1)", "True"]


def test_a_statistic_that_cannot_reach_workers_is_refused_with_the_fix():
    est = EPIEstimator(
        lock_holding_statistic(), BOX, al_params=TINY, n_seeds=2, n_jobs=2, jit_compile=False
    )
    with pytest.raises(TypeError, match="closure over picklable values.*n_jobs=1"):
        est.fit([0.0, 0.0])


def test_a_lambda_statistic_pickles_by_value():
    est = EPIEstimator(lambda z: 3.0 * z, BOX, jit_compile=False)
    loaded = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(loaded.statistic(np.ones((1, 2), np.float32)), 3.0)


# ------------------------------------------------------- silently wrong
@pytest.mark.parametrize(
    "statistic, error, match",
    [
        (lambda z: tf.stack([z[:, 0], z[:, 1]]), ValueError, r"got \(2, 5\).*axis=1"),
        (lambda z: [z[:, 0], z[:, 1]], TypeError, r"list of 2 items.*tf.stack\(\[...\], axis=1\)"),
        (lambda z: (z[:, 0], z[:, 1]), TypeError, "tuple of 2 items"),
        (lambda z: np.sin(z), TypeError, "NumPy array: write it with TensorFlow operations"),
        (lambda z: tf.constant(np.sin(np.asarray(z))), TypeError, "not NumPy"),
    ],
)
def test_a_statistic_of_the_wrong_shape_or_kind_is_refused(statistic, error, match):
    with pytest.raises(error, match=match):
        EPIEstimator(statistic, BOX, al_params=TINY, jit_compile=False).fit([0.0, 0.0])


def test_labelled_sigma2_is_matched_to_mu_by_label():
    mu = pd.Series({"x": 0.5, "y": -0.5})
    sigma2 = pd.Series({"y": 0.04, "x": 0.01})
    est = fit_quietly(
        EPIEstimator(
            identity,
            BOX,
            al_params=clone(TINY).set_params(max_epochs=1),
            random_state=0,
            jit_compile=False,
        ),
        mu,
        sigma2,
    )
    np.testing.assert_array_equal(est.property_.sigma2, [0.01, 0.04])
    assert est.property_.statistic_names == ("x", "y")


@pytest.mark.parametrize(
    "mu, sigma2, match",
    [
        (pd.Series({"x": 0.5, "y": 0.9}), pd.Series({"y": 0.5, "z": 0.1}), r"missing \['x'\]"),
        ({"x": 0.5, "y": 0.9}, {"x": 0.5}, r"missing \['y'\]"),
        ([0.5, 0.9], pd.Series({"x": 0.5, "y": 0.1}), "label both"),
        (pd.Series([0.5, 0.9], index=["x", "x"]), None, "repeated labels"),
    ],
)
def test_mismatched_labels_are_refused(mu, sigma2, match):
    with pytest.raises(ValueError, match=match):
        EPIEstimator(identity, BOX, al_params=TINY, jit_compile=False).fit(mu, sigma2)


def test_score_matches_labelled_targets_to_the_fitted_statistics(small_fit):
    assert small_fit.score({"f1": 0.0, "f0": 0.0}) == small_fit.score([0.0, 0.0])
    with pytest.raises(ValueError, match=r"mu labels must match the fitted statistics"):
        small_fit.score({"x": 0.0, "y": 0.0})


def test_a_dataframe_is_read_by_column_name(small_fit):
    Z = small_fit.sample(6, random_state=0) * [1.0, 0.5]
    frame = pd.DataFrame(Z[:, ::-1], columns=["y", "x"])
    np.testing.assert_array_equal(small_fit.score_samples(frame), small_fit.score_samples(Z))
    np.testing.assert_array_equal(small_fit.hessian(frame), small_fit.hessian(Z))
    with pytest.raises(ValueError, match=r"columns \['a', 'b'\] must be the parameter names"):
        small_fit.score_samples(pd.DataFrame(Z, columns=["a", "b"]))


@pytest.mark.parametrize(
    "Z, match",
    [
        (np.array([[0.1 + 1j, 0.2]]), "complex"),
        (np.array([["0.1", "0.2"]]), "real numbers"),
        ([[None, 0.2]], "real numbers"),
    ],
)
def test_complex_or_non_numeric_points_are_refused(small_fit, Z, match):
    with pytest.raises(TypeError, match=match):
        small_fit.score_samples(Z)


@pytest.mark.parametrize(
    "kwargs, fit_args, match",
    [
        ({"bounds": [[1e6, 1e6 + 1]]}, ([1e6 + 0.5],), r"only about 16 distinct float32.*float64"),
        ({"bounds": [[-1e30, 1e30]]}, ([0.0],), r"bounds for 'z0'.*dtype='float32'"),
        ({"bounds": [[-1.0, 1.0]]}, ([1e39], [1e30]), r"mu\[0\] = 1e\+39 is too large"),
        ({"bounds": [[-1.0, 1.0]]}, ([0.0], [1e30]), r"sigma2\[0\] = 1e\+30 is too large"),
    ],
)
def test_numbers_beyond_the_dtype_are_refused_before_training(kwargs, fit_args, match):
    with pytest.raises(ValueError, match=match):
        EPIEstimator(identity, al_params=TINY, **kwargs).fit(*fit_args)


def test_a_narrow_support_is_accepted_in_float64():
    est = fit_quietly(
        EPIEstimator(
            lambda z: z - 1e6,
            [[1e6, 1e6 + 1]],
            al_params=TINY,
            dtype="float64",
            random_state=0,
            jit_compile=False,
        ),
        [0.5],
    )
    Z = est.sample(2000, random_state=0)
    assert len(np.unique(Z)) == 2000 and np.isfinite(est.score_samples(Z)).all()


# ------------------------------------------------------------- unhelpful
def log_of_x(z):
    return tf.math.log(z[:, :1] + 0.9)


def test_a_statistic_undefined_on_part_of_the_box_is_named_with_an_example():
    est = EPIEstimator(log_of_x, BOX, al_params=TINY, random_state=0, jit_compile=False)
    with pytest.raises(RuntimeError) as info:
        fit_quietly_but_runtime(est, [0.0])
    message = str(info.value)
    assert "statistic 'f0' (nan) at " in message and " of 20000 test samples" in message
    assert "e.g. z = {'x': -0.9" in message and "tighten the bounds" in message
    assert "lr" not in message


# ------------------------------------------------------------- resources
def test_queries_in_chunks_give_the_same_answers(small_fit):
    Z = small_fit.sample(100, random_state=2)
    whole = small_fit.score_samples(Z), small_fit.gradient(Z), small_fit.hessian(Z)
    with sklearn.config_context(working_memory=0.002):  # a few rows per chunk
        chunked = small_fit.score_samples(Z), small_fit.gradient(Z), small_fit.hessian(Z)
        samples = small_fit.sample(300, random_state=2)
    for a, b in zip(whole, chunked):  # XLA rounds float32 differently per batch shape
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert samples.shape == (300, 2) and len(np.unique(samples[:, 0])) == 300


def test_a_large_sample_stays_within_working_memory(small_fit, tmp_path):
    path = small_fit.save(tmp_path / "fit.npz")
    script = f"""
import resource, sklearn, sklearn_epi
est = sklearn_epi.load({str(path)!r})
est.sample(1000, random_state=1)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with sklearn.config_context(working_memory=64):
    out = est.sample(2_000_000, random_state=0)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(((after - before) * 1024 - out.nbytes) / 2**20)
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env
    )
    assert float(out.stdout) < 256  # MiB beyond the 31 MiB result (64 MiB chunks + slack)
