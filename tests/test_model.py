"Forward, backward, gradients and invariants of MAE and MetaMAE on every modality."

import pytest
import torch

from helpers import SPECS, make_batch
from metamae_lab.config import ModalitySpec, preset_config
from metamae_lab.model import Dropout, MetaMAE

VARIANTS = {
    "mae": dict(method="mae"),
    "metamae_second_order": dict(method="metamae"),
    "metamae_first_order": dict(method="metamae", first_order=True),
    "metamae_k2_learned_lr": dict(
        method="metamae", inner_steps=2, learn_inner_lr=True, norm_target=True
    ),
}


def tiny(spec, **overrides):
    torch.manual_seed(0)
    return MetaMAE(spec, preset_config("tiny", mask_ratio=0.6, s_ratio=0.5, **overrides))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", SPECS)
def test_forward_backward_every_modality(name, variant):
    spec = SPECS[name]
    model = tiny(spec, **VARIANTS[variant])
    x, lengths = make_batch(name)
    out = model(x, lengths=lengths, generator=torch.Generator().manual_seed(0))
    B, L = (
        x.shape[0],
        spec.num_tokens if not spec.variable_length else x.shape[-1] // spec.patch_size[0],
    )
    assert out.pred.shape == (B, L, spec.vocab_size if spec.is_discrete else spec.patch_dim)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name_, p in model.named_parameters():
        if name_.startswith("projector") and VARIANTS[variant]["method"] == "mae":
            continue
        if not p.requires_grad:
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name_
    assert model.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    if VARIANTS[variant].get("learn_inner_lr"):
        assert model.inner_lr.grad is not None and model.inner_lr.grad != 0


@pytest.mark.parametrize("name", ["sequence_varlen", "tokens_varlen"])
def test_padding_is_never_attended_masked_or_in_a_loss(name):
    spec = SPECS[name]
    model = tiny(spec).eval()
    x, lengths = make_batch(name)
    out = model(x, lengths=lengths, generator=torch.Generator().manual_seed(3))
    assert out.pad is not None and out.pad.any()
    assert not (out.mask.bool() & out.pad).any(), "a padding token was masked"
    assert not (out.support & out.pad).any(), "a padding token entered the support set"
    visible = torch.zeros_like(out.pad).scatter(1, out.ids_keep, out.keep_valid)
    assert not (visible & out.pad).any(), "a padding token was visible to the encoder"
    # changing the padded values changes nothing: not attended, not a target, not in a loss
    padded_steps = torch.arange(x.shape[-1])[None] >= lengths[:, None]  # (B, T)
    x2 = x.clone()
    if spec.kind == "tokens":
        x2[padded_steps] = (
            x2[padded_steps] + 1
        ) % spec.vocab_size  # other ids past each sample's length
    else:
        x2[padded_steps[:, None, :].expand_as(x2)] = 1e3
    assert not torch.equal(x2, x)
    out2 = model(x2, lengths=lengths, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out2.loss, out.loss)
    torch.testing.assert_close(out2.z_adapted, out.z_adapted)
    valid = ~out.pad
    torch.testing.assert_close(out2.pred[valid], out.pred[valid])


def test_padding_tokens_do_not_change_real_tokens_outputs():
    "A sample alone equals the same sample inside a padded batch (same kept tokens)."
    spec = ModalitySpec("sequence", (2, 12), 2, variable_length=True)
    model = tiny(spec, dropout=0.0).eval()
    x = torch.randn(2, 2, 12)
    f_batch = model.amortized_features(x, lengths=torch.tensor([12, 6]))
    f_alone = model.amortized_features(x[1:, :, :6], lengths=torch.tensor([6]))
    torch.testing.assert_close(f_batch[1:], f_alone, rtol=1e-5, atol=1e-5)
    a_batch = model.adapted_features(x, lengths=torch.tensor([12, 6]))
    a_alone = model.adapted_features(x[1:, :, :6], lengths=torch.tensor([6]))
    torch.testing.assert_close(a_batch[1:], a_alone, rtol=1e-4, atol=1e-5)


