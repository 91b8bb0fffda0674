"""A store that notices any change, values checked at the boundary, and conversions that delete only
what they wrote: each fault is run through the command line a user types, and ends in one line
naming the cause."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from metamae_lab.data.store import ConversionLock, read_manifest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "metamae_lab.cli"]


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600, **kwargs
    )


def one_line(done, code: int, *fragments):
    """Exit `code` with one line on stderr (besides the conversion's progress bar) holding every
    fragment."""
    err = "\n".join(
        line for line in done.stderr.strip().splitlines() if not line.startswith("convert ")
    )
    assert done.returncode == code, (done.returncode, err[-2000:])
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert str(fragment).lower() in err.lower(), err


def npy_folder(folder: Path, n: int = 96, seed: int = 0, **replace) -> Path:
    """A folder of `.npy` arrays as `metamae-lab convert npy` reads them: small 1x8x8 images in 3
    classes."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.normal(size=(n, 1, 8, 8)).astype(np.float32),
        "y_train": rng.integers(0, 3, n),
        "x_test": rng.normal(size=(n // 3, 1, 8, 8)).astype(np.float32),
        "y_test": rng.integers(0, 3, n // 3),
    }
    arrays.update(replace)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if array is not None:
            np.save(folder / f"{name}.npy", array)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "A store and a 4-step run on it, made once; tests copy them before changing anything."
    root = tmp_path_factory.mktemp("stores")
    store = root / "store"
    assert cli("convert", "npy", "--src", npy_folder(root / "raw"), "--out", store).returncode == 0
    done = cli(
        "pretrain",
        "--dataset",
        store,
        "--out",
        root / "run",
        "--steps",
        "4",
        "--batch-size",
        "16",
        "--ckpt-every",
        "2",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    return store, root / "run"


def copies(trained, tmp_path) -> tuple[Path, Path]:
    "A copy of the store (its files' times kept) and of the run, pointed at the copy."
    store, run = trained
    shutil.copytree(store, tmp_path / "store")
    shutil.copytree(run, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "run_config.json").read_text())
    assert config["dataset"] == str(store)
    return tmp_path / "store", tmp_path / "run"


def resume_and_probe_refused(store: Path, run: Path, *fragments):
    one_line(
        cli(
            "pretrain",
            "--dataset",
            store,
            "--out",
            run,
            "--steps",
            "6",
            "--batch-size",
            "16",
            "--resume",
            "--quiet",
        ),
        2,
        *fragments,
    )
    one_line(cli("probe", "--run", run), 2, *fragments)


# ---- a store that notices any change ----


@pytest.mark.parametrize("change", ["other values", "flipped bytes", "another dtype"])
def test_a_changed_shard_is_refused_by_resume_and_probe(trained, tmp_path, change):
    store, run = trained
    shard = store / "train" / "x-00000.npy"
    saved = shard.read_bytes()
    time.sleep(0.02)  # a rewrite within the file system's clock tick would keep the time
    try:
        if change == "other values":
            np.save(shard, np.load(shard)[::-1])
        elif change == "flipped bytes":
            data = bytearray(saved)
            data[-7] ^= 0xFF
            shard.write_bytes(bytes(data))
        else:
            np.save(shard, np.load(shard).astype(np.float64))
        fragment = (
            "holds float64" if change == "another dtype" else "changed since the store was written"
        )
        resume_and_probe_refused(store, run, "train/x-00000.npy", fragment)
    finally:
        shard.write_bytes(saved)
        os.utime(
            shard,
            ns=(0, read_manifest(store)["splits"]["train"]["shards"][0]["files"]["x"]["mtime_ns"]),
        )


def test_verify_reads_every_file_and_names_the_one_that_differs(trained, tmp_path):
    # new times, same bytes
    store = shutil.copytree(trained[0], tmp_path / "store", copy_function=shutil.copy)
    done = cli("verify", store)
    assert (
        done.returncode == 0
        and "hold what was written" in done.stdout
        and "times of 4 files" in done.stdout
    )
    shard = store / "test" / "x-00000.npy"
    stat, data = shard.stat(), bytearray(shard.read_bytes())
    data[-3] ^= 0x01
    shard.write_bytes(bytes(data))
    # the time put back: only the content tells
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert cli("verify", store).returncode == 2
    one_line(cli("verify", store), 2, "test/x-00000.npy does not hold what was written")


@pytest.mark.parametrize(
    "name", ["../raw/x_train.npy", "/etc/hostname", "train/../../raw/x_train.npy"]
)
def test_shard_names_outside_the_store_are_refused(trained, tmp_path, name):
    store, run = copies(trained, tmp_path)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["x"] = name
    (store / "manifest.json").write_text(json.dumps(manifest))
    one_line(
        cli("pretrain", "--dataset", store, "--out", tmp_path / "new", "--steps", "2", "--quiet"),
        2,
        f"names a train file {name!r}",
    )


def test_absurd_sizes_are_refused_before_anything_is_allocated(trained, tmp_path):
    store, _ = copies(trained, tmp_path)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))"
    opening = [
        sys.executable,
        "-c",
        f"{limit}\nfrom metamae_lab.cli import main; raise SystemExit(main())",
    ]
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["splits"]["train"]["shards"][0]["n"] = 10**10
    manifest["splits"]["train"]["size"] = 10**10
    (store / "manifest.json").write_text(json.dumps(manifest))
    args = ["pretrain", "--dataset", store, "--out", tmp_path / "new", "--steps", "2", "--quiet"]
    done = subprocess.run([*opening, *args], capture_output=True, text=True, env=ENV)
    one_line(
        done, 2, "train/x-00000.npy holds float32 of shape (96, 1, 8, 8)", "(10000000000, 1, 8, 8)"
    )
    header = store / "train" / "y-00000.npy"  # a header that declares 1e10 rows
    np.lib.format.write_array_header_1_0(
        open(header, "r+b"), {"descr": "<i8", "fortran_order": False, "shape": (10**10,)}
    )
    manifest["splits"]["train"]["shards"][0]["n"] = manifest["splits"]["train"]["size"] = 96
    (store / "manifest.json").write_text(json.dumps(manifest))
    done = subprocess.run([*opening, *args], capture_output=True, text=True, env=ENV)
    one_line(done, 2, "train/y-00000.npy holds int64 of shape (10000000000,)")


def test_a_vocabulary_of_two_billion_ids_is_refused(tmp_path):
    ids = np.random.default_rng(0).integers(0, 20, size=(40, 16))
    ids[3, 4] = 2_000_000_000
    src = npy_folder(
        tmp_path / "raw",
        x_train=ids,
        x_test=ids[:10] % 20,
        y_train=np.arange(40) % 2,
        y_test=np.arange(10) % 2,
    )
    one_line(
        cli("convert", "npy", "--src", src, "--out", tmp_path / "store"),
        2,
        "token id of 2,000,000,000",
        "vocab_size in meta.json",
    )
    ids[3, 4] = 5
    np.save(src / "x_train.npy", ids)
    assert cli("convert", "npy", "--src", src, "--out", tmp_path / "store").returncode == 0
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    manifest["spec"]["vocab_size"] = 2_000_000_001
    (tmp_path / "store" / "manifest.json").write_text(json.dumps(manifest))
    one_line(
        cli("pretrain", "--dataset", tmp_path / "store", "--out", tmp_path / "run", "--quiet"),
        2,
        "more than the 1,048,576",
        "--vocab-size 2000000001",
    )


def test_a_unit_changed_before_the_resume_of_a_conversion_is_read_again(tmp_path):
    src = npy_folder(tmp_path / "raw")
    script = (
        "import os, sys\nimport metamae_lab.data.store as s\nreal = "
        "s.StoreWriter.commit\ndef commit(self, unit, digest):\n    real(self, "
        "unit, digest)\n    raise KeyboardInterrupt('stop')\ns.StoreWriter.commit "
        "= commit\nfrom metamae_lab.cli import main\nsys.exit(main(sys.argv[1:]))"
    )
    args = ["convert", "npy", "--src", src, "--out", tmp_path / "store"]
    stopped = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, env=ENV
    )
    assert stopped.returncode == 130 and (tmp_path / "store.partial").is_dir(), stopped.stderr
    changed = npy_folder(tmp_path / "changed", seed=1)
    shutil.copy(changed / "x_train.npy", src / "x_train.npy")  # the kept unit changes
    done = cli(*args)
    assert (
        done.returncode == 0 and "changed since the interrupted conversion read it" in done.stderr
    ), done.stderr
    assert cli("convert", "npy", "--src", src, "--out", tmp_path / "direct").returncode == 0
    assert (
        read_manifest(tmp_path / "store")["fingerprint"]
        == read_manifest(tmp_path / "direct")["fingerprint"]
    )


