"""Regenerate every fit the gallery loads from ``examples/data/``, with today's code.

Run from the repository root::

    python examples/refit_all.py            # one fit at a time
    python examples/refit_all.py --jobs 2   # two at a time, the cores shared

It runs ``fit_stg.py``, ``fit_v1.py`` (5 Hz and 10 Hz) and ``fit_sc.py``
(both regimes) as separate processes, each line of their output prefixed
with the fit's name, and ends with a table of each fit's wall time. Each
file records the package version, the git commit and the TensorFlow
version that made it (:func:`sklearn_epi.persistence.file_info`); the
gallery pages print them. It refuses to start while the package has
uncommitted changes, whose fits no commit could reproduce
(``--allow-dirty`` to run anyway, for a try). Hours on two CPU cores; not
run by CI. Run the gallery's ``plot_*.py`` scripts afterwards: they assert
the paper's findings on the new files. At commit 34ff929 the SC refit lost
them (its high-sW fit drifted into the other regime; ``fit_sc.py`` says
more), and the repository keeps the older SC fits.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
#: Each fit: the script and its arguments, and the files it writes.
FITS = {
    "stg": (["fit_stg.py"], ["stg_hub_frequency.npz"]),
    "v1-5hz": (["fit_v1.py", "--only", "5hz"], ["v1_5hz.npz"]),
    "v1-10hz": (["fit_v1.py", "--only", "10hz"], ["v1_10hz.npz"]),
    "sc-high": (["fit_sc.py", "--only", "high_sW"], ["sc_high_sW.npz"]),
    "sc-low": (["fit_sc.py", "--only", "low_sW"], ["sc_low_sW.npz"]),
}
_print_lock = threading.Lock()


def run(name: str, threads: int) -> tuple:
    """Run one fit script; its exit code and wall time."""
    script, _ = FITS[name]
    # The script as __main__, after TensorFlow is told its share of the cores.
    launcher = (
        "import runpy, sys, tensorflow as tf; "
        f"tf.config.threading.set_intra_op_parallelism_threads({threads}); "
        f"tf.config.threading.set_inter_op_parallelism_threads({threads}); "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    # The package of this checkout, as the check of its commit saw it.
    path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    start = time.perf_counter()
    with subprocess.Popen(
        [sys.executable, "-c", launcher, str(HERE / script[0]), *script[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as process:
        for line in process.stdout:
            with _print_lock:
                print(f"[{name}] {line}", end="", flush=True)
    return process.returncode, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1, help="fits run at once (default 1)")
    parser.add_argument("--only", nargs="+", choices=list(FITS), help="refit only these")
    parser.add_argument(
        "--allow-dirty", action="store_true", help="run although the package has local changes"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    sys.path.insert(0, str(HERE.parent))
    from sklearn_epi._safe_file import SOURCE_COMMIT as commit
    from sklearn_epi.persistence import file_info

    if commit is None or commit.endswith("+dirty"):
        if not args.allow_dirty:
            parser.error(
                f"the package is at {commit or 'no git commit'}: commit its changes first, so "
                "that the stored fits name a commit that makes them (--allow-dirty to run anyway)"
            )
    names = args.only or list(FITS)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    print(
        f"refitting {', '.join(names)} at {commit}, {args.jobs} at a time, {threads} threads each"
    )
    with ThreadPoolExecutor(args.jobs) as pool:
        done = dict(zip(names, pool.map(lambda n: run(n, threads), names)))
    print(f"\n{'fit':10s} {'exit':>4s} {'wall':>8s}  file: sklearn_epi, commit")
    for name, (code, wall) in done.items():
        for file in FITS[name][1]:
            info = file_info(DATA / file)
            print(
                f"{name:10s} {code:4d} {wall / 60:6.1f} min  {file}: {info['sklearn_epi']}, "
                f"{info['commit']}"
            )
    return max(code for code, _ in done.values())


if __name__ == "__main__":
    sys.exit(main())
