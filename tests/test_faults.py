"""Faults injected: every bad input of the catalogue, stop signals and SIGKILL during training,
non-finite losses, a long soak run, and random shapes into the model."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from bad_inputs import bad_input_cases, try_bad_input
from metamae_lab.checkpoint import list_checkpoints, load_checkpoint
from metamae_lab.config import ModalitySpec, RunConfig, TrainConfig, preset_config
from metamae_lab.faults import finite_checkpoints, inject_faults
from metamae_lab.model import MetaMAE
from metamae_lab.train import NonFiniteLossError, pretrain


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "metamae_lab.cli",
            "pretrain",
            "--steps",
            "100000",
            "--batch-size",
            "16",
            "--warmup-steps",
            "2",
            "--log-every",
            "5",
            "--ckpt-every",
            "100000",
            "--out",
            str(out),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.time() + 120
        while not (
            (out / "metrics.jsonl").exists()
            and (out / "metrics.jsonl").read_text().count("\n") >= 2
        ):
            assert time.time() < deadline and proc.poll() is None, "training did not start"
            time.sleep(0.2)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()  # never leave a 100000-step run behind
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted; stopped by signal" in stderr and "the last checkpoint is kept" in stderr, (
        stderr[-2000:]
    )
    assert "Traceback" not in stderr
    state = load_checkpoint(out)  # the checkpoint written on the way out, complete and loadable
    assert state["step"] >= 10 and f"checkpoint_{state['step']:08d}.pt" in stderr
    resumed = pretrain(None, out, resume=True, steps=state["step"] + 5, progress=False)
    assert resumed.step == state["step"] + 5


@pytest.mark.slow
def test_soak_2000_steps_memory_stays_flat_and_checkpoints_rotate(tmp_path):
    run = RunConfig(
        dataset="digits",
        model=preset_config("tiny", method="metamae", mask_ratio=0.75),
        train=TrainConfig(
            steps=2000,
            batch_size=16,
            lr=1e-3,
            warmup_steps=50,
            log_every=50,
            ckpt_every=100,
            keep_last=2,
        ),
    )
    pretrain(run, tmp_path / "soak", progress=False)
    rss = [
        json.loads(line)["rss_mb"]
        for line in (tmp_path / "soak" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(rss) == 40
    after_warmup = rss[4:]  # from step 250 on
    assert max(after_warmup) - after_warmup[0] < 50, rss  # MB: no growth beyond a small bound
    assert [p.name for p in list_checkpoints(tmp_path / "soak")] == [
        "checkpoint_00001900.pt",
        "checkpoint_00002000.pt",
    ]
    assert not list((tmp_path / "soak").glob(".*.tmp"))  # no temporary files left behind


KINDS = st.sampled_from(["image", "sequence", "tabular", "tokens"])


def expected_refusal(
    kind, spec_shape, batch_channels, batch_size, mask_ratio, inner_steps, x, vocab
) -> str | None:
    """The message the first rule the request breaks must give, in the order the forward checks
    them; None if none."""
    if not 0 < mask_ratio < 1:
        return "mask_ratio must lie in (0, 1)"
    if inner_steps < 1:
        return "inner_steps must be a positive integer"
    if batch_size == 0:
        return "the batch is empty"
    if kind in ("image", "sequence") and batch_channels != spec_shape[0]:
        return f"expected {spec_shape[0]} channels"
    if tuple(x.shape[1:]) != spec_shape:
        return f"expected samples of shape {spec_shape}"
    if kind == "tokens" and ((x < 0) | (x >= vocab)).any():
        return f"token ids must lie in [0, {vocab})"
    return None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=KINDS,
    channels=st.integers(1, 3),
    size=st.integers(1, 12),
    patch=st.integers(1, 6),
    batch_channels=st.integers(1, 3),
    batch_size=st.integers(0, 3),
    mask_ratio=st.floats(-0.5, 1.5),
    inner_steps=st.integers(-1, 2),
    vocab=st.integers(2, 6),
    id_shift=st.integers(-1, 1),
    batch_size_delta=st.integers(-1, 1),
)
def test_model_runs_or_raises_a_clear_error(
    kind,
    channels,
    size,
    patch,
    batch_channels,
    batch_size,
    mask_ratio,
    inner_steps,
    vocab,
    id_shift,
    batch_size_delta,
):
    """Random kinds, shapes, patch sizes, mask ratios, K, vocabularies and token ids: either a
    forward and backward pass with a finite loss, or a ValueError with the message of the first rule
    the request breaks."""
    shape = {"image": (channels, size, size), "sequence": (channels, size)}.get(kind, (size,))
    patch = 1 if kind == "tokens" else patch
    if size % patch:
        with pytest.raises(
            ValueError, match=f"patch size {patch} does not divide the input size {size}"
        ):
            ModalitySpec(kind, shape, patch, vocab_size=vocab if kind == "tokens" else 0)
        return
    spec = ModalitySpec(kind, shape, patch, vocab_size=vocab if kind == "tokens" else 0)
    model = MetaMAE(spec, preset_config("tiny", dropout=0.0))
    if kind == "tokens":  # ids from -1 to vocab: some batches hold an id out of range
        x = torch.randint(0, vocab, (batch_size, size)) + (id_shift if batch_size else 0)
    elif kind == "tabular":  # a feature count off by one now and then
        x = torch.randn(batch_size, max(1, size + batch_size_delta))
    else:
        x = torch.randn(batch_size, batch_channels, *shape[1:])
    expected = expected_refusal(
        kind, shape, batch_channels, batch_size, mask_ratio, inner_steps, x, vocab
    )
    if expected is not None:
        with pytest.raises(ValueError) as refused:
            model(x, mask_ratio=mask_ratio, inner_steps=inner_steps)
        assert expected in str(refused.value), (expected, str(refused.value))
        return
    out = model(x, mask_ratio=mask_ratio, inner_steps=inner_steps)
    assert torch.isfinite(out.loss)
    out.loss.backward()


# ---- SIGKILL at random points, a checkpoint write included, then --resume ----

KILL_RUN = [
    "--steps",
    "600",
    "--batch-size",
    "16",
    "--log-every",
    "5",
    "--ckpt-every",
    "1",
    "--keep-last",
    "2",
    "--quiet",
]
# one thread: the killed and the straight runs add in the same order
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _cli(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "metamae_lab.cli", "pretrain", *map(str, args)],
        env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _latest_step(run_dir) -> int:
    found = list_checkpoints(run_dir)
    return int(found[-1].stem.split("_")[1]) if found else 0


def _kill_when(proc, run_dir, after_step: int, during_write: bool, delay: float) -> str:
    """SIGKILL `proc` once it has checkpointed past `after_step`: `delay` s later, or as soon as a
    checkpoint write is seen."""
    deadline = time.time() + 120
    while _latest_step(run_dir) <= after_step:
        if proc.poll() is not None:
            return "finished"
        assert time.time() < deadline, "training made no progress"
        time.sleep(0.01)
    if during_write:
        while not any(p.name.startswith(".checkpoint_") for p in os.scandir(run_dir)):
            if proc.poll() is not None:
                return "finished"
    else:
        time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return "killed"


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_loses_nothing(tmp_path):
    import random

    straight, killed = tmp_path / "straight", tmp_path / "killed"
    ref = _cli(*KILL_RUN, "--out", straight)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    rng = random.Random(7)
    plan = [(False, rng.uniform(0.05, 0.8)) for _ in range(3)] + [
        (True, 0.0)
    ] * 3  # 3 at random times, 3 during writes
    outcomes, cut_writes = [], 0
    for i, (during_write, delay) in enumerate(plan):
        start = _latest_step(killed)
        proc = (
            _cli(*KILL_RUN, "--out", killed)
            if i == 0
            else _cli("--out", killed, "--resume", "--quiet")
        )
        outcomes.append(_kill_when(proc, killed, start, during_write, delay))
        cut_writes += any(p.name.startswith(".checkpoint_") for p in killed.iterdir())
        # whatever the kill cut short, every complete checkpoint loads
        for path in list_checkpoints(killed):
            state = load_checkpoint(path)
            assert state["step"] == int(path.stem.split("_")[1])
            assert all(torch.isfinite(w).all() for w in state["model"].values())
    assert outcomes.count("killed") >= 5, outcomes
    assert cut_writes >= 1, "no kill landed inside a checkpoint write"
    proc = _cli("--out", killed, "--resume", "--quiet")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    # the cut writes were cleared on resume
    assert not [p for p in killed.iterdir() if p.name.endswith(".tmp")]
    a, b = load_checkpoint(straight), load_checkpoint(killed)
    assert a["step"] == b["step"] == 600
    # nothing lost: bit for bit the weights of the run that was never killed
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    keys = ("step", "loss", "recon_loss", "contrastive_loss", "grad_norm", "lr")

    def lines(d):
        return [
            {k: m[k] for k in keys}
            for m in map(json.loads, (d / "metrics.jsonl").read_text().splitlines())
        ]

    assert lines(straight) == lines(killed)


# ---- non-finite losses and gradients ----


def _nan_run(**train):
    return RunConfig(
        dataset="digits",
        model=preset_config("tiny", mask_ratio=0.75),
        train=TrainConfig(
            **{
                "steps": 20,
                "batch_size": 16,
                "lr": 1e-3,
                "warmup_steps": 2,
                "log_every": 5,
                "ckpt_every": 5,
                **train,
            }
        ),
    )


@pytest.mark.parametrize("fault", ["nan", "inf", "nan_grad"])
def test_an_isolated_non_finite_step_is_skipped_and_counted(tmp_path, capsys, fault):
    with inject_faults({3: fault, 4: fault, 11: fault}):
        result = pretrain(_nan_run(), tmp_path / "r", progress=False)
    assert result.step == 20 and result.skipped_steps == 3
    logged = [
        json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [m["skipped_steps"] for m in logged] == [2, 2, 3, 3]
    assert all(math.isfinite(m["loss"]) for m in logged)
    assert finite_checkpoints(tmp_path / "r")
    assert "step 3: non-finite" in capsys.readouterr().err


def test_non_finite_steps_in_a_row_stop_the_run_and_keep_the_last_good_checkpoint(tmp_path):
    with (
        inject_faults(from_step=12, from_fault="inf"),
        pytest.raises(
            NonFiniteLossError, match=r"3 non-finite losses or gradients in a row \(steps 12 to 14"
        ),
    ):
        pretrain(_nan_run(max_nonfinite=3), tmp_path / "r", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")][-1] == "checkpoint_00000010.pt"
    assert finite_checkpoints(tmp_path / "r")
    # the fault is gone: the run resumes from the last good checkpoint
    assert pretrain(None, tmp_path / "r", resume=True, progress=False).step == 20


def test_nan_weights_are_never_written_into_a_checkpoint(tmp_path):
    # the weights turn NaN, then Ctrl-C asks for a checkpoint
    with (
        inject_faults({7: "nan_weights", 8: "interrupt"}),
        pytest.raises(
            NonFiniteLossError,
            match="no checkpoint written; the last good one is .*checkpoint_00000005.pt",
        ),
    ):
        pretrain(_nan_run(), tmp_path / "r", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == [
        "checkpoint_00000005.pt"
    ] and finite_checkpoints(tmp_path / "r")


def test_the_cli_reports_a_diverged_run_in_one_line_with_exit_code_3(tmp_path, capsys):
    from metamae_lab.cli import main

    with inject_faults(from_step=1, from_fault="nan"):
        code = main(
            [
                "pretrain",
                "--steps",
                "10",
                "--batch-size",
                "16",
                "--max-nonfinite",
                "2",
                "--out",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        code == 3
        and err[-1].startswith("metamae-lab: diverged: 2 non-finite losses")
        and "Traceback" not in "".join(err)
    )
    assert (
        "No checkpoint was written yet" in err[-1]
        and "--overwrite" in err[-1]
        and not list_checkpoints(tmp_path / "r")
    )


# ---- the catalogue of bad input (tests/bad_inputs.py, shown on nbs/17_faults.ipynb), one test per
# row ----

CASES = bad_input_cases()


@pytest.mark.parametrize(
    "case", CASES, ids=[f"{c.entry_point}: {c.fault}: {c.tried}" for c in CASES]
)
def test_bad_input_is_refused_clearly(case, scratch):
    outcome = try_bad_input(case, scratch)
    assert outcome.ok, (
        f"{case.entry_point} / {case.fault}: {outcome.outcome} (expected {case.expect!r})"
    )
    # nothing ran, nothing written
    assert not scratch.path("code_ran").exists() and not scratch.path("figures").exists()
