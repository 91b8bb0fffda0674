"""Build the documentation site into _docs/ without Quarto: nbdev's processed notebooks, rendered by
mkdocs-material.

.venv/bin/python tools/build_docs.py          # or: make docs

1. The guides and the API notebooks (but those of UNEXECUTED_API) are run top to bottom, each in a
process of its own (an API notebook without its slow cells and within EXECUTE_TIMEOUT; one that
fails or runs out of time keeps a page without outputs, and the log says so), so that their pages
show what each cell printed.
2. nbdev's processors (those of `nbdev_proc_nbs`) run over nbs/, or the executed copies, into
_proc/: show_doc cells gain their rendered signatures and docstrings, hidden cells go, the title
and description move into front matter.
3. The pages are assembled in _docs_build/pages/: the index, the README's benchmark section (what
was measured, with the commands), the library notebooks as the API reference, the views notebook
and the tutorial, and the executed record of every experiment run under figures/ as the
experiment reports, with the PNG figures beside them. Quarto-only syntax is
turned into what mkdocs-jupyter renders, show_doc's docstrings are shown as written, and links are
rewritten to where the pages land.
4. `mkdocs build` (mkdocs-material with mkdocs-jupyter, notebooks not re-executed) writes the site
to _docs/, with a search that also works from file://, and nbdev's links to documented symbols are
pointed at the built pages.

Where Quarto is installed, `nbdev_docs` still builds nbdev's own site from the same notebooks.
"""

from __future__ import annotations

import argparse
import configparser
import functools
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# every other library notebook is API reference
GUIDES = {"00b_add_a_modality", "11_views", "18_own_data", "17_faults"}
# The API notebooks are run for their pages, but for these, whose examples train models (half a
# minute to several on two cores): their pages show the code, which runs in the tests.
UNEXECUTED_API = {"07_train", "07a_features", "08_probe", "16_bench"}
EXECUTE_TIMEOUT = 120  # seconds an API notebook may run before its page goes without outputs
BENCHMARK_PAGE = "benchmark.md"
SECTION_TITLES = {"api": "API reference", "guides": "Guides", "experiments": "Experiments"}
QUARTO_ATTRIBUTES = re.compile(r"(\]\([^)\s]*\))\{[^}]*\}")  # [text](url){target="_blank" ...}
NOTEBOOK_LINK = re.compile(r"\]\((?!https?:)([^)\s#]+\.ipynb)(#[^)\s]*)?\)")
EXPERIMENT_LINK = re.compile(r"\[([^\]]*)\]\((?:\.\./)*experiments/([\w-]+)\.ipynb\)")
# a wider page, and code that wraps at spaces instead of hiding its end behind a scroll bar (lines
# run to 120 characters); a word is broken only when it is wider than the page (mkdocs-jupyter's
# own style breaks a rendered Markdown output's code anywhere)
WRAP_CSS = """.md-grid { max-width: 1600px; }
.jupyter-wrapper pre, .md-typeset pre > code {
  white-space: pre-wrap !important; overflow-wrap: break-word !important;
  word-break: normal !important;
}
.md-typeset .nobreak { white-space: nowrap; }
"""
# Browsers also break a line after a hyphen or a slash, which splits options and paths over two
# lines ("--batch-" / "size"): such a code token (the syntax highlighting may cut it into several
# elements), in a code block or in code within the text, is kept on one line, unless it is longer
# than NOBREAK_MAX.
NOBREAK_MAX = 40
CODE_ELEMENTS = "article pre, article :not(pre) > code"
# the settings as constants of the script's own block (it may run again on a page)
NOBREAK_SETTINGS = f"const CODE = {json.dumps(CODE_ELEMENTS)}, NOBREAK_MAX = {NOBREAK_MAX};"
NOBREAK_JS = (
    "{\n"
    + NOBREAK_SETTINGS
    + """
document.querySelectorAll(CODE).forEach((pre) => {
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
  const tokens = [...text.matchAll(/\\S*[-/]\\S*/g)];
  const short = tokens.filter((m) => m[0].length <= NOBREAK_MAX);
  // from the last token back: what is split and moved lies after the tokens still to do
  for (const m of short.reverse()) {
    const range = document.createRange();
    range.setStart(...at(m.index));
    range.setEnd(...at(m.index + m[0].length));
    const span = document.createElement("span");
    span.className = "nobreak";
    span.appendChild(range.extractContents());
    range.insertNode(span);
  }
});
}
"""
)
# Material's search runs in a Web Worker, which a page opened from file:// cannot start. There the
# worker's script runs in a hidden iframe of the page's own origin that takes the worker's place.
# The offline plugin adds a shim fetched from unpkg.com unless a polyfill named iframe-worker is
# configured: this one is, and it is local.
WORKER_SHIM = "iframe-worker.js"
WORKER_SHIM_JS = """(() => {
  if (location.protocol !== "file:") return;
  const load = (scope, src) =>
    new Promise((resolve, reject) => {
      const script = scope.document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`cannot load ${src}`));
      scope.document.head.appendChild(script);
    });
  class FrameWorker extends EventTarget {
    constructor(url) {
      super();
      const src = new URL(url, location.href).href;
      const frame = document.createElement("iframe");
      frame.hidden = true;
      (document.body || document.documentElement).appendChild(frame);
      const scope = frame.contentWindow;
      this.frame = frame;
      this.pending = [];
      // what the worker posts arrives here as a message event, later, as from a real worker
      scope.postMessage = (data) =>
        setTimeout(() => this.dispatchEvent(new MessageEvent("message", { data })));
      scope.importScripts = (...urls) =>
        Promise.all(urls.map((u) => load(scope, new URL(u, src).href)));
      load(scope, src).then(() => {
        this.scope = scope;
        this.pending.splice(0).forEach((data) => this.postMessage(data));
      });
    }
    postMessage(data) {
      if (!this.scope) return void this.pending.push(data);
      const event = new this.scope.MessageEvent("message", { data });
      setTimeout(() => this.scope.dispatchEvent(event));
    }
    terminate() {
      this.frame.remove();
    }
  }
  window.Worker = FrameWorker;
})();
"""
FIGURES_REF = re.compile(r"(\]\(|src=\")((?:\.\./)+)figures/")


