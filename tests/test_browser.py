"""The views notebook in a real JupyterLab, driven by headless Debian chromium through playwright.

Starts JupyterLab on 127.0.0.1 with a random token and every Jupyter directory of its own, opens a
copy of nbs/11_views.ipynb, runs all cells, moves every control of the explorers, the embedding view
and the training curves with the keyboard or the mouse, clicks points of the embedding view and
checks that the explorer follows. Saves screenshots of the views (the explorer on images, sensor
signals, DNA and image + caption, the sweep, the training curves, the embedding view) and the
measured response times under figures/views/, and fails on any JavaScript console error and on any
text of a view that runs into another or off its plot (`text_layout`). The times are recorded, not
asserted: a loaded machine is slower.
"""

import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

from text_layout import TEXT_BOXES, text_collisions

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "figures" / "views"
FAILURES = ROOT / "build" / "browser"  # a failed run's page, not kept with the figures
pytestmark = pytest.mark.slow
# the longest a cell may run without finishing, on a loaded machine (the first cell trains a model)
CELL_LIMIT_S = 900
PRESSES = 3  # times each control is moved (and the UMAP clicked): the median is recorded
# the JavaScript errors of the page under test, and the control each came after
CONSOLE_ERRORS: list[str] = []
ERRORS_AFTER: dict[str, list[str]] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jupyter_env(home: Path) -> dict:
    """Every directory JupyterLab reads or writes state in, inside `home`: no settings or workspace
    of another session."""
    dirs = {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "JUPYTERLAB_SETTINGS_DIR": "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": "workspaces",
        "IPYTHONDIR": "ipython",
    }
    for d in dirs.values():
        (home / d).mkdir(parents=True, exist_ok=True)
    settings = home / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"checkForUpdates": False, "fetchNews": "false"})
    )
    # one thread per kernel: on a busy 2-core machine OpenMP's waiting threads slowed training
    # 40-fold
    return {
        **os.environ,
        **{k: str(home / d) for k, d in dirs.items()},
        "MPLBACKEND": "agg",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture
def jupyterlab(tmp_path, chromium):
    work = tmp_path / "lab"
    (work / "nbs").mkdir(parents=True)
    shutil.copy(ROOT / "nbs" / "11_views.ipynb", work / "nbs" / "views.ipynb")
    nbformat.write(coco_size_notebook(), work / "nbs" / "coco_size.ipynb")
    # the notebook shows screenshots by relative path (../figures/views/): give the copy the same
    # layout
    shutil.copytree(
        ROOT / "figures" / "views",
        work / "figures" / "views",
        ignore=shutil.ignore_patterns("*.html", "*.js"),
    )
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={work}",
            "--allow-root",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=jupyter_env(tmp_path / "jupyter"),
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "lab.log", "w"),
    )
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
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


NOTEBOOK_STATE = """() => {
  const cells = [...document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  const running = prompts.findIndex(p => p.includes('*'));
  const source = i => i < 0 ? ''
    : (cells[i].querySelector('.jp-InputArea-editor') || {}).textContent || '';
  return {total: cells.length, done: prompts.filter(p => /\\[\\d+\\]/.test(p)).length, running,
          source: source(running).trim().split('\\n')[0].slice(0, 100)};
}"""


def wait_for_notebook(page, cell_limit_s: float = CELL_LIMIT_S):
    """Wait until every code cell has run, as long as cells keep finishing; fail naming the cell
    that does not."""
    done, deadline = -1, time.time() + cell_limit_s
    while True:
        state = page.evaluate(NOTEBOOK_STATE)
        if state["running"] < 0 and state["total"] and state["done"] == state["total"]:
            return state
        if state["done"] != done:
            done, deadline = state["done"], time.time() + cell_limit_s  # progress: a new limit
        if time.time() > deadline:
            cell = (
                f"cell {state['running'] + 1} ({state['source']!r})"
                if state["running"] >= 0
                else "the next cell"
            )
            pytest.fail(
                f"waited {cell_limit_s:.0f} s on {cell}: "
                f"{state['done']} of {state['total']} code cells had run"
            )
        time.sleep(1)


PLOTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map((gd, i) => ({
  i, title: (gd.querySelector('.gtitle') || {}).textContent || '',
  traces: (gd.data || []).length}))"""

# the UMAP's `n` most isolated markers of different samples, in page pixels, each with its distance
# to the nearest marker of another sample: a click there can only pick that point
ISOLATED_POINTS = """([i, n]) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[i], fl = gd._fullLayout;
  const box = gd.getBoundingClientRect();
  const pts = [];
  gd._fullData.forEach(tr => {
    if (tr.type !== 'scatter' || tr.mode !== 'markers') return;
    if (tr.visible !== true || !tr.customdata) return;
    const xa = fl[tr.xaxis.replace('x', 'xaxis')], ya = fl[tr.yaxis.replace('y', 'yaxis')];
    tr.x.forEach((x, k) => pts.push({px: box.left + xa._offset + xa.d2p(x),
                                     py: box.top + ya._offset + ya.d2p(tr.y[k]),
                                     sample: tr.customdata[k]}));
  });
  for (const p of pts) {
    p.gap = Infinity;
    for (const q of pts)
      if (q !== p && q.sample !== p.sample)
        p.gap = Math.min(p.gap, Math.hypot(p.px - q.px, p.py - q.py));
  }
  const chosen = [];
  for (const p of pts.sort((a, b) => b.gap - a.gap))
    if (chosen.length < n && !chosen.some(c => c.sample === p.sample)) chosen.push(p);
  return chosen;
}"""


def isolated_points(page, umap: int, n: int = 1) -> list[dict]:
    return page.evaluate(ISOLATED_POINTS, [umap, n])


def check_projector(page, umap: int, explorer: int):
    """On the embedding view: a click lists the point's nearest neighbours, and a box selection
    becomes the explorer's 'selection'."""
    area = output_of(page, umap)
    (target,) = isolated_points(page, umap)
    page.mouse.move(target["px"], target["py"])
    page.mouse.click(target["px"], target["py"])
    opened = f"sample {target['sample']} opened in the explorer; its nearest are ringed and listed"
    area.locator(f".widget-html:has-text('{opened}')").first.wait_for(timeout=30_000)
    # the table, not only the line: the same sample may have been opened before the new map
    area.locator("th:has-text('nearest in Z:')").first.wait_for(timeout=30_000)
    assert area.locator("th:has-text('nearest in Z:')").count() == 1
    plot = page.locator(".js-plotly-plot").nth(umap)
    plot.hover()
    plot.locator(".modebar-btn[data-title='Box Select']").first.click()
    frame = plot.locator(".nsewdrag").first.bounding_box()  # the map's drawing area
    x0, y0 = frame["x"] + 0.2 * frame["width"], frame["y"] + 0.2 * frame["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 0.4 * frame["width"], y0 + 0.5 * frame["height"], steps=8)
    page.mouse.up()
    chooser = output_of(page, explorer).locator(
        ".widget-dropdown:has(label:text-is('choose')) select"
    )
    deadline = time.time() + 30
    chosen = None
    while time.time() < deadline:
        chosen = chooser.first.evaluate("s => s.options[s.selectedIndex].text")
        if chosen == "selection":
            break
        time.sleep(0.3)
    if chosen != "selection":
        status = area.locator(".widget-html").all_text_contents()[-1]
        pytest.fail(f"no selection reached the explorer ({chosen!r}); the view says {status!r}")
    # the view says so after it hands the selection to the explorer: wait for its message too
    area.locator(".widget-html:has-text('samples selected')").first.wait_for(timeout=10_000)
    page.mouse.move(0, 0)  # no hover toolbar over the title in the screenshot


def plot_index(page, predicate, what: str) -> int:
    for plot in page.evaluate(PLOTS):
        if predicate(plot["title"]):
            return plot["i"]
    pytest.fail(f"no plot shows {what}: titles {[p['title'][:60] for p in page.evaluate(PLOTS)]}")


def output_of(page, index: int):
    "The output area (controls and figures) that holds the `index`-th plot."
    return (
        page.locator(".js-plotly-plot")
        .nth(index)
        .locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')][1]")
    )


WATCH_OUTPUTS = """() => {
  window.__lastChange = window.__lastChange || new Map();
  document.querySelectorAll('.jp-OutputArea-output').forEach(area => {
    if (area.__watched) return;
    area.__watched = true;
    new MutationObserver(() => window.__lastChange.set(area, performance.now()))
      .observe(area, {subtree: true, childList: true, attributes: true, characterData: true});
  });
}"""

LAST_CHANGE = """(i) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[i];
  const area = gd.closest('.jp-OutputArea-output');
  return {last: window.__lastChange.get(area) || 0, now: performance.now()};
}"""


def response_time(
    page, index: int, action, quiet_s: float = 1.0, limit_s: float = 40, done=None, what="action"
) -> float:
    """Seconds from `action` (a key press, a click) to the last change of the output area that holds
    plot `index`: figures, controls and status line, once nothing has changed there for `quiet_s`
    (and, for a longer action, once `done()` says its result is on the page). A timing, not a
    limit."""
    start = page.evaluate("performance.now()")
    action()
    deadline = time.time() + limit_s
    while time.time() < deadline:
        seen = page.evaluate(LAST_CHANGE, index)
        settled = seen["last"] > start and seen["now"] - seen["last"] > quiet_s * 1000
        if settled and (done is None or done()):
            return (seen["last"] - start) / 1000
        time.sleep(0.1)
    FAILURES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(FAILURES / "browser_failure_unsettled.png"))
    pytest.fail(f"plot {index} did not change and settle within {limit_s} s of {what}")


