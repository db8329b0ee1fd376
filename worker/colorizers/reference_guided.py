"""Reference-guided colorization in one feed-forward pass (the method of Phung & Shin's proposal).

The ``unet-bins`` net predicts, at every location, a distribution over its colour bins. A colour reference
turns into a prior over the same bins:

- **where the match is confident** (:mod:`worker.colorizers.correspondence`): a Gaussian (σ = 10 Lab
  units) around the reference colour matched to that location;
- **elsewhere**: the reference's palette *at that lightness* — the reference's ab histogram over pixels
  whose L is near the photo's L there (σ_L = 10), flattened by a square root and mixed with 10 % uniform, so
  the reference restricts the colours (a snowy reference keeps the photo's snow white) without forcing a
  colour the net finds implausible. This is Welsh et al.'s luminance matching (2002) used as a prior.

The confidence blends the two, so the prior fades from "this colour" to "the reference's colours" to (at
lightness levels the reference lacks) nearly uniform. The hand-made rule decodes net × prior everywhere;
the learned last step (:mod:`worker.colorizers.nets.reference_fusion`) decides per location how far to follow
the prior, at which temperature to decode and how strongly to colour, so a reference whose object has other
colours than the photo's does less harm. The same reference gives every photo of a batch the same palette,
hence consistent colours across related photos. Pure torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from worker.colorizers.base import ProgressCallback
from worker.colorizers.correspondence import Match, match
from worker.colorizers.edge_aware import guided_filter
from worker.colorizers.lab import as_rgb, rgb_to_lab
from worker.colorizers.methods.unet_bins import VIVIDNESS_DEFAULT
from worker.colorizers.methods.unet_bins_reference import FOLLOW_DEFAULT
from worker.colorizers.nets.reference_fusion import (
    PAPER_TEMPERATURE,
    Fused,
    ReferenceFusion,
    at_vividness,
    decode_fused,
)
from worker.colorizers.nets.unet_bins import (
    SERVE_SHORT_SIDE,
    SMOOTH_EPS,
    SMOOTH_RADIUS,
    UNetBins,
    rasterise_hints,
    serve_shape,
)
from worker.colorizers.pipeline import area_reduced

MATCH_SIGMA = 10.0  # Lab units: spread of the prior around a matched colour
PALETTE_SIGMA_AB = 7.0  # Lab units: soft binning of the reference's colours
PALETTE_SIGMA_L = 10.0  # L units: how near in lightness a reference pixel must be to count
PALETTE_POWER = 0.5  # flattens the palette so its rare colours stay possible
PALETTE_UNIFORM = 0.1  # share of a uniform distribution mixed into the palette
PALETTE_LEVELS = torch.arange(0.0, 101.0, 5.0)  # L levels at which the palette is tabulated
PALETTE_MAX_PIXELS = 64 * 64  # the reference is area-resized to about this many pixels for its palette
# A larger reference is area-averaged to this first: it is matched at a 256-pixel short side
# (correspondence.MATCH_SHORT_SIDE) and its palette read at 64 × 64, so more only costs memory (a 40 MP
# reference's Lab alone was 480 MB).
REFERENCE_MAX_PIXELS = 1_000_000


def palette_table(ref_lab: Tensor, bins: Tensor) -> Tensor:
    """The reference's colour distribution at each of :data:`PALETTE_LEVELS`: ref_lab (1, 3, h', w') Lab,
    bins (Q, 2) -> (1, levels, Q) probabilities."""
    scale = min(1.0, (PALETTE_MAX_PIXELS / (ref_lab.shape[-2] * ref_lab.shape[-1])) ** 0.5)
    if scale < 1.0:
        ref_lab = F.interpolate(ref_lab, scale_factor=scale, mode="area")
    ab = ref_lab[0, 1:].flatten(1).T  # (n, 2)
    d2 = ((ab[:, None, :] - bins[None].to(ab)) ** 2).sum(-1)
    soft = torch.softmax(-d2 / (2 * PALETTE_SIGMA_AB**2), dim=1)  # (n, Q): each pixel's soft bin
    levels = PALETTE_LEVELS.to(ab)
    near_l = torch.exp(-((levels[:, None] - ref_lab[0, 0].flatten()[None]) ** 2) / (2 * PALETTE_SIGMA_L**2))
    table = (near_l @ soft).clamp_min(1e-12) ** PALETTE_POWER  # (levels, Q)
    table = table / table.sum(1, keepdim=True)
    return ((1 - PALETTE_UNIFORM) * table + PALETTE_UNIFORM / bins.shape[0])[None]


def palette_at(table: Tensor, lightness: Tensor) -> Tensor:
    """Each location's palette, interpolated between levels: table (N, levels, Q) from
    :func:`palette_table`, lightness (N, 1, h, w) -> (N, Q, h, w)."""
    levels = table.shape[1]
    position = (lightness[:, 0].float() / 5.0).clamp(0, levels - 1)  # (N, h, w)
    low = position.floor().long()
    high = (low + 1).clamp(max=levels - 1)
    frac = (position - low)[:, None]

    def pick(level: Tensor) -> Tensor:  # (N, h, w) level indices -> (N, Q, h, w)
        n, h, w = level.shape
        index = level.reshape(n, h * w, 1).expand(-1, -1, table.shape[2])
        return torch.gather(table, 1, index).reshape(n, h, w, -1).permute(0, 3, 1, 2)

    return pick(low) * (1 - frac) + pick(high) * frac


def reference_prior(ab: Tensor, confidence: Tensor, palette: Tensor, bins: Tensor) -> Tensor:
    """Prior (N, Q, h, w): the matched colour ab (N, 2, h, w) where the confidence (N, 1, h, w) is high, the
    palette (N, Q, h, w) elsewhere; all at the same size."""
    bins = bins.to(ab)
    # -|ab - bin|² less |ab|², which the softmax over the bins ignores: one matrix product
    closeness = 2 * torch.einsum("nchw,qc->nqhw", ab, bins) - (bins**2).sum(1)[None, :, None, None]
    near = torch.softmax(closeness / (2 * MATCH_SIGMA**2), dim=1)
    return confidence * near + (1 - confidence) * palette


def guided_logits(logits: Tensor, prior: Tensor) -> Tensor:
    """Log of the posterior ∝ softmax(logits) × prior: the hand-made rule (what an untrained
    :class:`ReferenceFusion` does), usable wherever logits are (annealed mean)."""
    return torch.log_softmax(logits.float(), dim=1) + torch.log(prior.clamp_min(1e-12))


@dataclass(frozen=True)
class FusionInputs:
    """What :class:`ReferenceFusion` reads, all at the logits' size (1/4 of the net's input)."""

    logits: Tensor  # (N, Q, h, w)
    log_prior: Tensor  # (N, Q, h, w)
    decoded: Tensor  # (N, C, h, w): the U-Net's last decoder features
    confidence: Tensor  # (N, 1, h, w)
    lightness: Tensor  # (N, 1, h, w)


@dataclass(frozen=True)
class FusionSources:
    """The few numbers :class:`FusionInputs` are computed from (an eighth of their size, so the trainer caches
    these), all at the logits' size but the palette."""

    decoded: Tensor  # (N, C, h, w): the U-Net's last decoder features
    matched_ab: Tensor  # (N, 2, h, w): the reference's colours moved onto the photo
    confidence: Tensor  # (N, 1, h, w): the match's, in [0, 1]
    lightness: Tensor  # (N, 1, h, w)
    palette: Tensor  # (N, levels, Q): :func:`palette_table`


