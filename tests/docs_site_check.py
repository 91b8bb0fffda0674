"""Checks of the built documentation site in _docs/ (run after `make docs`: `make docs-check`).

Not collected by the ordinary test run (the site must be built first). It checks every HTML page for
internal links and resources that do not resolve and for anything fetched from the network, then
opens the index, an API page and the experiment reports in headless Debian chromium, served from
127.0.0.1, and checks that they render with their figures loaded and no console errors. Screenshots
go to figures/docs/.
"""

import configparser
import functools
import http.server
import os
import re
import shutil
import threading
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
        ("guides/18_own_data.html", "linear probe on"),
        ("guides/11_views.html", "last update took"),
        ("guides/17_faults.html", "all refused as expected"),
    ):
        assert printed in (SITE / guide).read_text(), f"{guide} lacks the output {printed!r}"


def test_the_store_page_gives_the_measured_streaming_memory():
    assert "116 MB more" in (SITE / "api/19_store.html").read_text()


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
