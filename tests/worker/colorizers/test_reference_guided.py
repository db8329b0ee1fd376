"""Reference-guided colorization (worker/colorizers/reference_guided.py): the prior's parts on synthetic
cases, and on real photos that a reference steers the net towards the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import EXEMPLAR_PAIRS, IMAGENET
from worker.colorizers import colour_bins, lab, metrics
from worker.colorizers.loading import get_colorizer
from worker.colorizers.nets.unet_bins import UNetBinsColorizer
from worker.colorizers.pipeline import resize_ab
from worker.colorizers.reference_guided import (
    ReferenceGuidedColorizer,
    guided_logits,
    palette_at,
    palette_table,
    reference_prior,
)

torch.set_num_threads(1)
BLUE, GREEN = (-5.0, -40.0), (-45.0, 40.0)


@pytest.fixture(scope="module")
def plain() -> UNetBinsColorizer:
    colorizer = get_colorizer("unet-bins", Path("/nonexistent"), "cpu")  # bundled weights
    assert isinstance(colorizer, UNetBinsColorizer)
    return colorizer


@pytest.fixture(scope="module")
def colorizer() -> ReferenceGuidedColorizer:
    colorizer = get_colorizer("unet-bins-reference", Path("/nonexistent"), "cpu")
    assert isinstance(colorizer, ReferenceGuidedColorizer)
    return colorizer


def _bright_blue_dark_green() -> torch.Tensor:
    ref = torch.zeros(1, 3, 16, 16)
    ref[:, 0, :8], ref[:, 1, :8], ref[:, 2, :8] = 80.0, *BLUE  # bright sky
    ref[:, 0, 8:], ref[:, 1, 8:], ref[:, 2, 8:] = 30.0, *GREEN  # dark grass
    return ref


def test_the_palette_gives_each_lightness_the_references_colour_at_that_lightness() -> None:
    bins = colour_bins.bins_tensor()
    photo_l = torch.tensor([[[[80.0, 30.0]]]])  # one bright, one dark location
    palette = palette_at(palette_table(_bright_blue_dark_green(), bins), photo_l)
    assert palette.shape == (1, bins.shape[0], 1, 2)
    torch.testing.assert_close(palette.sum(1), torch.ones(1, 1, 2))
    mode = bins[palette[0].argmax(0)[0]]  # the most likely bin per location
    assert (mode[0] - torch.tensor(BLUE)).norm() < 10 and (mode[1] - torch.tensor(GREEN)).norm() < 10


def test_the_prior_is_the_matched_colour_where_sure_and_the_palette_where_unsure() -> None:
    bins = colour_bins.bins_tensor()
    palette = torch.full((1, bins.shape[0], 2, 2), 1.0 / bins.shape[0])
    matched = torch.full((1, 2, 2, 2), 50.0)
    unsure = reference_prior(matched, torch.zeros(1, 1, 2, 2), palette, bins)
    torch.testing.assert_close(unsure, palette)
    logits = torch.randn(1, bins.shape[0], 2, 2, generator=torch.Generator().manual_seed(0))
    sure = reference_prior(matched, torch.ones(1, 1, 2, 2), palette, bins)
    ab = colour_bins.annealed_mean(guided_logits(logits, sure), bins, 0.38)
    assert torch.all((ab - 50).abs() < 15)  # pulled to the matched colour whatever the net said
    plain = colour_bins.annealed_mean(guided_logits(logits, palette), bins, 0.38)
    torch.testing.assert_close(plain, colour_bins.annealed_mean(logits, bins, 0.38))  # uniform: no change


def test_the_prior_near_a_matched_colour_is_a_gaussian_over_the_bins() -> None:
    bins = colour_bins.bins_tensor()
    ab = torch.tensor([[[[0.0, 37.0]], [[-20.0, 64.0]]]])  # (1, 2, 1, 2): two locations' matched colours
    near = reference_prior(ab, torch.ones(1, 1, 1, 2), torch.zeros(1, bins.shape[0], 1, 2), bins)
    for x in range(2):
        d2 = ((bins - ab[0, :, 0, x]) ** 2).sum(1)
        torch.testing.assert_close(near[0, :, 0, x], torch.softmax(-d2 / (2 * 10.0**2), dim=0))


def test_palettes_of_several_references_are_looked_up_in_one_batch() -> None:
    bins = colour_bins.bins_tensor()
    references = [_bright_blue_dark_green(), _bright_blue_dark_green().flip(2)]  # green-blue swapped in L
    references[1][:, 0] = 100.0 - references[1][:, 0]
    lightness = torch.tensor([[[[80.0, 30.0, 55.0]]], [[[12.0, 97.5, 100.0]]]])  # (2, 1, 1, 3)
    tables = torch.cat([palette_table(ref, bins) for ref in references])
    batched = palette_at(tables, lightness)
    for i, ref in enumerate(references):
        torch.testing.assert_close(
            batched[i : i + 1], palette_at(palette_table(ref, bins), lightness[i : i + 1])
        )


def _photo(prefix: str) -> np.ndarray:
    return np.asarray(Image.open(next(IMAGENET.glob(f"{prefix}*.jpg"))).convert("RGB"))


@pytest.mark.parametrize("prefix", ["007_", "047_", "957_"])
def test_a_photo_guided_by_its_own_mirror_image_gets_closer_to_its_true_colours(
    colorizer: ReferenceGuidedColorizer, plain: UNetBinsColorizer, prefix: str
) -> None:
    rgb = _photo(prefix)
    photo_lab = lab.rgb_to_lab(rgb)
    lightness, truth = photo_lab[..., 0].astype(np.float32), photo_lab[..., 1:]
    guided = colorizer.predict_ab(lightness, reference=rgb[:, ::-1], params={}, progress=None)
    unguided = plain.predict_ab(lightness, reference=None, params={}, progress=None)
    auc = {
        name: metrics.raw_accuracy_auc(resize_ab(ab, *lightness.shape), truth)
        for name, ab in (("guided", guided), ("plain", unguided), ("gray", np.zeros_like(truth)))
    }
    assert auc["guided"] > max(auc["plain"], auc["gray"]) + 0.005, auc


def test_a_reference_is_required(colorizer: ReferenceGuidedColorizer) -> None:
    with pytest.raises(ValueError, match="reference"):
        colorizer.predict_ab(np.zeros((64, 64), np.float32), reference=None, params={}, progress=None)


def test_a_gray_or_rgba_reference_is_taken_as_rgb_and_another_shape_is_refused(
    colorizer: ReferenceGuidedColorizer,
) -> None:
    rgb = _photo("047_")[:96, :128]
    lightness = lab.rgb_to_lightness(rgb)
    with_alpha = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 255, np.uint8)], axis=-1)
    as_rgb = colorizer.predict_ab(lightness, reference=rgb, params={}, progress=None)
    alpha_dropped = colorizer.predict_ab(lightness, reference=with_alpha, params={}, progress=None)
    assert np.array_equal(alpha_dropped, as_rgb)
    gray = colorizer.predict_ab(lightness, reference=rgb[..., 0], params={}, progress=None)
    assert gray.shape == as_rgb.shape and np.isfinite(gray).all()
    with pytest.raises(ValueError, match="shape"):
        colorizer.predict_ab(lightness, reference=rgb[..., :2], params={}, progress=None)


def test_follow_reference_ranges_from_the_automatic_colours_to_the_reference_s(
    colorizer: ReferenceGuidedColorizer, plain: UNetBinsColorizer
) -> None:
    """The bundled example: the learned step leaves the Golden Gate's red tower beige (it is one or two match
    cells wide, so the match is unsure there); following the reference closely colours it red, and 0 is
    the automatic result exactly."""
    rgb, ref = (
        np.asarray(Image.open(EXEMPLAR_PAIRS / "example" / n).convert("RGB")) for n in ("in1.jpg", "ref1.jpg")
    )
    lightness = lab.rgb_to_lab(rgb)[..., 0].astype(np.float32)

    def run(**params: float) -> np.ndarray:
        ab = colorizer.predict_ab(lightness, reference=ref, params=params, progress=None)
        return resize_ab(ab, *lightness.shape)

    learned = run()
    np.testing.assert_array_equal(run(follow_reference=0.5), learned)  # the default: the learned balance
    for vividness in (0.2, 0.5):
        automatic = plain.predict_ab(
            lightness, reference=None, params={"vividness": vividness}, progress=None
        )
        left_out = run(follow_reference=0.0, vividness=vividness)
        np.testing.assert_allclose(left_out, resize_ab(automatic, *lightness.shape), atol=1e-3)
    steel = np.zeros(lightness.shape, bool)  # the near tower's steel, not the sky between its legs
    steel[50:170, 100:135] = lightness[50:170, 100:135] < 60
    redness = [float(run(follow_reference=f)[steel][:, 0].mean()) for f in (0.5, 0.75, 1.0)]
    assert redness[0] < 5 and redness[-1] > 15, redness  # measured 3.8, 8.6, 21.3
    assert redness == sorted(redness), redness
    # Where the match is unsure the colour is the net's, evened out as unet-bins evens it: no yellow band
    # across the man's forehead (the head's most yellow b: 32 before, 3.7 now; unet-bins' own, smoothed: 22).
    assert float(learned[60:130, 250:320, 1].max()) < 12


def test_a_large_reference_is_matched_from_an_area_averaged_copy(
    colorizer: ReferenceGuidedColorizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.colorizers import reference_guided

    folder = EXEMPLAR_PAIRS / "example"
    gray = lab.rgb_to_lab(np.asarray(Image.open(folder / "in1.jpg").convert("RGB")))[..., 0]
    ref = Image.open(folder / "ref1.jpg").convert("RGB")
    big = np.asarray(ref.resize((1800, 1200), Image.Resampling.BILINEAR))  # 2.2 MP: over the 1 MP kept
    ref_lab = reference_guided.serving_tensors(gray, big)[2]  # (1, 3, h', w'): the reference as matched
    height, width = ref_lab.shape[2:]
    assert height * width <= 1_000_000 and abs(width / height - 1.5) < 0.01  # area-averaged, shape kept
    assert reference_guided.serving_tensors(gray, np.asarray(ref))[2].shape[2:] == np.asarray(ref).shape[:2]
    copied = colorizer.predict_ab(gray, reference=big, params={})
    monkeypatch.setattr(reference_guided, "REFERENCE_MAX_PIXELS", 10**9)  # the whole reference, as before
    whole = colorizer.predict_ab(gray, reference=big, params={})
    change = np.abs(copied - whole)  # Lab units: the same colours (a just-noticeable difference is about 2)
    assert change.mean() < 0.05 and change.max() < 2.0, (change.mean(), change.max())
