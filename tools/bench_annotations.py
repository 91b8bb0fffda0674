"""Peak memory of reading MSCOCO's and VQA's train annotations: whole documents against streams.

Writes synthetic train annotation files of the published size and layout, then reads them in fresh
processes, each reporting its peak resident memory (VmHWM) and time: `json`, what the converters did
until they streamed (`json.loads` of each file, then the dicts they kept), and `stream`, the
converters' readers now.

- MSCOCO: `annotations/instances_train2017.json` (118,287 images, 860,001 instances with polygons
or crowd run-length regions, `categories` last) and `annotations/captions_train2017.json`
(591,753 captions), with the publisher's separators and key order;
- VQA: `v2_OpenEnded_mscoco_train2014_questions.json` and `v2_mscoco_train2014_annotations.json`
(443,757 questions on 82,783 images, ten answers each), as Python's `json.dump` writes them.

Usage:

python tools/bench_annotations.py --work /some/disk/with/room [--dataset mscoco|vqa|both]
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tabulate import tabulate

IMAGES, INSTANCES, CAPTIONS = 118_287, 860_001, 591_753  # COCO 2017 train
VQA_IMAGES, QUESTIONS = 82_783, 443_757  # VQA v2 train (on COCO train2014)
CATEGORIES = [
    c
    for c in range(1, 91)  # COCO's 80 category ids: 10 of 1..90 are unused
    if c not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
]
WORDS = (
    "a an the man woman people person dog cat two of on in with at near sitting standing "
    "riding down street table plate pizza food bus train car white black red blue green large "
    "small next to top field grass water beach snow skis board kite sky building city room "
    "kitchen bathroom toilet sink bed couch tv"
).split()
HEAD = (
    '{"info": {"description": "COCO 2017 Dataset","url": '
    '"http://cocodataset.org","version": "1.0","year": 2017,"contributor": '
    '"COCO Consortium","date_created": "2017/09/01"},"licenses": [],'
)


def _dumps(value) -> str:
    "JSON as the COCO 2017 files are written: ',' between items, ': ' after keys, ASCII only."
    return json.dumps(value, separators=(",", ": "))


def _numbers(rng, n: int) -> list:
    return [round(float(v), 2) for v in rng.uniform(0, 640, size=n)]


def _image(rng, i: int) -> str:
    return _dumps(
        {
            "license": int(rng.integers(1, 9)),
            "file_name": f"{i:012d}.jpg",
            "coco_url": f"http://images.cocodataset.org/train2017/{i:012d}.jpg",
            "height": 480,
            "width": 640,
            "date_captured": "2013-11-14 11:18:45",
            "flickr_url": "http://farm4.staticflickr.com/3153/2970773875_164f0c0b83_z.jpg",
            "id": i,
        }
    )


def _instance(rng, n: int, image_id: int) -> str:
    crowd = rng.random() < 0.01  # a crowd region: run-length counts, integer area
    segmentation = (
        {"counts": rng.integers(0, 400, size=600).tolist(), "size": [480, 640]}
        if crowd
        else [_numbers(rng, 2 * int(rng.integers(10, 36)))]
    )
    area = 1000 if crowd else float(rng.uniform(10, 9e4))
    return _dumps(
        {
            "segmentation": segmentation,
            "area": area,
            "iscrowd": int(crowd),
            "image_id": image_id,
            "bbox": _numbers(rng, 4),
            "category_id": CATEGORIES[int(rng.integers(0, 80))],
            "id": 900100000000 + n if crowd else n,
        }
    )


def write_coco(folder: Path, seed: int = 0) -> None:
    "The synthetic COCO 2017 train captions and instances files under `folder/annotations`."
    rng, out = np.random.default_rng(seed), Path(folder) / "annotations"
    out.mkdir(parents=True, exist_ok=True)
    ids = [int(i) for i in np.sort(rng.choice(581_929, IMAGES, replace=False)) + 1]
    images = ",".join(_image(rng, i) for i in ids)
    with open(out / "instances_train2017.json", "w") as f:
        f.write(f'{HEAD}"images": [{images}],"annotations": [')
        for n in range(INSTANCES):
            f.write(("," if n else "") + _instance(rng, n, ids[n % IMAGES]))
        categories = [{"supercategory": "thing", "id": c, "name": f"class {c}"} for c in CATEGORIES]
        f.write('],"categories": [' + ",".join(_dumps(c) for c in categories) + "]}")
    with open(out / "captions_train2017.json", "w") as f:
        f.write(f'{HEAD}"images": [{images}],"annotations": [')
        for n in range(CAPTIONS):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(8, 14)))).capitalize() + "."
            caption = {"image_id": ids[n % IMAGES], "id": n, "caption": text}
            f.write(("," if n else "") + _dumps(caption))
        f.write("]}")


def _annotation(rng, image_id: int, question_id: int) -> str:
    choices = ["yes", "no", "2", "1", "white", "3", "red", "blue", "4", "green", "black", "net"]
    given = [choices[int(k) % len(choices)] for k in rng.zipf(1.6, size=10)]
    answers = [
        {
            "answer": a,
            "answer_confidence": str(rng.choice(["yes", "maybe", "no"])),
            "answer_id": k + 1,
        }
        for k, a in enumerate(given)
    ]
    return json.dumps(
        {
            "question_type": "what is the",
            "multiple_choice_answer": max(set(given), key=given.count),
            "answers": answers,
            "image_id": image_id,
            "answer_type": "other",
            "question_id": question_id,
        }
    )


def write_vqa(folder: Path, seed: int = 0) -> None:
    "The synthetic VQA v2 train questions and annotations files under `folder`."
    rng, folder = np.random.default_rng(seed), Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ids = rng.choice(581_929, VQA_IMAGES, replace=False) + 1
    image_ids = [int(ids[n % VQA_IMAGES]) for n in range(QUESTIONS)]
    question_ids = [i * 1000 + n // VQA_IMAGES for n, i in enumerate(image_ids)]
    info = {
        "description": "This is v2.0 of the VQA dataset.",
        "url": "http://visualqa.org",
        "version": "2.0",
        "year": 2017,
        "contributor": "VQA Team",
        "date_created": "2017-04-26 17:07:13",
    }
    license = {
        "url": "http://creativecommons.org/licenses/by/4.0/",
        "name": "Creative Commons Attribution 4.0 International License",
    }
    with open(folder / "v2_OpenEnded_mscoco_train2014_questions.json", "w") as f:
        head = {
            "info": info,
            "task_type": "Open-Ended",
            "data_type": "mscoco",
            "license": license,
            "data_subtype": "train2014",
        }
        f.write(json.dumps(head)[:-1] + ', "questions": [')
        for n, (i, q) in enumerate(zip(image_ids, question_ids)):
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(4, 9)))).capitalize() + "?"
            question = {"image_id": i, "question": text, "question_id": q}
            f.write((", " if n else "") + json.dumps(question))
        f.write("]}")
    with open(folder / "v2_mscoco_train2014_annotations.json", "w") as f:
        head = {"info": info, "license": license, "data_subtype": "train2014"}
        f.write(json.dumps(head)[:-1] + ', "annotations": [')
        for n, (i, q) in enumerate(zip(image_ids, question_ids)):
            f.write((", " if n else "") + _annotation(rng, i, q))
        f.write('], "data_type": "mscoco"}')


READ = {  # run in a fresh process on src: each leaves in `found` the number of samples read
    ("mscoco", "json"): """