def button_response(page, index: int, button: str, says: str) -> float:
    """Seconds from a click on the button `button` of the view holding plot `index` to its settled
    redraw, once its status line says `says`."""
    area = output_of(page, index)
    status = area.locator(".widget-html").last
    pressed = area.locator(f"button:has-text('{button}')").first
    return response_time(
        page, index, lambda: pressed.click(), done=lambda: says in status.text_content()
    )


def hover_then_wait(page, umap: int, target: dict, quiet_s: float = 0.5):
    """Move the pointer onto `target` and pause, as a user does before clicking, until the view
    (its hover box) has not changed for `quiet_s`: the click's time is then the click's own, not
    the hover's work still under way (about 0.14 s when clicked at once)."""
    page.mouse.move(target["px"], target["py"])
    start = page.evaluate("performance.now()")
    deadline = time.time() + 10
    while time.time() < deadline:
        seen = page.evaluate(LAST_CHANGE, umap)
        if seen["now"] - max(seen["last"], start) > quiet_s * 1000:
            return
        time.sleep(0.1)


def title_of(page, index: int) -> str:
    return page.evaluate(
        "(i) => (document.querySelectorAll('.js-plotly-plot')[i].querySelector('.gtitle') || {})"
        ".textContent || ''",
        index,
    )


def settle(page, index: int, action, quiet_s: float = 1.0, limit_s: float = 60):
    """Do `action` untimed (setting a view up for the next timing) and wait until the output area of
    plot `index` has not changed for `quiet_s`."""
    start = page.evaluate("performance.now()")
    action()
    deadline = time.time() + limit_s
    while time.time() < deadline:
        seen = page.evaluate(LAST_CHANGE, index)
        if seen["now"] - max(seen["last"], start) > quiet_s * 1000:
            return
        time.sleep(0.1)


