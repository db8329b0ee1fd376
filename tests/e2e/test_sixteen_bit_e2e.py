"""A 16-bit gray scan through real processes (`colorlab serve` + `colorlab worker`, the embedded default): the
worker stores a 16-bit PNG that follows the scan's levels, and the web app serves it, its JPEG download and
its thumbnail."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.backend.test_sixteen_bit import (
    archive_png16,
    gradient,
    lightness_of_levels,
    lightness_of_rgb16,
    read_png,
)
from tests.conftest import child_env, method_available, start_service, wait_job

pytestmark = pytest.mark.slow


def test_a_16_bit_scan_comes_back_as_a_16_bit_png(spawn, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    base, _, _ = start_service(spawn, child_env(DATA_DIR=tmp_path / "var"))
    http = httpx.Client(base_url=base, timeout=30)
    levels = gradient(600, 80)
    files = {"image": ("scan.png", archive_png16(levels), "image/png")}
    r = http.post("/colorize", files=files, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    job = wait_job(lambda job_id: http.get(f"/jobs/{job_id}").json(), r.json()["id"], timeout=120)
    assert job["status"] == "done", job
    png = http.get(job["urls"]["result"]).content
    header, _, pixels = read_png(png)
    assert header[:4] == (80, 600, 16, 2)  # upright, 16 bits per channel
    lightness = lightness_of_rgb16(pixels)
    assert np.abs(lightness - lightness_of_levels(np.rot90(levels, -1))).max() < 0.05
    assert len(np.unique(np.round(lightness, 3))) > 10_000
    jpg = http.get(f"{job['urls']['result']}?format=jpg")
    assert jpg.status_code == 200 and Image.open(io.BytesIO(jpg.content)).mode == "RGB"
    thumb = http.get(job["urls"]["thumb"])
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).format == "JPEG"
