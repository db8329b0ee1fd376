"""Large photos (archives send 24–40 MP scans): the full-resolution steps work in bands of rows, give what one
band gives, and hold only their output and a band's temporaries; the worker's fast-lane batch holds a bounded
number of pixels at once (benchmarks/bench_large_photos.py)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import photo
from worker.colorizers import lab, methods, pipeline
from worker.colorizers.method_info import MethodInfo


def _photo(height: int, width: int) -> np.ndarray:
    """A real photo resized to (height, width), RGB uint8."""
    img = Image.open(photo("002_")).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _net_like_ab(rgb: np.ndarray, height: int = 160) -> np.ndarray:
    """ab at a net's working size (short side ``height``): the photo's own colours, a little stronger."""
    width = round(rgb.shape[1] * height / rgb.shape[0])
    small = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BOX))
    return lab.rgb_to_lab(small)[..., 1:] * np.float32(1.3)


def _traced_peak(fn: Callable[[], Any]) -> int:
    """Peak bytes numpy (and Python) allocated while ``fn`` ran, its result included."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_resize_ab_of_bands_of_rows_is_the_whole_resize() -> None:
    ab = np.random.default_rng(0).normal(0, 30, (160, 224, 2)).astype(np.float32)
    whole = pipeline.resize_ab(ab, 1201, 1687)
    tops = range(0, 1201, 97)
    bands = [pipeline.resize_ab(ab, 1201, 1687, rows=(top, min(1201, top + 97))) for top in tops]
    np.testing.assert_allclose(np.concatenate(bands), whole, atol=5e-3)  # float rounding of the box only
    same = np.random.default_rng(1).normal(0, 30, (50, 40, 2)).astype(np.float32)
    assert np.array_equal(pipeline.resize_ab(same, 50, 40, rows=(10, 20)), same[10:20])


@pytest.mark.parametrize("shape", [(1200, 1800), (37, 1203), (5, 3)])
def test_compose_in_bands_matches_one_band(shape: tuple[int, int]) -> None:
    rgb = _photo(*shape)
    lightness = lab.rgb_to_lightness(rgb)
    ab = _net_like_ab(rgb, height=min(160, shape[0]))
    whole = pipeline.compose(lightness, ab, band_pixels=10**9)
    for band_pixels in (pipeline.COMPOSE_BAND_PIXELS, 5000, 1):
        banded = pipeline.compose(lightness, ab, band_pixels=band_pixels)
        assert banded.shape == (*shape, 3) and banded.dtype == np.uint8
        diff = np.abs(banded.astype(np.int16) - whole)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (band_pixels, diff.max(), (diff > 0).mean())
    full_ab = lab.rgb_to_lab(rgb)[..., 1:]  # ab at the photo's size: no resize, the very same pixels
    for depth in (8, 16):
        assert np.array_equal(
            pipeline.compose(lightness, full_ab, band_pixels=4096, depth=depth),
            pipeline.compose(lightness, full_ab, band_pixels=10**9, depth=depth),
        )


@pytest.mark.parametrize("depth", [8, 16])  # 16: a 16-bit scan's result, uint16
def test_compose_of_a_12_mp_photo_holds_its_output_and_a_band(depth: int) -> None:
    lightness = np.tile(np.linspace(0, 100, 4240, dtype=np.float32), (2830, 1))  # 12 MP, every lightness
    ab = np.random.default_rng(0).normal(0, 40, (160, 240, 2)).astype(np.float32)  # much out of gamut
    peak = _traced_peak(lambda: pipeline.compose(lightness, ab, depth=depth))
    output = lightness.size * 3 * depth // 8
    # one band's float32 temporaries (L, a, b, f_inv planes, linear RGB, the LUT's index) are ~60 MB; the
    # whole photo's at once were ~18 bytes a pixel over the output (660 MB here)
    assert peak < output + 100e6, f"{peak / 1e6:.0f} MB for a {output / 1e6:.0f} MB result"


@pytest.mark.parametrize("convert", [lab.rgb_to_lab, lab.rgb_to_lightness])
def test_lab_conversions_of_a_photo_are_banded_and_exact(
    convert: Callable[[np.ndarray], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    rgb = _photo(301, 457)
    whole = convert(rgb)
    monkeypatch.setattr(lab, "BAND_PIXELS", 1000)  # bands of 2 rows, the last one shorter
    assert np.array_equal(convert(rgb), whole)
    assert np.array_equal(convert(rgb.astype(np.float64) / 255.0), convert(rgb / 255.0))  # floats too
    peak = _traced_peak(lambda: convert(rgb))
    assert peak < whole.nbytes + 400_000  # the output and a band of 2 rows (the whole at once: 10 MB more)


def test_rgb_to_lab_of_a_12_mp_photo_holds_its_output_and_a_band() -> None:
    rgb = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (2830, 16, 3))  # 11.6 MP, every level
    output = rgb.shape[0] * rgb.shape[1] * 3 * 4
    peak = _traced_peak(lambda: lab.rgb_to_lab(rgb))
    assert peak < output + 150e6, f"{peak / 1e6:.0f} MB for a {output / 1e6:.0f} MB result"  # was 1.1 GB


# -- the worker's fast-lane batch ------------------------------------------------------------------------


class _Recorder:
    """A batchable test colorizer (gray ab) that records how many photos each pass got."""

    name = "_batch"

    def __init__(self) -> None:
        self.passes: list[int] = []

    def predict_ab(self, lightness: np.ndarray, **_: Any) -> np.ndarray:
        return self.predict_ab_batch([lightness])[0]

    def predict_ab_batch(
        self, lightness: list[np.ndarray], *, params: Mapping[str, Any] | None = None
    ) -> list[np.ndarray]:
        self.passes.append(len(lightness))
        return [np.zeros((8, 8, 2), np.float32) for _ in lightness]


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    from worker.colorizers import loading

    colorizer = _Recorder()
    info = MethodInfo(
        name="_batch", title="Batch", description="records passes", load=lambda ctx: colorizer, batchable=True
    )
    monkeypatch.setattr(methods, "METHODS", (*methods.METHODS, info))
    yield colorizer
    loading.clear_cache()


@pytest.mark.parametrize(("pass_pixels", "passes"), [(10**9, [4]), (1, [1, 1, 1, 1]), (150_000, [2, 2])])
def test_a_batch_of_large_photos_runs_in_passes_of_bounded_pixels(
    database: str,
    recorder: _Recorder,
    monkeypatch: pytest.MonkeyPatch,
    pass_pixels: int,
    passes: list[int],
) -> None:
    from backend.config import get_settings
    from tests.backend.test_runner import get, new_job
    from worker import runner as runner_module

    monkeypatch.setattr(runner_module, "BATCH_PASS_PIXELS", pass_pixels)
    ids = [new_job("_batch", data=_jpeg(i)) for i in range(4)]  # 100,000 pixels each
    assert runner_module.Runner(get_settings()).run(ids[0]) == "done"
    assert recorder.passes == passes
    assert [get(i).status for i in ids] == ["done"] * 4


def _jpeg(seed: int) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(_photo(250, 400)[:, :, ::-1] if seed % 2 else _photo(250, 400)).save(
        buf, format="JPEG", quality=90 - seed
    )
    return buf.getvalue()