import json
from pathlib import Path
src = Path(sys.argv[1]) / "annotations"
captions = json.loads((src / "captions_train2017.json").read_text(encoding="utf-8"))
instances = json.loads((src / "instances_train2017.json").read_text(encoding="utf-8"))
label_of = {c["id"]: i for i, c in enumerate(instances["categories"])}
labels = {a["image_id"]: label_of[a["category_id"]] for a in instances["annotations"]}
files = {image["id"]: image["file_name"] for image in captions["images"]}
caption_of = {a["image_id"]: a["caption"] for a in captions["annotations"]}
all_captions = [str(a["caption"]) for a in captions["annotations"]]
found = len([i for i in caption_of if i in labels])
""",
    ("mscoco", "stream"): """
from pathlib import Path
from metamae_lab.data.sources.mscoco import coco_split
found = len(coco_split(Path(sys.argv[1]), "train2017").samples)
""",
    ("vqa", "json"): """
import json
from pathlib import Path
src = Path(sys.argv[1])
questions = json.loads((src / "v2_OpenEnded_mscoco_train2014_questions.json").read_text("utf-8"))
annotations = json.loads((src / "v2_mscoco_train2014_annotations.json").read_text("utf-8"))
answer_of = {a["question_id"]: str(a["multiple_choice_answer"]) for a in annotations["annotations"]}
samples = [(f"train2014/COCO_train2014_{int(q['image_id']):012d}.jpg", str(q["question"]),
            answer_of[q["question_id"]]) for q in questions["questions"]]
found = len(samples)
""",
    ("vqa", "stream"): """
from pathlib import Path
from metamae_lab.data.sources.vqa import _split_questions
found = len(_split_questions(Path(sys.argv[1]), "train"))
""",
}
PEAK = """
import sys, time
start = time.perf_counter()
{code}
seconds = time.perf_counter() - start
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]
print(f"PEAK {{int(peak) / 1024:.0f}} {{seconds:.1f}} {{found}}")
"""
FILES = {
    "mscoco": ["annotations/captions_train2017.json", "annotations/instances_train2017.json"],
    "vqa": ["v2_OpenEnded_mscoco_train2014_questions.json", "v2_mscoco_train2014_annotations.json"],
}


def measure(src: Path, dataset: str, how: str) -> tuple[float, float, int]:
    "Peak RSS (MB), seconds and samples read from `dataset`'s train annotations in a fresh process."
    done = subprocess.run(
        [sys.executable, "-c", PEAK.format(code=READ[dataset, how]), str(src)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    peak, seconds, found = done.stdout.rsplit("PEAK ", 1)[1].split()
    return float(peak), float(seconds), int(found)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="a folder with 1 GB free for the files")
    p.add_argument("--dataset", choices=["mscoco", "vqa", "both"], default="both")
    args = p.parse_args()
    for dataset in ["mscoco", "vqa"] if args.dataset == "both" else [args.dataset]:
        files = [args.work / name for name in FILES[dataset]]
        if not all(f.is_file() for f in files):
            start = time.perf_counter()
            (write_coco if dataset == "mscoco" else write_vqa)(args.work)
            print(f"wrote the synthetic {dataset} files in {time.perf_counter() - start:.0f} s")
        sizes = ", ".join(f"{f.name} {f.stat().st_size / 1e6:.0f} MB" for f in files)
        rows = [(how, *measure(args.work, dataset, how)) for how in ("json", "stream")]
        print(f"\n{dataset} train annotations, synthetic: {sizes}")
        print(tabulate(rows, headers=["read", "peak RSS (MB)", "seconds", "samples"]))


if __name__ == "__main__":
    main()
