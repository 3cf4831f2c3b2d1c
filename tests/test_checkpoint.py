"""Checkpoints: a fit killed or stopped by SIGTERM resumes and ends as an uninterrupted one."""

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import shifted

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi._checkpoint import load_seed, save_seed
from sklearn_epi.optimize import SeedSpec, fit_seed
from sklearn_epi.property import EmergentProperty
from sklearn_epi.support import parse_bounds

# The fit of the scripts below: 4 epochs of 100 steps, two seeds. The
# statistic is the script's own, so the three runs must agree on its content.
SCRIPT = textwrap.dedent("""
    import os, pickle, signal, sys, warnings
    import numpy as np
    from sklearn_epi import ALParams, EPIEstimator, EpochCallback

    def shifted(z):
        return z + 1.0

    class Kill(EpochCallback):
        # Sends the signal in the middle of seed 1's epoch 3.
        def __init__(self, signum):
            self.signum = signum

        def on_chunk(self, seed_index, epoch, iteration, row):
            if seed_index == 1 and epoch == 3 and iteration % 100 == 50:
                os.kill(os.getpid(), self.signum)

    directory, out, signum = sys.argv[1], sys.argv[2], int(sys.argv[3])
    est = EPIEstimator(
        shifted,
        [[-np.inf, np.inf]] * 2,
        # Every epoch runs (patience=None): the signal
        # lands in epoch 3.
        al_params=ALParams(c0=1.0, beta=4.0, num_iters=100, max_epochs=4, init_iters=50,
                           batch_size=100, log_rate=50, patience=None),
        n_seeds=2,
        random_state=0,
        jit_compile=False,
        checkpoint=directory,
        callbacks=[Kill(signum)] if signum else None,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit([1.0, 0.0], [0.5, 2.0])
    with open(out, "wb") as f:
        pickle.dump({"history": est.history_, "seeds": est.seeds_, "epoch": est.epoch_,
                     "entropy": est.entropy_, "best": est.best_seed_,
                     "warnings": [str(w.message) for w in caught]}, f)
    """)


def run_script(tmp_path, directory, name, signum=0):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.pkl"
    done = subprocess.run(
        [sys.executable, str(script), str(directory), str(out), str(int(signum))],
        capture_output=True,
        text=True,
    )
    result = None
    if out.exists():
        with open(out, "rb") as f:
            result = pickle.load(f)
    return done, result


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    """The uninterrupted fit."""
    tmp_path = tmp_path_factory.mktemp("plain")
    return run_script(tmp_path, tmp_path / "run", "plain")[1]


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_fit_resumes_and_ends_as_an_uninterrupted_one(tmp_path, plain, signum):
    killed, stopped = run_script(tmp_path, tmp_path / "run", "killed", signum)
    if signum == signal.SIGKILL:
        assert killed.returncode == -signal.SIGKILL and stopped is None
    else:
        # SIGTERM stops the fit as Ctrl-C does: it returns, says so, exits 0.
        assert killed.returncode == 0, killed.stderr
        assert any("interrupted" in w for w in stopped["warnings"])
        history = stopped["history"]
        assert history.loc[history["seed"] == 1, "epoch"].max() == 2
    # Seed 0 had ended; seed 1 had finished epoch 2 when the signal came.
    assert load_seed(tmp_path / "run", 0, None)["finished"]
    assert load_seed(tmp_path / "run", 1, None)["epochs"][-1].epoch == 2

    _, resumed = run_script(tmp_path, tmp_path / "run", "resumed")
    pd.testing.assert_frame_equal(resumed["history"], plain["history"])
    assert (resumed["epoch"], resumed["best"]) == (plain["epoch"], plain["best"])
    assert resumed["entropy"] == plain["entropy"]
    columns = ["converged", "entropy", "epoch", "n_iter", "failed"]
    pd.testing.assert_frame_equal(resumed["seeds"][columns], plain["seeds"][columns])


def quick(directory, **params):
    al = ALParams(c0=1.0, beta=4.0, num_iters=50, max_epochs=2, init_iters=20, batch_size=100)
    return EPIEstimator(
        lambda z: z,
        [[-np.inf, np.inf]],
        al_params=al,
        random_state=0,
        checkpoint=directory,
        jit_compile=False,
    ).set_params(**params)


