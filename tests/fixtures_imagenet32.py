"A tiny Downsampled ImageNet 32x32 release: the published pickled batches, with a few images each."
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

TRAIN_FILES = [f"train_data_batch_{i}" for i in range(1, 11)]
PER_BATCH, VAL_SIZE = 3, 8


def _batch(rng: np.random.Generator, n: int, labels: list[int], with_mean: bool) -> dict:
    "One release file's dict: (n, 3072) uint8 rows (R plane, G plane, B plane) and 1-based class ids."
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    content = {"data": data, "labels": list(labels)}
    if with_mean: content["mean"] = data.mean(axis=0)
    return content


def write_imagenet32_fixture(folder: Path) -> Path:
    """`Imagenet32_train/train_data_batch_1..10` (3 images each) and `Imagenet32_val/val_data` (8 images) under
    `folder`, pickled as the release does. Labels cycle over the ids 1, 2, 1000, so the class ids span the range."""
    folder, rng = Path(folder), np.random.default_rng(16)
    (folder / "Imagenet32_train").mkdir(parents=True, exist_ok=True)
    (folder / "Imagenet32_val").mkdir(parents=True, exist_ok=True)
    ids = [1, 2, 1000]
    for i, name in enumerate(TRAIN_FILES):
        labels = [ids[(i + j) % 3] for j in range(PER_BATCH)]
        content = _batch(rng, PER_BATCH, labels, with_mean=True)
        (folder / "Imagenet32_train" / name).write_bytes(pickle.dumps(content, protocol=2))
    content = _batch(rng, VAL_SIZE, [ids[j % 3] for j in range(VAL_SIZE)], with_mean=False)
    (folder / "Imagenet32_val" / "val_data").write_bytes(pickle.dumps(content, protocol=2))
    return folder
