"""Start TensorFlow without its start-up chatter on stderr, keeping anything else it says.

TensorFlow's C++ layers log at start-up through two loggers: its own, which
``TF_CPP_MIN_LOG_LEVEL`` controls, and absl's, which ignores it. On a machine
without a GPU they print, before a fit's first line, "E ... Unable to register
cuDNN factory", "failed call to cuInit", absl's notice about messages before
``InitializeLog`` and XLA's "service ... initialized" lines: lines a scientist
reads as a broken install. They are written once per process, when TensorFlow
is imported, when it first looks for devices and when XLA first compiles.

:func:`start_tensorflow` (at import) imports TensorFlow and looks for devices,
and :func:`start_xla` (before a fit's or a query's first compilation)
compiles a trivial function, each with the process's stderr (file descriptor
2, which C++ writes to) sent to a temporary file; then every line that is
not one of the known start-up notices is written back. Real errors still
show. XLA starts late on purpose: its first compilation initialises
TensorFlow's runtime, after which a worker can no longer cap its thread
pools. A user who sets ``TF_CPP_MIN_LOG_LEVEL`` before importing the package
takes control of the logs and nothing is filtered. The level the package
sets for itself is marked (``SKLEARN_EPI_LOG_LEVEL``), so that a process
started from one that imported the package (a seed's worker, a fit the web
interface launches, a test worker) inherits it as the package's, not the
user's, and filters too.

:class:`OwnRetracingFilter` drops one Python-side warning, TensorFlow's
"triggered tf.function retracing", about the package's own compiled
functions only (see there).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager

#: Start-up notices of TensorFlow 2.18 on a machine whose CUDA plugins find no
#: GPU, and of XLA's first compilation. Matched anywhere in a line.
STARTUP_NOTICES = (
    r"Unable to register cu(FFT|DNN|BLAS) factory",
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"XLA service 0x[0-9a-f]+ initialized for platform",
    r"StreamExecutor device \(\d+\):",
    r"Compiled cluster using XLA!",
    # TensorFlow 2.19 and 2.21 (checked on 2.18 to 2.21):
    r"computation placer already registered",
    r"oneDNN custom operations are on",
)
#: Only where no NVIDIA device exists is a failing cuInit expected, not news.
NO_GPU_NOTICES = (r"failed call to cuInit", r"Could not find cuda drivers on your machine")
#: What TensorFlow 2.22 prints after such a notice: a source-location trace
#: ("=== Source Location Trace: ===", a "file:line", a blank line). Dropped
#: only straight after a dropped notice, so a real error's lines still show.
NOTICE_TRACE = re.compile(r"=== Source Location Trace: ===\s*$|\S+:\d+\s*$|\s*$")


def notices() -> re.Pattern:
    """The lines to drop: the start-up notices, and cuInit's failure on a machine without a GPU."""
    patterns = STARTUP_NOTICES + (() if glob.glob("/dev/nvidia[0-9]*") else NO_GPU_NOTICES)
    return re.compile("|".join(patterns))


@contextmanager
def filtered_stderr(drop: re.Pattern):
    """Collect what is written to file descriptor 2 and write back the lines ``drop`` misses."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept, after_notice = [], False
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                if drop.search(line):
                    after_notice = True
                elif not (after_notice and NOTICE_TRACE.match(line)):
                    after_notice = False
                    kept.append(line)
            if kept:
                os.write(2, "".join(kept).encode())


#: Whether this process filters the notices, and whether XLA has started.
_state = {"filter": False, "xla": False}


#: Set beside ``TF_CPP_MIN_LOG_LEVEL`` when the package chose that level.
MARK = "SKLEARN_EPI_LOG_LEVEL"


def start_tensorflow() -> None:
    """Import TensorFlow and find its devices, dropping the start-up notices."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if level is not None and os.environ.get(MARK) != level:  # the user's: leave the logs alone
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ[MARK] = "2"  # TF's info lines (oneDNN, CPU)
    _state["filter"] = True
    with filtered_stderr(notices()):
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401  (registers its own plugins)

        tf.config.list_physical_devices()


def start_xla() -> None:
    """Compile once with XLA, dropping its start-up notices (once per process; cheap after)."""
    if _state["xla"] or not _state["filter"]:
        return
    _state["xla"] = True
    import tensorflow as tf

    with filtered_stderr(notices()):
        tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(0.0))


#: The package's compiled functions, as TensorFlow names them in its warning.
OWN_FUNCTIONS = (
    "FittedFunctions",
    "GaussianFit._steps",
    "SampleFit._steps",
    "Trainer._train_steps",
    "Trainer._evaluate",
)


class OwnRetracingFilter(logging.Filter):
    """Drops TensorFlow's "frequent retracing" warning about the package's own functions.

    A fit traces its training step once per problem (flow, support,
    statistic, batch; pooled and reused after that, see ``_train``), and a
    fitted estimator traces its queries once. TensorFlow counts traces per
    code object across instances, so a session that fits or queries more than
    five different problems (the docs' gallery, a notebook trying models, a
    benchmark loop) looked like one function retracing, and TensorFlow said
    so. Warnings about any other function, a user's statistic included, pass.
    """

    def filter(self, record):
        message = record.getMessage()
        return not (
            "tf.function retracing" in message and any(name in message for name in OWN_FUNCTIONS)
        )


def drop_own_retracing_warnings() -> None:
    """Install :class:`OwnRetracingFilter` on TensorFlow's logger (once per process)."""
    import tensorflow as tf

    logger = tf.get_logger()
    if not any(isinstance(f, OwnRetracingFilter) for f in logger.filters):
        logger.addFilter(OwnRetracingFilter())
