("Headless tests of the views: every control updates its figure, the same seed gives the same figure, "
 "every modality renders.")
import json

import numpy as np
import pytest
import torch

from helpers import SPECS, make_batch
from metamae_lab.config import preset_config
from metamae_lab.data import dataset_from_arrays, load_dataset
from metamae_lab.model import MetaMAE
from metamae_lab.analysis import reconstruct
from metamae_lab.figures import explorer_figure, sweep_figure, umap_figure
from metamae_lab.views import LatentUMAP, MaskingRatioSweep, ReconstructionExplorer


def tiny_model(spec, **over):
    torch.manual_seed(0)
    return MetaMAE(spec, preset_config("tiny", mask_ratio=0.5, s_ratio=0.5, **over))


def figure_data(fig):
    "The traces as plain JSON data, comparable with ==."
    return json.loads(fig.to_json())["data"]


@pytest.mark.parametrize("name", list(SPECS))
def test_explorer_figure_renders_every_modality(name):
    spec = SPECS[name]
    x, lengths = make_batch(name)
    traj = reconstruct(tiny_model(spec), x, lengths, seed=0, steps=2)
    for sample in range(len(x)):
        fig = explorer_figure(traj, sample=sample, step=1, vocab=list("abcdef") if spec.is_discrete else None)
        assert len(fig.data) >= 3
        bars = [t for t in fig.data if t.type == "bar" and t.name and t.name.startswith("from")]
        n_real = int((~traj.pad[sample]).sum())
        assert [len(b.x) for b in bars] == [n_real, n_real]  # padding is not drawn
    if spec.kind == "image" and spec.channels >= 3:
        assert [t.type for t in explorer_figure(traj, bands=(0, 1, 2)).data][:4] == ["image"] * 4
    # same seed, same figure; another seed, another mask
    again = reconstruct(tiny_model(spec), x, lengths, seed=0, steps=2)
    assert figure_data(explorer_figure(again, 0, 1)) == figure_data(explorer_figure(traj, 0, 1))
    other = reconstruct(tiny_model(spec), x, lengths, seed=1, steps=2)
    assert not np.array_equal(other.mask, traj.mask)


