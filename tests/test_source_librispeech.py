"""LibriSpeech as the OpenSLR archives unpack: DABS's spectrograms and splits in the store, training
on it, bad sources."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from fixtures_librispeech import LAYOUT, RATE, write_librispeech_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.data.sources.librispeech import SOURCE, mel_filterbank
from metamae_lab.data.store import open_store, read_manifest, write_store

CROP, N_FFT, HOP = 150526, 2048, 672
SUBSETS_NOTE = (
    "pretraining subsets found: train-clean-100, train-clean-360; not found: "
    "train-other-500 (DABS pretrains on all three)"
)


def reference(path: Path) -> np.ndarray:
    "DABS's sample for one file, by numpy: crop/pad, framed Hann FFT, mel power, dB of its square."
    wave, rate = soundfile.read(path)
    assert rate == RATE
    padded = np.zeros(CROP)
    padded[: min(len(wave), CROP)] = wave[:CROP]
    padded = np.pad(padded, N_FFT // 2)
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))
    frames = np.stack([padded[i * HOP : i * HOP + N_FFT] * window for i in range(224)], axis=1)
    mel = mel_filterbank(RATE, N_FFT, 224) @ (np.abs(np.fft.rfft(frames, axis=0)) ** 2)
    db = 10 * np.log10(np.maximum(mel**2, 1e-10))
    return np.maximum(db, db.max() - 80)


def files(raw: Path, subset: str, speaker: str) -> list[Path]:
    "A speaker's utterances in torchaudio's order (its walker sorts the subset's file names)."
    return sorted((raw / "LibriSpeech" / subset / speaker).glob("*/*.flac"), key=lambda p: p.name)


def dabs_dev_split(raw: Path) -> tuple[list[Path], list[Path]]:
    "DABS's LibriSpeechTransfer split of dev-clean: one RandomState(42) over the speakers by id."
    rs, train, test = np.random.RandomState(42), [], []
    for speaker in sorted(LAYOUT["dev-clean"], key=int):
        utts = np.array(files(raw, "dev-clean", speaker))
        rs.shuffle(utts)
        cut = int(0.8 * len(utts))
        train += list(utts[:cut])
        test += list(utts[cut:])
    return train, test


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("librispeech")
    raw = write_librispeech_fixture(tmp / "raw")
    return raw, write_store(SOURCE, raw, tmp / "out", progress=False)


def test_the_release_is_laid_out_as_published(converted):
    raw, _ = converted
    top = sorted(p.name for p in (raw / "LibriSpeech").iterdir())
    assert top == [
        "BOOKS.TXT",
        "CHAPTERS.TXT",
        "LICENSE.TXT",
        "README.TXT",
        "SPEAKERS.TXT",
        "dev-clean",
        "train-clean-100",
        "train-clean-360",
    ]
    assert "| |XY|Reader" in (raw / "LibriSpeech" / "SPEAKERS.TXT").read_text()
    data = (raw / "LibriSpeech/dev-clean/174/50561/174-50561-0000.flac").read_bytes()
    # the flac tool's metadata blocks: STREAMINFO, SEEKTABLE, VORBIS_COMMENT, PADDING
    blocks, pos, last = [], 4, False
    while not last:
        blocks.append(data[pos] & 0x7F)
        last, pos = data[pos] & 0x80, pos + 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
    assert data[:4] == b"fLaC" and blocks == [0, 3, 4, 1]
    info = soundfile.info(raw / "LibriSpeech/dev-clean/174/50561/174-50561-0000.flac")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    # file-name order is not numeric: chapter 168635 comes before 50561, in torchaudio and here
    assert [f.parent.name for f in files(raw, "dev-clean", "174")] == ["168635"] * 2 + ["50561"] * 4


def test_units_are_speakers_of_the_pretraining_subsets_then_dev_clean(converted):
    raw, _ = converted
    assert SOURCE.units(raw) == [
        "LibriSpeech/train-clean-100/19",
        "LibriSpeech/train-clean-100/103",
        "LibriSpeech/train-clean-360/1001",
        "LibriSpeech/dev-clean/84",
        "LibriSpeech/dev-clean/174",
    ]


def test_the_store_holds_dabs_spectrograms_split_and_labelled_by_speaker(converted):
    raw, out = converted
    ds, manifest = open_store(out), read_manifest(out)
    assert (ds.spec.kind, ds.spec.shape, ds.spec.patch_size) == ("image", (1, 224, 224), (16, 16))
    assert manifest["dtype"] == "float16" and manifest["batch_size"] == 64
    assert manifest["notes"] == [SUBSETS_NOTE]
    assert np.load(out / "train" / "x-00000.npy").dtype == np.float16
    dev_train, dev_test = dabs_dev_split(raw)
    pretraining = [
        f
        for subset in ("train-clean-100", "train-clean-360")
        for speaker in LAYOUT[subset]
        for f in files(raw, subset, speaker)
    ]
    expected_train = pretraining + dev_train
    assert (len(ds.x_train), len(ds.x_test)) == (len(expected_train), len(dev_test)) == (16, 4)
    # class id = rank of the speaker id: 19, 84, 103, 174, 1001
    rank = {"19": 0, "84": 1, "103": 2, "174": 3, "1001": 4}
    assert ds.y_train.tolist() == [rank[f.name.split("-")[0]] for f in expected_train]
    assert ds.y_test.tolist() == [rank[f.name.split("-")[0]] for f in dev_test]
    stored_test = np.load(out / "test" / "x-00000.npy").astype(np.float32)
    stored_train = _stored_train(out)
    picked = [0, 5, 12]
    for stored, expected in (
        (stored_test, dev_test),
        (stored_train[picked], [expected_train[i] for i in picked]),
    ):
        for x, f in zip(stored, expected):
            # float16 steps are at most 1/16 dB up to 128 dB
            assert np.abs(x[0] - reference(f)).max() < 0.13, f
    # the store normalises with the train split's statistics: served train values have mean 0, std 1
    served = ds.x_train[:]
    assert abs(float(served.mean())) < 1e-3 and abs(float(served.std()) - 1) < 1e-3
    assert np.allclose(ds.norm_mean.reshape(-1), stored_train.astype(np.float64).mean(), atol=1e-2)


def _stored_train(out: Path) -> np.ndarray:
    shards = sorted((out / "train").glob("x-*.npy"))
    return np.concatenate([np.load(p) for p in shards]).astype(np.float32)


def test_a_long_utterance_keeps_its_first_150526_samples(converted):
    raw, out = converted
    ds = open_store(out)
    long_file = raw / "LibriSpeech/dev-clean/84/121550/84-121550-0002.flac"
    wave, _ = soundfile.read(long_file)
    assert len(wave) > CROP
    dev_train, dev_test = dabs_dev_split(raw)
    stored = _stored_train(out)
    where = 8 + dev_train.index(long_file) if long_file in dev_train else None
    sample = (
        stored[where]
        if where is not None
        else np.load(out / "test" / "x-00000.npy")[dev_test.index(long_file)].astype(np.float32)
    )
    tail = raw / "tail.flac"
    soundfile.write(tail, wave[-CROP:], RATE, subtype="PCM_16")
    assert np.abs(sample[0] - reference(long_file)).max() < 0.13
    assert np.abs(sample[0] - reference(tail)).max() > 1.0
    assert len(ds.x_train) + len(ds.x_test) == 20


def test_the_mel_filterbank_is_slaney_normalised_on_the_slaney_scale():
    bank = mel_filterbank(RATE, N_FFT, 224)
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    # Slaney scale: 200/3 Hz a mel below 1 kHz; band 10's filter peaks at the 11th of 226 even mels
    top = 15 + np.log(8) / (np.log(6.4) / 27)
    peak_mel = 11 * top / 225
    assert peak_mel < 15 and abs(bins[bank[10].argmax()] - peak_mel * 200 / 3) <= RATE / N_FFT
    # area one in Hz (for the wide filters)
    assert np.allclose((bank * RATE / N_FFT).sum(axis=1)[-100:], 1.0, atol=0.02)


def test_the_subsets_may_be_given_without_the_librispeech_folder(tmp_path):
    raw = write_librispeech_fixture(tmp_path / "raw")
    shutil.rmtree(raw / "LibriSpeech" / "train-clean-360")
    units = SOURCE.units(raw / "LibriSpeech")
    assert units == ["train-clean-100/19", "train-clean-100/103", "dev-clean/84", "dev-clean/174"]


def test_pretrain_and_probe_on_the_store(converted, tmp_path):
    assert_store_trains_and_probes(converted[1], tmp_path / "run", k=3)


def _fails(raw: Path, tmp_path: Path, says: str, names: Path | None = None):
    assert_source_refused(SOURCE, raw, tmp_path / "out", says, *([] if names is None else [names]))


def test_an_archive_left_packed_is_named(tmp_path):
    raw = write_librispeech_fixture(tmp_path / "raw")
    shutil.rmtree(raw / "LibriSpeech" / "dev-clean")
    (raw / "dev-clean.tar.gz").write_bytes(b"\x1f\x8b")
    _fails(
        raw,
        tmp_path,
        "LibriSpeech/dev-clean is missing",
        "unpack it with tar -xzf dev-clean.tar.gz",
    )


def test_audio_converted_to_wav_is_named(tmp_path):
    raw = write_librispeech_fixture(tmp_path / "raw")
    for flac in (raw / "LibriSpeech/dev-clean/84").glob("*/*.flac"):
        wave, rate = soundfile.read(flac, dtype="int16")
        soundfile.write(flac.with_suffix(".wav"), wave, rate, subtype="PCM_16")
        flac.unlink()
    _fails(
        raw,
        tmp_path,
        "dev-clean/84 holds no <chapter>/*.flac utterances (6 .wav files: "
        "LibriSpeech is published as FLAC",
    )


@pytest.mark.parametrize("subset", ["train-clean-100", "dev-clean"])
def test_a_missing_subset_is_named_with_where_librispeech_is_published(tmp_path, subset):
    raw = write_librispeech_fixture(tmp_path / "raw")
    shutil.rmtree(raw / "LibriSpeech" / subset)
    _fails(raw, tmp_path, f"LibriSpeech/{subset} is missing")
    _fails(raw, tmp_path, "openslr.org/12")


def _rewrite(raw: Path, how: str) -> Path:
    path = raw / "LibriSpeech/dev-clean/174/50561/174-50561-0003.flac"
    if how == "rate":
        soundfile.write(path, np.zeros(800), 8000, subtype="PCM_16")
    if how == "stereo":
        soundfile.write(path, np.zeros((800, 2)), RATE, subtype="PCM_16")
    if how == "corrupt":
        path.write_bytes(b"fLaC this is not a flac stream")
    if how == "misnamed":
        path = path.rename(path.with_name("175-50561-0003.flac"))
    if how == "empty":  # every chapter folder of the speaker emptied
        for flac in path.parent.parent.glob("*/*.flac"):
            flac.unlink()
        path = path.parent.parent
    return path


@pytest.mark.parametrize(
    "how, says",
    [
        ("rate", "is 8000 Hz with 1 channel(s), expected 16000 Hz mono"),
        ("stereo", "is 16000 Hz with 2 channel(s), expected 16000 Hz mono"),
        ("corrupt", "cannot decode"),
        ("misnamed", "is not named <speaker>-<chapter>-<utterance>.flac after its folders"),
        ("empty", "holds no <chapter>/*.flac utterances"),
    ],
)
def test_a_bad_file_gives_one_line_and_no_output(tmp_path, how, says):
    raw = write_librispeech_fixture(tmp_path / "raw")
    _fails(raw, tmp_path, says, names=_rewrite(raw, how))
