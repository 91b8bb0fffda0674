"""A tiny LibriSpeech release as the OpenSLR archives unpack (quirks: nbs/25_librispeech.ipynb):
LibriSpeech/<subset>/<speaker>/<chapter>/ with 16-bit 16 kHz mono FLAC utterances laid out as the
flac tool writes them, each chapter's upper-case transcripts, and the metadata tables at the top."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile

RATE = 16000
# subset -> speaker -> chapter -> utterance lengths in samples. Speaker ids of 2 to 4 digits;
# dev-clean's 174 reads chapters of 5 and 6 digits, so that file-name order (torchaudio's, hence
# DABS's) differs from numeric order; one dev-clean utterance (10 s) is longer than DABS's crop.
LAYOUT = {
    "train-clean-100": {
        "19": {"198": [4000, 5200], "227": [4800]},
        "103": {"1240": [6000, 3000, 4400]},
    },
    "train-clean-360": {"1001": {"134707": [3600, 5000]}},
    "dev-clean": {
        "84": {"121123": [4000, 4200, 4400], "121550": [4600, 4800, 160000]},
        "174": {"50561": [3000, 3400, 3800, 4200], "168635": [5000, 4400]},
    },
}
SEX = {"19": "F", "103": "F", "1001": "M", "84": "F", "174": "M"}
# SPEAKERS.TXT lists the readers of every subset, unpacked or not; a name may hold '|' itself
OTHER_READERS = [
    ("116", "M", "dev-other", 25.94, "Steve Other"),
    ("1089", "M", "test-clean", 24.73, "B. Reader"),
    ("1006", "F", "train-other-500", 30.01, "|XY|Reader"),
]
WORDS = [
    "THE",
    "OLD",
    "MAN'S",
    "HOUSE",
    "WAS",
    "NOT",
    "FAR",
    "FROM",
    "RIVER",
    "AND",
    "HE",
    "DIDN'T",
    "KNOW",
    "IT",
]
# the flac tool's vendor string (which version encoded the release is not confirmed)
VENDOR = b"reference libFLAC 1.2.1 20070917"


def utterance(speaker: str, chapter: str, index: int, length: int) -> np.ndarray:
    "16-bit samples: a tone whose pitch depends on the speaker, an overtone, some noise."
    rng = np.random.default_rng(int(speaker) * 1000 + index)
    t = np.arange(length) / RATE
    pitch = 90.0 + 7.0 * (int(speaker) % 50)
    wave = 0.4 * np.sin(2 * np.pi * pitch * t) + 0.1 * np.sin(2 * np.pi * pitch * (index + 2) * t)
    wave = wave * np.linspace(1.0, 0.5, length) + 0.01 * rng.standard_normal(length)
    return np.round(wave * 32767).astype(np.int16)


def _block(kind: int, body: bytes, last: bool) -> bytes:
    "A FLAC metadata block: its type (the top bit set on the last one), length and body."
    return bytes([kind | (0x80 if last else 0)]) + len(body).to_bytes(3, "big") + body


def flac_bytes(samples: np.ndarray) -> bytes:
    """16-bit mono FLAC at 16 kHz with the flac tool's metadata: STREAMINFO, a SEEKTABLE (a point
    every 10 s: one, at the first frame, for these short files), a VORBIS_COMMENT with libFLAC's
    vendor string and no tags, 8 KiB of PADDING; the audio frames are libFLAC's, via libsndfile."""
    assert len(samples) <= 10 * RATE, "a seek point every 10 s would need the frames' offsets"
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, RATE, format="FLAC", subtype="PCM_16")
    data, pos, streaminfo = buffer.getvalue(), 4, None
    while True:  # walk libsndfile's metadata blocks to the first frame, keeping STREAMINFO
        header, length = data[pos], int.from_bytes(data[pos + 1 : pos + 4], "big")
        if header & 0x7F == 0:
            streaminfo = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if header & 0x80:
            break
    # the first frame holds the maximum block size of samples (or all of them)
    first_frame = min(int.from_bytes(streaminfo[2:4], "big"), len(samples))
    seektable = bytes(16) + first_frame.to_bytes(2, "big")  # sample 0, offset 0, its samples
    comment = len(VENDOR).to_bytes(4, "little") + VENDOR + (0).to_bytes(4, "little")
    blocks = [(0, streaminfo), (3, seektable), (4, comment), (1, bytes(8192))]
    return b"fLaC" + b"".join(_block(k, body, k == 1) for k, body in blocks) + data[pos:]


