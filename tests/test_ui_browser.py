"""The web interface in a headless Chromium: runs table, a live fit, compare, launch/stop/resume.

Screenshots go to ``doc/_static/ui/`` when ``SKLEARN_EPI_UI_SCREENSHOTS=1``,
else to a temporary directory.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("dash", reason="the interface is the optional extra sklearn_epi[ui]")

#: One worker runs the module, so its fixtures (a fit, a browser) are made once.
pytestmark = pytest.mark.xdist_group("ui_browser")
pytest.importorskip("selenium", reason="the browser tests drive Chromium with selenium")
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "the browser tests need chromium and chromedriver (apt-get install chromium "
        "chromium-driver)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_ui import TINY  # noqa: E402  (the same few-second fit)
from werkzeug.serving import make_server  # noqa: E402

from sklearn_epi.cli import main  # noqa: E402
from sklearn_epi.ui import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


#: Short epochs, more than a loaded machine runs before the page shows one:
#: the test stops the fit (SIGTERM: it writes its outputs) once it saw two.
LIVE = {
    **TINY,
    "al_params": {**TINY["al_params"], "num_iters": 400, "max_epochs": 40},
    "fit": {**TINY["fit"], "random_state": 1},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with a finished fit, ``tiny``."""
    store = tmp_path_factory.mktemp("store")
    (store / "tiny.json").write_text(json.dumps(TINY))
    assert main(["fit", str(store / "tiny.json"), "--out", str(store / "tiny")]) in (0, 1)
    yield store
    for record in store.glob("*/ui-launch.json"):  # fits the form launched
        pid = json.loads(record.read_text())["pid"]
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


@pytest.fixture(scope="module")
def live(store):
    """The fit ``live`` of the store, started in the background when first asked for."""
    config = store / "live.json"
    config.write_text(json.dumps(LIVE))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "sklearn_epi_cli", "fit", str(config), "--out", str(store / "live")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    yield store / "live", process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def url(store):
    server = make_server("127.0.0.1", 0, create_app(store).server, threaded=True)
    # Requests still computing (a figure, TensorFlow) are waited for at the
    # end: a thread killed inside TensorFlow at exit aborts the process.
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()  # joins the request threads, once the browser has quit
    thread.join()


@pytest.fixture(scope="module")
def driver(url, tmp_path_factory):
    """Headless Chromium; it quits before the server stops (it holds connections open)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(CHROMEDRIVER))
    yield browser
    browser.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    if os.environ.get("SKLEARN_EPI_UI_SCREENSHOTS") == "1":
        folder = ROOT / "doc" / "_static" / "ui"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


def screenshot(driver, folder, name, whole=True):
    """The page as ``folder/name.png``: the whole page up to 3400 pixels high, or the window."""
    driver.execute_script("window.scrollTo(0, 0)")
    if whole:
        for _ in range(2):  # a taller window can lay the page out taller
            height = driver.execute_script(
                "return document.body.scrollHeight + window.outerHeight - window.innerHeight"
            )
            driver.set_window_size(1400, min(max(height, 700), 3400))
    assert driver.save_screenshot(str(folder / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def wait(driver, condition, timeout=60):
    """Wait for ``condition``; a timeout says what the page's status showed then."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        shown = f"status {text(driver, 'run-status')!r}, {text(driver, 'epoch-count')!r}"
        raise TimeoutException(f"after {timeout} s the page shows {shown}") from None


def text(driver, element_id) -> str:
    found = driver.find_elements(By.ID, element_id)
    return found[0].text if found else ""


def table_runs(driver) -> list:
    cells = driver.find_elements(By.CSS_SELECTOR, 'td.dash-cell[data-dash-column="run"]')
    return [c.text for c in cells]


def epochs_shown(driver) -> int:
    shown = text(driver, "epoch-count").split(" ")[0]
    return int(shown) if shown.isdigit() else -1


def test_a_running_fit_shows_its_epochs_as_they_finish(driver, url, live, screenshots):
    live, process = live
    wait(driver, lambda d: (live / "config.json").is_file())  # the CLI began the run
    driver.get(url + "/run/live")
    first = wait(driver, lambda d: epochs_shown(d) > 0 and epochs_shown(d), timeout=120)
    assert process.poll() is None  # seen while the fit runs
    screenshot(driver, screenshots, "live", whole=False)  # at once, while it runs
    wait(driver, lambda d: epochs_shown(d) > first, timeout=120)
    assert "violation R mean_real" in text(driver, "history-graph")
    process.send_signal(signal.SIGTERM)  # the fit keeps its epochs and writes its outputs
    assert process.wait(timeout=120) == 75


