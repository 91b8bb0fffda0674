"""The catalogue of bad input: every request the project must refuse, at each public entry point
that takes it, with a fragment of the message it must give. `test_faults.py` runs each row as a
test, and the fault page of the documentation (nbs/17_faults.ipynb) runs the whole table and shows
it."""

from __future__ import annotations

import pickle
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from helpers import Scratch, run_cli
from metamae_lab.config import ModalitySpec, TrainConfig, preset_config, run_config
from metamae_lab.model import MetaMAE

INNER_STEPS = "inner_steps must be a positive integer"


@dataclass
class BadInput:
    entry_point: str  # the public function, class or command given the input
    fault: str  # what is wrong, in the words of the rows of the report
    tried: str  # the input, in one line
    call: Callable  # call(scratch): raises for the API; returns an argv list for the command line
    expect: str  # a fragment the error message must contain
    cli: bool = (
        False  # True: the call returns argv for `metamae-lab`, which must exit with 2 and one line
    )


@dataclass
class FaultOutcome:
    entry_point: str
    fault: str
    tried: str
    outcome: str  # what came back: the exception or exit code, and the message
    ok: bool  # the expected error, with the expected words; nothing else happened


SEQUENCE = ModalitySpec("sequence", (3, 20), 5)
TOKENS = ModalitySpec("tokens", (12,), vocab_size=5)


def _model(spec: ModalitySpec = SEQUENCE, **overrides) -> MetaMAE:
    return MetaMAE(spec, preset_config("tiny", **overrides))


def _seq(*shape, fill=None) -> torch.Tensor:
    x = torch.randn(*shape)
    if fill is not None:
        x[0, 0, 0] = fill
    return x


def _digits_like(n: int = 40, channels: int = 1, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, channels, size, size)).astype(np.float32)


def _labels(n: int = 40) -> np.ndarray:
    return np.arange(n) % 2


def _array_dataset(**changes):
    "An `ArrayDataset` built directly, with `changes` replacing its fields."
    from metamae_lab.data import ArrayDataset

    spec = ModalitySpec("image", (1, 8, 8), 2)
    fields = dict(
        name="direct",
        spec=spec,
        x_train=_digits_like(30),
        y_train=_labels(30),
        x_test=_digits_like(10),
        y_test=_labels(10),
        class_names=["a", "b"],
    )
    return ArrayDataset(**{**fields, **changes})


def _crafted_pickle(s: Scratch):
    """A checkpoint file whose unpickling would create a marker file; loading must refuse it and
    create nothing."""
    from metamae_lab.checkpoint import load_checkpoint

    marker = s.path("code_ran")

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    folder = s.path("crafted")
    folder.mkdir(exist_ok=True)
    with open(folder / "checkpoint_00000001.pt", "wb") as f:
        pickle.dump({"step": 1, "model": Exploit()}, f)
    try:
        # torch notes the file's pickle protocol on its way to refusing it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            load_checkpoint(folder)
    finally:
        if marker.exists():
            raise AssertionError("loading the crafted checkpoint ran its code")


def _truncated_checkpoint(s: Scratch):
    from metamae_lab.checkpoint import list_checkpoints, load_checkpoint

    copy = s.path("truncated")
    shutil.copytree(s.run(), copy, dirs_exist_ok=True)
    last = list_checkpoints(copy)[-1]
    last.write_bytes(last.read_bytes()[:2000])
    load_checkpoint(copy)


def _unreadable_config(s: Scratch):
    from metamae_lab.checkpoint import load_checkpoint, model_from_checkpoint

    state = load_checkpoint(s.run())
    state["run_config"]["model"]["wings"] = 2  # a field this version does not know
    model_from_checkpoint(state)


