"""Quiet by default: TensorFlow's start-up notices are dropped, everything else on stderr shows."""

import logging
import os
import re
import subprocess
import sys
from contextlib import contextmanager

from sklearn_epi._quiet import MARK, filtered_stderr, notices

FIT = """
import warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn_epi import ALParams, EPIEstimator, RealNVP
al = ALParams(c0=1.0, num_iters=20, max_epochs=1, init_iters=10, batch_size=100)
# 20 steps do not converge: that warning is output of our own, not a notice.
warnings.simplefilter("ignore", ConvergenceWarning)
est = EPIEstimator(lambda z: z, [[-np.inf, np.inf]], al_params=al, random_state=0,
                   flow=RealNVP(base_modes=1))
est.fit([0.0], [1.0])
print("fitted")
"""


@contextmanager
def retracing_warnings():
    """The "triggered tf.function retracing" records TensorFlow's logger lets through."""
    import tensorflow as tf

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    tf.get_logger().addHandler(handler)
    retracing = []
    try:
        yield retracing
    finally:
        tf.get_logger().removeHandler(handler)
        retracing += [r for r in records if "retracing" in r.getMessage()]


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", MARK)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**environ, **env}
    )


def test_import_and_a_compiled_fit_print_only_our_own_output():
    # Before: cuFFT/cuDNN/cuBLAS registration errors, cuInit's failure, absl's
    # InitializeLog notice and XLA's service lines, on a CPU-only machine.
    done = run_python(FIT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fitted"
    assert done.stderr == ""


def test_a_fit_started_from_a_process_that_imported_the_package_is_quiet_too():
    # The web interface launches fits, a multi-seed fit starts workers and
    # pytest-xdist starts test workers: each inherited the log level the
    # parent's import had set, took it for the user's, and printed
    # TensorFlow's start-up notices (into a run's log, on the user's stderr).
    parent = (
        "import subprocess, sys, sklearn_epi\n"
        f"done = subprocess.run([sys.executable, '-c', {FIT!r}], capture_output=True, text=True)\n"
        "print(done.stdout.strip(), repr(done.stderr))"
    )
    done = run_python(parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fitted ''"


def test_seeds_fitted_in_parallel_print_only_our_own_output():
    # Each seed's worker printed the notices; an importable statistic, since
    # AutoGraph cannot read the source of a lambda sent to a worker from -c.
    code = (
        "import warnings\n"
        "from sklearn_epi import ALParams, EPIEstimator, RealNVP\n"
        "from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues\n"
        "al = ALParams(num_iters=10, max_epochs=1, init_iters=10, batch_size=100)\n"
        "est = EPIEstimator(lds_eigenvalues, LDS_BOUNDS, al_params=al, n_seeds=2, n_jobs=2,\n"
        "                   flow=RealNVP(num_units=8), jit_compile=False, coverage_draws=0)\n"
        "warnings.simplefilter('ignore')  # 10 steps do not converge, and say so\n"
        "est.fit(LDS_MU, LDS_SIGMA2)\n"
        "print('fitted')\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "fitted"
    assert done.stderr == ""


def test_importing_leaves_the_thread_pools_to_the_worker():
    # A worker caps TensorFlow's pools (n_jobs > 1) after importing the
    # package; a quiet start that compiled at import fixed them first.
    done = run_python(
        "import sklearn_epi, tensorflow as tf\n"
        "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"


def test_a_user_who_sets_the_log_level_sees_tensorflow_s_own_logs():
    done = run_python(
        "import sklearn_epi, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
        TF_CPP_MIN_LOG_LEVEL="0",
    )
    assert done.stdout.strip() == "0"
    assert re.search(r"oneDNN|cuda|XLA|absl", done.stderr)


def test_a_level_set_after_the_package_s_own_is_the_user_s():
    # A parent that imported the package, then chose a level for its children.
    done = run_python(
        "import sklearn_epi, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
        **{"TF_CPP_MIN_LOG_LEVEL": "0", MARK: "2"},
    )
    assert done.stdout.strip() == "0"
    assert re.search(r"oneDNN|cuda|XLA|absl", done.stderr)


def test_filter_drops_start_up_notices_and_keeps_other_lines(capfd):
    with filtered_stderr(notices()):
        os.write(2, b"E0000 cuda_dnn.cc:8310] Unable to register cuDNN factory: ...\n")
        os.write(2, b"I0000 service.cc:148] XLA service 0x55e6 initialized for platform Host\n")
        os.write(2, b"E0000 something.cc:1] a real error\n")
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is called"
            b" are written to STDERR\n",
        )
        os.write(2, b"and its second line\n")
    assert capfd.readouterr().err == "E0000 something.cc:1] a real error\nand its second line\n"


def test_filter_drops_a_notice_s_source_location_trace_and_nothing_after_it(capfd):
    # TensorFlow 2.22 follows cuInit's failure on a machine without a GPU
    # with a three-line trace, which reached the user's stderr.
    with filtered_stderr(re.compile("failed call to cuInit")):
        os.write(2, b"E0000 cuda_executor.cc:1] failed call to cuInit: INTERNAL: ...\n")
        os.write(2, b"=== Source Location Trace: ===\n")
        os.write(2, b"external/xla/xla/stream_executor/cuda/cuda_status.cc:50\n")
        os.write(2, b"\n")
        os.write(2, b"E0000 something.cc:1] a real error\n")
        os.write(2, b"at/this/file.cc:12\n")
    assert capfd.readouterr().err == "E0000 something.cc:1] a real error\nat/this/file.cc:12\n"


def test_queries_of_any_size_trace_once():
    # A traced function per sample size made repeated queries retrace, and
    # TensorFlow warned "triggered tf.function retracing" in normal use.
    import numpy as np

    from sklearn_epi import ALParams, EPIEstimator

    al = ALParams(c0=1.0, num_iters=20, max_epochs=1, init_iters=10, batch_size=100)
    est = EPIEstimator(lambda z: z, [[-np.inf, np.inf]] * 2, al_params=al, random_state=0)
    est.fit([0.0, 0.0], [1.0, 1.0])
    for n in (1, 7, 100, 1000, 3, 20_000):
        assert est.sample(n, random_state=n).shape == (n, 2)
        assert est.score_samples(np.zeros((n, 2))).shape == (n,)
    fns = est._fitted_flow()
    assert fns.sample.experimental_get_tracing_count() == 1
    assert fns.log_prob.experimental_get_tracing_count() == 1


def test_many_fitted_estimators_in_one_session_do_not_look_like_retracing():
    # Each fitted estimator traces its own queries once; as bound methods of
    # one class they counted as one function retraced, and TensorFlow warned
    # after five estimators (a grid search, a benchmark loop).
    import tensorflow as tf

    from sklearn_epi import RealNVP
    from sklearn_epi._queries import FittedFunctions
    from sklearn_epi.support import parse_bounds

    with retracing_warnings() as warned:
        for _ in range(7):
            flow = RealNVP(num_units=4).build(parse_bounds([[0.0, 1.0]] * 2), seed=0)
            fns = FittedFunctions(flow)
            fns.sample(10, tf.constant([0, 1], tf.int32))
            fns.log_prob(tf.constant([[0.5, 0.5]], flow.dtype))
    assert not warned


def test_fitting_many_different_problems_in_one_session_does_not_look_like_retracing():
    # Each problem traces its own training step once (then pooled), but
    # TensorFlow counted the traces of GaussianFit._steps and Trainer._evaluate
    # across instances and warned after five problems (the docs' gallery).
    import warnings

    import numpy as np

    from sklearn_epi import ALParams, EPIEstimator, RealNVP

    al = ALParams(num_iters=5, max_epochs=1, init_iters=5, batch_size=20)
    with retracing_warnings() as warned:
        for D in range(2, 9):
            est = EPIEstimator(
                lambda z: z,
                [[-5.0, 5.0]] * D,
                flow=RealNVP(num_stages=1, num_units=4),
                al_params=al,
                random_state=0,
                verbose=0,
                jit_compile=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(np.zeros(D), np.ones(D))
    assert not warned


def test_retracing_warnings_about_other_functions_still_show():
    from sklearn_epi._quiet import OwnRetracingFilter

    def record(message):
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    warning = "5 out of the last 5 calls to {} triggered tf.function retracing."
    own = warning.format("<bound method Trainer._evaluate of <x>>")
    users = warning.format("<function my_statistic at 0x1>")
    assert not OwnRetracingFilter().filter(record(own))
    assert OwnRetracingFilter().filter(record(users))