def fusion_sources(
    net: UNetBins,
    net_input: Tensor,
    photo_l: Tensor,
    ref_lab: Tensor,
    hint_ab: Tensor | None = None,
    hint_mask: Tensor | None = None,
) -> tuple[FusionSources, Match]:
    """The net's view of ``net_input`` (1, 1, H, W) and the match with ``ref_lab`` (1, 3, h', w').

    ``photo_l`` is the photo's L at any resolution (the match works at its own fixed size).
    """
    decoded = net.decoded(net_input, hint_ab, hint_mask)
    size = decoded.shape[-2:]
    matched = match(net, photo_l, ref_lab)
    confidence = F.interpolate(matched.confidence, size=size, mode="bilinear", align_corners=False)
    lightness = F.interpolate(net_input, size=size, mode="area")
    return FusionSources(
        decoded=decoded,
        matched_ab=matched.ab_at(lightness),
        confidence=confidence.clamp(0, 1),
        lightness=lightness,
        palette=palette_table(ref_lab, net.bins),
    ), matched


def log_prior_from(net: UNetBins, sources: FusionSources) -> Tensor:
    """Log of the reference prior (:func:`reference_prior`) from ``sources``: (N, Q, h, w)."""
    palette = palette_at(sources.palette, sources.lightness)
    prior = reference_prior(sources.matched_ab.float(), sources.confidence.float(), palette, net.bins)
    return torch.log(prior.clamp_min(1e-12))