def _resume_after_data_changed(s: Scratch) -> list:
    "Train 2 steps on an .npz, replace the file by data of another shape, then resume."
    path = s.npz(
        "changing",
        x=np.random.default_rng(0).normal(size=(40, 2, 30)).astype(np.float32),
        y=_labels(),
    )
    code, _, err = run_cli(
        [
            "pretrain",
            "--dataset",
            path,
            "--kind",
            "sequence",
            "--steps",
            2,
            "--batch-size",
            8,
            "--out",
            s.path("changing_run"),
            "--quiet",
        ]
    )
    if code != 0:
        raise AssertionError(f"the first run failed: {err}")
    s.npz(
        "changing",
        x=np.random.default_rng(0).normal(size=(40, 4, 30)).astype(np.float32),
        y=_labels(),
    )
    return ["pretrain", "--out", s.path("changing_run"), "--resume", "--steps", 4, "--quiet"]


def _users_directory(s: Scratch) -> str:
    folder = s.path("users_files")
    folder.mkdir(exist_ok=True)
    (folder / "notes.txt").write_text("the user's")
    return str(folder)


def _unlabelled_umap(s: Scratch):
    from metamae_lab.data import dataset_from_arrays
    from metamae_lab.views import LatentUMAP

    data = dataset_from_arrays(
        np.random.default_rng(0).normal(size=(60, 3, 20)).astype(np.float32),
        kind="sequence",
        patch_size=5,
    )
    LatentUMAP(_model(data.spec), data)


