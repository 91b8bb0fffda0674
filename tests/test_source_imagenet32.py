"""ImageNet32 from its pickled release (as the authors' scripts pickled it, and re-pickled forms):
the store's content, training on it, bad sources, and crafted files that run nothing."""

from __future__ import annotations

import os
import pickle
import pickletools
import shutil
from pathlib import Path

import numpy as np
import pytest

from fixtures_imagenet32 import (
    PER_BATCH,
    TRAIN_FILES,
    TRAIN_SIZE,
    VAL_SIZE,
    write_imagenet32_fixture,
)
from helpers import assert_store_trains_and_probes, run_cli
from py2_pickle import command_pickles
from metamae_lab.data.pickles import load_pickle
from metamae_lab.data.sources.imagenet32 import SOURCE
from metamae_lab.data.store import SourceError, open_store, read_manifest, write_store


def _no_output(tmp_path: Path, name: str = "out"):
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.partial").exists()


def test_converts_the_release_into_uint8_images_with_zero_based_labels(tmp_path):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    manifest = read_manifest(tmp_path / "out")
    assert (ds.spec.kind, ds.spec.shape, ds.spec.patch_size) == ("image", (3, 32, 32), (4, 4))
    sizes = {s: i["size"] for s, i in manifest["splits"].items()}
    assert sizes == {"train": TRAIN_SIZE, "test": VAL_SIZE}
    assert (
        manifest["dtype"] == "uint8"
        and manifest["batch_size"] == 64
        and len(ds.class_names) == 1000
    )
    assert np.load(tmp_path / "out" / "train" / "x-00000.npy").dtype == np.uint8
    # by hand: the 5th batch's 2nd image, pixel (c, h, w) is row[c * 1024 + h * 32 + w]; label id -
    # 1
    fifth = load_pickle(raw / "Imagenet32_train" / TRAIN_FILES[4], "test").value
    row, index = fifth["data"][1], 4 * PER_BATCH + 1
    expected = np.stack([row[c * 1024 : (c + 1) * 1024].reshape(32, 32) for c in range(3)])
    assert np.array_equal(np.round(ds.denormalize(ds.x_train[index : index + 1]))[0], expected)
    assert ds.y_train[index] == fifth["labels"][1] - 1
    val = load_pickle(raw / "Imagenet32_val" / "val_data", "test").value
    assert ds.y_test.tolist() == [label - 1 for label in val["labels"]] and set(ds.y_test) == {
        0,
        1,
        999,
    }
    # the served values are normalised per channel with the train split's statistics
    stored = np.concatenate(
        [np.load(p) for p in sorted((tmp_path / "out" / "train").glob("x-*.npy"))]
    )
    mean = stored.astype(np.float64).mean(axis=(0, 2, 3))
    assert np.allclose(ds.norm_mean.reshape(-1), mean, atol=1e-3)
    assert abs(float(ds.x_train[:].mean())) < 1e-3


def test_release_files_may_lie_flat_in_the_source_folder(tmp_path):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    for sub in ("Imagenet32_train", "Imagenet32_val"):
        for f in (raw / sub).iterdir():
            f.rename(raw / f.name)
        (raw / sub).rmdir()
    assert SOURCE.units(raw) == TRAIN_FILES + ["val_data"]
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    assert (len(ds.x_train), len(ds.x_test)) == (TRAIN_SIZE, VAL_SIZE)


def test_pretrain_and_probe_on_the_store(tmp_path):
    out = write_store(
        SOURCE, write_imagenet32_fixture(tmp_path / "raw"), tmp_path / "out", progress=False
    )
    assert_store_trains_and_probes(out, tmp_path / "run", k=3)


@pytest.mark.parametrize(
    "missing", ["Imagenet32_train/train_data_batch_10", "Imagenet32_val/val_data"]
)
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
    def __reduce__(self):
        return (shutil.rmtree, ("/nonexistent-folder",))


@pytest.mark.parametrize(
    "content, says",
    [
        ({"labels": [1, 2]}, "has no 'data' entry"),
        ({"data": np.zeros((2, 3072), np.uint8)}, "has no 'labels' entry"),
        (
            {"data": np.zeros((2, 3, 32, 32), np.uint8), "labels": [1, 2]},
            "expected (N, 3072) uint8",
        ),
        ({"data": np.zeros((2, 3072), np.float32), "labels": [1, 2]}, "expected (N, 3072) uint8"),
        (
            {"data": np.zeros((2, 3072), np.uint8), "labels": [1]},
            "1 labels of dtype int64 for 2 images",
        ),
        (
            {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]},
            "class ids 0..1, expected 1..1000",
        ),
        (
            {"data": np.zeros((2, 3072), np.uint8), "labels": [1, 1001]},
            "class ids 1..1001, expected 1..1000",
        ),
        ([1, 2, 3], "holds a list, not the dict"),
        (b"\x80\x04 this is not a pickle", "is not a readable pickle"),
        ({"data": _Exploit()}, "holds code: it asks for shutil.rmtree"),
    ],
)
def test_a_bad_file_gives_one_line_and_no_output(tmp_path, content, says):
    raw = write_imagenet32_fixture(tmp_path / "raw")
    path = _replace(raw, content)
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert says in message and str(path) in message and "\n" not in message, message
    _no_output(tmp_path)


