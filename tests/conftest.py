"""What the test modules share: the statistics they fit, and one canonical tiny problem.

Import the statistics with ``from conftest import identity`` (pytest puts
this directory on the path); module-level functions, so that joblib and dask
workers can unpickle them by reference.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_epi import ALParams, EPIEstimator, RealNVP


def identity(z):
    """f(z) = z: the maximum-entropy answer under mean and variance targets is Gaussian."""
    return z


def shifted(z):
    """f(z) = z + 1."""
    return z + 1.0


class WritesMarker:
    """A crafted pickle, as an attacker would send: unpickling it creates ``path``.

    Harmless proof that reading a file ran code it held (the real thing would
    run a shell command).
    """

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


#: The canonical tiny problem: f(z) = z on the plane, E[f] = TINY_MU,
#: Var[f] = TINY_SIGMA2, whose maximum-entropy answer is the Gaussian
#: N(TINY_MU, diag(TINY_SIGMA2)); a budget that converges in seconds, with one
#: base mode (the default two need the default budget to merge into a
#: one-lobed answer, see test_maxent).
TINY_BOUNDS = {"x": (-np.inf, np.inf), "y": (-np.inf, np.inf)}
TINY_MU = pd.Series([1.0, -2.0], index=["x", "y"])
TINY_SIGMA2 = np.array([0.5, 2.0])
TINY_AL = ALParams(c0=1.0, beta=4.0, num_iters=300, max_epochs=8, init_iters=200, batch_size=500)


def tiny_estimator(**params) -> EPIEstimator:
    """An estimator of the canonical tiny problem; ``params`` override its settings."""
    defaults = {"al_params": TINY_AL, "flow": RealNVP(base_modes=1), "random_state": 0}
    return EPIEstimator(identity, TINY_BOUNDS, **{**defaults, **params})


@pytest.fixture(scope="session")
def tiny_fit():
    """The canonical tiny problem fitted once per test worker (read it, do not refit it)."""
    return tiny_estimator().fit(TINY_MU, TINY_SIGMA2)


README = Path(__file__).resolve().parents[1] / "README.rst"


@pytest.fixture(scope="session")
def readme_example():
    """The namespace of the README's usage example, run as written, once per session.

    The demo is the oscillator fitted with default settings: the README test
    checks it runs, the paper test checks it against the exact maximum. Both
    are in the xdist group ``readme_example``, so one worker runs the demo.
    """
    text = README.read_text(encoding="utf-8")
    block = re.search(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text).group(1)
    code = "\n".join(line[4:] for line in block.splitlines())
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


def pytest_collection_modifyitems(config, items):
    """Run the slow tests (converged fits, the docs build, the benchmark run) first.

    Under pytest-xdist the long tests then start at once in both workers and
    the short ones fill in around them, instead of one long fit running alone
    at the end while the other worker idles.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
