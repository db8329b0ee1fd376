"""The red-team files (README, "Reliability and security"): small uploads whose decoding costs far more than
their size, and big but ordinary photos. Shared by the tests and benchmarks/bench_crowd.py (decode-cost
table)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from tests.conftest import photo


def _save(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_bomb() -> bytes:
    """A 40 MP gray PNG of one level: ~40 KB on disk."""
    return _save(Image.new("L", (6324, 6324), 0), "PNG", optimize=True)


def webp_lossless_bomb() -> bytes:
    return _save(Image.new("RGB", (6000, 6000), (10, 20, 30)), "WEBP", lossless=True)


def jpeg2000_bomb() -> bytes:
    return _save(Image.new("RGB", (6000, 6000), (10, 20, 30)), "JPEG2000")


def avif_bomb() -> bytes:
    return _save(Image.new("RGB", (4000, 4000), (10, 20, 30)), "AVIF")


def many_scan_jpeg(scans: int = 5000) -> bytes:
    """A progressive JPEG whose last scan is repeated until it has ``scans`` scans (each one a full pass
    over the coefficients when decoded)."""
    rng = np.random.default_rng(0)
    data = _save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG", progressive=True)
    last = data.rindex(b"\xff\xda")
    body, scan = data[:last], data[last:-2]
    present = data.count(b"\xff\xda")
    return body + scan * (scans - present + 1) + b"\xff\xd9"


def phone_photo(width: int, height: int, *, gray: bool = False, quality: int = 85) -> bytes:
    """A real photo scaled up to a phone camera's size, with sensor-like noise (so it compresses like one)."""
    img = (
        Image.open(photo()).convert("L" if gray else "RGB").resize((width, height), Image.Resampling.BILINEAR)
    )
    noise = np.random.default_rng(1).normal(0, 4, (height, width) + (() if gray else (3,)))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return _save(Image.fromarray(arr), "JPEG", quality=quality)


BOMBS = {
    "png-40mp-one-level": (png_bomb, "image/png"),
    "webp-lossless-36mp": (webp_lossless_bomb, "image/webp"),
    "jpeg2000-36mp": (jpeg2000_bomb, "image/jp2"),
    "avif-16mp": (avif_bomb, "image/avif"),
    "jpeg-5000-scans": (many_scan_jpeg, "image/jpeg"),
}