class Controls:
    """The widgets of the output area that holds plot `index`, found by their labels, each a
    function that moves it (an action for `response_time`)."""

    def __init__(self, page, index: int):
        self.page, self.index, self.area = page, index, output_of(page, index)

    def slider(self, label: str, key: str):
        handle = self.area.locator(f".widget-slider:has(label:text-is('{label}')) .noUi-handle")

        def press():
            handle.first.focus()
            handle.first.press(key)

        return press

    def nudge(self, label: str) -> tuple:
        """A slider's (change, back): one step up and down again, or down and up where it stands
        at its top (read when the view is set up, at the change)."""
        handle = self.area.locator(f".widget-slider:has(label:text-is('{label}')) .noUi-handle")
        keys = {}

        def change():
            now, top = (
                float(handle.first.get_attribute(a)) for a in ("aria-valuenow", "aria-valuemax")
            )
            keys["there"], keys["back"] = (
                ("ArrowLeft", "ArrowRight") if now >= top else ("ArrowRight", "ArrowLeft")
            )
            self.slider(label, keys["there"])()

        return change, lambda: self.slider(label, keys["back"])()

    def can_move(self, label: str) -> bool:
        "Whether a slider has more than one value and is enabled."
        handle = self.area.locator(f".widget-slider:has(label:text-is('{label}')) .noUi-handle")
        low, top = (
            float(handle.first.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax")
        )
        disabled = self.area.locator(f".widget-slider:has(label:text-is('{label}')) [disabled]")
        return top > low and not disabled.count()

    def select(self, label: str):
        return self.area.locator(f".widget-dropdown:has(label:text-is('{label}')) select").first

    def choose(self, label: str, option: str):
        return lambda: self.select(label).select_option(label=option)

    def flip(self, label: str) -> tuple:
        """A dropdown's (change, back): to its first other option, and back to the one it showed
        (read at the change, so that it holds where `before` set the view up)."""
        shown = {}

        def change():
            shown["was"] = self.shown(label)
            other = next(o for o in self.options(label) if o != shown["was"])
            self.select(label).select_option(label=other)

        return change, lambda: self.select(label).select_option(label=shown["was"])

    def shown(self, label: str) -> str:
        "The option a dropdown shows."
        return self.select(label).evaluate("s => s.options[s.selectedIndex].text")

    def options(self, label: str) -> list[str]:
        return self.select(label).evaluate("s => [...s.options].map(o => o.text)")

    def enabled(self, label: str) -> bool:
        return not self.select(label).is_disabled()

    def tick(self, label: str):
        box = self.area.locator(f".widget-checkbox:has-text('{label}') input[type=checkbox]").first
        return lambda: box.click()

    def pick(self, label: str, options: list[str]):
        box = self.area.locator(f".widget-select-multiple:has(label:text-is('{label}')) select")
        return lambda: box.first.select_option(label=options)

    def enter(self, label: str, text: str):
        box = self.area.locator(f".widget-text:has(label:text-is('{label}')) input").first

        def type_then_enter():
            box.fill(text)
            box.press("Enter")

        return type_then_enter

    def status_ms(self) -> float:
        "What the view's status line says the kernel spent on its last update, in seconds."
        status = self.area.locator(".widget-html").filter(has_text="updated in").first
        return float(re.search(r"updated in (\d+) ms", status.text_content()).group(1)) / 1000


def timed(page, index: int, moves: dict, kernel=None, before=None, after=None) -> dict:
    """Each control of `moves` (name -> (change, back)) moved `PRESSES` times, change and back in
    turn, and left where it was: the median seconds from the move to the settled redraw in the
    browser, each move's, and the kernel's share where `kernel()` reads it. `before(name)` and
    `after(name)` set the view up for a control and back (untimed)."""
    times = {}
    for name, (change, back) in moves.items():
        if before:
            settle(page, index, lambda: before(name))
        browser, kernel_s, seen = [], [], len(CONSOLE_ERRORS)
        for i in range(PRESSES):
            move = f"{name}, move {i + 1}"
            browser.append(response_time(page, index, (change, back)[i % 2], what=move))
            if kernel:
                kernel_s.append(kernel())
        if PRESSES % 2:
            settle(page, index, back)
        if after:
            settle(page, index, lambda: after(name))
        if len(CONSOLE_ERRORS) > seen:
            ERRORS_AFTER[name] = CONSOLE_ERRORS[seen:]
        times[name] = {"browser": statistics.median(browser), "each": browser}
        if kernel:
            times[name]["kernel"] = statistics.median(kernel_s)
    return times


def explorer_timings(page, index: int) -> dict:
    """Every explorer control moved `PRESSES` times by keyboard or mouse: the median seconds from
    the move to the settled redraw in the browser (and each move's), and the kernel's share. The
    sample slider steps on (and the figure must follow it), the mask seed takes new seeds, the
    others go back and forth; a control that cannot move here (one band, one checkpoint, one
    layer) is left out."""
    area = output_of(page, index)
    area.scroll_into_view_if_needed()
    controls = Controls(page, index)
    each, kernel = [], []
    for _ in range(PRESSES):  # on to a new sample each time
        before = title_of(page, index)
        each.append(response_time(page, index, controls.slider("sample", "ArrowRight")))
        assert title_of(page, index) != before  # the figure follows the slider
        kernel.append(controls.status_ms())
    median = statistics.median
    timings = {"sample": {"browser": median(each), "each": each, "kernel": median(kernel)}}
    seeds = (controls.enter("mask seed", "7"), controls.enter("mask seed", "0"))
    moves = {
        "inner steps K": controls.nudge("inner steps"),
        "show step": controls.nudge("show step"),
        "mask ratio": controls.nudge("mask ratio"),
        "mask seed": seeds,
        "choose": (
            controls.choose("choose", "largest error"),
            controls.choose("choose", "by class"),
        ),
        "class": controls.flip("class"),
        "n-th": controls.nudge("n-th"),
        "errors on visible tokens": (
            controls.tick("errors on visible tokens"),
            controls.tick("errors on visible tokens"),
        ),
        "attention": controls.flip("attention"),
        "layer": controls.nudge("layer"),
    }
    if len(controls.options("class")) < 2:
        del moves["class"]
    if not controls.can_move("layer"):
        del moves["layer"]
    if controls.enabled("bands") and len(controls.options("bands")) >= 2:
        moves["bands"] = controls.flip("bands")
    if controls.enabled("scale"):
        moves["scale"] = controls.flip("scale")
    steps = controls.options("checkpoint")
    if controls.enabled("checkpoint") and len(steps) >= 2:
        newest, older = steps[-1], steps[-2]
        moves["checkpoint"] = (
            controls.choose("checkpoint", older),
            controls.choose("checkpoint", newest),
        )
    # the class and n-th choosers work under their choice; each ends back at "by index"; the layer
    # is timed with attention maps drawn
    setup = {"class": "by class", "n-th": "largest error"}
    attention = {}

    def before(name):
        if name in setup:
            controls.choose("choose", setup[name])()
        if name == "layer":
            attention["was"] = controls.shown("attention")
            controls.choose("attention", "encoder")()

    def after(name):
        if name in ("choose", *setup):
            controls.choose("choose", "by index")()
        if name == "layer":
            controls.choose("attention", attention["was"])()

    timings.update(timed(page, index, moves, controls.status_ms, before, after))
    return timings


def embedding_timings(page, umap: int) -> dict:
    """The embedding view's controls that redraw the map (a sample is chosen, so the k nearest
    are ringed), each moved `PRESSES` times; the projection between two maps already fitted, and
    a new minimum distance or epoch count, each of which fits a new UMAP."""
    controls = Controls(page, umap)
    output_of(page, umap).scroll_into_view_if_needed()
    moves = {
        "colour by": controls.flip("colour by"),
        "search": (controls.enter("search", "#0-100"), controls.enter("search", "")),
        "k nearest": controls.nudge("k nearest"),
        "Z (amortized)": (controls.tick("Z (amortized)"), controls.tick("Z (amortized)")),
        "Z* (adapted)": (controls.tick("Z* (adapted)"), controls.tick("Z* (adapted)")),
        "pair lines": (controls.tick("pair lines"), controls.tick("pair lines")),
        "projection (both maps fitted)": (
            controls.choose("projection", "PCA"),
            controls.choose("projection", "UMAP"),
        ),
        "min dist (a new UMAP fit)": controls.nudge("min dist"),
        "epochs (a new UMAP fit)": controls.nudge("epochs"),
    }
    return timed(page, umap, moves)


def curves_timings(page, curves: int) -> dict:
    "The training curves' smoothing and panels, each moved `PRESSES` times."
    controls = Controls(page, curves)
    output_of(page, curves).scroll_into_view_if_needed()
    panels = output_of(page, curves).locator(
        ".widget-select-multiple:has(label:text-is('panels')) select"
    )
    every = panels.first.evaluate("s => [...s.options].map(o => o.text)")
    moves = {
        "smoothing": controls.nudge("smoothing"),
        "panels": (controls.pick("panels", every[:1]), controls.pick("panels", every)),
    }
    return timed(page, curves, moves, controls.status_ms)


def run_in_lab(p, jupyterlab, notebook: str, errors: list):
    """A headless chromium with `notebook` open in JupyterLab, all its cells run; JavaScript errors
    are collected in `errors`."""
    url, token, chromium = jupyterlab
    browser = p.chromium.launch(
        executable_path=chromium,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    CONSOLE_ERRORS.clear()
    ERRORS_AFTER.clear()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: CONSOLE_ERRORS.append(m.text) if m.type == "error" else None)
    page.goto(f"{url}/lab/tree/nbs/{notebook}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    try:
        # the kernel is up, no dialog
        page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=120_000)
        page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
        page.click("li[data-command='runmenu:run-all']")
        wait_for_notebook(page)
    except BaseException:
        FAILURES.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(FAILURES / f"browser_failure_{Path(notebook).stem}.png"))
        raise
    return browser, page


