"""The README's usage example runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.rst"


@pytest.mark.slow
def test_readme_usage_example_runs_and_converges():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text).group(1)
    code = "\n".join(line[4:] for line in block.splitlines())
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["est"].converged_
    assert namespace["Z"].shape == (1000, 4) and namespace["H"].shape == (5, 4, 4)
