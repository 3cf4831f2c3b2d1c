"""The merge step of sklearn-epi's NeuroCAAS analysis: finished seed jobs into one fit.

Each NeuroCAAS job fits one seed and uploads ``<dataset>.checkpoint.zip``
beside its record ``<dataset>.job.json`` (see ``sklearn_epi_job.py``). The
merge gathers those checkpoints into one checkpoint directory of the run
and runs ``sklearn-epi fit CONFIG --out OUT``, which loads every finished
seed and writes the fit, history, seeds, figures and report.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import locations  # noqa: E402

#: A job record's state once its seed has finished (``sklearn_epi_job.FINISHED``).
FINISHED = "finished"

#: The exit code of a merge that cannot start: a seed missing or unfinished.
BAD_INPUT = 2


class MergeError(ValueError):
    """Sources that cannot be merged; the message names the job or seed."""


def merge(sources, out, config=None) -> int:
    """Gather the seeds of finished jobs into one checkpoint and write the combined fit.

    Parameters
    ----------
    sources : list of str
        Job results (folders or S3 prefixes) holding ``<dataset>.checkpoint.zip``
        files at any depth; a seed found in several is taken from the last source.
    out : str
        Output folder or S3 prefix: ``fit.npz``, ``history.csv``, ``seeds.csv``,
        ``result.json``, ``figures/``, ``report.html`` and ``checkpoint/``.
    config : path-like, optional
        The configuration; by default the one the first job found ran (its
        record names it; NeuroCAAS's cleanup uploads it beside the record).

    Returns
    -------
    int
        ``sklearn-epi fit``'s exit code (0 converged, 1 not, 2 seeds of
        different runs), or 2 if a seed is missing or unfinished, or no
        configuration is found.
    """
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        local_out = scratch / "out" if locations.is_s3(out) else Path(out)
        try:
            config = _gather(sources, local_out / "checkpoint", scratch, config)
        except MergeError as exc:
            print(f"merge: error: {exc}", file=sys.stderr)
            return BAD_INPUT
        from sklearn_epi.cli import main

        code = main(["fit", str(config), "--out", str(local_out)])
        if locations.is_s3(out):
            locations.upload_tree(local_out, out)
    return code


def _gather(sources, checkpoint, scratch, config):
    """Unpack the finished jobs' checkpoints into ``checkpoint``; the configuration's local path.

    Each job is found by its record, ``<dataset>.job.json``, beside its
    checkpoint and (after NeuroCAAS's cleanup) the configuration it ran.
    """
    checkpoint.mkdir(parents=True, exist_ok=True)
    seeds = set()
    for source in sources:
        names = locations.list_files(source)
        for name in (n for n in names if n.endswith(".job.json")):
            folder = name.rpartition("/")[0]
            record = json.loads(locations.download(source, name, scratch / "record").read_text())
            if record.get("state") != FINISHED:
                raise MergeError(
                    f"{locations.join(source, name)}: the job of {record.get('dataset')} is "
                    f"{record.get('state')}; resubmit it until it finishes, then merge"
                )
            beside = f"{folder}/" if folder else ""
            if config is None and f"{beside}{record['config']}" in names:
                config = locations.download(
                    source, f"{beside}{record['config']}", scratch / record["config"]
                )
            zipped = f"{beside}{name.rpartition('/')[2][: -len('.job.json')]}.checkpoint.zip"
            archive = locations.download(source, zipped, scratch / "checkpoint.zip")
            with zipfile.ZipFile(archive) as members:
                for member in members.namelist():
                    if re.fullmatch(r"seed-\d+\.npz|run\.json", member):
                        members.extract(member, checkpoint)
            seeds.add(record["seed_index"])
    if config is None:
        raise MergeError(f"no job's configuration found in {sources}; pass --config")
    run = checkpoint / "run.json"
    expected = len(json.loads(run.read_text())["seeds"]) if run.is_file() else 0
    missing = sorted(set(range(expected)) - seeds)
    if not seeds or missing:
        raise MergeError(
            f"the sources hold finished seeds {sorted(seeds)}, missing {missing or 'all'}: "
            "every seed's job must finish before the merge (a merge fits no seed itself)"
        )
    return config
