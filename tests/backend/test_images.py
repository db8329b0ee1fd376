"""Upload decoding: every mode, orientation, limits and refusals (no web, no database)."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from backend.errors import UserError
from backend.images import decode, gray_png
from tests.conftest import photo_bytes
from worker.colorizers import lab

LIMIT = 10_000_000


def encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "value"),
    [
        ("1", "PNG", 1),
        ("L", "PNG", 128),
        ("LA", "PNG", (128, 255)),
        ("P", "PNG", 3),
        ("RGB", "JPEG", (128, 128, 128)),
        ("RGBA", "PNG", (128, 128, 128, 255)),
        ("CMYK", "JPEG", (0, 0, 0, 127)),
        ("I;16", "PNG", 128 * 257),
        ("I", "TIFF", 128),
        ("F", "TIFF", 128 / 255),
    ],
)
def test_every_mode_becomes_rgb8(mode: str, fmt: str, value: object) -> None:
    decoded = decode(encode(Image.new(mode, (31, 17), value), fmt), max_pixels=LIMIT)  # type: ignore[arg-type]
    assert decoded.rgb.shape == (17, 31, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.mode == mode
    assert not decoded.is_color


def test_gray_levels_survive_16_bit_and_float() -> None:
    for mode, fmt, value in (("I;16", "PNG", 200 * 257), ("F", "TIFF", 200 / 255), ("L", "PNG", 200)):
        rgb = decode(encode(Image.new(mode, (4, 4), value), fmt), max_pixels=LIMIT).rgb
        assert np.all(rgb == 200), mode


def test_transparency_is_composited_over_white() -> None:
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.all(decode(encode(rgba), max_pixels=LIMIT).rgb == 255)
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([10, 20, 30] * 256)
    pal.info["transparency"] = 0
    assert np.all(decode(encode(pal, transparency=0), max_pixels=LIMIT).rgb == 255)


def test_color_photo_is_kept_as_ground_truth() -> None:
    decoded = decode(photo_bytes(), max_pixels=LIMIT)
    assert decoded.is_color and decoded.format == "JPEG"
    gray = Image.open(io.BytesIO(gray_png(decoded)))
    assert gray.mode == "L" and gray.size == (decoded.width, decoded.height)
    # The gray PNG has the photo's CIE lightness (within 8-bit rounding).
    err = np.abs(lab.gray_to_lightness(np.asarray(gray)) - decoded.lightness())
    assert err.mean() < 0.3


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (40, 20), 0)
    img.paste(255, (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = decode(encode(img, "JPEG", exif=exif.tobytes()), max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.rgb[:8, :, 0].mean() > 200  # the band is now at the top


def test_first_frame_of_an_animation() -> None:
    frames = [Image.new("L", (10, 10), v) for v in (30, 220)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode(data, max_pixels=LIMIT).rgb.mean() == pytest.approx(30, abs=2)


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"hello, world", 415, "not a supported image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", 415, "not a supported image"),
        (b"<html><body>hi</body></html>", 415, "not a supported image"),
    ],
)
def test_non_images_are_refused(data: bytes, status: int, words: str) -> None:
    with pytest.raises(UserError) as err:
        decode(data, max_pixels=LIMIT)
    assert err.value.status_code == status and words in err.value.detail


def test_truncated_files_are_refused() -> None:
    for fmt in ("PNG", "JPEG"):
        data = encode(
            Image.fromarray((np.random.default_rng(0).random((64, 64)) * 255).astype(np.uint8)), fmt
        )
        with pytest.raises(UserError) as err:
            decode(data[: len(data) // 2], max_pixels=LIMIT)
        assert err.value.status_code == 400


def _png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    row = b"\x00" + b"\x00" * width
    idat = zlib.compress(row * 16, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    data = _png_with_header(20000, 20000)
    assert len(data) < 10_000
    with pytest.raises(UserError) as err:
        decode(data, max_pixels=40_000_000)
    # past PIL's hard limit (2 × 89 MP) it refuses at the header; the message is ours, in plain words
    assert err.value.detail == "the image has 400,000,000 pixels; the limit is 40,000,000"
    assert err.value.status_code == 413
    with pytest.raises(UserError) as err:  # past PIL's warning threshold only: our own check, with the size
        decode(_png_with_header(12000, 8000), max_pixels=40_000_000)
    assert err.value.detail == "the image is 12000×8000 = 96,000,000 pixels; the limit is 40,000,000"


def test_pixel_limit() -> None:
    with pytest.raises(UserError) as err:
        decode(encode(Image.new("L", (1001, 1000))), max_pixels=1_000_000)
    assert err.value.status_code == 413
    assert decode(encode(Image.new("L", (1000, 1000))), max_pixels=1_000_000).width == 1000


def test_extreme_aspect_ratios() -> None:
    assert decode(encode(Image.new("L", (1, 1), 9)), max_pixels=LIMIT).rgb.shape == (1, 1, 3)
    assert decode(encode(Image.new("L", (10000, 1), 9)), max_pixels=LIMIT).rgb.shape == (1, 10000, 3)
