"""The views notebook in a real JupyterLab, driven by headless Debian chromium through playwright.

Starts JupyterLab on 127.0.0.1 with a random token and every Jupyter directory of its own, opens a copy of
nbs/11_views.ipynb, runs all cells, moves the explorer's sample slider with the keyboard and checks that the figure
follows. Saves screenshots of the three views under figures/views/ and fails on any JavaScript console error.
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
pytestmark = pytest.mark.slow
CELL_LIMIT_S = 900  # the longest a cell may run without finishing, on a loaded machine (the first cell trains a model)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(home: Path) -> dict:
    "Every directory JupyterLab reads or writes state in, inside `home`: no settings or workspace of another session."
    dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data", "JUPYTER_RUNTIME_DIR": "runtime",
            "JUPYTERLAB_SETTINGS_DIR": "user-settings", "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
            "IPYTHONDIR": "ipython"}
    for d in dirs.values(): (home / d).mkdir(parents=True, exist_ok=True)
    settings = home / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"}))
    return {**os.environ, **{k: str(home / d) for k, d in dirs.items()}, "MPLBACKEND": "agg"}


@pytest.fixture
def jupyterlab(tmp_path, chromium):
    work = tmp_path / "lab"
    (work / "nbs").mkdir(parents=True)
    shutil.copy(ROOT / "nbs" / "11_views.ipynb", work / "nbs" / "views.ipynb")
    # the notebook shows screenshots by relative path (../figures/views/): give the copy the same layout
    shutil.copytree(ROOT / "figures" / "views", work / "figures" / "views",
                    ignore=shutil.ignore_patterns("*.html", "*.js"))
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--allow-root",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        env=jupyter_env(tmp_path / "jupyter"), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
    yield url, token, chromium
    proc.terminate()
    try: proc.wait(timeout=20)
    except subprocess.TimeoutExpired: proc.kill()


NOTEBOOK_STATE = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const running = prompts.findIndex(p => p.includes('*'));
  const source = i => i < 0 ? '' : (cells[i].querySelector('.jp-InputArea-editor') || {}).textContent || '';
  return {total: cells.length, done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, running,
          source: source(running).trim().split('\\n')[0].slice(0, 100)};
}"""


def wait_for_notebook(page, cell_limit_s: float = CELL_LIMIT_S):
    "Wait until every code cell has run, as long as cells keep finishing; fail naming the cell that does not."
    done, deadline = -1, time.time() + cell_limit_s
    while True:
        state = page.evaluate(NOTEBOOK_STATE)
        if state["running"] < 0 and state["total"] and state["done"] == state["total"]: return state
        if state["done"] != done: done, deadline = state["done"], time.time() + cell_limit_s  # progress: a new limit
        if time.time() > deadline:
            cell = f"cell {state['running'] + 1} ({state['source']!r})" if state["running"] >= 0 else "the next cell"
            pytest.fail(f"waited {cell_limit_s:.0f} s on {cell}: "
                        f"{state['done']} of {state['total']} code cells had run")
        time.sleep(1)


def test_views_notebook_runs_and_responds_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright
    url, token, chromium = jupyterlab
    with pytest.raises(urllib.error.HTTPError) as refused:  # the server answers only to the token
        urllib.request.urlopen(f"{url}/api/contents", timeout=5)
    assert refused.value.code == 403
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{url}/lab/tree/nbs/views.ipynb?token={token}")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
        try:
            page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=120_000)  # the kernel is up, no dialog
            page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
            page.click("li[data-command='runmenu:run-all']")
            wait_for_notebook(page)
        except BaseException:
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
            "() => document.querySelector('.js-plotly-plot .gtitle').textContent.startsWith('sample 4:')",
            timeout=60_000)
        for i, name in enumerate(["reconstruction_explorer", "mask_ratio_sweep", "latent_umap"]):
            plot = plots.nth(i)
            plot.scroll_into_view_if_needed()
            plot.screenshot(path=str(SHOTS / f"browser_{name}.png"))
        page.screenshot(path=str(SHOTS / "browser_notebook.png"))
        browser.close()
    assert not errors, errors
