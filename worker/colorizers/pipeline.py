"""Full-resolution colorization around any colorizer (torch-free).

The colorizer predicts ab at its working size; here ab is upsampled to the photo's own size and joined with
the photo's own L. Out-of-gamut colours are pulled towards gray per pixel (chroma scaled down, hue and L
kept) instead of clipping each RGB channel, so the output's lightness stays the input's. A 16-bit scan's L
(more than 256 levels) is composed into uint16 RGB (``depth=16``), so its result keeps them.
:func:`predict_many` is how the worker, ``colorlab evaluate`` and ``colorlab colorize`` colorize photos.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from worker.colorizers import lab as labmod
from worker.colorizers.base import (
    BatchColorizer,
    Colorizer,
    IterationState,
    Progress,
    ProgressCallback,
    ResumableColorizer,
)

# Full-size planes are composed this many pixels at a time (a band of whole rows): a 40 MP scan's float32
# temporaries (L, a, b, three f_inv planes, linear RGB, the LUT's index) were 2.2 GB at once, a band's are
# ~60 MB. Every step but the ab resize is per pixel, and the resize of a band is the resize of the whole.
COMPOSE_BAND_PIXELS = 1 << 20


def area_reduced(rgb: np.ndarray, max_pixels: int) -> np.ndarray:
    """An (H, W, 3) uint8 image area-averaged to at most ``max_pixels``, its shape kept; a smaller one (or
    another dtype) as it is."""
    height, width = rgb.shape[:2]
    if height * width <= max_pixels or rgb.dtype != np.uint8:
        return rgb
    scale = (max_pixels / (height * width)) ** 0.5
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).resize(size, Image.Resampling.BOX))


def resize_ab(ab: np.ndarray, height: int, width: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Bilinear resize of an (h, w, 2) ab map to (height, width, 2); ``rows`` (top, bottom): only those rows
    of that resize, (bottom - top, width, 2)."""
    top, bottom = rows if rows is not None else (0, height)
    if ab.shape[:2] == (height, width):
        return ab[top:bottom].astype(np.float32, copy=False)
    # Pillow maps output row i to source row box_top + (i + 0.5)·scale and clips its kernel to the whole
    # source, not the box: a band's rows come out as the full resize's.
    scale = ab.shape[0] / height
    box = (0.0, top * scale, float(ab.shape[1]), bottom * scale)
    out = np.empty((bottom - top, width, 2), dtype=np.float32)
    for i in range(2):
        channel = Image.fromarray(np.ascontiguousarray(ab[..., i], dtype=np.float32), mode="F")
        out[..., i] = np.asarray(channel.resize((width, bottom - top), Image.Resampling.BILINEAR, box=box))
    return out


# float32 constants for the hot path (a 1024×768 photo is ~0.8 M pixels; float64 numpy took seconds here).
_M32 = (labmod.XYZ_TO_RGB * labmod.WHITE_D65[None, :]).astype(np.float32)  # f_inv(fx, fy, fz) -> linear RGB
_EPS32 = np.float32(labmod._EPS)
_KAPPA32 = np.float32(labmod._KAPPA)
# linear RGB in [0, 1] -> sRGB uint8 through a 64 Ki-entry table (error < 0.06 of a level, steepest near 0).
_LUT_SIZE = 1 << 16
_SRGB_LUT = np.round(
    labmod.linear_to_srgb(np.linspace(0.0, 1.0, _LUT_SIZE, dtype=np.float64)) * 255.0
).astype(np.uint8)


def _f_inv32(t: np.ndarray) -> np.ndarray:
    t3 = t * t * t
    small = t3 <= _EPS32
    if small.any():
        t3[small] = (116 * t[small] - 16) / _KAPPA32
    return t3


