"""A tiny Downsampled ImageNet 32x32 release, pickled as the authors' scripts pickled it (Python 3's
`pickle.dump` with its default protocol of 2017, 3, of numpy 1.x arrays), or in the other forms a
re-pickled copy may have."""

from __future__ import annotations

import io
import pickle
import types
from pathlib import Path

import numpy as np

TRAIN_FILES = [f"train_data_batch_{i}" for i in range(1, 11)]
TRAIN_SIZE, VAL_SIZE = 34, 8
PER_BATCH = TRAIN_SIZE // 10  # batches 1..9 hold TRAIN_SIZE // 10 images, batch 10 the rest (7)


class Numpy1Pickler(pickle._Pickler):
    """Python's own pickler, writing numpy objects as numpy 1.x did: under `numpy.core` (numpy 2
    writes `numpy._core`), and a dtype's arguments as `(descr, 0, 1)` (numpy 2: `False, True`)."""

    def reducer_override(self, obj):
        if not isinstance(obj, np.dtype):
            return NotImplemented
        make, (descr, _, _), state = obj.__reduce__()
        return make, (descr, 0, 1), state

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", "") or ""
        if not module.startswith("numpy._core."):
            return super().save_global(obj, name)
        module, name = module.replace("numpy._core.", "numpy.core.", 1), name or obj.__qualname__
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, types.FunctionType: save_global}  # numpy's functions


def release_pickle(content: dict, protocol: int = 3, numpy1: bool = True) -> bytes:
    "One release file: the authors' `pickle.dump(d, f)` (protocol 3, numpy 1), or another form."
    if not numpy1:
        return pickle.dumps(content, protocol=protocol)
    out = io.BytesIO()
    Numpy1Pickler(out, protocol=protocol).dump(content)
    return out.getvalue()


def release_content(rng: np.random.Generator) -> tuple[list[dict], dict]:
    """The train batches and the validation dict as the authors' scripts made them: 'data' (n, 3072)
    uint8 rows (R plane, G plane, B plane), 'labels' a list of 1-based class ids (`.tolist()`), and
    in each train batch 'mean', the float64 mean image over all training images. Labels cycle over
    1, 2 and 1000."""
    ids = [1, 2, 1000]
    x = rng.integers(0, 256, size=(TRAIN_SIZE, 3 * 32 * 32), dtype=np.uint8)
    y = np.array([ids[i % 3] for i in range(TRAIN_SIZE)])
    mean = np.mean(x, axis=0)
    cuts = [PER_BATCH * i for i in range(10)] + [TRAIN_SIZE]
    train = [
        {"data": x[start:end], "labels": y[start:end].tolist(), "mean": mean}
        for start, end in zip(cuts, cuts[1:])
    ]
    val = {
        "data": rng.integers(0, 256, size=(VAL_SIZE, 3 * 32 * 32), dtype=np.uint8),
        "labels": [ids[j % 3] for j in range(VAL_SIZE)],
    }
    return train, val


def write_imagenet32_fixture(folder: Path, protocol: int = 3, numpy1: bool = True) -> Path:
    """`Imagenet32_train/train_data_batch_1..10` and `Imagenet32_val/val_data` under `folder`
    (returned), the two release archives unpacked; pickled as published, or at another `protocol`
    or with numpy 2's module names."""
    folder = Path(folder)
    train, val = release_content(np.random.default_rng(16))
    files = [
        *(("Imagenet32_train", name, content) for name, content in zip(TRAIN_FILES, train)),
        ("Imagenet32_val", "val_data", val),
    ]
    for sub, name, content in files:
        (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / sub / name).write_bytes(release_pickle(content, protocol, numpy1))
    return folder
