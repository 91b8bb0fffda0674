"""A tiny genomics_ood release as TensorFlow Datasets downloads it: `genomics_ood.zip`, five
tab-separated text files at the zip's root (see the quirks in nbs/26_genomics.ipynb)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

IN_GENERA = [
    "Bacillus",
    "Burkholderia",
    "Clostridium",
    "Escherichia",
    "Mycobacterium",
    "Pseudomonas",
    "Salmonella",
    "Staphylococcus",
    "Streptococcus",
    "Yersinia",
]
# (file, genera of its rows, domain); the after-2016 files are published too; the converter skips
# them
SPLITS = [
    ("before_2011_in_tr.txt", IN_GENERA * 3, "in"),
    ("between_2011-2016_in_val.txt", IN_GENERA[:8], "in"),
    ("between_2011-2016_ood_val.txt", ["Actinoplanes", "Dyella", "Terriglobus", "Massilia"], "ood"),
    ("after_2016_in_test.txt", IN_GENERA[:2], "in"),
    ("after_2016_ood_test.txt", ["Blautia", "Moorea"], "ood"),
]
# TFDS's class ids (its ClassLabel order): in-distribution 0-9, OOD validation 10-69, OOD test
# 70-129
CLASS_IDS = {
    **{g: i for i, g in enumerate(IN_GENERA)},
    "Actinoplanes": 10,
    "Dyella": 30,
    "Terriglobus": 69,
    "Massilia": 43,
    "Blautia": 76,
    "Moorea": 103,
}
# a window spelled by hand: the first row of the in-distribution validation file
KNOWN_SEQ = "ACGT" * 62 + "TA"
KNOWN_IDS = [0, 1, 2, 3] * 62 + [3, 0]
# the header of each layout: today's builder reads four columns; its first version (July 2020) five
HEADERS = {
    "names": ["seq", "label", "seq_info", "domain"],
    "ids": ["seq", "label", "seq_info", "domain"],
    "label_id": ["seq", "label_id", "label_name", "seq_info", "domain"],
}
# the members' time stamps: fixed, so that the fixture is the same bytes every time
ZIP_TIME = (2020, 7, 28, 2, 29, 0)


def split_rows(seed: int, genera: list[str], domain: str, labels: str = "names") -> list[str]:
    "Rows of one file: a random 250-base window, its label, where it was sampled, the domain."
    rng = np.random.default_rng(seed)
    rows = []
    for i, genus in enumerate(genera):
        seq = "".join(rng.choice(list("ACGT"), 250))
        start = int(rng.integers(1, 5_000_000))
        # seq_info as in TFDS's test archive: accession, organism, ", complete genome, @start-end"
        info = (
            f"NZ_CP{seed:03d}{i:03d}.1 {genus} sp. strain "
            f"{seed}-{i}, complete genome, @{start}-{start + 249}"
        )
        label = {
            "names": genus,
            "ids": str(CLASS_IDS[genus]),
            "label_id": f"{CLASS_IDS[genus]}\t{genus}",
        }[labels]
        rows.append(f"{seq}\t{label}\t{info}\t{domain}")
    return rows


def split_texts(labels: str = "names") -> dict[str, str]:
    "File name -> text: a tab-separated header, one window a line, line feeds (after the last too)."
    texts = {}
    for seed, (name, genera, domain) in enumerate(SPLITS):
        rows = split_rows(seed, genera, domain, labels)
        if name == "between_2011-2016_in_val.txt":
            rows[0] = KNOWN_SEQ + rows[0][250:]
        texts[name] = "\t".join(HEADERS[labels]) + "\n" + "\n".join(rows) + "\n"
    return texts


def write_zip(path: Path, texts: dict[str, str]) -> Path:
    "`texts` as deflated members at the root of the zip at `path`, in name order."
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(texts):
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o100664 << 16
            archive.writestr(info, texts[name])
    return path


def write_genomics_fixture(folder: Path, unzipped: bool = False, labels: str = "names") -> Path:
    """`genomics_ood.zip` in `folder` (or, `unzipped`, its five files as `unzip` leaves them);
    `labels`: "names" as published, "ids" (the label spelled as its class id) or "label_id" (the
    first builder's five columns)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = split_texts(labels)
    if not unzipped:
        return write_zip(folder / "genomics_ood.zip", texts).parent
    # bytes: no newline translation
    for name, text in texts.items():
        (folder / name).write_bytes(text.encode())
    return folder