def inputs_from_sources(net: UNetBins, sources: FusionSources) -> FusionInputs:
    """The net's logits and the reference prior (:func:`log_prior_from`) from ``sources``."""
    return FusionInputs(
        logits=net.classify(sources.decoded.to(net.bins.dtype)),
        log_prior=log_prior_from(net, sources),
        decoded=sources.decoded,
        confidence=sources.confidence,
        lightness=sources.lightness,
    )


def serving_tensors(
    lightness: np.ndarray, reference: np.ndarray, short_side: int = SERVE_SHORT_SIDE
) -> tuple[Tensor, Tensor, Tensor]:
    """The photo's L (1, 1, h, w), the net's input (its L at the serving size, :func:`serve_shape`) and the
    reference's Lab (1, 3, h', w'), from the photo's L (h, w) and the reference's RGB (h', w', 3)."""
    photo_l = torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32))[None, None]
    ref_rgb = area_reduced(as_rgb(reference), REFERENCE_MAX_PIXELS)
    ref_lab = torch.from_numpy(rgb_to_lab(ref_rgb).astype(np.float32, copy=False)).permute(2, 0, 1)[None]
    size = serve_shape(lightness.shape[0], lightness.shape[1], short=short_side)
    net_input = F.interpolate(photo_l, size=size, mode="bilinear", align_corners=False, antialias=True)
    return photo_l, net_input, ref_lab


def fuse(fusion: ReferenceFusion, inputs: FusionInputs) -> Fused:
    return fusion(inputs.logits, inputs.log_prior, inputs.decoded, inputs.confidence, inputs.lightness)


def at_follow(
    net: UNetBins, sources: FusionSources, inputs: FusionInputs, fused: Fused, follow: float
) -> Fused:
    """``fused`` moved towards ignoring the reference (``follow`` 0) or following it closely (1); 0.5
    (:data:`FOLLOW_DEFAULT`) returns it unchanged: the learned step's own balance.

    The learned step follows the reference little where the match is unsure, and a thin thing (a bridge's
    tower one or two match cells wide) always is; a user whose reference has exactly the right colours
    wants them anyway. Above 0.5, by t = 2·follow − 1: every location counts as matched (confidence →
    1 − (1 − c)(1 − t), so the prior becomes the matched colour rather than the reference's palette at that
    lightness), and the prior's exponent and the chroma factor rise towards at least 1 (no muting). Below
    0.5, by u = 2·follow, the prior's exponent shrinks and the temperature and chroma factor return to the
    paper's, so that 0 is ``unet-bins``' own result: the reference left out.
    """
    follow = min(max(follow, 0.0), 1.0)
    if follow == FOLLOW_DEFAULT:
        return fused
    temperature = fused.temperature
    if follow < FOLLOW_DEFAULT:
        u = 2 * follow
        alpha, chroma, log_prior = fused.alpha * u, 1 + u * (fused.chroma - 1), inputs.log_prior
        temperature = PAPER_TEMPERATURE + u * (fused.temperature - PAPER_TEMPERATURE)
    else:
        t = 2 * follow - 1
        firm = replace(sources, confidence=1 - (1 - sources.confidence.float()) * (1 - t))
        log_prior = log_prior_from(net, firm)
        alpha = fused.alpha + t * (1 - fused.alpha).clamp_min(0)
        chroma = fused.chroma + t * (1 - fused.chroma).clamp_min(0)
    log_p = torch.log_softmax(inputs.logits.float(), dim=1)
    log_posterior = torch.log_softmax(log_p + alpha * log_prior.float(), dim=1)
    return Fused(log_posterior, temperature, chroma, alpha)