def test_views_notebook_runs_and_responds_in_jupyterlab(jupyterlab):
    from playwright.sync_api import sync_playwright

    url, token, chromium = jupyterlab
    with pytest.raises(urllib.error.HTTPError) as refused:  # the server answers only to the token
        urllib.request.urlopen(f"{url}/api/contents", timeout=5)
    assert refused.value.code == 403
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors, timings = [], {}
    with sync_playwright() as p:
        browser, page = run_in_lab(p, jupyterlab, "views.ipynb", errors)
        titles = [plot["title"] for plot in page.evaluate(PLOTS)]
        # an explorer's own figure (not the MAE beside it) reports the error from Z → after K steps
        explorers = [
            i
            for i, title in enumerate(titles)
            if title.startswith("test sample") and " → " in title
        ]
        # digits with MAE beside it, sensor signals, DNA, image + caption
        assert len(explorers) == 4, titles
        # the multimodal one, per modality
        assert "whole sequence" in titles[explorers[3]], titles[explorers[3]]
        digits = explorers[0]
        page.evaluate(WATCH_OUTPUTS)
        for name, index in zip(
            (
                "image (digits, MAE beside it)",
                "sensor signals (BasicMotions)",
                "DNA (splice)",
                "image + caption (captioned digits)",
            ),
            explorers,
        ):
            timings[f"explorer, {name}"] = explorer_timings(page, index)
        umap = plot_index(page, lambda t: "UMAP (" in t, "the UMAP")
        sweep = plot_index(page, lambda t: "against the mask ratio" in t, "the sweep")
        curves = plot_index(page, lambda t: t.startswith("Training curves"), "the training curves")
        printed = (
            page.locator(".jp-OutputArea-output")
            .filter(has_text="first view (PCA")
            .first.text_content()
        )
        first_view = re.search(r"drawn in ([\d.]+) s", printed)
        assert first_view, printed
        timings["UMAP first view in a fresh kernel (s)"] = float(first_view.group(1))
        page.locator(".js-plotly-plot").nth(umap).scroll_into_view_if_needed()
        clicks = []
        # not the sample the explorer shows: a click on it would change nothing to time
        shown = re.match(r"test sample (\d+),", title_of(page, digits))
        targets = [
            t
            for t in isolated_points(page, umap, PRESSES + 1)
            if not shown or t["sample"] != int(shown.group(1))
        ]
        for target in targets[:PRESSES]:
            assert target["gap"] > 4, target
            opened = f"test sample {target['sample']},"
            hover_then_wait(page, umap, target)
            clicks.append(
                response_time(
                    page,
                    digits,
                    lambda: page.mouse.click(target["px"], target["py"]),
                    done=lambda: title_of(page, digits).startswith(opened),
                )
            )
            assert title_of(page, digits).startswith(opened), (title_of(page, digits), target)
        timings["UMAP click to redrawn explorer (s)"] = statistics.median(clicks)
        timings["UMAP click to redrawn explorer, each (s)"] = clicks
        seed_box = (
            output_of(page, umap).locator(".widget-text:has(label:text-is('seed')) input").first
        )
        seed_box.fill("1")
        seed_box.press("Enter")
        timings["UMAP of a new seed, compute to redraw (s)"] = button_response(
            page, umap, "compute", "samples embedded and drawn"
        )
        assert "UMAP (" in title_of(page, umap), title_of(page, umap)
        check_projector(page, umap, digits)
        timings["embedding view"] = embedding_timings(page, umap)
        timings["training curves"] = curves_timings(page, curves)
        output_of(page, sweep).scroll_into_view_if_needed()
        timings["mask ratio sweep: run, its points cached (s)"] = button_response(
            page, sweep, "run", " points in "
        )
        # tall enough for a whole view in one picture
        page.set_viewport_size({"width": 1400, "height": 2400})
        shots = {
            "reconstruction_explorer": explorers[0],
            "sensor_explorer": explorers[1],
            "dna_explorer": explorers[2],
            "multimodal_explorer": explorers[3],
            "mask_ratio_sweep": sweep,
            "training_curves": curves,
            "latent_umap": umap,
        }
        collisions = []
        for name, index in shots.items():
            area = output_of(page, index)
            area.scroll_into_view_if_needed()
            area.screenshot(path=str(SHOTS / f"browser_{name}.png"))
            boxes = page.evaluate(TEXT_BOXES, area.element_handle())
            collisions += [f"{name}: {line}" for line in text_collisions(boxes)]
        page.screenshot(path=str(SHOTS / "browser_notebook.png"))
        browser.close()
    rounded = json.loads(json.dumps(timings), parse_float=lambda s: round(float(s), 3))
    (SHOTS / "browser_timings.json").write_text(json.dumps(rounded, indent=1) + "\n")
    print(timings)
    assert not errors, (errors, "after the controls:", ERRORS_AFTER)
    assert not collisions, "\n".join(collisions)  # no text runs into another or off its plot


