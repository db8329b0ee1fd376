"""The guided filter that evens out colours inside regions and stops at edges."""

from __future__ import annotations

import torch

from worker.colorizers.edge_aware import guided_filter


def test_guided_filter_keeps_colours_on_their_side_of_an_edge() -> None:
    guide = torch.zeros(1, 1, 32, 32)
    guide[..., 16:] = 1.0  # a step edge in L
    noisy = torch.where(guide > 0.5, 40.0, -40.0).expand(1, 2, 32, 32) + torch.randn(1, 2, 32, 32) * 10
    smooth = guided_filter(guide, noisy, radius=3, eps=1e-3)
    assert smooth[..., :14].mean() < -35 and smooth[..., 18:].mean() > 35  # no bleeding across
    assert smooth[..., :14].std() < noisy[..., :14].std() / 2  # flat areas are smoothed
