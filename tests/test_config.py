"""The command line's configuration in TOML, JSON and YAML: one meaning, every key checked."""

import json
import re

import pytest

from sklearn_epi._config import ConfigError, duration_max_time, load_config
from sklearn_epi.cli import EXIT_CONFIG, EXIT_CONVERGED, EXIT_NOT_CONVERGED, main

TOML = """
[model]
statistic = "lds_eigenvalues"
bounds = "LDS_BOUNDS"

[property]
mu = [0.0, 6.2832]
sigma2 = [0.0625, 0.3948]

[flow]
num_units = 16

[al_params]
num_iters = 50
max_epochs = 2
init_iters = 20
batch_size = 100
lr = 1e-3

[fit]
random_state = 0
n_test = 50
jit_compile = false
"""

# The same configuration as NeuroCAAS's job manager reads it. ``1e-3`` has
# no dot: YAML 1.1 (PyYAML) reads it as the string "1e-3".
YAML = """
model:
  statistic: lds_eigenvalues
  bounds: LDS_BOUNDS
property:
  mu: [0.0, 6.2832]
  sigma2: [0.0625, 0.3948]
flow:
  num_units: 16
al_params:
  num_iters: 50
  max_epochs: 2
  init_iters: 20
  batch_size: 100
  lr: 1e-3
fit:
  random_state: 0
  n_test: 50
  jit_compile: false
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def as_json(config):
    return json.dumps(config, indent=1)


def test_toml_json_yaml_and_yml_describe_the_same_fit(tmp_path):
    toml = load_config(write(tmp_path, "run.toml", TOML))
    assert toml["al_params"]["lr"] == 1e-3
    assert load_config(write(tmp_path, "run.json", as_json(toml))) == toml
    assert load_config(write(tmp_path, "run.yaml", YAML)) == toml
    assert load_config(write(tmp_path, "run.YML", YAML)) == toml


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "run.json",
            '{"model": {"statistic": "a", "statistic": "b"}}',
            "'statistic' is given twice",
        ),
        ("run.yaml", "model:\n  bounds: A\n  bounds: B\n", r"\['bounds'\] are given twice"),
        ("run.yaml", "model: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("run.json", '{"model": ', "run.json is not valid JSON"),
        ("run.cfg", "[model]\n", r"the suffix '\.cfg' names no format; use \.toml, \.json"),
        ("run.yaml", "- model\n", "must hold a table of sections, got list"),
        ("run.json", '{"__duration__": "60"}', r"__duration__ must be a positive number .* '60'"),
        ("run.yaml", "__duration__: 0\n", "__duration__ must be a positive number"),
        ("run.yaml", "__cpu__: 2\n", r"unknown section\(s\) \['__cpu__'\]"),
    ],
    ids=[
        "repeated JSON key",
        "repeated YAML key",
        "YAML object tag",
        "broken JSON",
        "unknown suffix",
        "YAML list",
        "duration as text",
        "zero duration",
        "unknown reserved key",
    ],
)
def test_a_bad_configuration_file_is_refused_naming_what_is_wrong(tmp_path, name, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, name, text))


def test_neurocaas_duration_sets_max_time_and_the_dataset_size_is_ignored(tmp_path):
    plain = load_config(write(tmp_path, "run.yaml", YAML))
    job = load_config(write(tmp_path, "job.yaml", YAML + "__duration__: 60\n__dataset_size__: 5\n"))
    assert duration_max_time(60) == 0.9 * 3600
    assert job["fit"] == {**plain["fit"], "max_time": 0.9 * 3600}
    # A [fit] max_time shorter than the job keeps; a longer one gives way to it.
    shorter = YAML.replace("  jit_compile: false", "  jit_compile: false\n  max_time: 60")
    job = load_config(write(tmp_path, "short.yaml", shorter + "__duration__: 60\n"))
    assert job["fit"]["max_time"] == 60
    job = load_config(write(tmp_path, "long.yaml", shorter + "__duration__: 0.5\n"))
    assert job["fit"]["max_time"] == 27


def test_a_yaml_key_error_exits_2_naming_section_and_key(tmp_path, capsys):
    path = write(tmp_path, "run.yaml", YAML.replace("num_units", "num_unit"))
    assert main(["fit", str(path), "--out", str(tmp_path / "out")]) == EXIT_CONFIG
    assert re.search(r"\[flow\] unknown key 'num_unit'", capsys.readouterr().err)


def test_a_yaml_fit_keeps_its_config_copy_and_prints_a_line_per_epoch(tmp_path, capsys):
    out = tmp_path / "out"
    (out).mkdir()
    (out / "config.toml").write_text("an older run's copy")
    code = main(["fit", str(write(tmp_path, "run.yaml", YAML)), "--out", str(out), "--progress"])
    assert code in (EXIT_CONVERGED, EXIT_NOT_CONVERGED)
    assert sorted(p.name for p in out.glob("config.*")) == ["config.yaml"]
    assert "lds_eigenvalues" in (out / "report.html").read_text()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("seed ")]
    history = (out / "history.csv").read_text().splitlines()
    epochs = [row.split(",")[1] for row in history if ",test," in row and row.split(",")[1] != "0"]
    assert [
        re.match(r"seed 0 epoch (\d+): entropy -?\d+\.\d{4} \(se ", line)[1] for line in lines
    ] == epochs


def test_a_configuration_inside_its_output_directory_is_kept(tmp_path, capsys):
    # The copy step deleted it (exit 2, the configuration gone).
    out = tmp_path / "out"
    out.mkdir()
    config = write(out, "config.yaml", YAML.replace("max_epochs: 2", "max_epochs: 1"))
    assert main(["fit", str(config), "--out", str(out)]) in (EXIT_CONVERGED, EXIT_NOT_CONVERGED)
    assert config.read_text().startswith("\nmodel:") and sorted(out.glob("config.*")) == [config]


def test_ui_needs_a_directory(tmp_path, capsys):
    assert main(["ui", str(tmp_path / "missing")]) == EXIT_CONFIG
    assert "STORE" in capsys.readouterr().err
