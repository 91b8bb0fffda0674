"""The paper's recipe against a plain implementation of the paper's code (the reference), exactly;
each difference a named option; weights exchanged with the paper's code; the paper's linear
evaluation."""

import json

import pytest
import torch

from metamae_lab.bench import check_equivalence
from metamae_lab.config import RECIPES, ModalitySpec, ModelConfig, preset_config, run_config
from metamae_lab.exchange import (
    from_paper_state_dict,
    load_paper_checkpoint,
    save_paper_checkpoint,
    to_paper_state_dict,
)
from metamae_lab.masking import masking_from_visible, support_set
from metamae_lab.model import MetaMAE

SPECS = {
    "image": ModalitySpec("image", (3, 8, 8), 4),
    "sequence": ModalitySpec("sequence", (4, 20), 5),
    "tabular": ModalitySpec("tabular", (12,), 3),
    "tokens": ModalitySpec("tokens", (16,), vocab_size=5),
}
VARIANTS = {
    "mae": dict(method="mae"),
    "second_order": dict(method="metamae"),
    "first_order": dict(method="metamae", first_order=True),
    "two_steps": dict(method="metamae", inner_steps=2),
}


@pytest.mark.parametrize("recipe", ["paper", "project"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", SPECS)
def test_losses_and_every_gradient_equal_the_reference_in_fp64(kind, variant, recipe):
    """On identical weights, batch, mask and support set: the same loss and gradients to within
    1e-10 relative."""
    cfg = preset_config(
        "tiny", recipe=recipe, mask_ratio=0.6, s_ratio=0.5, inner_lr=0.5, **VARIANTS[variant]
    )
    diffs = check_equivalence(SPECS[kind], cfg, batch_size=6, dtype=torch.float64)
    assert diffs["loss_rel_diff"] <= 1e-10, diffs
    assert diffs["grad_rel_diff"] <= 1e-10 and diffs["worst_grad_rel_diff"] <= 1e-10, diffs


@pytest.mark.parametrize("recipe", ["paper", "project"])
@pytest.mark.parametrize("variant", ["second_order", "first_order", "two_steps"])
@pytest.mark.parametrize("kind", SPECS)
def test_the_written_out_inner_step_equals_the_reference_in_fp64(kind, variant, recipe):
    """The inner step by the decoder's gradient written out (what `compile_inner_loop` compiles),
    second order and first, gives the reference's loss and gradients too."""
    cfg = preset_config(
        "tiny", recipe=recipe, mask_ratio=0.6, s_ratio=0.5, inner_lr=0.5, **VARIANTS[variant]
    )
    diffs = check_equivalence(
        SPECS[kind], cfg, batch_size=6, dtype=torch.float64, explicit_inner_step=True
    )
    assert diffs["loss_rel_diff"] <= 1e-10, diffs
    assert diffs["grad_rel_diff"] <= 1e-10 and diffs["worst_grad_rel_diff"] <= 1e-10, diffs


def test_the_reference_tells_the_recipes_apart():
    """The project's model against the reference told it runs the paper's recipe: the check fails,
    as it must."""
    import metamae_lab.bench as bench
    from metamae_lab.reference import reference_loss

    project = preset_config("tiny", recipe="project", mask_ratio=0.6, s_ratio=0.5, inner_lr=0.5)
    original = bench.reference_loss
    try:
        for field, value in (("inner_loss", "pooled"), ("projector_calls", "separate")):
            bench.reference_loss = lambda w, spec, cfg, *a, **k: reference_loss(
                w, spec, ModelConfig(**{**cfg.to_dict(), field: value}), *a, **k
            )
            # 16 tokens: support sets of different sizes
            long = ModalitySpec("sequence", (4, 80), 5)
            diffs = check_equivalence(long, project, batch_size=6, dtype=torch.float64)
            assert diffs["worst_grad_rel_diff"] > 1e-6, (field, diffs)
    finally:
        bench.reference_loss = original


def test_every_difference_is_a_named_option_of_the_configs():
    paper = run_config("dabs")
    assert paper.recipe == "paper" and run_config("tiny").recipe == "project"
    for name, value in RECIPES["paper"].items():
        config = paper.model if hasattr(paper.model, name) else paper.train
        assert getattr(config, name) == value, name
    project = run_config("dabs", recipe="project")
    assert (
        project.model.qkv_bias
        and project.train.lr_schedule == "cosine"
        and project.model.inner_loss == "per_sample"
    )
    old = project.model.to_dict()
    for name in (
        "qkv_bias",
        "pos_embed_2d",
        "support_sampling",
        "inner_loss",
        "projector_calls",
        "patch_bias_init",
        "token_output_bias",
        "token_embed_init",
    ):
        old.pop(name)
    # configs written before the options exist keep their behaviour
    assert ModelConfig.from_dict(old) == project.model


def test_bernoulli_support_keeps_each_candidate_with_probability_s():
    visible = torch.zeros(5000, 20, dtype=torch.bool)
    visible[:, ::5] = True  # 4 visible tokens; their masked neighbours: 7 candidates per sample
    masking = masking_from_visible(visible)
    exact = support_set(masking, (20,), 0.3, torch.Generator().manual_seed(0), "exact")
    bernoulli = support_set(masking, (20,), 0.3, torch.Generator().manual_seed(0), "bernoulli")
    added_exact, added_bernoulli = ((s & ~visible).sum(1).float() for s in (exact, bernoulli))
    assert (added_exact == 2).all()  # round(0.3 * 7)
    assert abs(added_bernoulli.mean().item() - 0.3 * 7) < 0.05
    assert abs(added_bernoulli.var().item() - 7 * 0.3 * 0.7) < 0.1
    assert (added_bernoulli == 0).float().mean().item() == pytest.approx(0.7**7, abs=0.01)


@pytest.mark.parametrize("kind", SPECS)
def test_a_state_dict_in_the_authors_naming_round_trips(tmp_path, kind):
    spec = SPECS[kind]
    torch.manual_seed(0)
    model = MetaMAE(
        spec, preset_config("tiny", recipe="paper", proj_dim=128, proj_hidden_mult=4)
    ).eval()
    state = to_paper_state_dict(model)
    names = set(state)
    assert {
        "patch_embed.proj.weight",
        "cls_token",
        "pos_embed",
        "decoder_pos_embed",
        "norm_enc.weight",
        "decoder_embed.weight",
        "mask_token",
        "norm_dec.weight",
        "decoder_head.weight",
        "inner_lr",
        "encoder.0.attn.qkv.weight",
        "encoder.1.mlp.fc2.bias",
        "decoder.0.mlp.fc1.weight",
        "projector.3.weight",
    } <= names
    assert not any("attn.qkv.bias" in n for n in names) and "token_bias" not in names
    assert state["projector.3.weight"].shape == (128, 256)  # their projector: 4 x D hidden, 128 out
    if spec.kind == "image":
        assert state["patch_embed.proj.weight"].shape == (64, 3, 4, 4)  # a Conv2d's
    if spec.kind == "sequence":
        assert state["patch_embed.proj.weight"].shape == (64, 4, 5)  # a Conv1d's
    prefixed = {f"module.{k}": v for k, v in state.items()}  # as saved from data-parallel training
    torch.save({"model": prefixed, "optimizer": {}, "engine": {}}, tmp_path / "ckpt-100k.pth")
    loaded = load_paper_checkpoint(tmp_path / "ckpt-100k.pth", spec, model.cfg)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    x = torch.randint(0, 5, (4, 16)) if spec.is_discrete else torch.randn(4, *spec.shape)
    torch.testing.assert_close(
        loaded.amortized_features(x), model.amortized_features(x), rtol=0, atol=0
    )
    torch.testing.assert_close(
        loaded.adapted_features(x), model.adapted_features(x), rtol=0, atol=0
    )
    again = to_paper_state_dict(from_paper_state_dict(state, MetaMAE(spec, model.cfg)))
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)


def test_the_paper_recipe_from_the_command_line(tmp_path, cli):
    code, out, err = cli(
        "pretrain",
        "--recipe",
        "paper",
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert code == 0, err
    recorded = json.loads((tmp_path / "r" / "run_config.json").read_text())
    assert recorded["recipe"] == "paper"
    for name, value in RECIPES["paper"].items():
        section = "model" if name in recorded["model"] else "train"
        assert recorded[section][name] == (list(value) if isinstance(value, tuple) else value), name
    code, out, err = cli(
        "probe", "--run", tmp_path / "r", "--method", "paper", "--epochs", "3", "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    per_epoch = [r["pretrained"]["accuracy_per_epoch"] for r in result["rows"]]
    assert [len(a) for a in per_epoch] == [3, 3] and result["settings"]["epochs"] == 3


def test_a_model_the_authors_code_cannot_open_is_refused_at_export(tmp_path):
    """What `pretrain --recipe paper` builds at the tiny size, and an MLP ratio of 4: each field
    named with theirs."""
    wider_mlp = {"mlp_ratio": 4.0, "proj_dim": 128, "proj_hidden_mult": 4}
    for overrides, named in (
        ({}, ["proj_hidden_mult=2 (theirs: 4)", "proj_dim=32 (theirs: 128)"]),
        (wider_mlp, ["mlp_ratio=4.0 (theirs: 2.0)"]),
    ):
        model = MetaMAE(SPECS["image"], preset_config("tiny", recipe="paper", **overrides))
        with pytest.raises(ValueError) as refused:
            save_paper_checkpoint(model, tmp_path / "ckpt.pth")
        assert (
            all(n in str(refused.value) for n in named) and not (tmp_path / "ckpt.pth").exists()
        ), refused.value
