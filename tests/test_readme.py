"""The README's usage example runs as written."""

import pytest


@pytest.mark.slow
@pytest.mark.xdist_group("readme_example")
def test_readme_usage_example_runs_and_converges(readme_example):
    assert readme_example["est"].converged_
    assert readme_example["Z"].shape == (1000, 4) and readme_example["H"].shape == (5, 4, 4)
