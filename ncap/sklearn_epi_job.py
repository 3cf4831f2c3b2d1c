"""sklearn-epi as a NeuroCAAS analysis: one seed per dataset, resumed across jobs, merged after.

``run DATASET CONFIG RESULTDIR`` is one NeuroCAAS job: the dataset is a
JSON ``{"seed_index": k}`` (one instance per seed, as the original EPI
analysis ran one per ``{"random_seed": N}``), the config the YAML or JSON
form of ``sklearn-epi fit``'s configuration. It runs ::

    sklearn-epi fit CONFIG --seed-index k --out WORKDIR --progress

echoing each progress line (NeuroCAAS shows a job's last stdout line as its
status), and leaves in ``RESULTDIR``, for ``put-result`` to upload file by
file: the seed's own fit and outputs (``<dataset>.fit.npz``,
``.history.csv``, ``.seeds.csv``, ``.result.json``, ``.report.html`` and the
figures, ``.history.png`` ...), ``<dataset>.checkpoint.zip`` (the run's checkpoint),
``<dataset>.job.json`` (this job's record: dataset, seed, outcome, settings)
and ``<dataset>.log`` (the command's stdout and stderr). Given
``--results-uri`` (the job's ``process_results`` location) it first looks
through the earlier jobs beside it for the newest record of the same
dataset and the same settings; if that job stopped unfinished, its
checkpoint is restored and the fit continues from its last epoch.

``merge SOURCE... --out OUT`` gathers the checkpoints of finished jobs
(local folders or S3 prefixes) into one checkpoint and runs ``sklearn-epi
fit CONFIG --out OUT``, which loads every seed and writes the fit, history,
seeds, figures and report; an S3 ``OUT`` is written locally, then uploaded.

Exit codes of ``run`` (NeuroCAAS shows 0 as SUCCESS, anything else as
FAILED, and reruns nothing): 0 the seed finished, converged or not (a seed
that misses the property is a result, and the merge picks among seeds); 1
the seed failed; 2 a bad dataset or configuration; 75 stopped by
``__duration__`` (or SIGTERM) with its checkpoint uploaded: resubmit the
same dataset and config to continue.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import locations  # noqa: E402
import seed_merge  # noqa: E402

#: sklearn-epi fit's exit codes, and this job's own (see the module docstring).
CONVERGED, NOT_CONVERGED, BAD_CONFIG, STOPPED = 0, 1, 2, 75
FINISHED, UNFINISHED, FAILED = "finished", "unfinished", "failed"

#: The command that fits, from the image's environment.
COMMAND = ["sklearn-epi"]

#: Configuration entries that do not change the fit: a job with other values resumes.
NOT_SETTINGS = ("__duration__", "__dataset_size__", "output")

_SEED_LINE = re.compile(r"^seed (\d+): converged=(True|False) entropy=(\S+) \(epoch (\d+)\)")
_PROGRESS = re.compile(r"^seed \d+ epoch (\d+):")


class DatasetError(ValueError):
    """A dataset file that does not name a seed; the message says what it holds."""


def read_dataset(path) -> int:
    """The seed index a dataset file ``{"seed_index": k}`` names.

    Parameters
    ----------
    path : path-like
        The dataset file the job downloaded.

    Returns
    -------
    int
        ``k``.

    Raises
    ------
    DatasetError
        If the file is not a JSON object with a non-negative integer ``seed_index`` only.
    """
    try:
        dataset = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"dataset {Path(path).name} is not readable JSON: {exc}") from exc
    index = dataset.get("seed_index") if isinstance(dataset, dict) else None
    if set(dataset if isinstance(dataset, dict) else ()) != {"seed_index"} or not (
        isinstance(index, int) and not isinstance(index, bool) and index >= 0
    ):
        raise DatasetError(
            f'dataset {Path(path).name} must be {{"seed_index": k}} with k = 0, 1, ...; '
            f"got {dataset!r}"
        )
    return index


def run_settings(config_path) -> dict | None:
    """What in a configuration decides the fit: all but ``__duration__``, output and ``max_time``.

    Two jobs with equal settings fit the same run, so one may continue the
    other's checkpoint (whose own run key refuses any other run anyway).

    Parameters
    ----------
    config_path : path-like
        A ``.yaml``/``.yml`` or ``.json`` configuration.

    Returns
    -------
    dict or None
        The configuration without those entries; None for a file that is
        not a YAML or JSON table (``sklearn-epi fit`` then says what is
        wrong with it).
    """
    import yaml

    path = Path(config_path)
    try:
        text = path.read_text()
        config = (
            yaml.safe_load(text) if path.suffix.lower() in (".yaml", ".yml") else json.loads(text)
        )
    except (OSError, ValueError, yaml.YAMLError):
        return None
    if not isinstance(config, dict):
        return None
    settings = {k: v for k, v in config.items() if k not in NOT_SETTINGS}
    if isinstance(settings.get("fit"), dict):
        settings["fit"] = {k: v for k, v in settings["fit"].items() if k != "max_time"}
    return settings


def outcome(
    code: int, lines: list, error: str = "", stopped_by: str = "__duration__"
) -> tuple[int, str, str]:
    """This job's exit code, state and closing line, from ``sklearn-epi fit``'s code and output.

    Parameters
    ----------
    code : int
        ``sklearn-epi fit``'s exit code.
    lines : list of str
        Its stdout, one line each.
    error : str, default=""
        The last line of its stderr.
    stopped_by : str, default="__duration__"
        What stopped a fit that exited 75: ``__duration__``, or a signal's name.

    Returns
    -------
    code : int
        0 the seed finished (converged or not), 1 it failed, 2 a bad
        configuration, 75 stopped unfinished.
    state : {"finished", "failed", "unfinished"}
    line : str
        The closing line: the job's status on the NeuroCAAS job page.
    """
    summary = next((m for line in reversed(lines) if (m := _SEED_LINE.match(line))), None)
    epochs = [int(m.group(1)) for line in lines if (m := _PROGRESS.match(line))]
    if code in (CONVERGED, NOT_CONVERGED) and summary and math.isfinite(float(summary[3])):
        seed, converged, entropy, epoch = summary.groups()
        verdict = "converged" if converged == "True" else "did not converge"
        return (
            CONVERGED,
            FINISHED,
            f"seed {seed} finished: {verdict} (entropy {entropy}, epoch {epoch}); "
            "merge the seeds once every dataset's job is done",
        )
    if code == STOPPED:
        where = f"after epoch {epochs[-1]}" if epochs else "before its first epoch"
        return (
            STOPPED,
            UNFINISHED,
            f"stopped by {stopped_by} {where}, checkpoint saved; resubmit the same dataset "
            "and config to continue",
        )
    if code == BAD_CONFIG:
        return (
            BAD_CONFIG,
            FAILED,
            f"bad configuration: {error.removeprefix('sklearn-epi: error: ')}",
        )
    return NOT_CONVERGED, FAILED, f"the fit failed (exit code {code}): {error[-300:]}"


def find_resumable(results_uri: str, dataname: str, seed_index: int, settings: dict) -> str | None:
    """The earlier job whose checkpoint this one continues, or None.

    ``results_uri`` is this job's ``.../results/<job>/process_results``; the
    jobs beside it are searched for records of ``dataname`` with the same
    seed and equal ``settings``. The newest one is continued if it stopped
    unfinished (and its checkpoint was uploaded); a newest one that
    finished (or failed) starts the fit afresh.

    Parameters
    ----------
    results_uri : str
        This job's ``process_results``: an S3 URI or a local folder.
    dataname : str
        The dataset's file name, ``dataset0.json``.
    seed_index : int
        The seed it names.
    settings : dict
        :func:`run_settings` of this job's configuration.

    Returns
    -------
    str or None
        The ``process_results`` of the job to continue.
    """
    root, this_job, _ = results_uri.rstrip("/").rsplit("/", 2)
    record_name = f"{Path(dataname).stem}.job.json"
    candidates = []
    names = locations.list_files(root)
    with tempfile.TemporaryDirectory() as scratch:
        for name in names:
            job, _, rest = name.partition("/")
            if job == this_job or rest != f"process_results/{record_name}":
                continue
            record = json.loads(locations.download(root, name, Path(scratch) / job).read_text())
            if (record.get("dataset"), record.get("seed_index"), record.get("settings")) == (
                dataname,
                seed_index,
                settings,
            ):
                candidates.append((record.get("written", 0.0), job, record))
    if not candidates:
        return None
    _, job, record = max(candidates, key=lambda candidate: candidate[:2])
    archive = f"{job}/process_results/{Path(dataname).stem}.checkpoint.zip"
    if record.get("state") != UNFINISHED or archive not in names:
        return None
    return locations.join(root, job, "process_results")


def _forward_stop_signals(process, received: list):
    """Pass SIGTERM and SIGINT on to ``process``, which checkpoints and exits 75.

    The names of the signals received are appended to ``received``.
    """

    def forward(signum, frame):
        received.append(signal.Signals(signum).name)
        process.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)


def _fit(config, seed_index, workdir, log) -> tuple[int, list, str, str]:
    """Run ``sklearn-epi fit`` for one seed, echoing stdout line by line.

    Returns its exit code, its stdout lines, the last line of its stderr
    (both go to ``log``) and what would have stopped it early: a signal
    the job received, or else ``__duration__``.
    """
    command = [*COMMAND, "fit", str(config), "--out", str(workdir), "--progress"]
    command += ["--seed-index", str(seed_index)]
    lines, received = [], []
    with open(log, "w") as log_file, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1
        )
        _forward_stop_signals(process, received)
        for line in process.stdout:
            log_file.write(line)
            lines.append(line.rstrip("\n"))
            if not _SEED_LINE.match(line):  # its advice is for a shell: the job closes instead
                print(line, end="", flush=True)
        code = process.wait()
        stderr.seek(0)
        errors = stderr.read()
        log_file.write(errors)
    meaningful = [line for line in errors.splitlines() if line.strip()]
    return code, lines, meaningful[-1] if meaningful else "", (received or ["__duration__"])[0]


def run_job(dataset, config, resultdir, results_uri=None) -> int:
    """One NeuroCAAS job: fit the dataset's seed, and leave its files in ``resultdir``.

    Parameters
    ----------
    dataset, config : path-like
        The job's dataset (``{"seed_index": k}``) and configuration (YAML or JSON).
    resultdir : path-like
        The folder whose files the analysis script uploads, one ``put-result`` each.
    results_uri : str, optional
        This job's ``process_results`` location (an S3 URI or a folder), to look
        for an earlier unfinished job of the same dataset and settings.

    Returns
    -------
    int
        0 the seed finished (converged or not), 1 it failed, 2 a bad dataset
        or configuration, 75 stopped by ``__duration__``: resubmit to continue.
    """
    dataset, config, resultdir = Path(dataset), Path(config), Path(resultdir)
    stem = dataset.stem
    resultdir.mkdir(parents=True, exist_ok=True)
    workdir = resultdir.parent / "sklearn-epi" / stem
    record = {"dataset": dataset.name, "config": config.name, "seed_index": None}
    try:
        record["seed_index"] = seed_index = read_dataset(dataset)
        record["settings"] = settings = run_settings(config)
    except DatasetError as exc:
        return _close(record, resultdir, stem, BAD_CONFIG, FAILED, str(exc))
    resumed = None
    if results_uri and settings is not None:
        try:
            resumed = find_resumable(results_uri, dataset.name, seed_index, settings)
        except Exception as exc:  # a fresh fit beats no fit: the job goes on
            print(f"{dataset.name}: earlier jobs not searched ({exc}); fitting afresh", flush=True)
    if resumed:
        archive = locations.download(resumed, f"{stem}.checkpoint.zip", workdir / "previous.zip")
        shutil.unpack_archive(archive, workdir / "checkpoint")
        record["resumed_from"] = resumed
        print(f"{dataset.name}: continuing seed {seed_index} from {resumed}", flush=True)
    code, lines, error, stopped_by = _fit(config, seed_index, workdir, resultdir / f"{stem}.log")
    record["fit_exit_code"] = code
    if (workdir / "checkpoint").is_dir():
        shutil.make_archive(str(resultdir / f"{stem}.checkpoint"), "zip", workdir / "checkpoint")
    _deliver_seed_outputs(workdir / f"seed-{seed_index}", resultdir, stem)
    job_code, state, line = outcome(code, lines, error, stopped_by)
    return _close(record, resultdir, stem, job_code, state, line)


def _deliver_seed_outputs(outputs, resultdir, stem) -> None:
    """The seed's own fit, tables, result, report and figures, as ``<dataset>.<name>`` files.

    ``sklearn-epi fit --seed-index k`` writes them into ``seed-<k>/``, so that
    each job's seed can be looked at before the merge; ``put-result``
    uploads files, not folders, hence the flat names (``figures/history.png``
    becomes ``dataset0.history.png``).
    """
    if not outputs.is_dir():  # stopped before its first epoch, or a bad configuration
        return
    for path in sorted(outputs.rglob("*")):
        if path.is_file() and not path.name.startswith("config."):
            shutil.copyfile(path, resultdir / f"{stem}.{path.name}")


def _close(record, resultdir, stem, code, state, line) -> int:
    """Write the job's record, print its closing line (the job's status on NeuroCAAS)."""
    record.update(
        exit_code=code,
        state=state,
        message=line,
        written=time.time(),  # seconds since the epoch: the newest record wins
    )
    (resultdir / f"{stem}.job.json").write_text(json.dumps(record, indent=2))
    print(f"{record['dataset']}: {line}", flush=True)
    return code


def main(argv=None) -> int:
    """``python sklearn_epi_job.py run ...`` or ``merge ...``; see the module docstring.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit code of :func:`run_job` or :func:`seed_merge.merge`.
    """
    parser = argparse.ArgumentParser(prog="sklearn_epi_job.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="one NeuroCAAS job: fit the dataset's seed")
    run.add_argument("dataset", help='the dataset file, {"seed_index": k}')
    run.add_argument("config", help="the configuration (YAML or JSON)")
    run.add_argument("resultdir", help="folder for the files to upload")
    run.add_argument(
        "--results-uri", help="this job's process_results location, to resume an earlier job"
    )
    merged = commands.add_parser("merge", help="combine finished jobs' seeds into one fit")
    merged.add_argument("sources", nargs="+", help="job results: folders or s3:// prefixes")
    merged.add_argument("--out", required=True, help="output folder or s3:// prefix")
    merged.add_argument("--config", help="configuration (default: the one in the first source)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_job(args.dataset, args.config, args.resultdir, args.results_uri)
    return seed_merge.merge(args.sources, args.out, args.config)


if __name__ == "__main__":
    sys.exit(main())