def source_text(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def page_for(stem: str) -> str:
    "Where a library notebook's page goes, relative to the pages folder."
    if stem == "index":
        return "index.ipynb"
    return f"{'guides' if stem in GUIDES else 'api'}/{stem}.ipynb"


def rewrite_links(text: str, depth: int, pages: dict[str, str]) -> str:
    """Links written for nbs/ (one folder below the root) rewritten for a page `depth` folders below
    the site root."""
    up = "../" * depth
    text = FIGURES_REF.sub(lambda m: f"{m[1]}{up}figures/", text)

    def notebook(m):
        stem = Path(m[1]).stem
        if stem not in pages:
            return m[0]
        return f"]({up}{Path(pages[stem]).with_suffix('.html').as_posix()}{m[2] or ''})"

    def unreported(m):
        # an experiment with no finished run under figures/ has no page yet: its name stays as text
        return m[1] if m[2] not in pages and m[2] in experiment_notebooks() else m[0]

    text = EXPERIMENT_LINK.sub(unreported, text)
    text = NOTEBOOK_LINK.sub(notebook, text)
    return QUARTO_ATTRIBUTES.sub(r"\1", text)


@functools.cache
def experiment_notebooks() -> frozenset[str]:
    return frozenset(p.stem for p in (ROOT / "nbs" / "experiments").glob("*.ipynb"))


def title_cell(nb: dict) -> str | None:
    """The Markdown cell that nbdev turns into front matter (the first with a `# Title`), as
    written: nbdev keeps only the first line of a `>` summary and drops the rest of the cell."""
    for cell in nb["cells"]:
        text = source_text(cell)
        if cell["cell_type"] == "markdown" and re.search(r"^#\s+\S", text, re.MULTILINE):
            return text
    return None


@functools.cache
def builtin_docstrings() -> frozenset[str]:
    """The docstrings of Python's own slots ("Call self as a function.", "Initialize self. ..."),
    which fastcore shows for a function or class that has none of its own."""
    found = set()
    for kind in (object, type, types.FunctionType, types.MethodType):
        for name in dir(kind):
            attr = getattr(kind, name, None)  # type lists __abstractmethods__ and lacks it
            if callable(attr) and not isinstance(attr, type) and inspect.getdoc(attr):
                found.add(" ".join(inspect.getdoc(attr).split()))
    return frozenset(found)


# a code span, a link's target or an attribute block: Markdown whose characters are not text
MARKDOWN_LITERAL = re.compile(r"(`+)[\s\S]*?\1|\]\([^)]*\)|\{[^}]*\}")


def as_written(text: str) -> str:
    "`text` with the characters that Markdown would read as emphasis or HTML escaped."
    parts, last = [], 0
    for m in MARKDOWN_LITERAL.finditer(text):
        parts += [re.sub(r"([*_<])", r"\\\1", text[last : m.start()]), m[0]]
        last = m.end()
    return "".join(parts) + re.sub(r"([*_<])", r"\\\1", text[last:])


def show_doc_markdown(md: str) -> str:
    """show_doc's Markdown with its docstring shown as written. The docstring is what follows the
    signature's code block, its first line in italics: "Z and Z* (and ...)" would lose its `*` to
    emphasis. A docstring borrowed from a builtin for an undocumented symbol is left out."""
    start = md.find("```python")
    end = md.find("\n```", start + 1) if start >= 0 else -1
    if end < 0:
        return md
    head, doc = md[: end + 4], md[end + 4 :]
    m = re.match(r"(\s*)\*(.*)\*(\n[\s\S]*)?$", doc)
    if m is None:
        return head + as_written(doc)
    first, rest = m[2], m[3] or ""
    if " ".join((first + rest).split()) in builtin_docstrings():
        return head
    return f"{head}{m[1]}*{as_written(first)}*{as_written(rest)}"


def front_matter_cell(cell: dict, written: str | None = None) -> dict | None:
    """nbdev's raw front matter as a Markdown title cell: the notebook's own title cell `written`,
    or else the front matter's title and description; None if `cell` is not front matter."""
    text = source_text(cell).strip()
    if cell["cell_type"] != "raw" or not text.startswith("---"):
        return None
    if written is not None:
        return {"cell_type": "markdown", "metadata": {}, "source": written}
    meta = yaml.safe_load(text.strip("-\n")) or {}
    body = f"# {meta.get('title', '')}\n"
    if meta.get("description"):
        body += f"\n> {' '.join(str(meta['description']).split())}\n"
    return {"cell_type": "markdown", "metadata": {}, "source": body}


def for_mkdocs(nb: dict, depth: int, pages: dict[str, str], written: str | None = None) -> dict:
    """A processed notebook made renderable by mkdocs-jupyter: front matter (from the title cell
    `written` where given), directives, show_doc's docstrings and links translated."""
    cells = []
    for cell in nb["cells"]:
        title = front_matter_cell(cell, written and rewrite_links(written, depth, pages))
        if title is not None:
            cells.append(title)
            continue
        if "WARNING: THIS FILE WAS AUTOGENERATED" in source_text(cell):
            continue
        if cell["cell_type"] == "code":
            lines = source_text(cell).splitlines()
            directives = [line for line in lines if line.startswith("#|")]
            kept = [line for line in lines if not line.startswith("#|")]
            cell["source"] = "\n".join(kept).strip("\n")
            if any(re.match(r"#\|\s*echo:\s*false", d) for d in directives):
                cell.setdefault("metadata", {}).setdefault("tags", []).append("remove_input")
            # a widget's output is live state that a static page cannot show (the guide shows a
            # screenshot instead)
            cell["outputs"] = [
                o
                for o in cell.get("outputs", [])
                if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
            ]
            for out in cell["outputs"]:
                for kind in ("text/markdown", "text/html"):
                    if kind in out.get("data", {}):
                        out["data"][kind] = rewrite_links(
                            source_text({"source": out["data"][kind]}), depth, pages
                        )
                data = out.get("data", {})
                if re.match(r"show_doc\(", cell["source"]) and "text/markdown" in data:
                    data["text/markdown"] = show_doc_markdown(data["text/markdown"])
        else:
            cell["source"] = rewrite_links(source_text(cell), depth, pages)
        cells.append(cell)
    nb["cells"] = cells
    # saved widget state makes the page fetch the widget manager from a CDN
    nb["metadata"].pop("widgets", None)
    return nb


def notebook_title(nb: dict, fallback: str) -> str:
    for cell in nb["cells"]:
        m = (
            re.match(r"#\s+(.+)", source_text(cell).strip())
            if cell["cell_type"] == "markdown"
            else None
        )
        if m:
            return m[1].strip()
    return fallback


def experiment_records(figures: Path) -> list[tuple[str, str, Path]]:
    "(experiment, run, executed notebook) for every run under figures/ that finished."
    found = []
    # the reading order; other experiments follow by name
    first = ("quickstart", "mask_ratio_sweep", "ablation")

    def order(p):
        return (
            first.index(p.parent.parent.name) if p.parent.parent.name in first else len(first),
            str(p),
        )

    for run_json in sorted(figures.glob("*/*/run.json"), key=order):
        record = run_json.parent / f"{run_json.parent.parent.name}.ipynb"
        if record.is_file():
            found.append((run_json.parent.parent.name, run_json.parent.name, record))
    return found


def record_page(experiment: str, run: str) -> str:
    return (
        f"experiments/{experiment}.ipynb"
        if run == "default"
        else f"experiments/{experiment}--{run}.ipynb"
    )


def readme_section(heading: str) -> str:
    """The README's section `heading` (a `## ` heading) as a page of its own, its heading the page's
    title. Written for GitHub, the README starts a list item right under a paragraph and indents
    what belongs to the item by two spaces; Python-Markdown needs a blank line before the item and
    four spaces, or the item stays text and its tables become code."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index(f"## {heading}")
    fenced, body = False, []
    for line in lines[start + 1 :]:
        fenced ^= line.lstrip().startswith("```")
        if not fenced and line.startswith("## "):
            break
        if not fenced and line.startswith("- ") and body and body[-1]:
            body.append("")
        indented = not fenced and line.startswith("  ") and not line.startswith("   ")
        body.append("  " + line if indented else line)
    return "\n".join([f"# {heading}", *body]).rstrip() + "\n"


def assemble(proc: Path, build: Path) -> list:
    """Write the pages and the figures into `build`/pages; return the navigation and the page of
    each notebook."""
    pages_dir = build / "pages"
    shutil.rmtree(build, ignore_errors=True)
    pages_dir.mkdir(parents=True)
    sources = {p: page_for(p.stem) for p in sorted(proc.glob("*.ipynb"))}
    records = experiment_records(ROOT / "figures")
    sources.update({record: record_page(experiment, run) for experiment, run, record in records})
    # links name notebooks by file: a library notebook, or an experiment (its default run's report)
    pages = {p.stem: target for p, target in sources.items() if p.parent == proc}
    pages.update(
        {
            experiment: record_page(experiment, run)
            for experiment, run, _ in records
            if run == "default"
        }
    )
    nav = {"home": [], "api": [], "guides": [], "experiments": []}
    for path, target in sources.items():
        source = ROOT / "nbs" / path.name
        written = title_cell(json.loads(source.read_text())) if path.parent == proc else None
        nb = for_mkdocs(json.loads(path.read_text()), target.count("/"), pages, written)
        (pages_dir / target).parent.mkdir(parents=True, exist_ok=True)
        (pages_dir / target).write_text(json.dumps(nb))
        run = path.parent.name if path.parent != proc else "default"
        label = notebook_title(nb, path.stem) + ("" if run == "default" else f" ({run})")
        nav["home" if target == "index.ipynb" else target.split("/")[0]].append(
            {"Home" if target == "index.ipynb" else label: target}
        )
    # what the benchmark measured on this project's machines, from the README where it is kept
    (pages_dir / BENCHMARK_PAGE).write_text(readme_section("Benchmark"))
    nav["home"].append({"Benchmark": BENCHMARK_PAGE})
    (pages_dir / "wrap.css").write_text(WRAP_CSS)
    (pages_dir / "nobreak.js").write_text(NOBREAK_JS)
    (pages_dir / WORKER_SHIM).write_text(WORKER_SHIM_JS)
    for png in (ROOT / "figures").rglob("*.png"):
        dest = pages_dir / "figures" / png.relative_to(ROOT / "figures")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(png, dest)
    return nav["home"] + [
        {SECTION_TITLES[k]: nav[k]} for k in ("api", "guides", "experiments") if nav[k]
    ], pages


def project_settings() -> configparser.SectionProxy:
    """The [DEFAULT] section of settings.ini, nbdev's (and this site's) source of names and
    addresses."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"]