# ---- values checked at the boundary ----


@pytest.mark.parametrize(
    "replace,fragments",
    [
        ({"x_train": np.full((96, 1, 8, 8), 1e300)}, ["values reach 1e+300", "do not fit float32"]),
        (
            {"x_test": np.full((32, 1, 8, 8), np.nan, np.float32)},
            ["x_test.npy", "test split holds NaN or inf"],
        ),
        (
            {"y_train": np.full(96, 1.7)},
            ["x_train.npy", "train labels must be whole class ids", "1.7"],
        ),
        ({"x_train": np.ones((96, 1, 8, 8), np.complex64)}, ["x_train.npy", "complex"]),
    ],
)
def test_values_a_conversion_refuses(tmp_path, replace, fragments):
    src = npy_folder(tmp_path / "raw", **replace)
    one_line(cli("convert", "npy", "--src", src, "--out", tmp_path / "store"), 2, *fragments)
    assert not (tmp_path / "store").exists() and not (tmp_path / "store.partial").exists()


def test_class_ids_beyond_the_class_names_are_refused(tmp_path):
    src = npy_folder(tmp_path / "raw", y_test=np.array([0, 1, 2, 5] * 8))
    (src / "meta.json").write_text(json.dumps({"class_names": ["a", "b", "c"]}))
    one_line(
        cli("convert", "npy", "--src", src, "--out", tmp_path / "store"),
        2,
        "x_test.npy",
        "class ids 0..5",
        "[0, 3)",
    )