# a sample of COCO's size: a 224×224 RGB image (16-pixel patches) and a caption of 32 word tokens
COCO_SIZE_CELLS = [
    """import numpy as np
import torch
from metamae_lab.config import preset_config
from metamae_lab.data import dataset_from_parts
from metamae_lab.model import MetaMAE
from metamae_lab.views import ReconstructionExplorer

rng = np.random.default_rng(0)
n, side = 24, 224
yy, xx = np.mgrid[0:side, 0:side] / side
images = np.stack([  # smooth scenes: a gradient and a few soft blobs per channel
    np.stack([
        c * xx + (1 - c) * yy
        + sum(np.exp(-((xx - a) ** 2 + (yy - b) ** 2) / w) for a, b, w in rng.random((3, 3)) * 0.2)
        for c in rng.random(3)
    ])
    for _ in range(n)
]).astype(np.float32)
words = ["<pad>", "a", "man", "riding", "motorcycle", "next", "to", "giraffe", "near",
         "refrigerator", "kitchen", "with", "two", "umbrellas", "skateboarding"]
captions = rng.integers(1, len(words), (n, 32))
captions[::3, 20:] = 0  # shorter captions, padded
data = dataset_from_parts(
    {"image": images, "caption": captions}, np.arange(n) % 3, {"image": 16}, {"caption": 0},
    {"caption": len(words)}, "coco_size", test_fraction=0.5, symbols=words,
)
torch.manual_seed(0)
model = MetaMAE(data.spec, preset_config("tiny", mask_ratio=0.75))""",
    "explorer = ReconstructionExplorer(model, data)\nexplorer.bands.value = (0, 1, 2)\nexplorer",
]