# %% ../nbs/13_faults.ipynb #98dffdc8
def bad_input_cases() -> list[BadInput]:
    "Every bad input the project is tested against, at each public entry point that takes it."
    from metamae_lab import (
        analysis as A,
        checkpoint as C,
        data as D,
        probe as P,
        train as T,
        views as V,
    )

    cases = [
        # the model
        BadInput(
            "MetaMAE.forward",
            "wrong rank",
            "(B, T) for a (B, C, T) sequence model",
            lambda s: _model()(torch.randn(4, 20)),
            "(B, C, T)",
        ),
        BadInput(
            "MetaMAE.forward",
            "wrong channel count",
            "2 channels for a 3-channel model",
            lambda s: _model()(torch.randn(4, 2, 20)),
            "expected 3 channels",
        ),
        BadInput(
            "MetaMAE.forward",
            "wrong length",
            "T=25 for a T=20 model",
            lambda s: _model()(torch.randn(4, 3, 25)),
            "expected samples of shape (3, 20)",
        ),
        BadInput(
            "ModalitySpec",
            "patch size does not divide",
            "image (3, 10, 10), patch 4",
            lambda s: ModalitySpec("image", (3, 10, 10), 4),
            "does not divide",
        ),
        BadInput(
            "MetaMAE.forward",
            "empty batch",
            "(0, 3, 20)",
            lambda s: _model()(torch.randn(0, 3, 20)),
            "empty",
        ),
        BadInput(
            "MetaMAE.forward",
            "NaN value",
            "one NaN in the batch",
            lambda s: _model()(_seq(4, 3, 20, fill=float("nan"))),
            "NaN or inf",
        ),
        BadInput(
            "MetaMAE.forward",
            "inf value",
            "one inf in the batch",
            lambda s: _model()(_seq(4, 3, 20, fill=float("inf"))),
            "NaN or inf",
        ),
        BadInput(
            "MetaMAE.forward",
            "non-integer token ids",
            "float ids",
            lambda s: _model(TOKENS)(torch.ones(2, 12)),
            "integer ids",
        ),
        BadInput(
            "MetaMAE.forward",
            "token id out of range",
            "id 5 with vocab_size 5",
            lambda s: _model(TOKENS)(torch.full((2, 12), 5)),
            "token ids must lie in [0, 5)",
        ),
        BadInput(
            "MetaMAE.forward",
            "negative token id",
            "id -1",
            lambda s: _model(TOKENS)(torch.full((2, 12), -1)),
            "token ids must lie in [0, 5)",
        ),
        BadInput(
            "MetaMAE.forward",
            "mask ratio ∉ (0, 1)",
            "mask_ratio=1.5",
            lambda s: _model()(torch.randn(2, 3, 20), mask_ratio=1.5),
            "mask_ratio must lie in (0, 1)",
        ),
        BadInput(
            "ModelConfig",
            "mask ratio ∉ (0, 1)",
            "mask_ratio=0",
            lambda s: preset_config("tiny", mask_ratio=0.0),
            "mask_ratio must lie in (0, 1)",
        ),
        BadInput(
            "MetaMAE.forward",
            "inner steps < 1",
            "inner_steps=0",
            lambda s: _model()(torch.randn(2, 3, 20), inner_steps=0),
            INNER_STEPS,
        ),
        BadInput(
            "ModelConfig",
            "inner steps < 1",
            "inner_steps=-1",
            lambda s: preset_config("tiny", inner_steps=-1),
            INNER_STEPS,
        ),
        BadInput(
            "MetaMAE.adapted_features",
            "inner steps < 1",
            "steps=0",
            lambda s: _model().adapted_features(torch.randn(2, 3, 20), steps=0),
            INNER_STEPS,
        ),
        # datasets
        BadInput(
            "dataset_from_arrays",
            "wrong rank",
            "kind='image', x of shape (40, 8, 8)",
            lambda s: D.dataset_from_arrays(_digits_like()[:, 0], kind="image"),
            "for one channel add the axis",
        ),
        BadInput(
            "dataset_from_arrays",
            "patch size does not divide",
            "8×8 images, patch_size=3",
            lambda s: D.dataset_from_arrays(_digits_like(), _labels(), patch_size=3),
            "does not divide",
        ),
        BadInput(
            "dataset_from_arrays",
            "empty dataset",
            "x of shape (0, 4)",
            lambda s: D.dataset_from_arrays(np.zeros((0, 4))),
            "x is empty",
        ),
        BadInput(
            "dataset_from_arrays",
            "NaN value",
            "one NaN in x",
            lambda s: D.dataset_from_arrays(np.where(np.eye(40, 6) > 0, np.nan, 1.0)),
            "NaN or inf",
        ),
        BadInput(
            "dataset_from_arrays",
            "non-integer labels",
            "y = 0.5, 1.5, ...",
            lambda s: D.dataset_from_arrays(_digits_like(), _labels() + 0.5),
            "labels must be integers",
        ),
        BadInput(
            "dataset_from_arrays",
            "labels of the wrong length",
            "40 samples, 39 labels",
            lambda s: D.dataset_from_arrays(_digits_like(), _labels(39)),
            "different lengths",
        ),
        BadInput(
            "dataset_from_arrays",
            "negative token ids",
            "kind='tokens', an id of -1",
            lambda s: D.dataset_from_arrays(np.full((40, 12), -1), kind="tokens"),
            "token ids must be >= 0",
        ),
        BadInput(
            "ArrayDataset",
            "label out of range",
            "class id 7 with 2 class names",
            lambda s: _array_dataset(y_train=np.full(30, 7)),
            "class ids must lie in [0, 2)",
        ),
        BadInput(
            "ArrayDataset",
            "wrong channel count",
            "x_train (30, 2, 8, 8) for spec (1, 8, 8)",
            lambda s: _array_dataset(x_train=_digits_like(30, channels=2)),
            "must have shape (N, 1, 8, 8)",
        ),
        BadInput(
            "ArrayDataset",
            "empty dataset",
            "a train split of 0 samples",
            lambda s: _array_dataset(x_train=_digits_like(0), y_train=_labels(0)),
            "train split is empty",
        ),
        BadInput(
            "ArrayDataset",
            "token id out of range",
            "id 9 with vocab_size 5",
            lambda s: _array_dataset(
                spec=TOKENS,
                x_train=np.full((3, 12), 9),
                x_test=np.zeros((1, 12), np.int64),
                y_train=None,
                y_test=None,
            ),
            "token ids must lie in [0, 5)",
        ),
        BadInput(
            "load_dataset",
            "unknown dataset name",
            "'digitz'",
            lambda s: D.load_dataset("digitz"),
            "unknown dataset 'digitz'",
        ),
        BadInput(
            "dataset_from_npz",
            "not an .npz",
            "a text file",
            lambda s: D.dataset_from_npz(_text_file(s)),
            "cannot read",
        ),
        BadInput(
            "dataset_from_npz",
            "no array x",
            "an .npz holding only y",
            lambda s: D.dataset_from_npz(s.npz("no_x", y=_labels())),
            "has no array named 'x'",
        ),
        # training
        BadInput(
            "pretrain",
            "batch larger than the dataset",
            "batch_size=100000 on the digits",
            lambda s: T.pretrain(
                run_config("tiny", steps=1, batch_size=100_000), s.path("big"), progress=False
            ),
            "larger than the training split",
        ),
        BadInput(
            "TrainConfig",
            "steps < 1",
            "steps=0",
            lambda s: TrainConfig(steps=0),
            "steps must be a positive integer",
        ),
        # the command line
        *[
            BadInput("metamae-lab pretrain", fault, tried, call, expect, cli=True)
            for fault, tried, call, expect in [
                (
                    "unknown dataset name",
                    "--dataset digitz",
                    lambda s: ["pretrain", "--dataset", "digitz", "--out", s.path("c1")],
                    "unknown dataset 'digitz'",
                ),
                (
                    "wrong rank",
                    "--kind image on an .npz of shape (40, 8, 8)",
                    lambda s: [
                        "pretrain",
                        "--dataset",
                        s.npz("rank", x=_digits_like()[:, 0]),
                        "--kind",
                        "image",
                        "--out",
                        s.path("c2"),
                    ],
                    "image data must have shape",
                ),
                (
                    "patch size does not divide",
                    "--patch-size 3 on the 8×8 digits",
                    lambda s: ["pretrain", "--patch-size", 3, "--out", s.path("c3")],
                    "does not divide",
                ),
                (
                    "empty dataset",
                    "an .npz with x of shape (0, 4)",
                    lambda s: [
                        "pretrain",
                        "--dataset",
                        s.npz("empty", x=np.zeros((0, 4), np.float32)),
                        "--out",
                        s.path("c4"),
                    ],
                    "x is empty",
                ),
                (
                    "NaN value",
                    "an .npz whose x holds NaN",
                    lambda s: [
                        "pretrain",
                        "--dataset",
                        s.npz("nan", x=np.full((40, 4), np.nan, np.float32)),
                        "--out",
                        s.path("c5"),
                    ],
                    "NaN or inf",
                ),
                (
                    "non-integer labels",
                    "an .npz with y = 0.5, 1.5, ...",
                    lambda s: [
                        "pretrain",
                        "--dataset",
                        s.npz("float_y", x=_digits_like(), y=_labels() + 0.5),
                        "--out",
                        s.path("c6"),
                    ],
                    "labels must be integers",
                ),
                (
                    "mask ratio ∉ (0, 1)",
                    "--mask-ratio 1",
                    lambda s: ["pretrain", "--mask-ratio", 1, "--out", s.path("c7")],
                    "mask_ratio must lie in (0, 1)",
                ),
                (
                    "inner steps < 1",
                    "--inner-steps 0",
                    lambda s: ["pretrain", "--inner-steps", 0, "--out", s.path("c8")],
                    INNER_STEPS,
                ),
                (
                    "batch larger than the dataset",
                    "--batch-size 100000",
                    lambda s: ["pretrain", "--batch-size", 100_000, "--out", s.path("c9")],
                    "larger than the training split",
                ),
                (
                    "not a number",
                    "--steps abc",
                    lambda s: ["pretrain", "--steps", "abc", "--out", s.path("c10")],
                    "invalid int value",
                ),
                (
                    "other data on resume",
                    "--resume after the run's .npz was replaced by 4-channel data",
                    _resume_after_data_changed,
                    "changed since the run started",
                ),
                (
                    "negative inner lr",
                    "--inner-lr -1",
                    lambda s: ["pretrain", "--inner-lr", -1, "--out", s.path("c11")],
                    "inner_lr must be > 0",
                ),
                (
                    "a device this machine lacks",
                    "--device tpu",
                    lambda s: ["pretrain", "--device", "tpu", "--out", s.path("c12")],
                    "device 'tpu'",
                ),
                (
                    "an absurd vocabulary",
                    "token ids up to 2e9",
                    lambda s: [
                        "pretrain",
                        "--dataset",
                        s.npz("huge_ids", x=np.full((40, 6), 2_000_000_000)),
                        "--out",
                        s.path("c13"),
                    ],
                    "the largest token id is 2000000000",
                ),
                (
                    "out under a file",
                    "--out a_file/run",
                    lambda s: ["pretrain", "--out", s.npz("a_file", x=_digits_like()) / "run"],
                    "a file is where a directory is needed",
                ),
                (
                    "a directory that is not a run",
                    "--out holding a file of the user's",
                    lambda s: ["pretrain", "--out", _users_directory(s)],
                    "holds files that are not a run",
                ),
            ]
        ],
        # checkpoints
        BadInput(
            "load_weights",
            "checkpoint of another preset",
            "a tiny checkpoint into a dabs model",
            lambda s: C.load_weights(MetaMAE(_digits_spec(), preset_config("dabs")), s.run()),
            "enc_dim: 64 in the checkpoint, 256 here",
        ),
        BadInput(
            "load_weights",
            "checkpoint of another method",
            "a MetaMAE checkpoint into an MAE model",
            lambda s: C.load_weights(
                MetaMAE(_digits_spec(), preset_config("tiny", method="mae")), s.run()
            ),
            "method: 'metamae' in the checkpoint, 'mae' here",
        ),
        BadInput(
            "load_weights",
            "checkpoint of another modality",
            "a digits checkpoint into a sequence model",
            lambda s: C.load_weights(_model(), s.run()),
            "modality mismatch",
        ),
        BadInput(
            "probe_run",
            "checkpoint of another modality",
            "a digits run probed on breast_cancer (tabular)",
            lambda s: P.probe_run(s.run(), dataset=D.load_dataset("breast_cancer")),
            "modality mismatch",
        ),
        BadInput(
            "load_checkpoint",
            "crafted pickle that runs code",
            "a checkpoint whose unpickling creates a file",
            _crafted_pickle,
            "cannot load checkpoint",
        ),
        BadInput(
            "load_checkpoint",
            "truncated checkpoint",
            "the last checkpoint cut to 2000 bytes",
            _truncated_checkpoint,
            "cannot load checkpoint",
        ),
        BadInput(
            "model_from_checkpoint",
            "unreadable configuration",
            "a model field this version does not know",
            _unreadable_config,
            "run configuration cannot be read",
        ),
        BadInput(
            "metamae-lab probe",
            "not a checkpoint",
            "every checkpoint file overwritten with text",
            lambda s: ["probe", "--run", _garbled_run(s)],
            "cannot load checkpoint",
            cli=True,
        ),
        # views
        BadInput(
            "ReconstructionExplorer",
            "dataset of another modality",
            "a sequence model with the digits",
            lambda s: V.ReconstructionExplorer(_model(), "digits"),
            "the model was built for",
        ),
        BadInput(
            "ReconstructionExplorer",
            "no dataset",
            "a model alone",
            lambda s: V.ReconstructionExplorer(_model()),
            "a model needs a dataset",
        ),
        BadInput(
            "ReconstructionExplorer",
            "unknown dataset name",
            "dataset='digitz'",
            lambda s: V.ReconstructionExplorer(_model(), "digitz"),
            "unknown dataset 'digitz'",
        ),
        BadInput(
            "ReconstructionExplorer",
            "no inner steps to show",
            "max_steps=0",
            lambda s: V.ReconstructionExplorer(s.run(), max_steps=0),
            "max_steps must be a positive integer",
        ),
        BadInput(
            "ReconstructionExplorer",
            "a comparison run of another modality",
            "compare=<a sequence model>",
            lambda s: V.ReconstructionExplorer(s.run(), compare=_model()),
            "the model was built for",
        ),
        BadInput(
            "MaskingRatioSweep", "no run", "[]", lambda s: V.MaskingRatioSweep([]), "give a run"
        ),
        BadInput(
            "reconstruct",
            "mask ratio ∉ (0, 1)",
            "mask_ratio=0",
            lambda s: A.reconstruct(_model(), torch.randn(2, 3, 20), mask_ratio=0.0),
            "mask_ratio must lie",
        ),
        BadInput(
            "reconstruct",
            "inner steps < 1",
            "steps=0",
            lambda s: A.reconstruct(_model(), torch.randn(2, 3, 20), steps=0),
            INNER_STEPS,
        ),
        BadInput("LatentUMAP", "no labels", "an unlabelled dataset", _unlabelled_umap, "no labels"),
        BadInput(
            "linear_probe",
            "non-integer labels",
            "y = 0.5, 1.5, ...",
            lambda s: P.linear_probe(
                np.ones((4, 2)), np.array([0.5, 1.5] * 2), np.ones((4, 2)), np.array([0, 1] * 2)
            ),
            "integer class ids",
        ),
        BadInput(
            "knn_probe",
            "NaN value",
            "NaN features",
            lambda s: P.knn_probe(
                np.full((4, 2), np.nan), np.array([0, 1] * 2), np.ones((4, 2)), np.array([0, 1] * 2)
            ),
            "NaN or inf",
        ),
        # the experiment runner
        *[
            BadInput("metamae-lab experiment", fault, tried, call, expect, cli=True)
            for fault, tried, call, expect in [
                (
                    "unknown experiment",
                    "experiment quikstart",
                    lambda s: _experiment(s, "quikstart"),
                    "unknown experiment 'quikstart'",
                ),
                (
                    "unknown parameter",
                    "-p stpes 3",
                    lambda s: _experiment(s, "quickstart", "-p", "stpes", 3),
                    "unknown parameter(s)",
                ),
                (
                    "wrong type",
                    "-p steps many",
                    lambda s: _experiment(s, "quickstart", "-p", "steps", "many"),
                    "expects an integer",
                ),
                (
                    "mask ratio ∉ (0, 1)",
                    "-p mask_ratio 1.5",
                    lambda s: _experiment(s, "quickstart", "-p", "mask_ratio", 1.5),
                    "must lie in (0, 1)",
                ),
                (
                    "inner steps < 1",
                    "-p inner_steps [1,0] (ablation)",
                    lambda s: _experiment(s, "ablation", "-p", "inner_steps", "[1,0]"),
                    INNER_STEPS,
                ),
                (
                    "unknown dataset name",
                    "-p dataset digitz",
                    lambda s: _experiment(s, "quickstart", "-p", "dataset", "digitz"),
                    "unknown dataset 'digitz'",
                ),
                (
                    "code as a parameter",
                    "-p steps \"__import__('os').system('touch pwned')\"",
                    lambda s: _experiment(
                        s, "quickstart", "-p", "steps", "__import__('os').system('touch pwned')"
                    ),
                    "expects an integer",
                ),
            ]
        ],
    ]
    return cases + _spec_cases()


