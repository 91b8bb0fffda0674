"A tiny COCO 2017 release: a few JPEGs per split and the caption and instance annotation JSON in the published layout."
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

TRAIN_IDS, VAL_IDS = [9, 25, 30, 34, 36, 42], [139, 285, 632]
CATEGORIES = [{"supercategory": "person", "id": 1, "name": "person"}, {"supercategory": "animal", "id": 18,
                                                                       "name": "dog"},
              {"supercategory": "vehicle", "id": 3, "name": "car"}]
NO_INSTANCES = 632  # a val image without instance annotations: DABS leaves it out


def _caption(image_id: int, k: int) -> str:
    return [f"A dog and a person near car {image_id}.", f"Photo {k}: the DOG, sitting!"][k % 2]


def write_mscoco_fixture(folder: Path) -> Path:
    """`train2017/`, `val2017/` (JPEGs of different sizes and modes) and `annotations/captions_*2017.json`,
    `annotations/instances_*2017.json` under `folder`. Each image has three captions and one to three instances."""
    folder, rng = Path(folder), np.random.default_rng(28)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    for split, ids in (("train2017", TRAIN_IDS), ("val2017", VAL_IDS)):
        (folder / split).mkdir(exist_ok=True)
        images, captions, instances = [], [], []
        for n, image_id in enumerate(ids):
            height, width = 24 + 9 * n, 50 - 4 * n
            name = f"{image_id:012d}.jpg"
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            image = Image.fromarray(pixels) if n % 3 else Image.fromarray(pixels[..., 0], mode="L")
            image.save(folder / split / name, quality=90)
            images.append({"license": 1, "file_name": name, "height": height, "width": width, "id": image_id})
            captions += [{"image_id": image_id, "id": 1000 * image_id + k, "caption": _caption(image_id, k)}
                         for k in range(3)]
            if image_id != NO_INSTANCES:
                instances += [{"image_id": image_id, "id": 100 * image_id + k, "iscrowd": 0,
                               "category_id": CATEGORIES[(n + k) % 3]["id"]} for k in range(1 + n % 3)]
        (folder / "annotations" / f"captions_{split}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images, "annotations": captions}))
        (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images, "annotations": instances, "categories": CATEGORIES}))
    return folder
