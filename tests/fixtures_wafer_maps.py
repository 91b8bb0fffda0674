"A tiny WM-811K source in the published format: LSWMD.pkl, a pickled pandas DataFrame with the published columns."
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FAILURE_TYPES = ["none", "Random", "Donut", "Scratch", "Center", "Loc", "Edge-Loc", "Edge-Ring", "Near-full"]
N_MAPS = 48  # every fourth unlabelled: 36 labelled, 33 train and 3 test


def wafer(i: int, rng) -> np.ndarray:
    "A round wafer of passing dies (1) on a grid of varying size, off-wafer corners (0), a few failed dies (2)."
    h, w = 18 + i % 9, 22 - i % 6
    yy, xx = np.mgrid[:h, :w]
    inside = ((yy - (h - 1) / 2) / (h / 2)) ** 2 + ((xx - (w - 1) / 2) / (w / 2)) ** 2 <= 1
    grid = np.where(inside, 1, 0).astype(np.uint8)
    grid[inside & (rng.random((h, w)) < 0.1 + 0.05 * (i % 9))] = 2
    return grid


def nested(value: str) -> np.ndarray: return np.array([[value]], dtype=object)


def lswmd_frame(n: int = N_MAPS) -> pd.DataFrame:
    "The DataFrame: labels nested as [['Loc']], unlabelled maps an empty (0, 0) array, as in LSWMD.pkl."
    rng = np.random.default_rng(3)
    maps = [wafer(i, rng) for i in range(n)]
    labelled = [i % 4 != 3 for i in range(n)]
    return pd.DataFrame({
        "waferMap": maps, "dieSize": [float((m > 0).sum()) for m in maps],
        "lotName": [f"lot{i // 25 + 1}" for i in range(n)], "waferIndex": [float(i % 25 + 1) for i in range(n)],
        "trianTestLabel": [nested("Training" if i % 5 else "Test") if labelled[i] else np.zeros((0, 0))
                           for i in range(n)],
        "failureType": [nested(FAILURE_TYPES[i % 9]) if labelled[i] else np.zeros((0, 0)) for i in range(n)]})


def write_wafer_maps_fixture(folder: Path) -> Path:
    "Write LSWMD.pkl under `folder`; returns `folder`."
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lswmd_frame().to_pickle(folder / "LSWMD.pkl")
    return folder
