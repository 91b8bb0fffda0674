"""The WM-811K converter: LSWMD.pkl as Python 2 and pandas 0.19 wrote it (and a copy re-saved
by today's pandas) -> store -> pretrain -> probe; bad sources fail in one line; a crafted LSWMD.pkl
runs nothing."""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fixtures_wafer_maps import (
    FAILURE_TYPES,
    N_MAPS,
    lswmd_frame,
    nested,
    python2_frame,
    unlabelled,
    write_wafer_maps_fixture,
)
from helpers import assert_source_refused, assert_store_trains_and_probes, run_cli
from py2_pickle import Global, Reduce, command_pickles, py2_dumps
from metamae_lab.data.sources.wafer_maps import SOURCE
from metamae_lab.data.store import open_store, write_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("wafer_maps")
    return write_store(
        SOURCE, write_wafer_maps_fixture(root / "src"), root / "store", progress=False
    )


def by_hand(grid: np.ndarray) -> np.ndarray:
    """DABS's image by hand: grey levels via x127.5 on 3 channels, PIL's bilinear resize to 32 x 32,
    channels first."""
    rgb = (np.repeat(grid[:, :, None], 3, axis=2) * 127.5).astype(int).astype(np.uint8)
    return np.asarray(
        Image.fromarray(rgb).convert("RGB").resize((32, 32), Image.BILINEAR)
    ).transpose(2, 0, 1)


def dabs_order():
    "The labelled rows shuffled as DABS shuffles its labelled frame."
    frame = lswmd_frame()
    labelled = frame[[t.size > 0 for t in frame["failureType"]]]
    return labelled.sample(frac=1, random_state=42).index.to_numpy()


def test_spec_splits_labels_and_images(store):
    data = open_store(store)
    assert (
        data.spec.kind == "image"
        and data.spec.shape == (3, 32, 32)
        and data.spec.patch_size == (4, 4)
    )
    assert data.manifest["dtype"] == "uint8" and data.manifest["batch_size"] == 128
    assert data.class_names == FAILURE_TYPES and "val" not in data.manifest["splits"]
    order, frame = dabs_order(), lswmd_frame()
    for split, rows in (("train", order[:33]), ("test", order[33:])):
        assert data.split(split)[1].tolist() == [
            FAILURE_TYPES.index(frame["failureType"][r][0, 0]) for r in rows
        ]
        stored = np.load(store / data.manifest["splits"][split]["shards"][0]["x"])
        assert stored.dtype == np.uint8
        np.testing.assert_array_equal(
            stored, np.stack([by_hand(frame["waferMap"][r]) for r in rows])
        )
    assert len(order) == 36 and N_MAPS == 48


def test_pretrain_and_probe(store, tmp_path):
    assert_store_trains_and_probes(store, tmp_path / "run")


def test_the_fixture_is_what_python2_and_pandas_0_19_wrote(tmp_path):
    "Protocol 2, Python 2 strings, pandas 0.19's classes; pandas reads it (as latin-1): the frame."
    raw = (write_wafer_maps_fixture(tmp_path) / "LSWMD.pkl").read_bytes()
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    names = {name for name, _ in ops}
    assert ops[0] == ("PROTO", 2) and {"SHORT_BINSTRING", "BINSTRING", "NEWOBJ"} <= names
    assert not {"BINUNICODE", "SHORT_BINUNICODE", "STACK_GLOBAL", "FRAME", "BINBYTES"} & names
    assert {arg for name, arg in ops if name == "GLOBAL"} == {
        "pandas.core.frame DataFrame",
        "pandas.core.internals BlockManager",
        "pandas.indexes.base _new_Index",
        "pandas.indexes.base Index",
        "pandas.indexes.range RangeIndex",
        "numpy.core.multiarray _reconstruct",
        "numpy ndarray",
        "numpy dtype",
    }
    import pandas as pd

    moved = {
        "pandas.indexes.base": "pandas.core.indexes.base",
        "pandas.indexes.range": "pandas.core.indexes.range",
        "pandas.core.internals": "pandas.core.internals.managers",
    }

    class PandasUnpickler(pickle.Unpickler):  # pandas' classes where pandas keeps them now
        def find_class(self, module, name):
            return super().find_class(moved.get(module, module), name)

    with pytest.raises(UnicodeDecodeError):
        PandasUnpickler(io.BytesIO(raw)).load()  # as ASCII
    frame = PandasUnpickler(io.BytesIO(raw), encoding="latin1").load()
    assert isinstance(frame, pd.DataFrame) and frame.equals(lswmd_frame())
    assert str(frame["failureType"][0].dtype) == "<U4"
    assert frame["trianTestLabel"][3].shape == (0, 0)


