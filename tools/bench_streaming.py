"""Peak memory of training on a converted dataset far larger than memory, against the same run on a small one.

Both datasets are synthetic uint8 images written through the converter path (`metamae-lab convert synthetic`); each
run is `metamae-lab pretrain` in a fresh process, which reports its own peak resident memory (and that of its
DataLoader workers). Usage:

    python tools/bench_streaming.py --gigabytes 10 --steps 300 --work /some/disk/with/room
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tabulate import tabulate

from metamae_lab.data.convert import request_synthetic

PEAK = """
import resource, sys
from metamae_lab.cli import main
code = main(sys.argv[1:])
me, kids = (resource.getrusage(w).ru_maxrss / 1024 for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(f"PEAK {me:.1f} {kids:.1f}", file=sys.stderr)
sys.exit(code)
"""


def convert(work: Path, name: str, gigabytes: float) -> tuple[Path, float, float]:
    "A synthetic store of about `gigabytes`, its size on disk in GB and the seconds the conversion took."
    src, out = work / f"{name}_request", work / name
    if not (out / "manifest.json").is_file():
        request_synthetic(src, gigabytes)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", PEAK, "convert", "synthetic", "--src", str(src), "--out", str(out)],
                       check=True)
        seconds = time.perf_counter() - start
    else: seconds = float("nan")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e9
    return out, size, seconds


def train(work: Path, store: Path, steps: int, workers: int) -> tuple[float, float, float]:
    "Peak RSS in MB of the training process and of its workers, and samples/s, for `steps` steps on `store`."
    run = work / f"run_{store.name}_{workers}"
    shutil.rmtree(run, ignore_errors=True)
    argv = ["pretrain", "--dataset", str(store), "--out", str(run), "--steps", str(steps), "--batch-size", "64",
            "--data-workers", str(workers), "--ckpt-every", str(steps), "--threads", "1"]
    done = subprocess.run([sys.executable, "-c", PEAK, *argv], capture_output=True, text=True)
    if done.returncode: raise SystemExit(done.stderr[-2000:])
    me, kids = map(float, done.stderr.rsplit("PEAK ", 1)[1].split()[:2])
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return me, kids, last["samples_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gigabytes", type=float, default=10.0, help="size of the large dataset")
    p.add_argument("--small-gigabytes", type=float, default=0.05, help="size of the small dataset")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--work", type=Path, required=True, help="a folder with room for the large dataset")
    p.add_argument("--out", type=Path, default=Path("figures/streaming_memory/results.json"))
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, gb in (("small", args.small_gigabytes), ("large", args.gigabytes)):
        store, size, seconds = convert(args.work, name, gb)
        samples = json.loads((store / "manifest.json").read_text())["splits"]["train"]["size"]
        for workers in (0, 2):
            me, kids, speed = train(args.work, store, args.steps, workers)
            rows.append({"dataset": name, "on disk (GB)": round(size, 2), "train samples": samples,
                         "convert (s)": round(seconds, 1), "data workers": workers, "peak RSS (MB)": round(me),
                         "workers' peak RSS (MB)": round(kids) if workers else 0, "samples/s": round(speed)})
    print(tabulate(rows, headers="keys", tablefmt="github"))
    for workers in (0, 2):
        small, large = (next(r for r in rows if r["dataset"] == d and r["data workers"] == workers)
                        for d in ("small", "large"))
        print(f"data workers {workers}: peak RSS large - small = {large['peak RSS (MB)'] - small['peak RSS (MB)']} MB "
              f"(ratio {large['peak RSS (MB)'] / small['peak RSS (MB)']:.3f}) for a dataset "
              f"{large['on disk (GB)'] / small['on disk (GB)']:.0f}x larger on disk")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"steps": args.steps, "batch_size": 64, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
