"""The package's layering, checked: analysis without widgets, a command line that answers without
torch, no test machinery shipped in the package, and functions and notebook cells small enough to
read."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "metamae_lab"


def imported_after(code: str) -> set[str]:
    "The top-level modules loaded by running `code` (its printing silenced) in a fresh interpreter."
    indented = code.replace("\n", "\n    ")
    probe = (
        f"import contextlib, io, sys\nwith "
        f"contextlib.redirect_stdout(io.StringIO()):\n    {indented}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return set(done.stdout.split())


def test_analysis_and_figures_import_no_widgets():
    loaded = imported_after(
        "import metamae_lab.analysis, metamae_lab.figures, metamae_lab.train, metamae_lab.probe"
    )
    assert "ipywidgets" not in loaded and "torch" in loaded
    assert "ipywidgets" in imported_after("import metamae_lab.views")  # the check can fail


def modules_after(code: str) -> set[str]:
    "The metamae_lab modules loaded by running `code` in a fresh interpreter."
    listed = code + "\nprint(' '.join(m for m in sys.modules if m.startswith('metamae_lab')))"
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + listed],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return set(done.stdout.split())


def test_opening_a_run_imports_no_training_loop():
    "Probes, analyses and views open runs through metamae_lab.checkpoint: no loop, no batch reader."
    loop = {"metamae_lab.train", "metamae_lab.data.loader"}
    loaded = modules_after("import metamae_lab.analysis, metamae_lab.probe, metamae_lab.views")
    assert "metamae_lab.checkpoint" in loaded and not loaded & loop, sorted(loaded)
    assert loop <= modules_after("import metamae_lab.train")  # the check can fail


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["pretrain", "--help"],
        ["pretrain", "--preset", "dabs", "--help"],
        ["datasets"],
        ["bench", "--help"],
        ["probe", "--help"],
    ],
)
def test_help_and_listings_answer_without_loading_torch(argv):
    code = f"from metamae_lab.cli import main\ntry: main({argv!r})\nexcept SystemExit: pass"
    loaded = imported_after(code)
    assert "torch" not in loaded and "sklearn" not in loaded, sorted(loaded)


def flag_help(text: str, name: str) -> str:
    "The help of option `--name` in a `--help` text, on one line."
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"--{name} "))
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].strip().startswith("-") or not lines[i].strip()
        ),
        len(lines),
    )
    return " ".join(" ".join(lines[start:end]).split())


def test_pretrain_help_shows_the_defaults_of_the_preset_used(cli):
    _, tiny, _ = cli("pretrain", "--help")
    _, dabs, _ = cli("pretrain", "--preset", "dabs", "--help")
    flag = flag_help
    assert "(default: 64)" in flag(tiny, "enc-dim") and "(default: 256)" in flag(dabs, "enc-dim")
    assert "(default: 0.002)" in flag(tiny, "lr") and "(default: 0.0001)" in flag(dabs, "lr")
    assert "(default: 5.0)" in flag(tiny, "inner-lr") and "(default: 0.5)" in flag(dabs, "inner-lr")


def test_the_package_ships_no_test_machinery():
    machinery = {
        "Scratch",
        "BadInput",
        "bad_input_cases",
        "run_cli",
        "try_bad_input",
        "FaultOutcome",
    }
    for module in PACKAGE.rglob("*.py"):
        tree = ast.parse(module.read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not names & machinery, (module.name, names & machinery)


def test_functions_and_export_cells_fit_in_a_screen():
    """A function fits in 60 lines; so does an export cell, unless it holds one definition (a class
    whose methods each fit, or one table), which a cell cannot split."""
    long_functions = [
        (m.name, n.name, n.end_lineno - n.lineno + 1)
        for m in PACKAGE.rglob("*.py")
        for n in ast.walk(ast.parse(m.read_text()))
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
        if n.end_lineno - n.lineno + 1 > 60
    ]
    assert not long_functions, long_functions
    long_cells = []
    for nb in (ROOT / "nbs").glob("*.ipynb"):
        for cell in json.loads(nb.read_text())["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] != "code" or not source.startswith("#| export"):
                continue
            if len(source.splitlines()) > 60 and len(ast.parse(source).body) > 1:
                long_cells.append((nb.name, source.splitlines()[1]))
    assert not long_cells, long_cells


def test_code_lines_are_at_most_120_characters():
    "In the notebooks' code cells (the package's source), the tests and the tools."
    long_lines = [
        f"{path.relative_to(ROOT)}:{i}"
        for folder in ("tests", "tools")
        for path in (ROOT / folder).glob("*.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > 120
    ]
    for nb in [*(ROOT / "nbs").glob("*.ipynb"), *(ROOT / "nbs" / "experiments").glob("*.ipynb")]:
        for n, cell in enumerate(json.loads(nb.read_text())["cells"]):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "code":
                long_lines += [
                    f"{nb.name} cell {n}: {line[:60]}"
                    for line in source.splitlines()
                    if len(line) > 120
                ]
    assert not long_lines, long_lines


@pytest.mark.parametrize("notebook", sorted((ROOT / "nbs").rglob("*.ipynb")), ids=lambda p: p.name)
def test_every_notebook_names_its_kernel(notebook):
    "Without a stored kernelspec JupyterLab opens the notebook on a 'Select Kernel' dialog."
    spec = json.loads(notebook.read_text())["metadata"].get("kernelspec", {})
    assert spec.get("name") == "python3" and spec.get("language") == "python", (
        f"{notebook.name}: {spec}"
    )


KIND_NAMES = r"(?:image|sequence|tokens|tabular|multimodal)"
KIND_TESTS = [
    re.compile(p)
    for p in (
        # kind == ..., spec.kind in (...): not dtype.kind
        r"(?<!dtype\.)(?<!\)\.)\bkind\s*(?:==|!=|\bnot\s+in\b|\bin\b)",
        r"(?:==|!=)\s*[\w.]*\bkind\b",  # ... == spec.kind
        rf"(?:==|!=)\s*[\"']{KIND_NAMES}[\"']"  # ... == "image"
        rf"|[\"']{KIND_NAMES}[\"']\s*(?:==|!=)"  # "image" == ...
        rf"|\bin\s*[(\[{{]\s*[\"']{KIND_NAMES}[\"']",  # ... in ("image", ...)
        # the old tables keyed by kind name
        r"\b(?:SAMPLE_RANKS|SAMPLE_FORMS|BATCH_FORMS|STAT_AXES)\[",
    )
]


def kind_tests(line: str) -> bool:
    "Whether a line of code tests a modality's kind by its name."
    # a loop over names is not a test
    code = re.sub(r"\bfor\s+kind\s+in\b", "", line.split(" #")[0])
    return any(p.search(code) for p in KIND_TESTS)


def test_only_the_modality_module_tests_kinds_by_name():
    """What differs by kind is asked of `spec.modality`; `kind ==` anywhere else means a new kind
    must edit that module."""
    assert kind_tests('    if spec.kind == "image": x = 1') and kind_tests(
        'if kind not in ("sequence", "tokens"):'
    )
    assert kind_tests("rank = 1 + SAMPLE_RANKS[kind]") and kind_tests("if n == p.kind else")
    assert not kind_tests('if x.dtype.kind not in "iu":') and not kind_tests(
        "for kind in names: pass"
    )
    found = [
        f"{m.relative_to(ROOT)}:{i}: {line.strip()}"
        for m in sorted(PACKAGE.rglob("*.py"))
        if m.name not in ("modality.py", "_modidx.py")
        for i, line in enumerate(m.read_text().splitlines(), 1)
        if kind_tests(line)
    ]
    assert not found, "\n".join(found)
