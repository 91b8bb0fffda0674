"""Faults injected from outside: stop signals during training, a long soak run, and random shapes into the model."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from metamae_lab.config import ModalitySpec, preset_config
from metamae_lab.model import MetaMAE
from metamae_lab.train import RunConfig, TrainConfig, list_checkpoints, load_checkpoint, pretrain


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "metamae_lab.cli", "pretrain", "--steps", "100000", "--batch-size", "16",
                             "--log-every", "5", "--ckpt-every", "100000", "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not ((out / "metrics.jsonl").exists() and (out / "metrics.jsonl").read_text().count("\n") >= 2):
            assert time.time() < deadline and proc.poll() is None, "training did not start"
            time.sleep(0.2)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None: proc.kill()  # never leave a 100000-step run behind
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted; the last checkpoint is kept" in stderr and "Traceback" not in stderr
    state = load_checkpoint(out)  # the checkpoint written on the way out, complete and loadable
    assert state["step"] >= 10
    resumed = pretrain(None, out, resume=True, steps=state["step"] + 5, progress=False)
    assert resumed.step == state["step"] + 5


@pytest.mark.slow
def test_soak_2000_steps_memory_stays_flat_and_checkpoints_rotate(tmp_path):
    run = RunConfig(dataset="digits", model=preset_config("tiny", method="metamae", mask_ratio=0.75),
                    train=TrainConfig(steps=2000, batch_size=16, lr=1e-3, warmup_steps=50, log_every=50, ckpt_every=100,
                                      keep_last=2))
    pretrain(run, tmp_path / "soak", progress=False)
    rss = [json.loads(line)["rss_mb"] for line in (tmp_path / "soak" / "metrics.jsonl").read_text().splitlines()]
    assert len(rss) == 40
    after_warmup = rss[4:]  # from step 250 on
    assert max(after_warmup) - after_warmup[0] < 50, rss  # MB: no growth beyond a small bound
    assert [p.name for p in list_checkpoints(tmp_path / "soak")] == ["checkpoint_00001900.pt", "checkpoint_00002000.pt"]
    assert not list((tmp_path / "soak").glob(".*.tmp"))  # no temporary files left behind


KINDS = st.sampled_from(["image", "sequence"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=KINDS, channels=st.integers(1, 3), size=st.integers(1, 12), patch=st.integers(1, 6),
       batch_channels=st.integers(1, 3), batch_size=st.integers(0, 3), mask_ratio=st.floats(-0.5, 1.5),
       inner_steps=st.integers(-1, 2))
def test_model_runs_or_raises_a_clear_error(kind, channels, size, patch, batch_channels, batch_size, mask_ratio,
                                            inner_steps):
    "Random shapes, patch sizes, mask ratios and K: either a forward and backward pass, or a ValueError/TypeError."
    shape = (channels, size, size) if kind == "image" else (channels, size)
    try:
        spec = ModalitySpec(kind, shape, patch)
    except ValueError as e:
        assert "patch size" in str(e) or "patch_size" in str(e)
        return
    model = MetaMAE(spec, preset_config("tiny", dropout=0.0))
    x = torch.randn(batch_size, batch_channels, *shape[1:])
    try:
        out = model(x, mask_ratio=mask_ratio, inner_steps=inner_steps)
    except (ValueError, TypeError) as e:
        message = str(e)
        assert any(word in message for word in ("channels", "empty", "mask_ratio", "inner steps", "tokens")), message
        return
    assert torch.isfinite(out.loss)
    out.loss.backward()
