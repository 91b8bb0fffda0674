"The WM-811K converter: fixture in the published format -> store -> pretrain -> probe; bad sources fail in one line."
from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from fixtures_wafer_maps import FAILURE_TYPES, N_MAPS, lswmd_frame, nested, write_wafer_maps_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources.wafer_maps import SOURCE
from metamae_lab.data.store import open_store, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("wafer_maps")
    return write_store(SOURCE, write_wafer_maps_fixture(root / "src"), root / "store", progress=False)


def by_hand(grid: np.ndarray) -> np.ndarray:
    "DABS's image by hand: grey levels via x127.5 on 3 channels, PIL's bilinear resize to 32 x 32, channels first."
    rgb = (np.repeat(grid[:, :, None], 3, axis=2) * 127.5).astype(int).astype(np.uint8)
    return np.asarray(Image.fromarray(rgb).convert("RGB").resize((32, 32), Image.BILINEAR)).transpose(2, 0, 1)


def dabs_order():
    "The labelled rows shuffled as DABS shuffles its labelled frame."
    frame = lswmd_frame()
    labelled = frame[[t.size > 0 for t in frame["failureType"]]]
    return labelled.sample(frac=1, random_state=42).index.to_numpy()


def test_spec_splits_labels_and_images(store):
    data = open_store(store)
    assert data.spec.kind == "image" and data.spec.shape == (3, 32, 32) and data.spec.patch_size == (4, 4)
    assert data.manifest["dtype"] == "uint8" and data.manifest["batch_size"] == 128
    assert data.class_names == FAILURE_TYPES and "val" not in data.manifest["splits"]
    order, frame = dabs_order(), lswmd_frame()
    for split, rows in (("train", order[:33]), ("test", order[33:])):
        assert data.split(split)[1].tolist() == [FAILURE_TYPES.index(frame["failureType"][r][0, 0]) for r in rows]
        stored = np.load(store / data.manifest["splits"][split]["shards"][0]["x"])
        assert stored.dtype == np.uint8
        np.testing.assert_array_equal(stored, np.stack([by_hand(frame["waferMap"][r]) for r in rows]))
    assert len(order) == 36 and N_MAPS == 48


def test_pretrain_and_probe(store, tmp_path): assert_store_trains_and_probes(store, tmp_path / "run")


def test_pickle_of_an_old_pandas(tmp_path, store):
    "Class locations of old pandas versions (pandas.indexes.*) are found where pandas keeps them now."
    raw = pickle.dumps(lswmd_frame(), protocol=2)
    old = raw.replace(b"pandas.core.indexes.base\n", b"pandas.indexes.base\n").replace(
        b"pandas.core.indexes.range\n", b"pandas.indexes.range\n")
    assert old != raw
    with pytest.raises(ModuleNotFoundError): pickle.loads(old)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/LSWMD.pkl").write_bytes(old)
    out = write_store(SOURCE, tmp_path / "src", tmp_path / "out", progress=False)
    assert open_store(out).split("train")[1].tolist() == open_store(store).split("train")[1].tolist()


def _fails(src, out, *parts): assert_source_refused(SOURCE, src, out, *parts)


def _with(tmp_path, frame):
    (tmp_path / "src").mkdir()
    frame.to_pickle(tmp_path / "src/LSWMD.pkl")
    return tmp_path / "src"


def test_missing_file(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", "LSWMD.pkl is missing", "mirlab.org")


def test_missing_column(tmp_path):
    _fails(_with(tmp_path, lswmd_frame().drop(columns="failureType")), tmp_path / "out",
           "LSWMD.pkl has no column 'failureType'")


def test_corrupt_pickle(tmp_path):
    src = write_wafer_maps_fixture(tmp_path / "src")
    data = (src / "LSWMD.pkl").read_bytes()
    (src / "LSWMD.pkl").write_bytes(data[: len(data) // 2])
    _fails(src, tmp_path / "out", "LSWMD.pkl is not a readable pickle")


def test_not_a_dataframe(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/LSWMD.pkl").write_bytes(pickle.dumps({"waferMap": []}))
    _fails(tmp_path / "src", tmp_path / "out", "LSWMD.pkl holds a dict, not the pandas DataFrame")


def test_wrong_shape(tmp_path):
    frame = lswmd_frame()
    frame.at[5, "waferMap"] = np.ones(12, np.uint8)
    _fails(_with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl row 5 has a wafer map of shape (12,)")


def test_wrong_die_value(tmp_path):
    frame = lswmd_frame()
    frame.at[6, "waferMap"] = np.full((5, 5), 3, np.uint8)
    _fails(_with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl row 6 has die values [3]")


def test_unknown_label(tmp_path):
    frame = lswmd_frame()
    frame.at[2, "failureType"] = nested("Crack")
    _fails(_with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl row 2 has failure type 'Crack'")


def test_no_labelled_map(tmp_path):
    frame = lswmd_frame()
    frame["failureType"] = [np.zeros((0, 0)) for _ in range(len(frame))]
    _fails(_with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl has no labelled wafer map")
