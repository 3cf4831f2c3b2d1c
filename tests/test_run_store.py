"""The run store: repeated fits load, every run and epoch is listed and loadable, no collisions."""

import pickle
import re
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import WritesMarker, shifted
from sklearn.base import clone

from sklearn_epi import ALParams, EPIEstimator, EpochCallback, RunStore, load_run, runs


def estimator(store, c0=1.0):
    return EPIEstimator(
        shifted,
        [[-np.inf, np.inf]] * 2,
        al_params=ALParams(
            c0=c0,
            beta=4.0,
            num_iters=100,
            max_epochs=3,
            init_iters=50,
            batch_size=100,
            patience=None,  # every epoch is stored, the kept one and the rest
        ),
        n_seeds=2,
        random_state=0,
        checkpoint=RunStore(store),
        jit_compile=False,
    )


def fit(est):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit([1.0, 0.0], [0.5, 2.0])


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    return store, fit(estimator(store))


class SeedStarts(EpochCallback):
    """Records every seed that starts fitting (a seed loaded from its run does not)."""

    def __init__(self):
        self.started = []

    def on_seed_start(self, seed_index, total_iterations):
        self.started.append(seed_index)


def test_a_repeated_fit_loads_its_seeds_instead_of_fitting_them(stored):
    store, first = stored
    starts = SeedStarts()
    again = fit(clone(first).set_params(callbacks=[starts]))
    assert starts.started == []
    pd.testing.assert_frame_equal(again.history_, first.history_)
    assert again.entropy_ == first.entropy_ and again.epoch_ == first.epoch_


def test_runs_lists_every_run_seed_and_epoch(stored):
    store, first = stored
    other = fit(estimator(store, c0=0.5))  # another setting: a run of its own
    table = runs(store)
    assert table["run"].nunique() == 2 and table["fitted"].all() and table["finished"].all()
    assert set(table["seed"]) == {0, 1}
    assert set(table["statistic"]) == {f"{shifted.__module__}.shifted"}
    mine = table[table["path"] == str(first.checkpoint_dir_)]
    assert sorted(mine.loc[mine["seed"] == 0, "epoch"]) == [0, 1, 2, 3]
    tests = first.history_[first.history_["phase"] == "test"]
    merged = mine.merge(tests, on=["seed", "epoch"])
    assert len(merged) == len(mine)
    np.testing.assert_allclose(merged["entropy"], merged["H"])
    selected = mine[mine["selected"]]
    assert len(selected) == 2  # one selected epoch per seed
    best = selected[selected["seed"] == first.best_seed_]
    assert int(best["epoch"].iloc[0]) == first.epoch_
    assert other.checkpoint_dir_ != first.checkpoint_dir_


def test_load_run_returns_the_fit_or_any_epoch_of_it(stored):
    store, first = stored
    path = first.checkpoint_dir_
    loaded = load_run(path)
    np.testing.assert_array_equal(loaded.sample(5, random_state=1), first.sample(5, random_state=1))
    other = 1 if first.epoch_ != 1 else 2
    at = load_run(path, seed=first.best_seed_, epoch=other)
    row = first.history_[
        (first.history_["phase"] == "test")
        & (first.history_["seed"] == first.best_seed_)
        & (first.history_["epoch"] == other)
    ]
    assert at.epoch_ == other and at.entropy_ == pytest.approx(float(row["H"].iloc[0]))
    assert not np.allclose(at.sample(5, random_state=1), first.sample(5, random_state=1))
    with pytest.raises(ValueError, match="epoch 9 of seed 0 is not in"):
        load_run(path, seed=0, epoch=9)
    with pytest.raises(ValueError, match="seed 5 is not in"):
        load_run(path, seed=5, epoch=1)


