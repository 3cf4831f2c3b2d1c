"""XLA's persistent compilation cache: where it lives, how to turn it off, its reuse."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sklearn_epi import _compile_cache

ROOT = Path(__file__).resolve().parents[1]


def test_the_cache_is_the_users_and_named_by_tensorflow_and_processor(monkeypatch, tmp_path):
    monkeypatch.setenv(_compile_cache.VARIABLE, "on")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    path = _compile_cache.configure()
    import tensorflow as tf

    assert path.parent.parent == tmp_path / "sklearn_epi" / "xla"
    assert path.parent.name == f"tf-{tf.__version__}" and path.is_dir()
    assert path.name.startswith(f"{os.uname().machine}-")
    # The user's own XLA flags are kept.
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {_compile_cache.FLAG}={path}"


@pytest.mark.parametrize("value", [None, "0", "off", ""])
def test_the_cache_is_off_unless_asked_for(monkeypatch, value):
    # Loading a cached program prints two error-level lines (TensorFlow 2.21).
    if value is None:
        monkeypatch.delenv(_compile_cache.VARIABLE, raising=False)
    else:
        monkeypatch.setenv(_compile_cache.VARIABLE, value)
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    assert _compile_cache.configure() is None and "TF_XLA_FLAGS" not in os.environ


def test_a_cache_directory_the_user_gave_xla_is_left_alone(monkeypatch, tmp_path):
    monkeypatch.setenv(_compile_cache.VARIABLE, str(tmp_path / "ours"))
    theirs = f"{_compile_cache.FLAG}={tmp_path / 'theirs'}"
    monkeypatch.setenv("TF_XLA_FLAGS", theirs)
    assert _compile_cache.configure() is None and os.environ["TF_XLA_FLAGS"] == theirs
    assert not (tmp_path / "ours").exists()


FIT = """
from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues
params = ALParams(num_iters=2, init_iters=2, max_epochs=1, batch_size=50)
EPIEstimator(lds_eigenvalues, LDS_BOUNDS, al_params=params, n_test=50, random_state=0).fit(
    LDS_MU, LDS_SIGMA2
)
"""


def test_a_second_process_fitting_the_same_problem_compiles_nothing_new(tmp_path):
    env = {**os.environ, _compile_cache.VARIABLE: str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_XLA_FLAGS", None)

    def programs():
        subprocess.run([sys.executable, "-c", FIT], env=env, cwd=ROOT, check=True, timeout=300)
        return {p.name for p in tmp_path.rglob("*.pb")}

    first = programs()
    assert len(first) >= 3  # the Gaussian start, the training step, the test
    assert programs() == first
