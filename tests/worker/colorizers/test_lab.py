"""sRGB <-> CIE Lab (D65) against published reference values, round trips, and the torch versions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worker.colorizers import lab

# Reference values: Bruce Lindbloom's calculator / colormine (sRGB, D65, 2°), to ±0.02.
REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((255, 255, 0), (97.1393, -21.5537, 94.4780)),
    ((0, 255, 255), (91.1132, -48.0875, -14.1312)),
    ((255, 0, 255), (60.3242, 98.2343, -60.8249)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((119, 119, 119), (50.0, 0.0, 0.0)),  # mid-gray of L = 50 (to ±0.3, 8-bit quantisation)
]


@pytest.mark.parametrize(("rgb", "expected"), REFERENCE)
def test_rgb_to_lab_reference_values(rgb, expected):
    got = lab.rgb_to_lab(np.array([[rgb]], dtype=np.uint8))[0, 0]
    tol = 0.3 if rgb == (119, 119, 119) else 0.02
    np.testing.assert_allclose(got, expected, atol=tol)


@pytest.mark.parametrize(("rgb", "expected"), REFERENCE)
def test_torch_matches_reference(rgb, expected):
    t = torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1)
    got = lab.rgb_to_lab_torch(t)[0, :, 0, 0].numpy()
    tol = 0.3 if rgb == (119, 119, 119) else 0.02
    np.testing.assert_allclose(got, expected, atol=tol)


def test_round_trip_every_8bit_level_and_random_colours():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    rgb[0, :, :] = np.arange(64)[:, None] * 4  # gray ramp
    back = lab.lab_to_rgb_uint8(lab.rgb_to_lab(rgb))
    assert np.abs(back.astype(int) - rgb).max() <= 1
    float_back = lab.lab_to_rgb(lab.rgb_to_lab(rgb)) * 255
    assert np.abs(float_back - rgb).max() < 0.02


def test_torch_round_trip_and_agreement_with_numpy():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(2, 3, 16, 16), dtype=np.uint8)
    t = torch.from_numpy(rgb)
    lab_t = lab.rgb_to_lab_torch(t)
    lab_np = lab.rgb_to_lab(rgb.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(lab_t.numpy(), lab_np, atol=1e-3)
    back = lab.lab_to_rgb_torch(lab_t.double()) * 255
    np.testing.assert_allclose(back.numpy(), rgb, atol=0.01)


def test_lightness_helpers_agree():
    gray = np.arange(256, dtype=np.uint8)[None, :]
    lightness = lab.gray_to_lightness(gray)
    np.testing.assert_allclose(
        lightness, lab.rgb_to_lab(np.repeat(gray[..., None], 3, -1))[..., 0], atol=1e-3
    )
    assert (lab.lightness_to_gray_uint8(lightness) == gray).all()
    torch_gray = lab.lightness_to_gray_torch(torch.from_numpy(lightness).double()) * 255
    np.testing.assert_allclose(torch_gray.numpy(), gray, atol=1e-3)
    rgb = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(lab.rgb_to_lightness(rgb), lab.rgb_to_lab(rgb)[..., 0], atol=1e-3)


def test_network_normalisation():
    assert lab.normalize_l(np.array([0.0, 50.0, 100.0])).tolist() == [-1.0, 0.0, 1.0]
    ab = np.array([-128.0, 0.0, 64.0])
    assert lab.normalize_ab(ab).tolist() == [-1.0, 0.0, 0.5]
    np.testing.assert_allclose(lab.denormalize_ab(lab.normalize_ab(ab)), ab)


def test_torch_gradients_are_finite_at_black():
    rgb = torch.zeros(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    lab.rgb_to_lab_torch(rgb).sum().backward()
    assert torch.isfinite(rgb.grad).all()


def test_16_bit_levels_are_read_as_such_and_other_integers_refused() -> None:
    """uint16 RGB is 0..65535 (it read as white); a signed or wider integer type says so instead."""
    level = np.full((1, 1, 3), 30_000, np.uint16)
    expected = lab.gray16_to_lightness(level[..., 0])[0, 0]
    assert lab.rgb_to_lightness(level)[0, 0] == pytest.approx(expected, abs=1e-4)
    assert lab.rgb_to_lab(level)[0, 0, 0] == pytest.approx(49.132, abs=1e-3)
    for wrong in (np.full((1, 1, 3), 128, np.int64), np.full((1, 1, 3), 1, np.int32)):
        with pytest.raises(TypeError, match="uint8, uint16 or float"):
            lab.rgb_to_lightness(wrong)
    with pytest.raises(TypeError, match="uint16"):
        lab.gray16_to_lightness(np.full((1, 1), -1, np.int64))


def test_composing_colours_that_are_not_numbers_is_refused_at_either_depth() -> None:
    from worker.colorizers.pipeline import compose

    lightness = np.full((4, 5), 50, np.float32)
    ab = np.zeros((4, 5, 2), np.float32)
    ab[1, 2, 0] = np.nan
    for depth in (8, 16):
        with pytest.raises(ValueError, match="not all finite"):
            compose(lightness, ab, depth=depth)
    lightness[0, 0] = np.inf
    with pytest.raises(ValueError, match="not all finite"):
        compose(lightness, np.zeros((4, 5, 2), np.float32))
