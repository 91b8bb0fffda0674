"""A tiny Pfam release as TAPE publishes it for PyTorch (data_raw_pytorch/pfam.tar.gz, unpacked): a
folder pfam/ of three JSON arrays, each written by a bare `json.dump` (quirks: 27_pfam.ipynb)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STANDARD = "ARNDCQEGHILKMFPSTWYV"
# (clan, length) of each record; clan 40 has one protein only; the classes: clans 3, 12, 40, 511
TRAIN = [
    (12, 31),
    (3, 128),
    (511, 140),
    (12, 5),
    (3, 77),
    (40, 64),
    (511, 18),
    (12, 250),
    (3, 9),
    (511, 100),
    (12, 45),
    (3, 12),
    (511, 33),
    (12, 66),
    (3, 129),
    (511, 7),
]
VALID = [(3, 20), (511, 130), (12, 50), (3, 8), (12, 90), (511, 14)]
HOLDOUT = [(777, 25), (12, 30)]  # published too; the converter does not read it
# a protein spelled by hand: the first valid record, with X, U and Z among its residues
KNOWN_PRIMARY = "MKVXUZ" + "A" * 14
KNOWN_IDS = [13, 12, 20, 0, 21, 24] + [1] * 14 + [0] * 108


def records(
    rows: list[tuple[int, int]], seed: int, wrapped: bool = False, ids: bool = True
) -> list[dict]:
    """TAPE's records, keys in its order: the residues, their number, clan and family ids (plain
    integers, or one-element lists when `wrapped`), then the record's number as a string (left out
    when not `ids`)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, (clan, n) in enumerate(rows):
        primary = "".join(rng.choice(list(STANDARD), n))
        numbers = {"protein_length": n, "clan": clan, "family": 1000 + 7 * clan + i % 2}
        record = {"primary": primary, **{k: [v] if wrapped else v for k, v in numbers.items()}}
        out.append({**record, "id": str(i)} if ids else record)
    return out


def write_pfam_fixture(folder: Path, wrapped: bool = False, ids: bool = True) -> Path:
    """pfam/pfam_train.json, pfam_valid.json and pfam_holdout.json under `folder`, as
    `tar -xzf pfam.tar.gz` leaves them; `wrapped` and `ids`: the forms of the integers and ids that
    are not confirmed. The folder."""
    folder = Path(folder)
    (folder / "pfam").mkdir(parents=True, exist_ok=True)
    valid = records(VALID, 1, wrapped, ids)
    valid[0].update(primary=KNOWN_PRIMARY)
    valid[0]["protein_length"] = [len(KNOWN_PRIMARY)] if wrapped else len(KNOWN_PRIMARY)
    for name, data in (
        ("pfam_train", records(TRAIN, 0, wrapped, ids)),
        ("pfam_valid", valid),
        ("pfam_holdout", records(HOLDOUT, 2, wrapped, ids)),
    ):
        # a bare json.dump as in TAPE's scripts: one line, ", " and ": ", ASCII, no final newline
        with open(folder / "pfam" / f"{name}.json", "w") as f:
            json.dump(data, f)
    return folder
