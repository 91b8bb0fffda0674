"""Multimodal samples: an image and its caption packed in one vector, trained as one token sequence,
shown per modality."""

import numpy as np
import pytest
import torch

from metamae_lab.analysis import reconstruct, reconstruct_chunk
from metamae_lab.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint, spec_of
from metamae_lab.config import (
    ModalitySpec,
    multimodal_spec,
    pack_parts,
    preset_config,
    run_config,
    unpack_parts,
)
from metamae_lab.data import ArrayDataset, captioned_digits, dataset_from_parts
from metamae_lab.figures import explorer_figure, non_finite_values
from metamae_lab.masking import visible_neighbours
from metamae_lab.model import MetaMAE, mean_over
from metamae_lab.probe import extract_features, random_init_like, run_probe
from metamae_lab.train import pretrain
from metamae_lab.views import LatentUMAP, MaskingRatioSweep, ReconstructionExplorer

IMAGE = ModalitySpec("image", (1, 8, 8), 2)  # 16 tokens of 4 values
CAPTION = ModalitySpec("tokens", (6,), vocab_size=12, pad_id=0)  # 6 tokens
SPEC = multimodal_spec(image=IMAGE, caption=CAPTION)


def batch(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    captions = torch.randint(1, 12, (n, 6), generator=g)
    captions[: n // 2, 4:] = 0  # half the captions are 4 tokens long
    return pack_parts(SPEC, {"image": torch.randn(n, 1, 8, 8, generator=g), "caption": captions})


def model(**over) -> MetaMAE:
    torch.manual_seed(0)
    return MetaMAE(
        SPEC, preset_config("tiny", **{"mask_ratio": 0.5, "s_ratio": 0.5, "dropout": 0.0, **over})
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A tiny MetaMAE trained 60 steps on captioned digits through the ordinary entry point."
    data = captioned_digits()
    run_dir = tmp_path_factory.mktemp("mm") / "run"
    result = pretrain(
        run_config("tiny", steps=60, log_every=10, batch_size=64, mask_ratio=0.5),
        run_dir,
        progress=False,
        dataset=data,
    )
    return result, data


def test_pack_unpack_round_trip_numpy_and_torch():
    images, captions = (
        np.random.default_rng(0).normal(size=(3, 1, 8, 8)),
        np.array([[5, 11, 3, 0, 0, 0]] * 3),
    )
    # any order in: the spec's order out
    packed = pack_parts(SPEC, {"caption": captions, "image": images})
    assert packed.shape == (3, 70) and packed.dtype == np.float32
    np.testing.assert_array_equal(packed[:, 64:], captions)
    back = unpack_parts(SPEC, packed)
    np.testing.assert_allclose(back["image"], images, rtol=1e-6)
    assert back["caption"].dtype == np.int64 and (back["caption"] == captions).all()
    tb = unpack_parts(
        SPEC,
        pack_parts(SPEC, {"image": torch.as_tensor(images), "caption": torch.as_tensor(captions)}),
    )
    assert tb["caption"].dtype == torch.int64 and tb["caption"].tolist() == captions.tolist()
    big = multimodal_spec(a=ModalitySpec("tokens", (2,), vocab_size=2**24))
    assert unpack_parts(big, pack_parts(big, {"a": np.array([[2**24 - 1, 2**24 - 2]])}))[
        "a"
    ].tolist() == [[2**24 - 1, 2**24 - 2]]  # the largest ids survive float32 exactly
    with pytest.raises(ValueError, match="integer ids"):
        pack_parts(SPEC, {"image": images, "caption": captions * 1.0})
    with pytest.raises(ValueError, match="shape"):
        pack_parts(SPEC, {"image": images[:, :, :4], "caption": captions})
    with pytest.raises(ValueError, match="needs a multimodal spec"):
        pack_parts(IMAGE, {"image": images})


def test_spec_round_trips_through_a_weights_only_checkpoint(tmp_path):
    m = model()
    state = {
        "run_config": run_config("tiny").to_dict(),
        "spec": SPEC.to_dict(),
        "model": m.state_dict(),
        "step": 1,
    }
    save_checkpoint(tmp_path, state)
    loaded = load_checkpoint(tmp_path)  # torch.load(weights_only=True) inside
    assert spec_of(loaded) == SPEC and spec_of(loaded).parts[1].pad_id == 0
    again = model_from_checkpoint(loaded, SPEC)
    x = batch()
    torch.testing.assert_close(again.amortized_features(x), m.amortized_features(x))
    assert set(IMAGE.to_dict()) == {
        "kind",
        "shape",
        "patch_size",
        "vocab_size",
        "pad_id",
        "variable_length",
    }


@pytest.mark.parametrize(
    "method,first_order", [("mae", False), ("metamae", False), ("metamae", True)]
)
def test_forward_and_backward_reach_every_part(method, first_order):
    m = model(method=method, first_order=first_order)
    out = m(batch(), generator=torch.Generator().manual_seed(1))
    assert [p.shape for p in out.pred] == [(6, 16, 4), (6, 6, 12)] and out.mask.shape == (6, 22)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for name in (
        "encoder.tokenizer.parts.0.proj.weight",
        "encoder.tokenizer.parts.1.proj.weight",
        "encoder.tokenizer.modality_tokens",
        "decoder.modality_tokens",
        "decoder.heads.0.weight",
        "decoder.heads.1.weight",
        "token_biases.caption",
    ):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert (out.support is None) == (method == "mae")


def test_second_order_gradients_differ_from_first_order():
    grads = []
    for first_order in (False, True):
        m = model(first_order=first_order)
        m(batch(), generator=torch.Generator().manual_seed(2)).loss.backward()
        grads.append(m.decoder.heads[1].weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_outer_loss_is_the_mean_of_each_parts_masked_loss():
    out = model(method="mae")(batch(), generator=torch.Generator().manual_seed(3))
    image_loss = mean_over(((out.pred[0] - out.target[0]) ** 2).mean(-1), out.mask[:, :16])
    caption_loss = mean_over(
        torch.nn.functional.cross_entropy(
            out.pred[1].transpose(1, 2), out.target[1], reduction="none"
        ),
        out.mask[:, 16:],
    )
    torch.testing.assert_close(out.recon_loss, (image_loss + caption_loss) / 2)


def test_masking_spans_the_sequence_padding_never_masked_and_support_stays_in_its_part():
    m = model(s_ratio=1.0)
    x = batch(64)
    out = m(x, generator=torch.Generator().manual_seed(4))
    assert out.mask[:, :16].sum() > 0 and out.mask[:, 16:].sum() > 0  # both parts lose tokens
    assert not (out.mask.bool() & out.pad).any() and not (out.support & out.pad).any()
    visible = out.mask.new_zeros(out.mask.shape, dtype=torch.bool)
    visible.scatter_(1, out.ids_keep, out.keep_valid)
    within = visible_neighbours(visible, ((4, 4), (6,)))
    # s_ratio 1: every neighbour
    torch.testing.assert_close(out.support, visible | (out.mask.bool() & within))
    assert (out.support != (visible | (out.mask.bool() & visible_neighbours(visible, (22,))))).any()


def test_norm_target_normalises_the_image_part_only():
    out = model(norm_target=True)(batch(), generator=torch.Generator().manual_seed(5))
    assert out.target_mean[1] is None and out.target[1].dtype == torch.int64
    torch.testing.assert_close(out.target[0].mean(-1), torch.zeros(6, 16), atol=1e-5, rtol=0)


def test_bad_packed_batches_are_refused():
    m, x = model(), batch()
    bad = x.clone()
    bad[0, 65] = 2.5
    with pytest.raises(ValueError, match="part 'caption' holds token ids"):
        m(bad)
    bad[0, 65] = 12
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 12\)"):
        m(bad)
    with pytest.raises(ValueError, match="lengths do not apply"):
        m(x, lengths=torch.full((6,), 3))
    with pytest.raises(ValueError, match=r"expected samples of shape \(70,\)"):
        m(x[:, :60])


def test_dataset_from_parts_normalises_continuous_parts_only():
    rng = np.random.default_rng(0)
    images = rng.normal(5.0, 2.0, size=(40, 2, 8, 8)).astype(np.float32)
    captions = rng.integers(1, 9, size=(40, 6))
    ds = dataset_from_parts(
        {"image": images, "caption": captions},
        y=np.arange(40) % 2,
        patch_size={"image": 4},
        pad_id={"caption": 0},
        vocab_size={"caption": 9},
    )
    assert (
        ds.spec.parts[0].patch_size == (4, 4)
        and ds.spec.parts[1].pad_id == 0
        and len(ds.x_test) == 8
    )
    parts = unpack_parts(ds.spec, ds.x_train)
    # per channel
    np.testing.assert_allclose(parts["image"].mean(axis=(0, 2, 3)), [0, 0], atol=1e-4)
    # whole ids, as given
    assert {tuple(r) for r in parts["caption"]} <= {tuple(r) for r in captions}
    # ids untouched
    np.testing.assert_array_equal(ds.denormalize(ds.x_train)[:, 128:], ds.x_train[:, 128:])
    bad = ds.x_train.copy()
    bad[0, -1] = 9
    with pytest.raises(ValueError, match=r"whole token ids in \[0, 9\)"):
        ArrayDataset("b", ds.spec, bad, None, bad, None)
    with pytest.raises(ValueError, match="different numbers of samples"):
        dataset_from_parts({"image": images, "caption": captions[:10]})


def test_training_lowers_the_reconstruction_error(trained):
    result, data = trained
    assert result.step == 60 and np.isfinite(result.last_metrics["loss"])
    m = model_from_checkpoint(load_checkpoint(result.run_dir), data.spec)
    x = torch.as_tensor(data.x_test[:128])
    losses = [
        mm.eval()(x, generator=torch.Generator().manual_seed(0)).recon_loss.item()
        for mm in (random_init_like(m), m)
    ]
    assert losses[1] < losses[0]


def test_probe_features_and_probe(trained):
    result, data = trained
    m = model_from_checkpoint(load_checkpoint(result.run_dir), data.spec)
    assert extract_features(m, data.x_test[:10]).shape == (10, m.cfg.enc_dim)
    assert extract_features(m, data.x_test[:10], features="both").shape == (10, 2 * m.cfg.enc_dim)
    scores = run_probe(m, data, method="knn", k=5)
    assert scores["accuracy"] > 0.2  # ten classes: well above chance from image and caption


def test_explorer_figure_shows_each_modality(trained):
    result, data = trained
    m = model_from_checkpoint(load_checkpoint(result.run_dir), data.spec)
    rec = reconstruct_chunk(m, data, "test", 0, steps=2)
    assert [p.spec.kind for p in rec.parts] == ["image", "tokens"] and rec.target is None
    fig = explorer_figure(rec, 3, symbols=data.symbols)
    image = [t for t in fig.data if t.type == "image" and t.source.startswith("data:image/png")]
    caption = [
        t
        for t in fig.data
        if t.type == "heatmap"
        and t.text is not None
        and set(np.ravel(t.text)) & set("abcdefghijklmnopqrstuvwxyz")
    ]
    assert image and caption
    assert {
        a.text.split("</b>")[0] for a in fig.layout.annotations if a.text.startswith("<b>")
    } == {"<b>image", "<b>caption"}
    axes = {key for key in fig.layout.to_plotly_json() if key.startswith(("xaxis", "yaxis"))}
    for t in fig.data:
        assert t.xaxis.replace("x", "xaxis") in axes and t.yaxis.replace("y", "yaxis") in axes
    assert non_finite_values(fig) == []


def test_the_explorer_widget_opens_a_multimodal_run(trained):
    result, data = trained
    explorer = ReconstructionExplorer(
        result.run_dir, data, compare=result.run_dir, names=("a", "b")
    )
    explorer.sample.value = 7
    assert explorer.figure.layout.title.text.startswith("test sample 7")
    # attention over the whole sequence, both modalities; bands for the image part
    assert "decoder" in explorer.attention.options and not explorer.bands.disabled
    assert len({t.yaxis for t in explorer.figure.data}) >= 8  # both modalities' panels
    headings = {
        a.text.split("<br>")[0]
        for a in explorer.compare_figure.layout.annotations
        if a.text.startswith("<b>")
    }
    assert headings == {"<b>image</b>", "<b>caption</b>"}  # the comparison shows each modality too
    sweep = MaskingRatioSweep(result.run_dir, data)
    sweep.run(block=True)
    assert sweep.figure.data and non_finite_values(sweep.figure) == []


def test_the_embedding_view_shows_every_part_of_a_hovered_sample(trained):
    result, data = trained
    app = LatentUMAP(result.run_dir, data, run_key="multimodal-hover")
    app.n.value, app.projection.value = 40, "PCA"
    app.compute()
    points = app.figure.data[1]
    app._hover(points, type("Points", (), {"point_inds": [0]})())
    hovered = app.hovered.value
    assert "<div>image</div>" in hovered and "<div>caption</div>" in hovered
    assert hovered.count("<svg") == 2  # the image's pixels and the caption's words


def test_a_part_without_support_tokens_shows_no_support_curve():
    """A caption masked whole has no support set: its curve is absent (NaN, no point), not an error
    of 0."""
    m = model()
    rec = reconstruct(m, batch(), mask_ratio=0.95, seed=0)
    caption = rec.parts[SPEC.part_names.index("caption")]
    empty = caption.support.sum(1) == 0
    assert empty.any() and not empty.all()
    assert np.isnan(caption.sample_support_losses[empty]).all()
    assert np.isfinite(caption.sample_support_losses[~empty]).all()
    sample = int(np.flatnonzero(empty)[0])
    fig = explorer_figure(rec, sample=sample)
    support = [t for t in fig.data if t.name == "support error"]
    assert any(all(v is None for v in t.y) for t in support)  # the caption's: nothing drawn
    assert any(all(v is not None for v in t.y) for t in support)  # the image's: drawn
