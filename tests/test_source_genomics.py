"""The genomics converter on genomics_ood.zip as TensorFlow Datasets publishes it (and its unpacked
files, and the label layouts it may hold): store, a tiny model trained and probed, bad sources."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from fixtures_genomics import IN_GENERA, KNOWN_IDS, split_texts, write_genomics_fixture, write_zip
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.config import ModalitySpec
from metamae_lab.data.sources.genomics import SOURCE
from metamae_lab.data.store import open_store, read_manifest, write_store

ZIP_NOTE = "read inside genomics_ood.zip, without unpacking it"
NAMES_NOTE = "labels read from the 'label' column, spelled as genus names"


@pytest.fixture
def src(tmp_path):
    return write_genomics_fixture(tmp_path / "raw")


@pytest.fixture
def unzipped(tmp_path):
    return write_genomics_fixture(tmp_path / "unzipped", unzipped=True)


def _convert(src, out):
    out = write_store(SOURCE, src, out, progress=False)
    return open_store(out), read_manifest(out)


def test_the_published_zip_is_read_in_place(src, tmp_path):
    ds, manifest = _convert(src, tmp_path / "store")
    assert sorted(p.name for p in src.iterdir()) == ["genomics_ood.zip"]  # nothing unpacked
    assert ds.spec == ModalitySpec("tokens", (250,), 1, vocab_size=4)
    sizes = {s: i["size"] for s, i in manifest["splits"].items()}
    assert sizes == {"train": 30, "val": 4, "test": 8}
    assert manifest["symbols"] == ["A", "C", "G", "T"] and manifest["batch_size"] == 32
    assert ds.y_train.tolist() == list(range(10)) * 3 and ds.y_test.tolist() == list(range(8))
    # Actinoplanes, Dyella, Terriglobus, Massilia: the OOD validation genera 0, 20, 59, 33 + 10
    assert ds.split("val")[1].tolist() == [10, 30, 69, 43]
    assert ds.class_names[:10] == IN_GENERA and len(ds.class_names) == 70
    assert ds.class_names[30] == "Dyella"
    assert ds.x_test[0].tolist() == KNOWN_IDS
    assert ds.x_train[:].dtype.kind == "i" and ds.x_train[:].min() == 0 and ds.x_train[:].max() == 3
    assert manifest["notes"] == [ZIP_NOTE, NAMES_NOTE]
    # a unit's digest is the sha256 of the split file's bytes, as if it had been unpacked
    text = split_texts()["before_2011_in_tr.txt"].encode()
    assert manifest["source_digests"]["before_2011_in_tr.txt"] == hashlib.sha256(text).hexdigest()


def test_pretrain_and_probe_on_the_store(src, tmp_path):
    out = write_store(SOURCE, src, tmp_path / "store", progress=False)
    assert_store_trains_and_probes(out, tmp_path / "run", k=3)


def _same_store(a, b):
    for split in ("train", "val", "test"):
        (xa, ya, _), (xb, yb, _) = a.split(split), b.split(split)
        assert np.array_equal(xa[:], xb[:]) and np.array_equal(ya, yb), split


def test_the_unpacked_files_give_the_same_store(src, unzipped, tmp_path):
    zipped, _ = _convert(src, tmp_path / "a")
    ds, manifest = _convert(unzipped, tmp_path / "b")
    _same_store(zipped, ds)
    assert manifest["notes"] == [NAMES_NOTE]


@pytest.mark.parametrize(
    "labels, note",
    [
        ("ids", "labels read from the 'label' column, spelled as ids"),
        (
            "label_id",
            "labels read from a 'label_id' column (the five-column layout of the first "
            "TFDS builder)",
        ),
    ],
)
def test_the_other_label_layouts_give_the_same_store_and_say_which(src, tmp_path, labels, note):
    variant = write_genomics_fixture(tmp_path / labels, labels=labels)
    ds, manifest = _convert(variant, tmp_path / "variant")
    _same_store(_convert(src, tmp_path / "published")[0], ds)
    assert manifest["notes"] == [ZIP_NOTE, note]


def test_a_zip_beside_some_unpacked_files_fills_in_the_rest(src, tmp_path):
    (src / "before_2011_in_tr.txt").write_text(split_texts()["before_2011_in_tr.txt"])
    published = write_genomics_fixture(tmp_path / "published")
    _same_store(_convert(src, tmp_path / "mixed")[0], _convert(published, tmp_path / "store")[0])


def _fails(src, tmp_path, *needles):
    assert_source_refused(SOURCE, src, tmp_path / "out", *needles)


def test_missing_file_names_it_and_where_it_is_published(unzipped, tmp_path):
    (unzipped / "between_2011-2016_ood_val.txt").unlink()
    _fails(
        unzipped,
        tmp_path,
        "between_2011-2016_ood_val.txt is missing",
        "https://storage.googleapis.com/tfds-data/downloads/genomics_ood/genomics_ood.zip",
    )


def test_a_zip_without_a_split_file_names_it(src, tmp_path):
    texts = split_texts()
    del texts["between_2011-2016_in_val.txt"]
    write_zip(src / "genomics_ood.zip", texts)
    _fails(src, tmp_path, "genomics_ood.zip holds no between_2011-2016_in_val.txt")


def test_an_interrupted_download_is_named(src, tmp_path):
    data = (src / "genomics_ood.zip").read_bytes()
    (src / "genomics_ood.zip").write_bytes(data[: len(data) // 2])
    _fails(
        src, tmp_path, "genomics_ood.zip: not a readable zip archive", "an interrupted download?"
    )


def test_the_authors_tfrecord_release_is_named(tmp_path):
    raw = tmp_path / "drive"
    for folder in ("before_2011_in_tr", "between_2011-2016_in_val", "between_2011-2016_ood_val"):
        (raw / folder).mkdir(parents=True)
        (raw / folder / f"{folder.split('_', 1)[1]}.tfrecord").write_bytes(b"\x00" * 16)
    _fails(
        raw,
        tmp_path,
        "before_2011_in_tr is the authors' TFRecord release (Google Drive)",
        "genomics_ood.zip",
    )


def test_dabs_csv_exports_are_named(tmp_path):
    raw = tmp_path / "dabs"
    raw.mkdir()
    # as DABS writes it: tfds.as_dataframe(...).to_csv(...), bytes columns as b'...'
    csv = ",domain,label,seq,seq_info\n0,b'in',3,b'ACGT',b'x'\n"
    (raw / "genomicsPretrain.csv").write_text(csv)
    _fails(raw, tmp_path, "genomicsPretrain.csv is DABS's CSV export, not the published files")


def test_missing_column(unzipped, tmp_path):
    path = unzipped / "between_2011-2016_in_val.txt"
    path.write_text(path.read_text().replace("seq\tlabel", "seq\tgenus", 1))
    _fails(unzipped, tmp_path, "between_2011-2016_in_val.txt: no 'label' column in the first line")


def test_a_file_without_its_header(unzipped, tmp_path):
    path = unzipped / "before_2011_in_tr.txt"
    path.write_text(path.read_text().split("\n", 1)[1])
    _fails(
        unzipped,
        tmp_path,
        "before_2011_in_tr.txt: no 'seq' column in the first line",
        "expected the header",
    )


def test_wrong_length_names_the_line(unzipped, tmp_path):
    path = unzipped / "before_2011_in_tr.txt"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][5:]
    path.write_text("\n".join(lines) + "\n")
    _fails(
        unzipped, tmp_path, "before_2011_in_tr.txt line 4: a sequence of 245 bases, expected 250"
    )


def test_a_bad_line_inside_the_zip_names_the_member(src, tmp_path):
    texts = split_texts()
    lines = texts["before_2011_in_tr.txt"].splitlines()
    lines[3] = lines[3].replace("A", "N", 1)
    write_zip(src / "genomics_ood.zip", {**texts, "before_2011_in_tr.txt": "\n".join(lines) + "\n"})
    _fails(src, tmp_path, "genomics_ood.zip:before_2011_in_tr.txt line 4: the letter 'N'")


def test_unknown_letter_and_unknown_genus(unzipped, tmp_path):
    path = unzipped / "between_2011-2016_ood_val.txt"
    lines = path.read_text().splitlines()
    lines[2] = "ACGN" + lines[2][4:]
    path.write_text("\n".join(lines) + "\n")
    _fails(
        unzipped,
        tmp_path,
        "between_2011-2016_ood_val.txt line 3: the letter 'N' at base 4 is not one of A, C, G, T",
    )
    path.write_text(path.read_text().replace("\tDyella\t", "\tBacillus\t", 1))
    _fails(unzipped, tmp_path, "line 3: the label 'Bacillus' is not one of the file's 60 genera")


def test_a_truncated_row(unzipped, tmp_path):
    path = unzipped / "before_2011_in_tr.txt"
    path.write_text(path.read_text() + "ACGT\n")
    _fails(
        unzipped,
        tmp_path,
        "before_2011_in_tr.txt line 32: 1 tab-separated fields, expected at least 2",
    )


def test_an_empty_file(unzipped, tmp_path):
    (unzipped / "between_2011-2016_ood_val.txt").write_text("")
    _fails(unzipped, tmp_path, "between_2011-2016_ood_val.txt: the file is empty")
