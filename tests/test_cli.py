"""The sklearn-epi command line: a configured fit end to end, its outputs, its errors."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sklearn_epi import load
from sklearn_epi._checkpoint import load_seed
from sklearn_epi.cli import EXIT_AGAIN, EXIT_CONFIG, EXIT_CONVERGED, EXIT_NOT_CONVERGED, main

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[model]
statistic = "lds_eigenvalues"
bounds = "LDS_BOUNDS"

[property]
mu = {real = 0.0, imag = 6.2832}
sigma2 = {real = 0.0625, imag = 0.3948}

[flow]
num_units = 16

[al_params]
num_iters = 50
max_epochs = 2
init_iters = 20
batch_size = 100

[fit]
random_state = 0
n_test = 50
jit_compile = false
"""


def write(tmp_path, text):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return str(path)


def test_fit_writes_estimator_tables_figures_and_a_self_contained_report(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["fit", write(tmp_path, CONFIG), "--out", str(out)])
    assert code in (EXIT_CONVERGED, EXIT_NOT_CONVERGED)
    result = json.loads((out / "result.json").read_text())
    assert result["converged"] == (code == EXIT_CONVERGED)
    est = load(out / "fit.npz")
    assert est.entropy_ == result["entropy"] and list(est.param_names_)[:2] == ["a11", "a12"]
    assert (out / "history.csv").read_text().startswith("seed,epoch,iteration,phase")
    assert {p.name for p in (out / "figures").iterdir()} == {
        "history.png",
        "pairplot.png",
        "predictive.png",
    }
    page = (out / "report.html").read_text()
    assert len(re.findall(r'<img alt="\w+" src="data:image/png;base64,', page)) == 3
    assert "http" not in page  # nothing fetched: it opens offline
    # Numbers for a person: four significant digits (result.json keeps them all).
    assert f"<td>{result['entropy']:.4g}</td>" in page and repr(result["entropy"]) not in page
    # The same command again reads the finished seeds from the checkpoint.
    assert main(["fit", write(tmp_path, CONFIG), "--out", str(out)]) == code
    assert json.loads((out / "result.json").read_text())["entropy"] == result["entropy"]
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == EXIT_CONVERGED and (out / "report.html").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (("mu = {real = 0.0, imag = 6.2832}\n", ""), r"\[property\] mu is required"),
        (('"lds_eigenvalues"', '"lds_eigen"'), r"statistic = 'lds_eigen': not a name"),
        (("num_units = 16", "num_unit = 16"), "num_unit"),
        (("[fit]", "[fitting]"), r"unknown section\(s\) \['fitting'\]"),
        # A typo in a key ran another job: means only, or ./epi_run.
        (
            ("sigma2 = {", "sigma = {"),
            r"\[property\] unknown key 'sigma' \(did you mean 'sigma2'\?\)",
        ),
        (("[fit]", '[output]\ndir = "x"\n[fit]'), r"\[output\] unknown key 'dir'.*'directory'"),
        (("[al_params]", "[al_params]\nmax_epoch = 3"), r"did you mean 'max_epochs'"),
        (
            ("n_test = 50", "n_tests = 50"),
            r"\[fit\] unknown key 'n_tests' \(did you mean 'n_test'\?\)",
        ),
        (("[property]", "argument = {N = 2}\n[property]"), r"\[model\] .*'arguments'"),
        # A wrong type or value names its section and key, before TensorFlow starts.
        (
            ("random_state = 0", 'random_state = 0\nn_seeds = "two"'),
            r"sklearn-epi: error: \[fit\] n_seeds: The 'n_seeds' parameter .* Got 'two'",
        ),
        (("num_units = 16", "num_units = -3"), r"\[flow\] num_units must be an integer >= 1"),
        (("num_iters = 50", 'num_iters = "many"'), r"\[al_params\] num_iters must be an integer"),
        (("sigma2 = {real = 0.0625", "sigma2 = {real = -1.0"), r"\[property\] sigma2 must be"),
        (('bounds = "LDS_BOUNDS"', "bounds = 5"), r"\[model\] bounds must have shape \(D, 2\)"),
        (("[property]", "arguments = 3\n[property]"), r"\[model\] arguments must be a table"),
        (("[fit]", "[output]\ndirectory = 5\n[fit]"), r"\[output\] directory must be a string"),
    ],
    ids=[
        "missing mu",
        "unknown statistic",
        "unknown flow parameter",
        "unknown section",
        "sigma for sigma2",
        "dir for directory",
        "max_epoch",
        "n_tests",
        "argument",
        "n_seeds type",
        "flow value",
        "al_params type",
        "sigma2 value",
        "bounds shape",
        "arguments type",
        "directory type",
    ],
)
def test_configuration_errors_exit_2_naming_the_key(tmp_path, capsys, change, message):
    code = main(["fit", write(tmp_path, CONFIG.replace(*change)), "--out", str(tmp_path)])
    assert code == EXIT_CONFIG
    assert re.search(message, capsys.readouterr().err)


