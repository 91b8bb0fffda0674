"""The HIGGS converter on a file written as UCI's is (`%.18e` float32 values, no header, gzip):
store, pretrain, probe; the forms a user may have; bad sources (cut downloads, short lines) fail in
one line and leave nothing behind."""

from __future__ import annotations

import gzip
import zipfile

import numpy as np
import pytest

from fixtures_higgs import N_ROWS, gzipped, higgs_rows, higgs_text, write_higgs_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources import higgs
from metamae_lab.data.sources.higgs import SOURCE
from metamae_lab.data.store import open_store, write_store

ROWS = "holds 230 rows, not the 11,000,000 of UCI's file"
AS_PUBLISHED = "read HIGGS.csv.gz as UCI publishes it"
UNPACKED = "read HIGGS.csv (HIGGS.csv.gz unpacked)"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("higgs")
    return write_store(SOURCE, write_higgs_fixture(root / "src"), root / "store", progress=False)


def convert(tmp_path, *args, **kwargs):
    src = write_higgs_fixture(tmp_path / "src", *args, **kwargs)
    return write_store(SOURCE, src, tmp_path / "out", progress=False)


def dabs_split(n):
    "By hand: first ceil(90%) train; the rest shuffled by pandas (seed 42): ceil(90%) val, test."
    import pandas as pd

    first = -(-9 * n // 10)
    rest = pd.DataFrame({"row": np.arange(first, n)})
    shuffled = rest.sample(frac=1, random_state=42)["row"].to_numpy()
    cut = -(-9 * len(shuffled) // 10)
    return np.arange(first), np.sort(shuffled[:cut]), np.sort(shuffled[cut:])


def assert_the_rows(out):
    "Each split holds the rows DABS's split puts there: their labels, their float32 features exact."
    data, rows = open_store(out), higgs_rows()
    for name, index in zip(("train", "val", "test"), dabs_split(N_ROWS)):
        assert data.split(name)[1].tolist() == rows[index, 0].astype(int).tolist()
        shards = data.manifest["splits"][name]["shards"]
        stored = np.concatenate([np.load(out / shard["x"]) for shard in shards])
        np.testing.assert_array_equal(stored, rows[index, 1:].astype(np.float32))


def test_the_fixture_is_written_as_the_release_is():
    "UCI's form: `%.18e` everywhere (the label too), commas, no header, `\\n`, float32 values."
    text = higgs_text(higgs_rows()).decode()
    lines = text.split("\n")
    assert len(lines) == N_ROWS + 1 and lines[-1] == "" and "\r" not in text and " " not in text
    assert lines[0].split(",")[0] in ("1.000000000000000000e+00", "0.000000000000000000e+00")
    values = [v for line in lines[:-1] for v in line.split(",")]
    assert all(len(v.lstrip("-")) == 24 and v[-4] == "e" for v in values)
    table = np.array([[float(v) for v in line.split(",")] for line in lines[:-1]])
    assert (table.astype(np.float32) == table).all() and len(np.unique(table[:, 9])) == 3
    mean_length = np.mean([len(line) + 1 for line in lines[:-1]])
    assert mean_length == pytest.approx(730.5, abs=1.5)  # the real file: 8,035,497,980 / 11,000,000


def test_spec_splits_labels_and_values(store):
    data = open_store(store)
    assert data.spec.kind == "tabular" and data.spec.shape == (28,) and data.spec.patch_size == (1,)
    assert data.manifest["dtype"] == "float32" and data.manifest["batch_size"] == 256
    assert data.class_names == ["background", "signal"]
    assert_the_rows(store)
    assert [len(i) for i in dabs_split(N_ROWS)] == [207, 21, 2]
    train = higgs_rows()[:207, 1:].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(data.manifest["norm_mean"], train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(data.manifest["norm_std"], train.std(0), rtol=1e-4)
    assert data.manifest["notes"] == [AS_PUBLISHED, f"HIGGS.csv.gz {ROWS}"]


def test_blocks_across_the_split_boundary(tmp_path, monkeypatch):
    "Blocks of two lines, some straddling the train/transfer boundary, give the same rows."
    monkeypatch.setattr(higgs, "BLOCK_BYTES", 1500)
    assert_the_rows(convert(tmp_path))


def test_pretrain_and_probe(store, tmp_path):
    assert_store_trains_and_probes(store, tmp_path / "run")


@pytest.mark.parametrize(
    "variant, kwargs, notes",
    [
        ("csv", {}, [UNPACKED, f"HIGGS.csv {ROWS}"]),
        (
            "zip",
            {},
            [
                "read HIGGS.csv.gz inside UCI's download higgs.zip, read without unpacking",
                f"higgs.zip {ROWS}",
            ],
        ),
        (
            "gz",
            {"header": True},
            [
                AS_PUBLISHED,
                "HIGGS.csv.gz: line 1 is a header, which UCI's file does not have: skipped",
                f"HIGGS.csv.gz {ROWS}",
            ],
        ),
        (
            "csv",
            {"newline": "\r\n"},
            [
                UNPACKED,
                "HIGGS.csv: lines end in \\r\\n (Windows), not \\n as in UCI's file",
                f"HIGGS.csv {ROWS}",
            ],
        ),
    ],
)
def test_every_form_a_user_may_have(store, tmp_path, variant, kwargs, notes):
    out = convert(tmp_path, variant, **kwargs)
    assert open_store(out).manifest["notes"] == notes
    assert open_store(out).manifest["fingerprint"] == open_store(store).manifest["fingerprint"]


def _fails(src, out, *parts):
    assert_source_refused(SOURCE, src, out, *parts)


def _rewrite(src, edit):
    "Rewrite HIGGS.csv.gz through `edit(lines) -> lines`."
    lines = gzip.decompress((src / "HIGGS.csv.gz").read_bytes()).decode().split("\n")[:-1]
    (src / "HIGGS.csv.gz").write_bytes(gzipped(("\n".join(edit(lines)) + "\n").encode()))


def _rewrite_line(src, index, edit):
    "Rewrite line `index` (from 0) of HIGGS.csv.gz through `edit(line) -> line`."
    _rewrite(src, lambda lines: lines[:index] + [edit(lines[index])] + lines[index + 1 :])


def test_missing_file(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", "HIGGS.csv.gz is missing", "archive.ics.uci.edu")


def test_line_with_a_missing_value(tmp_path):
    "A line short of its last value is named by number, not padded with NaN (as pandas would)."
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite_line(src, 100, lambda line: line.rsplit(",", 1)[0])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 101 has 28 values, expected 29")


def test_every_line_missing_a_column(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite(src, lambda lines: [line.rsplit(",", 1)[0] for line in lines])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 1 has 28 values, expected 29")


def test_line_with_a_value_too_many(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite_line(src, 3, lambda line: line + ",0")
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 4 has 30 values, expected 29")


def test_wrong_label(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite_line(src, 5, lambda line: "2" + line[line.index(",") :])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 6 has label 2")


def test_empty_value(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")

    def blank_4th(line):
        return ",".join(v * (i != 3) for i, v in enumerate(line.split(",")))

    _rewrite_line(src, 220, blank_4th)
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 221 has an empty or infinite value")


def test_value_that_is_not_a_number(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite_line(src, 12, lambda line: line.replace("e-01", "e-O1", 1))
    _fails(src, tmp_path / "out", "HIGGS.csv.gz line 13 holds", "not a number")


def test_gzip_cut_short(tmp_path):
    "A download that stopped early: the gzip stream ends before its end marker."
    src = write_higgs_fixture(tmp_path / "src")
    data = (src / "HIGGS.csv.gz").read_bytes()
    (src / "HIGGS.csv.gz").write_bytes(data[: len(data) // 2])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz is cut short", "interrupted download")


def test_a_web_page_saved_as_the_file(tmp_path):
    (tmp_path / "src").mkdir()
    page = b"<!DOCTYPE html><html><body>Not Found</body></html>\n"
    (tmp_path / "src/HIGGS.csv.gz").write_bytes(page)
    _fails(tmp_path / "src", tmp_path / "out", "HIGGS.csv.gz is not gzip data", "<!DOCTYPE html")


def test_unpacked_file_cut_in_the_middle_of_a_line(tmp_path):
    src = write_higgs_fixture(tmp_path / "src", "csv")
    data = (src / "HIGGS.csv").read_bytes()
    (src / "HIGGS.csv").write_bytes(data[: data.index(b"\n", len(data) // 2) + 100])
    _fails(src, tmp_path / "out", "HIGGS.csv line", "values, expected 29", "ends in the middle")


def test_zip_cut_short(tmp_path):
    src = write_higgs_fixture(tmp_path / "src", "zip")
    data = (src / "higgs.zip").read_bytes()
    (src / "higgs.zip").write_bytes(data[: len(data) // 2])
    _fails(src, tmp_path / "out", "higgs.zip is not a complete zip archive")


def test_zip_without_the_file(tmp_path):
    (tmp_path / "src").mkdir()
    with zipfile.ZipFile(tmp_path / "src/higgs.zip", "w") as z:
        z.writestr("SUSY.csv.gz", b"")
    _fails(tmp_path / "src", tmp_path / "out", "higgs.zip holds no HIGGS.csv.gz", "SUSY.csv.gz")


def test_empty_file(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/HIGGS.csv.gz").write_bytes(gzipped(b""))
    _fails(tmp_path / "src", tmp_path / "out", "HIGGS.csv.gz is empty")
