"""sRGB <-> CIE Lab (D65, 2° observer) in numpy and torch, with explicit normalisation.

Conventions used across ColorLab:
- RGB images are uint8 (H, W, 3) or float in [0, 1]; sRGB companding per IEC 61966-2-1. A 16-bit scan's
  gray levels and its result are uint16 (:func:`gray16_to_lightness`, :func:`to_uint8`).
- L is in [0, 100]; a and b are in Lab units (roughly [-128, 127]).
- Every net takes L in [0, 100] and returns ab in Lab units; inside ``forward`` the report's nets see
  ``L / 50 - 1`` (in [-1, 1]) and predict ``ab / 128`` (tanh range): :func:`normalize_l`,
  :func:`normalize_ab` and :func:`denormalize_ab`, which take numpy arrays and torch tensors alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch

# numpy arrays or torch tensors: the normalisation is plain arithmetic on either.
Planes = TypeVar("Planes", np.ndarray, "torch.Tensor")

# D65 reference white (CIE 1931 2°), XYZ scaled so Y = 1.
WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float64)
RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ],
    dtype=np.float64,
)
XYZ_TO_RGB = np.linalg.inv(RGB_TO_XYZ)
_EPS = 216 / 24389  # (6/29)^3
_KAPPA = 24389 / 27
AB_SCALE = 128.0
L_CENTER = 50.0
# Whole photos are converted this many pixels at a time (bands of whole rows): the conversions are per
# pixel, and a 40 MP photo's float64 temporaries were gigabytes at once (rgb_to_lab: 3.8 GB).
BAND_PIXELS = 1 << 20


def row_bands(image: np.ndarray) -> Iterator[np.ndarray]:
    """An (H, W, ...) image as bands of whole rows of about :data:`BAND_PIXELS` pixels each (views)."""
    rows = max(1, BAND_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], rows):
        yield image[top : top + rows]


def in_bands(convert: Callable[[np.ndarray], np.ndarray], image: np.ndarray) -> np.ndarray:
    """``convert`` (per pixel, leading axis kept) of an (H, W, ...) image, in bands of about
    :data:`BAND_PIXELS` pixels written into one output: only the output and one band's temporaries are
    alive. Smaller images are converted whole."""
    if image.ndim < 2 or image.shape[0] * image.shape[1] <= BAND_PIXELS:
        return convert(image)
    bands = row_bands(image)
    first = convert(next(bands))
    out = np.empty((image.shape[0], *first.shape[1:]), dtype=first.dtype)
    out[: len(first)] = first
    at = len(first)
    for band in bands:
        out[at : at + len(band)] = convert(band)
        at += len(band)
    return out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A reference image as (H, W, 3): gray (H, W) repeated to three channels, an alpha channel dropped;
    ValueError for any other shape."""
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=-1)
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return image[..., :3]
    raise ValueError(f"an image must be (H, W) gray or (H, W, 3) RGB, not of shape {image.shape}")


def _as_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    """uint8 (0..255), uint16 (0..65535) or float (0..1) sRGB levels as float64 in [0, 1]; another integer
    type is refused rather than read as floats (every level of it would be white)."""
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
    if rgb.dtype == np.uint16:
        return rgb.astype(np.float64) / 65535.0
    if rgb.dtype.kind != "f":
        raise TypeError(f"sRGB levels must be uint8, uint16 or float in [0, 1], not {rgb.dtype}")
    return np.clip(rgb.astype(np.float64), 0.0, 1.0)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), (_KAPPA * t + 16) / 116)


def _f_inv(t: np.ndarray) -> np.ndarray:
    t3 = t**3
    return np.where(t3 > _EPS, t3, (116 * t - 16) / _KAPPA)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB (uint8 or float in [0, 1]) -> (..., 3) float32 Lab (a photo in bands of rows)."""
    return in_bands(_rgb_to_lab, rgb)


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    xyz = srgb_to_linear(_as_unit_rgb(rgb)) @ RGB_TO_XYZ.T / WHITE_D65
    fx, fy, fz = (_f(xyz[..., i]) for i in range(3))
    lab = np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], axis=-1)
    return lab.astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) Lab -> (..., 3) float64 sRGB in [0, 1] (out-of-gamut values clipped)."""
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    xyz = np.stack([_f_inv(fx), _f_inv(fy), _f_inv(fz)], axis=-1) * WHITE_D65
    return linear_to_srgb(xyz @ XYZ_TO_RGB.T)


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    return np.round(lab_to_rgb(lab) * 255.0).astype(np.uint8)


