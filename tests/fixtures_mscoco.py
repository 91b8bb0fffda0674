"""A tiny COCO 2017 release written as the publisher's files are: the folders and names the zips
unpack to, the annotation JSON as COCO's writer wrote it, and JPEGs of the kinds the release holds
(see "Quirks of the published files" in nbs/28_mscoco.ipynb for where each fact comes from)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SUPERCATEGORIES = {  # COCO's 80 categories by supercategory, with their ids (1..90, ten unused)
    "person": [(1, "person")],
    "vehicle": [
        (2, "bicycle"),
        (3, "car"),
        (4, "motorcycle"),
        (5, "airplane"),
        (6, "bus"),
        (7, "train"),
        (8, "truck"),
        (9, "boat"),
    ],
    "outdoor": [
        (10, "traffic light"),
        (11, "fire hydrant"),
        (13, "stop sign"),
        (14, "parking meter"),
        (15, "bench"),
    ],
    "animal": [
        (16, "bird"),
        (17, "cat"),
        (18, "dog"),
        (19, "horse"),
        (20, "sheep"),
        (21, "cow"),
        (22, "elephant"),
        (23, "bear"),
        (24, "zebra"),
        (25, "giraffe"),
    ],
    "accessory": [
        (27, "backpack"),
        (28, "umbrella"),
        (31, "handbag"),
        (32, "tie"),
        (33, "suitcase"),
    ],
    "sports": [
        (34, "frisbee"),
        (35, "skis"),
        (36, "snowboard"),
        (37, "sports ball"),
        (38, "kite"),
        (39, "baseball bat"),
        (40, "baseball glove"),
        (41, "skateboard"),
        (42, "surfboard"),
        (43, "tennis racket"),
    ],
    "kitchen": [
        (44, "bottle"),
        (46, "wine glass"),
        (47, "cup"),
        (48, "fork"),
        (49, "knife"),
        (50, "spoon"),
        (51, "bowl"),
    ],
    "food": [
        (52, "banana"),
        (53, "apple"),
        (54, "sandwich"),
        (55, "orange"),
        (56, "broccoli"),
        (57, "carrot"),
        (58, "hot dog"),
        (59, "pizza"),
        (60, "donut"),
        (61, "cake"),
    ],
    "furniture": [
        (62, "chair"),
        (63, "couch"),
        (64, "potted plant"),
        (65, "bed"),
        (67, "dining table"),
        (70, "toilet"),
    ],
    "electronic": [
        (72, "tv"),
        (73, "laptop"),
        (74, "mouse"),
        (75, "remote"),
        (76, "keyboard"),
        (77, "cell phone"),
    ],
    "appliance": [
        (78, "microwave"),
        (79, "oven"),
        (80, "toaster"),
        (81, "sink"),
        (82, "refrigerator"),
    ],
    "indoor": [
        (84, "book"),
        (85, "clock"),
        (86, "vase"),
        (87, "scissors"),
        (88, "teddy bear"),
        (89, "hair drier"),
        (90, "toothbrush"),
    ],
}
CATEGORIES = [
    {"supercategory": s, "id": i, "name": n}
    for s, pairs in SUPERCATEGORIES.items()
    for i, n in pairs
]
INFO = {
    "description": "COCO 2017 Dataset",
    "url": "http://cocodataset.org",
    "version": "1.0",
    "year": 2017,
    "contributor": "COCO Consortium",
    "date_created": "2017/09/01",
}
_CC = [
    ("by-nc-sa", "Attribution-NonCommercial-ShareAlike License"),
    ("by-nc", "Attribution-NonCommercial License"),
    ("by-nc-nd", "Attribution-NonCommercial-NoDerivs License"),
    ("by", "Attribution License"),
    ("by-sa", "Attribution-ShareAlike License"),
    ("by-nd", "Attribution-NoDerivs License"),
]
LICENSES = [
    {"url": f"http://creativecommons.org/licenses/{kind}/2.0/", "id": i, "name": name}
    for i, (kind, name) in enumerate(_CC, 1)
]
LICENSES += [
    {"url": "http://flickr.com/commons/usage/", "id": 7, "name": "No known copyright restrictions"},
    {"url": "http://www.usa.gov/copyright.shtml", "id": 8, "name": "United States Government Work"},
]

# (image id, height, width, PIL mode): a tenth of COCO's usual sizes, both ways up; L: greyscale
IMAGES = {
    "train2017": [
        (9, 48, 64, "RGB"),
        (25, 43, 64, "RGB"),
        (30, 43, 64, "L"),
        (34, 64, 48, "RGB"),
        (36, 64, 49, "RGB"),
        (42, 48, 64, "RGB"),
        (49, 64, 43, "RGB"),
    ],
    "val2017": [(139, 43, 64, "RGB"), (285, 64, 59, "L"), (632, 48, 64, "RGB")],
}
NO_INSTANCES = {42, 632}  # listed, with captions, but no instance: DABS leaves them out
CAPTIONS = {  # each image's captions in the order written; some with stray spaces and line breaks
    9: [
        "Closeup of bins of food that include broccoli and bread.",
        "A meal is presented in brightly colored plastic trays.",
        "there are containers filled with different kinds of foods",
        "Colorful dishes holding meat, vegetables, fruit, and bread.",
        "A bunch of trays that have different food. ",
    ],
    25: [
        "A giraffe eating food from the top of the tree.",
        "A giraffe standing up nearby a tree \n",
        "A giraffe mother with its baby in the forest.",
        "Two giraffes standing in a tree filled area.",
        "A giraffe standing next to a forest filled with trees.",
    ],
    30: [
        "A picture of a dog laying on the ground.",
        "Dog snoozing by a bike on the edge of a cobblestone street",
        "The white dog lays next to the bicycle on the sidewalk.",
        "a white dog is sleeping on a street and a bicycle",
        "A puppy rests on the street next to a bicycle.",
    ],
    34: [
        "A zebra grazing on lush green grass in a field.",
        "Zebra reaching its head down to ground where grass is.",
        "The zebra is eating grass in the sun.",
        "A lone zebra grazing in some green grass.",
        "a Zebra grazing on grass in a green open field.",
    ],
    36: [
        "Woman in swim suit holding parasol on sunny day.",
        "A woman posing for the camera, holding a pink, open umbrella and wearing a bright, "
        "floral, ruched bathing suit, by a life guard stand with lake, trees and a blue sky.",
        "A woman in a floral swimsuit holds a pink umbrella by the café.",
        "A woman with an umbrella near the sea",
        "A girl in a bathing suit with a pink umbrella.",
    ],
    42: [
        "This wire metal rack holds several pairs of shoes and sandals",
        "A dog sleeping on a show rack in the shoes.",
        "Various slides and other footwear rest in a metal basket outside.",
        "A small dog is curled up on top of the shoes",
        "a shoe rack with some shoes and a dog sleeping on them",
    ],
    49: [
        "A man riding on the back of a horse through a grass field.",
        "A man rides a horse past the trees at the edge of the pasture.",
        "a person riding a horse in a field ",
        "A person on a horse in\na field of grass",
        "A man on a horse in a field with trees behind him.",
        "The man is riding his brown horse in the field.",
    ],
    139: [
        "A woman stands in the dining area at the table.",
        "A room with chairs, a table, and a woman in it.",
        "A woman standing in a kitchen by a window",
        "A person standing at a table in a room.",
        "A living room with hard wood floors filled with furniture",
    ],
    285: [
        "A big burly grizzly bear is show with grass in the background.",
        "The large brown bear has a black nose.",
        "Closeup of a brown bear sitting in a grassy area.",
        "A large bear that is sitting on grass. ",
        "A close up picture of a brown bear's face.",
    ],
    632: [
        "Bedroom scene with a bookcase, blue comforter and window.",
        "A bedroom with a bookshelf full of books.",
        "This room has a bed with blue sheets and a large bookcase",
        "A bed and a mirror in a small room.",
        "a bed room with a neatly made bed a window and a book shelf",
    ],
}
INSTANCES = {  # image id -> (category id, crowd) of its instance annotations
    9: [(51, False), (56, False), (55, False), (51, False)],
    25: [(25, False), (25, False)],
    30: [(18, False), (2, False)],
    34: [(24, False)],
    36: [(1, False), (28, False), (1, True)],
    49: [(19, False), (1, False), (1, True)],
    139: [(62, False), (1, False), (72, False)],
    285: [(23, False)],
}


def publisher_json(value) -> str:
    "JSON as COCO 2017's files are written: one line, ',' between items, ': ' after keys, \\uXXXX."
    return json.dumps(value, separators=(",", ": "))


def _image(rng, height: int, width: int, mode: str) -> Image.Image:
    "A smooth picture with some noise, so that the JPEG is like a photograph's."
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (height + width)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 20, size=base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels).convert(mode)


def _instance(rng, image: tuple, category: int, crowd: bool, number: int) -> dict:
    "An instance: a polygon of float coordinates, or a crowd region's run-length counts."
    image_id, height, width, _ = image
    if crowd:  # integer area and box; the id is 900100 followed by the image id
        counts = [int(c) for c in rng.integers(1, 60, size=9)]
        counts.append(height * width - sum(counts))
        return {
            "segmentation": {"counts": counts, "size": [height, width]},
            "area": int(sum(counts[1::2])),
            "iscrowd": 1,
            "image_id": image_id,
            "bbox": [0, 1, width - 1, height - 2],
            "category_id": category,
            "id": 900100000000 + image_id,
        }
    xs, ys = rng.uniform(0, width, size=6).round(2), rng.uniform(0, height, size=6).round(2)
    area = 0.5 * abs(float(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))
    box = [
        float(xs.min()),
        float(ys.min()),
        round(float(xs.max() - xs.min()), 2),
        round(float(ys.max() - ys.min()), 2),
    ]
    polygon = [float(v) for pair in zip(xs, ys) for v in pair]
    return {
        "segmentation": [polygon],
        "area": area,
        "iscrowd": 0,
        "image_id": image_id,
        "bbox": box,
        "category_id": category,
        "id": number,
    }


def _annotations(folder: str, rng) -> tuple[list, list, list]:
    "`(images, captions, instances)` of one split; captions and instances in order of their ids."
    images = [
        {
            "license": int(rng.integers(1, 9)),
            "file_name": f"{i:012d}.jpg",
            "coco_url": f"http://images.cocodataset.org/{folder}/{i:012d}.jpg",
            "height": height,
            "width": width,
            "date_captured": "2013-11-14 16:28:13",
            "flickr_url": "http://farm4.staticflickr.com/3153/2970773875_164f0c0b83_z.jpg",
            "id": i,
        }
        for i, height, width, _ in IMAGES[folder]
    ]
    by_id = {image[0]: image for image in IMAGES[folder]}
    written = [(i, text) for i in by_id for text in CAPTIONS[i]]

    # listed by id, an image's captions scattered; the odd ones last, to be the ones DABS keeps
    def odd(text):
        return (text != text.strip() or "\n" in text, not text.isascii())

    order = sorted(rng.permutation(len(written)), key=lambda k: odd(written[k][1]))
    captions = [
        {"image_id": written[k][0], "id": 37 + 11 * n, "caption": written[k][1]}
        for n, k in enumerate(order)
    ]
    pairs = [(i, c, crowd) for i in by_id if i not in NO_INSTANCES for c, crowd in INSTANCES[i]]
    instances = [
        _instance(rng, by_id[pairs[k][0]], *pairs[k][1:], 1768 + 97 * n)
        for n, k in enumerate(rng.permutation(len(pairs)))
    ]
    return images, captions, instances


def write_mscoco_fixture(folder: Path) -> Path:
    """`train2017/`, `val2017/` (JPEGs, greyscale ones among them) and `annotations/` with the
    caption, instance and person keypoint files of both splits, under `folder`."""
    folder, rng = Path(folder), np.random.default_rng(28)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    for split in IMAGES:
        (folder / split).mkdir(exist_ok=True)
        for image in IMAGES[split]:
            _image(rng, *image[1:]).save(folder / split / f"{image[0]:012d}.jpg", quality=90)
        images, captions, instances = _annotations(split, rng)
        head = {"info": INFO, "licenses": LICENSES, "images": images}
        people = [
            {
                "segmentation": a["segmentation"],
                "num_keypoints": 0,
                "area": a["area"],
                "iscrowd": a["iscrowd"],
                "keypoints": [0] * 51,
                "image_id": a["image_id"],
                "bbox": a["bbox"],
                "category_id": 1,
                "id": a["id"],
            }
            for a in instances
            if a["category_id"] == 1
        ]
        files = {
            "captions": {**head, "annotations": captions},
            "instances": {**head, "annotations": instances, "categories": CATEGORIES},
            "person_keypoints": {**head, "annotations": people, "categories": CATEGORIES[:1]},
        }
        for kind, content in files.items():
            (folder / "annotations" / f"{kind}_{split}.json").write_text(publisher_json(content))
    return folder


def rewrite_as_2014_v1(folder: Path):
    """Rewrite the annotation files under `folder` as the first 2014 release was written: no
    spaces, '/' escaped as '\\/', `images` before `licenses`, instance files with a `type` key;
    non-ASCII as raw UTF-8."""
    for path in sorted((Path(folder) / "annotations").glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))
        if not path.name.startswith("captions"):
            content["type"] = "instances"
        order = ["info", "images", "licenses", "type", "annotations", "categories"]
        content = {key: content[key] for key in order if key in content}
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=False).replace("/", "\\/")
        path.write_text(text, encoding="utf-8")
