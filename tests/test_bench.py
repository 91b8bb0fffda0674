"""The benchmark's reference path computes what the project computes, and the bench command runs end
to end."""

import subprocess
import sys

import pytest

import re

from metamae_lab.bench import CASES, MODELS, case_config, check_equivalence
from metamae_lab.config import ModalitySpec, preset_config
from metamae_lab.runtime import machine_name


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("model", list(MODELS))
def test_reference_and_project_agree_on_the_benchmark_shapes(case, model):
    spec, cfg = case_config(case, model, "tiny")
    diffs = check_equivalence(spec, cfg, batch_size=4)
    assert diffs["loss_rel_diff"] <= 1e-4 and diffs["grad_rel_diff"] <= 1e-4, diffs


def test_equivalence_check_would_catch_a_different_algorithm(monkeypatch):
    """A first-order reference against the second-order project: same loss value, different
    gradients, caught."""
    import dataclasses
    import metamae_lab.bench as bench
    from metamae_lab.reference import reference_loss

    spec, cfg = case_config("sensor", "metamae_2nd", "tiny")
    # a step large enough for the second-order term to matter
    cfg = dataclasses.replace(cfg, inner_lr=5.0)

    def first_order_reference(w, spec, cfg, *args, **kwargs):
        return reference_loss(w, spec, dataclasses.replace(cfg, first_order=True), *args, **kwargs)

    monkeypatch.setattr(bench, "reference_loss", first_order_reference)
    diffs = check_equivalence(spec, cfg, batch_size=4)
    assert diffs["loss_rel_diff"] <= 1e-4 and diffs["grad_rel_diff"] > 1e-3, diffs


@pytest.mark.parametrize(
    "spec",
    [
        ModalitySpec("tokens", (16,), vocab_size=5),
        ModalitySpec("tabular", (12,), 3),
        ModalitySpec("image", (2, 8, 12), (2, 4)),
    ],
    ids=["tokens", "tabular", "rect-image"],
)
@pytest.mark.parametrize("method", ["mae", "metamae"])
def test_reference_agrees_on_the_other_kinds(spec, method):
    diffs = check_equivalence(
        spec, preset_config("tiny", method=method, mask_ratio=0.5, inner_steps=2, inner_lr=0.5)
    )
    assert diffs["loss_rel_diff"] <= 1e-5 and diffs["grad_rel_diff"] <= 1e-4, diffs


def test_unknown_cases_are_refused():
    with pytest.raises(ValueError, match="unknown case"):
        case_config("audio", "mae")
    with pytest.raises(ValueError, match="unknown model"):
        case_config("sensor", "vae")


def test_bench_command_prints_the_ratio_table():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "metamae_lab.cli",
            "bench",
            "--preset",
            "tiny",
            "--batch-size",
            "4",
            "--models",
            "metamae_1st",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--no-memory",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for case in ("sensor", "image"):
        assert re.search(rf"\| {case} +\| metamae_1st +\| 4 +\| 64 +\|", done.stdout), done.stdout
    assert "reference / project" in done.stdout


