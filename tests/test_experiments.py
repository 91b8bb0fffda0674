"""The experiment runner through the real console script, the experiment notebooks at small
settings, and the README's results blocks against the experiments' own output."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from metamae_lab.experiments import README_BLOCK, list_experiments, update_readme

ROOT = Path(__file__).resolve().parents[1]
CLI = shutil.which("metamae-lab", path=str(Path(sys.executable).parent)) or "metamae-lab"


def experiment(tmp_path, *args):
    """Run `metamae-lab experiment ...` with results and checkpoints under tmp_path; return the
    finished process."""
    return subprocess.run(
        [
            CLI,
            "experiment",
            *args,
            "--out",
            str(tmp_path / "figures"),
            "--runs",
            str(tmp_path / "runs"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def write_notebook(path: Path, parameters: str, body: str):
    def cell(i, src, tags=()):
        return {
            "id": f"cell{i}",
            "cell_type": "code",
            "metadata": {"tags": list(tags)},
            "source": src,
            "outputs": [],
            "execution_count": None,
        }

    path.write_text(
        json.dumps(
            {
                "cells": [cell(0, parameters, ["parameters"]), cell(1, body)],
                "metadata": {},
                "nbformat": 4,
                "nbformat_minor": 5,
            }
        )
    )


def test_the_experiments_are_registered():
    names = {"quickstart", "mask_ratio_sweep", "ablation", "evidence", "recipe_differences"}
    assert names | {"seeds", "paper_table"} <= set(list_experiments())
    assert (
        ROOT / "nbs" / "experiments" / ".notest"
    ).exists()  # nbdev_test leaves them to this file


@pytest.mark.slow
def test_ablation_at_small_settings(tmp_path):
    args = [
        "ablation",
        "-p",
        "steps",
        "6",
        "-p",
        "seeds",
        "[0, 1]",
        "-p",
        "eval_samples",
        "32",
        "-p",
        "png",
        "false",
    ]
    done = experiment(tmp_path, *args)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "figures" / "ablation" / "eval_samples=32_png=false_seeds=0-1_steps=6"
    results = json.loads((out / "results.json").read_text())
    # MAE, first order, second order, + contrastive, K=2, K=3, no support tokens
    assert len(results["variants"]) == 7
    assert len(results["records"]) == 14 and {r["seed"] for r in results["records"]} == {0, 1}
    table = (out / "results.md").read_text()
    assert re.search(r"^\| MAE +\|", table, re.M), table
    for row in (
        "+ inner loop (first order)",
        "+ second order",
        "+ task contrastive = MetaMAE (K=1)",
        "MetaMAE, K=2",
        "MetaMAE, K=3",
        "without support tokens",
    ):
        assert row in table
    assert " ± " in table  # two seeds: mean ± std
    record = json.loads((out / "ablation.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in record["cells"])
    assert (out / "ablation.html").exists() and not (
        out / "ablation.png"
    ).exists()  # png false: HTML only
    run = json.loads((out / "run.json").read_text())
    assert (
        run["status"] == "done"
        and run["parameters"]["steps"] == 6
        and run["parameters"]["seeds"] == [0, 1]
    )
    again = experiment(tmp_path, *args)  # the same point again is skipped
    assert again.returncode == 0 and "skipped" in again.stdout


@pytest.mark.slow
def test_recipe_differences_at_small_settings(tmp_path):
    done = experiment(
        tmp_path,
        "recipe_differences",
        "-p",
        "steps",
        "3",
        "-p",
        "seeds",
        "[0]",
        "-p",
        "datasets",
        '["digits", "splice"]',
        "-p",
        "eval_samples",
        "16",
        "-p",
        "png",
        "false",
        "--name",
        "small",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "figures" / "recipe_differences" / "small"
    results = json.loads((out / "results.json").read_text())
    variants = {d: list(v) for d, v in results["variants"].items()}
    assert (
        variants["digits"][0] == "the paper's recipe"
        and variants["digits"][-1] == "this project's recipe"
    )
    rows_first = "+ position codes rows first"
    assert rows_first in variants["digits"] and rows_first not in variants["splice"]
    assert "+ token output bias, normal init" in variants["splice"]
    assert len(results["records"]) == len(variants["digits"]) + len(variants["splice"])  # one seed
    table = (out / "results.md").read_text()
    assert (
        "masked-token loss" in table and "kNN (Z*)" in table and "+ inner loss per sample" in table
    )
    runs = tmp_path / "runs" / "recipe_differences" / "small" / "digits"
    paper = json.loads((runs / "variant0_s0" / "run_config.json").read_text())
    assert paper["recipe"] == "paper" and paper["model"]["support_sampling"] == "bernoulli"
    assert paper["train"]["betas"] == [0.9, 0.999] and paper["train"]["lr_schedule"] == "constant"


@pytest.mark.slow
def test_quickstart_and_sweep_at_small_settings(tmp_path, chromium):
    done = experiment(tmp_path, "quickstart", "-p", "steps", "8", "-p", "umap_samples", "60")
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "figures" / "quickstart" / "steps=8_umap_samples=60"
    results = json.loads((out / "results.json").read_text())
    assert {(r["model"], r["features"]) for r in results["probe"]} == {
        (m, f) for m in ("random init", "mae", "metamae") for f in ("amortized", "adapted")
    }
    for stem in ("probe", "reconstructions_mae", "reconstructions_metamae", "umap"):
        assert (out / f"{stem}.html").exists()
        assert (out / f"{stem}.png").stat().st_size > 10_000
    done = experiment(
        tmp_path,
        "mask_ratio_sweep",
        "-p",
        "steps",
        "6",
        "-p",
        "ratios",
        "[0.5, 0.8]",
        "-p",
        "seeds",
        "[0]",
        "-p",
        "eval_samples",
        "32",
        "-p",
        "png",
        "false",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(
        next((tmp_path / "figures" / "mask_ratio_sweep").glob("*/results.json")).read_text()
    )
    assert {(r["ratio"], r["method"]) for r in results["records"]} == {
        (r, m) for r in (0.5, 0.8) for m in ("mae", "metamae")
    }


@pytest.mark.slow
def test_seeds_reports_means_with_t_intervals_over_the_seeds(tmp_path):
    args = ["seeds", "-p", "steps", "6", "-p", "seeds", "[0, 1, 2]", "-p", "baseline_seeds", "2"]
    done = experiment(tmp_path, *args, "-p", "png", "false", "--name", "small")
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "figures" / "seeds" / "small"
    results = json.loads((out / "results.json").read_text())
    assert results["interval"] == "95% Student t over seeds"
    runs = {(r["method"], r["seed"]) for r in results["records"]}
    assert runs == {(m, s) for m in ("mae", "metamae") for s in (0, 1, 2)}
    # MAE has no adapted rows; MetaMAE has both kinds
    kinds = {(r["method"], r["features"]) for r in results["records"]}
    assert kinds == {("mae", "amortized"), ("metamae", "amortized"), ("metamae", "adapted")}
    table = (out / "results.md").read_text()
    assert "| MAE (3 seeds)" in table and "(4 encoders)" in table and "(2 encoders)" in table
    linear = [r["accuracy"] for r in results["records"] if r["method"] == "mae"]
    linear = linear[::2]  # amortized linear of each seed (rows come linear, knn per seed)
    from metamae_lab.experiments import format_interval

    assert f"| {format_interval(linear)} " in table.splitlines()[4], table
    assert "Z* moves the test features by" in table


@pytest.mark.slow
def test_the_paper_table_smoke_run_quotes_dabs_beside_a_benchmark(tmp_path):
    from fixtures_pamap2 import write_pamap2_fixture

    src = write_pamap2_fixture(tmp_path / "published")
    done = experiment(
        tmp_path,
        "paper_table",
        "-p", "smoke", "true",
        "-p", "datasets", '["digits"]',
        "-p", "benchmarks", json.dumps({"pamap2": str(src)}),
        "-p", "seeds", "[0, 1]",
        "-p", "baseline_seeds", "1",
        "--name", "smoke",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "figures" / "paper_table" / "smoke"
    results = json.loads((out / "results.json").read_text())
    assert [r["set"] for r in results["rows"]] == ["digits", "pamap2"]
    pamap2 = results["rows"][1]
    assert (pamap2["DABS random init"], pamap2["DABS e-Mix"], pamap2["DABS ShED"]) == (
        "69.81", "79.48", "88.69"
    )  # fmt: skip
    assert results["rows"][0]["DABS ShED"] == "—"  # no published baseline for an offline set
    assert len(results["records"]) == 2 * 2 * 2  # two sets x two methods x two seeds
    assert "Smoke run: not a result." in (out / "results.md").read_text()
    assert (out / "paper_table.png").stat().st_size > 10_000


def test_a_grid_runs_every_point_and_skips_finished_ones(tmp_path):
    nb = tmp_path / "power.ipynb"
    write_notebook(
        nb,
        "base = 2\nexponent = 1\nout_dir = ''\nruns_dir = ''",
        "import json, pathlib\n"
        "pathlib.Path(out_dir, 'results.json').write_text(json.dumps(base ** exponent))",
    )
    done = experiment(tmp_path, str(nb), "-p", "base", "2", "3", "-p", "exponent", "2")
    assert done.returncode == 0, done.stderr
    values = {
        p.parent.name: json.loads(p.read_text())
        for p in (tmp_path / "figures" / "power").glob("*/results.json")
    }
    assert values == {"base=2_exponent=2": 4, "base=3_exponent=2": 9}
    done = experiment(tmp_path, str(nb), "-p", "base", "2", "3", "4", "-p", "exponent", "2")
    assert done.stdout.count("skipped") == 2 and "base=4_exponent=2: done" in done.stdout


def test_a_failing_cell_gives_exit_code_1_with_its_error(tmp_path):
    nb = tmp_path / "fragile.ipynb"
    write_notebook(
        nb,
        "threshold = 1\nout_dir = ''\nruns_dir = ''",
        "if threshold > 0: raise ValueError(f'diverged above threshold {threshold}')",
    )
    done = experiment(tmp_path, str(nb), "-p", "threshold", "3")
    assert done.returncode == 1
    assert "raised ValueError" in done.stderr and "diverged above threshold 3" in done.stderr
    assert done.stderr.strip().count("\n") == 0  # one line
    # the failed record is kept
    assert list((tmp_path / "figures" / "fragile").glob("*/fragile.ipynb"))


def test_a_bad_value_in_any_grid_point_stops_the_grid_before_it_starts(tmp_path):
    done = experiment(tmp_path, "ablation", "-p", "mask_ratio", "0.5", "1.0", "-p", "steps", "2")
    assert (
        done.returncode == 2
        and "'mask_ratio': mask_ratio must lie in (0, 1), got 1.0" in done.stderr
    ), done.stderr
    assert not (tmp_path / "figures").exists()  # not even the valid first point ran


def test_parameters_are_data_never_code(tmp_path):
    nb = tmp_path / "echo.ipynb"
    write_notebook(
        nb,
        "text = 'x'\nout_dir = ''\nruns_dir = ''",
        "import json, pathlib\npathlib.Path(out_dir, 'results.json').write_text(json.dumps(text))",
    )
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    done = experiment(tmp_path, str(nb), "-p", "text", payload, "--name", "payload")
    assert done.returncode == 0, done.stderr
    assert (
        json.loads((tmp_path / "figures" / "echo" / "payload" / "results.json").read_text())
        == payload
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["ablation", "-p", "stepz", "3"], "unknown parameter(s) ['stepz']"),
        (["ablation", "-p", "steps", "many"], "'steps' expects an integer"),
        (["ablation", "-p", "seeds", "0"], "'seeds' expects a list"),
        (["ablation", "-p", "out_dir", "x"], "set by the runner"),
        (["no_such_experiment"], "unknown experiment 'no_such_experiment'"),
        (["ablation", "-p", "steps", "1", "2", "--name", "mine"], "--name names one run"),
    ],
)
def test_bad_requests_are_one_line_exit_2(tmp_path, args, message):
    done = experiment(tmp_path, *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "figures").exists()  # nothing ran


def test_readme_results_come_from_the_experiments():
    readme = (ROOT / "README.md").read_text()
    keys = [m["key"] for m in README_BLOCK.finditer(readme)]
    assert {"quickstart/default", "mask_ratio_sweep/default", "ablation/default"} <= set(keys)
    assert update_readme(ROOT / "README.md", ROOT / "figures", check=True) == [], (
        "run `make readme`"
    )


def test_readme_figures_exist():
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    for needed in (
        "figures/quickstart/default/reconstructions_metamae.png",
        "figures/quickstart/default/umap.png",
        "figures/mask_ratio_sweep/default/sweep.png",
    ):
        assert needed in images
    missing = [p for p in images if not (ROOT / p).is_file()]
    assert not missing, missing
