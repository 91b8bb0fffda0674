"""Checks of the built documentation site in _docs/ (run after `make docs`: `make docs-check`).

Not collected by the ordinary test run (the site must be built first). It checks every HTML page for
internal links and resources that do not resolve and for anything fetched from the network, then
opens the index, an API page and the experiment reports in headless Debian chromium, served from
127.0.0.1, and checks that they render with their figures loaded and no console errors; that the
search finds pages when the site is opened from disk; that code wraps between its tokens; and that
the pages show each notebook's summary in full, docstrings as written and examples' outputs.
Screenshots go to figures/docs/.
"""

import configparser
import functools
import http.server
import inspect
import json
import os
import re
import shutil
import threading
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("DOCS_SITE", ROOT / "_docs"))
SHOTS = ROOT / "figures" / "docs"
CHROMIUM = shutil.which("chromium")
EXPERIMENTS = ("quickstart", "mask_ratio_sweep", "ablation", "evidence", "recipe_differences")


class Refs(HTMLParser):
    "The link targets, resource URLs and element ids of one page."

    def __init__(self):
        super().__init__()
        self.links, self.resources, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script", "iframe") and attrs.get("src"):
            self.resources.append(attrs["src"])
        if tag == "link" and attrs.get("href") and "stylesheet" in (attrs.get("rel") or ""):
            self.resources.append(attrs["href"])


class Text(HTMLParser):
    "The text of a page, scripts and styles left out, and of its first blockquote (the summary)."

    def __init__(self):
        super().__init__()
        self.hidden, self.quotes, self.parts, self.quoted = 0, 0, [], None
        self.past_first_quote = False

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")
        if tag == "blockquote":
            self.quotes += 1
            self.quoted = [] if self.quoted is None else self.quoted

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style")
        if tag == "blockquote":
            self.quotes -= 1
            self.past_first_quote = self.quotes == 0

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)
            if self.quotes and not self.past_first_quote:
                self.quoted.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())

    @property
    def summary(self) -> str:
        return " ".join("".join(self.quoted or []).split())


@functools.cache
def page_text(page: Path) -> Text:
    text = Text()
    text.feed(page.read_text(errors="replace"))
    return text


@functools.cache
def parsed(page: Path) -> Refs:
    refs = Refs()
    refs.feed(page.read_text(errors="replace"))
    return refs


def pages() -> list[Path]:
    return sorted(SITE.rglob("*.html"))


def test_site_was_built():
    assert (SITE / "index.html").is_file(), f"no site in {SITE}: run `make docs` first"
    for page in [
        "api/03_model.html",
        "api/12_experiments.html",
        "guides/11_views.html",
        "guides/18_own_data.html",
        "guides/17_faults.html",
        "api/19_store.html",
        "api/20_convert.html",
        "api/30_benchmarks.html",
        "benchmark.html",
        *(
            f"api/{n}.html"
            for n in (
                "21_pamap2",
                "22_higgs",
                "23_wafer_maps",
                "24_imagenet32",
                "25_librispeech",
                "26_genomics",
                "27_pfam",
                "28_mscoco",
                "29_vqa",
            )
        ),
        *(f"experiments/{e}.html" for e in EXPERIMENTS),
    ]:
        assert (SITE / page).is_file(), f"{page} is missing from the site"


def resolve(page: Path, url: str) -> tuple[Path, str] | None:
    """The file and fragment an internal URL on `page` points to; None for external, mailto or
    javascript URLs."""
    parts = urlsplit(url)
    if parts.scheme or url.startswith("//"):
        return None
    # the 404 page links from the site root
    base = SITE if parts.path.startswith("/") else page.parent
    target = page if not parts.path else base / unquote(parts.path).lstrip("/")
    if parts.path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target.resolve(), parts.fragment


def test_internal_links_resolve():
    broken = []
    for page in pages():
        for url in parsed(page).links + parsed(page).resources:
            found = resolve(page, url)
            if found is None:
                continue
            target, fragment = found
            if not target.is_file():
                broken.append(f"{page.relative_to(SITE)}: {url} (no such file)")
            elif (
                fragment
                and target.suffix == ".html"
                and unquote(fragment) not in parsed(target).ids
            ):
                broken.append(f"{page.relative_to(SITE)}: {url} (no element with id {fragment!r})")
    assert not broken, f"{len(broken)} broken internal link(s):\n" + "\n".join(broken[:40])


