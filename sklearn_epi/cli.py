"""``sklearn-epi``: EPI fits as batch jobs, from a TOML, JSON or YAML configuration.

``sklearn-epi fit run.toml`` fits the configured model and property, with a
checkpoint in the output directory, so that the same command run again after
a kill or a job's time limit continues where the fit stopped. The output
directory then holds the fitted estimator (``fit.npz``, for
:func:`sklearn_epi.load`), ``history.csv``, ``seeds.csv``, ``result.json``
(status, entropy, selected seed and epoch, p-values, ``seed_time``: the
seeds' seconds over every invocation of a resumed fit, and
``invocation_time``: the last command's),
the figures (history, pairplot, predictive check) and ``report.html``, a
self-contained page (figures embedded) to open from a cluster's file
browser. ``sklearn-epi report <directory>`` rebuilds figures and report from
``fit.npz``.

A configuration::

    [model]
    statistic = "lds_eigenvalues"    # in sklearn_epi.circuits, or "package.module:function"
    # arguments = {N = 10}           # call the statistic with these to build it (a factory)
    bounds = "LDS_BOUNDS"            # a name as above, or {a11 = [-10, 10], ...}

    [property]
    mu = {real = 0.0, imag = 6.2832}   # or a list, or a name as above
    sigma2 = {real = 0.0625, imag = 0.3948}

    [flow]        # RealNVP's parameters; type = "MAF" for a MAF
    num_units = 50

    [al_params]   # ALParams's parameters
    max_epochs = 25

    [fit]         # other EPIEstimator parameters
    n_seeds = 2
    random_state = 0
    max_time = 12600   # seconds: stop before an epoch that would overrun

    [output]
    directory = "runs/lds"

The same sections and keys in JSON (``{"model": {"statistic": ...}, ...}``)
or YAML (``model:`` then indented keys), chosen by the suffix ``.json``,
``.yaml`` or ``.yml``; a copy of the configuration, under its own suffix,
goes into the output directory. A NeuroCAAS configuration's ``__duration__``
(minutes) sets ``max_time`` to 90% of it (see :mod:`sklearn_epi._config`).

Every key is checked before anything is fitted: an unknown section or key
(``sigma`` for ``sigma2``, ``dir`` for ``directory``) is refused with exit
code 2, the valid keys and the nearest one, never ignored; a value of the
wrong type or shape exits 2 with its section and key (``[fit] n_seeds: ...``).

A job array fits one seed per task: ``sklearn-epi fit run.toml --seed-index
$SLURM_ARRAY_TASK_ID`` writes that seed into the run's checkpoint (exit code
of that seed alone) and that seed's own outputs into ``seed-<k>/``, and
``sklearn-epi fit run.toml`` afterwards loads every finished seed and writes
the outputs. ``--progress`` prints one flushed line per epoch end on stdout,
for a job whose output is read while it runs.

``sklearn-epi ui [STORE]`` serves a web interface over a directory of runs
(the optional extra ``sklearn_epi[ui]``): tables, live histories,
comparisons, and a form that launches, stops and resumes fits.

Exit codes: 0 the property holds (converged); 1 the fit ended without
converging, or every seed failed; 2 a bad command line or configuration;
75 (``EX_TEMPFAIL``) stopped early by ``max_time`` or ``SIGTERM``: run the
same command again to continue.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

from ._config import ConfigError, build_estimator, copies_in, load_config
from ._reporting import EpochCallback
from ._seed_state import UNFINISHED
from ._seeds import sigterm_as_interrupt

EXIT_CONVERGED, EXIT_NOT_CONVERGED, EXIT_CONFIG, EXIT_AGAIN = 0, 1, 2, 75


def _fit_command(config_path, directory=None, max_time=None, seed_index=None, progress=False):
    """``sklearn-epi fit``: fit, then write the estimator, tables, figures and report.

    With ``seed_index`` (a job array's task) only that seed is fitted into
    the run's checkpoint; the command without it then loads every finished
    seed and writes the outputs.
    """
    config = load_config(config_path)
    directory = Path(directory or config.get("output", {}).get("directory", "epi_run"))
    if max_time is not None:
        config.setdefault("fit", {})["max_time"] = max_time
    est, mu, sigma2 = build_estimator(config, directory)
    if progress:
        est.set_params(callbacks=[*(est.callbacks or ()), _ProgressLines()])
    if seed_index is not None and not 0 <= seed_index < est.n_seeds:
        raise ConfigError(
            f"--seed-index must be in 0 .. {est.n_seeds - 1} ([fit] n_seeds = {est.n_seeds}); "
            f"got {seed_index}"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        copy = directory / f"config{Path(config_path).suffix.lower()}"
        given = Path(config_path).resolve()
        for old in copies_in(directory):  # one copy, the config this run was made from
            if old.resolve() != given:  # the configuration itself may live there
                old.unlink()
        if copy.resolve() != given:
            shutil.copyfile(config_path, copy)
    except OSError as exc:
        raise ConfigError(f"output directory {directory}: {exc}") from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            est._fit(mu, sigma2, None if seed_index is None else [seed_index])
        except KeyboardInterrupt:
            print("stopped before any epoch finished; run the same command again", file=sys.stderr)
            return EXIT_AGAIN
        except RuntimeError as exc:
            print(str(exc), file=sys.stderr)
            return EXIT_AGAIN if "max_time" in str(exc) else EXIT_NOT_CONVERGED
    for warning in caught:
        print(f"{warning.category.__name__}: {warning.message}", file=sys.stderr)
    if seed_index is not None:
        status = _seed_status(est, seed_index, config_path)
        # The task's own seed as a fit of its own, for a look before the merge
        # (a NeuroCAAS job or a job-array task delivers it).
        _write_outputs(est, directory / f"seed-{seed_index}", status)
        return status
    unfinished = est.seeds_["status"].isin(UNFINISHED).any()
    status = (
        EXIT_AGAIN if unfinished else (EXIT_CONVERGED if est.converged_ else EXIT_NOT_CONVERGED)
    )
    _write_outputs(est, directory, status)
    print(
        f"{directory}: converged={est.converged_} entropy={est.entropy_:.3f} "
        f"(seed {est.best_seed_}, epoch {est.epoch_})"
        + ("; not finished: run the same command again" if status == EXIT_AGAIN else "")
    )
    return status


class _ProgressLines(EpochCallback):
    """``--progress``: one line on stdout per epoch end, flushed at once.

    For a job whose stdout is read while it runs (NeuroCAAS shows a job's
    last line as its status): plain lines, no progress bar's carriage returns.
    """

    def on_epoch_end(self, record):
        print(
            f"seed {record.seed_index} epoch {record.epoch}: entropy {record.entropy:.4f} "
            f"(se {record.entropy_se:.2g}) converged={bool(record.converged)} "
            f"min p {min(record.pvalues, default=float('nan')):.3g} "
            f"moment error {record.moment_error:.3g} se, c {record.c:.3g}, "
            f"iteration {record.iteration}, {record.wall_time:.1f} s",
            flush=True,
        )


def _seed_status(est, index, config_path) -> int:
    """A job-array task's report and exit code: its seed only."""
    row = est.seeds_.loc[est.seeds_["seed"] == index].iloc[0]
    unfinished = row["status"] in UNFINISHED
    print(
        f"seed {index}: converged={bool(row['converged'])} entropy={row['entropy']:.3f} "
        f"(epoch {row['epoch']}); "
        + (
            "not finished: run the same command again"
            if unfinished
            else f"merge the seeds with `sklearn-epi fit {config_path}` once all are done"
        )
    )
    if unfinished:
        return EXIT_AGAIN
    return EXIT_CONVERGED if bool(row["converged"]) else EXIT_NOT_CONVERGED


def _write_outputs(est, directory, status) -> None:
    """The fit's files in ``directory``: estimator, tables, result, figures and report."""
    directory = Path(directory)
    directory.mkdir(exist_ok=True)
    est.save(directory / "fit.npz")
    est.history_.to_csv(directory / "history.csv", index=False)
    est.seeds_.to_csv(directory / "seeds.csv", index=False)
    result = {
        "status": {EXIT_CONVERGED: "converged", EXIT_AGAIN: "unfinished"}.get(
            status, "not converged"
        ),
        "converged": bool(est.converged_),
        "entropy": float(est.entropy_),
        "entropy_se": float(est.entropy_se_),
        "best_seed": int(est.best_seed_),
        "epoch": int(est.epoch_),
        # A resumed fit ran over several invocations: the seeds' own times
        # cover all of them, this command's wall time only the last.
        "seed_time": float(est.seeds_["wall_time"].sum()),
        "invocation_time": float(est.fit_time_),
        "pvalues": dict(zip(est.property_.constraint_names, map(float, est.pvalues_))),
    }
    found = getattr(est, "coverage_", None)  # the check after a converged fit on a box
    result["coverage_left_out"] = None if found is None else float(found.left_out)
    result["coverage"] = None if found is None else found.describe()
    (directory / "result.json").write_text(json.dumps(result, indent=2))
    _write_report(est, directory, result)


def _figures(est) -> dict:
    """The report's figures as PNG bytes: history, pairplot and, with the statistic, predictive."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import pairplot, plot_history, plot_predictive

    made = {}
    drawings = {"history": plot_history, "pairplot": pairplot}
    if est.statistic is not None:
        drawings["predictive"] = plot_predictive
    for name, draw in drawings.items():
        fig, _ = draw(est)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        made[name] = buffer.getvalue()
    return made


def _write_report(est, directory, result) -> None:
    """``figures/*.png`` and ``report.html`` (figures embedded, nothing fetched)."""
    directory = Path(directory)
    (directory / "figures").mkdir(exist_ok=True)
    images = []
    for name, png in _figures(est).items():
        (directory / "figures" / f"{name}.png").write_bytes(png)
        encoded = base64.b64encode(png).decode()
        images.append(f'<h2>{name}</h2><img alt="{name}" src="data:image/png;base64,{encoded}">')
    # A seed task's outputs (seed-<k>/) show the run's configuration.
    copies = copies_in(directory) or copies_in(directory.parent)
    config = copies[0] if copies else None
    summary = {k: v for k, v in result.items() if k != "pvalues"}
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>EPI fit: {html.escape(directory.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}
img{{max-width:100%}}</style></head><body>
<h1>EPI fit: {html.escape(directory.name)}</h1>
<h2>Result</h2>{_table(summary)}
<h2>Convergence test p-values</h2>{_table(result["pvalues"])}
<h2>Seeds</h2>{est.seeds_.drop(columns="traceback").to_html(index=False, float_format=_number)}
{"".join(images)}
<h2>Configuration</h2><pre>{html.escape(config.read_text()) if config else ""}</pre>
</body></html>
"""
    (directory / "report.html").write_text(page)


def _number(value) -> str:
    """Four significant digits for a person reading the report (result.json keeps all)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _table(mapping) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_number(v))}</td></tr>"
        for k, v in mapping.items()
    )
    return f"<table>{rows}</table>"


def _report_command(directory) -> int:
    """``sklearn-epi report``: rebuild figures and report from ``fit.npz``."""
    from . import load

    directory = Path(directory)
    fitted = directory / "fit.npz"
    if not fitted.exists():
        if (directory / "fit.joblib").exists():
            raise ConfigError(
                f"{directory / 'fit.joblib'} is a fit of sklearn_epi 0.1, a pickle, which can "
                "run any code it holds; if you trust where it came from, convert it once with "
                'python -c "import sklearn_epi; '
                f"sklearn_epi.convert('{directory / 'fit.joblib'}')\" and rename it fit.npz"
            )
        raise ConfigError(f"{directory} holds no fit.npz; run 'sklearn-epi fit' first")
    if os.getcwd() not in sys.path:  # a statistic from the working directory, as in fit
        sys.path.insert(0, os.getcwd())
    try:
        est = load(fitted)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    result = json.loads((directory / "result.json").read_text())
    _write_report(est, directory, result)
    print(f"wrote {directory / 'report.html'}")
    return EXIT_CONVERGED


def _ui_command(store, host, port, token) -> int:
    """``sklearn-epi ui``: serve the web interface until Ctrl-C."""
    if not Path(store).is_dir():
        raise ConfigError(f"STORE {store} is not a directory")
    try:
        from .ui import serve
    except ImportError as exc:
        raise ConfigError(str(exc)) from exc
    serve(store, host=host, port=port, token=token)
    return EXIT_CONVERGED


def main(argv=None) -> int:
    """Run the ``sklearn-epi`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit code: 0 converged, 1 not converged (or every seed failed),
        2 a bad command line or configuration, 75 stopped early by
        ``max_time`` or ``SIGTERM`` (run the same command again).
    """
    parser = argparse.ArgumentParser(
        prog="sklearn-epi", description="Emergent property inference as a batch job."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit (or continue fitting) a configured run")
    fit.add_argument("config", help="configuration: .toml, .json, .yaml or .yml")
    fit.add_argument("--out", help="output directory (default: [output] directory)")
    fit.add_argument("--max-time", type=float, help="seconds; overrides [fit] max_time")
    fit.add_argument(
        "--seed-index",
        type=int,
        help="fit only this seed (0-based), e.g. $SLURM_ARRAY_TASK_ID; "
        "the command without it then merges the finished seeds",
    )
    fit.add_argument(
        "--progress", action="store_true", help="print one line per epoch end on stdout"
    )
    report = commands.add_parser("report", help="rebuild a run's figures and report.html")
    report.add_argument("directory")
    ui = commands.add_parser(
        "ui", help="a web interface over a directory of runs (needs sklearn_epi[ui])"
    )
    ui.add_argument("store", nargs="?", default=".", help="directory of runs (default: .)")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8050, help="port (default: 8050)")
    ui.add_argument(
        "--token", help="required of every request; made up and printed when --host is not local"
    )
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            if args.command == "fit":
                return _fit_command(
                    args.config, args.out, args.max_time, args.seed_index, args.progress
                )
            if args.command == "ui":
                return _ui_command(args.store, args.host, args.port, args.token)
            return _report_command(args.directory)
    except KeyboardInterrupt as exc:  # a stop before or after the fit, which keeps its own
        print(
            f"sklearn-epi: stopped by {str(exc) or 'SIGINT'}; the checkpoint keeps every finished "
            "epoch: run the same command again",
            file=sys.stderr,
        )
        return EXIT_AGAIN
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"sklearn-epi: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