def _spec_cases() -> list[BadInput]:
    """Specs and configs, and the model on the other kinds: the rows that were a separate validation
    table."""
    image, varlen = (
        ModalitySpec("image", (3, 8, 12), (2, 4)),
        ModalitySpec("sequence", (4, 24), 3, variable_length=True),
    )
    tokens_pad, tabular = (
        ModalitySpec("tokens", (16,), vocab_size=6, pad_id=0),
        ModalitySpec("tabular", (12,), 3),
    )
    return [
        BadInput(
            "ModalitySpec",
            "patch size does not divide",
            "sequence (2, 50), patch 3",
            lambda s: ModalitySpec("sequence", (2, 50), 3),
            "does not divide",
        ),
        BadInput(
            "ModalitySpec",
            "unknown kind",
            "'video'",
            lambda s: ModalitySpec("video", (3, 8, 8)),
            "unknown modality",
        ),
        BadInput(
            "ModelConfig",
            "heads do not divide the width",
            "enc_heads=5 with enc_dim 64",
            lambda s: preset_config("tiny", enc_heads=5),
            "not divisible",
        ),
        BadInput(
            "ModelConfig",
            "mask ratio ∉ (0, 1)",
            "mask_ratio=1",
            lambda s: preset_config("tiny", mask_ratio=1.0),
            "mask_ratio must lie in (0, 1)",
        ),
        BadInput(
            "MetaMAE.forward",
            "wrong size",
            "an 8×10 image for an 8×12 model",
            lambda s: _model(image)(torch.randn(2, 3, 8, 10)),
            "expected samples of shape",
        ),
        BadInput(
            "MetaMAE.forward",
            "token id out of range",
            "id 6 with vocab_size 6 (pad id 0)",
            lambda s: _model(tokens_pad)(torch.full((2, 16), 6)),
            "token ids must lie in [0, 6)",
        ),
        BadInput(
            "MetaMAE.forward",
            "NaN value",
            "tabular rows of NaN",
            lambda s: _model(tabular)(torch.full((2, 12), float("nan"))),
            "NaN or inf",
        ),
        BadInput(
            "MetaMAE.forward",
            "mask ratio ∉ (0, 1)",
            "mask_ratio=0 at the call",
            lambda s: _model(tabular)(torch.randn(2, 12), mask_ratio=0.0),
            "mask_ratio must lie in (0, 1)",
        ),
        BadInput(
            "MetaMAE.forward",
            "lengths too long",
            "lengths 25 and 3 for T=24",
            lambda s: _model(varlen)(torch.randn(2, 4, 24), lengths=torch.tensor([25, 3])),
            "lengths must lie",
        ),
        BadInput(
            "MetaMAE.forward",
            "lengths on a fixed-length spec",
            "lengths with a fixed-length sequence model",
            lambda s: _model()(torch.randn(2, 3, 20), lengths=torch.tensor([20, 3])),
            "fixed-length",
        ),
        BadInput(
            "MetaMAE.forward",
            "not a tensor",
            "a list of lists",
            lambda s: _model(tabular)([[0.0] * 12]),
            "torch.Tensor",
        ),
    ]


