"A tiny LibriSpeech release: the OpenSLR layout with 16 kHz FLAC utterances and the chapters' transcripts."
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
# subset -> speaker -> chapter -> utterance lengths in samples (one dev-clean utterance is longer than DABS's crop)
LAYOUT = {
    "train-clean-100": {"19": {"198": [4000, 5200], "227": [4800]}, "103": {"1240": [6000, 3000, 4400]}},
    "train-clean-360": {"1001": {"134707": [3600, 5000]}},
    "dev-clean": {"84": {"121123": [4000, 4200, 4400], "121550": [4600, 4800, 160000]},
                  "174": {"50561": [3000, 3400, 3800, 4200, 5000]}},
}


def utterance(speaker: str, chapter: str, index: int, length: int) -> np.ndarray:
    "A deterministic waveform: a tone whose pitch depends on the speaker, an overtone per utterance, some noise."
    rng = np.random.default_rng(int(speaker) * 1000 + index)
    t = np.arange(length) / RATE
    pitch = 90.0 + 7.0 * (int(speaker) % 50)
    wave = 0.4 * np.sin(2 * np.pi * pitch * t) + 0.1 * np.sin(2 * np.pi * pitch * (index + 2) * t)
    return wave * np.linspace(1.0, 0.5, length) + 0.01 * rng.standard_normal(length)


def write_librispeech_fixture(folder: Path) -> Path:
    """`LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac` (16-bit PCM FLAC at 16 kHz, as
    published) and `<speaker>-<chapter>.trans.txt` for every chapter of `LAYOUT`, under `folder`."""
    for subset, speakers in LAYOUT.items():
        for speaker, chapters in speakers.items():
            for chapter, lengths in chapters.items():
                where = Path(folder) / "LibriSpeech" / subset / speaker / chapter
                where.mkdir(parents=True, exist_ok=True)
                lines = []
                for index, length in enumerate(lengths):
                    name = f"{speaker}-{chapter}-{index:04d}"
                    soundfile.write(where / f"{name}.flac", utterance(speaker, chapter, index, length), RATE,
                                    format="FLAC", subtype="PCM_16")
                    lines.append(f"{name} A TONE FOR SPEAKER {speaker} NUMBER {index}")
                (where / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return Path(folder)
