"LibriSpeech from its OpenSLR layout: DABS's spectrograms and splits in the store, training on it, bad sources."
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


def reference(path: Path) -> np.ndarray:
    "DABS's sample for one file, computed with numpy: crop/pad, framed Hann FFT, mel power, dB of its square."
    wave, rate = soundfile.read(path)
    assert rate == RATE
    padded = np.zeros(CROP)
    padded[:min(len(wave), CROP)] = wave[:CROP]
    padded = np.pad(padded, N_FFT // 2)
    window = 0.5 * (1 - np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))
    frames = np.stack([padded[i * HOP:i * HOP + N_FFT] * window for i in range(224)], axis=1)
    mel = mel_filterbank(RATE, N_FFT, 224) @ (np.abs(np.fft.rfft(frames, axis=0)) ** 2)
    db = 10 * np.log10(np.maximum(mel ** 2, 1e-10))
    return np.maximum(db, db.max() - 80)


def files(raw: Path, subset: str, speaker: str) -> list[Path]:
    return sorted((raw / "LibriSpeech" / subset / speaker).glob("*/*.flac"), key=lambda p: p.name)


def dabs_dev_split(raw: Path) -> tuple[list[Path], list[Path]]:
    "DABS's LibriSpeechTransfer split of dev-clean, written out: one RandomState(42) over speakers by id."
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


def test_units_are_speakers_of_the_pretraining_subsets_then_dev_clean(converted):
    raw, _ = converted
    assert SOURCE.units(raw) == ["LibriSpeech/train-clean-100/19", "LibriSpeech/train-clean-100/103",
                                 "LibriSpeech/train-clean-360/1001", "LibriSpeech/dev-clean/84",
                                 "LibriSpeech/dev-clean/174"]


def test_the_store_holds_dabs_spectrograms_split_and_labelled_by_speaker(converted):
    raw, out = converted
    ds, manifest = open_store(out), read_manifest(out)
    assert (ds.spec.kind, ds.spec.shape, ds.spec.patch_size) == ("image", (1, 224, 224), (16, 16))
    assert manifest["dtype"] == "float16" and manifest["batch_size"] == 64
    assert np.load(out / "train" / "x-00000.npy").dtype == np.float16
    dev_train, dev_test = dabs_dev_split(raw)
    pretraining = [f for subset in ("train-clean-100", "train-clean-360") for speaker in LAYOUT[subset]
                   for f in files(raw, subset, speaker)]
    expected_train = pretraining + dev_train
    assert (len(ds.x_train), len(ds.x_test)) == (len(expected_train), len(dev_test)) == (16, 3)
    # class id = rank of the speaker id: 19, 84, 103, 174, 1001
    rank = {"19": 0, "84": 1, "103": 2, "174": 3, "1001": 4}
    assert ds.y_train.tolist() == [rank[f.name.split("-")[0]] for f in expected_train]
    assert ds.y_test.tolist() == [rank[f.name.split("-")[0]] for f in dev_test]
    stored_test = np.load(out / "test" / "x-00000.npy").astype(np.float32)
    stored_train = np.concatenate([np.load(p) for p in sorted((out / "train").glob("x-*.npy"))]).astype(np.float32)
    picked = [0, 5, 12]
    for stored, expected in ((stored_test, dev_test), (stored_train[picked], [expected_train[i] for i in picked])):
        for x, f in zip(stored, expected):
            assert np.abs(x[0] - reference(f)).max() < 0.13, f  # float16 steps are at most 1/16 dB up to 128 dB
    # the store normalises with the train split's statistics: the served train values have mean 0 and std 1
    served = ds.x_train[:]
    assert abs(float(served.mean())) < 1e-3 and abs(float(served.std()) - 1) < 1e-3
    assert np.allclose(ds.norm_mean.reshape(-1), stored_train.astype(np.float64).mean(), atol=1e-2)