def sharp_share(confidence: Tensor, size: tuple[int, int], follow: float) -> Tensor:
    """Per location, how much of the fused ab stays as it is rather than evened out along the photo's edges
    (as ``unet-bins`` evens its own). Where the match is sure the colour is the reference's, transferred
    sharply, and stays; where it is unsure the colour is the net's, with its blotches (a yellow band on a
    forehead in the bundled example), and is evened out: √confidence at the default. 45 pairs (radius 12):
    AuC 0.9185 -> 0.9180, pairs won unchanged, the ceiling 0.9650 -> 0.9634 (radius 8 everywhere: 0.9597).
    ``follow_reference`` 0 evens out everywhere (``unet-bins``' result exactly), 1 nowhere."""
    sure = F.interpolate(confidence.float(), size=size, mode="bilinear", align_corners=False)
    sure = sure.clamp(0.0, 1.0).sqrt()
    follow = min(max(follow, 0.0), 1.0)
    if follow <= FOLLOW_DEFAULT:
        return 2.0 * follow * sure
    return sure + (2.0 * follow - 1.0) * (1.0 - sure)


class ReferenceGuidedColorizer:
    """``unet-bins`` guided by a colour reference through ``fusion`` (options: vividness, follow_reference,
    hints)."""

    def __init__(
        self,
        net: UNetBins,
        fusion: ReferenceFusion,
        device: str = "cpu",
        short_side: int = SERVE_SHORT_SIDE,
    ) -> None:
        self.name = "unet-bins-reference"
        self.device = device
        self.short_side = short_side
        self.net = net.to(device).eval()
        self.fusion = fusion.to(device).eval()

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        if reference is None:
            raise ValueError("unet-bins-reference needs a colour reference photo")
        return self.colorize_with_confidence(lightness, reference, params)[0]

    def colorize_with_confidence(
        self, lightness: np.ndarray, reference: np.ndarray, params: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """ab (h, w, 2) at the net's input size and the match's confidence (h/8, w/8) in [0, 1]."""
        with torch.inference_mode():
            photo_l, net_input, ref_lab = serving_tensors(lightness, reference, self.short_side)
            h, w = net_input.shape[-2:]
            hints = list(params.get("hints") or ())
            hint_ab, hint_mask = rasterise_hints(hints, h, w) if hints else (None, None)
            net_input, photo_l, ref_lab = (t.to(self.device) for t in (net_input, photo_l, ref_lab))
            if hint_ab is not None and hint_mask is not None:
                hint_ab, hint_mask = hint_ab.to(self.device), hint_mask.to(self.device)
            sources, matched = fusion_sources(self.net, net_input, photo_l, ref_lab, hint_ab, hint_mask)
            inputs = inputs_from_sources(self.net, sources)
            follow = float(params.get("follow_reference", FOLLOW_DEFAULT))
            fused = at_follow(self.net, sources, inputs, fuse(self.fusion, inputs), follow)
            fused = at_vividness(fused, float(params.get("vividness", VIVIDNESS_DEFAULT)))
            small_ab = decode_fused(fused, self.net.bins)
            ab = F.interpolate(small_ab, size=(h, w), mode="bilinear", align_corners=False)
            keep = sharp_share(matched.confidence, (h, w), follow)
            if bool((keep < 1).any()):
                even = guided_filter(
                    net_input.float() / 100.0, ab.float(), radius=SMOOTH_RADIUS, eps=SMOOTH_EPS
                )
                ab = keep * ab.float() + (1.0 - keep) * even
        return (
            ab[0].permute(1, 2, 0).float().cpu().numpy(),
            matched.confidence[0, 0].float().cpu().numpy(),
        )
