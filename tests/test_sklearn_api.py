"""EPIEstimator as a scikit-learn citizen: params, search, persistence, progress."""

import pickle
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import identity
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_epi import ALParams, EPIEstimator, RealNVP, _reporting
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues
from sklearn_epi.model_selection import property_cv

QUICK = ALParams(num_iters=100, max_epochs=2, init_iters=50, batch_size=200)
MU, SIGMA2 = np.array([0.5, 0.0]), np.array([1.0, 0.25])


def quick(**kwargs):
    params = {
        "statistic": identity,
        "bounds": [[-np.inf, np.inf]] * 2,
        "al_params": QUICK,
        "random_state": 0,
        # Bookkeeping fits: compiling them with XLA costs more than they run.
        "jit_compile": False,
    }
    params.update(kwargs)
    return EPIEstimator(**params)


def fit_quietly(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def test_get_params_deep_exposes_flow_and_al_params_fields():
    params = quick(flow=RealNVP(num_units=8)).get_params(deep=True)
    assert params["flow__num_units"] == 8
    assert params["al_params__c0"] == QUICK.c0


def test_get_params_deep_on_a_default_estimator_lists_the_nested_names():
    params = EPIEstimator(identity, [[0.0, 1.0]]).get_params(deep=True)
    assert params["flow__num_units"] == RealNVP().num_units
    assert params["al_params__c0"] == ALParams().c0
    shallow = EPIEstimator(identity, [[0.0, 1.0]], al_params={"c0": 2.0}).get_params(deep=False)
    assert not any("__" in k for k in shallow)
    deep = EPIEstimator(identity, [[0.0, 1.0]], al_params={"c0": 2.0}).get_params()
    assert deep["al_params__c0"] == 2.0 and deep["al_params"] == {"c0": 2.0}


def test_scikit_learn_style_verbose_and_dtype_values_are_accepted():
    est = fit_quietly(quick(verbose=False, dtype=np.float64), MU, SIGMA2)
    assert est.seeds_.shape[0] == 1 and est.sample(2, random_state=0).dtype == np.float64
    Z = est.sample(3, random_state=0)
    np.testing.assert_array_equal(est.score_samples(Z, dtype=np.float64), est.score_samples(Z))


def test_convergence_warning_points_at_the_line_that_called_fit():
    with pytest.warns(ConvergenceWarning) as record:
        quick(al_params=ALParams(num_iters=10, max_epochs=1, init_iters=0, batch_size=500)).fit(
            [50.0, 0.0]
        )
    assert record[0].filename == __file__


def test_nested_set_params_on_default_none_objects():
    est = EPIEstimator(identity, [[0.0, 1.0]]).set_params(flow__num_units=7, al_params__c0=0.1)
    assert isinstance(est.flow, RealNVP) and est.flow.num_units == 7
    assert isinstance(est.al_params, ALParams) and est.al_params.c0 == 0.1


def test_nested_set_params_on_a_dict_al_params():
    est = EPIEstimator(identity, [[0.0, 1.0]], al_params={"num_iters": 5})
    est.set_params(al_params__c0=0.5)
    assert est.al_params.get_params()["num_iters"] == 5 and est.al_params.c0 == 0.5


def test_clone_before_and_after_fit_gives_an_unfitted_equal_estimator():
    est = quick(flow=RealNVP(num_units=8))
    fitted = fit_quietly(clone(est), MU, SIGMA2)
    for source in (est, fitted):
        copy = clone(source)
        assert not hasattr(copy, "flow_weights_")
        assert copy.get_params()["flow__num_units"] == 8


def test_tags_declare_a_density_estimator():
    assert quick().__sklearn_tags__().estimator_type == "density_estimator"


@pytest.mark.slow
def test_grid_search_scores_by_entropy_and_refits_the_best():
    grid = GridSearchCV(
        quick(
            flow=RealNVP(num_units=8),
            statistic=lambda z: z,  # a lambda must survive the workers (cloudpickle)
            al_params=ALParams(
                c0=1.0, beta=4.0, num_iters=300, max_epochs=6, init_iters=100, batch_size=200
            ),
        ),
        {"flow__num_units": [8, 16], "al_params__c0": [1e-6, 1.0]},
        cv=property_cv(MU),
        n_jobs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(MU, SIGMA2)
    scores = grid.cv_results_["mean_test_score"]
    converged = np.isfinite(scores)
    assert converged.any()
    assert grid.best_score_ == scores[converged].max()
    assert grid.best_estimator_.converged_
    assert grid.best_estimator_.entropy_ == pytest.approx(grid.best_score_)


def test_property_cv_trains_and_tests_on_every_constraint():
    [(train, test)] = property_cv([0.0, 1.0, 2.0])
    np.testing.assert_array_equal(train, [0, 1, 2])
    np.testing.assert_array_equal(test, [0, 1, 2])


@pytest.fixture(scope="module")
def lds_fit():
    est = EPIEstimator(
        lds_eigenvalues,
        LDS_BOUNDS,
        al_params=ALParams(num_iters=100, max_epochs=2, init_iters=50, batch_size=200),
        random_state=0,
        jit_compile=False,
    )
    return fit_quietly(est, LDS_MU, LDS_SIGMA2)


def test_pickle_round_trip_keeps_every_query(lds_fit):
    loaded = pickle.loads(pickle.dumps(lds_fit))
    Z = lds_fit.sample(20, random_state=0)
    np.testing.assert_array_equal(loaded.sample(20, random_state=0), Z)
    np.testing.assert_array_equal(loaded.score_samples(Z), lds_fit.score_samples(Z))
    np.testing.assert_array_equal(loaded.hessian(Z[:3]), lds_fit.hessian(Z[:3]))
    pd.testing.assert_frame_equal(loaded.history_, lds_fit.history_)


def test_a_saved_fit_loads_identically_in_a_fresh_process(lds_fit, tmp_path):
    path = lds_fit.save(tmp_path / "fit.npz")
    Z = lds_fit.sample(10, random_state=3)
    np.save(tmp_path / "Z.npy", Z)
    script = f"""
import sklearn_epi, numpy as np
est = sklearn_epi.load({str(path)!r})
Z = np.load({str(tmp_path / "Z.npy")!r})
np.save({str(tmp_path / "logq.npy")!r}, est.score_samples(Z))
np.save({str(tmp_path / "hess.npy")!r}, est.hessian(Z))
np.save({str(tmp_path / "sample.npy")!r}, est.sample(10, random_state=3))
est.history_.to_pickle({str(tmp_path / "history.pkl")!r})
"""
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(tmp_path / "logq.npy"), lds_fit.score_samples(Z))
    np.testing.assert_array_equal(np.load(tmp_path / "hess.npy"), lds_fit.hessian(Z))
    np.testing.assert_array_equal(np.load(tmp_path / "sample.npy"), Z)
    pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / "history.pkl"), lds_fit.history_)


