"""The benchmark suite stays runnable: ``python -m benchmarks --quick``."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_benchmark_suite_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "quick.csv"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--csv", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(out)
    sections = {
        "throughput",
        "time to property",
        "queries",
        "parallel",
        "optimisations",
        "simulators",
        "scale",
        "plateau",
        "compile",
    }
    assert set(table["section"]) >= sections
    throughput = table[table["section"] == "throughput"]
    assert (throughput["value"] > 0).all() and (throughput["baseline"] > 0).all()


def test_plateau_applies_the_fits_stop_and_keep_rules_to_each_prefix():
    from benchmarks import plateau

    # (epoch, entropy, converged): the epoch-1 entropy is the span's start.
    course = [
        (1, 5.0, False),
        (2, 1.0, True),
        (3, 2.0, True),
        (4, 9.0, False),  # the widest epoch fails the test: never kept
        (5, 1.5, True),
        (6, 2.5, True),
        (7, 3.0, True),
        (8, 2.0, True),
        (9, 2.9, True),
    ]
    rows = [
        {
            "N": 10,
            "seed": 0,
            "epoch": e,
            "iteration": 500 * e,
            "entropy": h,
            "converged": c,
            "seconds": 10.0 * e,
        }
        for e, h, c in course
    ]
    (result,) = plateau.summarise(rows)
    # patience 2: epoch 3 is the best converged when epoch 5 ends, two epochs on.
    assert (result["p2_stop"], result["p2_kept"], result["p2_H"]) == (5, 3, 2.0)
    assert result["p2_seconds"] == 50.0
    # patience 4: new bests at 6 and 7, and only two epochs after 7: runs to the end.
    assert np.isnan(result["p4_stop"]) and (result["p4_kept"], result["p4_H"]) == (7, 3.0)
    # The plateau: the median of the last third (epochs 7-9), against the start's 5.0.
    assert result["H_plateau"] == 2.9
    assert result["p2_share"] == pytest.approx((2.9 - 2.0) / 2.1)


def test_the_original_packages_statistic_is_ours_shifted_with_chi_redrawn_per_seed():
    import tensorflow as tf

    from benchmarks.original_epi import EPS, RedrawnRNN
    from sklearn_epi.circuits import rnn_stable_amplification

    z = np.random.default_rng(0).uniform(-1.0, 1.0, (6, 40)).astype(np.float32)
    ours = rnn_stable_amplification(10, g=0.0)(z).numpy()
    seed = tf.constant([1, 2])
    # Without noise the original's statistic is ours with real(lambda_1) + 0.01.
    shifted = RedrawnRNN(10, g=0.0)(z, seed=seed).numpy()
    np.testing.assert_allclose(shifted - ours, np.tile([EPS, 0.0], (6, 1)), atol=1e-6)
    # With noise, each seed draws its own chi for every sample.
    noisy = RedrawnRNN(10, g=0.01)
    np.testing.assert_array_equal(noisy(z, seed=seed).numpy(), noisy(z, seed=seed).numpy())
    assert not np.allclose(noisy(z, seed=seed).numpy(), noisy(z, seed=tf.constant([3, 4])).numpy())
