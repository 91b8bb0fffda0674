"""A tiny HIGGS release written the way UCI's file is: `HIGGS.csv.gz`, no header, one collision a
line, the label and 28 features comma-separated, every value a float32 printed by numpy's `savetxt`
default `%.18e`, `\\n` line ends.

Where each fact comes from: nbs/22_higgs.ipynb, "Quirks of the published files"."""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import numpy as np

N_ROWS = 230  # 207 train; of the last 23 (the transfer rows), 21 val and 2 test
ETA = [2, 7, 11, 15, 19]  # lepton and jet pseudorapidities: within ±2.5
PHI = [3, 5, 8, 12, 16, 20]  # azimuthal angles, scaled to about ±1.74
# each jet's b-tag takes three values: 0, half the top value, the top value (as in the first rows)
B_TAG = {
    9: 2.1730761528015137,
    13: 2.2148721218109131,
    17: 2.5482244491577148,
    21: 3.1019613742828369,
}
# the header a mirror or a re-save might add (UCI's file has none)
HEADER = (
    "label,lepton_pT,lepton_eta,lepton_phi,missing_energy_magnitude,missing_energy_phi,"
    "jet_1_pt,jet_1_eta,jet_1_phi,jet_1_b-tag,jet_2_pt,jet_2_eta,jet_2_phi,jet_2_b-tag,"
    "jet_3_pt,jet_3_eta,jet_3_phi,jet_3_b-tag,jet_4_pt,jet_4_eta,jet_4_phi,jet_4_b-tag,"
    "m_jj,m_jjj,m_lv,m_jlv,m_bb,m_wbb,m_wwbb"
)


def higgs_rows(n: int = N_ROWS) -> np.ndarray:
    "(n, 29) float64 holding float32 values: the label (1 signal, 0 background), then 28 features."
    rng = np.random.default_rng(7)
    labels = (rng.random(n) < 0.53).astype(np.float32)
    features = rng.lognormal(-0.1, 0.4, size=(n, 29)) * (1 + 0.3 * labels[:, None])  # momenta…
    features[:, ETA] = rng.uniform(-2.5, 2.5, size=(n, len(ETA)))
    features[:, PHI] = rng.uniform(-1.743, 1.743, size=(n, len(PHI)))
    for column, top in B_TAG.items():
        features[:, column] = rng.choice([0.0, top / 2, top], size=n, p=[0.5, 0.1, 0.4])
    features[::41, 20] = -8.191101951524615288e-04  # small values keep 18 digits and their exponent
    rows = features.astype(np.float32).astype(np.float64)  # float32 values, widened exactly
    rows[:, 0] = labels
    return rows


def higgs_text(rows: np.ndarray, newline: str = "\n", header: bool = False) -> bytes:
    "The CSV as numpy's `savetxt(fmt='%.18e', delimiter=',')` writes: `1.000000000000000000e+00,…`"
    text = io.StringIO()
    np.savetxt(text, rows, fmt="%.18e", delimiter=",", newline=newline)
    return ((HEADER + newline if header else "") + text.getvalue()).encode()


def gzipped(data: bytes, name: str = "HIGGS.csv") -> bytes:
    "`data` compressed as one gzip member that names the file it holds."
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0) as f:
        f.write(data)
    return out.getvalue()


def write_higgs_fixture(
    folder: Path, variant: str = "gz", newline: str = "\n", header: bool = False
) -> Path:
    """Write the file under `folder` and return `folder`. `variant`: 'gz' (`HIGGS.csv.gz` as UCI
    publishes it), 'csv' (`HIGGS.csv`, unpacked by the user), 'zip' (`higgs.zip`, UCI's current
    download, holding `HIGGS.csv.gz`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = higgs_text(higgs_rows(), newline, header)
    if variant == "csv":
        (folder / "HIGGS.csv").write_bytes(data)
    elif variant == "gz":
        (folder / "HIGGS.csv.gz").write_bytes(gzipped(data))
    else:
        with zipfile.ZipFile(folder / "higgs.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("HIGGS.csv.gz", gzipped(data))
    return folder
