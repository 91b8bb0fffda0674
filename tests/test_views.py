"""Headless tests of the views: every control updates its figure, the same seed gives the same
figure, every modality renders legibly, and each defect a researcher met is caught."""

import json
import re

import numpy as np
import pytest
import torch

from helpers import SPECS, make_batch
from metamae_lab.analysis import (
    CHUNK,
    attention_maps,
    latent_samples,
    masked_probe_accuracy,
    nearest_neighbours,
    reconstruct,
)
from metamae_lab.config import preset_config, run_config
from metamae_lab.data import dataset_from_arrays, load_dataset
from metamae_lab.figures import (
    inside_selection,
    attention_figure,
    comparison_figure,
    explorer_figure,
    non_finite_values,
    sweep_figure,
    umap_figure,
)
from metamae_lab.model import MetaMAE
from metamae_lab.probe import BASELINE_SEED, random_init_like
from metamae_lab.train import pretrain
from metamae_lab import views
from metamae_lab.views import (
    LatentUMAP,
    MaskingRatioSweep,
    ReconstructionExplorer,
    TrainingCurvesView,
    update_figure_widget,
)


def tiny_model(spec, **over):
    torch.manual_seed(0)
    return MetaMAE(spec, preset_config("tiny", **{"mask_ratio": 0.5, "s_ratio": 0.5, **over}))


def figure_data(fig):
    "The traces as plain JSON data, comparable with ==."
    return json.loads(fig.to_json())["data"]