def test_the_published_file_and_a_resaved_copy_give_the_same_store(tmp_path, store):
    src = write_wafer_maps_fixture(tmp_path / "src", resaved=True)
    again = write_store(SOURCE, src, tmp_path / "out", progress=False)
    published, resaved = (json.loads((s / "manifest.json").read_text()) for s in (store, again))

    def content(m):
        return {
            split: [(shard["n"], shard["sha256"]) for shard in info["shards"]]
            for split, info in m["splits"].items()
        }

    assert published["fingerprint"] == resaved["fingerprint"] and content(published) == content(
        resaved
    )
    assert published["notes"] == [
        "LSWMD.pkl is the published file: a Python 2 pickle (protocol 2) of numpy 1 (numpy.core) "
        "and pandas before 0.20 (pandas.indexes); its strings were read as latin-1"
    ]
    assert resaved["notes"] == [
        "LSWMD.pkl is a copy re-saved since, not the published Python 2 file: a Python 3 pickle "
        "(protocol 5) of numpy 2 (numpy._core) and pandas 0.20 or newer"
    ]


def test_converting_loads_no_pandas(tmp_path):
    src = write_wafer_maps_fixture(tmp_path / "src")
    code = (
        "import sys\nfrom metamae_lab.data.convert import convert\n"
        f"convert('wafer_maps', {str(src)!r}, {str(tmp_path / 'out')!r}, progress=False)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'PIL'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[-2] == "['PIL']", done.stdout  # PIL for the resizing, no pandas
    assert (tmp_path / "out" / "manifest.json").is_file()


def crafted_column(command: str) -> bytes:
    "The published layout, a command hidden in the waferMap column, as Python 2 would pickle it."
    frame = python2_frame(lswmd_frame(4))
    object_block = frame.state[b"_data"].state[1][1]  # its first row: the waferMap column
    object_block[0, 2] = Reduce(Global("posix", "system"), (command.encode(),))
    return py2_dumps(frame)


ASKS = {
    "os.system": "posix.system",
    "in a column": "posix.system",
    "eval": "__builtin__.eval",
    "exec": "builtins.exec",
    "getattr": "__builtin__.getattr",
}


@pytest.mark.parametrize("kind", list(ASKS))
def test_a_crafted_lswmd_runs_nothing(tmp_path, kind):
    marker, src, out = tmp_path / "ran", tmp_path / "src", tmp_path / "out"
    src.mkdir()
    command = f"touch {marker}"
    crafted = crafted_column(command) if kind == "in a column" else command_pickles(command)[kind]
    (src / "LSWMD.pkl").write_bytes(crafted)
    code, _, err = run_cli(["convert", "wafer_maps", "--src", src, "--out", out])
    lines = [line for line in err.split("\n") if line and not line.startswith("\r")]  # no progress
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(
        f"metamae-lab: error: wafer_maps: {src / 'LSWMD.pkl'} "
        f"holds code: it asks for {ASKS[kind]}, "
    ), err
    assert "it was not loaded and nothing in it ran" in lines[0], err
    assert not marker.exists() and not out.exists() and not (tmp_path / "out.partial").exists()


def _fails(src, out, *parts):
    assert_source_refused(SOURCE, src, out, *parts)


def _with(tmp_path, frame):
    return write_wafer_maps_fixture(tmp_path / "src", frame)


def test_missing_file(tmp_path):
    (tmp_path / "src").mkdir()
    _fails(tmp_path / "src", tmp_path / "out", "LSWMD.pkl is missing", "mirlab.org")


def test_missing_column(tmp_path):
    _fails(
        _with(tmp_path, lswmd_frame().drop(columns="failureType")),
        tmp_path / "out",
        "LSWMD.pkl has no column 'failureType'",
    )


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
    _fails(
        _with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl row 5 has a wafer map of shape (12,)"
    )


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
    frame["failureType"] = [unlabelled() for _ in range(len(frame))]
    _fails(_with(tmp_path, frame), tmp_path / "out", "LSWMD.pkl has no labelled wafer map")
