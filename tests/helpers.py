"""Shared by the tests and the fault page: small specs and batches for every modality, scratch runs,
CLI calls."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import torch

from metamae_lab.config import ModalitySpec, run_config

SPECS = {
    "image_rgb_rect": ModalitySpec("image", (3, 8, 12), (2, 4)),
    "image_multispectral": ModalitySpec("image", (5, 8, 8), 4),
    "sequence": ModalitySpec("sequence", (6, 40), 5),
    "sequence_varlen": ModalitySpec("sequence", (4, 24), 3, variable_length=True),
    "tokens_pad": ModalitySpec("tokens", (16,), vocab_size=6, pad_id=0),
    "tokens_varlen": ModalitySpec("tokens", (16,), vocab_size=6, variable_length=True),
    "tabular": ModalitySpec("tabular", (12,), 3),
}


def make_batch(name: str, batch_size: int = 4, seed: int = 0):
    "A random batch for `SPECS[name]`, with `lengths` (or None)."
    spec = SPECS[name]
    g = torch.Generator().manual_seed(seed)
    if spec.kind == "tokens":
        x = torch.randint(1, spec.vocab_size, (batch_size, *spec.shape), generator=g)
        if spec.pad_id is not None:
            x[-1, spec.shape[0] // 2 :] = spec.pad_id  # last sample half padding
    else:
        x = torch.randn(batch_size, *spec.shape, generator=g)
    if spec.variable_length:
        T = spec.shape[-1]
        lengths = torch.tensor([T] + [max(2, T - 7 * (i + 1)) for i in range(batch_size - 1)])
        return x, lengths
    return x, None


class Scratch:
    "A folder for the files a test writes, and small runs trained once on demand."

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._runs = {}

    def path(self, name: str) -> Path:
        return self.root / name

    def npz(self, name: str, **arrays) -> Path:
        path = self.path(f"{name}.npz")
        np.savez(path, **arrays)
        return path

    def run(self, method: str = "metamae") -> Path:
        "A tiny run of 4 steps on the digits."
        if method not in self._runs:
            from metamae_lab.train import pretrain

            run = run_config(
                "tiny",
                dataset="digits",
                method=method,
                steps=4,
                batch_size=16,
                log_every=2,
                ckpt_every=2,
            )
            self._runs[method] = pretrain(run, self.path(f"run_{method}"), progress=False).run_dir
        return self._runs[method]


def run_cli(argv: list) -> tuple[int, str, str]:
    "Exit code, stdout and stderr of `metamae-lab ARGV`, run in this process."
    from metamae_lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code  # usage errors
    return code, out.getvalue(), err.getvalue()


def assert_source_refused(source, src: Path, out: Path, *parts):
    """Converting `src` fails with one `SourceError` line holding every part, leaving neither `out`
    nor `out.partial`."""
    import pytest
    from metamae_lab.data.store import SourceError, write_store

    with pytest.raises(SourceError) as error:
        write_store(source, src, out, progress=False)
    line = str(error.value)
    assert "\n" not in line and all(str(part) in line for part in parts), line
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def assert_store_trains_and_probes(store: Path, run_dir: Path, k: int = 20):
    """Three tiny pretraining steps on a converted store, then a kNN probe of the run: a finite
    loss, an accuracy."""
    from metamae_lab.probe import run_probe
    from metamae_lab.data.store import open_store
    from metamae_lab.checkpoint import open_run
    from metamae_lab.train import pretrain

    data = open_store(store)
    result = pretrain(
        run_config("tiny", dataset=str(store), steps=3, batch_size=8),
        run_dir,
        dataset=data,
        progress=False,
    )
    assert result.step == 3 and np.isfinite(result.last_metrics["loss"])
    probe = run_probe(open_run(run_dir, dataset=data)[0], data, method="knn", k=k)
    assert 0.0 <= probe["accuracy"] <= 1.0