def _dataset_for(name, n=24, symbols=None):
    spec = SPECS[name]
    x, lengths = make_batch(name, batch_size=n)
    y = np.arange(n) % 3
    if lengths is not None:  # long enough that every sample has tokens to mask at any ratio
        lengths = torch.as_tensor(
            np.maximum(spec.shape[-1] - (np.arange(n) % 4) * 2, spec.shape[-1] // 2)
        )
    return dataset_from_arrays(
        x.numpy(),
        y,
        None if lengths is None else lengths.numpy(),
        kind=spec.kind,
        patch_size=spec.patch_size if spec.kind == "image" else spec.patch_size[0],
        name=name,
        test_fraction=0.5,
        symbols=symbols,
    )


@pytest.mark.parametrize("name", list(SPECS))
def test_explorer_figure_renders_every_modality_without_nan(name):
    spec = SPECS[name]
    x, lengths = make_batch(name)
    rec = reconstruct(tiny_model(spec), x, lengths, seed=0, steps=2)
    for sample in range(len(x)):
        fig = explorer_figure(
            rec, sample=sample, step=1, symbols=list("abcdef") if spec.is_discrete else None
        )
        assert non_finite_values(fig) == [], "NaN in a figure's JSON"  # defect 3
        n_real = int((~rec.pad[sample]).sum())
        if spec.is_discrete:  # padding is not drawn: the strip holds the real tokens only
            strip = next(t for t in fig.data if t.type == "heatmap")
            assert sum(1 for row in strip.text[:1] for t in row if t != "") == min(n_real, 30)
    if spec.kind == "image" and spec.channels >= 3:
        assert [t.type for t in explorer_figure(rec, bands=(0, 1, 2)).data][:4] == ["image"] * 4
    again = reconstruct(tiny_model(spec), x, lengths, seed=0, steps=2)  # same seed, same figure
    assert figure_data(explorer_figure(again, 0, 1)) == figure_data(explorer_figure(rec, 0, 1))
    other = reconstruct(tiny_model(spec), x, lengths, seed=1, steps=2)
    assert not np.array_equal(other.mask, rec.mask)
    assert figure_data(explorer_figure(rec, 0, 1)) != figure_data(
        explorer_figure(rec, 0, 1, all_errors=True)
    )


def test_sequence_channels_keep_their_colour_and_share_one_scale():  # defect 1
    x, _ = make_batch("sequence")
    fig = explorer_figure(reconstruct(tiny_model(SPECS["sequence"]), x, seed=0, steps=2), 0)
    colours = {}
    for t in fig.data:
        if t.type == "scatter" and t.name and t.name.startswith("channel"):
            colours.setdefault(t.name, set()).add(t.line.color)
    assert len(colours) == 6 and all(len(c) == 1 for c in colours.values())
    assert len({c.pop() for c in colours.values()}) == 6  # and channels differ from each other
    ranges = {tuple(fig.layout[f"yaxis{'' if i == 1 else i}"].range) for i in range(1, 5)}
    assert len(ranges) == 1, ranges  # one y scale for the four panels of the first row
    labelled = [fig.layout[f"yaxis{'' if i == 1 else i}"].showticklabels for i in range(1, 5)]
    # tick labels on the first panel only: none spill over
    assert labelled == [True, False, False, False]


def test_tokens_are_spelled_in_the_dataset_symbols_and_wrapped():  # defect 2
    data = _dataset_for("tokens_varlen", symbols=list("ACGTNX"))
    assert data.symbols == list("ACGTNX")
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    strip = next(t for t in app.figure.data if t.type == "heatmap")
    shown = {t for row in strip.text for t in row} - {""}
    assert shown and shown <= set("ACGTNX◦"), shown
    long_rec = reconstruct(tiny_model(SPECS["tokens_pad"]), *make_batch("tokens_pad"), seed=0)
    wrapped = next(t for t in explorer_figure(long_rec, 0, per_row=8).data if t.type == "heatmap")
    # 16 tokens, 8 per block: two blocks of 4 rows + gap
    assert len(wrapped.z[0]) == 8 and len(wrapped.y) == 2 * 5
    assert len(set(wrapped.y)) == len(wrapped.y)  # unique row labels: no block hides another


@pytest.mark.parametrize(
    "name", ["image_multispectral", "sequence_varlen", "tokens_varlen", "tabular"]
)
def test_explorer_app_controls_update_the_figure(name):
    data = _dataset_for(name)
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    snapshots = [figure_data(app.figure)]
    for control, value in [
        (app.sample, 2),
        (app.mask_ratio, 0.75),
        (app.seed, 5),
        (app.steps, 4),
        (app.step, 1),
        (app.all_errors, True),
    ]:
        control.value = value
        snapshots.append(figure_data(app.figure))
        assert snapshots[-1] != snapshots[-2], (
            f"changing {control.description} did not change the figure"
        )
    assert app.step.max == 4 and app.last_response_s is not None
    assert app.status.value.startswith("updated in")
    # back to an earlier state: the cache gives the identical figure
    app.mask_ratio.value, app.seed.value = (0.5, 0)
    app.steps.value, app.step.value, app.sample.value, app.all_errors.value = 4, 1, 2, False
    first = figure_data(app.figure)
    app.sample.value = 0
    app.sample.value = 2
    assert figure_data(app.figure) == first


def test_choosing_samples_by_class_and_by_error_with_the_label_in_the_title():
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data, rank_limit=128)
    assert app.sample.max == len(data.x_test) - 1  # every sample of the split, not the first few
    app.sample.value = 300  # beyond the first chunk
    assert app.figure.layout.title.text.startswith(
        f"test sample 300, class {data.class_names[data.y_test[300]]}"
    )
    app.choose.value, app.cls.value = "by class", 4
    app.nth.value = 2
    assert app.sample.value == np.flatnonzero(data.y_test == 4)[2]
    app.choose.value = "largest error"
    errors = []
    for n in range(3):
        app.nth.value = n
        errors.append(
            app.reconstruction(app.sample.value)[0].sample_masked_losses[
                app.sample.value % CHUNK, -1
            ]
        )
        assert f"error rank {n + 1}" in app.figure.layout.title.text
    assert errors == sorted(errors, reverse=True) and app.sample.value < 128
    app.show(5)
    assert app.choose.value == "by index" and app.sample.value == 5


