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


def test_the_separable_box_is_the_two_dimensional_window_mean() -> None:
    """Borders included: each 1-D pass averages what is inside, as the 2-D window without padding does."""
    import torch.nn.functional as F

    guide, src, radius, eps = torch.rand(2, 1, 30, 41), torch.randn(2, 2, 30, 41) * 30, 6, 1e-2

    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    mean_i, mean_p = box(guide), box(src)
    a = (box(guide * src) - mean_i * mean_p) / (box(guide * guide) - mean_i**2 + eps)
    expected = box(a) * guide + box(mean_p - a * mean_i)
    torch.testing.assert_close(guided_filter(guide, src, radius, eps), expected, atol=1e-4, rtol=1e-4)
