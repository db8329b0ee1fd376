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
- Thin things: a reference cell (8 × 8 px at the matching size) over a red bridge tower against blue sky
  averages to pink. :meth:`Match.ab_at` instead takes, at any finer resolution, the colour of the matched
  cells' pixels *whose lightness is near the photo's there* (the darker steel, not the brighter sky: Welsh
  et al.'s luminance matching inside each match), falling back to the cells' mean colour where they hold no
  such lightness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from worker.colorizers.edge_aware import guided_filter
from worker.colorizers.nets.unet_bins import UNetBins, serve_shape

MATCH_SHORT_SIDE = 256  # both images' L go through the encoder at this short side (multiples of 32)
CELL = 8  # px at the matching size: one match location (the features' stride)
LEVELS = torch.arange(0.0, 101.0, 5.0)  # L levels at which each match's colour by lightness is tabulated
LEVEL_SIGMA = 7.0  # L units: how near in lightness a reference pixel must be to lend its colour
LEVEL_FALLBACK = 0.02  # weight of the cells' mean colour (a level's mass is in [0, 1])
# What the transferred colours are computed by (the fusion trainer's cache is valid for one recipe).
RECIPE = f"encoder s8+s16+s32 at {MATCH_SHORT_SIDE}, colour by lightness σ {LEVEL_SIGMA:g}"


@dataclass(frozen=True)
class Match:
    ab: Tensor  # (1, 2, h, w) the matched reference cells' mean ab, Lab units
    confidence: Tensor  # (1, 1, h, w) in [0, 1]
    level_ab: Tensor  # (1, levels·2, h, w) Σ over matched pixels near each L level of weight × ab
    level_mass: Tensor  # (1, levels, h, w) Σ of those weights (0: no matched pixel of that lightness)

    def ab_at(self, lightness: Tensor) -> Tensor:
        """ab (1, 2, H, W) at the size of ``lightness`` (1, 1, H, W) in [0, 100]: at each location the
        colour of the matched reference pixels whose lightness is near it (see the module docstring)."""
        size = lightness.shape[-2:]

        def up(t: Tensor) -> Tensor:
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        levels = LEVELS.numel()
        position = (lightness[0, 0].float() / float(LEVELS[1] - LEVELS[0])).clamp(0, levels - 1)
        low = position.floor().long()
        high = (low + 1).clamp(max=levels - 1)
        frac = position - low

        def at_lightness(table: Tensor, channels: int) -> Tensor:  # (1, levels·k, H, W) -> (k, H, W)
            table = table.reshape(levels, channels, *size)
            pick = [torch.gather(table, 0, i[None, None].expand(1, channels, *size))[0] for i in (low, high)]
            return pick[0] * (1 - frac) + pick[1] * frac

        weighted = at_lightness(up(self.level_ab), 2) + LEVEL_FALLBACK * up(self.ab)[0]
        return (weighted / (at_lightness(up(self.level_mass), 1) + LEVEL_FALLBACK))[None]


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


def level_tables(ref_lab: Tensor) -> tuple[Tensor, Tensor]:
    """Per reference cell (:data:`CELL` px) and L level: the share of its pixels near that lightness
    (Gaussian, :data:`LEVEL_SIGMA`) and their mean ab times that share. ref_lab (1, 3, H, W), H and W
    multiples of CELL -> mass (cells, levels) and weighted ab (cells, levels·2), cells in row-major order."""
    lightness, ab = ref_lab[0, :1], ref_lab[0, 1:]
    near = torch.exp(-((lightness - LEVELS.to(ref_lab)[:, None, None]) ** 2) / (2 * LEVEL_SIGMA**2))
    mass = F.avg_pool2d(near[None], CELL)[0]  # (levels, h', w')
    weighted = F.avg_pool2d((near[:, None] * ab[None]).flatten(0, 1)[None], CELL)[0]  # (levels·2, h', w')
    return mass.flatten(1).T, weighted.flatten(1).T


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
    smoothed along the photo's edges, and the tables behind :meth:`Match.ab_at` (the colour by lightness, at
    any resolution); callers resize them to whatever resolution they need.
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
    mass, weighted = level_tables(ref)
    return Match(
        ab=ab,
        confidence=confidence,
        level_ab=(weights @ weighted).T.reshape(1, -1, h, w),
        level_mass=(weights @ mass).T.reshape(1, -1, h, w),
    )
