"""Semantic correspondence (worker/colorizers/correspondence.py) on real photos with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.conftest import IMAGENET
from worker.colorizers import lab
from worker.colorizers.correspondence import guided_filter, match
from worker.colorizers.loading import get_colorizer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net():  # type: ignore[no-untyped-def]
    return get_colorizer("unet-bins", Path("/nonexistent"), "cpu").net  # type: ignore[attr-defined]


def _lab(prefix: str) -> torch.Tensor:
    rgb = np.asarray(Image.open(next(IMAGENET.glob(f"{prefix}*.jpg"))).convert("RGB"))
    return torch.from_numpy(lab.rgb_to_lab(rgb)).permute(2, 0, 1)[None]


@pytest.mark.parametrize("prefix", ["007_", "017_", "047_"])
def test_a_photo_recovers_its_colours_from_its_own_mirror_image(net, prefix) -> None:  # type: ignore[no-untyped-def]
    photo = _lab(prefix)
    found = match(net, photo[:, :1], photo.flip(-1))
    truth = F.adaptive_avg_pool2d(photo[:, 1:], found.ab.shape[-2:])
    err = (found.ab - truth).norm(dim=1).mean()
    gray_err = truth.norm(dim=1).mean()
    assert err < 0.5 * gray_err, (float(err), float(gray_err))
    assert float(found.confidence.mean()) > 0.3


def test_guided_filter_keeps_colours_on_their_side_of_an_edge() -> None:
    guide = torch.zeros(1, 1, 32, 32)
    guide[..., 16:] = 1.0  # a step edge in L
    noisy = torch.where(guide > 0.5, 40.0, -40.0).expand(1, 2, 32, 32) + torch.randn(1, 2, 32, 32) * 10
    smooth = guided_filter(guide, noisy, radius=3, eps=1e-3)
    assert smooth[..., :14].mean() < -35 and smooth[..., 18:].mean() > 35  # no bleeding across
    assert smooth[..., :14].std() < noisy[..., :14].std() / 2  # flat areas are smoothed
