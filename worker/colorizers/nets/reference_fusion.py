"""``reference-fusion``: the learned last step of ``unet-bins-reference`` — at every location, how far to
trust the reference's colour and how strongly to colour.

``unet-bins`` gives, per location at 1/4 resolution, a distribution p over the colour bins; the reference
gives a prior q over the same bins (:mod:`worker.colorizers.reference_guided`). The hand-made rule decodes
p·q everywhere, so the reference decides even where its object has other colours than the photo's (a red
and a blue T-shirt). This small convolutional net reads, per location, the U-Net's last decoder features
(what is there), the entropies of p and q, their overlap log Σ p·q, the match's confidence and the
lightness, plus a summary of them over the whole photo, and outputs

- α ∈ [0, 2], the prior's exponent: posterior ∝ p · q^α (0 ignores the reference, 1 is the hand-made rule);
- the annealed mean's temperature (the paper's 0.38 to start, within [0.05, 3]);
- a chroma factor in [0, 1.5] on the decoded ab (1 to start): where neither the net nor the reference can
  tell the colour (a T-shirt), a weaker colour costs less than a wrong one.

Trained on pairs of *training* photos of the same class or scene, and a quarter of pairs whose reference is
the photo itself mirrored (so that it learns to follow a reference with the right colours), with the loss
the AuC measures (the ab distance to the truth, capped at 150) plus a term that pulls each photo's mean
chroma towards the truth's, so it does not win by washing every colour out:
:mod:`worker.colorizers.training.reference_fusion_trainer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from worker.colorizers.nets.unet_bins import vividness_to_temperature

ARCH = "reference-fusion"
PAPER_TEMPERATURE = 0.38
TEMPERATURE_RANGE = (0.05, 3.0)
MAX_ALPHA = 2.0
MAX_CHROMA = 1.5
STATISTICS = 5  # entropies of p and q, their overlap, the match's confidence, the lightness


@dataclass(frozen=True)
class Fused:
    log_posterior: Tensor  # (N, Q, h, w), normalised over the bins
    temperature: Tensor  # (N, 1, h, w)
    chroma: Tensor  # (N, 1, h, w): factor on the decoded ab
    alpha: Tensor  # (N, 1, h, w): the prior's exponent


class ReferenceFusion(nn.Module):
    """Net output (logits, decoder features) + reference prior -> posterior and temperature per location."""

    def __init__(self, features: int = 64, width: int = 64) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(features + STATISTICS, width, 1), nn.ReLU(True))
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(True),
        )
        self.context = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(True))  # the whole photo's summary
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        # Zero start: α = 1, T = 0.38 and chroma 1 everywhere, i.e. the hand-made rule, before any training.
        assert self.out.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(
        self, logits: Tensor, log_prior: Tensor, decoded: Tensor, confidence: Tensor, lightness: Tensor
    ) -> Fused:
        """logits and log_prior (N, Q, h, w), the U-Net's decoder features (N, C, h, w), the match's
        confidence (N, 1, h, w) in [0, 1] and L (N, 1, h, w) in [0, 100], all at the logits' size."""
        log_p = torch.log_softmax(logits.float(), dim=1)
        log_q = log_prior.float()
        log_bins = math.log(logits.shape[1])
        stats = [
            -(log_p.exp() * log_p).sum(1, keepdim=True) / log_bins,
            -(log_q.exp() * log_q).sum(1, keepdim=True) / log_bins,
            torch.logsumexp(log_p + log_q, dim=1, keepdim=True) / 6.0,  # log overlap, about [-6, 0]
            confidence.float(),
            lightness.float() / 100.0,
        ]
        x = self.inp(torch.cat([decoded.float(), *stats], dim=1))
        x = self.body(x) + self.context(x.mean(dim=(2, 3), keepdim=True))
        out = self.out(x)
        alpha = MAX_ALPHA * torch.sigmoid(out[:, :1])
        temperature = (PAPER_TEMPERATURE * torch.exp(out[:, 1:2])).clamp(*TEMPERATURE_RANGE)
        chroma = MAX_CHROMA * torch.sigmoid(out[:, 2:3] + math.log(2.0))  # 1.5·sigmoid(log 2) = 1
        return Fused(torch.log_softmax(log_p + alpha * log_q, dim=1), temperature, chroma, alpha)


def decode_fused(fused: Fused, bins: Tensor) -> Tensor:
    """ab (N, 2, h, w): the posterior's annealed mean at the fused temperature, times the fused chroma
    factor."""
    weights = torch.softmax(fused.log_posterior / fused.temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", weights, bins.to(weights)) * fused.chroma


def at_vividness(fused: Fused, vividness: float) -> Fused:
    """``fused`` at a vividness in [0, 1] (the job page's slider; 0.5 returns it unchanged).

    The temperature is scaled as ``unet-bins``' is (0.38^(2·vividness) instead of 0.38), and the learned
    step's muting, a chroma factor below 1, is raised to the power 2·(1 − vividness): 1 lifts it (factor 1),
    0 squares it. The temperature alone barely moves the fused colours (mean colourfulness 23.0 → 26.8 from
    0 to 1 on the 45 reference pairs, against 18.5 → 36.9 with the muting scaled too), because the
    learned step mutes with its chroma factor, not with a flat distribution. Every location's chroma grows
    with vividness.
    """
    vividness = min(max(vividness, 0.0), 1.0)
    temperature_factor = vividness_to_temperature(vividness) / PAPER_TEMPERATURE
    boost, muting = fused.chroma.clamp_min(1.0), fused.chroma.clamp_max(1.0)  # chroma = boost × muting
    chroma = boost * muting ** (2.0 * (1.0 - vividness))
    return Fused(fused.log_posterior, fused.temperature * temperature_factor, chroma, fused.alpha)
