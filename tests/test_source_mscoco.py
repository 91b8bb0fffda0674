"""MSCOCO from its published images and annotations: packed image + caption samples, the quirks of
the published files, the annotations read as a stream, training on the store, bad sources."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_mscoco import (
    CATEGORIES,
    IMAGES,
    NO_INSTANCES,
    publisher_json,
    rewrite_as_2014_v1,
    write_mscoco_fixture,
)
from helpers import assert_source_refused
from metamae_lab.config import unpack_parts
from metamae_lab.data.sources.mscoco import SOURCE, caption_words, json_stream
from metamae_lab.data.store import SourceError, open_store, read_manifest, write_store


def _by_hand(path: Path) -> np.ndarray:
    "DABS's transform written out: RGB, resize to 640 high x 480 wide, centre crop 480, then 224."
    image = Image.open(path).convert("RGB").resize((480, 640), Image.BILINEAR)
    image = image.crop((0, 80, 480, 560)).resize((224, 224), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1).astype(np.float32)


def _published(raw: Path, name: str) -> dict:
    return json.loads((raw / "annotations" / name).read_text(encoding="utf-8"))


def _dabs(raw: Path, folder: str) -> list[tuple[int, str, int]]:
    "`(image id, caption, label)` as DABS's dicts pick them from the published files."
    listed = _published(raw, f"captions_{folder}.json")["annotations"]
    captions = {a["image_id"]: a["caption"] for a in listed}
    instances = _published(raw, f"instances_{folder}.json")
    label_of = {c["id"]: i for i, c in enumerate(instances["categories"])}
    labels = {a["image_id"]: label_of[a["category_id"]] for a in instances["annotations"]}
    return [(i, caption, labels[i]) for i, caption in captions.items() if i in labels]


def _tokens(text: str, symbols: list[str]) -> list[int]:
    ids = {w: i for i, w in enumerate(symbols)}
    words = [ids.get(w, 1) for w in caption_words(text)][:32]
    return words + [0] * (32 - len(words))


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
    assert (image.shape, image.patch_size) == ((3, 224, 224), (16, 16))
    assert (caption.shape, caption.pad_id) == ((32,), 0)
    assert ds.spec.shape == (3 * 224 * 224 + 32,) and caption.vocab_size == len(ds.symbols)
    sizes = {
        split: len([i for i, *_ in IMAGES[folder] if i not in NO_INSTANCES])
        for split, folder in (("train", "train2017"), ("test", "val2017"))
    }
    assert {s: i["size"] for s, i in manifest["splits"].items()} == sizes
    assert manifest["dtype"] == "uint16" and manifest["batch_size"] == 64
    assert ds.class_names == [c["name"] for c in CATEGORIES] and len(ds.class_names) == 80
    for split, folder in (("train", "train2017"), ("test", "val2017")):
        expected = _dabs(raw, folder)  # in the order of the images' first caption
        x, y = ds.split(split)[:2]
        assert y.tolist() == [label for *_, label in expected]
        samples = unpack_parts(ds.spec, ds.denormalize(x[:]))
        for n, (image_id, text, _) in enumerate(expected):
            by_hand = _by_hand(raw / folder / f"{image_id:012d}.jpg")
            assert np.abs(samples["image"][n] - by_hand).max() < 1e-2, (folder, image_id)
            assert samples["caption"][n].tolist() == _tokens(text, ds.symbols), (folder, image_id)
    listed = [i for i, *_ in IMAGES["train2017"] if i not in NO_INSTANCES]
    assert [i for i, *_ in _dabs(raw, "train2017")] != listed  # the fixture orders them otherwise
    # the image part is normalised per channel with the train statistics; caption ids are not
    served = unpack_parts(ds.spec, ds.x_train[:])
    assert np.abs(served["image"].mean(axis=(0, 2, 3))).max() < 1e-3
    assert np.abs(served["image"].std(axis=(0, 2, 3)) - 1).max() < 1e-3
    stored = unpack_parts(ds.spec, ds.denormalize(ds.x_train[:]))
    assert (served["caption"] == stored["caption"]).all()


def test_the_vocabulary_is_the_words_of_every_train_caption(converted):
    raw, out = converted
    ds = open_store(out)
    captions = [a["caption"] for a in _published(raw, "captions_train2017.json")["annotations"]]
    counts = {}
    for text in captions:
        for w in caption_words(text):
            counts[w] = counts.get(w, 0) + 1
    assert ds.symbols == ["<pad>", "<unk>", *sorted(counts, key=lambda w: (-counts[w], w))]
    # the file spells é as an escape; stray spaces and line breaks are no words
    assert "caf\\u00e9" in (raw / "annotations" / "captions_train2017.json").read_text()
    assert "café" in ds.symbols and not [w for w in ds.symbols if w != w.strip() or "\\" in w]


def test_greyscale_jpegs_are_converted_to_rgb_and_said_once(converted):
    raw, out = converted
    ds, notes = open_store(out), read_manifest(out)["notes"]
    grey = [
        (folder, i) for folder, images in IMAGES.items() for i, *_, mode in images if mode == "L"
    ]
    assert all(Image.open(raw / folder / f"{i:012d}.jpg").mode == "L" for folder, i in grey)
    assert notes == [
        f"{folder}/ holds images of PIL mode L ('L': greyscale): converted to RGB, as "
        "DABS converts them"
        for folder in ("train2017", "val2017")
    ]
    n = [i for i, *_ in _dabs(raw, "train2017")].index(30)  # train2017's greyscale image
    pixels = unpack_parts(ds.spec, ds.denormalize(ds.x_train[n : n + 1]))["image"][0]
    assert np.abs(pixels[0] - pixels[1]).max() < 1e-2 and np.abs(pixels[1] - pixels[2]).max() < 1e-2


def test_the_store_does_not_depend_on_how_the_json_was_written(converted, tmp_path):
    "The first 2014 release's writer (no spaces, '\\/', a `type` key, raw UTF-8) reads the same."
    _, out = converted
    raw = write_mscoco_fixture(tmp_path / "raw")
    rewrite_as_2014_v1(raw)
    text = (raw / "annotations" / "captions_train2017.json").read_text(encoding="utf-8")
    assert '"url":"http:\\/\\/cocodataset.org"' in text and "café" in text
    assert '"type":"instances"' in (raw / "annotations" / "instances_val2017.json").read_text()
    again = read_manifest(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    first = read_manifest(out)

    def same(m):
        return (
            m["fingerprint"],
            m["symbols"],
            m["class_names"],
            m["notes"],
            {split: info["size"] for split, info in m["splits"].items()},
        )

    assert same(again) == same(first)


def test_annotations_are_read_as_a_stream(tmp_path):
    "Entries come out before the end of the file is read: the document is never held whole."
    path = tmp_path / "captions_train2017.json"
    path.write_text(
        '{"info": {},"annotations": [{"image_id": 9,"id": 48,"caption": "A dog."},'
        '{"image_id": 25,"id": 67,"caption": "A cat'
    )
    entries = json_stream(path, "annotations", ("image_id", "caption"), "mscoco")
    assert next(entries)["caption"] == "A dog."
    with pytest.raises(SourceError) as error:
        next(entries)
    assert f"{path} is not JSON" in str(error.value) and "\n" not in str(error.value)


def test_val_words_missing_from_the_train_vocabulary_are_unknown(tmp_path):
    raw = write_mscoco_fixture(tmp_path / "raw")
    first = _dabs(raw, "val2017")[0][0]

    def rename(c):
        return [
            a.update(caption="A zebra, a bear") for a in c["annotations"] if a["image_id"] == first
        ]

    _edit(raw, "captions_val2017.json", rename)
    ds = open_store(write_store(SOURCE, raw, tmp_path / "out", progress=False))
    assert "zebra" in ds.symbols and "bear" not in ds.symbols  # bears are only in val2017
    caption = unpack_parts(ds.spec, ds.x_test[0])["caption"]
    assert caption[:6].tolist() == [ds.symbols.index(w) for w in ("a", "zebra", ",", "a")] + [1, 0]


def test_pretrain_probe_and_the_explorer_figure(converted, tmp_path):
    from metamae_lab.analysis import reconstruct_chunk
    from metamae_lab.checkpoint import load_checkpoint, model_from_checkpoint
    from metamae_lab.config import run_config
    from metamae_lab.data import load_dataset
    from metamae_lab.figures import explorer_figure, non_finite_values
    from metamae_lab.probe import run_probe
    from metamae_lab.train import pretrain

    raw, out = converted
    data = load_dataset(str(out))
    result = pretrain(
        run_config("tiny", dataset=str(out), steps=3, batch_size=4),
        tmp_path / "run",
        progress=False,
        dataset=data,
    )
    assert result.step == 3 and np.isfinite(result.last_metrics["loss"])
    model = model_from_checkpoint(load_checkpoint(result.run_dir), data.spec)
    assert 0.0 <= run_probe(model, data, method="knn", k=3)["accuracy"] <= 1.0
    rec = reconstruct_chunk(model, data, "test", 0, steps=1)
    assert [p.spec.kind for p in rec.parts] == ["image", "tokens"]
    fig = explorer_figure(rec, 0, symbols=data.symbols)
    # the image panels travel as PNG files of the image's own size
    images = [t for t in fig.data if t.type == "image" and t.source.startswith("data:image/png")]
    png = base64.b64decode(images[0].source.split(",", 1)[1])
    assert Image.open(io.BytesIO(png)).size == (224, 224)
    words = {
        str(w)
        for t in fig.data
        if t.type == "heatmap" and t.text is not None
        for w in np.ravel(t.text)
    }
    known = set(caption_words(_dabs(raw, "val2017")[0][1])) & set(data.symbols)
    assert known and known <= words and non_finite_values(fig) == []


@pytest.mark.parametrize(
    "missing",
    [
        "annotations/captions_train2017.json",
        "annotations/instances_val2017.json",
        "val2017/000000000285.jpg",
    ],
)
def test_a_missing_file_is_named_with_where_coco_is_published(tmp_path, missing):
    raw = write_mscoco_fixture(tmp_path / "raw")
    (raw / missing).unlink()
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{missing} is missing", "cocodataset.org")


def _edit(raw: Path, name: str, change) -> Path:
    "Change an annotation file and write it back as the publisher writes it."
    path = raw / "annotations" / name
    content = json.loads(path.read_text(encoding="utf-8"))
    change(content)
    path.write_text(publisher_json(content))
    return path


@pytest.mark.parametrize(
    "name, change, says",
    [
        ("captions_val2017.json", lambda c: c.pop("annotations"), "has no 'annotations' list"),
        (
            "captions_train2017.json",
            lambda c: c["annotations"][4].pop("caption"),
            "'annotations' without 'caption'",
        ),
        (
            "captions_train2017.json",
            lambda c: c["images"][1].pop("file_name"),
            "'images' without 'file_name'",
        ),
        ("instances_train2017.json", lambda c: c.pop("categories"), "has no 'categories' list"),
        ("instances_train2017.json", lambda c: c["categories"].pop(0), "unknown category 1"),
        (
            "instances_val2017.json",
            lambda c: c["annotations"][-1].pop("category_id"),
            "'annotations' without 'category_id'",
        ),
        (
            "captions_train2017.json",
            lambda c: c["images"].pop(0),
            "which its 'images' list does not hold",
        ),
    ],
)
def test_a_bad_annotation_file_gives_one_line_and_no_output(tmp_path, name, change, says):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = _edit(raw, name, change)
    assert_source_refused(SOURCE, raw, tmp_path / "out", says, path)


@pytest.mark.parametrize("content", [b"not a jpeg at all", "truncated"])
def test_a_corrupt_jpeg_gives_one_line_and_no_output(tmp_path, content):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = raw / "val2017" / "000000000285.jpg"
    path.write_bytes(path.read_bytes()[:200] if content == "truncated" else content)
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{path} is not a readable image")


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"images": [], "annotations": [{"image_id": 1,', "", '{"images": ["\udcff"]}'],
)
def test_annotations_that_are_not_json_are_named_in_one_line(tmp_path, text):
    raw = write_mscoco_fixture(tmp_path / "raw")
    path = raw / "annotations" / "instances_val2017.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{path} is not JSON")