def _digits_spec() -> ModalitySpec:
    from metamae_lab.data import load_dataset

    return load_dataset("digits").spec


def _text_file(s: Scratch) -> Path:
    path = s.path("notes.npz")
    path.write_text("not an archive")
    return path


def _garbled_run(s: Scratch) -> Path:
    from metamae_lab.checkpoint import list_checkpoints

    copy = s.path("garbled")
    shutil.copytree(s.run(), copy, dirs_exist_ok=True)
    for path in list_checkpoints(copy):
        path.write_text("not a checkpoint")
    return copy


def _experiment(s: Scratch, *args) -> list:
    return ["experiment", *args, "--out", s.path("figures"), "--runs", s.path("runs")]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def try_bad_input(case: BadInput, scratch: Scratch) -> FaultOutcome:
    "Make the request of `case` and report the outcome."

    def row(outcome, ok):
        return FaultOutcome(case.entry_point, case.fault, case.tried, outcome, ok)

    try:
        result = case.call(scratch)
    except (ValueError, TypeError) as e:
        if case.cli:
            return row(
                f"{type(e).__name__} while preparing the request: {_one_line(str(e))}", False
            )
        return row(f"{type(e).__name__}: {_one_line(str(e))}", case.expect in str(e))
    except Exception as e:  # anything else is a failure of the rules above
        return row(f"unexpected {type(e).__name__}: {_one_line(str(e))}", False)
    if not case.cli:
        return row(f"no error (returned {type(result).__name__})", False)
    code, _, err = run_cli(result)
    lines = err.strip().splitlines()
    ok = code == 2 and len(lines) == 1 and case.expect in err and "Traceback" not in err
    return row(f"exit {code}: {_one_line(err)}", ok)


def outcome_table(outcomes: list[FaultOutcome], width: int = 140) -> str:
    "The outcomes as a Markdown table, long messages shortened to `width` characters."
    from metamae_lab.tables import markdown_table

    def cut(t):
        return (t if len(t) <= width else t[: width - 1] + "…").replace("|", "\\|")

    return markdown_table(
        [
            {
                "entry point": f"`{o.entry_point}`",
                "fault": cut(o.fault),
                "input tried": cut(o.tried),
                "outcome": cut(o.outcome),
                "ok": "yes" if o.ok else "**no**",
            }
            for o in outcomes
        ]
    )
