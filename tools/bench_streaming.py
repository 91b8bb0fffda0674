"""Data at size: the loader's cost per step against the size of the store, training's share of time
spent waiting for data, peak memory, and what one GPU would consume at the paper's size.

Every store is synthetic uint8 images written through the converter path (`metamae-lab convert
synthetic`), made once under --work and reused. For each store:

- the loader alone (no model): samples/s with 0, 2 and 4 worker processes, the training process's
own cost per
step with none, and the once-per-epoch permutation that cost includes; beside it, what drawing a
permutation at
every step (the loader before this benchmark) costs at that size;
- training (tiny preset) on the smallest and the largest store, each run in a fresh process:
samples/s, the share
of each step spent waiting for data, the peak resident memory of the process and of its workers;
- FLOPs per sample at the `dabs` size on the image configuration (3 x 32 x 32, patch 4, mask 0.5),
counted by
torch's FlopCounterMode, turned into the samples/s one GPU would consume at a given utilisation of
its peak.

python tools/bench_streaming.py --work /disk/with/room             # 60k, 1.3M and 10M rows of
3x32x32 python tools/bench_streaming.py --work DIR --shape 3 16 16         # rows that all fit in
the page cache

Each store is measured with its rows in the page cache (when it fits in half the available memory:
the loader's own cost) and from disk after dropping the cache (as root; how training reads a store
larger than memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

from metamae_lab.data.convert import convert, request_synthetic
from metamae_lab.data.loader import BatchOrder, StepBatches, batch_indices, step_batches
from metamae_lab.data.store import open_store

# The training process's own peak (VmHWM: ru_maxrss would carry over this benchmark's peak through
# the fork), and
# the largest peak among its worker processes.
PEAK = """
import resource, sys
from metamae_lab.cli import main
code = main(sys.argv[1:])
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
me, kids = int(hwm.split()[1]) / 1024, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"PEAK {me:.1f} {kids:.1f}", file=sys.stderr)
sys.exit(code)
"""
TEST_FRACTION = 0.01


def make_store(work: Path, rows: int, shape: tuple[int, ...]) -> tuple[Path, float]:
    """A synthetic store with `rows` training samples of `shape` (made once), and the seconds its
    conversion took."""
    out = work / f"store_{rows}_{'x'.join(map(str, shape))}"
    if (out / "manifest.json").is_file():
        return out, float("nan")
    # the synthetic source puts TEST_FRACTION of each block in test
    total = round(rows / (1 - TEST_FRACTION))
    request = request_synthetic(
        work / f"{out.name}_request",
        total * np.prod(shape) / 1e9,
        shape,
        test_fraction=TEST_FRACTION,
    )
    start = time.perf_counter()
    convert("synthetic", request, out, progress=False)
    return out, time.perf_counter() - start


def fits_in_memory(store: Path) -> bool:
    "Whether the store fits in half the memory available now."
    size = sum(f.stat().st_size for f in store.rglob("*.npy"))
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return size < int(meminfo["MemAvailable"].split()[0]) * 1024 / 2


def cache(store: Path, warm: bool) -> bool:
    """Read the store once (its rows then come from the page cache), or drop the cache (root only);
    done or not."""
    if warm:
        for file in store.rglob("*.npy"):
            with open(file, "rb") as f:
                while f.read(1 << 24):
                    pass
        return True
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("1")
    except OSError:
        return False
    return True


def measure(store: Path, rows: int, args, warm: bool) -> dict:
    """One row of the loader's table: the orders' costs and the loader's rate with each number of
    workers."""
    row = {
        "rows": rows,
        "GB": sum(f.stat().st_size for f in store.rglob("*.npy")) / 1e9,
        "rows from": "page cache" if warm else "disk",
        **order_costs(rows, args.batch_size),
    }
    for i, workers in enumerate(args.workers):
        cache(store, warm)  # before each: a cold read must not find rows an earlier one left behind
        rate = loader_rates(store, args.batch_size, args.steps, workers, i * (args.steps + 20))
        row[f"samples/s, {workers} workers"] = rate["samples/s"]
        if workers == 0:
            row["ms/step, in process"] = rate["ms/step"]
    print(tabulate([row], headers="keys", tablefmt="github", floatfmt=".4g"), flush=True)
    return row


def loader_rates(store: Path, batch: int, steps: int, workers: int, first: int) -> dict:
    """The loader alone on `store`: samples/s over `steps` steps from step `first`, after a warm-up
    that draws the epoch's order. Each measurement reads steps of its own, so none reads rows
    another left in the page cache."""
    data = open_store(store)
    reader = StepBatches(data.x_train, None, BatchOrder(len(data.x_train), batch, seed=0))
    loaded = step_batches(reader, first, first + steps + 20, workers)
    for _ in range(20):
        next(loaded)  # workers started, the first permutation drawn
    start = time.perf_counter()
    for _ in range(steps):
        next(loaded)
    seconds = time.perf_counter() - start
    return {"samples/s": batch * steps / seconds, "ms/step": 1000 * seconds / steps}


def order_costs(rows: int, batch: int) -> dict:
    """The permutation drawn once per epoch, amortised over the epoch's steps; and drawn at every
    step, as before."""
    start = time.perf_counter()
    BatchOrder(rows, batch, seed=0)(0)
    draw = time.perf_counter() - start
    start = time.perf_counter()
    for step in range(3):
        batch_indices(step, rows, batch, seed=0)
    per_step = (time.perf_counter() - start) / 3
    return {
        "epoch draw (ms)": 1000 * draw,
        "amortised (ms/step)": 1000 * draw / (rows // batch),
        "redrawn every step (ms/step)": 1000 * per_step,
    }


def train(work: Path, store: Path, steps: int, batch: int, workers: int) -> dict:
    """A tiny-preset run on `store` in a fresh process: samples/s, data-wait share, peak RSS
    (process, workers)."""
    run = work / f"run_{store.name}_{workers}"
    shutil.rmtree(run, ignore_errors=True)
    argv = [
        "pretrain",
        "--dataset",
        str(store),
        "--out",
        str(run),
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--data-workers",
        str(workers),
        "--ckpt-every",
        str(steps),
        "--log-every",
        "10",
        "--threads",
        "1",
        "--quiet",
    ]
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    me, kids = map(float, done.stderr.rsplit("PEAK ", 1)[1].split()[:2])
    # warmed up
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][2:]
    shutil.rmtree(run)
    return {
        "samples/s": float(np.median([m["samples_per_s"] for m in lines])),
        "data wait": float(np.mean([m["data_wait_share"] for m in lines])),
        "peak RSS (MB)": me,
        "workers' peak RSS (MB)": kids if workers else 0.0,
    }


def gpu_estimate(peak_tflops: float, utilisation: float) -> list[dict]:
    """Samples/s one GPU consumes at the `dabs` size, image configuration, from the FLOPs of one
    step."""
    from metamae_lab.bench import case_config, make_step, step_flops

    rows = []
    for model in ("mae", "metamae_2nd"):
        spec, cfg = case_config("image", model, "dabs")
        flops = step_flops(make_step("project", spec, cfg, 8, "cpu")) / 8
        rows.append(
            {
                "model": model,
                "GFLOP/sample": flops / 1e9,
                f"samples/s at {utilisation:.0%} of {peak_tflops:g} TFLOP/s": utilisation
                * peak_tflops
                * 1e12
                / flops,
            }
        )
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="a folder with room for the stores")
    p.add_argument("--rows", type=int, nargs="+", default=[60_000, 1_300_000, 10_000_000])
    p.add_argument(
        "--shape",
        type=int,
        nargs=3,
        default=[3, 32, 32],
        help="one sample (ImageNet32's by default)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=300, help="timed steps of the loader alone")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    p.add_argument("--train-steps", type=int, default=120)
    p.add_argument("--train-batch-size", type=int, default=64)
    p.add_argument(
        "--gpu-peak-tflops",
        type=float,
        default=989.0,
        help="H100/H200 dense bf16, from the data sheet",
    )
    p.add_argument("--gpu-utilisation", type=float, default=0.3)
    p.add_argument("--out", type=Path, default=Path("figures/data_at_size/results.json"))
    args = p.parse_args()
    torch.set_num_threads(1)
    # more workers than cores: meant
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    args.work.mkdir(parents=True, exist_ok=True)
    stores = {rows: make_store(args.work, rows, tuple(args.shape)) for rows in args.rows}
    loader, training = [], []
    for rows, (store, seconds) in stores.items():
        if fits_in_memory(store):
            loader.append(measure(store, rows, args, warm=True))
        if cache(store, warm=False):
            loader.append(measure(store, rows, args, warm=False))
    for rows in sorted({min(args.rows), max(args.rows)}):
        for workers in (0, 2):
            result = train(
                args.work, stores[rows][0], args.train_steps, args.train_batch_size, workers
            )
            training.append({"rows": rows, "data workers": workers, **result})
    cached = [row for row in loader if row["rows from"] == "page cache"]
    small, large = cached[0], cached[-1]  # the loader's own cost, without the disk
    ratio = large["ms/step, in process"] / small["ms/step, in process"]
    gpu = gpu_estimate(args.gpu_peak_tflops, args.gpu_utilisation)
    print(
        f"\nThe loader alone, batch {args.batch_size}, {args.steps} steps, one thread per process "
        f"({platform.processor() or platform.machine()}):"
    )
    print(tabulate(loader, headers="keys", tablefmt="github", floatfmt=".4g"))
    print(
        f"\nper-step cost in the training process, {large['rows']:,} rows "
        f"against {small['rows']:,}: {ratio:.2f}x (target: within 1.2x)"
    )
    print(
        f"\nTraining, tiny preset, batch {args.train_batch_size}, "
        f"{args.train_steps} steps, one thread:"
    )
    print(tabulate(training, headers="keys", tablefmt="github", floatfmt=".4g"))
    print("\nWhat one GPU consumes at the dabs size (image configuration):")
    print(tabulate(gpu, headers="keys", tablefmt="github", floatfmt=".4g"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "args": {k: str(v) for k, v in vars(args).items()},
                "loader": loader,
                "training": training,
                "per_step_ratio": ratio,
                "gpu": gpu,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
