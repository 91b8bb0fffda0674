"""A tiny VQA v2 release written as the publisher's files are: COCO 2014 JPEGs under their published
names and the question and annotation JSON with the published keys, key order and ten answers a
question (see "Quirks of the published files" in nbs/29_vqa.ipynb for where each fact is from)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

QUESTIONS = {  # (image id, question, multiple_choice_answer, answer_type), in the file's order
    "train2014": [
        (458752, "What is this photo taken looking through?", "net", "other"),
        (458752, "What position is this man playing?", "pitcher", "other"),
        (458752, "What color is the players shirt?", "orange", "other"),
        (458752, "Is this man a professional baseball player?", "yes", "yes/no"),
        (262146, "What is he on top of?", "picnic table", "other"),
        (262146, "What website copyrighted the picture?", "foodiesfeedcom", "other"),
        (262146, "Is this a creamy soup?", "no", "yes/no"),
        (524291, "How many dogs are there?", "2", "number"),
        (524291, "Is the dog waiting?", "yes", "yes/no"),
        (393221, "Is the sky blue?", "yes", "yes/no"),
        (393221, "Is there snow on the mountains?", "yes", "yes/no"),
        (393221, "How many people are there?", "2", "number"),
    ],
    # nor this one
    "val2014": [
        (262148, "Where is he looking?", "down", "other"),  # no train answer: left out
        (262148, "Is the man wearing a hat?", "no", "yes/no"),
        (393225, "What color is the umbrella?", "orange", "other"),
        (393225, "Who is under the umbrella?", "nobody", "other"),
    ],
}
GREY = {262146}  # stored as a one-channel (greyscale) JPEG, as a few COCO images are
# (height, width): a tenth of COCO's usual sizes
SIZES = {
    458752: (48, 64),
    262146: (64, 48),
    524291: (43, 64),
    393221: (48, 64),
    262148: (64, 43),
    393225: (48, 64),
}
INFO = {
    "description": "This is v2.0 of the VQA dataset.",
    "url": "http://visualqa.org",
    "version": "2.0",
    "year": 2017,
    "contributor": "VQA Team",
    "date_created": "2017-04-26 17:07:13",
}
LICENSE = {
    "url": "http://creativecommons.org/licenses/by/4.0/",
    "name": "Creative Commons Attribution 4.0 International License",
}


def _answers(rng, answer: str) -> list[dict]:
    "Ten annotators' answers: mostly the chosen one, some another, each with a confidence."
    others = {"yes": "no", "no": "yes", "2": "3"}.get(answer, f"{answer}s")
    given = [answer if rng.random() < 0.8 else others for _ in range(10)]
    sure = rng.choice(["yes", "maybe", "no"], size=10, p=[0.8, 0.15, 0.05])
    return [
        {"answer": a, "answer_confidence": str(c), "answer_id": n}
        for n, (a, c) in enumerate(zip(given, sure), 1)
    ]


LAYOUTS = {  # where the images, the questions and the answers are unpacked
    "side by side": ("", "", ""),
    "VQA API": ("Images/", "Questions/", "Annotations/"),  # as its download scripts put them
}


def write_vqa_fixture(folder: Path, layout: str = "side by side") -> Path:
    "`train2014/`, `val2014/` and the four VQA v2 JSON files under `folder`, in one of `LAYOUTS`."
    folder, rng = Path(folder), np.random.default_rng(29)
    images, questions_in, answers_in = (folder / place for place in LAYOUTS[layout])
    for split, rows in QUESTIONS.items():
        for place in (images / split, questions_in, answers_in):
            place.mkdir(parents=True, exist_ok=True)
        for image_id in dict.fromkeys(row[0] for row in rows):
            pixels = rng.integers(0, 256, size=(*SIZES[image_id], 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert("L" if image_id in GREY else "RGB")
            image.save(images / split / f"COCO_{split}_{image_id:012d}.jpg", quality=90)
        numbers = [sum(r[0] == row[0] for r in rows[:n]) for n, row in enumerate(rows)]
        ids = [1000 * i + k for (i, *_), k in zip(rows, numbers)]  # 458752 -> 458752000, ...
        questions = [
            {"image_id": i, "question": q, "question_id": k} for (i, q, _, _), k in zip(rows, ids)
        ]
        annotations = [
            {
                "question_type": " ".join(q.lower().split()[:2]),
                "multiple_choice_answer": a,
                "answers": _answers(rng, a),
                "image_id": i,
                "answer_type": kind,
                "question_id": k,
            }
            for (i, q, a, kind), k in zip(rows, ids)
        ]
        # Python's json.dump with its defaults: ", " and ": ", non-ASCII as \u escapes
        (questions_in / f"v2_OpenEnded_mscoco_{split}_questions.json").write_text(
            json.dumps(
                {
                    "info": INFO,
                    "task_type": "Open-Ended",
                    "data_type": "mscoco",
                    "license": LICENSE,
                    "data_subtype": split,
                    "questions": questions,
                }
            )
        )
        (answers_in / f"v2_mscoco_{split}_annotations.json").write_text(
            json.dumps(
                {
                    "info": INFO,
                    "license": LICENSE,
                    "data_subtype": split,
                    "annotations": annotations,
                    "data_type": "mscoco",
                }
            )
        )
    return folder