def mkdocs_config(nav: list, site_dir: Path) -> dict:
    settings = project_settings()
    return {
        "site_name": settings.get("lib_name", "metamae_lab"),
        "site_description": settings.get("description", ""),
        "docs_dir": "pages",
        "site_dir": str(site_dir),
        "use_directory_urls": False,  # page.html files: the site also works opened from disk
        "theme": {
            "name": "material",
            "font": False,  # no Google Fonts: the site must work offline
            "features": [
                "navigation.sections",
                "navigation.top",
                "content.code.copy",
                "search.highlight",
            ],
        },
        "plugins": [
            "search",
            "offline",  # the search index also as a script, which a page on file:// can load
            {
                "mkdocs-jupyter": {
                    "execute": False,
                    "include_source": False,
                    "include_requirejs": False,
                    "cache": False,
                    "no_prompt": True,
                    "remove_tag_config": {"remove_input_tags": ["remove_input"]},
                }
            },
        ],
        "extra_css": ["wrap.css"],
        "extra_javascript": ["nobreak.js"],
        "extra": {"polyfills": [WORKER_SHIM]},
        "markdown_extensions": ["tables", "admonition", {"toc": {"permalink": True}}],
        "nav": nav,
    }


def process_notebooks(proc: Path, executed: Path):
    """nbdev's processors over each notebook of nbs/, or its executed copy in `executed`, into
    `proc`: what `nbdev_proc_nbs` does, without its Quarto check, which tries to download Quarto
    with sudo and then pip-installs this package into whatever Python is first on the PATH."""
    import nbdev.serve_drv
    from fastcore.parallel import parallel
    from nbdev.processors import FilterDefaults

    proc.mkdir(parents=True, exist_ok=True)
    jobs = [
        (
            executed / nb.name if (executed / nb.name).is_file() else nb,
            proc / nb.name,
            FilterDefaults,
        )
        for nb in sorted((ROOT / "nbs").glob("*.ipynb"))
    ]
    parallel(nbdev.serve_drv.main, jobs, n_workers=os.cpu_count() or 1, pause=0.01, method="spawn")


