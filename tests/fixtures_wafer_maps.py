"""A tiny WM-811K source in the published format: LSWMD.pkl, a DataFrame pickled by Python 2.7 with
pandas 0.19 and numpy 1.x (written opcode by opcode by `py2_pickle`), or the same frame re-saved by
today's pandas (`to_pickle`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from py2_pickle import Global, NewObj, Reduce, py2_dict_order, py2_dumps

FAILURE_TYPES = [
    "none",
    "Random",
    "Donut",
    "Scratch",
    "Center",
    "Loc",
    "Edge-Loc",
    "Edge-Ring",
    "Near-full",
]
COLUMNS = ["waferMap", "dieSize", "lotName", "waferIndex", "trianTestLabel", "failureType"]  # sic
N_MAPS = 48  # every fourth unlabelled: 36 labelled, 33 train and 3 test


def wafer(i: int, rng) -> np.ndarray:
    "A round wafer of passing dies (1), a few failed (2), on a grid of varying size (0 off it)."
    h, w = 18 + i % 9, 22 - i % 6
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
    grid = np.where(inside, 1, 0).astype(np.uint8)
    grid[inside & (rng.random((h, w)) < 0.1 + 0.05 * (i % 9))] = 2
    return grid


def nested(value: str) -> np.ndarray:
    "A label as LSWMD.pkl holds it: a (1, 1) unicode array, e.g. array([['Loc']], dtype='<U3')."
    return np.array([[value]])


def unlabelled() -> np.ndarray:
    return np.zeros((0, 0))  # MATLAB's empty [], float64


def lswmd_frame(n: int = N_MAPS) -> pd.DataFrame:
    "The DataFrame LSWMD.pkl holds (as pandas loads it): the published columns, dtypes, row index."
    rng = np.random.default_rng(3)
    maps = [wafer(i, rng) for i in range(n)]

    def label(i, name):
        return nested(name) if i % 4 != 3 else unlabelled()  # every fourth unlabelled

    def column(values):
        return pd.Series(values, dtype=object)  # object columns stay object, re-saved

    return pd.DataFrame(
        {
            "waferMap": column(maps),
            "dieSize": [float((m > 0).sum()) for m in maps],
            "lotName": column([f"lot{i // 25 + 1}" for i in range(n)]),
            "waferIndex": [float(i % 25 + 1) for i in range(n)],
            "trianTestLabel": column([label(i, "Training" if i % 5 else "Test") for i in range(n)]),
            "failureType": column([label(i, FAILURE_TYPES[i % 9]) for i in range(n)]),
        },
        columns=COLUMNS,
    )


# pandas 0.19 spells these keys as literals: one (interned) object each, memoised by cPickle
DATA, NAME, START, STOP, STEP, VALUES, MGR_LOCS, AXES, BLOCKS = (
    b"data",
    b"name",
    b"start",
    b"stop",
    b"step",
    b"values",
    b"mgr_locs",
    b"axes",
    b"blocks",
)
NEW_INDEX = Global("pandas.indexes.base", "_new_Index")


def kwargs_dict(*items) -> dict:
    "`dict(k1=v1, k2=v2)` in Python 2: keywords go into a dict last first, then are copied over."
    values = dict(items)
    return {key: values[key] for key in py2_dict_order(reversed(values))}


def old_index(labels: list[bytes]) -> Reduce:
    "pandas 0.19's `Index.__reduce__`: `_new_Index(Index, {'data': object array, 'name': None})`."
    attributes = {DATA: np.array(labels, object), NAME: None}
    return Reduce(NEW_INDEX, (Global("pandas.indexes.base", "Index"), attributes))


def old_range_index(n: int) -> Reduce:
    "pandas 0.19's `RangeIndex.__reduce__`: `_new_Index(RangeIndex, {name, start, stop, step})`."
    attributes = {NAME: None}
    attributes.update(dict(((START, 0), (STOP, n), (STEP, 1))))
    return Reduce(NEW_INDEX, (Global("pandas.indexes.range", "RangeIndex"), attributes))


def as_python2(value):
    "A cell as Python 2 held it: text as `str` (bytes here); arrays and numbers as they are."
    return value.encode("latin-1") if isinstance(value, str) else value


def python2_frame(frame: pd.DataFrame) -> NewObj:
    """`frame` as pandas 0.19 pickled it: a DataFrame (NEWOBJ, BUILD with its state dict) around a
    BlockManager of state (axes, block values, block items, {'0.14.1': {axes, blocks: [{values,
    mgr_locs}]}}): one FloatBlock and one ObjectBlock, placed by int64 arrays of positions."""
    labels = [name.encode() for name in frame.columns]
    floats = [i for i, name in enumerate(frame.columns) if frame[name].dtype == np.float64]
    objects = [i for i in range(len(labels)) if i not in floats]
    float_values = np.stack([frame.iloc[:, i].to_numpy(np.float64) for i in floats])
    object_values = np.empty((len(objects), len(frame)), object)
    for row, i in enumerate(objects):
        for j, value in enumerate(frame.iloc[:, i]):
            object_values[row, j] = as_python2(value)
    blocks = [
        (float_values, np.array(floats, np.int64)),
        (object_values, np.array(objects, np.int64)),
    ]
    axes = [old_index(labels), old_range_index(len(frame))]
    items = [old_index([labels[i] for i in locs]) for _, locs in blocks]
    block_dicts = [kwargs_dict((VALUES, values), (MGR_LOCS, locs)) for values, locs in blocks]
    extra = {b"0.14.1": {AXES: axes, BLOCKS: block_dicts}}
    manager_state = (axes, [values for values, _ in blocks], items, extra)
    manager = NewObj(Global("pandas.core.internals", "BlockManager"), manager_state)
    state = kwargs_dict((b"_data", manager), (b"_typ", b"dataframe"), (b"_metadata", []))
    return NewObj(Global("pandas.core.frame", "DataFrame"), state)


def write_wafer_maps_fixture(
    folder: Path, frame: pd.DataFrame | None = None, resaved: bool = False
) -> Path:
    """Write LSWMD.pkl under `folder` (returned): as published (Python 2.7, pandas 0.19, numpy 1.x,
    protocol 2), or with `resaved` the frame pickled by today's pandas, as a re-saved copy is."""
    folder, frame = Path(folder), lswmd_frame() if frame is None else frame
    folder.mkdir(parents=True, exist_ok=True)
    if resaved:
        frame.to_pickle(folder / "LSWMD.pkl")
    else:
        (folder / "LSWMD.pkl").write_bytes(py2_dumps(python2_frame(frame)))
    return folder
