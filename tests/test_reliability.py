"""Reliability, row by row of what a new user tried: an exact resume after a stop signal,
checkpoints and data that belong to their run, and one clear line (with a documented exit code) for
every operating-system fault."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from metamae_lab.checkpoint import list_checkpoints, load_checkpoint
from metamae_lab.config import run_config
from metamae_lab.faults import inject_faults
from metamae_lab.train import pretrain

# one thread: a stopped and a straight run add in the same order
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
CLI = [sys.executable, "-m", "metamae_lab.cli"]


def cli_process(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=600, **kwargs
    )


def one_line(done, code: int, *fragments):
    err = done.stderr.strip()
    assert done.returncode == code, (done.returncode, err[-2000:])
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment.lower() in err.lower(), err


def metrics(run_dir):
    keys = ("step", "loss", "recon_loss", "contrastive_loss", "grad_norm", "lr")
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: m[k] for k in keys} for m in map(json.loads, lines)]


# ---- 1: a stop signal, then --resume, is the run never stopped ----

RUN = [
    "pretrain",
    "--steps",
    "40",
    "--batch-size",
    "16",
    "--log-every",
    "1",
    "--ckpt-every",
    "1000",
    "--quiet",
]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_then_resume_equals_the_run_never_stopped(tmp_path, sig):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli_process(*RUN, "--out", straight).returncode == 0
    at = random.Random(int(sig)).randint(5, 30)  # a seeded random step
    proc = subprocess.Popen(
        [*CLI, *RUN, "--out", str(stopped)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not ((stopped / "metrics.jsonl").exists() and len(metrics(stopped)) >= at):
            assert proc.poll() is None and time.time() < deadline, "the run did not reach the step"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "the last checkpoint is kept" in err, err
    step = load_checkpoint(stopped)["step"]
    # the step in progress finished and was checkpointed
    assert at <= step < 40 and len(metrics(stopped)) == step
    assert cli_process("pretrain", "--out", stopped, "--resume", "--quiet").returncode == 0
    assert metrics(stopped) == metrics(straight)  # every later step's losses, gradient norm and lr
    a, b = load_checkpoint(straight)["model"], load_checkpoint(stopped)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- 2, 3, 15: a run directory knows what it is ----


def small(dataset="digits", preset="tiny", **kw):
    return run_config(
        preset,
        dataset=dataset,
        **{"steps": 4, "batch_size": 16, "log_every": 2, "ckpt_every": 2, **kw},
    )


def test_a_checkpoint_of_another_run_is_refused_by_resume_probe_and_views(tmp_path, cli):
    pretrain(small(), tmp_path / "mine", progress=False)
    pretrain(
        small("breast_cancer", preset="dabs", method="mae"), tmp_path / "other", progress=False
    )
    recorded = (tmp_path / "mine" / "run_config.json").read_text()
    foreign = list_checkpoints(tmp_path / "other")[-1]
    shutil.copy(foreign, tmp_path / "mine" / "checkpoint_00000009.pt")  # newer than the run's own
    for argv in (
        ["pretrain", "--out", tmp_path / "mine", "--resume", "--steps", 12, "--quiet"],
        ["probe", "--run", tmp_path / "mine"],
    ):
        code, _, err = cli(*argv)
        assert (
            code == 2
            and "does not belong to the run" in err
            and "dataset: 'breast_cancer' in the checkpoint" in err
        )
        assert "method: 'mae' in the checkpoint, 'metamae' in run_config.json" in err, err
    from metamae_lab.views import ReconstructionExplorer

    with pytest.raises(ValueError, match="does not belong to the run"):
        ReconstructionExplorer(tmp_path / "mine")
    assert (tmp_path / "mine" / "run_config.json").read_text() == recorded  # never rewritten


def test_other_data_under_the_run_s_file_is_refused(tmp_path, cli):
    rng = np.random.default_rng(0)
    path = tmp_path / "signals.npz"
    np.savez(path, x=rng.normal(size=(40, 2, 20)).astype(np.float32), y=np.arange(40) % 2)
    pretrain(small(str(path)), tmp_path / "run", progress=False)
    # same shape, other data
    np.savez(path, x=rng.normal(size=(40, 2, 20)).astype(np.float32), y=np.arange(40) % 2)
    code, _, err = cli("probe", "--run", tmp_path / "run")
    assert code == 2 and "changed since the run started" in err, err
    code, _, err = cli("pretrain", "--out", tmp_path / "run", "--resume", "--steps", 8, "--quiet")
    assert code == 2 and "changed since the run started" in err, err


def test_a_relative_dataset_path_is_stored_absolute(tmp_path, monkeypatch, cli):
    (tmp_path / "a").mkdir()
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "a" / "mine.npz",
        x=rng.normal(size=(40, 2, 20)).astype(np.float32),
        y=np.arange(40) % 2,
    )
    monkeypatch.chdir(tmp_path / "a")
    code, _, err = cli(
        "pretrain",
        "--dataset",
        "mine.npz",
        "--steps",
        2,
        "--batch-size",
        8,
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "run_config.json").read_text())["dataset"] == str(
        tmp_path / "a" / "mine.npz"
    )
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("probe", "--run", tmp_path / "r")
    assert code == 0, err


# ---- 7, 8: damaged checkpoints ----


def test_a_cut_latest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path, cli):
    pretrain(small(), tmp_path / "r", progress=False)
    latest = list_checkpoints(tmp_path / "r")[-1]
    latest.write_bytes(latest.read_bytes()[:500])
    code, out, err = cli("pretrain", "--out", tmp_path / "r", "--resume", "--steps", 6, "--quiet")
    assert code == 0 and json.loads(out)["step"] == 6, err
    assert (
        "checkpoint_00000004.pt cannot be loaded" in err and "using checkpoint_00000002.pt" in err
    )
    zero = tmp_path / "zero"
    zero.mkdir()
    (zero / "checkpoint_00000001.pt").write_bytes(b"")
    code, _, err = cli("probe", "--run", zero)
    assert (
        code == 2
        and err.count("\n") == 1
        and "cannot load checkpoint" in err
        and "Traceback" not in err
    ), err


# ---- 4, 5, 6, 10: the operating system refuses ----


def in_namespace(script: str) -> subprocess.CompletedProcess:
    "Run a shell `script` as root of a private mount namespace (its mounts vanish with it)."
    if (
        shutil.which("unshare") is None
        or subprocess.run(["unshare", "-rm", "true"]).returncode != 0
    ):
        from conftest import require

        require(False, "unshare -rm (a private mount namespace for the file-system fault tests)")
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=ENV, timeout=600
    )


def test_out_on_a_read_only_file_system(tmp_path):
    done = in_namespace(
        f"mkdir -p {tmp_path}/ro && mount -t tmpfs -o ro tmpfs {tmp_path}/ro && "
        f"{' '.join(CLI)} pretrain --steps 2 --out {tmp_path}/ro/run --quiet"
    )
    one_line(done, 4, "system error", f"{tmp_path}/ro", "read-only file system")


def test_a_full_disk_during_a_checkpoint_write_leaves_nothing_behind(tmp_path):
    done = in_namespace(
        f"mkdir -p {tmp_path}/small && mount -t tmpfs -o size=400k tmpfs {tmp_path}/small && "
        f"{' '.join(CLI)} pretrain --steps 4 --batch-size 16 --out {tmp_path}/small/run --quiet; "
        f"code=$?; ls -a {tmp_path}/small/run >&2; exit $code"
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 4, done.stderr
    error = [line for line in lines if line.startswith("metamae-lab")]
    assert (
        len(error) == 1 and "checkpoint_" in error[0] and "No space left on device" in error[0]
    ), lines
    assert not [line for line in lines if line.endswith(".tmp")], lines  # no temporary file left


def test_out_under_a_file_and_without_permission(tmp_path, cli, monkeypatch):
    (tmp_path / "afile").write_text("x")
    one_line(
        cli_process("pretrain", "--steps", 2, "--out", tmp_path / "afile" / "run", "--quiet"),
        2,
        str(tmp_path / "afile"),
        "a file is where a directory is needed",
    )
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    request = ("pretrain", "--steps", "2", "--out", str(locked / "run"), "--quiet")
    if os.getuid() != 0:  # an ordinary user cannot write into a read-only directory
        locked.chmod(0o555)
        return one_line(cli_process(*request), 4, str(locked), "permission denied")
    # root writes anywhere: ask as nobody, where nobody can read this checkout and its environment
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    nobody_env = {**ENV, "HOME": str(tmp_path)}
    if (
        shutil.which("setpriv")
        and subprocess.run(
            [*as_nobody, *CLI, "--help"], capture_output=True, env=nobody_env, timeout=120
        ).returncode
        == 0
    ):
        done = subprocess.run(
            [*as_nobody, *CLI, *request],
            capture_output=True,
            text=True,
            env=nobody_env,
            timeout=600,
        )
        return one_line(done, 4, str(locked), "permission denied")
    # else (a checkout in a private folder) the operating system's refusal is given to root's own
    # request
    make_dir = Path.mkdir

    def refused_under_locked(path, *args, **kwargs):
        if path == locked or locked in path.parents:
            raise PermissionError(13, "Permission denied", str(path))
        return make_dir(path, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refused_under_locked)
    code, _, err = cli(*request)
    one_line(subprocess.CompletedProcess([], code, "", err), 4, str(locked), "permission denied")


def test_full_and_closed_standard_output():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*CLI, "datasets"], stdout=full, stderr=subprocess.PIPE, text=True, env=ENV, timeout=120
        )
    one_line(done, 4, "cannot write standard output", "No space left on device")
    proc = subprocess.Popen(
        [*CLI, "datasets"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    proc.stdout.close()  # the reader is gone before anything is written, as `| head -0` would be
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 4 and err.count("\n") == 1 and "Broken pipe" in err, err


# ---- 9, 11, 12, 13, 14, 16: requests refused before any work, with a line that says what works
# ----


def test_devices_this_machine_does_not_have(tmp_path, cli):
    for device in (["cuda"] if not torch.cuda.is_available() else []) + ["tpu"]:
        code, _, err = cli(
            "pretrain", "--device", device, "--steps", 2, "--out", tmp_path / device, "--quiet"
        )
        assert code == 2 and f"device '{device}'" in err and err.count("\n") == 1, err
    from metamae_lab.runtime import resolve_device

    with pytest.raises(ValueError, match="device 'tpu'"):
        resolve_device("tpu")


def test_an_absurd_vocabulary_is_refused_before_it_is_allocated(tmp_path, cli):
    ids = np.random.default_rng(0).integers(0, 20, size=(40, 12))
    ids[3, 4] = 2_000_000_000
    np.savez(tmp_path / "tokens.npz", x=ids)
    code, _, err = cli(
        "pretrain", "--dataset", tmp_path / "tokens.npz", "--out", tmp_path / "r", "--quiet"
    )
    assert code == 2 and "the largest token id is 2000000000" in err and "vocab_size" in err, err
    code, _, err = cli(
        "pretrain",
        "--dataset",
        tmp_path / "tokens.npz",
        "--vocab-size",
        "64",
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert code == 2 and "token ids must lie in [0, vocab_size=64)" in err, err


def test_resume_with_fewer_steps_or_none_left(tmp_path, cli):
    pretrain(small(), tmp_path / "r", progress=False)
    code, _, err = cli("pretrain", "--out", tmp_path / "r", "--resume", "--steps", 2, "--quiet")
    assert code == 2 and "--steps 2 is below the step the run reached (4)" in err, err
    code, out, err = cli("pretrain", "--out", tmp_path / "r", "--resume", "--quiet")
    assert code == 0 and "already finished (step 4 of 4)" in err and json.loads(out)["step"] == 4, (
        err
    )


def test_settings_that_make_no_sense_and_directories_that_are_not_runs(tmp_path, cli):
    code, _, err = cli("pretrain", "--inner-lr", "-1", "--out", tmp_path / "a", "--quiet")
    assert code == 2 and "inner_lr must be > 0" in err, err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.tex").write_text("precious")
    code, _, err = cli("pretrain", "--steps", 2, "--out", tmp_path / "notes", "--quiet")
    assert code == 2 and "holds files that are not a run (thesis.tex)" in err, err
    # nothing written among them
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["thesis.tex"]
    half = np.random.default_rng(0).normal(size=(40, 2, 20)).astype(np.float16)
    np.savez(tmp_path / "half.npz", x=half, y=np.arange(40) % 2)
    code, out, err = cli(
        "pretrain",
        "--dataset",
        tmp_path / "half.npz",
        "--steps",
        2,
        "--batch-size",
        8,
        "--out",
        tmp_path / "h",
        "--quiet",
    )
    assert code == 0, err  # float16 data is read as float32
    model = MetaMAE_from(tmp_path / "h")
    assert model(
        torch.as_tensor(half[:4])
    ).loss.isfinite()  # and a float16 batch meets float32 weights


def MetaMAE_from(run_dir):
    from metamae_lab.checkpoint import load_model

    return load_model(run_dir)[0]


def test_the_same_command_line_with_resume_appended(tmp_path, cli):
    argv = [
        "pretrain",
        "--dataset",
        "digits",
        "--steps",
        4,
        "--batch-size",
        16,
        "--lr",
        "0.001",
        "--out",
        tmp_path / "r",
        "--quiet",
    ]
    assert cli(*argv)[0] == 0
    code, out, err = cli(*argv[:3], "--steps", 6, *argv[5:], "--resume")
    assert code == 0 and json.loads(out)["step"] == 6, err
    code, _, err = cli(*argv, "--resume", "--lr", "0.01")
    assert code == 2 and "lr: 0.01 given, 0.001 in the run" in err, err


def test_the_divergence_advice_names_what_works(tmp_path):
    from metamae_lab.train import NonFiniteLossError

    with inject_faults(from_step=3, from_fault="nan"), pytest.raises(NonFiniteLossError) as stopped:
        pretrain(small(steps=10, max_nonfinite=2), tmp_path / "r", progress=False)
    assert "--resume continues from it with the same settings" in str(stopped.value)
    assert "start again with --overwrite" in str(stopped.value)


def test_no_scheduler_warning_when_the_first_step_was_skipped(tmp_path):
    with inject_faults({1: "nan"}):
        pretrain(small(steps=2), tmp_path / "r", progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pretrain(None, tmp_path / "r", resume=True, steps=4, progress=False)
    assert not [w for w in caught if "lr_scheduler.step" in str(w.message)], [
        str(w.message) for w in caught
    ]
