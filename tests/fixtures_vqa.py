"A tiny VQA v2 release: COCO 2014 JPEGs and the question and annotation JSON in the published layout."
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

QUESTIONS = {  # (image id, question, multiple_choice_answer)
    "train2014": [(9, "What color is the car?", "red"), (9, "Is there a dog?", "yes"), (25, "How many dogs?", "2"),
                  (25, "Is it sunny?", "no"), (30, "Is there a dog?", "yes"), (30, "What color is it?", "red"),
                  (42, "Is it raining?", "no"), (42, "What is this?", "kite")],
    "val2014": [(139, "Is there a cat?", "yes"), (139, "What color is the bus?", "red"),
                (285, "Who is there?", "nobody")],  # "nobody" is no train answer: left out
}


def write_vqa_fixture(folder: Path) -> Path:
    "`train2014/`, `val2014/` and the four VQA v2 JSON files under `folder`."
    folder, rng = Path(folder), np.random.default_rng(29)
    for split, rows in QUESTIONS.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        for n, image_id in enumerate(sorted({r[0] for r in rows})):
            pixels = rng.integers(0, 256, size=(20 + 6 * n, 36, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / split / f"COCO_{split}_{image_id:012d}.jpg")
        questions = [{"image_id": i, "question": q, "question_id": 1000 * i + n} for n, (i, q, _) in enumerate(rows)]
        answers = [{"question_id": 1000 * i + n, "image_id": i, "question_type": "what", "answer_type": "other",
                    "multiple_choice_answer": a, "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": 1}]}
                   for n, (i, _, a) in enumerate(rows)]
        (folder / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(json.dumps(
            {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "questions": questions}))
        (folder / f"v2_mscoco_{split}_annotations.json").write_text(json.dumps(
            {"info": {}, "data_type": "mscoco", "annotations": answers}))
    return folder
