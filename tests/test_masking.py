"Masking and support-set invariants over many sizes, ratios and paddings."

import pytest
import torch

from metamae_lab.masking import (
    masking_from_visible,
    no_masking,
    random_masking,
    support_set,
    visible_neighbours,
)


@pytest.mark.parametrize("num_tokens", [2, 7, 16, 64, 101])
@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.75, 0.85, 0.99])
def test_exact_keep_count_and_restore(num_tokens, ratio):
    m = random_masking(5, num_tokens, ratio, generator=torch.Generator().manual_seed(num_tokens))
    expected = min(max(int(num_tokens * (1 - ratio)), 1), num_tokens - 1)
    assert m.num_kept.tolist() == [expected] * 5
    assert (m.visible.sum(1) == expected).all() and (m.mask.sum(1) == num_tokens - expected).all()
    assert torch.equal(
        torch.gather(m.ids_shuffle, 1, m.ids_restore), torch.arange(num_tokens).expand(5, -1)
    )
    assert torch.equal(m.visible, torch.zeros_like(m.visible).scatter(1, m.ids_keep, True))


def test_padding_is_never_visible_or_masked():
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        lengths = torch.randint(2, 30, (6,), generator=g)
        pad = torch.arange(30)[None] >= lengths[:, None]
        m = random_masking(6, 30, 0.7, pad=pad, generator=g)
        assert not (m.visible & pad).any() and not (m.mask.bool() & pad).any()
        assert (m.visible.sum(1) + m.mask.sum(1) == lengths).all()
        assert torch.equal(
            m.num_kept,
            torch.clamp(torch.minimum((lengths * 0.3).floor().long(), lengths - 1), min=1),
        )
        s = support_set(m, (30,), s_ratio=1.0, generator=g)
        assert not (s & pad).any() and (s >= m.visible).all()


def test_support_set_counts_on_a_hand_made_grid():
    visible = torch.zeros(1, 4, 4, dtype=torch.bool)
    visible[0, 0, 0] = visible[0, 2, 2] = (
        True  # neighbours: (0,1),(1,0) and (1,2),(2,1),(2,3),(3,2)
    )
    m = masking_from_visible(visible.reshape(1, -1))
    neighbours = visible_neighbours(m.visible, (4, 4)).reshape(4, 4)
    assert sorted(map(tuple, neighbours.nonzero().tolist())) == [
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 1),
        (2, 3),
        (3, 2),
    ]
    for ratio, added in [(0.0, 0), (0.1, 1), (0.5, 3), (1.0, 6)]:  # round(6 * ratio), half up
        s = support_set(m, (4, 4), ratio, generator=torch.Generator().manual_seed(1))
        assert (
            int((s & ~m.visible).sum()) == added
            and (s & ~m.visible & ~neighbours.reshape(1, -1)).sum() == 0
        )


def test_hand_made_masks_are_checked():
    with pytest.raises(ValueError, match="no visible token"):
        masking_from_visible(torch.zeros(2, 5, dtype=torch.bool))
    pad = torch.tensor([[False, False, True]])
    with pytest.raises(ValueError, match="padding token cannot be visible"):
        masking_from_visible(torch.tensor([[True, False, True]]), pad)
    assert torch.equal(no_masking(1, 3, pad).visible, ~pad)