def test_labels_for_some_splits_only_are_refused(tmp_path):
    src = npy_folder(tmp_path / "raw", y_test=None)
    one_line(
        cli("convert", "npy", "--src", src, "--out", tmp_path / "store"),
        2,
        "labels for some splits only",
    )


# ---- conversions that delete only what they wrote ----


def test_overwrite_replaces_a_store_and_nothing_else(trained, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    src = npy_folder(tmp_path / "raw")
    one_line(
        cli("convert", "npy", "--src", src, "--out", folder, "--overwrite"),
        2,
        "holds other files (thesis.tex)",
    )
    assert (folder / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("keep")
    one_line(
        cli("convert", "npy", "--src", src, "--out", tmp_path / "file", "--overwrite"),
        2,
        "is a file",
    )
    assert (tmp_path / "file").read_text() == "keep" and not (tmp_path / "file.old").exists()
    store = shutil.copytree(trained[0], tmp_path / "store")
    assert cli("convert", "npy", "--src", src, "--out", store, "--overwrite").returncode == 0


@pytest.mark.parametrize("out", [".", "inside"])
def test_out_and_src_may_not_overlap(tmp_path, out):
    src = npy_folder(tmp_path / "raw")
    before = sorted(p.name for p in src.iterdir())
    target = src if out == "." else src / "store"
    one_line(cli("convert", "npy", "--src", src, "--out", target, "--overwrite"), 2, "overlap")
    one_line(cli("convert", "npy", "--src", src, "--out", src.parent), 2, "overlap")
    assert sorted(p.name for p in src.iterdir()) == before


def test_a_second_conversion_into_the_same_out_is_refused(tmp_path):
    src = npy_folder(tmp_path / "raw")
    with ConversionLock(tmp_path / "store"):  # as a running conversion holds it
        one_line(
            cli("convert", "npy", "--src", src, "--out", tmp_path / "store"),
            2,
            f"another conversion into {tmp_path / 'store'} is running (process {os.getpid()})",
        )
    assert cli("convert", "npy", "--src", src, "--out", tmp_path / "store").returncode == 0
    assert not (tmp_path / "store.lock").exists()


def test_a_full_disk_keeps_the_finished_units_and_the_next_run_resumes(tmp_path):
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-rm", "true"]).returncode != 0
    ):
        from conftest import require

        require(False, "unshare -rm (a private mount namespace for the file-system fault tests)")
    src = npy_folder(tmp_path / "raw", n=1500)  # x_train 384 kB, x_test 128 kB
    disk, convert = (
        tmp_path / "disk",
        " ".join(CLI) + f" convert npy --src {src} --out {tmp_path}/disk/store",
    )
    script = (
        f"mkdir -p {disk} && mount -t tmpfs -o size=450k tmpfs {disk} && {convert}; "
        f"echo code=$? >&2; "
        f"ls {disk}/store.partial >&2; mount -o remount,size=4m {disk} && {convert} && "
        f"cp -r {disk}/store {tmp_path}/resumed"
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=ENV
    )
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("metamae-lab")]
    assert "code=4" in lines and len(errors) == 1, lines
    assert "No space left on device" in errors[0], errors
    assert "the 1 finished units are kept in this folder" in errors[0], errors
    assert "progress.json" in lines and done.returncode == 0, lines
    assert cli("convert", "npy", "--src", src, "--out", tmp_path / "direct").returncode == 0
    assert (
        read_manifest(tmp_path / "resumed")["fingerprint"]
        == read_manifest(tmp_path / "direct")["fingerprint"]
    )
