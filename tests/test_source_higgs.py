"The HIGGS converter: fixture in the published format -> store -> pretrain -> probe; bad sources fail in one line."
from __future__ import annotations

import gzip

import numpy as np
import pytest

from fixtures_higgs import N_ROWS, higgs_rows, write_higgs_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources import higgs
from metamae_lab.data.sources.higgs import SOURCE
from metamae_lab.data.store import open_store, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("higgs")
    return write_store(SOURCE, write_higgs_fixture(root / "src"), root / "store", progress=False)


def dabs_split(n):
    "The split by hand: first ceil(90%) train; the rest shuffled by pandas with seed 42, ceil(90%) val, the rest test."
    import pandas as pd
    first = -(-9 * n // 10)
    shuffled = pd.DataFrame({"row": np.arange(first, n)}).sample(frac=1, random_state=42)["row"].to_numpy()
    cut = -(-9 * len(shuffled) // 10)
    return np.arange(first), np.sort(shuffled[:cut]), np.sort(shuffled[cut:])


def test_spec_splits_labels_and_values(store):
    data = open_store(store)
    assert data.spec.kind == "tabular" and data.spec.shape == (28,) and data.spec.patch_size == (1,)
    assert data.manifest["dtype"] == "float32" and data.manifest["batch_size"] == 256
    assert data.class_names == ["background", "signal"]
    rows = higgs_rows()
    for name, index in zip(("train", "val", "test"), dabs_split(N_ROWS)):
        assert data.split(name)[1].tolist() == rows[index, 0].astype(int).tolist()
        stored = np.concatenate([np.load(store / s["x"]) for s in data.manifest["splits"][name]["shards"]])
        np.testing.assert_array_equal(stored, rows[index, 1:].astype(np.float32))
    assert [len(i) for i in dabs_split(N_ROWS)] == [207, 21, 2]
    train = rows[:207, 1:].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(data.manifest["norm_mean"], train.mean(0), rtol=1e-5)
    np.testing.assert_allclose(data.manifest["norm_std"], train.std(0), rtol=1e-4)


def test_chunks_across_the_split_boundary(tmp_path, monkeypatch):
    "Small chunks that straddle the train/transfer boundary give the same store."
    monkeypatch.setattr(higgs, "CHUNK_ROWS", 37)
    out = write_store(SOURCE, write_higgs_fixture(tmp_path / "src", gzipped=False), tmp_path / "out", progress=False)
    data = open_store(out)
    rows = higgs_rows()
    for name, index in zip(("train", "val", "test"), dabs_split(N_ROWS)):
        assert data.split(name)[1].tolist() == rows[index, 0].astype(int).tolist()


def test_pretrain_and_probe(store, tmp_path): assert_store_trains_and_probes(store, tmp_path / "run")


def _fails(src, out, *parts): assert_source_refused(SOURCE, src, out, *parts)


def _rewrite(src, edit):
    path = src / "HIGGS.csv.gz"
    with gzip.open(path, "rt") as f: lines = f.read().splitlines()
    with gzip.open(path, "wt") as f: f.write("\n".join(edit(lines)) + "\n")


def test_missing_file(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", "HIGGS.csv.gz is missing", "archive.ics.uci.edu")


def test_missing_column(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite(src, lambda lines: [line.rsplit(",", 1)[0] for line in lines])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz has 28 columns, expected 29")


def test_wrong_label(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    _rewrite(src, lambda lines: lines[:5] + ["2" + lines[5][lines[5].index(","):]] + lines[6:])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz row 6 has label 2")


def test_missing_value(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    blank = lambda line: ",".join("" if i == 3 else field for i, field in enumerate(line.split(",")))
    _rewrite(src, lambda lines: lines[:220] + [blank(lines[220])] + lines[221:])
    _fails(src, tmp_path / "out", "HIGGS.csv.gz row 221 has a missing value")


def test_corrupt_gzip(tmp_path):
    src = write_higgs_fixture(tmp_path / "src")
    data = (src / "HIGGS.csv.gz").read_bytes()
    (src / "HIGGS.csv.gz").write_bytes(data[: len(data) // 2])
    _fails(src, tmp_path / "out", "higgs: cannot read", "HIGGS.csv.gz")