def test_attention_and_two_runs_side_by_side():
    data = load_dataset("digits")
    mae = tiny_model(data.spec, method="mae")
    app = ReconstructionExplorer(tiny_model(data.spec), data, compare=mae, names=("MetaMAE", "MAE"))
    assert not app.attention_figure.data and app.compare_figure.data
    # no blank axes (defect 8)
    assert app.attention_box.layout.display == "none" and app.compare_figure in app.widget.children
    title = app.compare_figure.layout.title.text
    assert "MetaMAE" in title and "MAE" in title
    app.attention.value = "encoder"
    assert app.attention_figure.data and non_finite_values(app.attention_figure) == []
    assert app.attention_box.layout.display is None  # shown
    app.attention.value = "decoder"
    app.layer.value = 1
    assert "decoder, layer 1/1" in app.attention_figure.layout.annotations[0].text
    app.attention.value = "off"
    assert app.attention_box.layout.display == "none"  # hidden, its figure kept on the page
    alone = ReconstructionExplorer(tiny_model(data.spec), data)
    assert alone.compare_figure not in alone.widget.children
    x = torch.as_tensor(data.x_test[:CHUNK])
    maps = attention_maps(app.model, x, seed=0, rows=[3])
    rec = reconstruct(app.model, x, seed=0)
    # the maps are of the sample shown, under its mask
    assert np.array_equal(maps.mask[0], rec.mask[3])
    with pytest.raises(ValueError, match="under the same mask"):
        comparison_figure({"a": rec, "b": reconstruct(mae, x, seed=1)}, 0)


def test_any_number_of_runs_compared_on_one_sample():
    data = load_dataset("digits")
    runs = [tiny_model(data.spec), tiny_model(data.spec, method="mae"), tiny_model(data.spec)]
    app = ReconstructionExplorer(runs[0], data, compare=runs[1:])
    assert app.names == ("metamae", "metamae-1", "metamae-2")  # models given as such, numbered
    assert sum(line.startswith("below: ") for line in app.header_lines) == 2
    titles = [a.text for a in app.compare_figure.layout.annotations]
    assert titles[2:5] == ["metamae (Z*)", "metamae-1 (Z)", "metamae-2 (Z*)"], titles
    app.show(3)  # every run redrawn on the new sample, under its mask
    assert "sample 3," in app.compare_figure.layout.title.text
    assert app.compare_figure.layout.title.text.count("metamae") >= 6  # 3 errors and 3 means
    with pytest.raises(ValueError, match="one for each compared, 3 in all; got 2"):
        ReconstructionExplorer(runs[0], data, compare=runs[1:], names=("a", "b"))


def test_sweep_caches_stops_and_draws_what_it_computed(monkeypatch):
    data = load_dataset("digits")
    model = tiny_model(data.spec)
    sweep = MaskingRatioSweep(model, data, run_key="sweep-test")
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (
        (0.3, 0.7),
        0.2,
        32,
        2,
    )
    ((lz, lzs, acc),) = sweep.run(block=True).values()
    assert lz.shape == (3, 2) and np.isfinite(lz).all() and acc is None
    assert sweep.computed == 6 and sweep.progress.value == 6
    data_first = figure_data(sweep.figure)
    draws, draw = [], sweep._draw_points
    sweep._draw_points = lambda done, figure=None: (draws.append(figure), draw(done, figure))
    sweep.run(block=True)
    assert sweep.computed == 6 and figure_data(sweep.figure) == data_first  # all from the cache
    assert sum(f is not None for f in draws) == 1  # drawn once, not once a ratio
    sweep.ratio_range.value = (0.3, 0.9)
    monkeypatch.setattr(views, "REDRAW_EVERY_S", 0.0)  # redrawn after every ratio
    draws.clear()
    sweep.run(block=True)
    assert sweep.computed == 8  # only the new ratio
    assert sum(f is not None for f in draws) == 4  # the last figure is not sent twice
    del sweep._draw_points
    sweep.stop()  # a stop left over from before a run does not end the next run
    ((lz, lzs, _),) = sweep.run(block=True).values()
    assert "stopped" not in sweep.status.value
    lines = [s for s in sweep.figure.layout.shapes if s.type == "line" and s.x0 == s.x1]
    assert {s.x0 for s in lines} == {0.5}  # the ratio the model was trained at is marked
    # the title says what the points show: where the loss from Z* is lowest, against chance
    best = int(np.argmin(lzs.mean(1)))
    title = sweep.figure.layout.title.text
    assert f"lowest {lzs.mean(1)[best]:#.3g} (from Z*) at {sweep.ratios()[best]:g}" in title
    assert "trained at 0.5" in title and "chance " in title
    assert [t.name for t in sweep.figure.data if t.name and "chance" in t.name]  # its line
    stopper = MaskingRatioSweep(model, data, run_key="sweep-stop")
    stopper.n_samples.value = 16
    # stop as soon as the first point is done
    stopper._value = lambda *a, **k: (stopper.stop(), dict(z=1.0, z_adapted=0.5, chance=2.0))[1]
    stopper.run(block=True)
    assert stopper.progress.value == 1 and "stopped" in stopper.status.value
    # the point before the stop is drawn
    assert len([y for y in stopper.figure.data[1].y if y is not None]) == 1