# uint8 sRGB level -> its contribution to Y, per channel (R, G, B): a lookup replaces the companding power.
_Y_LUT = (srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)[:, None] * RGB_TO_XYZ[1][None, :]).astype(
    np.float32
)


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB -> (H, W) float32 L in [0, 100] (only the Y row of the matrix is needed).

    uint8 input goes through a 256-entry table per channel (float32, ~5× faster on a 1024×768 photo); a
    photo is converted in bands of rows.
    """
    return in_bands(_rgb_to_lightness, rgb)


def _rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        y = _Y_LUT[rgb[..., 0], 0] + _Y_LUT[rgb[..., 1], 1] + _Y_LUT[rgb[..., 2], 2]
        return np.where(y > _EPS, np.cbrt(y) * np.float32(116) - np.float32(16), y * np.float32(_KAPPA))
    y = srgb_to_linear(_as_unit_rgb(rgb)) @ RGB_TO_XYZ[1]
    return (116 * _f(y) - 16).astype(np.float32)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """(H, W) gray levels (uint8, uint16, or float in [0, 1]) read as sRGB R=G=B -> L in [0, 100]."""
    y = srgb_to_linear(_as_unit_rgb(gray))
    return (116 * _f(y) - 16).astype(np.float32)


@cache
def _lightness_of_gray16() -> np.ndarray:
    """L (float32) of every 16-bit sRGB gray level: 256 KB, made on first use (8-bit photos never need it)."""
    y = srgb_to_linear(np.arange(65536, dtype=np.float64) / 65535.0)
    return (116 * _f(y) - 16).astype(np.float32)


def gray16_to_lightness(gray: np.ndarray) -> np.ndarray:
    """(H, W) uint16 sRGB gray levels (a 16-bit scan's) -> (H, W) float32 L in [0, 100], through a table of
    all 65,536 levels: no float64 copy of a large scan, and none of its precision lost to 8 bits."""
    if gray.dtype != np.uint16:  # a signed level would index the table from its end
        raise TypeError(f"16-bit gray levels must be uint16, not {gray.dtype}")
    table: np.ndarray = _lightness_of_gray16()
    return table[gray]


# the nearest 8-bit level of each 16-bit one: v / 257 rounded (v = 257 k + 128.5 never happens: no ties)
_EIGHT_OF_SIXTEEN = np.round(np.arange(65536) / 257.0).astype(np.uint8)


def to_uint8(levels: np.ndarray) -> np.ndarray:
    """uint16 levels (a 16-bit image) -> the nearest uint8 levels (rounded, not truncated); uint8 as it is."""
    if levels.dtype == np.uint8:
        return levels
    if levels.dtype != np.uint16:
        raise TypeError(f"expected uint8 or uint16 levels, got {levels.dtype}")
    eight: np.ndarray = _EIGHT_OF_SIXTEEN[levels]
    return eight


def lightness_to_gray_uint8(lightness: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> the sRGB gray level (uint8) with that lightness (a=b=0)."""
    fy = (lightness.astype(np.float64) + 16) / 116
    return np.round(linear_to_srgb(_f_inv(fy)) * 255.0).astype(np.uint8)


def normalize_l(lightness: Planes) -> Planes:
    """L in [0, 100] -> network input ``L / 50 - 1`` in [-1, 1]."""
    return lightness / L_CENTER - 1.0


def normalize_ab(ab: Planes) -> Planes:
    """ab in Lab units -> ``ab / 128``, roughly [-1, 1] (the nets' tanh range, the report's eq. 9 scale)."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: Planes) -> Planes:
    """``ab / 128`` -> ab in Lab units."""
    return ab_norm * AB_SCALE


# ---------------------------------------------------------------------------------------------------------
# torch versions (batched, channels first). torch is imported lazily so this module stays torch-free.
# Shapes: RGB (N, 3, H, W) float in [0, 1]; Lab (N, 3, H, W) with L in [0, 100], a/b in Lab units.


def _torch() -> ModuleType:
    import torch

    return torch


def srgb_to_linear_torch(c: torch.Tensor) -> torch.Tensor:
    torch = _torch()
    return torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_torch(c: torch.Tensor) -> torch.Tensor:
    torch = _torch()
    c = c.clamp(0.0, 1.0)
    return torch.where(c <= 0.0031308, 12.92 * c, 1.055 * c.clamp(min=1e-12) ** (1 / 2.4) - 0.055)


def _f_torch(t: torch.Tensor) -> torch.Tensor:
    torch = _torch()
    return torch.where(t > _EPS, t.clamp(min=_EPS) ** (1 / 3), (_KAPPA * t + 16) / 116)


def _f_inv_torch(t: torch.Tensor) -> torch.Tensor:
    torch = _torch()
    t3 = t**3
    return torch.where(t3 > _EPS, t3, (116 * t - 16) / _KAPPA)


def rgb_to_lab_torch(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB float in [0, 1] (or uint8) -> (N, 3, H, W) Lab (uint8 input gives float32)."""
    torch = _torch()
    if rgb.dtype == torch.uint8:
        rgb = rgb.float() / 255.0
    lin = srgb_to_linear_torch(rgb.clamp(0.0, 1.0))
    m = torch.as_tensor(RGB_TO_XYZ / WHITE_D65[:, None], dtype=lin.dtype, device=lin.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin)
    fx, fy, fz = _f_torch(xyz[:, 0]), _f_torch(xyz[:, 1]), _f_torch(xyz[:, 2])
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_rgb_torch(lab: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) Lab -> (N, 3, H, W) sRGB in [0, 1] (out-of-gamut values clipped per channel)."""
    torch = _torch()
    fy = (lab[:, 0] + 16) / 116
    fx = fy + lab[:, 1] / 500
    fz = fy - lab[:, 2] / 200
    xyz = torch.stack([_f_inv_torch(fx), _f_inv_torch(fy), _f_inv_torch(fz)], dim=1)
    m = torch.as_tensor(XYZ_TO_RGB * WHITE_D65[None, :], dtype=lab.dtype, device=lab.device)
    return linear_to_srgb_torch(torch.einsum("ij,njhw->nihw", m, xyz))


def lightness_to_gray_torch(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] (any shape) -> the sRGB gray level in [0, 1] with that lightness (a = b = 0)."""
    return linear_to_srgb_torch(_f_inv_torch((lightness + 16) / 116))
