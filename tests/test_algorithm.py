"""Algorithm 1: the epoch-end hook, no hidden state, one selection rule, compile once."""

import threading
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from conftest import identity
from sklearn.exceptions import ConvergenceWarning

from sklearn_epi import ALParams, EPIEstimator, EpochCallback, RealNVP, _train
from sklearn_epi.convergence import select_best
from sklearn_epi.optimize import SeedSpec, fit_seed
from sklearn_epi.property import EmergentProperty
from sklearn_epi.support import parse_bounds

QUICK = ALParams(c0=1.0, beta=4.0, num_iters=100, max_epochs=4, init_iters=50, batch_size=100)


def fit_quietly(est, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args)


def test_the_epoch_end_hook_sees_every_epoch_and_can_stop_the_seed():
    seen = []

    def stop_after_two(record):
        seen.append((record.seed_index, record.epoch, len(record.pvalues)))
        return record.epoch == 2

    est = fit_quietly(
        EPIEstimator(
            identity, [[-5.0, 5.0]], al_params=QUICK, callbacks=[stop_after_two], jit_compile=False
        ),
        [1.0],
        [0.5],
    )
    assert seen == [(0, 1, 2), (0, 2, 2)]
    assert est.n_iter_ == 2 * QUICK.num_iters


class Chunks(EpochCallback):
    def __init__(self):
        self.events = []

    def on_seed_start(self, seed_index, total_iterations):
        self.events.append(("start", total_iterations))

    def on_chunk(self, seed_index, epoch, iteration, row):
        self.events.append(("chunk", iteration))

    def on_seed_end(self, seed_index, iterations):
        self.events.append(("end", iterations))


def test_an_epoch_callback_hears_the_seed_start_every_chunk_and_the_end():
    chunks = Chunks()
    al = ALParams(num_iters=100, max_epochs=2, init_iters=10, batch_size=100, log_rate=50)
    fit_quietly(
        EPIEstimator(identity, [[-5.0, 5.0]], al_params=al, callbacks=[chunks], jit_compile=False),
        [1.0],
    )
    assert chunks.events == [
        ("start", 200),
        ("chunk", 50),
        ("chunk", 100),
        ("chunk", 150),
        ("chunk", 200),
        ("end", 200),
    ]


def _spec():
    return SeedSpec(
        flow=RealNVP(num_units=8),
        support=parse_bounds([[-5.0, 5.0]]),
        statistic=identity,
        prop=EmergentProperty(np.array([1.0]), None, ("f0",), n_test=100),
        al=ALParams(num_iters=50, max_epochs=1, init_iters=10, batch_size=100),
        init_mean=np.zeros(1),
        init_std=np.ones(1),
        jit_compile=False,
    )


def test_an_interrupted_fit_leaves_no_state_behind():
    def interrupt(record):
        raise KeyboardInterrupt

    est = EPIEstimator(
        identity,
        [[-5.0, 5.0]],
        al_params=QUICK,
        n_seeds=2,
        callbacks=[interrupt],
        jit_compile=False,
    )
    with pytest.warns(UserWarning, match="fit interrupted"):
        fit_quietly(est, [1.0])
    assert est.seeds_.loc[1, "message"].startswith("skipped")
    result = fit_seed(_spec(), seed=3)  # the next fit in this process runs in full
    assert not result.interrupted and result.weights is not None and result.epoch == 1


def test_a_compiled_trainer_is_reused_by_the_next_seed_and_never_shared():
    spec = _spec()
    args = ("al", spec.flow, spec.support, 100, "float32", True, identity, spec.prop)
    key, first = _train.checkout(*args)
    _, busy = _train.checkout(*args)  # the first is in use: another is built
    assert busy is not first
    _train.checkin(key, first)
    _, again = _train.checkout(*args)
    assert again is first
    other = ("al", spec.flow, spec.support, 100, "float32", True, tf.math.sin, spec.prop)
    assert _train.checkout(*other)[1] is not first  # another statistic, another graph