@pytest.mark.parametrize(
    "name, category",
    [
        ("aten::mm", "matmul"),
        ("aten::addmm", "matmul"),
        ("aten::bmm", "matmul"),
        ("aten::convolution_backward", "matmul"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
        ("aten::_scaled_dot_product_efficient_attention_backward", "attention"),
        ("aten::_softmax", "attention"),
        ("aten::_log_softmax", "elementwise"),
        ("aten::to", "casts & copies"),
        ("aten::_to_copy", "casts & copies"),
        ("aten::copy_", "casts & copies"),
        ("aten::bernoulli_", "dropout RNG"),
        ("aten::native_dropout_backward", "dropout RNG"),
        ("aten::_foreach_addcdiv_", "optimizer"),
        ("Optimizer.step#AdamW.step", "optimizer"),
        ("aten::lerp_", "optimizer"),
        ("aten::_fused_adamw_", "optimizer"),
        ("aten::gelu_backward", "elementwise"),
        ("aten::native_layer_norm", "elementwise"),
        ("aten::gather", "other"),
        ("MmBackward0", "other"),
    ],
)
def test_operators_fall_in_their_categories(name, category):
    from metamae_lab.bench import CATEGORIES, op_category

    assert op_category(name) == category and category in CATEGORIES


@pytest.fixture(scope="module")
def tiny_profiles():
    from metamae_lab.bench import PATHS, make_step, profile_step

    spec, cfg = case_config("sensor", "metamae_2nd", "tiny")
    return {path: profile_step(make_step(path, spec, cfg, 4, "cpu")) for path in PATHS}


def test_a_profiled_step_is_accounted_for_by_its_categories(tiny_profiles):
    from metamae_lab.bench import CATEGORIES

    for profile in tiny_profiles.values():
        assert list(profile.categories) == list(CATEGORIES)
        assert sum(profile.categories.values()) == pytest.approx(profile.self_ms, rel=1e-9)
        assert sum(op.self_ms for op in profile.ops) == pytest.approx(profile.self_ms, rel=1e-9)
        assert profile.categories["matmul"] > 0 and profile.categories["attention"] > 0
        assert profile.categories["dropout RNG"] > 0 and profile.categories["optimizer"] > 0
        shares = [op.self_ms for op in profile.ops]
        assert shares == sorted(shares, reverse=True)
        assert 0 < profile.self_ms <= 1.1 * profile.step_ms


def test_what_runs_inside_the_optimizer_step_counts_as_optimizer(tiny_profiles):
    "The reference's for-loop AdamW: its `mul_`, `sqrt` and the like are optimizer work."
    from metamae_lab.bench import op_category

    in_scope = [
        op
        for op in tiny_profiles["reference"].ops
        if op.category == "optimizer" and op_category(op.name) != "optimizer"
    ]
    assert any(op.name.startswith("aten::") for op in in_scope), tiny_profiles["reference"].ops


def test_matmul_shapes_come_from_the_model_config():
    from dataclasses import replace

    from metamae_lab.bench import model_matmul_shapes

    spec, cfg = case_config("image", "mae", "dabs")  # 64 tokens, mask 0.75: 16 kept
    shapes = {layer: (m, k, n) for layer, m, k, n in model_matmul_shapes(spec, cfg, 8)}
    assert shapes["encoder qkv"] == (8 * 17, 256, 768)
    assert shapes["encoder mlp in"] == (8 * 17, 256, 512)
    assert shapes["decoder mlp out"] == (8 * 65, 256, 128)
    wide = model_matmul_shapes(spec, replace(cfg, mlp_ratio=4.0), 8)
    assert ("encoder mlp in", 8 * 17, 256, 1024) in wide


def test_rows_report_utilisation_of_the_measured_matmul_rate():
    from metamae_lab.bench import run_benchmark
    from metamae_lab.config import BenchConfig

    cfg = BenchConfig(
        cases=["sensor"],
        models=["metamae_1st"],
        batch_size=4,
        preset="tiny",
        device="cpu",
        warmup=1,
        repeats=1,
        memory=False,
        matmul_size=256,
    )
    logged = []
    (row,) = run_benchmark(cfg, log=logged.append)
    assert "Measured matmul rates" in logged[0] and "| square" in logged[0]
    assert row.precision == "fp32"  # 'auto' on the CPU
    assert row.measured_peak_tflop_s == row.measured_fp32_tflop_s > 0
    assert 0 < row.utilisation < 2 and 0 < row.reference_utilisation < 2
    # GFLOP per ms is TFLOP per s
    assert row.reference_tflop_s == pytest.approx(row.step_gflop / row.reference_ms, rel=1e-6)
    assert row.profiles is None


def test_bench_profile_prints_where_the_time_goes(tmp_path):
    import json

    done = subprocess.run(
        [sys.executable, "-m", "metamae_lab.cli", "bench", "--preset", "tiny", "--batch-size", "4",
         "--cases", "sensor", "--models", "mae", "--warmup", "1", "--repeats", "1", "--no-memory",
         "--matmul-size", "256", "--profile", "--json", str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "Measured matmul rates" in out and "utilisation project / reference" in out
    assert out.startswith(f"device cpu ({machine_name('cpu')}), "), out[:200]
    assert "### Where the time goes: sensor mae" in out
    assert re.search(r"\| matmul +\| [\d.]+ +\| [\d.]+ +\| [\d.]+ +\| [\d.]+ +\|", out), out
    assert "Top 15 operators, project path" in out and "Top 15 operators, reference path" in out
    assert "Top 10 products, project path" in out and "Top 10 products, reference path" in out
    assert re.search(r"\| aten::(add)?mm +\| 1 +\| \d+ × \d+ × \d+ +\| [NTS]{2} +\|", out), out
    assert "USDT:" not in done.stderr  # the profiler's own chatter is kept out
    (row,) = json.loads((tmp_path / "rows.json").read_text())
    assert set(row["profiles"]) == {"project", "reference"} and row["utilisation"] > 0
    assert row["machine"] == machine_name("cpu")
    products = row["profiles"]["project"]["matmuls"]
    assert products and all(m["tflop_s"] > 0 and len(m["layout"]) == 2 for m in products)


def test_bench_help_gives_each_flag_its_own_comment():
    out = subprocess.run(
        [sys.executable, "-m", "metamae_lab.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "<__TEMP__>" not in out
    assert re.search(r"--json \[str\]\s+also write the rows", out), out
    assert re.search(r"--compile, --no-compile\s+torch.compile the project's encoder", out), out
    assert re.search(r"--profile, --no-profile\s+also profile one step", out), out
    assert re.search(r"--matmul, --no-matmul\s+measure this machine's matmul rates", out), out
