"""Fits launched from the interface: a checked JSON configuration, then ``sklearn-epi fit``.

The interface never fits in its own process and never imports a user's
module: it writes ``STORE/<name>/config.json`` and starts ``python -m
sklearn_epi_cli fit ... --out STORE/<name>`` as a background process
of the user who runs the interface, which imports the named statistic as
that user could. Stop sends
it SIGTERM (the CLI keeps every finished epoch and exits 75); Resume runs
the same command again.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .._config import ConfigError, _check_keys, build_estimator, copies_in, load_config
from ._catalog import LAUNCH_FILE

#: Names a launched run's directory may have.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_config(config: dict) -> None:
    """Check a configuration as ``sklearn-epi fit`` would, before anything is launched.

    Every section and key is checked (:func:`sklearn_epi._config.load_config`);
    for a statistic of :mod:`sklearn_epi.circuits` the values too
    (:func:`~sklearn_epi._config.build_estimator`). A ``module:function``
    statistic is not imported here: its module runs only in the launched
    process, whose errors the run's page shows.

    Raises
    ------
    ConfigError
        Naming the section and key that are wrong.
    """
    from .. import MAF, ALParams, EPIEstimator, RealNVP

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config))
        checked = load_config(path)
        if ":" not in str(checked["model"]["statistic"]):
            build_estimator(checked, tmp)
            return
    flow = dict(checked.get("flow", {}))
    flow_type = MAF if str(flow.pop("type", "RealNVP")).lower() == "maf" else RealNVP
    _check_keys("flow", flow, ["type", *flow_type._get_param_names()])
    _check_keys("al_params", checked.get("al_params", {}), ALParams._get_param_names())
    reserved = ("statistic", "bounds", "flow", "al_params", "checkpoint", "callbacks")
    fit_keys = [k for k in EPIEstimator._get_param_names() if k not in reserved]
    _check_keys("fit", checked.get("fit", {}), fit_keys)


def _child_environment() -> dict:
    """The environment of a launched fit: this one, with the package this server runs first.

    The child must run the same ``sklearn_epi`` and ``sklearn_epi_cli`` as
    the interface, also from a source checkout that is not installed.
    """
    env = dict(os.environ)
    where = []
    for module in ("sklearn_epi_cli", "sklearn_epi"):
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            origin = Path(spec.origin).parent
            folder = str(origin.parent if module == "sklearn_epi" else origin)
            if folder not in where:
                where.append(folder)
    env["PYTHONPATH"] = os.pathsep.join(where + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _alive(pid: int, config: str) -> bool:
    """Whether ``pid`` is still the fit of ``config`` (not a reused pid, not a zombie)."""
    if pid <= 0:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return state != "Z" and "sklearn_epi_cli" in command and config in command
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class Launcher:
    """Starts, stops and resumes the fits of a store, and says whether each still runs.

    Parameters
    ----------
    store : path-like
        The directory in which each launched run gets a directory of its own.
    """

    def __init__(self, store):
        self.store = Path(store)
        self._processes = {}

    def create(self, name: str, config: dict) -> Path:
        """Check ``config``, write ``STORE/<name>/config.json`` and start the fit.

        Raises
        ------
        ConfigError
            For a bad name, a directory that exists, or a bad configuration.
        """
        if not RUN_NAME.match(name or ""):
            raise ConfigError(
                "run name must be letters, digits, '_', '-' or '.', starting with a letter "
                f"or digit; got {name!r}"
            )
        directory = self.store / name
        if directory.exists():
            raise ConfigError(f"run name {name!r}: {directory} exists; choose another name")
        check_config(config)
        directory.mkdir(parents=True)
        (directory / "config.json").write_text(json.dumps(config, indent=2))
        self.start(directory)
        return directory

    def _config(self, directory: Path) -> Path:
        copies = copies_in(directory)
        if not copies:
            raise ConfigError(f"{directory} holds no configuration to run")
        return copies[0]

    def start(self, directory) -> None:
        """Start (or resume: the same command again) the fit of a run directory."""
        directory = Path(directory)
        if self.running(directory):
            raise ConfigError(f"{directory.name} is running already")
        command = [sys.executable, "-m", "sklearn_epi_cli", "fit", str(self._config(directory))]
        command += ["--out", str(directory)]
        with (
            open(directory / "fit.stdout", "ab") as out,
            open(directory / "fit.stderr", "ab") as err,
        ):
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=_child_environment(),
            )
        self._processes[directory.resolve()] = process
        record = {"command": command, "pid": process.pid, "started": time.time()}
        (directory / LAUNCH_FILE).write_text(json.dumps(record, indent=2))

    def stop(self, directory) -> bool:
        """Send SIGTERM to the run's fit; False if it does not run."""
        directory = Path(directory)
        if not self.running(directory):
            return False
        pid = json.loads((directory / LAUNCH_FILE).read_text())["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return True

    def running(self, directory) -> bool:
        """Whether the run's launched fit is running."""
        return self.state(directory) == ("running", None)

    def state(self, directory) -> tuple | None:
        """``("running", None)``, ``("ended", exit code or None)``, or None if never launched."""
        directory = Path(directory)
        process = self._processes.get(directory.resolve())
        record_file = directory / LAUNCH_FILE
        if process is not None:
            returncode = process.poll()
            if returncode is None:
                return "running", None
            record = json.loads(record_file.read_text())
            if record.get("returncode") != returncode:
                record["returncode"] = returncode
                record_file.write_text(json.dumps(record, indent=2))
            return "ended", returncode
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            return None
        if record.get("returncode") is not None:
            return "ended", record["returncode"]
        command = record.get("command") or ["", "", "", "", ""]
        if _alive(int(record.get("pid", -1)), str(command[4])):
            return "running", None
        return "ended", None

    def log_tail(self, directory, lines: int = 15) -> str:
        """The last lines of the launched fit's stderr (configuration errors, warnings)."""
        path = Path(directory) / "fit.stderr"
        if not path.is_file():
            return ""
        text = path.read_bytes()[-20000:].decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