def _lab_to_linear(lightness: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L, a, b (same shape, float32) -> linear sRGB (..., 3) float32 (unclipped)."""
    fy = (lightness + np.float32(16)) / np.float32(116)
    xyz_f = (_f_inv32(fy + a / np.float32(500)), _f_inv32(fy), _f_inv32(fy - b / np.float32(200)))
    out = np.empty((*lightness.shape, 3), dtype=np.float32)
    for c in range(3):
        out[..., c] = _M32[c, 0] * xyz_f[0] + _M32[c, 1] * xyz_f[1] + _M32[c, 2] * xyz_f[2]
    return out


def _in_gamut(linear: np.ndarray, tol: float = 1e-5) -> np.ndarray:
    return np.all((linear >= -tol) & (linear <= 1 + tol), axis=-1)


def linear_to_srgb_uint8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB (clipped to [0, 1]) -> sRGB uint8 via the lookup table."""
    index = np.clip(linear, 0.0, 1.0)
    index *= _LUT_SIZE - 1
    index += 0.5
    return _SRGB_LUT[index.astype(np.int32)]


def linear_to_srgb_uint16(linear: np.ndarray) -> np.ndarray:
    """Linear RGB (clipped to [0, 1]) -> sRGB uint16 (a 16-bit scan's result), computed in float32 (within
    half a level of the exact curve): a table as fine near black, where the curve's slope is 12.92, takes
    megabytes and was no faster."""
    linear = np.clip(linear, 0.0, 1.0)
    encoded = np.power(linear, np.float32(1 / 2.4))
    encoded *= np.float32(1.055)
    encoded -= np.float32(0.055)
    dark = linear <= np.float32(0.0031308)
    encoded[dark] = linear[dark] * np.float32(12.92)
    encoded *= np.float32(65535)
    encoded += np.float32(0.5)
    return encoded.astype(np.uint16)


def compose(
    lightness: np.ndarray,
    ab: np.ndarray,
    *,
    steps: int = 8,
    band_pixels: int = COMPOSE_BAND_PIXELS,
    depth: int = 8,
) -> np.ndarray:
    """Join full-size L (H, W) with ab (any size) into an sRGB image, mapping into gamut by chroma: uint8,
    or with ``depth=16`` uint16 (a 16-bit scan's result, whose L has more than 256 levels to keep).

    Works in float32, in bands of whole rows of about ``band_pixels`` pixels (the same result as one band:
    only the output and one band's temporaries are alive); out-of-gamut pixels get the largest chroma scale
    s in [0, 1] (bisection, ``steps`` halvings) for which L with s·ab is inside the sRGB gamut, so hue and L
    are kept.
    """
    if depth not in (8, 16):
        raise ValueError(f"depth must be 8 or 16 bits, got {depth}")
    height, width = lightness.shape
    out = np.empty((height, width, 3), dtype=np.uint8 if depth == 8 else np.uint16)
    rows = max(1, band_pixels // max(1, width))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        band_ab = resize_ab(ab, height, width, rows=(top, bottom))
        out[top:bottom] = _compose_band(lightness[top:bottom], band_ab, steps, depth)
    return out


def _compose_band(lightness: np.ndarray, ab: np.ndarray, steps: int, depth: int = 8) -> np.ndarray:
    """:func:`compose` of L (h, w) and ab (h, w, 2) of the same size."""
    lum = np.ascontiguousarray(lightness, dtype=np.float32)
    a = np.ascontiguousarray(ab[..., 0], dtype=np.float32)
    b = np.ascontiguousarray(ab[..., 1], dtype=np.float32)
    if not (np.isfinite(lum).all() and np.isfinite(a).all() and np.isfinite(b).all()):
        # a NaN would index the table out of its bounds (8-bit) or turn black (16-bit) unsaid
        raise ValueError("the colours to compose are not all finite numbers (NaN or infinity)")
    linear = _lab_to_linear(lum, a, b)
    out = ~_in_gamut(linear)
    if out.any():
        sub_l, sub_a, sub_b = lum[out], a[out], b[out]
        lo = np.zeros(len(sub_l), dtype=np.float32)
        hi = np.ones(len(sub_l), dtype=np.float32)
        for _ in range(steps):  # bisection on the chroma scale: largest s with L, s*ab in gamut
            mid = (lo + hi) / 2
            ok = _in_gamut(_lab_to_linear(sub_l, sub_a * mid, sub_b * mid))
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        linear[out] = _lab_to_linear(sub_l, sub_a * lo, sub_b * lo)
    return linear_to_srgb_uint8(linear) if depth == 8 else linear_to_srgb_uint16(linear)


def colorize_lightness(
    colorizer: Colorizer,
    lightness: np.ndarray,
    *,
    reference: np.ndarray | None = None,
    params: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    depth: int = 8,
    resume: IterationState | None = None,
) -> np.ndarray:
    """Colorize one photo given its L plane; returns RGB at the same resolution, uint8 (or, ``depth=16``,
    uint16). ``resume``: an iterative colorizer's saved state of this photo to go on from."""
    if resume is not None and isinstance(colorizer, ResumableColorizer):
        ab = colorizer.predict_ab(
            lightness, reference=reference, params=params or {}, progress=progress, resume=resume
        )
    else:
        ab = colorizer.predict_ab(lightness, reference=reference, params=params or {}, progress=progress)
    return compose(lightness, ab, depth=depth)


def colorize_rgb(colorizer: Colorizer, rgb: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Colorize an RGB uint8 photo (its colour, if any, is ignored: only its lightness is used)."""
    return colorize_lightness(colorizer, labmod.rgb_to_lightness(rgb), **kwargs)


def predict_many(
    colorizer: Colorizer,
    lightness: Sequence[np.ndarray],
    *,
    params: Mapping[str, Any] | None = None,
    references: Sequence[np.ndarray | None] | None = None,
    batch_size: int = 16,
    progress: ProgressCallback | None = None,
    depths: Sequence[int] | None = None,
    resume: IterationState | None = None,
) -> list[np.ndarray]:
    """Colorize several photos given their L planes; returns RGB at each photo's own resolution, uint8, or
    uint16 for a photo whose ``depths`` entry is 16 (a 16-bit scan: its L plane has more than 256 levels).

    A feed-forward colorizer (one with ``predict_ab_batch``) runs up to ``batch_size`` photos per forward pass
    when there is more than one photo and no reference, and ``progress`` hears after each pass how many
    photos are done. Otherwise the photos run one at a time, each with its reference, and ``progress`` goes
    to the colorizer (an iterative one reports every step and may raise ``JobCancelled`` through it);
    ``resume``, the saved state of the one photo, lets an iterative colorizer go on from it.
    """
    if resume is not None and len(lightness) != 1:
        raise ValueError("a saved state resumes one photo, not several")
    params = params or {}
    refs = list(references) if references is not None else [None] * len(lightness)
    if len(refs) != len(lightness):
        raise ValueError(f"{len(lightness)} photos but {len(refs)} references")
    bits = list(depths) if depths is not None else [8] * len(lightness)
    if len(bits) != len(lightness):
        raise ValueError(f"{len(lightness)} photos but {len(bits)} depths")
    if len(lightness) > 1 and all(r is None for r in refs) and isinstance(colorizer, BatchColorizer):
        out: list[np.ndarray] = []
        for start in range(0, len(lightness), max(1, batch_size)):
            planes = list(lightness[start : start + max(1, batch_size)])
            abs_ = colorizer.predict_ab_batch(planes, params=params)
            depth_of = bits[start : start + len(planes)]
            out += [compose(p, ab, depth=d) for p, ab, d in zip(planes, abs_, depth_of, strict=True)]
            if progress is not None:
                total = len(lightness)
                progress(Progress(step=len(out), total=total, message=f"{len(out)} of {total} photos"))
        return out
    return [
        colorize_lightness(
            colorizer, plane, reference=ref, params=params, progress=progress, depth=depth, resume=resume
        )
        for plane, ref, depth in zip(lightness, refs, bits, strict=True)
    ]
