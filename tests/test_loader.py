"""The loader: a per-step cost that does not grow with the dataset, and the same training however
batches are read."""

import numpy as np
import pytest
import torch

import metamae_lab.data.loader as loader
from metamae_lab.config import run_config
from metamae_lab.data.convert import convert, request_synthetic
from metamae_lab.data.loader import BatchOrder, batch_indices
from metamae_lab.train import pretrain


def test_one_permutation_per_epoch_whatever_the_size(monkeypatch):
    "The per-step cost: a slice of a permutation drawn once per epoch, at 2M samples as at 2k."
    draws = []
    real = loader._permutation
    monkeypatch.setattr(loader, "_permutation", lambda *a: draws.append(a) or real(*a))
    for n in (2_000, 2_000_000):
        draws.clear()
        order = BatchOrder(n, 64, seed=1)
        for step in range(100):
            order(step)
        assert len(draws) == 99 // (n // 64) + 1, (n, len(draws))  # one per epoch the steps touch


@pytest.mark.parametrize("n,batch", [(1000, 64), (777, 7), (64, 64)])
def test_batch_order_equals_the_definition(n, batch):
    order, steps_per_epoch = BatchOrder(n, batch, seed=5), n // batch
    steps = [0, 1, steps_per_epoch - 1, steps_per_epoch, 3 * steps_per_epoch + 1, 2, 0]
    for step in steps:
        assert np.array_equal(order(step), batch_indices(step, n, batch, 5).numpy()), step


def test_batch_order_refuses_a_batch_larger_than_the_split():
    with pytest.raises(ValueError, match="larger than the training split"):
        BatchOrder(10, 11, seed=0)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("loader")
    raw = request_synthetic(root / "raw", gigabytes=0.0002, shape=(3, 8, 8), test_fraction=0.2)
    return convert("synthetic", raw, root / "store", progress=False)


def _train(store, out, workers, **kwargs):
    run = run_config(
        "tiny",
        dataset=str(store),
        steps=12,
        batch_size=16,
        log_every=4,
        ckpt_every=6,
        data_workers=workers,
    )
    return pretrain(run, out, progress=False, **kwargs)


def _weights(run_dir):
    from metamae_lab.checkpoint import list_checkpoints

    return torch.load(list_checkpoints(run_dir)[-1], weights_only=True)["model"]


def test_workers_and_resume_give_bit_identical_training(store, tmp_path):
    _train(store, tmp_path / "w0", 0)
    _train(store, tmp_path / "w2", 2)
    half = run_config(
        "tiny",
        dataset=str(store),
        steps=12,
        batch_size=16,
        log_every=4,
        ckpt_every=6,
        data_workers=2,
    )
    pretrain(half, tmp_path / "resumed", progress=False, stop_after=6)
    pretrain(None, tmp_path / "resumed", resume=True, progress=False)
    reference = _weights(tmp_path / "w0")
    for other in ("w2", "resumed"):
        weights = _weights(tmp_path / other)
        assert all(torch.equal(reference[k], weights[k]) for k in reference), other


def test_the_metrics_give_the_share_of_time_spent_waiting_for_data(store, tmp_path):
    import json

    _train(store, tmp_path / "run", 0)
    lines = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    shares = [line["data_wait_share"] for line in lines if "data_wait_share" in line]
    assert len(shares) == 3 and all(0 < s < 1 for s in shares), shares
