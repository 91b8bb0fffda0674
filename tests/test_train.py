"Training loop, checkpoints and resume."

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from metamae_lab.checkpoint import CheckpointError, list_checkpoints, load_checkpoint, load_model
from metamae_lab.config import ModalitySpec, RunConfig, TrainConfig, preset_config
from metamae_lab.model import MetaMAE
from metamae_lab.train import compile_forward, pretrain


def small_run(method="metamae", steps=40, **train):
    return RunConfig(
        dataset="digits",
        model=preset_config("tiny", method=method, mask_ratio=0.75),
        train=TrainConfig(
            **{
                "steps": steps,
                "batch_size": 32,
                "lr": 1e-3,
                "warmup_steps": min(5, steps),
                "log_every": 5,
                "ckpt_every": 10,
                **train,
            }
        ),
    )


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["mae", "metamae"])
def test_resume_equals_uninterrupted(tmp_path, method):
    run = small_run(method)
    pretrain(run, tmp_path / "straight", progress=False)
    # stops between checkpoints: step 17 saved
    pretrain(run, tmp_path / "resumed", progress=False, stop_after=17)
    assert load_checkpoint(tmp_path / "resumed")["step"] == 17
    pretrain(None, tmp_path / "resumed", resume=True, progress=False)
    a, b = metrics(tmp_path / "straight"), metrics(tmp_path / "resumed")
    assert [m["step"] for m in b] == [m["step"] for m in a] == list(range(5, 41, 5))
    for ma, mb in zip(a, b):
        for key in ("loss", "recon_loss", "contrastive_loss", "grad_norm", "lr"):
            assert ma[key] == mb[key], (ma["step"], key, ma[key], mb[key])
    wa = load_checkpoint(tmp_path / "straight")["model"]
    wb = load_checkpoint(tmp_path / "resumed")["model"]
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_resume_can_extend_and_refuses_overwrite(tmp_path):
    run = small_run(steps=10)
    pretrain(run, tmp_path / "r", progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        pretrain(run, tmp_path / "r", progress=False)
    result = pretrain(None, tmp_path / "r", resume=True, steps=20, progress=False)
    assert (
        result.step == 20 and load_checkpoint(tmp_path / "r")["run_config"]["train"]["steps"] == 20
    )
    pretrain(small_run(steps=5), tmp_path / "r", overwrite=True, progress=False)
    assert [m["step"] for m in metrics(tmp_path / "r")] == [5]
    with pytest.raises(CheckpointError, match="no checkpoint"):
        pretrain(None, tmp_path / "empty", resume=True, progress=False)


def test_checkpoint_holds_everything_and_rotates(tmp_path):
    run = small_run(steps=30, keep_last=2)
    pretrain(run, tmp_path / "r", progress=False)
    assert [p.name for p in list_checkpoints(tmp_path / "r")] == [
        "checkpoint_00000020.pt",
        "checkpoint_00000030.pt",
    ]
    state = load_checkpoint(tmp_path / "r")
    assert {"run_config", "spec", "model", "optimizer", "scheduler", "rng", "step"} <= set(state)
    assert any(k.startswith("decoder.") for k in state["model"]) and any(
        k.startswith("projector.") for k in state["model"]
    )
    model, loaded, _ = load_model(tmp_path / "r")
    assert (loaded.model, loaded.train, model.cfg) == (run.model, run.train, run.model)
    # resolved and recorded
    assert (loaded.kind, loaded.patch_size, loaded.dataset) == ("image", (2, 2), "digits")


def test_unsafe_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "run"
    bad.mkdir()
    with open(bad / "checkpoint_00000001.pt", "wb") as f:
        pickle.dump({"step": 1, "model": Exploit()}, f)
    with pytest.raises(CheckpointError, match="safely"):
        load_checkpoint(bad)
    assert not marker.exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = small_run(steps=10)
    pretrain(run, tmp_path / "r", progress=False)
    path = list_checkpoints(tmp_path / "r")[-1]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint(path)


WRITER = textwrap.dedent("""
    import sys, torch
    from metamae_lab.checkpoint import list_checkpoints, save_checkpoint
    run_dir = sys.argv[1]
    # 16 MB: a write takes long enough to be interrupted
    big = torch.arange(4_000_000, dtype=torch.float32)
    found = list_checkpoints(run_dir)
    step = int(found[-1].stem.split("_")[1]) if found else 0
    while True:
        step += 1
        state = {"step": step, "run_config": {}, "spec": {}, "model": {"w": big + step}}
        save_checkpoint(run_dir, state, keep_last=2)
        print(step, flush=True)
""")


def test_kill_during_checkpoint_write_leaves_previous_intact(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    run_dir = tmp_path / "ckpts"
    for delay in (0.03, 0.11, 0.23):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(run_dir)], stdout=subprocess.PIPE, text=True
        )
        proc.stdout.readline()  # one checkpoint is complete; the next write is under way
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        found = list_checkpoints(run_dir)
        assert found, "no checkpoint was completed before the kill"
        for path in found:  # every complete checkpoint loads, whatever the kill interrupted
            state = load_checkpoint(path)
            w, step = state["model"]["w"], state["step"]
            assert int(path.stem.split("_")[1]) == step
            assert w.numel() == 4_000_000 and w[0] == step and w[-1] == 3_999_999 + step
    leftovers = [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    assert all(not p.name.startswith("checkpoint_") for p in leftovers)


def test_batch_larger_than_dataset_is_refused(tmp_path):
    with pytest.raises(ValueError, match="larger than the training split"):
        pretrain(small_run(steps=2, batch_size=100_000), tmp_path / "r", progress=False)


def test_bf16_precision_trains_on_cpu_and_is_recorded(tmp_path):
    """precision='bf16' runs the CPU step under bf16 autocast, second order included, and resumes
    with the same setting."""
    run = small_run("metamae", steps=12, precision="bf16")
    result = pretrain(run, tmp_path / "bf16", progress=False, stop_after=6)
    assert result.step == 6
    pretrain(None, tmp_path / "bf16", resume=True, progress=False)
    state = load_checkpoint(tmp_path / "bf16")
    assert (
        state["step"] == 12 and RunConfig.from_dict(state["run_config"]).train.precision == "bf16"
    )
    assert all(torch.isfinite(m).all() for m in state["model"].values() if m.is_floating_point())
    pretrain(small_run("metamae", steps=12), tmp_path / "fp32", progress=False)
    # it did change the arithmetic
    assert metrics(tmp_path / "bf16")[-1]["loss"] != metrics(tmp_path / "fp32")[-1]["loss"]
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp16")


@pytest.mark.slow
def test_compiled_encoder_trains_like_the_eager_one(tmp_path):
    """torch.compile on the encoder: same losses (dropout off), same checkpoint keys, second order
    intact."""
    model = dict(method="metamae", mask_ratio=0.75, dropout=0.0)
    train = dict(steps=3, batch_size=32, lr=1e-3, warmup_steps=1, log_every=1)
    runs = {
        c: RunConfig(
            dataset="digits",
            model=preset_config("tiny", **model),
            train=TrainConfig(**train, compile_encoder=c),
        )
        for c in (False, True)
    }
    for c, run in runs.items():
        pretrain(run, tmp_path / str(c), progress=False)
    eager, compiled = metrics(tmp_path / "False"), metrics(tmp_path / "True")
    assert len(eager) == len(compiled) == 3
    for a, b in zip(eager, compiled):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
    assert (
        load_checkpoint(tmp_path / "True")["model"].keys()
        == load_checkpoint(tmp_path / "False")["model"].keys()
    )


@pytest.mark.slow
def test_a_compiled_forward_run_repeats_itself_and_keeps_the_checkpoint_keys(tmp_path):
    """--compile-forward draws its masks from the compiler's generator (seeded from torch's): two
    runs of one seed log the same losses, which fall, and checkpoints keep the eager names."""
    model = preset_config("tiny", method="metamae", mask_ratio=0.75)
    train = dict(steps=6, batch_size=32, lr=1e-3, warmup_steps=1, log_every=1)
    for name, compiled in (("eager", False), ("a", True), ("b", True)):
        run = RunConfig(
            dataset="digits", model=model, train=TrainConfig(**train, compile_forward=compiled)
        )
        pretrain(run, tmp_path / name, progress=False)
    a, b = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    assert [m["loss"] for m in a] == [m["loss"] for m in b]
    assert a[-1]["loss"] < a[0]["loss"]
    assert (
        load_checkpoint(tmp_path / "a")["model"].keys()
        == load_checkpoint(tmp_path / "eager")["model"].keys()
    )


@pytest.mark.slow
@pytest.mark.parametrize("first_order", [False, True])
def test_compiled_forward_gives_the_eager_loss_and_gradients_given_the_masks(first_order):
    """Dropout off and the masks drawn from a generator given to both (float64): the compiled
    forward's loss and every parameter's gradient are the eager forward's, to rounding, in one
    graph (a first-order loop too: its gradient written out, not `torch.autograd.grad`)."""
    spec = ModalitySpec("sequence", (3, 40), 4)
    torch.manual_seed(0)
    cfg = preset_config("tiny", dropout=0.0, inner_steps=2, first_order=first_order)
    eager = MetaMAE(spec, cfg).double().train()
    compiled = compile_forward(MetaMAE(spec, cfg).double().train())
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(8, 3, 40, dtype=torch.float64)
    outs, grads = [], []
    for model in (eager, compiled):
        outs.append(model(x, generator=torch.Generator().manual_seed(1)))
        params = [p for p in model.parameters() if p.requires_grad]
        grads.append(torch.autograd.grad(outs[-1].loss, params))
    assert outs[1].loss.item() == pytest.approx(outs[0].loss.item(), rel=1e-12)
    assert torch.allclose(outs[1].z_adapted, outs[0].z_adapted, rtol=0, atol=1e-12)
    for compiled_grad, eager_grad in zip(*grads[::-1]):
        assert torch.allclose(compiled_grad, eager_grad, rtol=1e-9, atol=1e-12)
    # as `training_step` calls it (no generator, no input checks): one graph, nothing split off
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled(x, validate=False).loss.backward()
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["graph_break"]


@pytest.mark.slow
def test_compiled_forward_gradient_is_the_derivative_of_its_loss_with_dropout():
    """With dropout on, the compiled forward's gradient along a random direction equals the
    central difference of its loss (float64, the same seed: the same masks), so its backward uses
    the forward's masks: under the saved-activation budget the partition recomputes random draws,
    which torch's own generator (`fallback_random`) redraws as new numbers, 38% off here."""
    spec = ModalitySpec("sequence", (3, 40), 4)
    torch.manual_seed(0)
    model = MetaMAE(spec, preset_config("tiny", dropout=0.1)).double().train()
    compile_forward(model)
    x = torch.randn(8, 3, 40, dtype=torch.float64)
    params = [p for p in model.parameters() if p.requires_grad]

    def loss():
        torch.manual_seed(5)
        return model(x, validate=False).loss

    grads = torch.autograd.grad(loss(), params)
    direction = [torch.randn_like(p) for p in params]
    eps, losses = 1e-6, []
    for sign in (1, -2):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * eps * d)
        losses.append(loss().item())  # with gradients: the compiled forward, its masks
    difference = (losses[0] - losses[1]) / (2 * eps)
    along = sum((g * d).sum() for g, d in zip(grads, direction)).item()
    assert difference == pytest.approx(along, rel=1e-6)