def test_verbose_zero_prints_nothing(capsys):
    fit_quietly(quick(verbose=0), MU, SIGMA2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_verbose_two_shows_a_progress_bar_and_one_line_per_epoch(capsys):
    fit_quietly(quick(verbose=2), MU, SIGMA2)
    captured = capsys.readouterr()
    epoch_lines = [line for line in captured.out.splitlines() if "] epoch" in line]
    assert len(epoch_lines) == QUICK.max_epochs
    assert "p: mean_f0=" in epoch_lines[0] and "converged=" in epoch_lines[0]
    assert "EPI seed 0" in captured.err and f"{2 * QUICK.num_iters}/" in captured.err
    # In a log file the seed says first that it is initialising and compiling.
    assert captured.err.splitlines()[0] == f"EPI seed 0: {_reporting.STARTING}"


def test_progress_bar_leaves_compile_time_out_of_its_rate():
    report = _reporting.ProgressReport(["mean_f0"], live=True)
    report.on_seed_start(0, 1000)
    assert _reporting.STARTING in str(report.bar)
    time.sleep(0.3)  # "compiling"
    before_first_chunk = report.bar._time()
    report.on_chunk(0, 1, 100, {"H": 1.0, "R_mean_f0": 0.5})
    assert report.bar.n == 100 and report.bar.start_t >= before_first_chunk
    assert _reporting.STARTING not in str(report.bar)
    report.on_seed_end(0, 100)


def test_memory_caches_the_gaussian_initialisation(tmp_path):
    uncached = fit_quietly(quick(), MU, SIGMA2)
    first = fit_quietly(quick(memory=str(tmp_path)), MU, SIGMA2)
    # A different c0 does not change the initialisation: still a cache hit.
    second = fit_quietly(
        quick(memory=str(tmp_path), al_params=clone(QUICK).set_params(c0=0.5)), MU, SIGMA2
    )
    entries = list(tmp_path.rglob("output.pkl"))
    assert len(entries) == 1  # one initialisation computed, the second fit read it
    pd.testing.assert_frame_equal(first.history_, uncached.history_)
    assert second.history_["c"].iloc[0] == 0.5


def test_ctrl_c_keeps_the_best_epoch_so_far_and_the_history():
    def interrupt_after_epoch_2(record):
        if record.epoch == 2:
            raise KeyboardInterrupt

    est = quick(
        n_seeds=2,
        al_params=ALParams(
            c0=1.0, beta=4.0, num_iters=100, max_epochs=6, init_iters=50, batch_size=500
        ),
        callbacks=[interrupt_after_epoch_2],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.warns(UserWarning, match="fit interrupted"):
            est.fit(MU, SIGMA2)
    tests = est.history_[est.history_["phase"] == "test"]
    assert sorted(tests["epoch"]) == [0, 1, 2]
    assert est.epoch_ in (1, 2) and est.sample(4, random_state=0).shape == (4, 2)
    assert est.seeds_.loc[1, "message"].startswith("skipped")
    assert "interrupted during epoch 3" in est.seeds_.loc[0, "message"]
