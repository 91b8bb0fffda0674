"""The Pfam converter on TAPE's JSON release (and the forms of it that are not confirmed): store, a
tiny model trained and probed; other TAPE releases and bad files refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fixtures_pfam import KNOWN_IDS, TRAIN, VALID, write_pfam_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.config import ModalitySpec
from metamae_lab.data.sources.pfam import SOURCE
from metamae_lab.data.store import open_store, read_manifest, write_store

CLASSES = [3, 12, 40, 511]
PLAIN = "clan and protein_length are plain JSON integers"
LISTS = "clan and protein_length are one-element lists, as numpy arrays become in JSON"
URL = "http://s3.amazonaws.com/songlabdata/proteindata/data_raw_pytorch/pfam.tar.gz"


@pytest.fixture
def src(tmp_path):
    return write_pfam_fixture(tmp_path / "raw")


def test_the_files_are_as_tapes_json_dump_writes_them(src):
    text = (src / "pfam" / "pfam_valid.json").read_text()
    assert text.startswith('[{"primary": "MKVXUZ') and text.endswith("}]") and "\n" not in text
    assert '"protein_length": 20, "clan": 3, "family": 1021, "id": "0"}, {' in text


def test_end_to_end(src, tmp_path):
    out = write_store(SOURCE, src, tmp_path / "store", progress=False)
    ds = open_store(out)
    assert ds.spec == ModalitySpec("tokens", (128,), 1, vocab_size=26, variable_length=True)
    manifest = read_manifest(out)
    assert {s: i["size"] for s, i in manifest["splits"].items()} == {"train": 16, "test": 6}
    assert manifest["symbols"] == list("XARNDCQEGHILKMFPSTWYVUOBZJ")
    assert manifest["batch_size"] == 128
    assert ds.class_names == [str(c) for c in CLASSES] and manifest["notes"] == [PLAIN]
    # the classes come from the files (Source.fit), not from the module's source
    assert SOURCE.class_names == []
    assert ds.y_train.tolist() == [CLASSES.index(c) for c, _ in TRAIN]
    assert ds.y_test.tolist() == [CLASSES.index(c) for c, _ in VALID]
    assert ds.lengths_train.tolist() == [min(n, 128) for _, n in TRAIN]
    assert ds.x_test[0].tolist() == KNOWN_IDS and ds.lengths_test[0] == 20


def test_pretrain_and_probe_on_the_store(src, tmp_path):
    out = write_store(SOURCE, src, tmp_path / "store", progress=False)
    assert_store_trains_and_probes(out, tmp_path / "run", k=3)


@pytest.mark.parametrize(
    "wrapped, ids, note", [(True, True, LISTS), (False, False, PLAIN), (True, False, LISTS)]
)
def test_the_unconfirmed_forms_give_the_same_store_and_say_which(src, tmp_path, wrapped, ids, note):
    published = open_store(write_store(SOURCE, src, tmp_path / "published", progress=False))
    variant = write_pfam_fixture(tmp_path / "variant", wrapped=wrapped, ids=ids)
    out = write_store(SOURCE, variant, tmp_path / "store", progress=False)
    ds = open_store(out)
    for split in ("train", "test"):
        for a, b in zip(published.split(split), ds.split(split)):
            assert np.array_equal(a[:], b[:])
    assert ds.class_names == published.class_names and read_manifest(out)["notes"] == [note]


def test_the_pfam_folder_itself_is_a_source(src, tmp_path):
    out = write_store(SOURCE, src / "pfam", tmp_path / "store", progress=False)
    assert read_manifest(out)["splits"]["test"]["size"] == len(VALID)


def _fails(src, tmp_path, *needles):
    assert_source_refused(SOURCE, src, tmp_path / "out", *needles)


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    with open(path, "w") as f:
        json.dump(data, f)


def test_missing_file_names_it_and_where_it_is_published(src, tmp_path):
    (src / "pfam" / "pfam_valid.json").unlink()
    _fails(src, tmp_path, "pfam/pfam_valid.json is missing", URL)


def test_the_archive_left_packed_is_named(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "pfam.tar.gz").write_bytes(b"\x1f\x8b")
    _fails(tmp_path / "raw", tmp_path, "pfam.tar.gz is still packed", "tar -xzf pfam.tar.gz")


def test_tapes_lmdb_release_is_named(tmp_path):
    for split in ("train", "valid", "holdout"):
        (tmp_path / "raw" / "pfam" / f"pfam_{split}.lmdb").mkdir(parents=True)
        (tmp_path / "raw" / "pfam" / f"pfam_{split}.lmdb" / "data.mdb").write_bytes(b"\0" * 64)
    _fails(tmp_path / "raw", tmp_path, "pfam_train.lmdb is TAPE's LMDB release", URL)


def test_tapes_2019_json_release_is_named(tmp_path):
    (tmp_path / "raw" / "pfam").mkdir(parents=True)
    record = {"primary": [15, 13, 24], "protein_length": 3, "clan": 4, "family": 9}  # token ids
    for name in ("pfam31_train_0", "pfam31_train_1", "pfam31_valid_57", "pfam31_holdout"):
        (tmp_path / "raw" / "pfam" / f"{name}.json").write_text(json.dumps([record]))
    _fails(tmp_path / "raw", tmp_path, "pfam31_train_0.json is from TAPE's 2019 release", URL)
    # the same records renamed as DABS's files: the sequence, a list of token ids, is named
    for name in ("pfam_train", "pfam_valid"):
        (tmp_path / "raw" / "pfam" / f"{name}.json").write_text(json.dumps([record]))
    _fails(tmp_path / "raw", tmp_path, "pfam_train.json record 0: 'primary' is a list of token ids")


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
    _fails(
        src, tmp_path, "pfam_train.json record 4: protein_length 76 but 'primary' holds 77 residues"
    )


def test_a_clan_that_is_not_an_integer(src, tmp_path):
    _edit(src / "pfam" / "pfam_valid.json", lambda d: d[3].update(clan=[3, 12]))
    _fails(src, tmp_path, "pfam_valid.json record 3: clan [3, 12] is not an integer")
    _edit(src / "pfam" / "pfam_valid.json", lambda d: d[3].update(clan="CL0023"))
    _fails(src, tmp_path, "pfam_valid.json record 3: clan 'CL0023' is not an integer")


def test_unknown_residue_and_unknown_clan(src, tmp_path):
    _edit(
        src / "pfam" / "pfam_valid.json", lambda d: d[1].update(primary="MK*" + d[1]["primary"][3:])
    )
    _fails(src, tmp_path, "pfam_valid.json record 1: the residue '*' at position 3 is not one of")
    _edit(
        src / "pfam" / "pfam_valid.json",
        lambda d: d[1].update(primary="MKV" + d[1]["primary"][3:], clan=777),
    )
    _fails(src, tmp_path, "pfam_valid.json record 1: clan 777 does not occur in pfam_train.json")