# ---- host synchronisation: none in the training forward, one per training step ----


class HostSyncs(torch.overrides.TorchFunctionMode):
    """Records every call that makes the host wait for the device on a GPU, with the first caller
    outside torch."""

    NAMES = {
        "__bool__",
        "item",
        "tolist",
        "__int__",
        "__float__",
        "__index__",
        "nonzero",
        "argwhere",
        "masked_select",
        "unique",
        "numpy",
        "repeat_interleave",
    }

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        bool_index = name == "__getitem__" and any(
            isinstance(a, torch.Tensor) and a.dtype == torch.bool
            for a in (args[1] if isinstance(args[1], tuple) else (args[1],))
        )
        if name in self.NAMES or bool_index:
            self.calls.append((name, self._caller()))
        return func(*args, **(kwargs or {}))

    @staticmethod
    def _caller() -> str:
        frame = sys._getframe(2)
        while frame and (
            frame.f_code.co_filename.endswith(("torch/overrides.py", "torch/_tensor.py"))
            or frame.f_code.co_filename == __file__
        ):
            frame = frame.f_back
        return f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "?"


@pytest.mark.parametrize("name", ["image_rgb_rect", "sequence_varlen", "tokens_pad", "tabular"])
@pytest.mark.parametrize("method", ["mae", "metamae"])
def test_training_forward_never_waits_for_the_device_and_a_step_once(name, method):
    from helpers import SPECS, make_batch
    from metamae_lab.model import MetaMAE
    from metamae_lab.train import make_optimizer, training_step

    model = MetaMAE(
        SPECS[name], preset_config("tiny", method=method, mask_ratio=0.6, inner_steps=2)
    ).train()
    x, lengths = make_batch(name)
    with HostSyncs() as syncs:
        model(x, lengths=lengths, validate=False).loss.backward()
    assert syncs.calls == [], syncs.calls
    optimizer = make_optimizer(model, TrainConfig())
    with HostSyncs() as syncs:
        result = training_step(model, optimizer, x, lengths, grad_clip=1.0)
    # the CPU's for-each AdamW reads its step counters (host tensors); the fused CUDA AdamW does not
    ours = [call for call in syncs.calls if "torch/optim/" not in call[1]]
    assert (
        result.taken
        and len(ours) == 1
        and ours[0][0] == "tolist"
        and "metamae_lab/train.py" in ours[0][1]
    ), ours
    # with validation, the forward does read the values: the recorder can see syncs
    with HostSyncs() as syncs:
        model(x, lengths=lengths)
    assert syncs.calls
