"""A new kind of data added in one place: a `Modality` subclass defined here and registered, then
trained, probed and drawn by the package as it is. The built-in kinds answer through the same
objects."""

import numpy as np
import pytest
import torch

from metamae_lab.config import ModalitySpec, run_config
from metamae_lab.data.dataset import ArrayDataset, infer_kind
from metamae_lab.modality import MODALITIES, Modality, modality_of, register_modality


class Curve(Modality):
    "A plane curve: `(N, 2)` points (x, y); `g` consecutive points make a token."

    name, sample_form = "curve", "(N, 2)"

    def patched_dims(self, spec):
        return spec.shape[:1]  # patches cut the points, never the coordinates

    def channels(self, spec):
        return spec.shape[1]  # x and y: every token holds both of each of its points

    def patchify(self, x, spec):
        return x.reshape(x.shape[0], spec.num_tokens, -1)  # (B, L, g * 2)

    def unpatchify(self, patches, spec):
        return patches.reshape(patches.shape[0], *spec.shape)  # (B, N, 2)

    def draw_reconstruction(self, fig, spec, panels, row, channel):
        import plotly.graph_objects as go

        for col, points in enumerate(panels, 1):  # (N, 2) each, NaN at masked points
            fig.add_trace(
                go.Scatter(x=points[:, 0], y=points[:, 1], mode="lines", name="curve"), row, col
            )


@pytest.fixture
def curve():
    register_modality(Curve)
    yield MODALITIES["curve"]
    del MODALITIES["curve"]


def curves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    "`n` samples of 16 points: circles (class 0) and straight lines (class 1), noisy."
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, 16)
    y = np.arange(n) % 2
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    line = np.stack([t / np.pi - 1, t / np.pi - 1], 1)
    x = np.where(y[:, None, None] == 0, circle, line) + 0.05 * rng.standard_normal((n, 16, 2))
    return x.astype(np.float32), y.astype(np.int64)


def test_a_new_kind_trains_probes_and_draws(curve, tmp_path):
    from metamae_lab.analysis import reconstruct
    from metamae_lab.figures import reconstruction_figure
    from metamae_lab.probe import run_probe
    from metamae_lab.checkpoint import open_run
    from metamae_lab.train import pretrain

    spec = ModalitySpec("curve", (16, 2), 4)
    assert (spec.modality, spec.grid, spec.patch_dim, spec.summary) == (
        curve,
        (4,),
        8,
        "curve (16, 2), patch 4",
    )
    assert ModalitySpec.from_dict(spec.to_dict()) == spec
    (xtr, ytr), (xte, yte) = curves(48, 0), curves(16, 1)
    data = ArrayDataset("curves", spec, xtr, ytr, xte, yte, class_names=["circle", "line"])
    run = run_config("tiny", dataset="curves", steps=3, batch_size=8)
    result = pretrain(run, tmp_path / "run", dataset=data, progress=False)
    assert result.step == 3 and np.isfinite(result.last_metrics["loss"])
    model = open_run(tmp_path / "run", dataset=data)[0]
    assert 0.0 <= run_probe(model, data, method="knn", k=5)["accuracy"] <= 1.0
    rec = reconstruct(model.eval(), torch.as_tensor(xte[:2]))
    fig = reconstruction_figure(rec, "curves")
    drawn = [t for t in fig.data if t.name == "curve"]
    assert len(drawn) == 8  # two samples, four columns: the kind's own drawing
    # the masked input: NaN at each masked token's points
    masked = np.isnan(np.asarray(drawn[1].x, dtype=float))
    assert masked.reshape(4, 4).all(1).sum() == rec.mask[0].sum() > 0


def test_a_new_kind_is_checked_by_the_base_class(curve):
    with pytest.raises(ValueError, match=r"a curve sample has shape \(N, 2\), got shape \(16,\)"):
        ModalitySpec("curve", (16,), 4)
    with pytest.raises(ValueError, match="patch size 5 does not divide the input size 16"):
        ModalitySpec("curve", (16, 2), 5)
    with pytest.raises(
        ValueError, match="vocab_size and pad_id apply to tokens only, not to curve"
    ):
        ModalitySpec("curve", (16, 2), 4, vocab_size=3)
    with pytest.raises(NotImplementedError, match="the paper's code has no curve modality"):
        curve.weight_to_paper(torch.zeros(8, 8), ModalitySpec("curve", (16, 2), 4))


def test_an_unregistered_kind_is_refused_by_name():
    assert "curve" not in MODALITIES
    with pytest.raises(
        ValueError, match=r"unknown modality kind 'curve': expected one of \('image', "
    ):
        ModalitySpec("curve", (16, 2), 4)


def test_the_built_in_kinds_answer_what_they_are():
    image, sequence, tokens, tabular, multimodal = (
        modality_of(k) for k in ("image", "sequence", "tokens", "tabular", "multimodal")
    )
    assert [m.discrete for m in (image, sequence, tokens, tabular)] == [False, False, True, False]
    assert [m.channels_first for m in (image, sequence, tokens, tabular)] == [
        True,
        True,
        False,
        False,
    ]
    assert multimodal.composite and not image.composite
    assert (
        infer_kind(np.zeros((2, 3, 4, 4))) == "image"
        and infer_kind(np.zeros((2, 5), np.int64)) == "tokens"
    )
    assert (
        infer_kind(np.zeros((2, 5))) == "tabular" and infer_kind(np.zeros((2, 1, 5))) == "sequence"
    )
    spec = ModalitySpec("sequence", (3, 12), 4)
    x = torch.randn(2, 3, 12)
    assert torch.equal(sequence.unpatchify(sequence.patchify(x, spec), spec), x)
    assert torch.equal(sequence.patchify(x, spec), sequence.reference_patches(x, spec))
