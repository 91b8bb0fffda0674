"""Training, resume, probes and weight exchange under faults: one bad sample does not end a run,
every path form resumes, a dead data worker is survivable, patches always make tokens, and every
refusal is one true line."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metamae_lab.checkpoint import list_checkpoints
from metamae_lab.config import ModalitySpec, run_config
from metamae_lab.data import ArrayDataset, data_fingerprint, dataset_from_npz, open_store
from metamae_lab.train import pretrain

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "metamae_lab.cli"]


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    return subprocess.run([*CLI, *map(str, args)], text=True, env=ENV, timeout=600, **kwargs)


def one_line(done, code: int, *fragments):
    err = "\n".join(
        line for line in done.stderr.strip().splitlines() if not line.startswith("convert ")
    )
    assert done.returncode == code, (done.returncode, err[-2000:])
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert str(fragment).lower() in err.lower(), err


def arrays(folder: Path, n: int = 120, length: int = 40, seed: int = 0) -> dict:
    """Small sequences in 3 classes, as `.npy` files for `convert npy` and as one `.npz` with the
    same split."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2, length)).astype(np.float32), rng.integers(0, 3, n)
    folder.mkdir(parents=True, exist_ok=True)
    cut = n * 3 // 4
    parts = {"x_train": x[:cut], "y_train": y[:cut], "x_test": x[cut:], "y_test": y[cut:]}
    for name, a in parts.items():
        np.save(folder / f"{name}.npy", a)
    np.savez(folder.with_suffix(".npz"), **parts)
    return parts


def weights(run_dir: Path) -> dict:
    return torch.load(list_checkpoints(run_dir)[-1], weights_only=True)["model"]


# ---- one bad sample ----


