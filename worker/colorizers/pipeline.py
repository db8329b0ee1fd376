"""Full-resolution colorization around any colorizer (torch-free).

The colorizer predicts ab at its working size; here ab is upsampled to the photo's own size and joined with
the photo's own L. Out-of-gamut colours are pulled towards gray per pixel (chroma scaled down, hue and L
kept) instead of clipping each RGB channel, so the output's lightness stays the input's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from worker.colorizers import lab as labmod
from worker.colorizers.base import Colorizer, ProgressCallback


def resize_ab(ab: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an (h, w, 2) ab map to (height, width, 2)."""
    if ab.shape[:2] == (height, width):
        return ab.astype(np.float32, copy=False)
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(ab[..., i], dtype=np.float32), mode="F").resize(
            (width, height), Image.Resampling.BILINEAR
        ))
        for i in range(2)
    ]
    return np.stack(channels, axis=-1)


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    xyz = np.stack([labmod._f_inv(fx), labmod._f_inv(fy), labmod._f_inv(fz)], axis=-1) * labmod.WHITE_D65
    return xyz @ labmod.XYZ_TO_RGB.T


def compose(lightness: np.ndarray, ab: np.ndarray, *, steps: int = 8) -> np.ndarray:
    """Join full-size L (H, W) with ab (any size) into an sRGB uint8 image, mapping into gamut by chroma."""
    height, width = lightness.shape
    ab = resize_ab(ab, height, width).astype(np.float64)
    lab = np.concatenate([lightness[..., None].astype(np.float64), ab], axis=-1)
    linear = _lab_to_linear(lab)
    tol = 1e-6
    out = ((linear < -tol) | (linear > 1 + tol)).any(axis=-1)
    if out.any():
        sub_l, sub_ab = lab[out, :1], lab[out, 1:]
        lo = np.zeros(len(sub_l))
        hi = np.ones(len(sub_l))
        for _ in range(steps):  # bisection on the chroma scale: largest s with L, s*ab in gamut
            mid = (lo + hi) / 2
            lin = _lab_to_linear(np.concatenate([sub_l, sub_ab * mid[:, None]], axis=-1))
            ok = ((lin >= -tol) & (lin <= 1 + tol)).all(axis=-1)
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        linear[out] = _lab_to_linear(np.concatenate([sub_l, sub_ab * lo[:, None]], axis=-1))
    rgb = labmod.linear_to_srgb(linear)
    return np.round(rgb * 255.0).astype(np.uint8)


def colorize_lightness(
    colorizer: Colorizer,
    lightness: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    params: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Colorize one photo given its L plane; returns RGB uint8 at the same resolution."""
    ab = colorizer.predict_ab(lightness, reference=reference, params=params or {}, progress=progress)
    return compose(lightness, ab)


def colorize_rgb(colorizer: Colorizer, rgb: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Colorize an RGB uint8 photo (its colour, if any, is ignored: only its lightness is used)."""
    return colorize_lightness(colorizer, labmod.rgb_to_lightness(rgb), **kwargs)
