"""The benchmark suite stays runnable: ``python -m benchmarks --quick``."""

import subprocess
import sys
from pathlib import Path

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
        "compile",
    }
    assert set(table["section"]) >= sections
    throughput = table[table["section"] == "throughput"]
    assert (throughput["value"] > 0).all() and (throughput["baseline"] > 0).all()
