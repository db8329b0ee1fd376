"""The method list (torch-free, explicit, in display order) and ``predict_many``, the one way to colorize
several photos (the worker's batches, ``colorlab colorize`` and ``colorlab evaluate``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT
from worker.colorizers import methods
from worker.colorizers.base import Progress, ProgressCallback
from worker.colorizers.method_info import Unavailable
from worker.colorizers.pipeline import compose, predict_many


def test_importing_the_method_list_loads_no_torch() -> None:
    code = (
        "import sys; import worker.colorizers.methods, worker.colorizers.pipeline, "
        "worker.colorizers.loading; assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_list_is_explicit_ordered_and_has_one_default() -> None:
    names = [m.name for m in methods.METHODS]
    assert names == [
        "unet-bins",
        "unet-bins-reference",
        "cnn",
        "fusion",
        "gan",
        "eccv16",
        "siggraph17",
        "exemplar",
    ]
    assert [m.name for m in methods.METHODS if m.default] == ["unet-bins"] == [methods.default_method().name]
    assert methods.get("cnn") is methods.METHODS[2] and methods.get("nope") is None
    assert methods.default_method(with_reference=True).name == "unet-bins-reference"
    assert all(callable(m.load) for m in methods.METHODS)
    # A method offers at most one preset as the choice made for people.
    assert all(sum(p.default for p in m.presets) <= 1 for m in methods.METHODS)


def test_every_weight_file_is_in_the_manifest_once() -> None:
    manifest = methods.weight_files()
    for info in methods.METHODS:
        for weight in (*info.weights, *info.training_weights):
            assert manifest[weight.name] is weight
    assert "mobilenet-v2" in manifest  # trains unet-bins, never served


def test_availability_is_decided_by_the_weight_files(tmp_path: Path) -> None:
    available = {m.name for m in methods.available(tmp_path)}
    assert {"unet-bins", "cnn", "gan"} <= available  # bundled in the checkout
    assert not {"fusion", "eccv16", "siggraph17", "exemplar"} & available
    with pytest.raises(Unavailable, match="colorlab weights fetch eccv16"):
        methods.eccv16.INFO.require_available(tmp_path)


class Recording:
    """A colorizer that predicts ab = (L, -L) / 10 and records how it was called."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def predict_ab(
        self,
        lightness: np.ndarray,
        *,
        reference: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressCallback | None,
    ) -> np.ndarray:
        self.calls.append(("single", 1))
        if progress is not None:
            progress(Progress(step=1, total=1, message="one step"))
        return np.stack([lightness, -lightness], axis=-1) / 10


class RecordingBatches(Recording):
    def predict_ab_batch(self, lightness: list[np.ndarray], *, params: Mapping[str, Any]) -> list[np.ndarray]:
        self.calls.append(("batch", len(lightness)))
        return [np.stack([plane, -plane], axis=-1) / 10 for plane in lightness]


def _planes(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.uniform(20, 80, (8 + i, 12)).astype(np.float32) for i in range(n)]


def test_predict_many_batches_feed_forward_colorizers_and_reports_photos_done() -> None:
    colorizer, seen = RecordingBatches(), []
    planes = _planes(5)
    out = predict_many(colorizer, planes, batch_size=2, progress=seen.append)
    assert colorizer.calls == [("batch", 2), ("batch", 2), ("batch", 1)]
    assert [(p.step, p.total) for p in seen] == [(2, 5), (4, 5), (5, 5)]
    for plane, rgb in zip(planes, out, strict=True):
        np.testing.assert_array_equal(rgb, compose(plane, np.stack([plane, -plane], axis=-1) / 10))


def test_predict_many_runs_photos_with_references_one_at_a_time_with_their_progress() -> None:
    colorizer, seen = RecordingBatches(), []
    planes = _planes(2)
    reference = np.zeros((4, 4, 3), np.uint8)
    out = predict_many(colorizer, planes, references=[reference, reference], progress=seen.append)
    assert colorizer.calls == [("single", 1), ("single", 1)] and len(out) == 2
    assert [p.message for p in seen] == ["one step", "one step"]  # the colorizer's own progress
    one = predict_many(colorizer, planes[:1])  # a single photo: the colorizer's own predict_ab
    assert colorizer.calls[-1] == ("single", 1) and one[0].shape == (*planes[0].shape, 3)


def test_predict_many_without_batches_and_with_nothing() -> None:
    colorizer = Recording()
    assert len(predict_many(colorizer, _planes(3))) == 3
    assert colorizer.calls == [("single", 1)] * 3
    assert predict_many(colorizer, []) == []
    with pytest.raises(ValueError, match="references"):
        predict_many(colorizer, _planes(2), references=[None])
