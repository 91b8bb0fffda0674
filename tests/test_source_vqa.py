"VQA v2 from its published JSON and the COCO 2014 images: image + question samples labelled with their answer."
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixtures_vqa import QUESTIONS, write_vqa_fixture
from metamae_lab.config import unpack_parts
from metamae_lab.data.sources.vqa import SOURCE
from metamae_lab.data.store import SourceError, open_store, write_store


def _no_output(tmp_path: Path, name: str = "out"):
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}.partial").exists()


def test_converts_questions_with_their_answer_class_and_trains_and_probes(tmp_path):
    from metamae_lab.config import run_config
    from metamae_lab.data import load_dataset
    from metamae_lab.probe import run_probe
    from metamae_lab.train import open_run, pretrain
    raw = write_vqa_fixture(tmp_path / "raw")
    out = write_store(SOURCE, raw, tmp_path / "out", progress=False)
    ds = open_store(out)
    assert ds.spec.kind == "multimodal" and [p.shape for p in ds.spec.parts] == [(3, 224, 224), (32,)]
    assert ds.class_names == ["no", "red", "yes", "2", "kite"]  # by train frequency, ties alphabetically
    assert (len(ds.x_train), len(ds.x_test)) == (8, 2)
    assert ds.y_train.tolist() == [ds.class_names.index(a) for _, _, a in QUESTIONS["train2014"]]
    assert ds.y_test.tolist() == [2, 1]
    sample = unpack_parts(ds.spec, ds.denormalize(ds.x_test[1:2]))
    image = Image.open(raw / "val2014" / "COCO_val2014_000000000139.jpg").convert("RGB").resize((480, 640),
                                                                                                 Image.BILINEAR)
    by_hand = np.asarray(image.crop((0, 80, 480, 560)).resize((224, 224), Image.BILINEAR)).transpose(2, 0, 1)
    assert np.abs(sample["image"][0] - by_hand).max() < 1e-2
    words = ["what", "color", "is", "the", "bus", "?"]  # "bus" is no train word: unknown
    expected = [1 if w == "bus" else ds.symbols.index(w) for w in words] + [0] * 26
    assert sample["caption"][0].tolist() == expected
    data = load_dataset(str(out))
    result = pretrain(run_config("tiny", dataset=str(out), steps=3, batch_size=4), tmp_path / "run", progress=False,
                      dataset=data)
    assert result.step == 3 and np.isfinite(result.last_metrics["loss"])
    model = open_run(tmp_path / "run", dataset=data)[0]
    assert 0.0 <= run_probe(model, data, method="knn", k=3)["accuracy"] <= 1.0


@pytest.mark.parametrize("missing", ["v2_OpenEnded_mscoco_val2014_questions.json",
                                     "v2_mscoco_train2014_annotations.json",
                                     "train2014/COCO_train2014_000000000030.jpg"])
def test_a_missing_file_is_named_with_where_vqa_is_published(tmp_path, missing):
    raw = write_vqa_fixture(tmp_path / "raw")
    (raw / missing).unlink()
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    message = str(error.value)
    assert f"{missing} is missing" in message and "visualqa.org" in message and "\n" not in message, message
    _no_output(tmp_path)


def test_a_corrupt_jpeg_and_bad_json_give_one_line_and_no_output(tmp_path):
    raw = write_vqa_fixture(tmp_path / "raw")
    jpeg = raw / "val2014" / "COCO_val2014_000000000139.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[:150])
    with pytest.raises(SourceError, match="COCO_val2014_000000000139.jpg is not a readable image"):
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    _no_output(tmp_path)
    path = raw / "v2_mscoco_train2014_annotations.json"
    content = json.loads(path.read_text())
    content["annotations"][3].pop("multiple_choice_answer")
    path.write_text(json.dumps(content))
    with pytest.raises(SourceError) as error:
        write_store(SOURCE, raw, tmp_path / "out", progress=False)
    assert "'annotations' without 'multiple_choice_answer'" in str(error.value) and str(path) in str(error.value)
    _no_output(tmp_path)
