"""Multi-seed fits and grid search on a dask.distributed cluster, unchanged code."""

import warnings

import numpy as np
import pytest
from conftest import identity
from joblib import parallel_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_epi import ALParams, EPIEstimator, RealNVP
from sklearn_epi.model_selection import property_cv

distributed = pytest.importorskip("distributed")

MU, SIGMA2 = np.array([0.5, 0.0]), np.array([1.0, 0.25])


def make(**kwargs):
    return EPIEstimator(
        identity,
        [[-np.inf, np.inf]] * 2,
        flow=RealNVP(num_units=8),
        al_params=ALParams(num_iters=100, max_epochs=3, init_iters=50, batch_size=200),
        random_state=0,
        jit_compile=False,
        **kwargs,
    )


@pytest.mark.slow
def test_seeds_and_grid_search_run_on_a_local_dask_cluster():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = make(n_seeds=2).fit(MU, SIGMA2)
        with (
            distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster),
            parallel_config(backend="dask"),
        ):
            remote = make(n_seeds=2, n_jobs=2).fit(MU, SIGMA2)
            grid = GridSearchCV(
                make(), {"flow__num_units": [4, 8]}, cv=property_cv(MU), n_jobs=2
            ).fit(MU, SIGMA2)
    assert remote.best_seed_ == local.best_seed_
    np.testing.assert_allclose(remote.seeds_["entropy"], local.seeds_["entropy"], rtol=1e-4)
    assert len(grid.cv_results_["mean_test_score"]) == 2
    assert hasattr(grid.best_estimator_, "flow_weights_")