def test_the_runs_table_filters_sorts_and_opens_a_run(driver, url, live, screenshots):
    live, _ = live
    driver.get(url + "/")
    wait(driver, lambda d: {"tiny", "live"} <= set(table_runs(d)))
    sort = 'th.dash-header[data-dash-column="run"] .column-header--sort'
    driver.find_element(By.CSS_SELECTOR, sort).click()
    wait(driver, lambda d: table_runs(d) == ["live", "tiny"])
    driver.find_element(By.CSS_SELECTOR, sort).click()
    wait(driver, lambda d: table_runs(d) == ["tiny", "live"])
    screenshot(driver, screenshots, "runs")
    search = driver.find_element(By.CSS_SELECTOR, 'th.dash-filter[data-dash-column="run"] input')
    search.send_keys("tiny" + Keys.ENTER)
    wait(driver, lambda d: table_runs(d) == ["tiny"])
    driver.find_element(By.LINK_TEXT, "tiny").click()
    wait(driver, lambda d: d.current_url.endswith("/run/tiny"))
    wait(driver, lambda d: text(d, "sensitivity-table"), timeout=90)
    assert "a11" in text(driver, "sensitivity-table")
    assert len(driver.find_elements(By.CSS_SELECTOR, "img.figure")) == 2
    assert text(driver, "epoch-count") == "2 epochs finished"
    screenshot(driver, screenshots, "run")


def test_the_compare_view_shows_two_runs_side_by_side(driver, url, live, screenshots):
    live, process = live
    if process.poll() is None:  # run alone: stop the live fit, which then writes its fit
        process.send_signal(signal.SIGTERM)
    wait(driver, lambda d: (live / "fit.npz").is_file(), timeout=180)
    driver.get(url + "/compare?runs=tiny,live")
    histograms = "#marginals .main-svg .bars"  # drawn by plotly, one per run and parameter
    wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, histograms)) == 8, timeout=90)
    entropies = text(driver, "compare-entropies")
    assert "tiny" in entropies and "live" in entropies
    assert text(driver, "compare-content").count("mean_real") == 2  # a constraint table each
    screenshot(driver, screenshots, "compare")


def fill(driver, element_id, value):
    field = driver.find_element(By.ID, element_id)
    field.send_keys(Keys.CONTROL + "a", Keys.DELETE)
    field.send_keys(str(value))


def test_a_fit_launched_from_the_form_stops_and_resumes(driver, url, store, screenshots):
    driver.get(url + "/new")
    wait(driver, lambda d: d.find_elements(By.ID, "launch-button"))
    fill(driver, "form-name", "from-form")
    fill(driver, "form-flow-num_units", 16)
    fill(driver, "form-al_params-num_iters", 200)
    fill(driver, "form-al_params-max_epochs", 1000)
    fill(driver, "form-al_params-init_iters", 20)
    fill(driver, "form-al_params-batch_size", 100)
    # A frequency no matrix within the bounds has: the fit cannot converge,
    # so it still runs when Stop is clicked, however slow the machine.
    unreachable = {"property": {"mu": {"real": 0.0, "imag": 50.0}}}
    fill(
        driver,
        "form-extra",
        json.dumps({**unreachable, "fit": {"n_test": 50, "jit_compile": False}}),
    )
    screenshot(driver, screenshots, "form")
    driver.find_element(By.ID, "launch-button").click()
    wait(driver, lambda d: d.current_url.endswith("/run/from-form"))
    wait(driver, lambda d: text(d, "run-status") == "running")
    record = store / "from-form" / "ui-launch.json"
    assert (
        json.loads((store / "from-form" / "config.json").read_text())["al_params"]["max_epochs"]
        == 1000
    )
    wait(driver, lambda d: d.find_element(By.ID, "stop-button").is_enabled())
    driver.find_element(By.ID, "stop-button").click()
    wait(driver, lambda d: text(d, "run-status") == "stopped")
    assert json.loads(record.read_text())["returncode"] == 75  # SIGTERM: resumable
    driver.find_element(By.ID, "resume-button").click()
    wait(driver, lambda d: text(d, "run-status") == "running")
    wait(driver, lambda d: epochs_shown(d) >= 1, timeout=120)
    driver.find_element(By.ID, "stop-button").click()
    wait(driver, lambda d: text(d, "run-status") == "unfinished", timeout=120)
    assert json.loads(record.read_text())["returncode"] == 75
    screenshot(driver, screenshots, "stopped")
