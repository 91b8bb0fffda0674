"The Pfam converter: TAPE's JSON arrays -> store -> a tiny model trained and probed; bad sources."
from __future__ import annotations

import json

import pytest

from fixtures_pfam import KNOWN_IDS, TRAIN, VALID, write_pfam_fixture
from helpers import assert_source_refused
from metamae_lab.checkpoint import load_model
from metamae_lab.config import ModalitySpec, run_config
from metamae_lab.probe import run_probe
from metamae_lab.data.sources.pfam import SOURCE
from metamae_lab.data.store import open_store, read_manifest, write_store
from metamae_lab.train import pretrain

CLASSES = [3, 12, 40, 511]


@pytest.fixture
def src(tmp_path):
    return write_pfam_fixture(tmp_path / "raw")


def test_end_to_end(src, tmp_path):
    out = write_store(SOURCE, src, tmp_path / "store", progress=False)
    ds = open_store(out)
    assert ds.spec == ModalitySpec("tokens", (128,), 1, vocab_size=26, variable_length=True)
    manifest = read_manifest(out)
    assert {s: i["size"] for s, i in manifest["splits"].items()} == {"train": 16, "test": 6}
    assert manifest["symbols"] == list("XARNDCQEGHILKMFPSTWYVUOBZJ") and manifest["batch_size"] == 128
    assert ds.class_names == [str(c) for c in CLASSES]
    assert SOURCE.class_names == []  # the classes come from the files (Source.fit), not kept in the module's source
    assert ds.y_train.tolist() == [CLASSES.index(c) for c, _ in TRAIN]
    assert ds.y_test.tolist() == [CLASSES.index(c) for c, _ in VALID]
    assert ds.lengths_train.tolist() == [min(n, 128) for _, n in TRAIN]
    assert ds.x_test[0].tolist() == KNOWN_IDS and ds.lengths_test[0] == 20
    run = run_config("tiny", dataset=str(out), steps=3, batch_size=8)
    result = pretrain(run, tmp_path / "run", dataset=ds, progress=False)
    model, _, _ = load_model(result.run_dir)
    assert 0.0 <= run_probe(model, ds, method="knn")["accuracy"] <= 1.0


def test_the_pfam_folder_itself_is_a_source(src, tmp_path):
    out = write_store(SOURCE, src / "pfam", tmp_path / "store", progress=False)
    assert read_manifest(out)["splits"]["test"]["size"] == len(VALID)


def _fails(src, tmp_path, *needles): assert_source_refused(SOURCE, src, tmp_path / "out", *needles)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_missing_file_names_it_and_where_it_is_published(src, tmp_path):
    (src / "pfam" / "pfam_valid.json").unlink()
    _fails(src, tmp_path, "pfam/pfam_valid.json is missing",
           "http://s3.amazonaws.com/songlabdata/proteindata/data_raw_pytorch/pfam.tar.gz")


def test_missing_field(src, tmp_path):
    _edit(src / "pfam" / "pfam_valid.json", lambda d: d[2].pop("clan"))
    _fails(src, tmp_path, "pfam_valid.json record 2: no 'clan' field")


def test_truncated_file(src, tmp_path):
    path = src / "pfam" / "pfam_train.json"
    path.write_text(path.read_text()[:-40])
    _fails(src, tmp_path, "pfam_train.json: element 15 is not valid JSON or the file breaks off")


def test_not_an_array(src, tmp_path):
    (src / "pfam" / "pfam_valid.json").write_text('{"primary": {"0": "MKV"}, "clan": {"0": 3}}')
    _fails(src, tmp_path, "pfam_valid.json: not a JSON array")


def test_wrong_length(src, tmp_path):
    _edit(src / "pfam" / "pfam_train.json", lambda d: d[4].update(protein_length=76))
    _fails(src, tmp_path, "pfam_train.json record 4: protein_length 76 but 'primary' holds 77 residues")


def test_unknown_residue_and_unknown_clan(src, tmp_path):
    _edit(src / "pfam" / "pfam_valid.json", lambda d: d[1].update(primary="MK*" + d[1]["primary"][3:]))
    _fails(src, tmp_path, "pfam_valid.json record 1: the residue '*' at position 3 is not one of")
    _edit(src / "pfam" / "pfam_valid.json", lambda d: d[1].update(primary="MKV" + d[1]["primary"][3:], clan=777))
    _fails(src, tmp_path, "pfam_valid.json record 1: clan 777 does not occur in pfam_train.json")
