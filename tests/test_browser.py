"""The views notebook in a real JupyterLab, driven by headless Debian chromium through playwright.

Starts JupyterLab on 127.0.0.1 with a random token, opens a copy of nbs/10_views.ipynb, runs all cells, moves the
explorer's sample slider with the keyboard and checks that the figure follows. Saves screenshots of the three views
under figures/views/ and fails on any JavaScript console error.
"""
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "figures" / "views"
CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (make setup installs it)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    work = tmp_path / "lab"
    work.mkdir()
    nb = json.loads((ROOT / "nbs" / "10_views.ipynb").read_text())
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}  # cleaned notebooks carry none
    (work / "nbs").mkdir()
    (work / "nbs" / "views.ipynb").write_text(json.dumps(nb))
    # the notebook shows screenshots by relative path (../figures/views/): give the copy the same layout
    shutil.copytree(ROOT / "figures" / "views", work / "figures" / "views", ignore=shutil.ignore_patterns("*.html", "*.js"))
    settings = tmp_path / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user-settings"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "MPLBACKEND": "agg"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
    yield url, token
    proc.terminate()
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: proc.kill()


def test_views_notebook_runs_and_responds_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright
    url, token = jupyterlab
    with pytest.raises(urllib.error.HTTPError) as refused:  # the server answers only to the token
        urllib.request.urlopen(f"{url}/api/contents", timeout=5)
    assert refused.value.code == 403
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/lab/tree/nbs/views.ipynb?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90_000)
        try:
            page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=90_000)  # the kernel is up
            page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
            page.click("li[data-command='runmenu:run-all']")
            # all three views drawn: the UMAP status line is the last thing the notebook writes
            page.wait_for_selector("text=embedded and drawn", timeout=300_000)
        except Exception:
            page.screenshot(path=str(SHOTS / "browser_failure.png"))
            raise
        plots = page.locator(".js-plotly-plot")
        assert plots.count() >= 3
        explorer_title = page.locator(".js-plotly-plot .gtitle").first
        before = explorer_title.text_content()
        assert before.startswith("sample 3:"), before  # the notebook's own example moved the slider to 3
        # move the sample slider one step with the keyboard, as a person would
        handle = page.locator(".widget-slider:has(label:text-is('sample')) .noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(
            "() => document.querySelector('.js-plotly-plot .gtitle').textContent.startsWith('sample 4:')", timeout=30_000)
        names = ["reconstruction_explorer", "mask_ratio_sweep", "latent_umap"]
        for i, name in enumerate(names):
            plot = plots.nth(i)
            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(SHOTS / f"browser_{name}.png"))
        page.screenshot(path=str(SHOTS / "browser_notebook.png"))
        browser.close()
    assert not errors, errors
