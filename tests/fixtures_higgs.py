"A tiny HIGGS source in the published format: HIGGS.csv.gz, no header, label then 28 features, each written %.18e."
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

N_ROWS = 230  # 207 train; of the last 23 (the transfer rows), 21 val and 2 test


def higgs_rows(n: int = N_ROWS) -> np.ndarray:
    "(n, 29): label (1 signal, 0 background), then 28 features that differ between the classes."
    rng = np.random.default_rng(7)
    labels = (rng.random(n) < 0.53).astype(float)
    features = np.abs(rng.normal(size=(n, 28))) * (1 + 0.5 * labels[:, None])
    features[:, [1, 2, 5, 6]] = rng.uniform(-2.5, 2.5, size=(n, 4))  # eta / phi-like columns
    return np.c_[labels, features]


def write_higgs_fixture(folder: Path, gzipped: bool = True) -> Path:
    "Write HIGGS.csv.gz (or HIGGS.csv) under `folder`; returns `folder`."
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ("HIGGS.csv.gz" if gzipped else "HIGGS.csv")
    with (gzip.open(path, "wt") if gzipped else open(path, "w")) as f:
        np.savetxt(f, higgs_rows(), fmt="%.18e", delimiter=",")
    return folder
