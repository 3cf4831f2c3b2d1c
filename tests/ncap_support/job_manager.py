"""The NeuroCAAS job manager's part of a job, played against a local S3 for the tests.

On NeuroCAAS a Lambda reads ``{group}/submissions/submit.json``, makes the
job folder ``{group}/results/job__{analysis}_{timestamp}/`` with a
certificate and one status file per dataset, and starts one instance per
dataset running the blueprint's ``COMMAND``. Here the instances are
processes, run one after another: each gets its own home directory (its own
``neurocaas-contrib`` state), and the ``run_main_cli.sh`` of the command is
the stand-in beside this file. When every instance has ended, ``end.txt``
marks the job done, as the job monitor does.
"""

import json
import os
import shlex
import subprocess
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parents[1]


def analysis_command(blueprint: dict, bucket, dataset_key, resultdir, config_key) -> list:
    """The ``run_main_cli.sh`` call of the blueprint's ``COMMAND``, for this repository.

    The command's ``{}`` are filled as the job manager fills them; its
    ``run_main_cli.sh`` becomes the stand-in, and the analysis script's path
    in the image (``.../sklearn-epi/ncap/run_sklearn_epi.sh``) the one here.
    """
    command = blueprint["Lambda"]["LambdaConfig"]["COMMAND"].format(
        bucket, dataset_key, resultdir, config_key
    )
    step = next(part for part in command.split(";") if "run_main_cli.sh" in part)
    words = shlex.split(step)
    start = next(i for i, word in enumerate(words) if word.endswith("/run_main_cli.sh"))
    *arguments, script = words[start + 1 : start + 6]
    local_script = ROOT / script.split("/sklearn-epi/", 1)[1]
    return [str(SUPPORT / "run_main_cli.sh"), *arguments, str(local_script)]


def submit(s3, bucket, group, submission, instances: Path, env: dict, timeout=300) -> str:
    """Run the job that ``{group}/submissions/{submission}`` asks for; its results prefix.

    Returns
    -------
    str
        ``{group}/results/job__{bucket}_{timestamp}``, whose ``logs/`` and
        ``process_results/`` the instances filled.
    """
    blueprint = json.loads((ROOT / "ncap" / "stack_config_template.json").read_text())
    key = f"{group}/submissions/{submission}"
    request = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    resultdir = f"results/job__{bucket}_{request['timestamp']}"
    prefix = f"{group}/{resultdir}"
    datasets = [f"{group}/inputs/{name}" for name in request["dataname"]]
    config = f"{group}/configs/{request['configname']}"
    certificate = [
        f"DATANAME: {d} | STATUS: INITIALIZING | TIME: - | LAST LINE: -" for d in datasets
    ]
    s3.put_object(Bucket=bucket, Key=f"{prefix}/logs/certificate.txt", Body="\n".join(certificate))
    for dataset in datasets:
        status = {"status": "INITIALIZING", "input": dataset, "reason": None, "std": {}}
        s3.put_object(
            Bucket=bucket,
            Key=f"{prefix}/logs/DATASET_NAME:{os.path.basename(dataset)}_STATUS.txt",
            Body=json.dumps(status),
        )
    for number, dataset in enumerate(datasets):
        home = instances / f"{request['timestamp']}-{number}"
        home.mkdir(parents=True)
        with open(home / "console.txt", "w") as console:  # the instance's own log
            subprocess.run(
                analysis_command(blueprint, bucket, dataset, resultdir, config),
                env={**env, "HOME": str(home)},
                cwd=home,
                stdout=console,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
    s3.put_object(Bucket=bucket, Key=f"{prefix}/process_results/end.txt", Body=b"")
    return prefix