def test_several_runs_swept_on_one_plot(tmp_path, monkeypatch):
    inits = []  # the baseline's random-init models, made once per run, not once per point
    monkeypatch.setattr(
        views, "random_init_like", lambda *a: inits.append(a) or random_init_like(*a)
    )
    data = load_dataset("breast_cancer")
    runs = [tiny_model(data.spec), tiny_model(data.spec, method="mae", mask_ratio=0.75)]
    sweep = MaskingRatioSweep(runs, data)
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (
        (0.4, 0.6),
        0.2,
        32,
        1,
    )
    sweep.with_probe.value = True
    curves = sweep.run(block=True)
    assert len(curves) == 2 and all(acc.shape == (2, 1) for _, _, acc in curves.values())
    assert len(inits) == 1 and inits[0][0] is runs[0]
    # band + mean: MetaMAE for Z, Z*, Z* − Z and the probe; the MAE for Z and the probe; chance;
    # the probe's baseline
    assert len(sweep.figure.data) == 2 * 4 + 2 * 2 + 2
    names = [t.name for t in sweep.figure.data if t.name]
    # the baseline: the first run's probe (of Z*) on a random-init encoder of its architecture
    (baseline,) = [t for t in sweep.figure.data if t.name == "probe of a random-init encoder"]
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    random_init = random_init_like(runs[0], BASELINE_SEED)
    expected = [masked_probe_accuracy(random_init, data, r, 0, adapted=True) for r in (0.4, 0.6)]
    assert np.allclose(baseline.y, expected) and baseline.yaxis == "y3"
    sweep.cache.clear()
    sweep.random_inits.clear()
    torch.manual_seed(7)
    sweep.run(block=True)  # the baseline's init leaves the session's random state alone
    assert len(inits) == 2
    assert torch.equal(torch.rand(3), before)
    assert not [n for n in names if n.startswith("metamae-1") and "Z*" in n]  # no Z* for the MAE
    assert "metamae-1: probe accuracy (Z, masked input)" in names
    trained = {s.x0 for s in sweep.figure.layout.shapes if s.type == "line" and s.x0 == s.x1}
    assert sorted(trained) == [0.5, 0.75]
    with pytest.raises(ValueError, match="the model was built for"):
        MaskingRatioSweep([runs[0], tiny_model(SPECS["tabular"])], data)
    for name in ("breast_cancer", "digits"):  # two finished runs on different modalities
        pretrain(
            run_config("tiny", dataset=name, steps=1, batch_size=8, log_every=1, ckpt_every=1),
            tmp_path / name,
            progress=False,
        )
    with pytest.raises(ValueError, match="share a modality"):
        MaskingRatioSweep([tmp_path / "breast_cancer", tmp_path / "digits"])