def test_a_long_utterance_keeps_its_first_150526_samples(converted):
    raw, out = converted
    ds = open_store(out)
    long_file = raw / "LibriSpeech/dev-clean/84/121550/84-121550-0002.flac"
    wave, _ = soundfile.read(long_file)
    assert len(wave) > CROP
    dev_train, dev_test = dabs_dev_split(raw)
    stored = np.concatenate([np.load(p) for p in sorted((out / "train").glob("x-*.npy"))]).astype(np.float32)
    where = 8 + dev_train.index(long_file) if long_file in dev_train else None
    sample = stored[where] if where is not None else np.load(out / "test" / "x-00000.npy")[
        dev_test.index(long_file)].astype(np.float32)
    tail = raw / "tail.flac"
    soundfile.write(tail, wave[-CROP:], RATE, subtype="PCM_16")
    assert np.abs(sample[0] - reference(long_file)).max() < 0.13
    assert np.abs(sample[0] - reference(tail)).max() > 1.0
    assert len(ds.x_train) + len(ds.x_test) == 19


def test_the_mel_filterbank_is_slaney_normalised_on_the_slaney_scale():
    bank = mel_filterbank(RATE, N_FFT, 224)
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    # Slaney scale: 200/3 Hz per mel below 1 kHz; band 10's filter peaks at the 11th of 226 equally spaced mels
    top = 15 + np.log(8) / (np.log(6.4) / 27)
    peak_mel = 11 * top / 225
    assert peak_mel < 15 and abs(bins[bank[10].argmax()] - peak_mel * 200 / 3) <= RATE / N_FFT
    assert np.allclose((bank * RATE / N_FFT).sum(axis=1)[-100:], 1.0, atol=0.02)  # area one in Hz (wide filters)


def test_the_subsets_may_be_given_without_the_librispeech_folder(tmp_path):
    raw = write_librispeech_fixture(tmp_path / "raw")
    shutil.rmtree(raw / "LibriSpeech" / "train-clean-360")
    units = SOURCE.units(raw / "LibriSpeech")
    assert units == ["train-clean-100/19", "train-clean-100/103", "dev-clean/84", "dev-clean/174"]


def test_pretrain_and_probe_on_the_store(converted, tmp_path):
    assert_store_trains_and_probes(converted[1], tmp_path / "run", k=3)


def _fails(raw: Path, tmp_path: Path, says: str, names: Path | None = None):
    assert_source_refused(SOURCE, raw, tmp_path / "out", says, *([] if names is None else [names]))


@pytest.mark.parametrize("subset", ["train-clean-100", "dev-clean"])
def test_a_missing_subset_is_named_with_where_librispeech_is_published(tmp_path, subset):
    raw = write_librispeech_fixture(tmp_path / "raw")
    shutil.rmtree(raw / "LibriSpeech" / subset)
    _fails(raw, tmp_path, f"LibriSpeech/{subset} is missing")
    _fails(raw, tmp_path, "openslr.org/12")


def _rewrite(raw: Path, how: str) -> Path:
    path = raw / "LibriSpeech/dev-clean/174/50561/174-50561-0003.flac"
    if how == "rate": soundfile.write(path, np.zeros(800), 8000, subtype="PCM_16")
    if how == "stereo": soundfile.write(path, np.zeros((800, 2)), RATE, subtype="PCM_16")
    if how == "corrupt": path.write_bytes(b"fLaC this is not a flac stream")
    if how == "misnamed": path = path.rename(path.with_name("175-50561-0003.flac"))
    if how == "empty":
        shutil.rmtree(path.parent)
        path = path.parent.parent
    return path


@pytest.mark.parametrize("how, says", [
    ("rate", "is 8000 Hz with 1 channel(s), expected 16000 Hz mono"),
    ("stereo", "is 16000 Hz with 2 channel(s), expected 16000 Hz mono"),
    ("corrupt", "cannot decode"),
    ("misnamed", "is not named <speaker>-<chapter>-<utterance>.flac after its folders"),
    ("empty", "holds no <chapter>/*.flac utterances"),
])
def test_a_bad_file_gives_one_line_and_no_output(tmp_path, how, says):
    raw = write_librispeech_fixture(tmp_path / "raw")
    _fails(raw, tmp_path, says, names=_rewrite(raw, how))
