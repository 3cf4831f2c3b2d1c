"""The documentation builds: API pages, user guide and the example gallery.

Sphinx runs with warnings as errors, and sphinx-gallery aborts on an example
that raises, so a broken docstring or example fails this test.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_sphinx_build_succeeds_with_warnings_as_errors(tmp_path):
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    )
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "doc", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-6000:]
    assert (tmp_path / "index.html").exists()
    assert (tmp_path / "auto_examples" / "plot_oscillating_lds.html").exists()
    assert (tmp_path / "generated" / "sklearn_epi.analysis.find_mode.html").exists()
    # The maths renders offline: MathJax and its fonts ship with the site.
    page = (tmp_path / "user_guide.html").read_text()
    assert 'src="_static/mathjax/tex-chtml.js' in page and "cdn.jsdelivr" not in page
    fonts = tmp_path / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").exists()
