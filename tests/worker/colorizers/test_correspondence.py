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
from worker.colorizers.correspondence import CELL, Match, level_tables, match
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


def test_a_thin_thing_keeps_its_colour_instead_of_the_cells_mean() -> None:
    """A dark red bar two pixels wide against bright blue sky, inside one match cell: the cell's mean colour
    is a pinkish mix, but taken by lightness the bar comes out red and the sky blue."""
    red, blue = torch.tensor([50.0, 40.0]), torch.tensor([-5.0, -40.0])
    ref = torch.zeros(1, 3, CELL, CELL)
    ref[:, 0], ref[:, 1:] = 80.0, blue[:, None, None]
    ref[:, 0, :, 3:5], ref[:, 1:, :, 3:5] = 45.0, red[:, None, None]
    mass, weighted = level_tables(ref)
    assert mass.shape == (1, 21) and weighted.shape == (1, 42)
    mean_ab = ref[:, 1:].mean(dim=(2, 3), keepdim=True)  # what the cell alone would lend
    found = Match(  # one photo location, matched to that cell
        ab=mean_ab,
        confidence=torch.ones(1, 1, 1, 1),
        level_ab=weighted.T.reshape(1, -1, 1, 1),
        level_mass=mass.T.reshape(1, -1, 1, 1),
    )
    photo = torch.full((1, 1, 4, 8), 80.0)
    photo[..., 5] = 45.0  # the photo's bar, elsewhere in the cell
    ab = found.ab_at(photo)[0]
    assert ab.shape == (2, 4, 8)
    # within a few units: the cells' mean keeps a small weight (LEVEL_FALLBACK), more beside a rarer lightness
    assert (ab[:, :, 5] - red[:, None]).norm(dim=0).max() < 6, ab[:, 0, 5]  # measured 5.4
    assert (ab[:, :, 0] - blue[:, None]).norm(dim=0).max() < 3, ab[:, 0, 0]
    assert (mean_ab[0, :, 0, 0] - red).norm() > 30  # the mean was far from both
    lone = torch.full((1, 1, 1, 1), 10.0)  # a lightness the cell lacks: the cell's mean colour
    torch.testing.assert_close(found.ab_at(lone)[0, :, 0, 0], mean_ab[0, :, 0, 0], atol=0.5, rtol=0)