def fit_quietly(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit([0.5], [1.0])


def test_a_write_abandoned_by_a_kill_is_removed_when_the_run_is_opened_again(tmp_path):
    # A kill between the temporary file and its rename left .seed-0.npz.XXXX
    # behind for good; a young one may be another process's write.
    fit_quietly(quick(tmp_path))
    abandoned, writing = tmp_path / ".seed-0.npz.k1ll3d", tmp_path / ".seed-0.npz.wr1t1n"
    abandoned.write_bytes(b"half a pickle")
    writing.write_bytes(b"half a pickle")
    hours_ago = time.time() - 2 * 3600
    os.utime(abandoned, (hours_ago, hours_ago))
    fit_quietly(quick(tmp_path))
    assert not abandoned.exists() and writing.exists()


def test_a_run_description_that_is_not_an_object_is_refused_naming_the_file(tmp_path):
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"checkpoint: cannot read .*run\.json: a JSON list"):
        fit_quietly(quick(tmp_path))


def test_other_settings_in_a_used_directory_are_refused(tmp_path):
    fit_quietly(quick(tmp_path))
    with pytest.raises(
        ValueError, match=r"other settings \(differing: params.random_state, seeds\)"
    ):
        fit_quietly(quick(tmp_path, random_state=1))
    # What does not change the result may change.
    refit = fit_quietly(quick(tmp_path, verbose=0, n_jobs=1))
    assert refit.epoch_ in (1, 2)


def test_other_init_samples_in_a_used_directory_are_refused(tmp_path):
    # NumPy abbreviates the repr of arrays over 1000 numbers: these two
    # differ only in a row that the repr leaves out.
    Z = np.random.default_rng(0).normal(0.5, 1.0, (2000, 1))
    fit_quietly(quick(tmp_path, init={"samples": Z}))
    other = Z.copy()
    other[1000] += 1.0
    assert repr({"samples": other}) == repr({"samples": Z})
    with pytest.raises(ValueError, match=r"other settings \(differing: params.init\)"):
        fit_quietly(quick(tmp_path, init={"samples": other}))


def test_settings_that_numpy_or_pandas_abbreviate_are_compared_by_content():
    from sklearn_epi._checkpoint import _setting

    bounds = np.tile([-1.0, 1.0], (600, 1))
    other = bounds.copy()
    other[300, 1] = 2.0
    assert repr(bounds) == repr(other)
    assert _setting(bounds) != _setting(other)
    frame = pd.DataFrame({"a": np.zeros(4000)})
    changed = frame.copy()
    changed.iloc[2000, 0] = 1.0
    assert repr({"samples": frame}) == repr({"samples": changed})
    assert _setting({"samples": frame}) != _setting({"samples": changed})
    # Short settings keep their readable repr.
    assert _setting({"std": 1.0}) == "{'std': 1.0}"


def test_a_damaged_checkpoint_falls_back_to_the_previous_one_and_names_the_file(tmp_path):
    save_seed(tmp_path, 0, {"finished": False, "epoch": 1}, "key")
    save_seed(tmp_path, 0, {"finished": False, "epoch": 2}, "key")
    (tmp_path / "seed-0.npz").write_bytes(b"truncated")
    with pytest.warns(RuntimeWarning, match=r"seed-0\.npz .* unreadable; resuming from .*prev"):
        assert load_seed(tmp_path, 0, "key")["epoch"] == 1
    (tmp_path / "seed-0.prev.npz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no readable checkpoint of seed 0: .*seed-0\.npz"):
        load_seed(tmp_path, 0, "key")


def test_checkpoint_must_be_a_directory_path(tmp_path):
    with pytest.raises(TypeError, match="'checkpoint' parameter .* 'str', .*'os.PathLike'"):
        quick(42).fit([0.5], [1.0])
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="checkpoint must be a directory"):
        quick(tmp_path / "file").fit([0.5], [1.0])
    assert not os.path.exists(tmp_path / "run.json")