def _decoder_grads(model, x, first_order):
    model.zero_grad()
    model.cfg.first_order = first_order
    out = model(x, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    return {
        n: p.grad.clone()
        for n, p in model.named_parameters()
        if n.startswith("decoder") and p.grad is not None
    }


def test_second_order_gradient_differs_from_first_order():
    spec = SPECS["image_rgb_rect"]
    model = tiny(spec, dropout=0.0, inner_lr=1.0)
    x, _ = make_batch("image_rgb_rect")
    second, first = _decoder_grads(model, x, False), _decoder_grads(model, x, True)
    diffs = {n: (second[n] - first[n]).abs().max().item() for n in second}
    assert max(diffs.values()) > 1e-4, diffs
    # the outer losses are the same: the order changes only the gradient
    model.cfg.first_order = False
    l2 = model(x, generator=torch.Generator().manual_seed(0)).loss
    model.cfg.first_order = True
    l1 = model(x, generator=torch.Generator().manual_seed(0)).loss
    torch.testing.assert_close(l1, l2)


def test_second_order_gradient_matches_numerical_gradcheck():
    """float64 finite differences agree with the second-order analytic gradient (decoder attention
    and encoder MLP)."""
    spec = ModalitySpec("sequence", (2, 12), 2)
    cfg = preset_config(
        "tiny",
        enc_dim=8,
        enc_depth=1,
        enc_heads=2,
        dec_dim=8,
        dec_depth=1,
        dec_heads=2,
        proj_dim=4,
        proj_hidden_mult=1,
        dropout=0.0,
        mask_ratio=0.5,
        s_ratio=0.5,
        inner_lr=0.7,
        inner_steps=2,
    )
    torch.manual_seed(0)
    model = MetaMAE(spec, cfg).double()
    x = torch.randn(3, 2, 12, dtype=torch.float64)
    names = ["decoder.blocks.0.attn.qkv.weight", "encoder.blocks.0.mlp.0.weight"]
    params = dict(model.named_parameters())
    inputs = tuple(params[n].detach().clone().requires_grad_() for n in names)

    def loss_of(*weights):
        out = torch.func.functional_call(
            model, dict(zip(names, weights)), (x,), {"generator": torch.Generator().manual_seed(0)}
        )
        return out.loss

    assert torch.autograd.gradcheck(loss_of, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)
    # and the first-order gradient does not satisfy the same check: the check can tell them apart
    model.cfg.first_order = True
    assert not torch.autograd.gradcheck(
        loss_of, inputs, eps=1e-6, atol=1e-5, rtol=1e-4, raise_exception=False
    )


@pytest.mark.parametrize("name", SPECS)
def test_inner_steps_lower_the_support_loss(name):
    spec = SPECS[name]
    model = tiny(spec, inner_steps=3, inner_lr=0.3 if spec.is_discrete else 0.5, dropout=0.0).eval()
    x, lengths = make_batch(name, batch_size=6)
    losses = model(x, lengths=lengths, generator=torch.Generator().manual_seed(1)).support_losses
    assert losses.shape == (4,)
    assert (losses[1:] < losses[:-1]).all(), losses


def test_same_generator_same_masks_and_losses():
    spec = SPECS["sequence"]
    model = tiny(spec)  # train mode: dropout draws from the global RNG, so seed it too
    x, _ = make_batch("sequence")
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(model(x, generator=torch.Generator().manual_seed(11)))
    a, b = runs
    torch.testing.assert_close(a.mask, b.mask)
    torch.testing.assert_close(a.support, b.support)
    torch.testing.assert_close(a.loss, b.loss)
    c = model(x, generator=torch.Generator().manual_seed(12))
    assert not torch.equal(c.mask, a.mask)


def test_adapted_features_differ_from_amortized():
    for name in SPECS:
        spec = SPECS[name]
        model = tiny(spec)
        x, lengths = make_batch(name)
        fa = model.amortized_features(x, lengths=lengths)
        fz = model.adapted_features(x, lengths=lengths)
        assert fa.shape == fz.shape == (x.shape[0], model.cfg.enc_dim)
        assert not torch.allclose(fa, fz, atol=1e-4), name
        torch.testing.assert_close(model.adapted_features(x, lengths=lengths), fz)  # deterministic
        assert model.training, "feature extraction must restore the training mode"


def test_adapt_trajectory_and_no_grad_use():
    spec = SPECS["image_multispectral"]
    model = tiny(spec, inner_steps=2).eval()
    x, _ = make_batch("image_multispectral")
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
    assert not out.z_adapted.requires_grad and out.support_losses.shape == (3,)
    assert not torch.allclose(out.z, out.z_adapted)


def test_dabs_preset_shapes():
    spec = ModalitySpec("sequence", (52, 320), 5)
    model = MetaMAE(spec, preset_config("dabs"))
    assert len(model.encoder.blocks) == 12 and len(model.decoder.blocks) == 4
    assert model.encoder.blocks[0].attn.heads == 8 and model.decoder.blocks[0].attn.heads == 4
    assert model.encoder.blocks[0].mlp[0].out_features == 512
    with torch.no_grad():
        out = model(torch.randn(2, 52, 320))
    assert out.z.shape == (2, 1 + int(64 * (1 - 0.85)), 256)


@pytest.mark.gpu
def test_second_order_on_cuda_with_bf16_autocast():
    from metamae_lab.runtime import autocast_context

    spec = SPECS["image_rgb_rect"]
    model = tiny(spec).cuda()
    x, _ = make_batch("image_rgb_rect")
    with autocast_context("cuda"):
        out = model(x.cuda(), generator=torch.Generator(device="cuda").manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and model.decoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_compiled_dropout_drops_at_its_rate_and_scales_what_it_keeps():
    """Inside torch.compile the masks are hashed and multiply the input (0/1 uint8): about a tenth
    of the elements become exactly 0, the rest are scaled by the inverse keep rate, and the
    gradient flows through the same mask."""
    drop = Dropout(0.1).train()
    compiled = torch.compile(drop)
    x = torch.ones(500, 400, requires_grad=True)
    torch.manual_seed(0)
    y = compiled(x)
    scale = 2**16 / (2**16 - round(0.1 * 2**16))
    dropped = y == 0
    assert dropped.float().mean().item() == pytest.approx(0.1, abs=3e-3)
    assert torch.all(y[~dropped] == scale)
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(grad, y.detach())  # d(sum y)/dx = mask * scale, here y itself
