"""The PAMAP2 converter on a release written as the real one is (layout, `%g` numbers, `NaN`,
drop-outs): store, pretrain, probe; every layout a user may have; bad sources fail in one line and
leave nothing behind."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from fixtures_pamap2 import (
    ARCHIVE,
    DROPOUTS,
    FIRST_LINE_101,
    PLAN,
    SUBJECTS,
    UCI_DOWNLOAD,
    subject_text,
    write_pamap2_fixture,
)
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources.pamap2 import ACTIVITIES, SOURCE
from metamae_lab.data.store import open_store, write_store

PROTOCOL = "PAMAP2_Dataset/Protocol"
UNPACKED = "subject files read from PAMAP2_Dataset/Protocol/ (the archive unpacked)"
LF = "subject files' lines end in \\n"


def windows_of(plan, stride=160, window=320):
    "Windows per stretch: the count the converter should cut."
    return [
        (activity, (n - window) // stride + 1) for activity, n in plan if activity and n >= window
    ]


def parsed(subject: int) -> np.ndarray:
    "The values of a subject's file as written, read back by hand (`NaN` is a float)."
    lines = subject_text(subject).splitlines()
    return np.array([[float(v) for v in line.split(" ")] for line in lines])


def interpolated(values: np.ndarray) -> np.ndarray:
    "The 52 channels, each NaN filled linearly along time, the edges by the nearest reading."
    channels = values[:, 2:].copy()
    for c in range(channels.shape[1]):
        ok = ~np.isnan(channels[:, c])
        channels[:, c] = np.interp(np.arange(len(channels)), np.flatnonzero(ok), channels[ok, c])
    return channels


def stored(store, split: str) -> np.ndarray:
    "The raw (not normalised) samples of a split of the store."
    shards = open_store(store).manifest["splits"][split]["shards"]
    return np.concatenate([np.load(store / shard["x"]) for shard in shards])


def convert(tmp_path, layout="unpacked", newline="\n"):
    src = write_pamap2_fixture(tmp_path / "src", layout, newline)
    return write_store(SOURCE, src, tmp_path / "out", progress=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("pamap2")
    return write_store(SOURCE, write_pamap2_fixture(root / "src"), root / "store", progress=False)


def test_the_fixture_is_written_as_the_release_is():
    "The release's first line; `%g` numbers (bare integers, exponents), `NaN`, one space, `\\n`."
    text = subject_text(101)
    lines = text.split("\n")[:-1]
    assert lines[0] == FIRST_LINE_101 and text.endswith("\n") and "\r" not in text
    assert all(len(line.split(" ")) == 54 for line in lines)
    assert "  " not in text and " \n" not in text
    tokens = {v for line in lines for v in line.split(" ")}
    assert {"NaN", "0", "1", "24"} <= tokens and any("e-0" in v for v in tokens)
    assert not any("." in v and "e" not in v and v.endswith("0") for v in tokens)  # no trailing 0
    heart = parsed(106)[:, 2]
    assert 0.07 < np.isfinite(heart).mean() < 0.11 and (heart[np.isfinite(heart)] % 1 == 0).all()


def test_spec_splits_and_labels(store):
    data = open_store(store)
    assert data.spec.kind == "sequence" and data.spec.shape == (52, 320)
    assert data.spec.patch_size == (5,) and data.manifest["batch_size"] == 256
    assert data.manifest["dtype"] == "float32" and len(data.class_names) == 12
    assert data.class_names[0] == "lying" and data.class_names[10] == "ironing"
    classes = list(ACTIVITIES)
    expected = {"train": [], "val": [], "test": []}
    for subject in SUBJECTS:
        split = {105: "val", 106: "test"}.get(subject, "train")
        for activity, count in windows_of(PLAN[subject]):
            expected[split] += [classes.index(activity)] * count
    for split, labels in expected.items():
        assert data.split(split)[1].tolist() == labels
    assert data.manifest["notes"] == [UNPACKED, LF]


def test_known_windows_by_hand(store):
    "Test window 1 (a lost hand-IMU packet inside) and a window of subject 109, cut by hand."
    values = parsed(106)
    start = sum(n for _, n in PLAN[106][:3])  # subject 106's walking stretch
    column, line, n = DROPOUTS[106]
    assert start <= line and line + n <= start + 320
    assert np.isnan(values[line : line + n, column : column + 17]).all()
    expected = interpolated(values)[start : start + 320].T.astype(np.float32)
    np.testing.assert_allclose(stored(store, "test")[1], expected, rtol=1e-6, atol=1e-5)
    data = open_store(store)
    mean, std = np.asarray(data.manifest["norm_mean"]), np.asarray(data.manifest["norm_std"])
    normalised = (expected - mean) / std
    np.testing.assert_allclose(data.split("test")[0][1], normalised, rtol=1e-5, atol=1e-5)
    start = PLAN[109][0][1] + 160  # the second window of subject 109's rope jumping
    expected = interpolated(parsed(109))[start : start + 320].T.astype(np.float32)
    np.testing.assert_allclose(stored(store, "train")[-2], expected, rtol=1e-6, atol=1e-5)


def test_pretrain_and_probe(store, tmp_path):
    assert_store_trains_and_probes(store, tmp_path / "run")


@pytest.mark.parametrize(
    "layout, found",
    [
        ("dataset", "Protocol/ (the unpacked PAMAP2_Dataset folder)"),
        ("archive", "PAMAP2_Dataset.zip, read without unpacking it"),
        (
            "uci",
            "PAMAP2_Dataset.zip inside UCI's download pamap2+physical+activity+monitoring.zip, "
            "read without unpacking either",
        ),
    ],
)
def test_every_layout_gives_the_same_store(store, tmp_path, layout, found):
    out = convert(tmp_path, layout)
    assert open_store(out).manifest["notes"] == [f"subject files read from {found}", LF]
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(stored(out, split), stored(store, split))


def test_windows_line_endings_are_read_and_said(store, tmp_path):
    out = convert(tmp_path, newline="\r\n")
    crlf = "subject files' lines end in \\r\\n (Windows)"
    assert open_store(out).manifest["notes"] == [UNPACKED, crlf]
    np.testing.assert_array_equal(stored(out, "train"), stored(store, "train"))


def test_the_optional_session_is_not_read(store, tmp_path):
    "Optional/ holds other activities of five subjects; DABS reads Protocol/ only, as this does."
    src = write_pamap2_fixture(tmp_path / "src")
    for path in (src / "PAMAP2_Dataset/Optional").iterdir():
        path.write_text("not read\n")
    out = write_store(SOURCE, src, tmp_path / "out", progress=False)
    assert open_store(out).manifest["fingerprint"] == open_store(store).manifest["fingerprint"]


def _fails(src, out, *parts):
    assert_source_refused(SOURCE, src, out, *parts)


def _edit(src, subject, edit):
    "Rewrite a subject's file through `edit(lines) -> lines`."
    path = src / PROTOCOL / f"subject{subject}.dat"
    path.write_text("\n".join(edit(path.read_text().split("\n")[:-1])) + "\n")


def _edit_line(src, subject, index, edit):
    "Rewrite line `index` (from 0) of a subject's file through `edit(line) -> line`."
    _edit(src, subject, lambda lines: lines[:index] + [edit(lines[index])] + lines[index + 1 :])


def test_missing_subject_file(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    (src / PROTOCOL / "subject107.dat").unlink()
    _fails(src, tmp_path / "out", "subject107.dat is missing", "archive.ics.uci.edu")


def test_missing_subject_in_the_archive(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src", "archive")
    with zipfile.ZipFile(src / ARCHIVE) as old, zipfile.ZipFile(src / "new.zip", "w") as new:
        for item in old.infolist():
            if not item.filename.endswith("subject104.dat"):
                new.writestr(item, old.read(item))
    (src / "new.zip").replace(src / ARCHIVE)
    _fails(src, tmp_path / "out", f"{ARCHIVE}!{PROTOCOL}/subject104.dat is missing")


def test_missing_folder(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", f"{PROTOCOL}/subject101.dat is missing", "PAMAP2")


@pytest.mark.parametrize("name", [ARCHIVE, UCI_DOWNLOAD])
def test_interrupted_download_of_an_archive(tmp_path, name):
    src = write_pamap2_fixture(tmp_path / "src", "archive" if name == ARCHIVE else "uci")
    data = (src / name).read_bytes()
    (src / name).write_bytes(data[: len(data) * 2 // 3])
    _fails(src, tmp_path / "out", name, "is not a complete zip archive", "interrupted download")


def test_line_with_a_missing_value(tmp_path):
    "A line short of its last value is named by number, not padded with NaN (as pandas would)."
    src = write_pamap2_fixture(tmp_path / "src")
    _edit_line(src, 103, 400, lambda line: line.rsplit(" ", 1)[0])
    _fails(src, tmp_path / "out", "subject103.dat line 401 has 53 values, expected 54")


def test_line_with_a_value_too_many(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    _edit_line(src, 102, 7, lambda line: line + " 0")
    _fails(src, tmp_path / "out", "subject102.dat line 8 has 55 values, expected 54")


def test_file_cut_in_the_middle_of_a_line(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    path = src / PROTOCOL / "subject108.dat"
    text = path.read_text()
    path.write_text(text[: text.index("\n", len(text) // 2) + 40])
    _fails(src, tmp_path / "out", "subject108.dat line", "the file ends in the middle of it")


def test_corrupt_value(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    _edit_line(src, 102, 40, lambda line: line.replace(line.split()[5], "x1#", 1))
    _fails(src, tmp_path / "out", "subject102.dat line 41 holds 'x1#', not a number")


def test_unknown_activity(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    _edit_line(src, 104, 60, lambda line: " ".join([line.split()[0], "8", *line.split()[2:]]))
    _fails(src, tmp_path / "out", "subject104.dat line 61 has activity id 8, not one of PAMAP2's")


def test_channel_without_values(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")

    def nan_at_30(line):
        return " ".join([*line.split()[:30], "NaN", *line.split()[31:]])

    _edit(src, 101, lambda lines: [nan_at_30(line) for line in lines])
    _fails(src, tmp_path / "out", "subject101.dat has no value at all in column(s) [30]")


def test_empty_line(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    _edit(src, 105, lambda lines: lines[:9] + [""] + lines[9:])
    _fails(src, tmp_path / "out", "subject105.dat line 10 is empty")


def test_empty_file(tmp_path):
    src = write_pamap2_fixture(tmp_path / "src")
    (src / PROTOCOL / "subject109.dat").write_text("")
    _fails(src, tmp_path / "out", "subject109.dat is empty")
