"""How the package reads, in numbers: lines by module, mean code-line length and the share of lines
of 100+ characters, the longest function and export cell, and the tests of a modality's kind by
name outside the modality module.

    python tools/code_metrics.py [--json]
"""

import argparse
import ast
import json
import re
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "metamae_lab"
KIND_TEST = re.compile(r"\bkind\s*(==|!=|\bin\b|\bnot in\b)|(==|!=)\s*\w*\.?kind\b")
NOT_A_MODALITY = re.compile(r"(dtype|\))\.kind\b|for kind in")  # numpy's dtype kinds, loops


def modules() -> list[Path]:
    "The generated modules, without nbdev's index."
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "_modidx.py")


def code_lines(path: Path) -> list[str]:
    "Non-blank lines that are not comments."
    lines = path.read_text().splitlines()
    return [line for line in lines if line.strip() and not line.strip().startswith("#")]


def longest_function(paths: list[Path]) -> tuple[int, str]:
    "The longest function or method, in lines, with where it is."
    best = (0, "")
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                best = max(best, (length, f"{path.relative_to(ROOT)}:{node.name}"))
    return best


def longest_export_cell() -> tuple[int, str]:
    "The longest `#| export` cell of the notebooks, in lines."
    best = (0, "")
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        for n, cell in enumerate(json.loads(nb.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and re.match(r"#\|\s*export", source):
                best = max(best, (len(source.splitlines()), f"{nb.name} cell {n}"))
    return best


def kind_tests(modality_module: str = "modality.py") -> dict[str, int]:
    "Where code outside the modality module tests a kind by name."
    found = {}
    for path in modules():
        if path.name == modality_module:
            continue
        lines = [NOT_A_MODALITY.sub("", line) for line in code_lines(path)]
        hits = sum(bool(KIND_TEST.search(line)) for line in lines)
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    return found


def metrics() -> dict:
    paths = modules()
    lengths = [len(line) for path in paths for line in code_lines(path)]
    function_lines, function = longest_function(paths)
    cell_lines, cell = longest_export_cell()
    kinds = kind_tests()
    return {
        "lines_by_module": {
            str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in paths
        },
        "code_lines": len(lengths),
        "mean_code_line": round(statistics.mean(lengths), 1),
        "share_100_plus": round(sum(n >= 100 for n in lengths) / len(lengths), 3),
        "longest_function": [function_lines, function],
        "longest_export_cell": [cell_lines, cell],
        "kind_tests_outside_modality": sum(kinds.values()),
        "kind_tests_by_module": kinds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a summary")
    found = metrics()
    if parser.parse_args().json:
        print(json.dumps(found, indent=1))
        return
    for name, value in found.items():
        if isinstance(value, dict):
            print(f"{name}:")
            for key, n in value.items():
                print(f"  {key}: {n}")
        else:
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