@pytest.mark.slow
def test_umap_view_toggles_subsamples_caches_and_opens_samples():
    data = load_dataset("digits")
    app = LatentUMAP(tiny_model(data.spec), data, run_key="umap-test", max_points=120)
    app.n.value = 200
    app.compute()
    app.wait()
    title = app.figure.layout.title.text
    assert "subsample of 120" in title
    assert title.endswith(":<br>UMAP (15 neighbours, min dist 0.1, 200 epochs)")
    # pair lines, Z and Z* per class, displacement bars
    assert len(app.figure.data) == 1 + 2 * 10 + 1
    # one entry per class
    assert sum(bool(t.showlegend) for t in app.figure.data if t.type == "scatter") == 10
    first = figure_data(app.figure)
    app.show_z.value = False
    assert all(
        t.visible is False
        for t in app.figure.data
        if t.type == "scatter" and t.marker.symbol == "circle"
    )
    app.show_z.value = True
    assert figure_data(app.figure) == first
    app.compute()  # cached: the same embedding
    assert figure_data(app.figure) == first
    explorer = ReconstructionExplorer(app.model, data)
    app.link(explorer)
    point = app.figure.data[1]
    points = type("Points", (), {"point_inds": [2]})()
    app._hover(point, points)
    index = int(point.customdata[2])
    assert f"sample {index}" in app.hovered.value and "<svg" in app.hovered.value
    app._click(point, points)
    assert explorer.sample.value == index and explorer.figure.layout.title.text.startswith(
        f"test sample {index},"
    )


def _points(*indices):
    "What plotly hands a click, hover or selection handler: the trace's point indices."
    return type("Points", (), {"point_inds": list(indices)})()


def test_embedding_view_colours_searches_finds_neighbours_and_selects():
    data = load_dataset("digits")
    model = tiny_model(data.spec)
    app = LatentUMAP(model, data, run_key="projector-test", max_points=80)
    app.n.value, app.projection.value = 80, "PCA"
    app.compute()
    entry = app.cache[app._current[0]]
    x, _, _ = data.split("test")
    expected = latent_samples(model, torch.as_tensor(x[entry.idx]), seed=0)
    # colour by a value: one trace each for Z and Z*, the values those of latent_samples
    app.colour_by.value = "error from Z*"
    z_points, z_adapted_points = app.figure.data[1:3]
    assert (z_points.name, z_adapted_points.name) == ("Z (circles)", "Z* (crosses)")
    assert np.allclose(z_points.marker.color, expected.error_z_adapted, rtol=1e-5)
    assert z_points.marker.colorbar.title.text == "error from Z*"
    # a search fades the samples it does not match
    app.search.value = "#0-100, 7"
    matched = (entry.idx <= 100) | (entry.labels == 7)
    assert np.array_equal(np.array(z_points.marker.opacity) == 1.0, matched)
    app.search.value = "seven"
    assert "'seven' is neither #index" in app.status.value
    app.search.value = ""
    # a click: the k nearest in Z and in Z*, ringed and listed, and the explorer opens the sample
    explorer = ReconstructionExplorer(model, data)
    app.link(explorer)
    app.k.value = 5
    app._click(app.figure.data[1], _points(3))
    near_z, dist_z = nearest_neighbours(expected.z, 3, 5)
    rings = {t.name: t for t in app.figure.data}
    assert len(rings["nearest in Z"].x) == 5 and len(rings["nearest in Z*"].x) == 5
    assert f"#{entry.idx[near_z[0]]} (" in app.neighbours.value
    assert f"{dist_z[0]:.3g}" in app.neighbours.value
    assert explorer.sample.value == entry.idx[3]
    # a box drawn on the map, as the browser reports it, becomes the explorer's selection
    map_z, map_z_adapted = entry.maps[("PCA", ())]
    low, high = np.median(map_z, 0), map_z.max(0)
    box = dict(type="rect", xref="x", yref="y", x0=low[0], x1=high[0], y0=low[1], y1=high[1])
    app.figure._js2py_relayout = {"relayout_data": {"selections": [box]}, "source_view_id": "v"}
    inside = inside_selection(map_z, box) | inside_selection(map_z_adapted, box)
    assert inside.sum() >= 2 and list(app.selection) == list(entry.idx[inside])
    assert explorer.choose.value == "selection" and explorer.sample.value == app.selection[0]
    explorer.nth.value = 1
    assert explorer.sample.value == app.selection[1]
    # another projection: t-SNE in the background, PCA until it is ready
    app.projection.value = "t-SNE"
    app.wait()
    assert app.figure.layout.title.text.endswith("t-SNE (perplexity 30)")
    assert app.perplexity.disabled is False and app.n_neighbors.disabled is True
    # only t-SNE's setting on show; UMAP's again once it is chosen
    assert app.n_epochs.layout.display == "none" and app.perplexity.layout.display is None
    app.projection.value = "UMAP"
    assert app.n_epochs.layout.display is None and app.perplexity.layout.display == "none"
    key = app.map_key()
    app.min_dist.value = float(np.nextafter(0.1, 1))  # as the browser's slider steps may give it
    assert app.map_key() == key  # the map made at 0.1, not a new fit
    app.wait()


