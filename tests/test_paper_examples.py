"""Real converged fits: the paper's 2D oscillator and parallel seeds."""

import numpy as np
import pytest
from conftest import identity

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.analysis import maxent_reference
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues


def test_lds_statistic_matches_numpy_eigenvalues():
    rng = np.random.default_rng(0)
    A = rng.uniform(-10, 10, size=(500, 4))
    out = lds_eigenvalues(A).numpy()
    eig = np.linalg.eigvals(A.reshape(-1, 2, 2))
    # lambda_1: greatest real part; for a complex pair, positive imaginary part.
    primary = eig[np.arange(500), np.argmax(eig.real + 1e-9 * eig.imag, axis=1)]
    np.testing.assert_allclose(out[:, 0], primary.real, atol=1e-9)
    np.testing.assert_allclose(out[:, 1], np.abs(primary.imag), atol=1e-9)


@pytest.mark.slow
@pytest.mark.xdist_group("readme_example")
def test_oscillating_lds_reaches_the_maximum_with_both_modes(readme_example):
    # Default settings, as a user would run them: the README's demo fit. The
    # maximum is solved independently on uniform samples of the box: H* =
    # 7.04 nats, half of the mass on each mode (a12 > 0 > a21 and the mirror
    # image).
    ref = maxent_reference(
        lds_eigenvalues, LDS_BOUNDS, LDS_MU, LDS_SIGMA2, n_samples=1_000_000, random_state=0
    )
    est = readme_example["est"]
    assert est.converged_
    assert ref.entropy - est.entropy_ <= 0.1, (est.entropy_, ref.entropy)
    Z = est.sample(20_000, random_state=0)
    assert 0.4 <= np.mean(Z[:, 1] > 0) <= 0.6
    f = lds_eigenvalues(Z).numpy()
    np.testing.assert_allclose(f.mean(axis=0), LDS_MU, atol=0.15)
    np.testing.assert_allclose(f.std(axis=0), np.sqrt(LDS_SIGMA2), rtol=0.25)


@pytest.mark.slow
def test_parallel_seeds_select_the_same_fit_as_sequential():
    def fit(n_jobs):
        return EPIEstimator(
            identity,
            [[-np.inf, np.inf]] * 2,
            al_params=ALParams(
                c0=1.0, beta=4.0, num_iters=200, max_epochs=4, init_iters=100, batch_size=500
            ),
            n_seeds=2,
            n_jobs=n_jobs,
            random_state=0,
            jit_compile=False,
        ).fit([0.5, 0.0], [1.0, 0.25])

    sequential, parallel = fit(None), fit(2)
    assert parallel.best_seed_ == sequential.best_seed_
    np.testing.assert_array_equal(parallel.seeds_["converged"], sequential.seeds_["converged"])
    np.testing.assert_allclose(parallel.seeds_["entropy"], sequential.seeds_["entropy"], rtol=1e-4)
    np.testing.assert_allclose(
        parallel.sample(100, random_state=0), sequential.sample(100, random_state=0), atol=1e-4
    )