def test_api_links_stay_on_this_site():
    """nbdev links symbols to a published site whose layout is not this one's: every such link
    points here instead."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    published = (
        f"{cfg['DEFAULT']['doc_host'].rstrip('/')}/{cfg['DEFAULT']['doc_baseurl'].strip('/')}/"
    )
    off_site = [
        f"{p.relative_to(SITE)}: {url}"
        for p in pages()
        for url in parsed(p).links
        if url.startswith(published)
    ]
    assert not off_site, f"{len(off_site)} links to {published}:\n" + "\n".join(off_site[:20])
    to_symbols = [
        url
        for p in pages()
        for url in parsed(p).links
        if re.match(r"(\.\./)*(api/)?\d\d_\w+\.html#\w", url)
    ]
    # they resolve: see above
    assert len(to_symbols) >= 50, f"only {len(to_symbols)} links to a symbol's heading"


def test_guides_show_what_their_cells_printed():
    for guide, printed in (
        ("guides/18_own_data.html", "test accuracy on"),
        ("guides/11_views.html", "last update took"),
        ("guides/17_faults.html", "all refused as expected"),
    ):
        assert printed in (SITE / guide).read_text(), f"{guide} lacks the output {printed!r}"


def test_the_store_page_gives_the_measured_streaming_memory():
    assert "116 MB more" in (SITE / "api/19_store.html").read_text()


def test_benchmark_page_holds_what_was_measured_and_how():
    """The README's benchmark section as a page: the profile, ablation and target tables rendered
    as tables (not as text, which a table indented under a list item becomes when its indent is too
    small for Python-Markdown), with the machine and the commands that reproduce them."""
    page = SITE / "benchmark.html"
    html, text = page.read_text(), page_text(page).text
    assert html.count("<table") >= 5, "the benchmark page should render its tables"
    assert "|---|" not in text, "a table of the benchmark page was left as text"
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Benchmark\n") :].split("\n## ")[1]
    items = sum(line.startswith("- ") for line in section.splitlines())
    assert html.count("<li>") >= items, "a list item of the README's section was left as text"
    for needed in (
        "Intel Xeon",  # the machine
        "metamae-lab bench --ablation --changes",  # how the target rows are reproduced
        "dropout RNG",  # the profile's categories
        "compiled forward",  # an ablation row
        "target 3×",  # the targets table
    ):
        assert needed in text, f"the benchmark page lacks {needed!r}"


def notebook_summary(nb: Path) -> tuple[str, str]:
    """The `>` summary of a notebook's title cell, as the text a reader sees, and the text of the
    first paragraph after it (empty if none)."""
    cells = json.loads(nb.read_text())["cells"]
    source = next(
        "".join(c["source"])
        for c in cells
        if c["cell_type"] == "markdown" and re.search(r"^# ", "".join(c["source"]), re.M)
    )
    lines = source.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(">"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    summary = " ".join(line.lstrip("> ") for line in lines[start:end])
    after = " ".join(lines[end:]).strip()
    # Markdown to the text it shows: links keep their text, code spans and escapes their characters
    as_text = [(r"\[([^\]]*)\]\([^)]*\)", r"\1"), (r"`([^`]*)`", r"\1"), (r"\\(.)", r"\1")]
    for pattern, repl in as_text:
        summary, after = re.sub(pattern, repl, summary), re.sub(pattern, repl, after)
    return " ".join(summary.split()), " ".join(after.split()[:12])


# the browser test's screenshot of each view, on each modality it runs
VIEW_SCREENSHOTS = (
    "reconstruction_explorer",
    "sensor_explorer",
    "dna_explorer",
    "multimodal_explorer",
    "coco_size_explorer",
    "mask_ratio_sweep",
    "training_curves",
    "latent_umap",
)


def test_the_views_guide_shows_every_view_as_the_browser_test_saw_it():
    """The views guide shows the browser test's screenshot of every view (the explorer on images,
    sensor signals, DNA, image + caption and a COCO-size sample, the sweep, the training curves and
    the embedding view), each the file the test saved, not an older copy."""
    page = SITE / "guides/11_views.html"
    sources = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())
    for name in VIEW_SCREENSHOTS:
        shown = [src for src in sources if src.endswith(f"/browser_{name}.png")]
        assert shown, f"the views guide does not show browser_{name}.png"
        target, _ = resolve(page, shown[0])
        saved = ROOT / "figures" / "views" / f"browser_{name}.png"
        assert target.is_file(), f"{shown[0]} is missing from the site"
        assert target.read_bytes() == saved.read_bytes(), f"the site has an older {saved.name}"


def test_pages_show_each_notebook_summary_in_full():
    """nbdev keeps only the first line of a summary that wraps, and drops the rest of the title
    cell: the pages show both."""
    checked = 0
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        page = next(iter(SITE.glob(f"*/{nb.stem}.html")), SITE / f"{nb.stem}.html")
        summary, after = notebook_summary(nb)
        shown = page_text(page)
        assert shown.summary == summary, (
            f"{page.relative_to(SITE)} shows the summary {shown.summary!r}"
        )
        assert after in shown.text, f"{page.relative_to(SITE)} lacks the title cell's {after!r}"
        checked += 1
    assert checked >= 40


def builtin_docstrings() -> set[str]:
    'What Python\'s own slots say ("Call self as a function."), which nothing documented here says.'
    found = set()
    for kind in (object, type, types.FunctionType):
        for name in dir(kind):
            attr = getattr(kind, name, None)
            if callable(attr) and not isinstance(attr, type) and inspect.getdoc(attr):
                found.add(" ".join(inspect.getdoc(attr).split()))
    return found


def test_docstrings_show_as_written():
    for page, written in (
        (
            "guides/11_views.html",
            "Reconstruction loss from Z and Z* (and optionally probe accuracy)",
        ),
        (
            "api/09_analysis.html",
            "Masked-token loss from Z (z), from Z* (z_adapted) and of the input-blind guess",
        ),
        ("api/03_model.html", "Mean of Z*'s patch tokens after the inner loop"),
    ):
        assert written in page_text(SITE / page).text, f"{page} lacks {written!r}"
    # LatentUMAP.redraw (of its base UMAPDrawing), once documented as "Call self as a function."
    assert "Draw the current map (PCA while another projection fits)" in (
        page_text(SITE / "guides/11_views.html").text
    )
    borrowed = builtin_docstrings()
    assert "Call self as a function." in borrowed and "Return repr(self)." in borrowed
    shown = [
        f"{p.relative_to(SITE)}: {doc!r}"
        for p in pages()
        for doc in borrowed
        if doc in page_text(p).text
    ]
    assert not shown, "docstrings of Python's builtins on the pages:\n" + "\n".join(shown)


def test_api_pages_show_example_outputs():
    text = page_text(SITE / "api/30_benchmarks.html").text
    assert "torchrun --standalone --nproc_per_node 8 -m metamae_lab.cli pretrain" in text, (
        "the benchmarks page lacks the printed command"
    )


def test_nothing_is_fetched_from_the_network():
    remote = [
        f"{p.relative_to(SITE)}: {url}"
        for p in pages()
        for url in parsed(p).resources
        if urlsplit(url).scheme in ("http", "https") or url.startswith("//")
    ]
    assert not remote, "pages load resources from the network:\n" + "\n".join(remote[:20])


def test_api_pages_have_rendered_signatures():
    text = (SITE / "api/03_model.html").read_text()
    # show_doc rendered the class and its signature
    assert "MetaMAE" in text and "inner_steps" in text
    assert "#| " not in text  # nbdev directives are stripped
    text = (SITE / "api/12_experiments.html").read_text()
    assert "run_experiment" in text and "resolve_parameters" in text


def test_experiment_reports_hold_their_tables():
    text = (SITE / "experiments/ablation.html").read_text()
    for variant in (
        "MAE",
        "+ inner loop (first order)",
        "+ second order",
        "+ task contrastive",
        "K=2",
        "K=3",
        "s_ratio=0",
    ):
        assert variant in text, f"the ablation report lacks the row {variant!r}"
    assert "<table" in text and "±" in text
    text = (SITE / "experiments/mask_ratio_sweep.html").read_text()
    assert "<table" in text and "mask ratio" in text


def test_fault_report_holds_its_tables():
    text = (SITE / "guides/17_faults.html").read_text()
    assert text.count("<table") >= 3, (
        "the fault page needs the bad-input table, the fault report and the OS faults"
    )
    for row in (
        "SIGKILL during training",
        "a crafted pickle",
        "non-finite losses in a row",
        "a long run",
        "metamae-lab experiment",
        "checkpoint of another preset",
        "Ctrl-C or SIGTERM at a random step",
        "the disk fills during a checkpoint write",
        "test_full_and_closed_standard_output",
    ):
        assert row in text, f"the fault report lacks the row {row!r}"
    assert "**no**" not in text and ">no<" not in text  # every tried input ended as expected


@pytest.fixture(scope="module")
def server():
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("the docs check needs Debian chromium (make setup installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.mark.parametrize(
    "page_path,heading",
    [
        ("index.html", "metamae_lab"),
        ("benchmark.html", "Benchmark"),
        ("api/03_model.html", "The model"),
        ("experiments/ablation.html", "Ablation"),
        ("experiments/quickstart.html", "Quickstart"),
        ("experiments/mask_ratio_sweep.html", "Mask-ratio sweep"),
        ("guides/18_own_data.html", "Tutorial: your own data"),
        ("guides/11_views.html", "Views"),
    ],
)
def test_page_renders_in_chromium(server, browser, page_path, heading):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, failed = [], []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.goto(f"{server}/{page_path}", wait_until="load")
    page.wait_for_load_state("networkidle")
    assert heading in page.locator("h1").first.inner_text()
    images = page.eval_on_selector_all(
        "article img",
        "els => els.map(e => [e.getAttribute('src').slice(0, 80), "
        "e.complete && e.naturalWidth > 0])",
    )
    broken = [src for src, ok in images if not ok]
    assert not broken, f"{page_path}: images that did not load: {broken}"
    if page_path.startswith(("experiments/", "guides/11")) or page_path == "index.html":
        assert images, f"{page_path} shows no figure"
    assert not failed, f"{page_path}: failed requests {failed}"
    cut = page.eval_on_selector_all(
        "article pre",
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.textContent.slice(0, 60))",
    )
    assert not cut, f"{page_path}: code cut off at the right edge: {cut[:3]}"
    assert not errors, f"{page_path}: console errors {errors}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=str(SHOTS / f"{re.sub(r'[^a-z0-9]+', '_', page_path.removesuffix('.html'))}.png"),
        full_page=False,
    )
    page.close()


def test_search_works_from_disk(browser):
    """Opened from file://, where a Web Worker cannot start and the index cannot be fetched, the
    search still answers."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, remote = [], []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: req.url.startswith("file:") or remote.append(req.url))
    page.goto((SITE / "index.html").resolve().as_uri(), wait_until="load")
    page.locator(".md-search__input").click()
    page.keyboard.type("probe_run", delay=20)
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=20_000)
    links = page.eval_on_selector_all(
        ".md-search-result__link", "els => els.map(e => e.getAttribute('href'))"
    )
    assert any("api/08_probe.html" in link for link in links), f"results: {links}"
    assert "matching document" in page.locator(".md-search-result__meta").inner_text()
    assert not errors, f"console errors {errors}"
    assert not remote, f"requests off the disk: {remote}"
    page.screenshot(path=str(SHOTS / "search_from_disk.png"), full_page=False)
    page.close()