def test_the_fixture_is_what_the_authors_scripts_wrote(tmp_path):
    "Protocol 3 of numpy 1 (pickle.dump in 2017's Python 3); the dicts, labels, means, batch sizes."
    raw = write_imagenet32_fixture(tmp_path)
    ops = [
        (op.name, arg)
        for op, arg, _ in pickletools.genops(
            (raw / "Imagenet32_train" / TRAIN_FILES[0]).read_bytes()
        )
    ]
    assert ops[0] == ("PROTO", 3) and "BINBYTES" in {name for name, _ in ops}
    assert {arg for name, arg in ops if name == "GLOBAL"} == {
        "numpy.core.multiarray _reconstruct",
        "numpy ndarray",
        "numpy dtype",
    }
    assert ("BININT1", 0) in ops and "NEWTRUE" not in {name for name, _ in ops}  # dtype('u1', 0, 1)
    batches = [load_pickle(raw / "Imagenet32_train" / name, "test").value for name in TRAIN_FILES]
    val = load_pickle(raw / "Imagenet32_val" / "val_data", "test").value
    assert [list(b) for b in batches] == [["data", "labels", "mean"]] * 10
    assert list(val) == ["data", "labels"]
    assert [len(b["data"]) for b in batches] == [PER_BATCH] * 9 + [TRAIN_SIZE - 9 * PER_BATCH]
    mean = np.concatenate([b["data"] for b in batches]).mean(0)
    assert all(b["mean"].dtype == np.float64 and np.array_equal(b["mean"], mean) for b in batches)
    assert all(type(label) is int for b in batches for label in b["labels"])


FORMS = [(3, True), (2, True), (4, True), (5, False), (3, False), (2, False)]


@pytest.mark.parametrize(
    "protocol, numpy1", FORMS, ids=[f"protocol{p}-numpy{1 if n else 2}" for p, n in FORMS]
)
def test_every_form_of_the_release_gives_the_same_store_and_says_which(tmp_path, protocol, numpy1):
    published = write_store(
        SOURCE, write_imagenet32_fixture(tmp_path / "a"), tmp_path / "s", progress=False
    )
    raw = write_imagenet32_fixture(tmp_path / "b", protocol=protocol, numpy1=numpy1)
    manifest = read_manifest(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    assert manifest["fingerprint"] == read_manifest(published)["fingerprint"]
    numpy = "numpy 1 (numpy.core)" if numpy1 else "numpy 2 (numpy._core)"
    form = (
        "as published"
        if (protocol, numpy1) == (3, True)
        else "re-pickled (published: protocol 3 of numpy 1)"
    )
    assert manifest["notes"] == [
        f"the release files are {form}: a Python 3 pickle (protocol {protocol}) of {numpy}"
    ]


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _hidden(command: str) -> bytes:
    "A release file with a command hidden in an object array, pickled as the release (protocol 3)."
    content = {
        "data": np.zeros((2, 3072), np.uint8),
        "labels": [1, 2],
        "mean": np.array([_RunsCommand(command)], dtype=object),
    }
    return pickle.dumps(content, protocol=3)


ASKS = {
    "os.system": "posix.system",
    "in an object array": "posix.system",
    "eval": "__builtin__.eval",
    "exec": "builtins.exec",
    "getattr": "__builtin__.getattr",
}


@pytest.mark.parametrize("kind", list(ASKS))
def test_a_crafted_release_file_runs_nothing(tmp_path, kind):
    marker, out = tmp_path / "ran", tmp_path / "out"
    raw = write_imagenet32_fixture(tmp_path / "raw")
    path = raw / "Imagenet32_train" / "train_data_batch_3"  # after two good files: a partial store
    command = f"touch {marker}"
    crafted = _hidden(command) if kind == "in an object array" else command_pickles(command)[kind]
    path.write_bytes(crafted)
    code, _, err = run_cli(["convert", "imagenet32", "--src", raw, "--out", out])
    lines = [line for line in err.split("\n") if line and not line.startswith("\r")]  # no progress
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(
        f"metamae-lab: error: imagenet32: {path} holds code: it asks for {ASKS[kind]}, "
    ), err
    assert "it was not loaded and nothing in it ran" in lines[0], err
    assert not marker.exists() and not out.exists() and not (tmp_path / "out.partial").exists()