def test_the_embedding_view_colours_by_values_of_ones_own():
    data = load_dataset("digits")
    score = np.arange(len(data.split("test")[0])) % 7 * 0.5  # one number per test sample
    model = tiny_model(data.spec)
    app = LatentUMAP(model, data, run_key="projector-values", values={"score": score})
    assert app.colour_by.options[-1] == "score"
    app.n.value, app.projection.value = 40, "PCA"
    app.compute()
    app.colour_by.value = "score"
    entry = app.cache[app._current[0]]
    z_points = app.figure.data[1]
    assert np.allclose(z_points.marker.color, score[entry.idx])  # each sample its own value
    assert z_points.marker.colorbar.title.text == "score"
    with pytest.raises(ValueError, match=r"has shape \(\d+,\): one value per sample"):
        LatentUMAP(model, data, run_key="projector-values", values={"score": score[:-1]})


def test_the_embedding_view_reads_a_projector_metadata_file(tmp_path):
    data = load_dataset("digits")
    n_test = len(data.split("test")[0])
    site = np.array(["north", "south", "east"])[np.arange(n_test) % 3]
    rows = ["site\tscore"] + [f"{s}\t{i / 2}" for i, s in enumerate(site)]
    (tmp_path / "metadata.tsv").write_text("\n".join(rows) + "\n")  # as add_embedding writes it
    app = LatentUMAP(
        tiny_model(data.spec), data, run_key="projector-tsv", values=tmp_path / "metadata.tsv"
    )
    assert app.colour_by.options[-2:] == ("site", "score")
    app.n.value, app.projection.value = 40, "PCA"
    app.compute()
    entry = app.cache[app._current[0]]
    app.colour_by.value = "site"  # text: one colour a category, as the classes
    layout = app.figure.layout
    assert layout.legend.title.text == "site" and layout.annotations[1].text.endswith("by site")
    shown = {t.name: t for t in app.figure.data if t.type == "scatter" and t.customdata is not None}
    assert set(shown) == set(site[entry.idx])
    assert set(site[list(shown["north"].customdata)]) == {"north"}
    bars = next(t for t in app.figure.data if t.type == "bar")
    assert list(bars.x) == sorted(set(site[entry.idx]))  # the displacement by site
    app.colour_by.value = "score"  # numbers: one scale
    assert np.allclose(app.figure.data[1].marker.color, entry.idx / 2)
    app.search.value = "North"  # a text value searched as a class name is: the others fade
    opaque = np.asarray(app.figure.data[1].marker.opacity) == 1.0
    assert list(opaque) == list(site[entry.idx] == "north")


def test_an_mae_embedding_offers_no_values_of_z_star():
    data = load_dataset("digits")
    app = LatentUMAP(tiny_model(data.spec, method="mae"), data, run_key="projector-mae")
    assert "error from Z*" not in app.colour_by.options and "error from Z" in app.colour_by.options
    app.n.value, app.projection.value = 40, "PCA"
    app.compute()
    app._click(app.figure.data[1], _points(0))
    assert "nearest in Z:" in app.neighbours.value and "nearest in Z*" not in app.neighbours.value


