"""The restricted unpickler: arrays and DataFrames of every pickling Python, numpy and pandas come
back as data; anything else is refused before it is imported or called, forged numpy states too."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fixtures_imagenet32 import release_pickle
from fixtures_wafer_maps import lswmd_frame, python2_frame
from py2_pickle import Global, Reduce, command_pickles, py2_dumps
from metamae_lab.data.pickles import PickledFrame, frame_columns, load_pickle
from metamae_lab.data.store import SourceError

ARRAYS = {
    "uint8 grid": np.arange(12, dtype=np.uint8).reshape(3, 4),
    "fortran": np.asfortranarray(np.eye(3)),
    "big-endian": np.arange(3, dtype=">i4"),
    "text": np.array([["none"]]),
    "bytes": np.array([b"ab", b"c"]),
    "bool": np.array([True, False]),
    "complex": np.array([1 + 2j]),
    "empty": np.zeros((0, 0)),
    "objects": np.array([np.ones((2, 2), np.uint8), "lot1", None], dtype=object),
}


def _load(tmp_path, raw: bytes, name: str = "file.pkl"):
    (tmp_path / name).write_bytes(raw)
    return load_pickle(tmp_path / name, "test")


def _same(a, b) -> bool:
    "Equal values, dtypes and shapes, into object arrays."
    if isinstance(a, np.ndarray) and a.dtype == object:
        return a.shape == b.shape and all(_same(x, y) for x, y in zip(a.ravel(), b.ravel()))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("numpy1", [True, False], ids=["numpy.core", "numpy._core"])
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_come_back_as_they_were_pickled(tmp_path, protocol, numpy1):
    content = {**ARRAYS, "scalar": np.float32(2.5)}
    loaded = _load(tmp_path, release_pickle(content, protocol, numpy1))
    assert all(_same(loaded.value[k], v) for k, v in ARRAYS.items())
    assert loaded.value["scalar"] == np.float32(2.5)
    assert (loaded.protocol, loaded.python) == (protocol, "3")
    assert any(n.startswith("numpy.core." if numpy1 else "numpy._core.") for n in loaded.names)


def test_python2_strings_are_read_as_latin1(tmp_path):
    content = {
        b"data": np.array([0, 200, 255], np.uint8),
        b"name": b"caf\xe9",
        b"text": np.array(["\xe9"]),
    }
    raw = py2_dumps(content)
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(raw)  # Python 3's default: ASCII
    loaded = _load(tmp_path, raw)
    assert loaded.value["data"].tolist() == [0, 200, 255] and loaded.value["name"] == "caf\xe9"
    assert loaded.value["text"].tolist() == ["\xe9"]
    assert (loaded.python, loaded.protocol) == ("2", 2)


def _after_an_array(command: str) -> bytes:
    "A command after an array, in a list, as Python 2 would have pickled it."
    return py2_dumps([np.zeros(3), Reduce(Global("posix", "system"), (command.encode(),))])


ASKS = {
    "os.system": "posix.system",
    "eval": "__builtin__.eval",
    "exec": "builtins.exec",
    "getattr": "__builtin__.getattr",
    "after an array": "posix.system",
}


@pytest.mark.parametrize("kind", list(ASKS))
def test_a_pickle_that_holds_code_is_refused_and_runs_nothing(tmp_path, kind):
    def payload(marker: str) -> bytes:
        command = f"touch {tmp_path / marker}"
        if kind == "after an array":
            return _after_an_array(command)
        return command_pickles(command)[kind]

    pickle.loads(payload("ran_by_pickle"))  # the payload is real: plain pickle runs it
    assert (tmp_path / "ran_by_pickle").exists()
    says = f"file.pkl holds code: it asks for {ASKS[kind]}, .* nothing in it ran"
    with pytest.raises(SourceError, match=says):
        _load(tmp_path, payload("ran"))
    assert not (tmp_path / "ran").exists()


def test_a_refused_module_is_never_imported(tmp_path, monkeypatch):
    loud = f"open({str(tmp_path / 'imported')!r}, 'w').close()\nvalue = 1\n"
    (tmp_path / "loud_module.py").write_text(loud)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SourceError, match="asks for loud_module.value"):
        _load(tmp_path, py2_dumps(Global("loud_module", "value")))
    assert not (tmp_path / "imported").exists() and "loud_module" not in sys.modules


def _py2_reduce(module: str, name: str, *args, state=None) -> bytes:
    return py2_dumps(Reduce(Global(module, name), args, state))


_ARRAY_STATE_WITH_BYTES = (1, (1,), np.dtype(object), False, b"\0" * 8)
FORGED = {
    "a structured dtype (its own flags)": (
        pickle.dumps(np.zeros(1, [("a", "O")])),
        "has fields or a subarray",
    ),
    "an object array from raw bytes": (
        _py2_reduce("numpy.core.numeric", "_frombuffer", b"\0" * 8, np.dtype(object), (1,), b"C"),
        "an object array from raw bytes",
    ),
    "an object array's state with bytes": (
        _py2_reduce(
            "numpy.core.multiarray",
            "_reconstruct",
            Global("numpy", "ndarray"),
            (0,),
            b"b",
            state=_ARRAY_STATE_WITH_BYTES,
        ),
        "without its 1 items",
    ),
    "a dtype spelt as a field list": (
        _py2_reduce("numpy", "dtype", b"i4,f8", 0, 1, state=(3, b"|", None, None, None, -1, -1, 0)),
        "is not plain",
    ),
    "too few bytes": (
        py2_dumps(np.zeros(4, np.uint8)).replace(b"U\x04\0\0\0\0", b"U\x02\0\0"),
        "with 2 bytes",
    ),
    "another codec": (_py2_reduce("_codecs", "encode", b"x", b"zlib_codec"), "only latin-1"),
    "bytes of a size": (_py2_reduce("__builtin__", "bytes", 10**12), "bytes() with arguments"),
    "a class for _reconstruct": (
        _py2_reduce(
            "numpy.core.multiarray",
            "_reconstruct",
            Global("pandas.core.frame", "DataFrame"),
            (0,),
            b"b",
        ),
        "not ndarray",
    ),
}


@pytest.mark.parametrize("case", FORGED)
def test_forged_numpy_states_are_refused(tmp_path, case):
    raw, says = FORGED[case]
    with pytest.raises(SourceError, match=f"file.pkl is not a readable pickle .*{re.escape(says)}"):
        _load(tmp_path, raw)


def _frames() -> dict[str, bytes]:
    frame = lswmd_frame(6)
    strings = frame.assign(lotName=frame["lotName"].astype(str))  # pandas 3: a StringArray
    resaved = {
        f"pandas {pd.__version__}, protocol {p}": pickle.dumps(frame, protocol=p) for p in (2, 4, 5)
    }
    return {
        "python 2, pandas 0.19": py2_dumps(python2_frame(frame)),
        **resaved,
        "a string column": pickle.dumps(strings, protocol=5),
    }


@pytest.mark.parametrize("form", list(_frames()))
def test_frame_columns_reads_every_layout(tmp_path, form):
    loaded = _load(tmp_path, _frames()[form])
    assert isinstance(loaded.value, PickledFrame)
    columns, rows = frame_columns(loaded.value, "test: file.pkl")
    frame = lswmd_frame(6)
    assert list(columns) == list(frame.columns) and rows == 6
    for name in frame.columns:
        pairs = zip(columns[name], frame[name])
        assert all(_same(np.asarray(a), np.asarray(b)) for a, b in pairs), name
    assert columns["waferMap"].dtype == object and columns["dieSize"].dtype == np.float64


def test_a_frame_without_its_parts_is_one_line(tmp_path):
    loaded = _load(tmp_path, pickle.dumps(pd.DataFrame({"a": [1.0]})))
    loaded.value.state.pop("_mgr")
    says = "^test: file.pkl is not a readable DataFrame .*without its block manager"
    with pytest.raises(SourceError, match=says):
        frame_columns(loaded.value, "test: file.pkl")


def test_reading_a_frame_loads_no_pandas(tmp_path):
    path = tmp_path / "frame.pkl"
    path.write_bytes(py2_dumps(python2_frame(lswmd_frame(3))))
    code = (
        "import sys\nfrom metamae_lab.data.pickles import frame_columns, load_pickle\n"
        f"columns, rows = frame_columns(load_pickle({str(path)!r}, 'x').value, 'x')\n"
        "print(rows, ','.join(columns), 'pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names = "waferMap,dieSize,lotName,waferIndex,trianTestLabel,failureType"
    assert done.stdout.split() == ["3", names, "False"], done.stdout


def test_a_state_given_to_a_handed_out_function_is_refused(tmp_path):
    """BUILD with (None, {'__defaults__': ...}) would set attributes on the function the file was
    given."""
    from metamae_lab.data.pickles import _latin1_encode

    raw = b"\x80\x02c_codecs\nencode\nN}U\x0c__defaults__U\x0azlib_codec\x85s\x86b."
    with pytest.raises(SourceError, match="is not a readable pickle .*a state is given to"):
        _load(tmp_path, raw)
    assert _latin1_encode.__defaults__ == ("utf-8",)
