"""Edge-aware smoothing: the guided filter (He, Sun & Tang 2010), guided by the photo's lightness, so that
colours are evened out inside a region and stop at its edges (pure torch)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def guided_filter(guide: Tensor, src: Tensor, radius: int = 2, eps: float = 1e-3) -> Tensor:
    """Edge-aware smoothing of ``src`` (N, C, H, W) guided by ``guide`` (N, 1, H, W) scaled to [0, 1].

    ``radius``: the window's half-width in pixels; ``eps``: the guide's variance below which a window counts
    as flat (1e-2: edges under ~10 L units of contrast are smoothed over)."""

    def box(x: Tensor) -> Tensor:
        # Separable (a column, then a row): 2·(2r+1) reads a pixel instead of (2r+1)²; at the borders each
        # pass averages what is inside, so the product is the 2-D window's mean over what is inside too.
        x = F.avg_pool2d(x, (2 * radius + 1, 1), stride=1, padding=(radius, 0), count_include_pad=False)
        return F.avg_pool2d(x, (1, 2 * radius + 1), stride=1, padding=(0, radius), count_include_pad=False)

    guide, src = guide.contiguous(), src.contiguous()  # channels-last input pools several times slower
    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i**2
    mean_p = box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)