def test_figures_fill_the_output_area_and_output_stays_bounded():  # defects 4 and 7
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    assert app.figure.layout.width is None  # no fixed width: the widget fills the output area
    update_figure_widget(app.figure, umap_figure(np.zeros((4, 2)), np.ones((4, 2)), [0, 1, 0, 1]))
    assert app.figure.layout.width is None
    for value in range(1, 30):
        app.sample.value = value
    # one line, replaced: the output does not grow
    assert re.fullmatch(r"updated in \d+ ms", app.status.value)
    assert not any(type(w).__name__ == "Output" for w in app.widget.children)


def test_a_control_change_reaches_the_browser_as_one_update():
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    sent = []
    names = [n for n in app.figure.trait_names() if n.startswith("_py2js_")]
    app.figure.observe(lambda c: c["new"] is None or sent.append(c["new"]), names=names)
    app.steps.value = 2
    (update,) = sent  # one message: the browser draws once
    assert set(update) >= {"style_data", "layout_data"} and update["layout_data"]
    # only what changed is sent, and the widget now holds the freshly built figure
    assert "template" not in update["layout_data"]
    fresh = app.build_figure()
    fresh.layout.width, fresh.layout.autosize = None, True
    strip = lambda traces: [{k: v for k, v in t.items() if k != "uid"} for t in traces]  # noqa: E731
    assert strip(figure_data(app.figure)) == strip(figure_data(fresh))
    assert app.figure.layout.to_plotly_json() == fresh.layout.to_plotly_json()


def test_builders_are_pure_functions_of_arrays():
    fig = sweep_figure(
        [0.2, 0.5],
        {"a": (np.array([[1.0, 1.2], [2.0, np.nan]]), np.array([[0.9, 1.0], [1.8, 1.9]]), None)},
    )
    assert len(fig.data) == 6 and non_finite_values(fig) == []  # band + mean: Z, Z*, Z* − Z
    emb = np.random.default_rng(0).normal(size=(6, 2))
    fig = umap_figure(
        emb,
        emb + 1,
        np.array([0, 0, 1, 1, 2, 2]),
        ["a", "b", "c"],
        displacement={0: (1, 0), 1: (2, 0), 2: (3, 0)},
    )
    assert fig.data[-1].y == (1, 2, 3)
    x, _ = make_batch("image_rgb_rect")
    maps = attention_maps(tiny_model(SPECS["image_rgb_rect"]), x, rows=[0])
    assert non_finite_values(attention_figure(maps, SPECS["image_rgb_rect"], 0, "decoder")) == []


def test_export_writes_html_and_png(tmp_path, chromium):
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    app.export(tmp_path / "explorer")
    assert (tmp_path / "explorer.html").exists() and (tmp_path / "plotly.min.js").exists()
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_default_export_names_differ_by_what_is_shown(tmp_path, monkeypatch):  # defect 6
    monkeypatch.chdir(tmp_path)  # no settings.ini above: exports go to ./figures/views
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data)
    first = app.export()[0]
    app.sample.value = 2
    second = app.export()[0]
    assert first != second and first.exists() and second.exists()
    assert first.parent == tmp_path / "figures" / "views" and "sample2" in second.name


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["image_multispectral", "sequence_varlen", "tokens_varlen", "tabular"]
)
def test_sweep_and_umap_views_on_every_modality(name):
    data = _dataset_for(name, n=40)
    model = tiny_model(data.spec)
    sweep = MaskingRatioSweep(model, data, run_key=f"modality-{name}")
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (
        (0.3, 0.7),
        0.4,
        16,
        2,
    )
    ((lz, lzs, _),) = sweep.run(block=True).values()
    assert lz.shape == (2, 2) and np.isfinite(lz).all() and np.isfinite(lzs).all()
    umap_app = LatentUMAP(model, data, run_key=f"modality-{name}")
    umap_app.n.value = 20
    umap_app.compute()
    umap_app.wait()
    classes = len(np.unique(data.y_test))
    assert len(umap_app.figure.data) == 1 + 2 * classes + 1
    assert sum(len(t.x) for t in umap_app.figure.data[1:-1]) == 2 * 20
    assert non_finite_values(umap_app.figure) == []


