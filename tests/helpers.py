"Small specs and batches for every modality, shared by the tests."
import torch

from metamae_lab.config import ModalitySpec

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
        if spec.pad_id is not None: x[-1, spec.shape[0] // 2 :] = spec.pad_id  # last sample half padding
    else:
        x = torch.randn(batch_size, *spec.shape, generator=g)
    if spec.variable_length:
        T = spec.shape[-1]
        lengths = torch.tensor([T] + [max(2, T - 7 * (i + 1)) for i in range(batch_size - 1)])
        return x, lengths
    return x, None