def transcript(speaker: str, chapter: str, index: int) -> str:
    "One line of a .trans.txt: the utterance id, a space, upper-case words, apostrophes kept."
    rng = np.random.default_rng(int(chapter) + index)
    return f"{speaker}-{chapter}-{index:04d} " + " ".join(rng.choice(WORDS, 3 + index % 4))


def _speakers_table() -> list[str]:
    readers = [
        (s, SEX[s], subset, 25.0 + len(chapters), f"Reader {s}")
        for subset, speakers in LAYOUT.items()
        for s, chapters in speakers.items()
    ]
    lines = [
        "; The readers whose recordings are in the corpus, '|' between the fields.",
        ";",
        ";ID  |SEX| SUBSET           |MINUTES| NAME",
    ]
    return lines + [
        f"{i:<5}| {sex} | {subset:<17}| {minutes:5.2f} | {name}"
        for i, sex, subset, minutes, name in sorted(
            readers + OTHER_READERS, key=lambda r: int(r[0])
        )
    ]


def _chapters_table() -> list[str]:
    lines = [
        "; The chapters in the corpus, '|' between the fields.",
        ";",
        ";ID    |READER|MINUTES| SUBSET           | PROJ.|BOOK ID| CH. TITLE | PROJECT TITLE",
    ]
    for subset, speakers in LAYOUT.items():
        for s, chapters in speakers.items():
            lines += [
                f"{c:<7}| {s:<5}| {2.5:5.2f} | {subset:<17}| "
                f"{100 + i:<5}| {2000 + i:<6}| Chapter {i} | Book {i}"
                for i, c in enumerate(chapters)
            ]
    return lines


def metadata_tables() -> dict[str, str]:
    "The files at the top of LibriSpeech/: tables of ';' comments and '|' columns, the texts."
    books = ["; The books read, '|' between the fields.", ";", ";ID    |TITLE"]
    books += [f"{2000 + i:<7}| Book {i}" for i in range(3)]
    tables = {
        "SPEAKERS.TXT": _speakers_table(),
        "CHAPTERS.TXT": _chapters_table(),
        "BOOKS.TXT": books,
        "LICENSE.TXT": ["Creative Commons Attribution 4.0 International (CC BY 4.0)"],
        "README.TXT": ["LibriSpeech: read English speech from LibriVox audiobooks, 16 kHz."],
    }
    return {name: "\n".join(lines) + "\n" for name, lines in tables.items()}


def write_librispeech_fixture(folder: Path) -> Path:
    """LibriSpeech/ under `folder` as the archives of `LAYOUT`'s subsets unpack there: the metadata
    tables, and <subset>/<speaker>/<chapter>/ with <speaker>-<chapter>-<utterance>.flac files and
    <speaker>-<chapter>.trans.txt. The folder."""
    root = Path(folder) / "LibriSpeech"
    root.mkdir(parents=True, exist_ok=True)
    for name, text in metadata_tables().items():
        (root / name).write_bytes(text.encode())
    for subset, speakers in LAYOUT.items():
        for speaker, chapters in speakers.items():
            for chapter, lengths in chapters.items():
                where = root / subset / speaker / chapter
                where.mkdir(parents=True, exist_ok=True)
                for index, length in enumerate(lengths):
                    flac = flac_bytes(utterance(speaker, chapter, index, length))
                    (where / f"{speaker}-{chapter}-{index:04d}.flac").write_bytes(flac)
                lines = [transcript(speaker, chapter, i) for i in range(len(lengths))]
                text = "\n".join(lines) + "\n"
                (where / f"{speaker}-{chapter}.trans.txt").write_bytes(text.encode())
    return Path(folder)