def test_a_non_finite_forward_leaves_no_trace_and_the_run_finishes(tmp_path):
    """A sample of 1e38 overflows the real forward pass: the step is skipped and BatchNorm's
    statistics stay finite."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1, 8, 8)).astype(np.float32)
    x[5] = 1e38
    data = ArrayDataset(
        "bad_sample",
        ModalitySpec("image", (1, 8, 8), 2),
        x,
        rng.integers(0, 3, 64),
        x[:16],
        rng.integers(0, 3, 16),
    )
    run = run_config(
        "tiny", dataset="bad_sample", steps=12, batch_size=16, ckpt_every=4, max_nonfinite=3
    )
    result = pretrain(run, tmp_path / "run", dataset=data, progress=False)
    # the bad sample is in one batch of each epoch
    assert result.step == 12 and result.skipped_steps == 3
    for path in list_checkpoints(tmp_path / "run"):
        state = torch.load(path, weights_only=True)["model"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), (
            path.name
        )
    assert torch.isfinite(state["projector.1.running_var"]).all()


# ---- every path form resumes ----


@pytest.mark.parametrize("kind", ["store", "npz"])
def test_every_form_of_the_dataset_path_resumes(tmp_path, kind):
    arrays(tmp_path / "raw")
    if kind == "store":
        assert (
            cli("convert", "npy", "--src", "raw", "--out", "store0", cwd=tmp_path).returncode == 0
        )
    name = "store0" if kind == "store" else "raw.npz"
    link = "link" if kind == "store" else "link.npz"
    (tmp_path / link).symlink_to(tmp_path / name)
    run = ["pretrain", "--out", "run", "--batch-size", "16", "--ckpt-every", "2", "--quiet"]
    done = cli(*run, "--dataset", name, "--steps", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    forms = [name, str(tmp_path / name), f"{name}/" if kind == "store" else f"./{name}", link]
    for steps, form in enumerate(forms, start=3):
        done = cli(*run, "--dataset", form, "--steps", steps, "--resume", cwd=tmp_path)
        assert done.returncode == 0 and json.loads(done.stdout)["step"] == steps, (
            form,
            done.stderr,
        )


# ---- a dead worker ----


def test_a_killed_data_worker_ends_the_run_in_one_line_and_resume_is_exact(tmp_path):
    arrays(tmp_path / "raw", n=2000)
    assert (
        cli("convert", "npy", "--src", tmp_path / "raw", "--out", tmp_path / "store").returncode
        == 0
    )
    run = [
        "pretrain",
        "--dataset",
        tmp_path / "store",
        "--batch-size",
        "16",
        "--ckpt-every",
        "5",
        "--steps",
        "60",
        "--data-workers",
        "2",
        "--quiet",
    ]
    assert cli(*run, "--out", tmp_path / "straight").returncode == 0
    proc = subprocess.Popen(
        [*CLI, *map(str, run), "--out", str(tmp_path / "killed")],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    deadline = time.time() + 300
    while not list_checkpoints(tmp_path / "killed") and time.time() < deadline:
        time.sleep(0.05)
    workers = subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
    ).stdout.split()
    assert workers, "no worker processes found"
    os.kill(int(workers[0]), signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    one_line(
        subprocess.CompletedProcess(proc.args, proc.returncode, "", err),
        5,
        "data worker died",
        workers[0],
        "--resume continues from it exactly",
    )
    # torch words it by the path that noticed: its SIGCHLD handler, or a timed-out wait for a batch
    assert "is killed by signal: Killed" in err or "exited unexpectedly" in err, err
    assert cli(*run, "--out", tmp_path / "killed", "--resume").returncode == 0
    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "killed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


# ---- messages that are true ----


def test_a_run_whose_only_checkpoint_does_not_load(tmp_path):
    assert (
        cli(
            "pretrain", "--out", tmp_path / "run", "--steps", "2", "--batch-size", "16", "--quiet"
        ).returncode
        == 0
    )
    (only,) = list_checkpoints(tmp_path / "run")
    only.write_bytes(only.read_bytes()[:1000])
    one_line(
        cli("probe", "--run", tmp_path / "run"), 2, "its only checkpoint does not load", "cut short"
    )


def test_a_run_that_stopped_before_its_first_checkpoint(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    args = [
        "pretrain",
        "--dataset",
        "basic_motions",
        "--out",
        tmp_path / "run",
        "--steps",
        "2",
        "--quiet",
    ]
    one_line(cli(*args), 2, "stopped before its first checkpoint", "--overwrite")
    done = cli(*args, "--resume")
    one_line(done, 2, "cannot resume", "stopped before its first checkpoint")
    assert "digits" not in done.stderr  # no claim of a dataset the run never had


def test_a_checkpoint_that_holds_code_is_refused_in_the_project_s_words(tmp_path):
    assert (
        cli(
            "pretrain", "--out", tmp_path / "run", "--steps", "2", "--batch-size", "16", "--quiet"
        ).returncode
        == 0
    )
    (only,) = list_checkpoints(tmp_path / "run")

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    state = torch.load(only, weights_only=True)
    torch.save({**state, "model": {**state["model"], "extra": Payload()}}, only)
    done = cli("probe", "--run", tmp_path / "run")
    one_line(done, 2, "it holds code (it asks for posix.system)", "nothing in it ran")
    assert "weights_only" not in done.stderr and not (tmp_path / "ran").exists()


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_convert_writes_its_store_whatever_standard_error_is(tmp_path, stderr):
    arrays(tmp_path / "raw")
    command = " ".join(
        [*CLI, "convert", "npy", "--src", str(tmp_path / "raw"), "--out", str(tmp_path / "store")]
    )
    done = subprocess.run(
        ["sh", "-c", f"{command} 2>&-" if stderr == "closed" else f"{command} 2>/dev/full"],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert done.returncode == 0 and done.stdout.strip() == str(tmp_path / "store"), done
    assert open_store(tmp_path / "store").num_classes == 3


# ---- patches that always make tokens ----


def test_a_prime_length_is_padded_to_one_a_patch_divides_and_the_padding_masked(tmp_path):
    parts = arrays(tmp_path / "raw", length=251)
    data = dataset_from_npz(tmp_path / "raw.npz")
    assert (data.spec.shape, data.spec.patch_size, data.spec.num_tokens) == ((2, 252), (4,), 63)
    assert data.padded_from == 251 and (data.lengths_train == 251).all()
    np.testing.assert_allclose(
        data.denormalize(data.x_train)[:, :, :251], parts["x_train"], rtol=1e-4, atol=1e-4
    )
    done = cli(
        "pretrain",
        "--dataset",
        tmp_path / "raw.npz",
        "--out",
        tmp_path / "run",
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--method",
        "mae",
    )
    assert done.returncode == 0 and "length 251 padded to 252, the padding masked" in done.stderr, (
        done.stderr
    )
    assert json.loads(done.stdout)["loss"] > 0 and json.loads(done.stdout)["grad_norm"] > 0


def test_one_token_per_sample_is_refused_before_training(tmp_path):
    arrays(tmp_path / "raw", length=40)
    one_line(
        cli(
            "pretrain",
            "--dataset",
            tmp_path / "raw.npz",
            "--out",
            tmp_path / "run",
            "--patch-size",
            "40",
            "--quiet",
        ),
        2,
        "makes 1 token of each sample",
        "at least 2",
    )
    assert not (tmp_path / "run").exists()


# ---- data named and fingerprinted by what it is ----


def test_a_store_of_your_arrays_is_named_by_its_folder_and_fingerprinted_like_the_npz(tmp_path):
    arrays(tmp_path / "raw")
    assert (
        cli(
            "convert", "npy", "--src", tmp_path / "raw", "--out", tmp_path / "my_signals"
        ).returncode
        == 0
    )
    store, npz = open_store(tmp_path / "my_signals"), dataset_from_npz(tmp_path / "raw.npz")
    assert store.name == "my_signals"
    assert data_fingerprint(store) == data_fingerprint(npz)
    assert data_fingerprint(
        dataset_from_npz(tmp_path / "raw.npz", patch_size=5)
    ) == data_fingerprint(npz)
    arrays(tmp_path / "other", seed=1)
    assert data_fingerprint(dataset_from_npz(tmp_path / "other.npz")) != data_fingerprint(npz)


def test_every_test_the_fault_tables_name_exists():
    """The fault page's tables name tests; each must be a test of tests/, so that no row outlives
    its test."""
    root = Path(__file__).resolve().parents[1]
    page = json.loads((root / "nbs" / "17_faults.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in page["cells"] if c["cell_type"] == "markdown")
    import re

    named = set(re.findall(r"`(test_\w+?)(?:…)?`", text))
    defined = " ".join(p.read_text() for p in (root / "tests").glob("test_*.py"))
    missing = [n for n in sorted(named) if f"def {n}" not in defined]
    assert len(named) > 40 and not missing, missing
