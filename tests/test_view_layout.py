"""No text of any view collides with another or is cut: every view's figures, for every modality,
laid out by plotly in headless chromium at two output widths, and the bounding boxes of every
title, note, axis title, tick label, legend entry and cell letter compared (`text_layout`)."""

import shutil

import plotly.graph_objects as go
import pytest
import torch

from conftest import require
from metamae_lab.config import preset_config, run_config
from metamae_lab.data import captioned_digits, load_dataset
from metamae_lab.model import MetaMAE
from metamae_lab.train import pretrain
from metamae_lab.views import (
    LatentUMAP,
    MaskingRatioSweep,
    ReconstructionExplorer,
    TrainingCurvesView,
)
from text_layout import render, text_collisions

# the output area in JupyterLab at a 1400 px wide window, and a narrower one (a split view)
WIDTHS = (968, 720)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    path = shutil.which("chromium")
    require(path is not None, "chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.folder = tmp_path_factory.mktemp("layout")
        yield page
        browser.close()


def tiny(spec, **over):
    torch.manual_seed(0)
    return MetaMAE(spec, preset_config("tiny", **{"mask_ratio": 0.5, **over}))


def explorer_figures(data, compare: bool = False) -> dict[str, go.Figure]:
    "The explorer's figure, with the attention maps on and (optionally) an MAE beside it."
    mae = tiny(data.spec, method="mae") if compare else None
    names = ("MetaMAE", "MAE") if compare else None
    app = ReconstructionExplorer(tiny(data.spec), data, compare=mae, names=names)
    app.steps.value = 2  # one step beyond training: the shaded band and its note
    figures = {"explorer": go.Figure(app.figure)}
    if compare:
        figures["comparison"] = go.Figure(app.compare_figure)
    if not app.channel_scale.disabled:  # sensor channels, each in its own lane
        app.channel_scale.value = "per channel"
        figures["explorer, a scale per channel"] = go.Figure(app.figure)
    for part in set(app.attention.options) - {"off"}:  # multimodal: over both modalities
        app.attention.value = part
        figures[f"{part} attention"] = go.Figure(app.attention_figure)
    return figures


def check(page, figures: dict[str, go.Figure]):
    found = [
        f"{name} at {width} px: {line}"
        for name, fig in figures.items()
        for width in WIDTHS
        for line in text_collisions(render(page, fig, width, page.folder))
    ]
    assert not found, "\n".join(found)


def test_the_check_finds_overlapping_and_cut_texts(page):
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]), layout=dict(title="a title", height=300))
    fig.add_annotation(text="one note", x=0.5, y=0.5, showarrow=False)
    fig.add_annotation(text="another note", x=0.5, y=0.5, showarrow=False)
    fig.add_annotation(text="far out " * 30, x=1.0, y=1.0, xref="paper", showarrow=False)
    found = text_collisions(render(page, fig, 600, page.folder))
    assert any("'one note' overlaps" in line and "'another note'" in line for line in found)
    assert any("is cut" in line and "far out" in line for line in found)
    fig.layout.annotations = fig.layout.annotations[:1]
    assert text_collisions(render(page, fig, 600, page.folder)) == []


@pytest.mark.parametrize("name", ["digits", "basic_motions", "splice", "breast_cancer"])
def test_explorer_texts_do_not_collide(page, name):
    check(page, explorer_figures(load_dataset(name), compare=name == "digits"))


def test_multimodal_explorer_texts_do_not_collide(page):
    check(page, explorer_figures(captioned_digits(), compare=True))


def test_sweep_texts_do_not_collide(page):
    data = load_dataset("basic_motions")
    sweep = MaskingRatioSweep([tiny(data.spec), tiny(data.spec, method="mae")], data)
    sweep.ratio_range.value, sweep.ratio_step.value = (0.3, 0.7), 0.2
    sweep.n_samples.value, sweep.n_seeds.value, sweep.with_probe.value = 16, 2, True
    sweep.run(block=True)
    check(page, {"sweep": go.Figure(sweep.figure)})


def test_training_curves_texts_do_not_collide(page, tmp_path):
    runs = []
    for method in ("metamae", "mae"):
        config = run_config(
            "tiny", dataset="breast_cancer", steps=6, batch_size=8, log_every=2, method=method
        )
        pretrain(config, tmp_path / method, progress=False)
        runs.append(tmp_path / method)
    check(page, {"training curves": go.Figure(TrainingCurvesView(runs).figure)})


@pytest.mark.slow
def test_umap_texts_do_not_collide(page):
    data = load_dataset("digits")
    app = LatentUMAP(tiny(data.spec), data, run_key="layout-digits")
    app.n.value = 100
    app.compute()
    app.wait()
    check(page, {"UMAP": go.Figure(app.figure)})
    # coloured by a value (a colour bar, the legend below), a search, a clicked point's neighbours
    app.colour_by.value, app.search.value = "error from Z*", "#0-300"
    app._click(app.figure.data[1], type("Points", (), {"point_inds": [4]})())
    check(page, {"UMAP by value": go.Figure(app.figure)})
