"""Emergent property inference (EPI) as a scikit-learn estimator.

EPI (Bittner et al., eLife 2021) finds the maximum-entropy distribution of a
circuit model's parameters whose predictions have chosen means and
variances, represented as a normalizing flow.
"""

from ._compile_cache import configure as _configure_compile_cache
from ._quiet import drop_own_retracing_warnings as _drop_own_retracing_warnings
from ._quiet import start_tensorflow as _start_tensorflow

# XLA reads its flags when it first compiles: the cache of compiled programs
# is set before TensorFlow starts, so that a second process does not compile.
_configure_compile_cache()
# TensorFlow's start-up chatter (CUDA probing, XLA's first compilation) would
# bury the fit's own output; other lines on stderr still show.
_start_tensorflow()
_drop_own_retracing_warnings()

from ._al_params import ALParams  # noqa: E402
from ._reporting import EpochCallback  # noqa: E402
from .estimator import EPIEstimator  # noqa: E402
from .flows import MAF, RealNVP  # noqa: E402
from .persistence import convert, load  # noqa: E402
from .property import EmergentProperty  # noqa: E402
from .run_store import RunStore, load_run, runs  # noqa: E402

__all__ = [
    "EPIEstimator",
    "RealNVP",
    "MAF",
    "ALParams",
    "EmergentProperty",
    "EpochCallback",
    "load",
    "convert",
    "RunStore",
    "runs",
    "load_run",
]
__version__ = "0.2.0"