# the texts of a figure's notes (subplot titles among them) drawn over one of its images
NOTES_ON_IMAGES = """(i) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[i];
  const images = [...gd.querySelectorAll('g.imagelayer image')].map(e => e.getBoundingClientRect());
  const over = (a, b) =>
    a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  return [...gd.querySelectorAll('g.annotation')]
    .filter(n => images.some(b => over(n.getBoundingClientRect(), b)))
    .map(n => n.textContent);
}"""


def coco_size_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in COCO_SIZE_CELLS]
    return nb


def test_a_coco_size_sample_responds_in_jupyterlab(jupyterlab):
    """The explorer on a 224×224 image with a 32-word caption: every control redraws (times
    recorded beside the others), no JavaScript error (the browser's memory is not exhausted), no
    text collides, and a screenshot is kept."""
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    errors = []
    with sync_playwright() as p:
        browser, page = run_in_lab(p, jupyterlab, "coco_size.ipynb", errors)
        titles = [plot["title"] for plot in page.evaluate(PLOTS)]
        (explorer,) = [
            i for i, t in enumerate(titles) if t.startswith("test sample") and " → " in t
        ]
        page.evaluate(WATCH_OUTPUTS)
        timings = explorer_timings(page, explorer)
        page.set_viewport_size({"width": 1400, "height": 3400})  # the whole view in one picture
        area = output_of(page, explorer)
        area.scroll_into_view_if_needed()
        area.screenshot(path=str(SHOTS / "browser_coco_size_explorer.png"))
        collisions = text_collisions(page.evaluate(TEXT_BOXES, area.element_handle()))
        # after the controls moved (the sample among them, a shorter caption): no title on an image
        on_images = page.evaluate(NOTES_ON_IMAGES, explorer)
        sizes = page.evaluate(
            """(i) => [...document.querySelectorAll('.js-plotly-plot')[i]
                .querySelectorAll('g.imagelayer image')]
                .map(e => Math.round(e.getBoundingClientRect().width))""",
            explorer,
        )
        browser.close()
    path = SHOTS / "browser_timings.json"
    recorded = json.loads(path.read_text()) if path.exists() else {}
    rounded = json.loads(json.dumps(timings), parse_float=lambda s: round(float(s), 3))
    recorded["explorer, image + caption at COCO size (224×224 + 32 words)"] = rounded
    path.write_text(json.dumps(recorded, indent=1) + "\n")
    print(timings, sizes)
    assert not errors, errors
    assert not collisions, "\n".join(collisions)
    # four panels, the masked input's stripes and the two error maps' underlays, each at COCO's
    # 224 px or more on screen
    assert len(sizes) == 7 and min(sizes) >= 224, sizes
    assert not on_images, on_images