def execute_notebook(src: Path, dst: Path, skip_flags: list[str]):
    """Run the notebook `src` top to bottom in its folder, as nbdev_test does, but for the cells
    flagged with one of `skip_flags`, and write it with its outputs to `dst`; raise at the first
    error."""
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import extract_directives

    def skipped(cell) -> bool:
        if cell.cell_type != "code" or "nbdev_export(" in cell.source:
            return True
        directives = extract_directives(cell, remove=False)
        return directives.get("eval:", [""])[0].lower() == "false" or bool(
            set(skip_flags) & directives.keys()
        )

    nb = read_nb(src)
    shell = CaptureShell(src)
    with working_directory(src.parent):
        try:
            shell.run_all(nb, exc_stop=True, preproc=skipped)
        except BaseException:
            sys.stderr.write(shell.prettytb(fname=src) + "\n")
            raise
    write_nb(nb, dst)


def execute_notebooks(executed: Path):
    """Run the guides (all their cells; an error stops the build) and the API notebooks but those of
    UNEXECUTED_API (without the slow cells, within EXECUTE_TIMEOUT; one that fails or runs out of
    time keeps a page without outputs), each in a process of its own, into `executed`."""
    executed.mkdir(parents=True, exist_ok=True)
    slow = project_settings().get("tst_flags", "").split()

    def run(stem: str):
        guide = stem in GUIDES
        src, dst = ROOT / "nbs" / f"{stem}.ipynb", executed / f"{stem}.ipynb"
        cmd = [sys.executable, __file__, "--execute", src, dst, *([] if guide else slow)]
        started = time.monotonic()
        # a session of its own: a notebook out of time is ended with whatever it started
        child = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        try:
            log, _ = child.communicate(timeout=None if guide else EXECUTE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            outcome = f"ran longer than {EXECUTE_TIMEOUT} s: its page shows no outputs"
        else:
            if child.returncode and guide:
                raise RuntimeError(f"the guide {stem} failed:\n{log}")
            last = (log.strip().splitlines() or ["?"])[-1]
            outcome = (
                f"failed ({last}): its page shows no outputs"
                if child.returncode
                else f"executed in {time.monotonic() - started:.0f} s"
            )
        print(f"docs: {stem} {outcome}", flush=True)

    api = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb"))
    # the guides first: they take longest
    stems = sorted(GUIDES) + [s for s in api if s not in GUIDES | UNEXECUTED_API]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(run, stems))


