"""``python -m benchmarks``: run the speed suite, print one table, write it as CSV.

Sections (``--sections``, default all):

* ``throughput``: training it/s, package step vs a hand-written XLA step.
* ``time``: wall time and simulations until the RNN reaches the paper's
  criterion, and until full convergence, N = 2 ... 100.
* ``queries``: Hessians of log q per second, samples per second, and the
  peak memory of large queries beyond their result (chunked vs one chunk).
* ``parallel``: 4 seeds with ``n_jobs=2`` vs sequential.
* ``optimisations``: each built-in optimisation against its switched-off
  variant (XLA, fused sampling, one-pass penalty gradient, batched test,
  early stopping, init caching, worker thread caps).
* ``maxent``: the entropy gap to the exact maximum (the reference solver's
  H*) on the paper's oscillator, lobe share, convergence and wall time, per
  optimisation setting and seed.
* ``checkpoint``: the share of a fit's wall time spent writing its
  per-epoch checkpoints, on the oscillator and the RNN at N = 50.
* ``simulators``: one training iteration with the V1 and SC statistics
  (noisy networks simulated over time), today's against the ``tf.scan``
  implementations they replaced, XLA and plain graph, and a floor estimate.
* ``peers``: sbi's truncated sequential NPE (its default posterior
  sampling, and its two remedies for leakage: MCMC and sampling without
  rejection) and pyABC's SMC-ABC beside EPI on the same RNN criterion,
  N = 2 ... 50 (needs the ``peers`` extra; a peer whose package is missing
  is skipped).
* ``scale``: the entropy gap to exact maxima at D = 20 ... 800 (a
  linear-Gaussian, a box product and a double-well product), defaults, per
  seed; hours on two cores at D = 400 and 800 (``--sizes`` picks D), so it
  runs only when named (or with ``--quick``).
* ``plateau``: the RNN (N = 10 ... 100) run long past convergence, and the
  entropy the defaults' kept epoch leaves against that plateau, per seed
  and per stop rule; about two hours on two cores, so it also runs only when
  named.
* ``compile``: a new process's fixed cost before its first iteration
  (tracing and XLA compilation), with XLA's persistent cache empty and
  filled by a previous process.

``--quick`` shrinks every section (fewer problems, iterations, seeds) so the
whole suite runs in about three minutes on two cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from importlib import metadata
from pathlib import Path

SECTIONS = (
    "throughput",
    "time",
    "queries",
    "parallel",
    "optimisations",
    "maxent",
    "checkpoint",
    "simulators",
    "peers",
    "scale",
    "plateau",
    "compile",
)
#: Sections of hours on two cores: run only when named (or with --quick).
LONG = ("scale", "plateau")
COLUMNS = (
    "section",
    "benchmark",
    "value",
    "unit",
    "baseline",
    "ratio",
    "goal",
    "met",
    "load1",
    "notes",
)
RESULTS = Path(__file__).parent / "results"


def _load() -> float:
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    # sklearn_epi starts TensorFlow itself, without its start-up notices.
    import sklearn_epi

    return (
        f"{os.cpu_count()} cores, {cpu}; Python {platform.python_version()}, "
        f"TF {metadata.version('tensorflow')}, "
        f"sklearn_epi {getattr(sklearn_epi, '__version__', '?')}"
    )


def _run_section(name, args):
    if name == "throughput":
        from . import throughput

        return throughput.run(args.quick)
    if name == "time":
        from . import time_to_property

        rows, runs = time_to_property.run(args.quick, args.sizes, args.seeds)
        _write_csv(RESULTS / f"time_to_property_runs{args.suffix}.csv", runs, list(runs[0]))
        return rows
    if name == "queries":
        from . import queries

        return queries.run(args.quick) + queries.memory(args.quick)
    if name == "parallel":
        from . import parallel

        return parallel.parallel_seeds(args.quick)
    if name == "optimisations":
        from . import ablations, parallel

        # Thread caps need two more multi-process fits; --quick leaves them out.
        return ablations.run(args.quick) + ([] if args.quick else parallel.thread_caps())
    if name == "maxent":
        from . import maxent

        return maxent.run(args.quick, args.seeds)
    if name == "checkpoint":
        from . import checkpoint

        return checkpoint.run(args.quick)
    if name == "simulators":
        from . import simulators

        return simulators.run(args.quick)
    if name == "peers":
        from . import peers

        rows, runs = peers.run(args.quick, args.sizes, args.seeds)
        if runs:
            _write_csv(RESULTS / f"peers_runs{args.suffix}.csv", runs, list(runs[0]))
        return rows
    if name == "compile":
        from . import compile_cache

        return compile_cache.run(args.quick)
    if name == "scale":
        from . import scale

        return scale.run(args.quick, args.sizes, args.seeds)
    if name == "plateau":
        from . import plateau

        out = RESULTS / f"plateau_runs{args.suffix}.csv"
        return plateau.run(args.quick, args.sizes, args.seeds, out)
    raise ValueError(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")


def _format(value, spec):
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "nan" if value != value else format(value, spec)
    return str(value)


def print_table(rows):
    header = (
        f"{'benchmark':<66} {'value':>10} {'baseline':>10} {'unit':<5} {'ratio':>6} "
        f"{'goal':>10} {'met':>4} {'load':>5}  notes"
    )
    section = None
    print(header)
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            print(f"-- {section} " + "-" * (len(header) - len(section) - 4))
        print(
            f"{row['benchmark'][:66]:<66} {_format(row['value'], '.4g'):>10} "
            f"{_format(row['baseline'], '.4g'):>10} {row['unit']:<5} "
            f"{_format(row['ratio'], '.2f'):>6} {row['goal']:>10} {_format(row['met'], ''):>4} "
            f"{_format(row['load1'], '.2f'):>5}  {row['notes']}"
        )


def _write_csv(path, rows, columns):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        help=f"default: all but {' and '.join(LONG)} (hours); with --quick, all",
    )
    parser.add_argument("--quick", action="store_true", help="small versions of every section")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="RNN sizes N (time, peers, plateau) or dimensions D (scale)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help="seeds per N (time, peers, plateau), per setting (maxent) or per problem (scale)",
    )
    parser.add_argument("--csv", type=Path, help=f"output CSV (default {RESULTS}/latest.csv)")
    args = parser.parse_args(argv)
    args.suffix = "_quick" if args.quick else ""
    if args.sections is None:
        args.sections = [s for s in SECTIONS if args.quick or s not in LONG]
    out = args.csv or RESULTS / f"latest{args.suffix}.csv"

    print(f"machine: {machine()}", flush=True)
    start, rows = time.perf_counter(), []
    for name in args.sections:
        load_before, t0 = _load(), time.perf_counter()
        section_rows = _run_section(name, args)
        for row in section_rows:
            row["load1"] = max(load_before, _load())
        rows += section_rows
        print(
            f"[{name}: {time.perf_counter() - t0:.0f} s, load {load_before:.2f} -> {_load():.2f}]",
            flush=True,
        )
    print()
    print_table(rows)
    _write_csv(out, rows, COLUMNS)
    print(f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s; written to {out}")
    return rows


if __name__ == "__main__":
    main()