def test_max_time_stops_between_epochs_and_a_checkpointed_fit_goes_on(tmp_path):
    # The clock jumps past the budget when epoch 2 ends: the seed must not
    # start epoch 3, and the next call on the checkpoint must finish the job.
    ahead = [0.0]

    def jump_after_epoch_2(record):
        if record.epoch == 2:
            ahead[0] = 1e6

    def spec(**fields):
        al = ALParams(c0=1.0, beta=4.0, num_iters=50, max_epochs=4, init_iters=20, batch_size=100)
        prop = EmergentProperty(np.array([0.5]), np.array([1.0]), ("f0",), n_test=100)
        bounds = parse_bounds([[-np.inf, np.inf]])
        return SeedSpec(
            RealNVP(),
            bounds,
            shifted,
            prop,
            al,
            np.zeros(1),
            np.ones(1),
            jit_compile=False,
            **fields,
        )

    plain = fit_seed(spec(), seed=7)
    timed = {"checkpoint": str(tmp_path), "deadline": time.time() + 3600}
    clock = {"clock": lambda: time.time() + ahead[0]}
    stopped = fit_seed(spec(callbacks=(jump_after_epoch_2,), **timed, **clock), seed=7)
    assert stopped.status == "out of time" and stopped.interrupted
    assert stopped.message == "stopped by max_time after epoch 2"
    assert stopped.history["epoch"].max() == 2 and not load_seed(tmp_path, 0, None)["finished"]
    ahead[0] = 0.0
    resumed = fit_seed(spec(**timed, **clock), seed=7)
    assert resumed.status == plain.status and load_seed(tmp_path, 0, None)["finished"]
    pd.testing.assert_frame_equal(resumed.history, plain.history)


def test_seeds_count_their_statistic_evaluations():
    est = fit_quietly(quick(None, n_test=50))
    # 2 epochs of 50 steps of 100 samples, and 3 tests (epochs 0-2) of 200 x 50.
    assert est.seeds_.loc[0, "n_simulations"] == 2 * 50 * 100 + 3 * 200 * 50


@pytest.mark.parametrize(
    "max_time, error, match",
    [
        ("10", TypeError, r"'max_time' parameter .* float in the range \(0.0, inf\)"),
        (0, ValueError, r"'max_time' parameter .* float in the range \(0.0, inf\)"),
    ],
)
def test_max_time_must_be_positive_seconds(max_time, error, match):
    with pytest.raises(error, match=match):
        quick(None, max_time=max_time).fit([0.5], [1.0])


def test_warm_start_continues_for_more_epochs_as_one_longer_fit():
    longer = fit_quietly(quick(None, al_params__max_epochs=4))
    est = fit_quietly(quick(None, warm_start=True))  # 2 epochs
    assert est.history_["epoch"].max() == 2
    est.set_params(al_params__max_epochs=4)
    fit_quietly(est)
    pd.testing.assert_frame_equal(est.history_, longer.history_)
    assert (est.epoch_, est.entropy_) == (longer.epoch_, longer.entropy_)
    with pytest.raises(ValueError, match=r"warm_start: .*differing: params.alpha"):
        est.set_params(alpha=0.01).fit([0.5], [1.0])


def test_a_warm_start_with_nothing_to_do_keeps_its_state_for_the_next_call():
    # A call that had no epoch left to run (the same max_epochs again, or a
    # seed ended by patience) dropped the state: the next larger max_epochs
    # started the whole fit over, from epoch 1.
    longer = fit_quietly(quick(None, al_params__max_epochs=4))
    est = fit_quietly(quick(None, warm_start=True))  # 2 epochs
    fit_quietly(est)  # nothing to do
    assert est.history_["epoch"].max() == 2
    trained = []
    est.set_params(al_params__max_epochs=4, callbacks=[lambda record: trained.append(record.epoch)])
    fit_quietly(est)
    assert trained == [3, 4]
    pd.testing.assert_frame_equal(est.history_, longer.history_)


def test_a_raised_max_epochs_continues_a_checkpointed_run(tmp_path):
    longer = fit_quietly(quick(None, al_params__max_epochs=4))
    fit_quietly(quick(tmp_path))  # 2 epochs, ended for want of epochs
    resumed = fit_quietly(quick(tmp_path, al_params__max_epochs=4))
    pd.testing.assert_frame_equal(resumed.history_, longer.history_)