def test_training_curves_follow_a_run_as_it_logs(tmp_path):
    run_dir = tmp_path / "run"
    config = run_config("tiny", dataset="breast_cancer", steps=4, batch_size=8, log_every=2)
    pretrain(config, run_dir, progress=False)
    view = TrainingCurvesView(run_dir, smoothing=0.0)
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (z_star,) = [t for t in view.figure.data if t.name == "from Z*" and t.showlegend]
    assert list(z_star.x) == [r["step"] for r in logged]
    assert np.allclose(z_star.y, [r["recon_loss"] for r in logged])  # smoothing 0: as logged
    alpha = logged[-1]["inner_lr"]
    trained = f"run: MetaMAE, K=1, α={alpha:.3g}; mask ratio 0.85; logged to step 4 (2 lines)"
    assert trained in view.header.value, view.header.value
    # the run goes on: a re-read shows the new line (and a line cut short is skipped)
    later = {**logged[-1], "step": 6, "recon_loss": 0.1}
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.write(json.dumps(later) + "\n" + '{"step": 8, "rec')
    view.reread()
    (z_star,) = [t for t in view.figure.data if t.name == "from Z*" and t.showlegend]
    assert list(z_star.x)[-1] == 6 and z_star.y[-1] == 0.1
    assert "logged to step 6 (3 lines)" in view.header.value
    with pytest.raises(FileNotFoundError, match="has no metrics.jsonl"):
        TrainingCurvesView(tmp_path)


def test_the_explorer_scales_sensor_channels_together_or_each_on_its_own():
    data = _dataset_for("sequence")
    app = ReconstructionExplorer(tiny_model(data.spec), data, compare=None)
    assert app.channel_scale.disabled is False and app.figure.layout.yaxis.ticktext is None
    app.channel_scale.value = "per channel"
    axis = app.figure.layout.yaxis
    assert list(axis.range) == [0, 6] and list(axis.ticktext) == [f"ch {c}" for c in range(6)]
    lines = [t for t in app.figure.data if t.xaxis == "x" and t.type == "scatter"]
    for ch, line in enumerate(lines):  # each channel within its own lane, channel 0 on top
        heights = np.array(line.y, dtype=float)
        assert 5 - ch <= np.nanmin(heights) and np.nanmax(heights) <= 6 - ch
    image = _dataset_for("image_rgb_rect")
    assert ReconstructionExplorer(tiny_model(image.spec), image).channel_scale.disabled


def test_the_explorer_steps_through_a_runs_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    config = run_config("tiny", dataset="digits", steps=6, batch_size=16, ckpt_every=2)
    pretrain(config, run_dir, progress=False)
    app = ReconstructionExplorer(run_dir)
    assert [label for label, _ in app.checkpoint.options] == ["step 2", "step 4", "step 6"]
    assert app.checkpoint.value == 6 and "step 6" in app.header.value
    app.sample.value = 3
    newest = figure_data(app.figure)
    rec, row = app.reconstruction(3)
    app.checkpoint.value = 2  # the same sample under the same mask, with step 2's weights
    assert "; step 2" in app.header.value and app.model is not None
    earlier, row_2 = app.reconstruction(3)
    assert row_2 == row and np.array_equal(earlier.mask, rec.mask)
    assert not np.allclose(earlier.preds[0], rec.preds[0])
    assert figure_data(app.figure) != newest
    assert app.export_name().endswith("_checkpoint2")
    app.checkpoint.value = 6
    assert figure_data(app.figure) == newest  # cached, and the same
    given = ReconstructionExplorer(tiny_model(load_dataset("digits").spec), "digits")
    assert given.checkpoint.disabled and given.checkpoint.options == (("the model given", None),)
    assert given.checkpoint.label == "the model given"  # shown, not a blank chooser
