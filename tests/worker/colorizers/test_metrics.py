"""Colorization metrics: hand-computed values and known properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.colorizers import metrics

RNG = np.random.default_rng(0)


def _ab(h: int = 16, w: int = 20) -> np.ndarray:
    return RNG.uniform(-60, 60, size=(h, w, 2))


def _rgb(h: int = 24, w: int = 30) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------ eq. 9
def test_eq9_identical_is_one_not_one_half() -> None:
    ab = _ab()
    # normalised by H·W: the report's extra 1/2 would give 0.5 here
    assert metrics.eq9_accuracy(ab, ab) == 1.0


@pytest.mark.parametrize(("shift", "expected"), [(0.019, 1.0), (0.0199, 1.0), (0.0201, 0.0), (0.021, 0.0)])
def test_eq9_constant_shift_around_epsilon(shift: float, expected: float) -> None:
    true = _ab()
    pred = true + shift * 128.0  # both a and b shifted by `shift` in the [-1, 1] scale
    assert metrics.eq9_accuracy(pred, true, eps=0.02) == expected


def test_eq9_needs_both_channels_within_epsilon() -> None:
    true = _ab()
    pred = true.copy()
    pred[..., 0] += 0.01 * 128  # a within ε
    pred[..., 1] += 0.03 * 128  # b outside
    assert metrics.eq9_accuracy(pred, true) == 0.0


def test_eq9_share_of_pixels() -> None:
    true = np.zeros((4, 5, 2))
    pred = true.copy()
    pred[:1, :, 0] = 10.0  # 5 of 20 pixels off by 10 Lab units (0.078 > 0.02)
    assert metrics.eq9_accuracy(pred, true) == pytest.approx(15 / 20)
    assert metrics.eq9_accuracy(pred, true, eps=0.1) == 1.0  # ε configurable


# --------------------------------------------------------------------------------- raw accuracy / AuC
def test_auc_identical_is_one() -> None:
    ab = _ab()
    raw = metrics.raw_accuracy(ab, ab)
    assert raw.curve.shape == (151,)
    assert np.all(raw.curve == 1.0)
    assert raw.auc == 1.0


@pytest.mark.parametrize(("delta", "d"), [((6.0, 8.0), 10.0), ((4.5, 6.0), 7.5), ((0.0, 150.0), 150.0)])
def test_auc_constant_shift_is_share_of_thresholds_at_least_d(delta: tuple[float, float], d: float) -> None:
    true = _ab()
    pred = true + np.array(delta)
    raw = metrics.raw_accuracy(pred, true)
    t = np.arange(151)
    np.testing.assert_array_equal(raw.curve, (t >= d).astype(float))
    assert raw.auc == pytest.approx((151 - math.ceil(d)) / 151)
    assert raw.auc == pytest.approx(np.mean(t >= d))


def test_auc_shift_beyond_range_is_zero() -> None:
    true = _ab()
    assert metrics.raw_accuracy_auc(true + 200.0, true) == 0.0


def test_raw_curve_mixture_of_errors() -> None:
    true = np.zeros((1, 4, 2))
    pred = np.array([[[0, 0], [3, 4], [0, 20], [100, 0]]], dtype=float)  # errors 0, 5, 20, 100
    curve = metrics.raw_accuracy_curve(pred, true)
    assert curve[0] == 0.25 and curve[4] == 0.25
    assert curve[5] == 0.5 and curve[19] == 0.5
    assert curve[20] == 0.75 and curve[99] == 0.75
    assert curve[100] == 1.0 and curve[150] == 1.0
    assert np.all(np.diff(curve) >= 0)
    # AuC = mean of the curve: 5 thresholds at 1/4, 15 at 1/2, 80 at 3/4, 51 at 1
    assert metrics.curve_auc(curve) == pytest.approx((5 * 0.25 + 15 * 0.5 + 80 * 0.75 + 51) / 151)


def test_ab_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError):
        metrics.eq9_accuracy(np.zeros((4, 4, 2)), np.zeros((4, 5, 2)))


# ------------------------------------------------------------------------------------- PSNR / SSIM
def test_psnr_identical_is_infinite() -> None:
    img = _rgb()
    assert metrics.psnr(img, img) == math.inf


def test_psnr_hand_value() -> None:
    true = np.full((8, 8, 3), 100, dtype=np.uint8)
    pred = np.full((8, 8, 3), 105, dtype=np.uint8)  # MSE 25
    assert metrics.psnr(pred, true) == pytest.approx(10 * math.log10(255**2 / 25))  # 34.151 dB
    pred2 = true.copy()
    pred2[0, 0, 0] = 110  # one of 192 values off by 10: MSE = 100 / 192
    assert metrics.psnr(pred2, true) == pytest.approx(10 * math.log10(255**2 * 192 / 100))


def test_ssim_identical_is_one() -> None:
    img = _rgb()
    assert metrics.ssim(img, img) == pytest.approx(1.0, abs=1e-12)


def test_ssim_constant_images_hand_value() -> None:
    # constant planes: σ = 0 everywhere, so SSIM = (2·μx·μy + C1) / (μx² + μy² + C1)
    x = np.full((16, 16, 3), 100, dtype=np.uint8)
    y = np.full((16, 16, 3), 110, dtype=np.uint8)
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)  # 0.995476...
    assert metrics.ssim(x, y) == pytest.approx(expected, rel=1e-12)


def test_ssim_properties() -> None:
    x, y = _rgb(), _rgb()
    s = metrics.ssim(x, y)
    assert -1.0 <= s < 0.2  # independent noise: almost no structural similarity
    assert metrics.ssim(y, x) == pytest.approx(s)
    noisy = np.clip(x.astype(int) + RNG.integers(-10, 11, size=x.shape), 0, 255).astype(np.uint8)
    assert 0.5 < metrics.ssim(noisy, x) < 1.0


def test_ssim_averages_channels() -> None:
    x = _rgb()
    y = x.copy()
    y[..., 2] = 255 - y[..., 2]
    per_channel = [metrics.ssim_channel(y[..., c].astype(float), x[..., c].astype(float)) for c in range(3)]
    assert per_channel[0] == pytest.approx(1.0) and per_channel[1] == pytest.approx(1.0)
    assert metrics.ssim(y, x) == pytest.approx(np.mean(per_channel))


def test_gaussian_window() -> None:
    g = metrics.gaussian_window()
    assert len(g) == 11 and g.sum() == pytest.approx(1.0)
    assert g[5] / g[6] == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_ssim_small_image_uses_smaller_window() -> None:
    x = _rgb(6, 8)
    assert metrics.ssim(x, x) == pytest.approx(1.0)


# --------------------------------------------------------------------------------- colourfulness
def test_colourfulness_of_gray_is_zero() -> None:
    gray = RNG.integers(0, 256, size=(20, 20), dtype=np.uint8)
    assert metrics.colourfulness(np.stack([gray] * 3, axis=-1)) == 0.0


def test_colourfulness_hand_value() -> None:
    # two pixels, pure red and black: rg = [255, 0], yb = [127.5, 0]
    img = np.array([[[255, 0, 0], [0, 0, 0]]], dtype=np.uint8)
    sigma = math.hypot(127.5, 63.75)  # population std of rg and yb
    mu = math.hypot(127.5, 63.75)
    assert metrics.colourfulness(img) == pytest.approx(sigma + 0.3 * mu)


def test_colourfulness_gap_is_signed() -> None:
    true = np.array([[[255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    gray = np.full_like(true, 80)
    gap = metrics.colourfulness_gap(gray, true)
    assert gap == pytest.approx(-metrics.colourfulness(true))
    assert metrics.colourfulness_gap(true, true) == 0.0


def test_ssim_matches_a_direct_window_sum() -> None:
    # independent evaluation of Wang et al.'s formula: explicit 11×11 windows, no separable filtering
    x = RNG.integers(0, 256, size=(16, 18)).astype(float)
    y = np.clip(x + RNG.normal(0, 25, size=x.shape), 0, 255)
    w = np.outer(metrics.gaussian_window(), metrics.gaussian_window())
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(16 - 10):
        for j in range(18 - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert metrics.ssim_channel(x, y) == pytest.approx(np.mean(values), rel=1e-9)


def test_compare_rgb_identical_and_gray() -> None:
    img = _rgb()
    values, curve = metrics.compare_rgb(img, img)
    assert values["eq9_acc"] == 1.0 and values["auc"] == 1.0 and values["psnr"] == math.inf
    assert values["ssim"] == pytest.approx(1.0) and values["dcf"] == 0.0 and np.all(curve == 1.0)
    gray = np.repeat(img[..., :1], 3, axis=-1)
    values, _ = metrics.compare_rgb(gray, img)
    assert values["colourfulness"] == 0.0 and values["dcf"] == -values["cf_truth"] < 0
    assert 0.0 <= values["eq9_acc"] < 1.0 and 0.0 < values["auc"] < 1.0
