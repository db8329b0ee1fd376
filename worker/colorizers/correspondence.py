"""Semantic correspondence between a gray photo and a colour reference, and the reference's colours moved
onto the photo where they belong (pure torch).

- Features: both images' **L only** go through the ``unet-bins`` network's ImageNet encoder (so colour cannot
  bias the match); the stride-8 and stride-16 maps and the 1/32 bottleneck (upsampled) are L2-normalised
  per part and concatenated, so a location is described from texture up to "what this is".
- Match: cosine similarity of every photo location with every reference location at 1/8 resolution,
  softmax with temperature ``tau`` over the reference, and the reference's ab (pooled to 1/8) averaged with
  those weights.
- Confidence per location: the best similarity (rescaled from ``floor``..1 to 0..1) times forward-backward
  agreement (the reference location it picks must pick a location near it back).
- Edges: the transferred ab and the confidence are smoothed with a guided filter (He et al. 2010) whose
  guide is the photo's L, so colours stop at the photo's edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from worker.colorizers.nets.unet_bins import UNetBins, serve_shape

MATCH_SHORT_SIDE = 256  # both images' L go through the encoder at this short side (multiples of 32)


@dataclass(frozen=True)
class Match:
    ab: Tensor  # (1, 2, h, w) reference ab transferred to the photo, Lab units
    confidence: Tensor  # (1, 1, h, w) in [0, 1]


def _to_multiple(image: Tensor, short: int) -> Tensor:
    """Resized to the net's input rule (:func:`serve_shape`: multiples of 32, long side bounded)."""
    size = serve_shape(image.shape[-2], image.shape[-1], short=short)
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def features(net: UNetBins, lightness: Tensor) -> Tensor:
    """L (1, 1, H, W) in [0, 100], H and W multiples of 32 -> (1, C, H/8, W/8) unit-length descriptors."""
    _, _, s8, s16, s32 = net.encode(lightness)
    size = s8.shape[-2:]
    parts = [s8, F.interpolate(s16, size=size, mode="bilinear", align_corners=False),
             F.interpolate(net.bottleneck(s32), size=size, mode="bilinear", align_corners=False)]  # fmt: skip
    return F.normalize(torch.cat([F.normalize(p.float(), dim=1) for p in parts], dim=1), dim=1)


def guided_filter(guide: Tensor, src: Tensor, radius: int = 2, eps: float = 1e-3) -> Tensor:
    """Edge-aware smoothing of ``src`` (N, C, H, W) guided by ``guide`` (N, 1, H, W) scaled to [0, 1]."""

    def box(x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)

    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i**2
    mean_p = box(src)
    cov_ip = box(guide * src) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def match(
    net: UNetBins,
    lightness: Tensor,
    ref_lab: Tensor,
    *,
    tau: float = 0.02,
    floor: float = 0.5,
    cycle_sigma: float = 2.0,
) -> Match:
    """Transfer ``ref_lab``'s (1, 3, h', w') colours onto the photo with L ``lightness`` (1, 1, H, W).

    Returns ab and confidence at 1/8 of the photo's matching size (see :data:`MATCH_SHORT_SIDE`), already
    smoothed along the photo's edges; callers resize them to whatever resolution they need.
    """
    photo = _to_multiple(lightness, MATCH_SHORT_SIDE)
    ref = _to_multiple(ref_lab, MATCH_SHORT_SIDE)
    f_photo, f_ref = features(net, photo), features(net, ref[:, :1])
    h, w = f_photo.shape[-2:]
    hr, wr = f_ref.shape[-2:]
    sim = torch.einsum("cp,cq->pq", f_photo[0].flatten(1), f_ref[0].flatten(1))  # (hw, h'w')
    weights = torch.softmax(sim / tau, dim=1)
    ref_ab = F.adaptive_avg_pool2d(ref[:, 1:], (hr, wr))[0].flatten(1)  # (2, h'w')
    ab = (weights @ ref_ab.T).T.reshape(1, 2, h, w)
    best, forward = sim.max(dim=1)  # photo -> reference
    back = sim.argmax(dim=0)[forward]  # -> photo again
    ys, xs = torch.arange(h * w) // w, torch.arange(h * w) % w
    cycle = torch.exp(-((ys - back // w) ** 2 + (xs - back % w) ** 2).float() / (2 * cycle_sigma**2))
    confidence = ((best - floor) / (1 - floor)).clamp(0, 1) * cycle
    guide = F.interpolate(photo, size=(h, w), mode="area") / 100.0
    ab = guided_filter(guide, ab)
    confidence = guided_filter(guide, confidence.reshape(1, 1, h, w)).clamp(0, 1)
    return Match(ab=ab, confidence=confidence)
