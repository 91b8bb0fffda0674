"""A tiny PAMAP2 release written the way the published files are: `PAMAP2_Dataset/` with `Protocol/`
(nine subjects) and `Optional/` (five), 54 space-separated values a line printed like C's `%g`,
`NaN` for what a sensor did not send.

Where each fact comes from: nbs/21_pamap2.ipynb, "Quirks of the published files"."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

SUBJECTS = range(101, 110)
# (activity id, lines) per subject, in the order of the data collection protocol, transients (0)
# between. Which activities a subject has follows PerformedActivitiesSummary.pdf as readers of the
# release transcribe it: 103 has no running, cycling, Nordic walking or rope jumping; 104 a few
# lines of running (too few for a window) and no rope jumping; 107 no rope jumping; 109 rope jumping
# only (the short file: 8,477 lines in the release).
PLAN = {
    101: [(0, 30), (1, 500), (0, 25), (17, 340), (0, 20), (24, 330), (0, 15)],
    102: [(0, 40), (2, 480), (0, 30), (12, 350), (0, 20)],
    103: [(0, 35), (3, 340), (0, 25), (4, 500), (0, 20)],
    104: [(0, 30), (16, 500), (0, 20), (5, 150), (0, 25)],
    105: [(0, 30), (1, 500), (0, 20), (6, 340), (0, 25), (24, 330), (0, 10)],
    106: [(0, 30), (13, 340), (0, 20), (4, 660), (0, 15)],
    107: [(0, 25), (17, 340), (0, 20), (7, 500), (0, 20)],
    108: [(0, 30), (13, 340), (0, 20), (5, 500), (0, 20)],
    109: [(0, 40), (24, 660), (0, 30)],
}
# the Optional session: five subjects, optional activities (9-11, 18-20); not to be read
OPTIONAL_PLAN = {
    101: [(0, 20), (9, 200), (0, 15), (18, 150)],
    105: [(0, 20), (10, 180), (0, 10), (19, 120)],
    106: [(0, 15), (10, 160), (0, 10), (18, 140)],
    108: [(0, 20), (19, 200), (0, 10), (20, 160)],
    109: [(0, 20), (10, 150), (0, 10), (20, 150)],
}
# the real first line of Protocol/subject101.dat, as three readers of the release quote it
FIRST_LINE_101 = (
    "8.38 0 104 30 2.37223 8.60074 3.51048 2.43954 8.76165 3.35465 -0.0922174 "
    "0.0568115 -0.0158445 14.6806 -69.2128 -5.58905 1 0 0 0 31.8125 0.23808 9.80003 "
    "-1.68896 0.265304 9.81549 -1.41344 -0.00506495 -0.00678097 -0.00566295 0.47196 "
    "-51.0499 43.2903 1 0 0 0 30.3125 9.65918 -1.65569 -0.0997967 9.64689 -1.55576 "
    "0.310404 0.00830026 0.00925038 -0.0175803 -61.1888 -38.9599 -58.1438 1 0 0 0"
)
# subject -> (first column of an IMU, first line, lines): its packets lost, all 17 columns NaN
DROPOUTS = {
    101: (3, 120, 6),
    103: (20, 200, 5),
    105: (37, 90, 4),
    106: (3, 400, 8),
    109: (20, 300, 3),
}
PDFS = (
    "readme.pdf",
    "DataCollectionProtocol.pdf",
    "DescriptionOfActivities.pdf",
    "PerformedActivitiesSummary.pdf",
    "subjectInformation.pdf",
)
ARCHIVE, UCI_DOWNLOAD = "PAMAP2_Dataset.zip", "pamap2+physical+activity+monitoring.zip"


def _imu(rng: np.random.Generator, ids: np.ndarray, body: int) -> np.ndarray:
    "(T, 17) of one IMU: temperature, two accelerometers, gyroscope, magnetometer, orientation."
    t, moving = len(ids), ids[:, None] / 10
    drift = np.cumsum(rng.normal(0, 0.01, t))
    temperature = np.round((31 + body + drift) * 16) / 16  # in steps of 1/16 °C
    acc16 = rng.normal(0, 0.3 + moving / 2, (t, 3)) + [9.8 * (body == 1), 1.5, 0.5 * body] + moving
    acc6 = acc16 * 1.01 + 0.05  # the ±6g accelerometer: not calibrated with the first one
    gyro = rng.normal(0, 0.05, (t, 3)) * (1 + moving)
    gyro[::97] *= 1e-3  # readings below 1e-4, which `%g` prints with an exponent (-7.2e-05)
    magnet = rng.normal(0, 2, (t, 3)) + [-60 + 10 * body, -40, 20 - body]
    angle = np.cumsum(rng.normal(0, 0.002, t))
    orientation = np.c_[np.cos(angle), np.sin(angle), 0.2 * np.sin(angle), 0.1 * np.sin(angle)]
    orientation[:100] = [1, 0, 0, 0]  # "invalid in this data collection"; line 1 holds 1 0 0 0
    return np.c_[temperature, acc16, acc6, gyro, magnet, orientation]


def session_values(subject: int, plan: list, start_cs: int) -> np.ndarray:
    "The (T, 54) values of one session before printing: timestamp, activity id, heart rate, 3 IMUs."
    rng = np.random.default_rng(subject)
    ids = np.concatenate([np.full(n, activity, float) for activity, n in plan])
    t = len(ids)
    heart = np.full(t, np.nan)
    ticks = np.floor((np.arange(t + 1) + subject % 7) * 0.0913)  # the monitor's ~9.1 Hz at 100 Hz
    beats = np.flatnonzero(np.diff(ticks))
    heart[beats] = np.round(75 + 3 * ids[beats] + 10 * np.sin(beats / 200))  # whole beats a minute
    imus = [_imu(rng, ids, body) for body in range(3)]
    values = np.column_stack([(start_cs + np.arange(t)) / 100, ids, heart, *imus])
    if subject in DROPOUTS:
        column, line, n = DROPOUTS[subject]
        values[line : line + n, column : column + 17] = np.nan
    return values


def _printed(values: np.ndarray, newline: str) -> str:
    "Lines of values separated by one space, each printed like C's `%g`, NaN as `NaN`."
    lines = (" ".join("NaN" if v != v else "%g" % v for v in row) for row in values.tolist())
    return "".join(line + newline for line in lines)


def subject_text(subject: int, newline: str = "\n", optional: bool = False) -> str:
    "The text of `Protocol/subjectNNN.dat` (or `Optional/`); 101's starts with the real first line."
    plan = (OPTIONAL_PLAN if optional else PLAN)[subject]
    first_101 = subject == 101 and not optional
    start_cs = 838 if first_101 else 500 + 37 * (subject % 10)  # the first timestamp, in 1/100 s
    text = _printed(session_values(subject + 1000 * optional, plan, start_cs), newline)
    return FIRST_LINE_101 + newline + text.split(newline, 1)[1] if first_101 else text


def _files(newline: str) -> dict[str, bytes]:
    "Every file of the release under `PAMAP2_Dataset/`, by its path there."
    files = {f"Protocol/subject{s}.dat": subject_text(s, newline).encode() for s in SUBJECTS}
    for s in OPTIONAL_PLAN:
        files[f"Optional/subject{s}.dat"] = subject_text(s, newline, optional=True).encode()
    return files | {name: b"%PDF-1.4\n% a stand-in for the release's document\n" for name in PDFS}


def write_pamap2_fixture(folder: Path, layout: str = "unpacked", newline: str = "\n") -> Path:
    """Write the release under `folder` and return `folder`, the source folder to convert. `layout`:
    'unpacked' (`PAMAP2_Dataset/...`: the archive unpacked there), 'dataset' (the `PAMAP2_Dataset`
    folder's content itself), 'archive' (`PAMAP2_Dataset.zip`), 'uci' (UCI's download: a zip holding
    `PAMAP2_Dataset.zip` and `readme.pdf`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = _files(newline)
    if layout in ("unpacked", "dataset"):
        root = folder / "PAMAP2_Dataset" if layout == "unpacked" else folder
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return folder
    archive = folder / ARCHIVE
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for directory in ("", "Optional/", "Protocol/"):
            z.writestr(f"PAMAP2_Dataset/{directory}", b"")  # the folder entries an archiver writes
        for name, data in files.items():
            z.writestr(f"PAMAP2_Dataset/{name}", data)
    if layout == "uci":
        with zipfile.ZipFile(folder / UCI_DOWNLOAD, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(archive, ARCHIVE)
            z.writestr("readme.pdf", files["readme.pdf"])
        archive.unlink()
    return folder
