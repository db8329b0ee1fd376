"""Quantised ab colours for classification colorizers (Zhang, Isola, Efros 2016, "Colorful Image
Colorization", §2.1-2.3): the bins, soft-encoded targets, the class-rebalancing prior and the annealed mean.

How the bins are computed (:func:`gamut_bins`): every 8-bit sRGB colour (all 2^24) is converted to Lab
(D65) and its (a, b) rounded to the grid of step 10; the bins are the grid points that some sRGB colour
rounds to. That is the exact sRGB gamut at step 10: 261 bins, a from -90 to 100 and b from -110 to 90.
(Zhang et al. list 313 "in-gamut" bins, taken from a hull around ImageNet's ab values; 52 of those can
not be produced by any sRGB pixel, so as classes they would never be a target.)

How the prior is computed (:func:`empirical_distribution`, :func:`rebalancing_weights`): the share of
training pixels whose ab is nearest to each bin (counted at the network's output resolution), smoothed
with a Gaussian of σ = 5 over the bin centres, mixed with the uniform distribution with λ = 0.5 and
inverted: w ∝ ((1 − λ)·p̃ + λ/Q)^-1, normalised so that E_p̃[w] = 1 (eq. 4).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

GRID_STEP = 10
SOFT_NEIGHBOURS = 5  # soft encoding: the 5 nearest bins ...
SOFT_SIGMA = 5.0  # ... weighted by a Gaussian of σ = 5 (Lab units)
PRIOR_SIGMA = 5.0
PRIOR_LAMBDA = 0.5
DEFAULT_TEMPERATURE = 0.38


@lru_cache(maxsize=1)
def gamut_bins() -> np.ndarray:
    """(Q, 2) float32 bin centres (a, b), sorted by a then b; see the module docstring for the rule."""
    from worker.colorizers.lab import rgb_to_lab

    levels = np.arange(256, dtype=np.uint8)
    gb = np.stack(np.meshgrid(levels, levels, indexing="ij"), axis=-1).reshape(-1, 2)
    span = 64  # grid points per axis, centred on 0: ±320 Lab units holds every sRGB colour's a and b
    hit = np.zeros(span * span, dtype=bool)
    for red in levels:  # one red level at a time keeps the memory at 65,536 colours
        rgb = np.concatenate([np.full((gb.shape[0], 1), red, np.uint8), gb], axis=1)
        grid = np.round(rgb_to_lab(rgb)[:, 1:] / GRID_STEP).astype(np.int64) + span // 2
        hit[grid[:, 0] * span + grid[:, 1]] = True  # a flat index in (a, b) order: sorted by a then b
    index = np.flatnonzero(hit)
    return (np.stack([index // span, index % span], axis=1) - span // 2).astype(np.float32) * GRID_STEP


def bins_tensor(device: torch.device | str = "cpu") -> Tensor:
    return torch.from_numpy(gamut_bins()).to(device)


def nearest_bin(ab: Tensor, bins: Tensor) -> Tensor:
    """ab (N, 2, H, W) -> (N, H, W) index of the nearest bin."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    index = torch.cdist(flat, bins).argmin(dim=1)
    return index.reshape(ab.shape[0], ab.shape[2], ab.shape[3])


def soft_encode(ab: Tensor, bins: Tensor, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA) -> Tensor:
    """ab (N, 2, H, W) in Lab units -> (N, Q, H, W) targets: the k nearest bins, Gaussian-weighted, sum 1."""
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist, index = torch.cdist(flat, bins).topk(k, dim=1, largest=False)
    weight = torch.exp(-(dist**2) / (2 * sigma**2))
    weight = weight / weight.sum(dim=1, keepdim=True)
    target = torch.zeros(flat.shape[0], bins.shape[0], dtype=ab.dtype, device=ab.device)
    target.scatter_(1, index, weight)
    return target.reshape(n, h, w, -1).permute(0, 3, 1, 2)


def empirical_distribution(bin_counts: np.ndarray, sigma: float = PRIOR_SIGMA) -> np.ndarray:
    """Counts per bin -> the Gaussian-smoothed (σ over the bin centres) empirical distribution p̃."""
    bins = gamut_bins().astype(np.float64)
    p = bin_counts.astype(np.float64) / max(float(bin_counts.sum()), 1.0)
    d2 = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-d2 / (2 * sigma**2))
    kernel /= kernel.sum(axis=1, keepdims=True)  # each bin spreads its mass over its neighbours
    return (p @ kernel).astype(np.float64)


def rebalancing_weights(smoothed: np.ndarray, lam: float = PRIOR_LAMBDA) -> np.ndarray:
    """w ∝ ((1 − λ)·p̃ + λ/Q)^-1 with E_p̃[w] = 1 (Zhang et al. eq. 4)."""
    q = smoothed.shape[0]
    w = 1.0 / ((1.0 - lam) * smoothed + lam / q)
    return (w / (smoothed * w).sum()).astype(np.float32)


def count_bins(ab: Tensor, bins: Tensor) -> Tensor:
    """How many of the ab pixels (N, 2, H, W) fall nearest to each bin: (Q,) int64."""
    return torch.bincount(nearest_bin(ab, bins).flatten(), minlength=bins.shape[0])


def annealed_mean(logits: Tensor, bins: Tensor, temperature: float = DEFAULT_TEMPERATURE) -> Tensor:
    """(N, Q, H, W) logits -> (N, 2, H, W) ab: the mean of the distribution sharpened by T (eq. 5).

    T = 1 is the plain mean (safe, desaturated); T → 0 the mode (vivid, patchy). f_T(z) ∝ exp(log z / T)
    is the softmax of logits / T.
    """
    t = max(float(temperature), 1e-3)
    probs = torch.softmax(logits.float() / t, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, bins.to(probs.dtype))
