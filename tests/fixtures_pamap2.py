"A tiny PAMAP2 source in the published layout: Protocol/subject101.dat … subject109.dat, 54 numbers a line."
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SUBJECTS = range(101, 110)
# per subject: (activity id, lines) stretches; 0 is the transient between activities
PLAN = {subject: [(0, 25), ([1, 4, 12][subject % 3], 500), (0, 20), ([5, 17, 24][subject % 3], 340), (0, 15)]
        for subject in SUBJECTS}


def subject_values(subject: int) -> np.ndarray:
    "The (T, 54) values of one subject, NaN where the published files have it (heart rate at 1/10 the rate, drop-outs)."
    rng = np.random.default_rng(subject)
    ids = np.concatenate([np.full(n, activity, float) for activity, n in PLAN[subject]])
    t = np.arange(len(ids))
    channels = rng.normal(size=(len(ids), 52)).round(4) + np.arange(52) + 0.01 * ids[:, None]
    channels[:, 0] = 80 + 40 * np.sin(t / 50) + ids  # heart rate (bpm)
    values = np.c_[5.0 + t / 100, ids, channels]
    values[t % 10 != 3, 2] = np.nan  # the heart-rate monitor reads about 9 times a second
    values[100:104, 20:37] = np.nan  # the chest IMU's packets lost for 4 lines
    return values


def write_pamap2_fixture(folder: Path) -> Path:
    "Write the nine subject files under `folder`/Protocol; returns `folder`."
    folder = Path(folder)
    (folder / "Protocol").mkdir(parents=True, exist_ok=True)
    for subject in SUBJECTS:
        text = io.StringIO()
        np.savetxt(text, subject_values(subject), fmt="%.4f")
        (folder / "Protocol" / f"subject{subject}.dat").write_text(text.getvalue().replace("nan", "NaN"))
    return folder
