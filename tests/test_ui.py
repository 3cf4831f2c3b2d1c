"""The web interface's routes and callbacks, through Flask's test client (no browser)."""

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("dash", reason="the interface is the optional extra sklearn_epi[ui]")

#: One worker runs the module, so its fixtures (a fit, a browser) are made once.
pytestmark = pytest.mark.xdist_group("ui")

from sklearn_epi.cli import main  # noqa: E402
from sklearn_epi.ui import create_app  # noqa: E402

#: A fit of a few seconds (the LDS example, tiny budget), as a JSON configuration.
TINY = {
    "model": {"statistic": "lds_eigenvalues", "bounds": "LDS_BOUNDS"},
    "property": {
        "mu": {"real": 0.0, "imag": 6.2832},
        "sigma2": {"real": 0.0625, "imag": 0.3948},
    },
    "flow": {"num_units": 16},
    "al_params": {"num_iters": 50, "max_epochs": 2, "init_iters": 20, "batch_size": 100},
    "fit": {"random_state": 0, "n_test": 50, "jit_compile": False},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with one finished fit, ``tiny``, and one damaged run, ``damaged``."""
    store = tmp_path_factory.mktemp("store")
    config = store / "tiny.json"
    config.write_text(json.dumps(TINY))
    assert main(["fit", str(config), "--out", str(store / "tiny")]) in (0, 1)
    (store / "damaged" / "checkpoint").mkdir(parents=True)
    (store / "damaged" / "checkpoint" / "run.json").write_text('{"format": 1, "params"')
    (store / "damaged" / "checkpoint" / "seed-0.npz").write_bytes(b"not a checkpoint")
    return store


def call(client, output, inputs=None, state=None):
    """Run the Dash callback whose output names ``output``; its response by component id.

    ``inputs`` and ``state`` map a component id to its property's value.
    """
    inputs, state = inputs or {}, state or {}
    (dependency,) = [
        d for d in client.get("/_dash-dependencies").json if output in d["output"].split("@")[0]
    ]
    parts = dependency["output"].strip(".").split("...")
    outputs = [dict(zip(("id", "property"), p.rsplit(".", 1))) for p in parts]
    payload = {
        "output": dependency["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [{**i, "value": inputs.get(i["id"])} for i in dependency["inputs"]],
        "state": [{**s, "value": state.get(s["id"])} for s in dependency["state"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dependency["inputs"]],
    }
    answer = client.post("/_dash-update-component", json=payload)
    assert answer.status_code == 200, answer.data[:500]
    return answer.json["response"]


def runs_table(store):
    response = call(create_app(store).server.test_client(), "runs-table.data", {"runs-interval": 1})
    return {row["id"]: row for row in response["runs-table"]["data"]}


def text_of(component) -> str:
    """Every string inside a Dash component tree, as JSON gives it."""
    return json.dumps(component)


def test_importing_sklearn_epi_does_not_import_dash():
    code = "import sys, sklearn_epi; assert 'dash' not in sys.modules, 'dash imported'"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]


def test_without_dash_the_interface_names_the_extra_to_install(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("sklearn_epi.ui")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dash", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn_epi\[ui\]'"):
        import sklearn_epi.ui  # noqa: F401


def test_with_a_token_a_request_without_it_is_refused(store):
    client = create_app(store, token="s3cret").server.test_client()
    for path in ("/", "/_dash-layout", "/_dash-dependencies", "/run/tiny", "/?token=wrong"):
        assert client.get(path).status_code == 403, path
    assert client.post("/_dash-update-component", json={}).status_code == 403


def test_the_token_in_the_url_opens_the_page_and_a_cookie_remembers_it(store):
    client = create_app(store, token="s3cret").server.test_client()
    assert client.get("/?token=s3cret").status_code == 200
    assert client.get("/_dash-layout").status_code == 200  # the cookie, no token in the URL


def test_the_token_in_an_authorization_header_is_accepted(store):
    client = create_app(store, token="s3cret").server.test_client()
    assert client.get("/_dash-layout", headers={"Authorization": "token s3cret"}).status_code == 200
    assert client.get("/_dash-layout", headers={"Authorization": "token s3"}).status_code == 403


def test_without_a_token_every_request_is_served(store):
    client = create_app(store).server.test_client()
    assert client.get("/").status_code == 200
    assert client.get("/_dash-layout").status_code == 200


def test_the_runs_table_lists_a_finished_fit_with_its_result(store):
    row = runs_table(store)["tiny"]
    result = json.loads((store / "tiny" / "result.json").read_text())
    assert row["run"] == "[tiny](/run/tiny)"
    assert row["status"] == result["status"] and row["converged"] == result["converged"]
    assert row["entropy"] == pytest.approx(result["entropy"], abs=1e-4)
    assert row["statistic"] == "sklearn_epi.circuits.lds.lds_eigenvalues"
    assert row["epochs"] == 2 and row["seeds"] == 1
    assert "num_units=16" in row["flow"] and "num_iters=50" in row["al_params"]


def test_a_damaged_run_is_a_row_saying_so_and_the_others_are_listed(store):
    rows = runs_table(store)
    assert rows["damaged"]["status"].startswith("unreadable")
    assert "run.json" in rows["damaged"]["status"]
    assert rows["tiny"]["epochs"] == 2


def test_the_run_page_shows_the_history_of_every_constraint(store):
    client = create_app(store).server.test_client()
    response = call(client, "run-status.children", {"run-interval": 1}, {"run-name": "tiny"})
    assert response["epoch-count"]["children"] == "2 epochs finished"
    titles = [a["text"] for a in response["history-graph"]["figure"]["layout"]["annotations"]]
    assert titles[:4] == ["entropy H", "cost", "penalty c", "smallest p-value"]
    assert titles[4:] == [
        f"violation R {n}" for n in ("mean_real", "mean_imag", "var_real", "var_imag")
    ]


def test_a_fitted_run_shows_pairplot_predictive_and_hessian_directions(store):
    client = create_app(store).server.test_client()
    stamp = str((store / "tiny" / "fit.npz").stat().st_mtime_ns)
    response = call(client, "fitted-section.children", {"fit-stamp": stamp}, {"run-name": "tiny"})
    shown = text_of(response)
    assert shown.count("data:image/png;base64,") == 2
    assert "most sensitive v1" in shown and "least sensitive v4" in shown
    assert all(f'"{name}"' in shown for name in ("a11", "a12", "a21", "a22"))


def form_state(**changes):
    """The launch form's fields for the tiny fit, with ``changes`` (field id: value)."""
    state = {
        "form-name": "new",
        "form-flow-type": "RealNVP",
        "form-extra": json.dumps({"fit": {"n_test": 50, "jit_compile": False}}),
        "form-model-statistic": "lds_eigenvalues",
        "form-model-bounds": "LDS_BOUNDS",
        "form-property-mu": "LDS_MU",
        "form-property-sigma2": "LDS_SIGMA2",
        "form-al_params-num_iters": 50,
        "form-al_params-max_epochs": 1,
    }
    state.update(changes)
    return state


def test_the_form_refuses_a_bad_key_naming_it_and_launches_nothing(store):
    client = create_app(store).server.test_client()
    extra = json.dumps({"fit": {"n_tests": 50}})
    response = call(
        client, "form-message.children", {"launch-button": 1}, form_state(**{"form-extra": extra})
    )
    message = response["form-message"]["children"]["props"]["children"]
    assert "[fit] unknown key 'n_tests' (did you mean 'n_test'?)" in message
    assert not (store / "new").exists()


def test_the_form_refuses_a_bad_value_naming_its_section(store):
    client = create_app(store).server.test_client()
    state = form_state(**{"form-property-sigma2": "[-1.0, 0.4]"})
    response = call(client, "form-message.children", {"launch-button": 1}, state)
    assert "[property] sigma2" in response["form-message"]["children"]["props"]["children"]
    assert not (store / "new").exists()


def test_the_form_refuses_a_run_name_that_exists(store):
    client = create_app(store).server.test_client()
    response = call(
        client, "form-message.children", {"launch-button": 1}, form_state(**{"form-name": "tiny"})
    )
    assert "'tiny'" in response["form-message"]["children"]["props"]["children"]
    assert "exists" in response["form-message"]["children"]["props"]["children"]


def test_sklearn_epi_ui_on_another_address_prints_a_token_and_refuses_requests_without_it(
    tmp_path,
):
    import re
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "sklearn_epi_cli", "ui", str(tmp_path), "--host", "0.0.0.0"]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        while not (found := re.search(r"\?token=(\S+)", "".join(lines))):
            line = server.stdout.readline()
            assert line, "".join(lines)  # the server ended without printing its address
            lines.append(line)
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(url, timeout=30)
        with urllib.request.urlopen(f"{url}?token={found[1]}", timeout=30) as page:
            assert page.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
