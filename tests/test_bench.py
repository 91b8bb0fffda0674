"""The benchmark's reference path computes what the project computes, and the bench command runs end
to end."""

import subprocess
import sys

import pytest

import re

from metamae_lab.bench import CASES, MODELS, case_config, check_equivalence
from metamae_lab.config import ModalitySpec, preset_config


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
