"""Every benchmark end to end in its CPU smoke mode: a small source in the dataset's original format
(written by the tests), the benchmark experiment notebook through the real console script (convert,
pretrain, the paper's linear evaluation), and (once, on PAMAP2) a second run that reuses the store
and the trained model."""

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metamae_lab.data.convert import benchmark_sources
from metamae_lab.experiments import list_experiments

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("metamae-lab", path=str(Path(sys.executable).parent)) or "metamae-lab"


def test_every_benchmark_has_an_experiment_and_a_fixture():
    paper = {
        "pamap2",
        "higgs",
        "wafer_maps",
        "imagenet32",
        "librispeech",
        "genomics",
        "pfam",
        "mscoco",
    }
    assert paper <= set(benchmark_sources())
    assert "benchmark" in list_experiments()  # one notebook serves them all
    for name in benchmark_sources():
        assert hasattr(importlib.import_module(f"fixtures_{name}"), f"write_{name}_fixture"), name


@pytest.mark.parametrize("name", benchmark_sources())
def test_the_benchmark_experiment_runs_its_smoke_mode_on_the_fixture(tmp_path, name):
    write = getattr(importlib.import_module(f"fixtures_{name}"), f"write_{name}_fixture")
    src = write(tmp_path / "published")
    command = [
        CLI,
        "experiment",
        "benchmark",
        "-p",
        "benchmark",
        name,
        "-p",
        "data_root",
        str(src),
        "-p",
        "smoke",
        "true",
        "--name",
        "smoke",
        "--out",
        str(tmp_path / "figures"),
        "--runs",
        str(tmp_path / "runs"),
        "--threads",
        "1",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    record = tmp_path / "figures" / "benchmark"
    results = json.loads(next(record.rglob("results.json")).read_text())
    assert (results["benchmark"], results["smoke"], results["steps"]) == (name, True, 3)
    assert 1 <= results["batch_size"] <= 8
    store = next((tmp_path / "runs").rglob("manifest.json")).parent
    assert results["store"] == json.loads((store / "manifest.json").read_text())["fingerprint"]
    if results["probe"]:
        scores = {(r["model"], r["features"]): r["accuracy"] for r in results["probe"]}
        assert set(scores) == {
            (m, f) for m in ("random init", "metamae") for f in ("amortized", "adapted")
        }
        assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert results["last_metrics"]["step"] == 3
    if name != "pamap2":
        return  # the reuse below is the same code for every benchmark: checked once
    # a second run with the store as data_root reuses it as it is, and the finished model
    checkpoints = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("checkpoint_*.pt")}
    again = subprocess.run(
        [*command[:8], str(store), *command[9:], "--force"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").rglob("checkpoint_*.pt")}
    assert checkpoints and checkpoints == after