def test_job_array_tasks_fit_one_seed_each_and_the_plain_command_merges_them(tmp_path, capsys):
    config = write(tmp_path, CONFIG.replace("random_state = 0", "random_state = 0\nn_seeds = 2"))
    out = tmp_path / "out"
    for index in (1, 0):  # array tasks, in any order
        code = main(["fit", config, "--out", str(out), "--seed-index", str(index)])
        assert code in (EXIT_CONVERGED, EXIT_NOT_CONVERGED)
        assert capsys.readouterr().out.startswith(f"seed {index}: converged=")
    assert not (out / "fit.npz").exists()  # no partial fit is written as the result
    # Each task's seed has outputs of its own, to look at before the merge.
    for index in (0, 1):
        seed = json.loads((out / f"seed-{index}" / "result.json").read_text())
        assert seed["best_seed"] == index
        assert load(out / f"seed-{index}" / "fit.npz").entropy_ == seed["entropy"]
        assert "lds_eigenvalues" in (out / f"seed-{index}" / "report.html").read_text()

    # A seed fitted by an array task is loaded, not fitted again: the merged
    # fit reports the task's own wall time for it.
    tasks = [load_seed(out / "checkpoint", index, None)["result"].wall_time for index in (0, 1)]
    code = main(["fit", config, "--out", str(out)])
    assert code in (EXIT_CONVERGED, EXIT_NOT_CONVERGED)
    est = load(out / "fit.npz")
    assert sorted(est.seeds_["seed"]) == [0, 1] and not est.seeds_["failed"].any()
    assert est.seeds_.sort_values("seed")["wall_time"].tolist() == tasks
    # result.json gave this command's 0.1 s as the fit's time: the seeds'
    # time over every invocation is there now, beside this one's.
    result = json.loads((out / "result.json").read_text())
    assert result["seed_time"] == pytest.approx(sum(tasks))
    assert result["invocation_time"] < min(tasks)
    assert main(["fit", config, "--out", str(out), "--seed-index", "2"]) == EXIT_CONFIG
    assert "--seed-index must be in 0 .. 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module, source, message",
    [
        ("cli_linear", "def linear(z):\n    return z\n", r"--seed-index must be in 0 \.\. 0"),
        ("cli_boom", "1 / 0\n", r"importing cli_boom raised ZeroDivisionError: division by zero"),
        ("cli_typo", "def linear(z)\n", r"importing cli_typo raised SyntaxError"),
    ],
    ids=["found in the working directory", "raises at import", "syntax error"],
)
def test_a_model_module_is_found_in_the_working_directory_and_its_errors_exit_2(
    tmp_path, capsys, monkeypatch, module, source, message
):
    # The console script's path lacks the working directory ("No module named
    # 'mystats'"), and a module failing at import ended in a traceback, exit 1.
    # (--seed-index 1 of one seed stops the found model's job before fitting.)
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    config = CONFIG.replace('"lds_eigenvalues"', f'"{module}:linear"')
    code = main(["fit", write(tmp_path, config), "--out", str(tmp_path), "--seed-index", "1"])
    assert code == EXIT_CONFIG
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.splitlines()) == 1


def test_an_output_directory_that_cannot_be_made_exits_2(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    code = main(["fit", write(tmp_path, CONFIG), "--out", str(tmp_path / "taken" / "run")])
    assert code == EXIT_CONFIG
    assert re.search(r"output directory .*taken/run: ", capsys.readouterr().err)


def _catches(status_file, signum) -> bool:
    """Whether the process whose /proc status file this is has a handler for ``signum``."""
    try:
        text = status_file.read_text()
    except OSError:
        return False
    mask = int(next(line.split()[1] for line in text.splitlines() if line.startswith("SigCgt")), 16)
    return bool(mask >> (int(signum) - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_the_command_starts_exits_75(tmp_path, signum):
    # The console script's entry sets the handler before importing the
    # package: a SIGTERM while TensorFlow loaded killed it (exit -15), and a
    # Ctrl-C ended in a traceback (exit -2).
    command = "import sys, sklearn_epi_cli; sys.exit(sklearn_epi_cli.main())"
    config = write(tmp_path, CONFIG)
    process = subprocess.Popen(
        [sys.executable, "-c", command, "fit", config, "--out", str(tmp_path / "out")],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a test worker may run with SIGINT
        # ignored, which a child inherits (and Python then leaves ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Signal once the entry has set its SIGTERM handler (Linux lists caught
    # signals in /proc), while TensorFlow is still being imported (seconds).
    caught = Path(f"/proc/{process.pid}/status")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _catches(caught, signal.SIGTERM):
        time.sleep(0.01)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == EXIT_AGAIN, err
    assert "while starting; run the same command again" in err and "Traceback" not in err
