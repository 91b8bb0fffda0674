"MSCOCO from its published images and annotations: packed image + caption samples, training on them, bad sources."
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_mscoco import CATEGORIES, NO_INSTANCES, TRAIN_IDS, VAL_IDS, _caption, write_mscoco_fixture
from metamae_lab.config import unpack_parts
from metamae_lab.data.sources.mscoco import SOURCE
from metamae_lab.data.store import SourceError, open_store, read_manifest, write_store


def _no_output(tmp_path: Path, name: str = "out"):
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.partial").exists()


def _by_hand(path: Path) -> np.ndarray:
    "DABS's transform written out: resize to 640 high x 480 wide, centre crop 480, resize to 224 (bilinear)."
    image = Image.open(path).convert("RGB").resize((480, 640), Image.BILINEAR)
    image = image.crop((0, 80, 480, 560)).resize((224, 224), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mscoco")
    raw = write_mscoco_fixture(tmp / "raw")
    return raw, write_store(SOURCE, raw, tmp / "out", progress=False)


def test_converts_images_and_captions_into_packed_samples(converted):
    raw, out = converted
    ds, manifest = open_store(out), read_manifest(out)
    assert ds.spec.kind == "multimodal" and ds.spec.part_names == ("image", "caption")
    image, caption = ds.spec.parts
    assert (image.shape, image.patch_size, caption.shape, caption.pad_id) == ((3, 224, 224), (16, 16), (32,), 0)
    assert ds.spec.shape == (3 * 224 * 224 + 32,) and caption.vocab_size == len(ds.symbols)
    assert {s: i["size"] for s, i in manifest["splits"].items()} == {"train": 6, "test": 2}
    assert manifest["dtype"] == "uint16" and manifest["batch_size"] == 64
    assert ds.class_names == ["person", "dog", "car"]
    # one sample per image with the last caption and the last instance's category, as DABS's dicts give them
    train = json.loads((raw / "annotations" / "instances_train2017.json").read_text())["annotations"]
    last = {a["image_id"]: a["category_id"] for a in train}
    ids = [c["id"] for c in CATEGORIES]
    assert ds.y_train.tolist() == [ids.index(last[i]) for i in TRAIN_IDS]
    assert len(ds.y_test) == len(VAL_IDS) - 1 and NO_INSTANCES in VAL_IDS
    # the fourth train image by hand; its last caption "A dog and a person near car 34." tokenised by hand
    sample = unpack_parts(ds.spec, ds.denormalize(ds.x_train[3:4]))
    assert np.abs(sample["image"][0] - _by_hand(raw / "train2017" / "000000000034.jpg")).max() < 1e-2
    words = "a dog and a person near car 34 .".split()
    assert _caption(34, 2) == "A dog and a person near car 34."
    ids_by_hand = [ds.symbols.index(w) for w in words] + [0] * (32 - len(words))
    assert sample["caption"][0].tolist() == ids_by_hand
    assert ds.symbols[:2] == ["<pad>", "<unk>"] and "dog" in ds.symbols and "DOG" not in ds.symbols
    # the image part is normalised per channel with the train statistics; caption ids are served as they are
    served = unpack_parts(ds.spec, ds.x_train[:])
    assert np.abs(served["image"].mean(axis=(0, 2, 3))).max() < 1e-3
    assert np.abs(served["image"].std(axis=(0, 2, 3)) - 1).max() < 1e-3
    assert (served["caption"] == unpack_parts(ds.spec, ds.denormalize(ds.x_train[:]))["caption"]).all()


def test_val_words_missing_from_the_train_vocabulary_are_unknown(tmp_path):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = raw / "annotations" / "captions_val2017.json"
    content = json.loads(path.read_text())
    content["annotations"][2]["caption"] = "A zebra, a dog"  # the first val image's last caption
    path.write_text(json.dumps(content))
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    caption = unpack_parts(ds.spec, ds.x_test[0])["caption"]
    assert caption[:6].tolist() == [ds.symbols.index("a"), 1, ds.symbols.index(","), ds.symbols.index("a"),
                                    ds.symbols.index("dog"), 0]


def test_pretrain_probe_and_the_explorer_figure(converted, tmp_path):
    from metamae_lab.analysis import reconstruct_chunk
    from metamae_lab.checkpoint import load_checkpoint, model_from_checkpoint
    from metamae_lab.config import run_config
    from metamae_lab.data import load_dataset
    from metamae_lab.figures import explorer_figure, non_finite_values
    from metamae_lab.probe import run_probe
    from metamae_lab.train import pretrain
    _, out = converted
    data = load_dataset(str(out))
    result = pretrain(run_config("tiny", dataset=str(out), steps=3, batch_size=4), tmp_path / "run", progress=False,
                      dataset=data)
    assert result.step == 3 and np.isfinite(result.last_metrics["loss"])
    model = model_from_checkpoint(load_checkpoint(result.run_dir), data.spec)
    assert 0.0 <= run_probe(model, data, method="knn", k=3)["accuracy"] <= 1.0
    rec = reconstruct_chunk(model, data, "test", 0, steps=1)
    assert [p.spec.kind for p in rec.parts] == ["image", "tokens"]
    fig = explorer_figure(rec, 0, symbols=data.symbols)
    assert [t for t in fig.data if t.type == "heatmap" and np.shape(t.z) == (224, 224)]
    words = {str(w) for t in fig.data if t.type == "heatmap" and t.text is not None for w in np.ravel(t.text)}
    assert {"dog", "person"} <= words and non_finite_values(fig) == []


@pytest.mark.parametrize("missing", ["annotations/captions_train2017.json", "annotations/instances_val2017.json",
                                     "val2017/000000000285.jpg"])
def test_a_missing_file_is_named_with_where_coco_is_published(tmp_path, missing):
    raw = write_mscoco_fixture(tmp_path / "raw")
    (raw / missing).unlink()
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert f"{missing} is missing" in message and "cocodataset.org" in message and "\n" not in message, message
    _no_output(tmp_path)


def _edit(raw: Path, name: str, change) -> Path:
    path = raw / "annotations" / name
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize("name, change, says", [
    ("captions_val2017.json", lambda c: c.pop("annotations"), "has no 'annotations' list"),
    ("captions_train2017.json", lambda c: c["annotations"][4].pop("caption"), "'annotations' without 'caption'"),
    ("captions_train2017.json", lambda c: c["images"][1].pop("file_name"), "'images' without 'file_name'"),
    ("instances_train2017.json", lambda c: c.pop("categories"), "has no 'categories' list"),
    ("instances_train2017.json", lambda c: c["annotations"][0].update(category_id=99), "unknown category 99"),
    ("captions_train2017.json", lambda c: c["images"].pop(0), "which its 'images' list does not hold"),
])
def test_a_bad_annotation_file_gives_one_line_and_no_output(tmp_path, name, change, says):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = _edit(raw, name, change)
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert says in message and str(path) in message and "\n" not in message, message
    _no_output(tmp_path)


@pytest.mark.parametrize("content", [b"not a jpeg at all", "truncated"])
def test_a_corrupt_jpeg_gives_one_line_and_no_output(tmp_path, content):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = raw / "val2017" / "000000000285.jpg"
    path.write_bytes(path.read_bytes()[:200] if content == "truncated" else content)
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert f"{path} is not a readable image" in message and "\n" not in message, message
    _no_output(tmp_path)


def test_annotations_that_are_not_json_are_named(tmp_path):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = raw / "annotations" / "instances_val2017.json"
    path.write_text("{not json")
    with pytest.raises(SourceError, match="instances_val2017.json is not JSON"):
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    _no_output(tmp_path)
