"""Colorization quality metrics (pure numpy): the ones the colorization papers report.

Conventions: ``ab`` arrays are (H, W, 2) in CIE Lab units (a, b roughly in [-128, 127], see ``lab.py``);
RGB arrays are (H, W, 3) uint8 (or float on the same 0-255 scale). Every function compares ONE image pair;
:mod:`worker.colorizers.evaluation` averages the per-image values over a data set (each image weighs the
same).

- :func:`eq9_accuracy` - the report's eq. 9 (Zhang 2019, §7): both |Δa| and |Δb| within ε.
- :func:`raw_accuracy_curve`, :func:`raw_accuracy_auc` - Zhang, Isola & Efros 2016 (ECCV), §3.1:
  the share of pixels whose L2 ab error is within t, for t = 0…150, and the normalised area under it.
- :func:`psnr`, :func:`ssim` - on RGB, peak 255; SSIM after Wang et al. 2004 (Gaussian window 11, σ 1.5).
- :func:`colourfulness`, :func:`colourfulness_gap` - Hasler & Süsstrunk 2003, and ΔCF against the truth.
- :func:`compare_rgb` - all of the above for one colorized RGB photo against the real one (the evaluation
  runner's rows, and a finished job's scores through :mod:`worker.quality`).

Semantic interpretability (top-1 of an ImageNet classifier on the colorized photos) needs torch and lives
in :mod:`worker.colorizers.classifier` and :mod:`worker.colorizers.evaluation.scoring`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from worker.colorizers.lab import normalize_ab, rgb_to_lab

EQ9_EPSILON = 0.02
AUC_MAX_THRESHOLD = 150  # thresholds t = 0, 1, …, 150 (Lab units)
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PEAK = 255.0


def _check_ab(pred_ab: np.ndarray, true_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred_ab, dtype=np.float64)
    true = np.asarray(true_ab, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"ab maps must both be (H, W, 2); got {pred.shape} and {true.shape}")
    return pred, true


def _check_rgb(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(f"RGB images must both be (H, W, 3); got {p.shape} and {t.shape}")
    return p, t


# --------------------------------------------------------------------------------------------- eq. 9
def eq9_accuracy(pred_ab: np.ndarray, true_ab: np.ndarray, eps: float = EQ9_EPSILON) -> float:
    """The report's eq. 9 colour accuracy, normalised by H·W.

    With ab scaled to [-1, 1] (``C = ab / 128``)::

        acc(C, Ĉ) = 1/(H·W) · Σ_i Σ_j  Π_{k ∈ {a, b}} 1_[0, ε](|C_k,i,j − Ĉ_k,i,j|)

    i.e. the share of pixels whose |Δa| and |Δb| are both ≤ ε (ε = 0.02 → 2.56 Lab units). The report
    writes 1/(2·H·W) in front of the sum; since the product over k already yields one indicator per pixel,
    that extra ½ would cap the accuracy at 50 % (identical images would score 0.5), so it is left out here:
    identical images score 1. Values in [0, 1].
    """
    pred, true = _check_ab(pred_ab, true_ab)
    diff = np.abs(normalize_ab(pred) - normalize_ab(true))
    hit = (diff <= eps).all(axis=-1)
    return float(hit.mean())


# ------------------------------------------------------------------------------- raw accuracy / AuC
def ab_l2_error(pred_ab: np.ndarray, true_ab: np.ndarray) -> np.ndarray:
    """Per-pixel Euclidean ab error ``sqrt(Δa² + Δb²)`` in Lab units, shape (H, W)."""
    pred, true = _check_ab(pred_ab, true_ab)
    return np.sqrt(((pred - true) ** 2).sum(axis=-1))


def thresholds(max_threshold: int = AUC_MAX_THRESHOLD) -> np.ndarray:
    """The thresholds t = 0, 1, …, max_threshold (Lab units) of the raw accuracy curve."""
    return np.arange(max_threshold + 1, dtype=np.float64)


def raw_accuracy_curve(
    pred_ab: np.ndarray, true_ab: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD
) -> np.ndarray:
    """Zhang et al. 2016's raw accuracy: ``curve[t] = share of pixels with ‖Δab‖₂ ≤ t``, t = 0…150.

    Returns float64 (max_threshold + 1,), non-decreasing, each value in [0, 1].
    """
    err = np.sort(ab_l2_error(pred_ab, true_ab).ravel())
    counts = np.searchsorted(err, thresholds(max_threshold), side="right")
    return counts / max(err.size, 1)


def curve_auc(curve: np.ndarray) -> float:
    """Area under a raw accuracy curve, normalised to 1: the mean of its values over the thresholds.

    ``AuC = 1/(T+1) · Σ_{t=0..T} curve[t]`` (T = 150). A perfect prediction scores 1; a constant ab shift of
    length d scores the share of thresholds ≥ d, i.e. ``(T + 1 − ⌈d⌉) / (T + 1)`` for 0 < d ≤ T.
    """
    curve = np.asarray(curve, dtype=np.float64)
    return float(curve.mean())


@dataclass(frozen=True)
class RawAccuracy:
    curve: np.ndarray  # (151,) share of pixels within each threshold
    auc: float  # normalised area under ``curve``


def raw_accuracy(
    pred_ab: np.ndarray, true_ab: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD
) -> RawAccuracy:
    """The raw accuracy curve and its normalised AuC (see :func:`raw_accuracy_curve`, :func:`curve_auc`)."""
    curve = raw_accuracy_curve(pred_ab, true_ab, max_threshold)
    return RawAccuracy(curve=curve, auc=curve_auc(curve))


def raw_accuracy_auc(
    pred_ab: np.ndarray, true_ab: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD
) -> float:
    return raw_accuracy(pred_ab, true_ab, max_threshold).auc


# ------------------------------------------------------------------------------------- PSNR / SSIM
def psnr(pred_rgb: np.ndarray, true_rgb: np.ndarray, peak: float = PEAK) -> float:
    """Peak signal-to-noise ratio on RGB: ``10·log10(peak² / MSE)``, MSE over all pixels and channels.

    Peak 255 (uint8 scale). Identical images give ``inf``.
    """
    p, t = _check_rgb(pred_rgb, true_rgb)
    mse = float(((p - t) ** 2).mean())
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak**2 / mse))


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """1-D Gaussian taps (sum 1); the 2-D window is their outer product."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 2-D filtering of (H, W) with the outer product of ``taps``, 'valid' region only."""
    k = len(taps)
    h, w = img.shape
    rows = sum(taps[i] * img[i : h - k + 1 + i, :] for i in range(k))
    return sum(taps[i] * rows[:, i : w - k + 1 + i] for i in range(k))