def _dataset_for(name, n=24):
    spec = SPECS[name]
    x, lengths = make_batch(name, batch_size=n)
    y = np.arange(n) % 3
    if lengths is not None:  # long enough that every sample has tokens to mask at any ratio
        lengths = torch.as_tensor(np.maximum(spec.shape[-1] - (np.arange(n) % 4) * 2, spec.shape[-1] // 2))
    return dataset_from_arrays(x.numpy(), y, None if lengths is None else lengths.numpy(), kind=spec.kind,
                               patch_size=spec.patch_size if spec.kind == "image" else spec.patch_size[0],
                               name=name, test_fraction=0.5)


@pytest.mark.parametrize("name", ["image_multispectral", "sequence_varlen", "tokens_varlen", "tabular"])
def test_explorer_app_controls_update_the_figure(name):
    data = _dataset_for(name)
    app = ReconstructionExplorer(tiny_model(data.spec), data, n_samples=6)
    snapshots = [figure_data(app.figure)]
    for control, value in [(app.sample, 2), (app.mask_ratio, 0.75), (app.seed, 5), (app.steps, 4), (app.step, 1)]:
        control.value = value
        snapshots.append(figure_data(app.figure))
        assert snapshots[-1] != snapshots[-2], f"changing {control.description} did not change the figure"
    assert app.step.max == 4 and app.last_response_s is not None
    assert app.status.value.startswith("updated in")
    # back to an earlier state: the cached trajectory gives the identical figure
    app.mask_ratio.value, app.seed.value = 0.5, 0
    app.steps.value, app.step.value, app.sample.value = 4, 1, 2
    first = figure_data(app.figure)
    app.sample.value = 0; app.sample.value = 2
    assert figure_data(app.figure) == first


def test_explorer_rejects_a_mismatched_dataset():
    data = load_dataset("digits")
    with pytest.raises(ValueError, match="spec"):
        ReconstructionExplorer(tiny_model(SPECS["tabular"]), data)
    with pytest.raises(ValueError, match="needs a dataset"):
        ReconstructionExplorer(tiny_model(SPECS["tabular"]))


def test_sweep_caches_stops_and_is_deterministic():
    data = load_dataset("digits")
    model = tiny_model(data.spec)
    sweep = MaskingRatioSweep(model, data, run_key="sweep-test")
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (0.3, 0.7), 0.2, 32, 2
    lz, lzs, acc = sweep.run(block=True)
    assert lz.shape == (3, 2) and np.isfinite(lz).all() and acc is None
    assert sweep.computed == 6 and sweep.progress.value == 6
    data_first = figure_data(sweep.figure)
    sweep.run(block=True)
    assert sweep.computed == 6 and figure_data(sweep.figure) == data_first  # all from the cache
    sweep.ratio_range.value = (0.3, 0.9)
    sweep.run(block=True)
    assert sweep.computed == 8  # only the new ratio
    sweep.stop()  # a stop left over from before a run does not end the next run
    sweep.run(block=True)
    assert "stopped" not in sweep.status.value
    stopper = MaskingRatioSweep(model, data, run_key="sweep-stop")
    stopper.n_samples.value = 16
    stopper._value = lambda *a, **k: (stopper.stop(), (1.0, 0.5))[1]  # stop as soon as the first point is done
    stopper.run(block=True)
    assert stopper.progress.value == 1 and "stopped" in stopper.status.value
    # the point computed before the stop is drawn
    assert len([y for y in stopper.figure.data[1].y if y is not None]) == 1


def test_sweep_with_probe_curve():
    data = load_dataset("breast_cancer")
    sweep = MaskingRatioSweep(tiny_model(data.spec), data, run_key="probe-test")
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (0.4, 0.6), 0.2, 32, 1
    sweep.with_probe.value = True
    lz, lzs, acc = sweep.run(block=True)
    assert acc.shape == (2, 1) and (0 <= acc).all() and (acc <= 1).all()
    assert len(sweep.figure.data) == 6


@pytest.mark.slow
def test_umap_view_toggles_subsamples_and_caches():
    data = load_dataset("digits")
    app = LatentUMAP(tiny_model(data.spec), data, run_key="umap-test", max_points=120)
    app.n.value = 200
    app.compute()
    assert "subsample of 120" in app.figure.layout.title.text
    n_traces = len(app.figure.data)
    assert n_traces == 1 + 2 * 10 + 1  # pair lines, Z and Z* per class, displacement bars
    first = figure_data(app.figure)
    app.show_z.value = False
    assert all(t.visible is False for t in app.figure.data if t.name and t.name.endswith("(Z)"))
    app.show_z.value = True
    assert figure_data(app.figure) == first
    app.compute()  # cached: the same embedding
    assert figure_data(app.figure) == first
    bars = app.figure.data[-1]
    assert len(bars.y) == 10 and all(v > 0 for v in bars.y)


def test_builders_are_pure_functions_of_arrays():
    fig = sweep_figure([0.2, 0.5], np.array([[1.0, 1.2], [2.0, np.nan]]), np.array([[0.9, 1.0], [1.8, 1.9]]))
    assert len(fig.data) == 4
    emb = np.random.default_rng(0).normal(size=(6, 2))
    fig = umap_figure(emb, emb + 1, np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"],
                      displacement={0: (1, 0), 1: (2, 0), 2: (3, 0)})
    assert fig.data[-1].y == (1, 2, 3)


def test_export_writes_html_and_png(tmp_path, chromium):
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data, n_samples=4)
    app.export(tmp_path / "explorer")
    assert (tmp_path / "explorer.html").exists() and (tmp_path / "plotly.min.js").exists()
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_default_export_names_differ_by_what_is_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no settings.ini above: exports go to ./figures/views
    data = load_dataset("digits")
    app = ReconstructionExplorer(tiny_model(data.spec), data, n_samples=4)
    first = app.export()[0]
    app.sample.value = 2
    second = app.export()[0]
    assert first != second and first.exists() and second.exists()
    assert first.parent == tmp_path / "figures" / "views" and "sample2" in second.name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["image_multispectral", "sequence_varlen", "tokens_varlen", "tabular"])
def test_sweep_and_umap_views_on_every_modality(name):
    data = _dataset_for(name, n=40)
    model = tiny_model(data.spec)
    sweep = MaskingRatioSweep(model, data, run_key=f"modality-{name}")
    sweep.ratio_range.value, sweep.ratio_step.value, sweep.n_samples.value, sweep.n_seeds.value = (0.3, 0.7), 0.4, 16, 2
    lz, lzs, _ = sweep.run(block=True)
    assert lz.shape == (2, 2) and np.isfinite(lz).all() and np.isfinite(lzs).all()
    umap_app = LatentUMAP(model, data, run_key=f"modality-{name}")
    umap_app.n.value = 20
    umap_app.compute()
    classes = len(np.unique(data.y_test))
    assert len(umap_app.figure.data) == 1 + 2 * classes + 1
    assert sum(len(t.x) for t in umap_app.figure.data[1:-1]) == 2 * 20
