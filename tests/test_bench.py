"""The benchmark's reference path computes what the project computes, and the bench command runs end to end."""
import subprocess
import sys

import pytest

from metamae_lab.bench import BENCH_CASES, BENCH_MODELS, ReferenceMetaMAE, case_config, check_equivalence
from metamae_lab.config import ModalitySpec, preset_config


@pytest.mark.parametrize("case", list(BENCH_CASES))
@pytest.mark.parametrize("model", list(BENCH_MODELS))
def test_reference_and_project_agree_on_the_benchmark_shapes(case, model):
    spec, cfg = case_config(case, model, "tiny")
    diffs = check_equivalence(spec, cfg, batch_size=4)
    assert diffs["loss_rel_diff"] <= 1e-4 and diffs["grad_rel_diff"] <= 1e-4, diffs


def test_equivalence_check_would_catch_a_different_algorithm(monkeypatch):
    "A first-order reference against the second-order project: same loss value, different gradients, caught."
    import dataclasses
    import metamae_lab.bench as bench
    spec, cfg = case_config("sensor", "metamae_2nd", "tiny")
    cfg = dataclasses.replace(cfg, inner_lr=5.0)  # a step large enough for the second-order term to matter
    def first_order_reference(model):
        ref = ReferenceMetaMAE(model.spec, dataclasses.replace(model.cfg, first_order=True))
        ref.load_state_dict(model.state_dict())
        return ref
    monkeypatch.setattr(bench, "reference_like", first_order_reference)
    diffs = check_equivalence(spec, cfg, batch_size=4)
    assert diffs["loss_rel_diff"] <= 1e-4 and diffs["grad_rel_diff"] > 1e-3, diffs


def test_reference_refuses_what_it_does_not_cover():
    with pytest.raises(ValueError, match="fixed-length images and sequences"):
        ReferenceMetaMAE(ModalitySpec("tokens", (16,), vocab_size=5), preset_config("tiny"))
    with pytest.raises(ValueError, match="unknown case"):
        case_config("audio", "mae")


def test_bench_command_prints_the_ratio_table():
    done = subprocess.run([sys.executable, "-m", "metamae_lab.cli", "bench", "--preset", "tiny", "--batch-size", "4",
                           "--models", "metamae_1st", "--warmup", "0", "--repeats", "1", "--no-memory"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| sensor | metamae_1st | 4 | 64 |" in done.stdout and "| image | metamae_1st | 4 | 64 |" in done.stdout
    assert "reference / project" in done.stdout
