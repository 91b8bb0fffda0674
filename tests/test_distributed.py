"""Data-parallel pretraining: two CPU processes under torchrun with gloo against one process taking
the same steps."""

import json
import os
import subprocess
import sys

import pytest
import torch

from metamae_lab.checkpoint import load_checkpoint
from metamae_lab.config import TrainConfig, preset_config
from metamae_lab.data import load_dataset
from metamae_lab.model import MetaMAE
from metamae_lab.runtime import seed_everything, step_seed
from metamae_lab.data.loader import batch_indices
from metamae_lab.train import lr_factor, make_optimizer

STEPS, BATCH, RANKS = 6, 32, 2


def torchrun_pretrain(out_dir, *args):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(RANKS),
        "-m",
        "metamae_lab.cli",
        "pretrain",
        "--dataset",
        "digits",
        "--steps",
        str(STEPS),
        "--batch-size",
        str(BATCH),
        "--dropout",
        "0",
        "--lr",
        "1e-3",
        "--warmup-steps",
        "2",
        "--log-every",
        "1",
        "--mask-ratio",
        "0.75",
        "--out",
        str(out_dir),
        "--quiet",
        *args,
    ]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )


def one_process(method: str):
    """The same steps in one process: each rank's slice, seeded as that rank seeds it, gradients
    averaged."""
    data = load_dataset("digits")
    tc = TrainConfig(steps=STEPS, batch_size=BATCH, lr=1e-3, warmup_steps=2, log_every=1)
    seed_everything(tc.seed)
    model = MetaMAE(data.spec, preset_config("tiny", method=method, mask_ratio=0.75, dropout=0.0))
    optimizer = make_optimizer(model, tc)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, tc))
    x_all = torch.as_tensor(data.split("train")[0])
    local, losses = BATCH // RANKS, []
    for step in range(STEPS):
        idx = batch_indices(step, len(x_all), BATCH, tc.seed)
        optimizer.zero_grad(set_to_none=True)
        step_losses = []
        for rank in range(RANKS):
            torch.manual_seed(step_seed(tc.seed, step, rank))
            out = model(x_all[idx[rank * local : (rank + 1) * local]])
            (out.loss / RANKS).backward()
            step_losses.append(out.loss.item())
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(sum(step_losses) / RANKS)
    return model, losses


@pytest.mark.slow
@pytest.mark.parametrize("method", ["mae", "metamae"])
def test_two_ranks_match_one_process_with_the_same_global_batch(tmp_path, method):
    done = torchrun_pretrain(tmp_path / "ddp", "--model", method)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = json.loads((tmp_path / "ddp" / "distributed.json").read_text())
    # identical on both ranks
    assert ranks["world_size"] == RANKS and len(set(ranks["parameter_checksums"])) == 1
    ddp_losses = [
        json.loads(line)["loss"]
        for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    ]
    model, losses = one_process(method)
    assert len(ddp_losses) == STEPS
    assert ddp_losses == pytest.approx(losses, rel=1e-4, abs=1e-6)
    # The weights agree as a whole. Parameter by parameter they can drift by ~lr where the true
    # gradient is zero (the
    # attention key biases): Adam scales float noise there up to full-size steps.
    saved = load_checkpoint(tmp_path / "ddp")["model"]
    names = [n for n, p in model.named_parameters()]
    a = torch.cat([saved[n].flatten() for n in names])
    b = torch.cat([model.state_dict()[n].flatten() for n in names])
    assert ((a - b).norm() / b.norm()).item() < 1e-3


@pytest.mark.slow
def test_two_ranks_resume_where_they_stopped(tmp_path):
    straight = torchrun_pretrain(tmp_path / "straight", "--model", "metamae")
    assert straight.returncode == 0, straight.stderr[-3000:]
    first = torchrun_pretrain(tmp_path / "resumed", "--model", "metamae", "--ckpt-every", "3")
    assert first.returncode == 0
    # drop the end of the run, as if it had been killed after the step-3 checkpoint
    for ckpt in (tmp_path / "resumed").glob("checkpoint_*.pt"):
        if load_checkpoint(ckpt)["step"] > 3:
            ckpt.unlink()
    resumed = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(RANKS),
            "-m",
            "metamae_lab.cli",
            "pretrain",
            "--out",
            str(tmp_path / "resumed"),
            "--resume",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = load_checkpoint(tmp_path / "straight")["model"]
    b = load_checkpoint(tmp_path / "resumed")["model"]
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.slow
def test_a_batch_that_does_not_split_evenly_is_refused_on_every_rank(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(RANKS),
        "-m",
        "metamae_lab.cli",
        "pretrain",
        "--steps",
        "2",
        "--batch-size",
        "31",
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode != 0
    assert done.stderr.count("batch_size 31 must divide into 2 equal per-rank slices") == RANKS


def _gathered_nt_xent(rank: int, world: int, init_file: str, a_full, b_full, out_dir: str):
    import torch.distributed as dist
    from metamae_lab.model import nt_xent
    from metamae_lab.runtime import gather_rows

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    n = len(a_full) // world
    a = a_full[rank * n : (rank + 1) * n].clone().requires_grad_()
    b = b_full[rank * n : (rank + 1) * n].clone().requires_grad_()
    loss = nt_xent(gather_rows(a), gather_rows(b), 0.5)
    loss.backward()
    torch.save({"loss": loss.detach(), "a": a.grad, "b": b.grad}, f"{out_dir}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_gathered_negatives_give_the_whole_batch_loss_and_its_gradients(tmp_path):
    """Each rank sees the loss over the whole batch; averaged over ranks as DDP does, its rows get
    the whole-batch gradient."""
    import torch.multiprocessing as mp
    from metamae_lab.model import nt_xent

    g = torch.Generator().manual_seed(0)
    a_full, b_full = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    mp.spawn(
        _gathered_nt_xent,
        args=(RANKS, str(tmp_path / "init"), a_full, b_full, str(tmp_path)),
        nprocs=RANKS,
    )
    a, b = a_full.clone().requires_grad_(), b_full.clone().requires_grad_()
    whole = nt_xent(a, b, 0.5)
    whole.backward()
    n = len(a_full) // RANKS
    for rank in range(RANKS):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(got["loss"], whole.detach())
        # DDP divides by the world size
        torch.testing.assert_close(got["a"] / RANKS, a.grad[rank * n : (rank + 1) * n])
        torch.testing.assert_close(got["b"] / RANKS, b.grad[rank * n : (rank + 1) * n])
    local = nt_xent(a_full[:n], b_full[:n], 0.5)
    # without gathering the loss differs: the check can fail
    assert abs(local.item() - whole.item()) > 1e-3


@pytest.mark.slow
def test_two_ranks_with_gathered_negatives(tmp_path):
    done = torchrun_pretrain(tmp_path / "gathered", "--model", "metamae", "--gather-negatives")
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = json.loads((tmp_path / "gathered" / "distributed.json").read_text())
    assert len(set(ranks["parameter_checksums"])) == 1
    local = torchrun_pretrain(tmp_path / "local", "--model", "metamae")
    assert local.returncode == 0, local.stderr[-3000:]

    def first(d):
        return json.loads((tmp_path / d / "metrics.jsonl").read_text().splitlines()[0])

    # the same first batch, masks and weights: only the negatives differ (31 per row instead of 15)
    assert first("gathered")["recon_loss"] == pytest.approx(first("local")["recon_loss"], rel=1e-6)
    assert first("gathered")["contrastive_loss"] > first("local")["contrastive_loss"]
