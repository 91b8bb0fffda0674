"""VQA v2 from its published JSON and the COCO 2014 images: image + question samples labelled with
their answer, the quirks of the published files, training on the store, bad sources."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_vqa import GREY, QUESTIONS, write_vqa_fixture
from helpers import assert_source_refused, assert_store_trains_and_probes
from metamae_lab.config import unpack_parts
from metamae_lab.data.sources.mscoco import caption_words
from metamae_lab.data.sources.vqa import SOURCE
from metamae_lab.data.store import open_store, read_manifest, write_store


def _by_hand(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB").resize((480, 640), Image.BILINEAR)
    image = image.crop((0, 80, 480, 560)).resize((224, 224), Image.BILINEAR)
    return np.asarray(image).transpose(2, 0, 1)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vqa")
    raw = write_vqa_fixture(tmp / "raw")
    return raw, write_store(SOURCE, raw, tmp / "out", progress=False)


def test_converts_questions_with_their_answer_class(converted):
    raw, out = converted
    ds = open_store(out)
    assert ds.spec.kind == "multimodal"
    assert [p.shape for p in ds.spec.parts] == [(3, 224, 224), (32,)]
    # by train frequency, ties alphabetically
    assert ds.class_names == [
        "yes",
        "2",
        "foodiesfeedcom",
        "net",
        "no",
        "orange",
        "picnic table",
        "pitcher",
    ]
    for split, folder in (("train", "train2014"), ("test", "val2014")):
        kept = [row for row in QUESTIONS[folder] if row[2] in ds.class_names]  # in the file's order
        x, y = ds.split(split)[:2]
        assert y.tolist() == [ds.class_names.index(answer) for _, _, answer, _ in kept]
        samples = unpack_parts(ds.spec, ds.denormalize(x[:]))
        for n, (image_id, question, _, _) in enumerate(kept):
            by_hand = _by_hand(raw / folder / f"COCO_{folder}_{image_id:012d}.jpg")
            assert np.abs(samples["image"][n] - by_hand).max() < 1e-2, (folder, image_id)
            words = [ds.symbols.index(w) if w in ds.symbols else 1 for w in caption_words(question)]
            assert samples["caption"][n].tolist() == words + [0] * (32 - len(words))
    assert len(ds.x_test) == 2 and {"down", "nobody"}.isdisjoint(ds.class_names)
    assert "umbrella" not in ds.symbols  # a val word: unknown, id 1


def test_greyscale_jpegs_are_converted_and_said_once(converted):
    raw, out = converted
    for i in GREY:
        assert Image.open(raw / "train2014" / f"COCO_train2014_{i:012d}.jpg").mode == "L"
    note = "train2014/ holds images of PIL mode L ('L': greyscale): converted to RGB, as DABS "
    assert read_manifest(out)["notes"][1:] == [note + "converts them"]


def test_the_vqa_api_layout_reads_the_same_and_is_said(converted, tmp_path):
    raw = write_vqa_fixture(tmp_path / "raw", layout="VQA API")
    assert (raw / "Questions" / "v2_OpenEnded_mscoco_val2014_questions.json").is_file()
    assert (raw / "Images" / "train2014" / "COCO_train2014_000000458752.jpg").is_file()
    again, first = (
        read_manifest(write_store(SOURCE, raw, tmp_path / "out", progress=False)),
        read_manifest(converted[1]),
    )
    assert (again["fingerprint"], again["symbols"]) == (first["fingerprint"], first["symbols"])
    assert first["notes"][0] == "the JSON files found side by side with train2014/ and val2014/"
    assert again["notes"][0] == (
        "found Questions/v2_OpenEnded_mscoco_train2014_questions.json, "
        "Annotations/v2_mscoco_train2014_annotations.json, Images/train2014/, "
        "Questions/v2_OpenEnded_mscoco_val2014_questions.json, "
        "Annotations/v2_mscoco_val2014_annotations.json, Images/val2014/"
    )


def test_the_store_trains_and_probes(converted, tmp_path):
    assert_store_trains_and_probes(converted[1], tmp_path / "run", k=3)


@pytest.mark.parametrize(
    "missing",
    [
        "v2_OpenEnded_mscoco_val2014_questions.json",
        "v2_mscoco_train2014_annotations.json",
        "train2014/COCO_train2014_000000524291.jpg",
    ],
)
def test_a_missing_file_is_named_with_where_vqa_is_published(tmp_path, missing):
    raw = write_vqa_fixture(tmp_path / "raw")
    (raw / missing).unlink()
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{missing} is missing", "visualqa.org")


def _edit(path: Path, change) -> Path:
    content = json.loads(path.read_text())
    change(content)
    path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize(
    "name, change, says",
    [
        (
            "v2_mscoco_train2014_annotations.json",
            lambda c: c["annotations"][3].pop("multiple_choice_answer"),
            "'annotations' without 'multiple_choice_answer'",
        ),
        (
            "v2_mscoco_val2014_annotations.json",
            lambda c: c["annotations"].pop(1),
            "has no answer to the question 262148001",
        ),
        (
            "v2_OpenEnded_mscoco_train2014_questions.json",
            lambda c: c.pop("questions"),
            "has no 'questions' list",
        ),
        (
            "v2_OpenEnded_mscoco_val2014_questions.json",
            lambda c: c["questions"][0].pop("image_id"),
            "'questions' without 'image_id'",
        ),
    ],
)
def test_a_bad_json_file_gives_one_line_and_no_output(tmp_path, name, change, says):
    raw = write_vqa_fixture(tmp_path / "raw")
    path = _edit(raw / name, change)
    assert_source_refused(SOURCE, raw, tmp_path / "out", says, path)


def test_a_corrupt_jpeg_or_json_gives_one_line_and_no_output(tmp_path):
    raw = write_vqa_fixture(tmp_path / "raw")
    jpeg = raw / "val2014" / "COCO_val2014_000000393225.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:150])  # as the truncated COCO_train2014_000000167126.jpg
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{jpeg} is not a readable image")
    path = raw / "v2_mscoco_val2014_annotations.json"
    path.write_text(path.read_text()[:-200])
    assert_source_refused(SOURCE, raw, tmp_path / "out", f"{path} is not JSON")