def test_two_fits_in_two_threads_give_the_sequential_answers():
    def fit():
        return fit_quietly(
            EPIEstimator(
                identity, [[-5.0, 5.0]], al_params=QUICK, random_state=4, jit_compile=False
            ),
            [1.0],
            [0.5],
        )

    alone = fit().history_
    out = [None, None]
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, fit())) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for est in out:
        np.testing.assert_allclose(est.history_["H"], alone["H"], rtol=1e-5)


def test_score_uses_the_test_size_of_the_fit():
    est = fit_quietly(
        EPIEstimator(
            identity, [[-5.0, 5.0]], al_params=QUICK, n_test=100, random_state=0, jit_compile=False
        ),
        [1.0],
        [0.5],
    )
    before = est.score([1.0], [0.5])
    est.set_params(al_params__batch_size=2000, n_test=None)
    assert est.property_.n_test == 100 and est.score([1.0], [0.5]) == before


def test_one_rule_picks_an_epoch_and_a_seed():
    def cand(converged, entropy, worst_t):
        return SimpleNamespace(converged=converged, entropy=entropy, worst_t=worst_t)

    best = cand(True, 2.0, 9.0)
    assert select_best([cand(True, 1.0, 0.0), best, cand(False, 5.0, 0.1)]) is best
    closest = cand(False, 1.0, 0.5)
    assert select_best([cand(False, 3.0, 2.0), closest]) is closest
    assert select_best([]) is None


def test_an_unreachable_target_is_named_as_such():
    est = EPIEstimator(identity, [[0.0, 1.0]], al_params=QUICK, random_state=0, jit_compile=False)
    with pytest.warns(ConvergenceWarning) as record:
        est.fit([2.0])
    message = str(record[0].message)
    assert "mean_f0 (p = 0): unreachable: the statistic took values in [0" in message
    assert "target 2" in message


def _two_clusters(n=400, spread=0.05):
    rng = np.random.default_rng(0)
    centres = np.where(rng.random(n) < 0.5, -0.5, 0.5)[:, None]
    return centres + rng.normal(0.0, spread, (n, 2))


def test_init_samples_start_the_flow_on_every_cluster_of_the_points():
    from sklearn_epi.optimize import initial_weights

    Z, support = _two_clusters(), parse_bounds([[-1.0, 1.0]] * 2)
    weights = initial_weights(
        RealNVP(), support, Z.mean(0), Z.std(0), 300, 200, 5e-3, 0, "float32", True, Z
    )
    flow = RealNVP().build(support, seed=0)
    flow.set_weights(weights)
    sample = flow.sample(4000, seed=1).numpy()
    upper = sample[:, 0] > 0
    assert 0.4 < upper.mean() < 0.6
    np.testing.assert_allclose(sample[upper].mean(0), [0.5, 0.5], atol=0.1)
    np.testing.assert_allclose(sample[~upper].mean(0), [-0.5, -0.5], atol=0.1)
    # The gap between the clusters is empty, as in the points.
    assert np.mean(np.abs(sample[:, 0]) < 0.2) < 0.05


def test_a_fit_from_init_samples_begins_at_the_points_entropy():
    # Two clusters N(+-0.5, 0.05^2 I) have entropy log 2 + log(2 pi e 0.05^2)
    # = -2.46 nats; the default Gaussian start on [-1, 1]^2 about +0.6.
    al = ALParams(c0=1.0, num_iters=50, max_epochs=1, init_iters=300, lr=5e-3)
    est = EPIEstimator(identity, [[-1.0, 1.0]] * 2, al_params=al, random_state=0, jit_compile=False)
    fit_quietly(est.set_params(init={"samples": _two_clusters()}), [0.0, 0.0])
    first = est.history_["H"].iloc[0]
    fit_quietly(est.set_params(init=None), [0.0, 0.0])
    assert first < -1.5 < 0.0 < est.history_["H"].iloc[0]
