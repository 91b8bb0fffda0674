"The PAMAP2 converter: fixture in the published layout -> store -> pretrain -> probe; bad sources fail in one line."
from __future__ import annotations

import numpy as np
import pytest

from fixtures_pamap2 import PLAN, SUBJECTS, subject_values, write_pamap2_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources.pamap2 import ACTIVITIES, SOURCE
from metamae_lab.data.store import open_store, write_store


def windows_of(plan, stride=160, window=320):
    "Windows per stretch: the count the converter should cut."
    return [(activity, (n - window) // stride + 1) for activity, n in plan if activity and n >= window]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("pamap2")
    return write_store(SOURCE, write_pamap2_fixture(root / "src"), root / "store", progress=False)


def test_spec_splits_and_labels(store):
    data = open_store(store)
    assert data.spec.kind == "sequence" and data.spec.shape == (52, 320) and data.spec.patch_size == (5,)
    assert data.manifest["dtype"] == "float32" and data.manifest["batch_size"] == 256
    assert data.class_names[0] == "lying" and data.class_names[10] == "ironing" and len(data.class_names) == 12
    classes = list(ACTIVITIES)
    expected = {"train": [], "val": [], "test": []}
    for subject in SUBJECTS:
        split = {105: "val", 106: "test"}.get(subject, "train")
        for activity, count in windows_of(PLAN[subject]): expected[split] += [classes.index(activity)] * count
    for split, labels in expected.items(): assert data.split(split)[1].tolist() == labels


def test_known_window_by_hand(store):
    "The second window of subject 106's first activity, interpolated and cut by hand, is test sample 1."
    values = subject_values(106)
    start = PLAN[106][0][1] + 160
    channels = values[:, 2:].copy()
    for c in range(52):  # linear interpolation along time, edges the nearest reading
        ok = ~np.isnan(channels[:, c])
        channels[:, c] = np.interp(np.arange(len(channels)), np.flatnonzero(ok), channels[ok, c])
    expected = channels[start:start + 320].T.astype(np.float32)
    data = open_store(store)
    stored = np.load(store / data.manifest["splits"]["test"]["shards"][0]["x"])[1]
    np.testing.assert_allclose(stored, expected, rtol=1e-6, atol=1e-5)
    mean, std = np.asarray(data.manifest["norm_mean"]), np.asarray(data.manifest["norm_std"])
    np.testing.assert_allclose(data.split("test")[0][1], (expected - mean) / std, rtol=1e-5, atol=1e-5)
    assert np.isnan(values[start:start + 320, 2]).any() and np.isfinite(stored).all()


def test_pretrain_and_probe(store, tmp_path): assert_store_trains_and_probes(store, tmp_path / "run")


def _fails(src, out, *parts): assert_source_refused(SOURCE, src, out, *parts)


def test_missing_subject_file(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    (src / "Protocol/subject107.dat").unlink()
    _fails(src, tmp_path / "out", "subject107.dat is missing", "archive.ics.uci.edu")


def test_missing_folder(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", "Protocol/subject101.dat is missing", "PAMAP2")


def test_archive_layout_is_found(tmp_path):
    write_pamap2_fixture(tmp_path / "src/PAMAP2_Dataset")
    assert SOURCE.units(tmp_path / "src")[0] == "PAMAP2_Dataset/Protocol/subject101.dat"


def test_missing_column(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    path = src / "Protocol/subject103.dat"
    path.write_text("\n".join(" ".join(line.split()[:53]) for line in path.read_text().splitlines()) + "\n")
    _fails(src, tmp_path / "out", "subject103.dat has 53 values per line, expected 54")


def test_corrupt_value(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    path = src / "Protocol/subject102.dat"
    lines = path.read_text().splitlines()
    lines[40] = lines[40].replace(lines[40].split()[5], "x1#", 1)
    path.write_text("\n".join(lines) + "\n")
    _fails(src, tmp_path / "out", "subject102.dat", "not a number")


def test_unknown_activity(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    path = src / "Protocol/subject104.dat"
    lines = path.read_text().splitlines()
    fields = lines[60].split()
    fields[1] = "8"
    lines[60] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    _fails(src, tmp_path / "out", "subject104.dat line 61 has activity id 8.0")


def test_channel_without_values(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    path = src / "Protocol/subject101.dat"
    rows = [line.split() for line in path.read_text().splitlines()]
    for row in rows: row[30] = "NaN"
    path.write_text("\n".join(" ".join(row) for row in rows) + "\n")
    _fails(src, tmp_path / "out", "subject101.dat has no value at all in column(s) [30]")


def test_empty_file(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    (src / "Protocol/subject109.dat").write_text("")
    _fails(src, tmp_path / "out", "subject109.dat is empty")
