"""TensorBoard logging through the epoch-end hook."""

import pickle
import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import identity
from sklearn.exceptions import ConvergenceWarning

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.monitoring import TensorBoardLogger


def _scalars(directory):
    """{tag: {step: value}} from every event file below ``directory``."""
    out = {}
    for path in directory.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                scalar = float(tf.make_ndarray(value.tensor))
                out.setdefault(value.tag, {})[event.step] = scalar
    return out


def test_tensorboard_logs_every_chunk_and_epoch_of_every_seed(tmp_path):
    logger = TensorBoardLogger(tmp_path)
    al = ALParams(num_iters=100, max_epochs=2, init_iters=20, batch_size=100, log_rate=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = EPIEstimator(
            identity,
            [[-3.0, 3.0]],
            al_params=al,
            n_seeds=2,
            callbacks=[logger],
            random_state=0,
            jit_compile=False,
        ).fit([1.0], [0.5])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_0", "seed_1"]
    scalars = _scalars(tmp_path / "seed_0")
    assert sorted(scalars["train/R_mean_f0"]) == [50, 100, 150, 200]
    assert {"test/H", "test/p_mean_f0", "test/p_var_f0", "test/eta_var_f0"} <= set(scalars)
    tests = est.history_.query("seed == 0 and phase == 'test' and epoch > 0")
    np.testing.assert_allclose(
        [scalars["test/H"][step] for step in tests["iteration"]], tests["H"], rtol=1e-6
    )
    pickle.dumps(est)  # the logger's file writer stays behind


def test_without_tensorboard_the_logger_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real(name, *a),
    )
    with pytest.raises(ImportError, match="pip install tensorboard"):
        TensorBoardLogger("runs")