def test_a_checkpoint_of_another_version_is_listed_with_what_to_do_and_never_unpickled(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text('{"sklearn_epi": "0.1.0", "tensorflow": "2.15.0", "format": 1}')
    marker = tmp_path / "marker"
    with open(run / "seed-0.pkl", "wb") as f:
        pickle.dump(WritesMarker(marker), f)
    [status] = runs(run)["status"]
    assert re.match(
        r"unreadable: .*seed-0\.pkl: .*a checkpoint of sklearn_epi 0\.1, a pickle", status
    )
    assert "sklearn_epi.convert(" in status
    assert re.search(r"written by sklearn_epi 0\.1\.0 with TensorFlow 2\.15", status)
    with pytest.raises(ValueError, match="holds no fit.npz: its fit never returned"):
        load_run(run)
    assert not marker.exists()


def test_one_damaged_run_or_seed_is_a_row_and_every_other_run_is_listed(stored, tmp_path):
    # A corrupt run.json gave a JSONDecodeError naming no file and listing no
    # run; a JSON list, an AttributeError; a damaged seed file, no other run.
    store, first = stored
    for name in ("good", "corrupt", "list", "seed"):
        shutil.copytree(first.checkpoint_dir_, tmp_path / name)
    (tmp_path / "corrupt" / "run.json").write_text('{"statistic": ')
    (tmp_path / "list" / "run.json").write_text("[1, 2]")
    for file in ("seed-1.npz", "seed-1.prev.npz"):
        (tmp_path / "seed" / file).write_bytes(b"not a checkpoint")
    table = runs(tmp_path)
    status = table.groupby("run")["status"].unique()
    assert list(status["good"]) == ["ok"] and table["run"].nunique() == 4
    [corrupt] = status["corrupt"]
    assert re.match(r"unreadable: .*corrupt/run\.json: JSONDecodeError", corrupt)
    assert re.match(r"unreadable: .*list/run\.json: a JSON list", status["list"][0])
    damaged = table[(table["run"] == "seed") & (table["seed"] == 1)]
    assert len(damaged) == 1 and re.match(
        r"unreadable: .*seed/seed-1\.npz", damaged["status"].iloc[0]
    )
    # Seed 0 of that run is listed epoch by epoch, as in the good copy.
    seed_0 = table[(table["run"] == "seed") & (table["seed"] == 0)]
    assert (seed_0["status"] == "ok").all() and not table.loc[damaged.index, "selected"].any()
    assert set(table[table["selected"]]["run"]) == {"good", "seed"}
    assert list(seed_0["epoch"]) == list(
        table[(table["run"] == "good") & (table["seed"] == 0)]["epoch"]
    )


def test_run_store_refuses_a_file_and_names_the_argument(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="the run store .* is a file"):
        fit(estimator(tmp_path / "file"))
    with pytest.raises(TypeError, match="directory must be a path"):
        RunStore(3)
    with pytest.raises(ValueError, match="does not exist"):
        runs(tmp_path / "missing")


WRITER = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    from sklearn_epi import ALParams, EPIEstimator, RunStore

    def shifted(z):
        return z + 1.0

    store, c0 = sys.argv[1], float(sys.argv[2])
    est = EPIEstimator(shifted, [[-np.inf, np.inf]] * 2,
                       al_params=ALParams(c0=c0, beta=4.0, num_iters=100, max_epochs=3,
                                          init_iters=50, batch_size=100, log_rate=10),
                       n_seeds=2, random_state=0, checkpoint=RunStore(store),
                       jit_compile=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit([1.0, 0.0], [0.5, 2.0])
    print(est.entropy_)
    """)


@pytest.mark.slow
def test_processes_writing_one_store_at_once_leave_every_run_readable(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    store = tmp_path / "store"
    # Two processes on the same run (they write the same files) and one on another.
    procs = [
        subprocess.Popen([sys.executable, str(script), str(store), c0], stdout=subprocess.PIPE)
        for c0 in ("1.0", "1.0", "0.5")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    table = runs(store)
    assert table["run"].nunique() == 2 and table["finished"].all()
    for path in table["path"].unique():
        est = load_run(path)
        assert est.sample(3, random_state=0).shape == (3, 2)
    same = {float(out) for out in outputs[:2]}
    assert len(same) == 1  # the same settings give the same fit, whoever wrote last
