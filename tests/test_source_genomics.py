"The genomics converter: published text files -> store -> a tiny model trained and probed; bad sources."
from __future__ import annotations

import pytest

from fixtures_genomics import IN_GENERA, KNOWN_IDS, write_genomics_fixture
from helpers import assert_source_refused
from metamae_lab.checkpoint import load_model
from metamae_lab.config import ModalitySpec, run_config
from metamae_lab.probe import run_probe
from metamae_lab.data.sources.genomics import SOURCE
from metamae_lab.data.store import open_store, read_manifest, write_store
from metamae_lab.train import pretrain


@pytest.fixture
def src(tmp_path):
    return write_genomics_fixture(tmp_path / "raw")


def test_end_to_end(src, tmp_path):
    out = write_store(SOURCE, src, tmp_path / "store", progress=False)
    ds = open_store(out)
    assert ds.spec == ModalitySpec("tokens", (250,), 1, vocab_size=4)
    manifest = read_manifest(out)
    assert {s: i["size"] for s, i in manifest["splits"].items()} == {"train": 30, "val": 4, "test": 8}
    assert manifest["symbols"] == ["A", "C", "G", "T"] and manifest["batch_size"] == 32
    assert ds.y_train.tolist() == list(range(10)) * 3 and ds.y_test.tolist() == list(range(8))
    # Actinoplanes, Dyella, Terriglobus, Massilia: OOD validation genera 0, 20, 59, 33 -> class ids 10 + those
    assert ds.split("val")[1].tolist() == [10, 30, 69, 43]
    assert ds.class_names[:10] == IN_GENERA and len(ds.class_names) == 70 and ds.class_names[30] == "Dyella"
    assert ds.x_test[0].tolist() == KNOWN_IDS
    assert ds.x_train[:].dtype.kind == "i" and ds.x_train[:].min() == 0 and ds.x_train[:].max() == 3
    run = run_config("tiny", dataset=str(out), steps=3, batch_size=8)
    result = pretrain(run, tmp_path / "run", dataset=ds, progress=False)
    model, _, _ = load_model(result.run_dir)
    scores = run_probe(model, ds, method="knn")
    assert 0.0 <= scores["accuracy"] <= 1.0


def _fails(src, tmp_path, *needles): assert_source_refused(SOURCE, src, tmp_path / "out", *needles)


def test_missing_file_names_it_and_where_it_is_published(src, tmp_path):
    (src / "between_2011-2016_ood_val.txt").unlink()
    _fails(src, tmp_path, "between_2011-2016_ood_val.txt is missing",
           "https://storage.googleapis.com/tfds-data/downloads/genomics_ood/genomics_ood.zip")


def test_a_zip_left_zipped_is_named(src, tmp_path):
    for f in src.iterdir(): f.unlink()
    (src / "genomics_ood.zip").write_bytes(b"PK")
    _fails(src, tmp_path, "before_2011_in_tr.txt is missing", "unzip it")


def test_missing_column(src, tmp_path):
    path = src / "between_2011-2016_in_val.txt"
    path.write_text(path.read_text().replace("seq\tlabel", "seq\tgenus", 1))
    _fails(src, tmp_path, "between_2011-2016_in_val.txt: no 'label' column")


def test_wrong_length_names_the_line(src, tmp_path):
    path = src / "before_2011_in_tr.txt"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][5:]
    path.write_text("\n".join(lines) + "\n")
    _fails(src, tmp_path, "before_2011_in_tr.txt line 4: a sequence of 245 bases, expected 250")


def test_unknown_letter_and_unknown_genus(src, tmp_path):
    path = src / "between_2011-2016_ood_val.txt"
    lines = path.read_text().splitlines()
    lines[2] = "ACGN" + lines[2][4:]
    path.write_text("\n".join(lines) + "\n")
    _fails(src, tmp_path, "between_2011-2016_ood_val.txt line 3: the letter 'N' at base 4 is not one of A, C, G, T")
    path.write_text(path.read_text().replace("\tDyella\t", "\tBacillus\t"))
    _fails(src, tmp_path, "line 3: the label 'Bacillus' is not one of the file's 60 genera")


def test_a_truncated_row(src, tmp_path):
    path = src / "before_2011_in_tr.txt"
    path.write_text(path.read_text() + "ACGT\n")
    _fails(src, tmp_path, "before_2011_in_tr.txt line 32: 1 tab-separated fields, expected at least 2")
