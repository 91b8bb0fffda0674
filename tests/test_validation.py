"Bad input is a ValueError that names the problem, raised before any computation."
import pytest
import torch

from helpers import SPECS, make_batch
from metamae_lab.config import ModalitySpec, preset_config
from metamae_lab.model import MetaMAE


def model_for(name, **overrides):
    return MetaMAE(SPECS[name], preset_config("tiny", **overrides))


CASES = [
    ("patch not dividing", lambda: ModalitySpec("image", (3, 10, 12), 4), "does not divide"),
    ("patch not dividing a sequence", lambda: ModalitySpec("sequence", (2, 50), 3), "does not divide"),
    ("wrong channel count", lambda: model_for("image_rgb_rect")(torch.randn(2, 1, 8, 12)), "expected 3 channels"),
    ("wrong rank", lambda: model_for("sequence")(torch.randn(6, 40)), "(B, C, T)"),
    ("wrong size", lambda: model_for("image_rgb_rect")(torch.randn(2, 3, 8, 10)), "expected samples of shape"),
    ("token id >= V", lambda: model_for("tokens_pad")(torch.full((2, 16), 6)), "token ids must lie in [0, 6)"),
    ("negative token id", lambda: model_for("tokens_pad")(torch.full((2, 16), -1)), "token ids must lie"),
    ("float token ids", lambda: model_for("tokens_pad")(torch.ones(2, 16)), "integer ids"),
    ("NaN input", lambda: model_for("tabular")(torch.full((2, 12), float("nan"))), "NaN or inf"),
    ("inf input", lambda: model_for("sequence")(torch.full((2, 6, 40), float("inf"))), "NaN or inf"),
    ("mask ratio 0", lambda: model_for("tabular")(torch.randn(2, 12), mask_ratio=0.0), "mask_ratio must lie in (0, 1)"),
    ("mask ratio 1", lambda: model_for("tabular", mask_ratio=1.0), "mask_ratio must lie in (0, 1)"),
    ("mask ratio > 1", lambda: model_for("tabular")(torch.randn(2, 12), mask_ratio=1.5), "mask_ratio must lie"),
    ("K = 0", lambda: model_for("tabular", inner_steps=0), "K >= 1"),
    ("K = 0 at call", lambda: model_for("tabular")(torch.randn(2, 12), inner_steps=0), "K >= 1"),
    ("K = 0 features", lambda: model_for("tabular").adapted_features(torch.randn(2, 12), steps=0), "K >= 1"),
    ("empty batch", lambda: model_for("tabular")(torch.randn(0, 12)), "empty"),
    ("lengths too long", lambda: model_for("sequence_varlen")(torch.randn(2, 4, 24), lengths=[25, 3]), "lengths must lie"),
    ("lengths on fixed spec", lambda: model_for("sequence")(torch.randn(2, 6, 40), lengths=[40, 3]), "fixed-length"),
    ("not a tensor", lambda: model_for("tabular")([[0.0] * 12]), "torch.Tensor"),
    ("bad kind", lambda: ModalitySpec("video", (3, 8, 8)), "unknown modality"),
    ("bad heads", lambda: preset_config("tiny", enc_heads=5), "not divisible"),
]


@pytest.mark.parametrize("case,make,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_problem(case, make, message):
    with pytest.raises((ValueError, TypeError), match=None) as info:
        make()
    assert message in str(info.value), f"{case}: {info.value}"