def published_prefix() -> str:
    """Where nbdev points each mention of a documented symbol: the doc_host and doc_baseurl of
    settings.ini."""
    settings = project_settings()
    return f"{settings['doc_host'].rstrip('/')}/{settings['doc_baseurl'].strip('/')}/"


def localise_api_links(site: Path, pages: dict[str, str]) -> int:
    """Point nbdev's symbol links (`<doc_host>/<baseurl>/model.html#metamae`: a published Quarto
    site, whose page names and anchors are not this site's) at the built pages, with the anchor the
    symbol's heading has here. Returns how many links were rewritten."""
    link = re.compile(r'href="' + re.escape(published_prefix()) + r'([\w-]+)\.html(?:#([^"]*))?"')
    by_page = {
        re.sub(r"^\d+[a-z]?_", "", stem): site / Path(target).with_suffix(".html")
        for stem, target in pages.items()
    }
    ids = functools.cache(
        lambda page: re.findall(r'\bid="([^"]+)"', page.read_text(errors="replace"))
    )

    def squash(s):
        return re.sub(r"[^a-z0-9]", "", s.lower())

    def anchor(page: Path, fragment: str) -> str:
        known = ids(page)
        for same in (
            lambda i: i == fragment,
            lambda i: i.lower() == fragment.lower(),
            lambda i: squash(i) == squash(fragment),
        ):
            found = next((i for i in known if same(i)), None)
            if found:
                return f"#{found}"
        return ""  # no heading of that name: the page's top

    rewritten = 0
    for html in site.rglob("*.html"):
        text = html.read_text(errors="replace")

        def local(m):
            target = by_page.get(m[1])
            if target is None or not target.is_file():
                return m[0]
            fragment = anchor(target, m[2]) if m[2] else ""
            return f'href="{os.path.relpath(target, html.parent)}{fragment}"'

        new, n = link.subn(local, text)
        if n:
            html.write_text(new)
        rewritten += n
    return rewritten


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Build the documentation site into _docs/ with mkdocs (no Quarto)."
    )
    parser.add_argument(
        "--skip-proc", action="store_true", help="reuse _proc/ from an earlier nbdev_proc_nbs"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "_docs")
    parser.add_argument(
        "--execute",
        nargs="+",
        metavar="ARG",
        help="SRC DST [FLAG ...]: run the notebook SRC, but for cells flagged FLAG, into DST (a "
        "step of the build)",
    )
    args = parser.parse_args(argv)
    proc, build, executed = ROOT / "_proc", ROOT / "_docs_build", ROOT / "_proc_executed"
    if args.execute:
        src, dst, *flags = args.execute
        execute_notebook(Path(src), Path(dst), flags)
        return 0
    if not args.skip_proc or not proc.is_dir():
        started = time.monotonic()
        # the processors leave pages of deleted notebooks behind
        shutil.rmtree(proc, ignore_errors=True)
        shutil.rmtree(executed, ignore_errors=True)
        execute_notebooks(executed)
        print(f"docs: notebooks executed in {time.monotonic() - started:.0f} s", flush=True)
        process_notebooks(proc, executed)
        shutil.rmtree(executed)
        print(f"docs: notebooks processed, {time.monotonic() - started:.0f} s in all", flush=True)
    nav, pages = assemble(proc, build)
    (build / "mkdocs.yml").write_text(
        yaml.safe_dump(mkdocs_config(nav, args.out.resolve()), sort_keys=False)
    )
    subprocess.run(
        [str(BIN / "mkdocs"), "build", "--strict", "--clean", "-f", str(build / "mkdocs.yml")],
        cwd=ROOT,
        check=True,
    )
    print(f"docs: {localise_api_links(args.out, pages)} API links point at this site's pages")
    print(
        f"docs: {sum(1 for _ in args.out.rglob('*.html'))} HTML pages in "
        f"{args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