def ssim_channel(
    x: np.ndarray, y: np.ndarray, *, peak: float = PEAK, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA
) -> float:
    """Mean SSIM of two single-channel images (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13).

    Local statistics with a Gaussian window (11×11, σ 1.5, weights sum 1)::

        SSIM(x, y) = ((2·μx·μy + C1)(2·σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)),
        C1 = (K1·L)², C2 = (K2·L)², K1 = 0.01, K2 = 0.03, L = peak = 255,

    averaged over the 'valid' window positions (no padding, as in Wang et al.'s reference code). An image
    smaller than the window uses a window as large as its shorter side.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    size = min(window, *x.shape)
    taps = gaussian_window(size, sigma)
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    mu_x = _filter_valid(x, taps)
    mu_y = _filter_valid(y, taps)
    sxx = _filter_valid(x * x, taps) - mu_x**2
    syy = _filter_valid(y * y, taps) - mu_y**2
    sxy = _filter_valid(x * y, taps) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def ssim(pred_rgb: np.ndarray, true_rgb: np.ndarray, peak: float = PEAK) -> float:
    """SSIM on RGB: :func:`ssim_channel` computed on R, G and B separately and averaged (peak 255).

    1 for identical images; at most 1.
    """
    p, t = _check_rgb(pred_rgb, true_rgb)
    return float(np.mean([ssim_channel(p[..., c], t[..., c], peak=peak) for c in range(3)]))


# ---------------------------------------------------------------------------------- colourfulness
def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness M of an RGB image on the 0-255 scale::

        rg = R − G,  yb = ½(R + G) − B,
        σ_rgyb = sqrt(σ_rg² + σ_yb²),  μ_rgyb = sqrt(μ_rg² + μ_yb²),
        M = σ_rgyb + 0.3 · μ_rgyb

    (σ, μ: standard deviation and mean over all pixels). A gray image (R = G = B) scores 0. The paper's
    scale: ~15 "slightly colourful", ~33 "moderately", ~59 "quite", ~82 "highly", ~109 "extremely".
    """
    img = np.asarray(rgb, dtype=np.float64)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"RGB image must be (H, W, 3); got {img.shape}")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = np.sqrt(rg.std() ** 2 + yb.std() ** 2)
    mu = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def colourfulness_gap(pred_rgb: np.ndarray, true_rgb: np.ndarray) -> float:
    """ΔCF = CF(prediction) − CF(ground truth): signed, negative when the prediction is duller.

    Averages of this signed gap can hide errors of both signs, so the evaluation also reports |ΔCF|.
    """
    return colourfulness(pred_rgb) - colourfulness(true_rgb)


# ------------------------------------------------------------------------------------ all at once
def compare_rgb(
    pred_rgb: np.ndarray, true_rgb: np.ndarray, *, eps: float = EQ9_EPSILON, true_ab: np.ndarray | None = None
) -> tuple[dict[str, float], np.ndarray]:
    """Every per-image metric of a colorized RGB photo against the real one, and its raw accuracy curve.

    The ab metrics compare the two images' Lab ab (sRGB D65, ``worker.colorizers.lab``), so what is scored is
    the delivered 8-bit image. Keys: eq9_acc, auc, psnr, ssim, colourfulness, cf_truth, dcf, abs_dcf.
    ``true_ab`` may be passed when already computed.
    """
    pred_ab = rgb_to_lab(pred_rgb)[..., 1:]
    if true_ab is None:
        true_ab = rgb_to_lab(true_rgb)[..., 1:]
    raw = raw_accuracy(pred_ab, true_ab)
    cf_pred, cf_true = colourfulness(pred_rgb), colourfulness(true_rgb)
    values = {
        "eq9_acc": eq9_accuracy(pred_ab, true_ab, eps),
        "auc": raw.auc,
        "psnr": psnr(pred_rgb, true_rgb),
        "ssim": ssim(pred_rgb, true_rgb),
        "colourfulness": cf_pred,
        "cf_truth": cf_true,
        "dcf": cf_pred - cf_true,
        "abs_dcf": abs(cf_pred - cf_true),
    }
    return values, raw.curve
