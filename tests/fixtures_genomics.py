"A tiny genomics_ood source in TensorFlow Datasets' published layout: the unzipped genomics_ood.zip."
from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = "seq\tlabel\tseq_info\tdomain\n"
IN_GENERA = ["Bacillus", "Burkholderia", "Clostridium", "Escherichia", "Mycobacterium", "Pseudomonas", "Salmonella",
             "Staphylococcus", "Streptococcus", "Yersinia"]
# (file, genera of its rows, domain); the after-2016 files are published too, and the converter skips them
SPLITS = [("before_2011_in_tr.txt", IN_GENERA * 3, "in"),
          ("between_2011-2016_in_val.txt", IN_GENERA[:8], "in"),
          ("between_2011-2016_ood_val.txt", ["Actinoplanes", "Dyella", "Terriglobus", "Massilia"], "ood"),
          ("after_2016_in_test.txt", IN_GENERA[:2], "in"),
          ("after_2016_ood_test.txt", ["Blautia", "Moorea"], "ood")]
# a window spelled by hand: the first row of the in-distribution validation file
KNOWN_SEQ = "ACGT" * 62 + "TA"
KNOWN_IDS = [0, 1, 2, 3] * 62 + [3, 0]


def split_rows(seed: int, genera: list[str], domain: str) -> list[str]:
    "Rows of one file: random 250-base windows, the genus, where it was sampled, the domain."
    rng = np.random.default_rng(seed)
    rows = []
    for i, genus in enumerate(genera):
        seq = "".join(rng.choice(list("ACGT"), 250))
        info = f"{genus.lower()}_genome NC_{seed:03d}{i:04d}.1 {1000 * i}-{1000 * i + 250}"
        rows.append(f"{seq}\t{genus}\t{info}\t{domain}")
    return rows


def write_genomics_fixture(folder: Path) -> Path:
    "Write the five tab-separated split files into `folder`; the folder."
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, genera, domain) in enumerate(SPLITS):
        rows = split_rows(seed, genera, domain)
        if name == "between_2011-2016_in_val.txt": rows[0] = KNOWN_SEQ + rows[0][250:]
        (folder / name).write_text(HEADER + "\n".join(rows) + "\n")
    return folder
