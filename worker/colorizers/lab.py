"""sRGB <-> CIE Lab (D65, 2° observer) in numpy and torch, with explicit normalisation.

Conventions used across ColorLab:
- RGB images are uint8 (H, W, 3) or float in [0, 1]; sRGB companding per IEC 61966-2-1.
- L is in [0, 100]; a and b are in Lab units (roughly [-128, 127]).
- Networks see ``L / 50 - 1`` (in [-1, 1]) and predict ``ab / 128`` (tanh range); see the helpers below.
"""

from __future__ import annotations

import numpy as np

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


def _as_unit_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float64) / 255.0
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
    """(..., 3) sRGB (uint8 or float in [0, 1]) -> (..., 3) float32 Lab."""
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


def rgb_to_lightness(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB -> (H, W) float32 L in [0, 100] (only the Y row of the matrix is needed)."""
    y = srgb_to_linear(_as_unit_rgb(rgb)) @ RGB_TO_XYZ[1]
    return (116 * _f(y) - 16).astype(np.float32)


def gray_to_lightness(gray: np.ndarray) -> np.ndarray:
    """(H, W) gray levels (uint8, or float in [0, 1]) read as sRGB R=G=B -> L in [0, 100]."""
    y = srgb_to_linear(_as_unit_rgb(gray))
    return (116 * _f(y) - 16).astype(np.float32)


def lightness_to_gray_uint8(lightness: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> the sRGB gray level (uint8) with that lightness (a=b=0)."""
    fy = (lightness.astype(np.float64) + 16) / 116
    return np.round(linear_to_srgb(_f_inv(fy)) * 255.0).astype(np.uint8)


def normalize_l(lightness: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> network input in [-1, 1]."""
    return lightness / L_CENTER - 1.0


def normalize_ab(ab: np.ndarray) -> np.ndarray:
    return ab / AB_SCALE


def denormalize_ab(ab_norm: np.ndarray) -> np.ndarray:
    return ab_norm * AB_SCALE