# The code tokens (runs without a space) of the page's <pre> blocks that lie on more than one line,
# but for those longer than the site keeps on one line (40 characters), and how many times a line of
# code wraps (a token below the one before it on the same line).
SPLIT_TOKENS = """() => {
  const split = [];
  let wraps = 0;
  for (const pre of document.querySelectorAll("article pre, article :not(pre) > code")) {
    const nodes = [];
    let text = "";
    const walk = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    while (walk.nextNode()) {
      nodes.push([walk.currentNode, text.length]);
      text += walk.currentNode.data;
    }
    const at = (i) => {
      let k = nodes.length - 1;
      while (nodes[k][1] > i) k--;
      return [nodes[k][0], i - nodes[k][1]];
    };
    let before = null;
    for (const m of text.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(...at(m.index));
      range.setEnd(...at(m.index + m[0].length));
      const rows = [...range.getClientRects()].filter((r) => r.width > 0).map((r) => r.bottom);
      if (!rows.length) continue;
      const lines = new Set(rows.map(Math.round)).size;
      if (lines > 1 && m[0].length <= 40) split.push(m[0]);
      const sameLine = before && !text.slice(before.end, m.index).includes("\\n");
      if (sameLine && rows[0] > before.bottom + 2) wraps++;
      before = { end: m.index + m[0].length, bottom: Math.max(...rows) };
    }
  }
  return { split, wraps };
}"""


@pytest.mark.parametrize("width", [1280, 900])
def test_code_wraps_between_tokens(server, browser, width):
    """Long code lines wrap, at spaces: "--batch-size" or "kwargs:VAR_KEYWORD" is not cut over two
    lines, in a code block or in code within the text."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    wraps = 0
    for path in (
        "api/13_cli.html",
        "api/16_bench.html",
        "guides/18_own_data.html",
        "benchmark.html",
    ):
        page.goto(f"{server}/{path}", wait_until="load")
        found = page.evaluate(SPLIT_TOKENS)
        assert not found["split"], f"{path} at {width} px splits the tokens {found['split'][:10]}"
        wraps += found["wraps"]
    assert wraps >= 5, f"only {wraps} code lines wrap at {width} px: nothing was tested"
    page.close()
