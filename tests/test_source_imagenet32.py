"ImageNet32 from its pickled release: the store's content, training on it, and bad sources."
from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures_imagenet32 import PER_BATCH, TRAIN_FILES, VAL_SIZE, write_imagenet32_fixture
from helpers import assert_store_trains_and_probes
from metamae_lab.data.sources.imagenet32 import SOURCE
from metamae_lab.data.store import SourceError, open_store, read_manifest, write_store


def _no_output(tmp_path: Path, name: str = "out"):
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.partial").exists()


def test_converts_the_release_into_uint8_images_with_zero_based_labels(tmp_path):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    manifest = read_manifest(tmp_path / "out")
    assert (ds.spec.kind, ds.spec.shape, ds.spec.patch_size) == ("image", (3, 32, 32), (4, 4))
    assert {s: i["size"] for s, i in manifest["splits"].items()} == {"train": 10 * PER_BATCH, "test": VAL_SIZE}
    assert manifest["dtype"] == "uint8" and manifest["batch_size"] == 64 and len(ds.class_names) == 1000
    assert np.load(tmp_path / "out" / "train" / "x-00000.npy").dtype == np.uint8
    # by hand: the 5th batch's 2nd image, pixel (c, h, w) is row[c * 1024 + h * 32 + w]; label id - 1
    fifth = pickle.loads((raw / "Imagenet32_train" / TRAIN_FILES[4]).read_bytes())
    row, index = fifth["data"][1], 4 * PER_BATCH + 1
    expected = np.stack([row[c * 1024:(c + 1) * 1024].reshape(32, 32) for c in range(3)])
    assert np.array_equal(np.round(ds.denormalize(ds.x_train[index:index + 1]))[0], expected)
    assert ds.y_train[index] == fifth["labels"][1] - 1
    val = pickle.loads((raw / "Imagenet32_val" / "val_data").read_bytes())
    assert ds.y_test.tolist() == [label - 1 for label in val["labels"]] and set(ds.y_test) == {0, 1, 999}
    # the served values are normalised per channel with the train split's statistics
    stored = np.concatenate([np.load(p) for p in sorted((tmp_path / "out" / "train").glob("x-*.npy"))])
    mean = stored.astype(np.float64).mean(axis=(0, 2, 3))
    assert np.allclose(ds.norm_mean.reshape(-1), mean, atol=1e-3)
    assert abs(float(ds.x_train[:].mean())) < 1e-3


def test_release_files_may_lie_flat_in_the_source_folder(tmp_path):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    for sub in ("Imagenet32_train", "Imagenet32_val"):
        for f in (raw / sub).iterdir(): f.rename(raw / f.name)
        (raw / sub).rmdir()
    assert SOURCE.units(raw) == TRAIN_FILES + ["val_data"]
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    assert (len(ds.x_train), len(ds.x_test)) == (10 * PER_BATCH, VAL_SIZE)


def test_pretrain_and_probe_on_the_store(tmp_path):
    out = write_store(SOURCE, write_imagenet32_fixture(tmp_path / "raw"), tmp_path / "out", progress=False)
    assert_store_trains_and_probes(out, tmp_path / "run", k=3)


@pytest.mark.parametrize("missing", ["Imagenet32_train/train_data_batch_10", "Imagenet32_val/val_data"])
def test_a_missing_file_is_named_with_where_the_release_is_published(tmp_path, missing):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    (raw / missing).unlink()
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert f"{missing} is missing" in message and "image-net.org" in message and "\n" not in message
    _no_output(tmp_path)


def _replace(raw: Path, content) -> Path:
    path = raw / "Imagenet32_train" / "train_data_batch_3"
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content))
    return path


class _Exploit:
    def __reduce__(self): return (shutil.rmtree, ("/nonexistent-folder",))


@pytest.mark.parametrize("content, says", [
    ({"labels": [1, 2]}, "has no 'data' entry"),
    ({"data": np.zeros((2, 3072), np.uint8)}, "has no 'labels' entry"),
    ({"data": np.zeros((2, 3, 32, 32), np.uint8), "labels": [1, 2]}, "expected (N, 3072) uint8"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [1, 2]}, "expected (N, 3072) uint8"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, "1 labels of dtype int64 for 2 images"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, "class ids 0..1, expected 1..1000"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [1, 1001]}, "class ids 1..1001, expected 1..1000"),
    ([1, 2, 3], "holds a list, not the dict"),
    (b"\x80\x04 this is not a pickle", "is not a pickle of arrays"),
    ({"data": _Exploit()}, "asks for shutil.rmtree"),
])
def test_a_bad_file_gives_one_line_and_no_output(tmp_path, content, says):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    path = _replace(raw, content)
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert says in message and str(path) in message and "\n" not in message, message
    _no_output(tmp_path)
