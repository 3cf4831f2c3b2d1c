"""sklearn-epi as a NeuroCAAS analysis: jobs played as the job manager runs them, on a local S3.

The bucket is moto's server on 127.0.0.1; ``neurocaas-contrib`` and
``run_main_cli.sh`` are the stand-ins in ``tests/ncap_support`` (the real
ones are not on PyPI); ``ncap/`` is the analysis itself: its blueprint's
``COMMAND``, its script and its job module run unchanged.
"""

import importlib.util
import io
import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3", reason="the NeuroCAAS tests need boto3 (pip install boto3)")
pytest.importorskip("yaml", reason="the NeuroCAAS tests need PyYAML (NeuroCAAS configs are YAML)")
moto_server = pytest.importorskip(
    "moto.server", reason="the NeuroCAAS tests need moto's S3 server (pip install 'moto[server]')"
)

# One worker runs them all: they share one S3 server and the jobs' results.
pytestmark = [pytest.mark.xdist_group("ncap"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = ROOT / "tests" / "ncap_support"
sys.path.insert(0, str(SUPPORT))
from job_manager import analysis_command, submit  # noqa: E402


def _module(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


job = _module("sklearn_epi_job", ROOT / "ncap" / "sklearn_epi_job.py")
seed_merge = _module("seed_merge", ROOT / "ncap" / "seed_merge.py")

BUCKET, GROUP = "sklearn-epi", "testgroup"

CONFIG = """
model: {statistic: lds_eigenvalues, bounds: LDS_BOUNDS}
property:
  mu: {real: 0.0, imag: 6.2832}
  sigma2: {real: 0.0625, imag: 0.3948}
flow: {num_units: 16}
al_params: {num_iters: 50, max_epochs: 2, init_iters: 20, batch_size: 100}
fit: {random_state: 0, n_test: 50, jit_compile: false, n_seeds: 2}
"""

# Stopped by its duration: 0.2 minutes give the fit 10.8 s, far fewer than
# its 1000 short epochs need (patience: null runs them all, converged or
# not), and more than the start before epoch 1.
SHORT_CONFIG = """
__duration__: 0.2
__dataset_size__: 1
model: {statistic: lds_eigenvalues, bounds: LDS_BOUNDS}
property:
  mu: {real: 0.0, imag: 6.2832}
  sigma2: {real: 0.0625, imag: 0.3948}
flow: {num_units: 16}
al_params: {num_iters: 20, max_epochs: 1000, init_iters: 20, batch_size: 100, patience: null}
fit: {random_state: 1, n_test: 50, jit_compile: false, n_seeds: 1}
"""

PROGRESS = re.compile(r"^seed \d+ epoch (\d+): .*iteration (\d+),")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def neurocaas(tmp_path_factory):
    """A local S3 holding the analysis bucket, the group's datasets and configs; the job env."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        for index in (0, 1):
            s3.put_object(
                Bucket=BUCKET,
                Key=f"{GROUP}/inputs/dataset{index}.json",
                Body=json.dumps({"seed_index": index}),
            )
        s3.put_object(Bucket=BUCKET, Key=f"{GROUP}/configs/config.yaml", Body=CONFIG)
        s3.put_object(Bucket=BUCKET, Key=f"{GROUP}/configs/short.yaml", Body=SHORT_CONFIG)
        job_env = {
            **os.environ,
            "PATH": f"{SUPPORT}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        yield s3, job_env, tmp_path_factory.mktemp("instances")
    server.stop()


def _run(neurocaas, datasets, config, timestamp) -> str:
    """Submit as the web page does (``submit.json``) and run the job; its results prefix."""
    s3, env, instances = neurocaas
    request = {"dataname": datasets, "configname": config, "timestamp": timestamp}
    s3.put_object(Bucket=BUCKET, Key=f"{GROUP}/submissions/submit.json", Body=json.dumps(request))
    return submit(s3, BUCKET, GROUP, "submit.json", instances, env)


def _text(s3, key) -> str:
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def _status(s3, prefix, dataset) -> dict:
    return json.loads(_text(s3, f"{prefix}/logs/DATASET_NAME:{dataset}_STATUS.txt"))


def _record(s3, prefix, stem) -> dict:
    return json.loads(_text(s3, f"{prefix}/process_results/{stem}.job.json"))


def _files(s3, prefix) -> set:
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/")
    return {item["Key"][len(prefix) + 1 :] for item in listed.get("Contents", [])}


def _progress(status) -> list:
    """``(epoch, iteration)`` of each progress line of a job's stdout."""
    lines = [status["std"][str(i)] for i in range(len(status["std"]))]
    return [(int(m[1]), int(m[2])) for line in lines if (m := PROGRESS.match(line))]


@pytest.fixture(scope="module")
def seed_jobs(neurocaas):
    """One submission of two datasets, seeds 0 and 1 of ``config.yaml``."""
    return _run(neurocaas, ["dataset0.json", "dataset1.json"], "config.yaml", "20260101_000001")


@pytest.fixture(scope="module")
def stopped_job(neurocaas):
    """Seed 0 of ``short.yaml``, stopped by its ``__duration__``."""
    return _run(neurocaas, ["dataset0.json"], "short.yaml", "20260101_000002")


@pytest.fixture(scope="module")
def resubmitted_job(neurocaas, stopped_job):
    """The same dataset and config submitted again, after the stopped job."""
    return _run(neurocaas, ["dataset0.json"], "short.yaml", "20260101_000003")


def test_the_blueprint_runs_the_analysis_script_through_run_main_cli():
    blueprint = json.loads((ROOT / "ncap" / "stack_config_template.json").read_text())
    config = blueprint["Lambda"]["LambdaConfig"]
    assert blueprint["PipelineName"] == "sklearn-epi"
    assert config["INSTANCE_TYPE"] == "m5.xlarge"
    assert config["COMMAND"].count("{}") == 4 and config["COMMAND"].endswith("cleanup")
    command = analysis_command(blueprint, BUCKET, "g/inputs/d.json", "results/job", "g/c.yaml")
    assert command[1:5] == [BUCKET, "g/inputs/d.json", "results/job", "g/c.yaml"]
    assert command[5] == str(ROOT / "ncap" / "run_sklearn_epi.sh")
    assert os.access(command[5], os.X_OK)


def test_each_seed_job_succeeds_and_uploads_its_fit_checkpoint_record_and_log(neurocaas, seed_jobs):
    s3 = neurocaas[0]
    files = _files(s3, seed_jobs)
    for index in (0, 1):
        status = _status(s3, seed_jobs, f"dataset{index}.json")
        assert status["status"] == "SUCCESS", status
        record = _record(s3, seed_jobs, f"dataset{index}")
        assert record["seed_index"] == index and record["state"] == "finished"
        assert record["fit_exit_code"] in (0, 1)  # a seed that misses the property is a result
        # The seed's own fit and report, beside what a later job resumes from.
        own = ("checkpoint.zip", "log", "fit.npz", "result.json", "report.html", "pairplot.png")
        assert {f"dataset{index}.{name}" for name in own} <= {
            name.rpartition("/")[2] for name in files
        }
        assert [epoch for epoch, _ in _progress(status)] == [1, 2]
    assert {"process_results/config.yaml", "process_results/update.txt"} <= files
    assert "process_results/end.txt" in files


def test_the_certificate_shows_each_jobs_closing_line_which_follows_its_progress(
    neurocaas, seed_jobs
):
    s3 = neurocaas[0]
    certificate = _text(s3, f"{seed_jobs}/logs/certificate.txt")
    for index in (0, 1):
        status = _status(s3, seed_jobs, f"dataset{index}.json")
        assert status["reason"].startswith(f"dataset{index}.json: seed {index} finished: ")
        line = next(entry for entry in certificate.splitlines() if f"dataset{index}.json" in entry)
        assert "STATUS: SUCCESS" in line and line.endswith(status["reason"])
        lines = list(status["std"].values())
        assert lines[-2].startswith(f"seed {index} epoch 2: ")  # the last progress line


def test_merging_the_seed_jobs_on_s3_writes_the_combined_fit(neurocaas, seed_jobs):
    import pandas as pd

    s3 = neurocaas[0]
    source = f"s3://{BUCKET}/{seed_jobs}/process_results"
    assert seed_merge.merge([source], f"{source}/merged") in (0, 1)
    merged = _files(s3, f"{seed_jobs}/process_results/merged")
    assert {"fit.npz", "history.csv", "seeds.csv", "result.json", "report.html"} <= merged
    assert {"figures/history.png", "figures/pairplot.png"} <= merged
    seeds = pd.read_csv(io.StringIO(_text(s3, f"{seed_jobs}/process_results/merged/seeds.csv")))
    assert sorted(seeds["seed"]) == [0, 1]
    history = pd.read_csv(io.StringIO(_text(s3, f"{seed_jobs}/process_results/merged/history.csv")))
    assert set(history["seed"]) == {0, 1}


def test_merging_a_downloaded_job_folder_gives_the_fit_merged_on_s3(neurocaas, seed_jobs, tmp_path):
    s3 = neurocaas[0]
    folder = tmp_path / "process_results"
    for name in _files(s3, f"{seed_jobs}/process_results"):
        if not name.startswith("merged/"):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(BUCKET, f"{seed_jobs}/process_results/{name}", str(folder / name))
    assert seed_merge.merge([str(folder)], str(tmp_path / "merged")) in (0, 1)
    merged_on_s3 = json.loads(_text(s3, f"{seed_jobs}/process_results/merged/result.json"))
    result = json.loads((tmp_path / "merged" / "result.json").read_text())
    assert result["entropy"] == merged_on_s3["entropy"]
    assert (tmp_path / "merged" / "report.html").is_file()


def test_a_merge_refuses_an_unfinished_job(neurocaas, stopped_job, capsys, tmp_path):
    source = f"s3://{BUCKET}/{stopped_job}/process_results"
    assert seed_merge.merge([source], str(tmp_path / "merged")) == seed_merge.BAD_INPUT
    assert "the job of dataset0.json is unfinished; resubmit it" in capsys.readouterr().err
    assert not (tmp_path / "merged" / "fit.npz").exists()


def test_a_job_stopped_by_its_duration_fails_saying_to_resubmit(neurocaas, stopped_job):
    s3 = neurocaas[0]
    status = _status(s3, stopped_job, "dataset0.json")
    assert status["status"] == "FAILED" and status["exit_code"] == job.STOPPED
    epochs = _progress(status)
    assert epochs and epochs[-1][0] < 1000
    assert status["reason"] == (
        f"dataset0.json: stopped by __duration__ after epoch {epochs[-1][0]}, checkpoint "
        "saved; resubmit the same dataset and config to continue"
    )
    assert _record(s3, stopped_job, "dataset0")["state"] == "unfinished"
    assert "process_results/dataset0.checkpoint.zip" in _files(s3, stopped_job)


def test_a_resubmitted_job_continues_from_the_stopped_jobs_last_epoch(
    neurocaas, stopped_job, resubmitted_job
):
    s3 = neurocaas[0]
    before = _progress(_status(s3, stopped_job, "dataset0.json"))
    status = _status(s3, resubmitted_job, "dataset0.json")
    after = _progress(status)
    record = _record(s3, resubmitted_job, "dataset0")
    assert record["resumed_from"] == f"s3://{BUCKET}/{stopped_job}/process_results"
    # The next epoch, and the iterations counted on from the stopped job's.
    assert after[0] == (before[-1][0] + 1, before[-1][1] + 20)
    assert status["std"]["0"].startswith("dataset0.json: continuing seed 0 from ")


def test_the_example_config_is_valid_and_has_one_example_dataset_per_seed(tmp_path, capsys):
    from sklearn_epi.cli import EXIT_CONFIG, main

    example = ROOT / "ncap" / "example"
    seeds = sorted(job.read_dataset(path) for path in example.glob("dataset*.json"))
    # Checked key by key, then refused for the seed past the last: nothing is fitted.
    argv = ["fit", str(example / "config.yaml"), "--out", str(tmp_path), "--seed-index"]
    assert main([*argv, str(len(seeds))]) == EXIT_CONFIG
    assert f"--seed-index must be in 0 .. {len(seeds) - 1} " in capsys.readouterr().err
    assert seeds == list(range(len(seeds)))


def test_a_dataset_that_names_no_seed_is_refused_as_a_bad_configuration(tmp_path, capsys):
    dataset = tmp_path / "data.json"
    dataset.write_text(json.dumps({"random_seed": 3}))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    code = job.run_job(dataset, config, tmp_path / "results")
    assert code == job.BAD_CONFIG
    record = json.loads((tmp_path / "results" / "data.job.json").read_text())
    assert record["state"] == "failed"
    assert '{"seed_index": k}' in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.parametrize(
    "fit_code, last_line, expected",
    [
        (0, "seed 2: converged=True entropy=7.010 (epoch 9); merge ...", (0, "finished")),
        (1, "seed 2: converged=False entropy=6.500 (epoch 25); merge ...", (0, "finished")),
        (1, "seed 2: converged=False entropy=nan (epoch 0); merge ...", (1, "failed")),
        (1, "Traceback (most recent call last):", (1, "failed")),
        (2, "", (2, "failed")),
        (75, "seed 2 epoch 4: entropy 7.0", (75, "unfinished")),
        (-9, "seed 2 epoch 4: entropy 7.0", (1, "failed")),
    ],
    ids=["converged", "not converged", "seed failed", "crash", "bad config", "stopped", "killed"],
)
def test_the_fits_exit_code_maps_to_the_jobs_code_and_state(fit_code, last_line, expected):
    code, state, _ = job.outcome(fit_code, ["seed 2 epoch 1: entropy 7.0", last_line])
    assert (code, state) == expected


@pytest.mark.parametrize(
    "fit_code, error, closing",
    [
        (
            2,
            "sklearn-epi: error: [fit] unknown key 'n_seed' (did you mean 'n_seeds'?)",
            "bad configuration: [fit] unknown key 'n_seed' (did you mean 'n_seeds'?)",
        ),
        (1, "ZeroDivisionError: division by zero", "ZeroDivisionError: division by zero"),
    ],
    ids=["bad config", "crash"],
)
def test_a_failed_jobs_closing_line_quotes_the_fits_error(fit_code, error, closing):
    assert job.outcome(fit_code, [], error)[2].endswith(closing)


def test_a_stop_by_signal_is_named_in_the_closing_line():
    lines = ["seed 0 epoch 1: entropy 7.0", "seed 0 epoch 2: entropy 7.1"]
    _, _, closing = job.outcome(75, lines, stopped_by="SIGTERM")
    assert closing.startswith("stopped by SIGTERM after epoch 2, checkpoint saved; resubmit")
