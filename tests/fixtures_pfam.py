"A tiny Pfam source in TAPE's published layout: the unpacked pfam.tar.gz, a folder pfam/ of three JSON arrays."
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

STANDARD = "ARNDCQEGHILKMFPSTWYV"
# (clan, length) of each record; clan 40 has one protein only, so the classes are the clans 3, 12, 40, 511
TRAIN = [(12, 31), (3, 128), (511, 140), (12, 5), (3, 77), (40, 64), (511, 18), (12, 250), (3, 9), (511, 100),
         (12, 45), (3, 12), (511, 33), (12, 66), (3, 129), (511, 7)]
VALID = [(3, 20), (511, 130), (12, 50), (3, 8), (12, 90), (511, 14)]
HOLDOUT = [(777, 25), (12, 30)]  # published too; the converter does not read it
# a protein spelled by hand: the first valid record, with X, U and Z among its residues
KNOWN_PRIMARY = "MKVXUZ" + "A" * 14
KNOWN_IDS = [13, 12, 20, 0, 21, 24] + [1] * 14 + [0] * 108


def records(rows: list[tuple[int, int]], seed: int, prefix: str) -> list[dict]:
    "TAPE records: the sequence, its length, clan and family ids, and an id."
    rng = np.random.default_rng(seed)
    out = []
    for i, (clan, n) in enumerate(rows):
        primary = "".join(rng.choice(list(STANDARD), n))
        out.append({"primary": primary, "protein_length": n, "clan": clan, "family": 1000 + 7 * clan + i % 2,
                    "id": f"{prefix}{i}"})
    return out


def write_pfam_fixture(folder: Path) -> Path:
    "Write pfam/pfam_train.json, pfam_valid.json and pfam_holdout.json under `folder`; the folder."
    folder = Path(folder)
    (folder / "pfam").mkdir(parents=True, exist_ok=True)
    valid = records(VALID, 1, "V")
    valid[0].update(primary=KNOWN_PRIMARY, protein_length=len(KNOWN_PRIMARY))
    for name, data in (("pfam_train", records(TRAIN, 0, "T")), ("pfam_valid", valid),
                       ("pfam_holdout", records(HOLDOUT, 2, "H"))):
        (folder / "pfam" / f"{name}.json").write_text(json.dumps(data))
    return folder
