"""Upload decoding of files out of the ordinary: 1-bit line art, files whose structure makes decoding costly
(many TIFF strips, many PNG chunks, 32-bit samples), and TIFF variants no decoder here reads (no web, no
database)."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
from PIL import Image

from backend import png16
from backend.errors import UserError
from backend.images import MAX_PNG_CHUNKS, MAX_TIFF_BLOCKS, decode

MAX_PIXELS = 40_000_000
# the upload limits' defaults (config.py): what a web upload is decoded under
UPLOAD_LIMITS = {"max_pixels": MAX_PIXELS, "max_pixels_per_byte": 60.0, "max_jpeg_scans": 32}
A4_AT_600_DPI = (4960, 7016)


def encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def line_art(width: int, height: int) -> Image.Image:
    """A 1-bit page of text as a 600 dpi scanner sees it: lines of 30 px glyphs, white margins."""
    rng = np.random.default_rng(0)
    glyphs = np.repeat(np.repeat(rng.random((26, 5, 4)) < 0.45, 6, axis=1), 6, axis=2)  # 30 × 24 px
    glyphs = np.pad(glyphs, ((0, 0), (0, 0), (0, 2)))  # and the space between letters
    page = np.ones((height, width), bool)
    per_line = (width - 600) // 26
    for top in range(300, height - 330, 60):
        letters = np.where(rng.random(per_line) < 0.18, -1, rng.integers(0, 26, per_line))
        ink = np.concatenate([glyphs[i] if i >= 0 else np.zeros((30, 26), bool) for i in letters], axis=1)
        page[top : top + 30, 300 : 300 + ink.shape[1]] = ~ink
    return Image.fromarray(page)


@pytest.fixture(scope="module")
def a4_page() -> Image.Image:
    return line_art(*A4_AT_600_DPI)


@pytest.mark.parametrize(("fmt", "options"), [("TIFF", {"compression": "group4"}), ("PNG", {})])
def test_a_line_art_scan_is_not_taken_for_a_bomb(a4_page: Image.Image, fmt: str, options: dict) -> None:
    data = encode(a4_page, fmt, **options)
    pixels = a4_page.width * a4_page.height
    # more pixels per byte than a photo (refused at 60 before), fewer than 8 times that: 1 bit a pixel raw
    assert 60 < pixels / len(data) < 480
    decoded = decode(data, **UPLOAD_LIMITS)  # type: ignore[arg-type]
    assert decoded.mode == "1" and (decoded.width, decoded.height) == A4_AT_600_DPI
    page = np.asarray(a4_page)
    assert np.array_equal(decoded.rgb[..., 0] == 255, page)


def test_a_blank_1_bit_page_is_still_a_bomb() -> None:
    data = encode(Image.new("1", A4_AT_600_DPI, 1), "TIFF", compression="group4")
    with pytest.raises(UserError) as err:
        decode(data, **UPLOAD_LIMITS)  # type: ignore[arg-type]
    assert err.value.status_code == 413
    assert "1-bit scans have far fewer than 480): refused as a decompression bomb" in err.value.detail


def strip_tiff(width: int, height: int) -> bytes:
    """An uncompressed 8-bit gray TIFF stored one row per strip (little-endian, written here by hand)."""
    pixels = bytes([128]) * (width * height)
    offsets_at = 8 + len(pixels)
    offsets = struct.pack(f"<{height}I", *range(8, 8 + width * height, width))
    counts_at = offsets_at + len(offsets)
    counts = struct.pack(f"<{height}H", *[width] * height)
    entries = [
        (256, 4, 1, width),
        (257, 4, 1, height),
        (258, 3, 1, 8),
        (259, 3, 1, 1),  # uncompressed
        (262, 3, 1, 1),  # min-is-black
        (273, 4, height, offsets_at),  # StripOffsets
        (277, 3, 1, 1),
        (278, 4, 1, 1),  # RowsPerStrip
        (279, 3, height, counts_at),  # StripByteCounts
    ]
    directory = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return (
        b"II*\0"
        + struct.pack("<I", counts_at + len(counts))
        + pixels
        + offsets
        + counts
        + directory
        + bytes(4)
    )


def test_a_tiff_of_too_many_strips_is_refused_before_it_is_read() -> None:
    # 1 × 150,000 px in one-row strips: under every pixel limit, but each strip is read on its own (the
    # auditor's 1 × 2,400,000 took 15 s and 880 MB to open)
    data = strip_tiff(1, MAX_TIFF_BLOCKS + 50_000)
    with pytest.raises(UserError) as err:
        decode(data, max_pixels=MAX_PIXELS)  # stored uploads are decoded without the cost limits too
    assert err.value.status_code == 413
    assert err.value.detail == (
        "the TIFF is stored in 150,000 strips or tiles; at most 100,000 are accepted (a photo has a few "
        "thousand at most; each is read on its own)"
    )
    # a photo stored one row per strip is read
    assert decode(strip_tiff(3, 2000), max_pixels=MAX_PIXELS).rgb.shape == (2000, 3, 3)


def with_chunks(png: bytes, count: int, *, after_data: bool = False) -> bytes:
    """``png`` with ``count`` empty private chunks, before its image data or after it."""
    empty = png16.chunk(b"zzZz", b"")
    at = png.index(b"IEND") - 4 if after_data else png.index(b"IDAT") - 4
    return png[:at] + empty * count + png[at:]


@pytest.mark.parametrize("after_data", [False, True])
def test_a_png_of_too_many_chunks_is_refused_before_it_is_read(after_data: bool) -> None:
    png = encode(Image.new("L", (16, 16), 99), "PNG")
    with pytest.raises(UserError) as err:
        decode(with_chunks(png, MAX_PNG_CHUNKS, after_data=after_data), max_pixels=MAX_PIXELS)
    assert err.value.status_code == 413
    assert err.value.detail.startswith("the PNG has more than 100,000 chunks")
    assert decode(with_chunks(png, 1000, after_data=after_data), max_pixels=MAX_PIXELS).rgb.mean() == 99


def test_16_bit_png_reading_has_the_same_chunk_limit() -> None:
    rgb16 = np.full((4, 4, 3), 1000, np.uint16)
    png = png16.encode_rgb16(rgb16, around=encode(Image.new("RGB", (1, 1)), "PNG"))
    crowded = with_chunks(png, MAX_PNG_CHUNKS)
    assert png16.chunk_count(crowded) == MAX_PNG_CHUNKS + 1  # counting stops past the limit
    for read in (png16.read_rgb16, png16.records_png):  # the CLI's way in, without decode()'s check
        with pytest.raises(ValueError, match="more than 100,000 chunks"):
            read(crowded)
    assert np.array_equal(png16.read_rgb16(with_chunks(png, 10)), rgb16)


def float_tiff(width: int, height: int, noisy_rows_every: int) -> bytes:
    """A 32-bit float gray TIFF (ZIP): a smooth ramp with a row of noise every ``noisy_rows_every`` rows."""
    values = np.repeat(np.linspace(0, 1, height, dtype=np.float32)[:, None], width, axis=1)
    noisy = values[::noisy_rows_every]
    noisy[:] = np.random.default_rng(0).random(noisy.shape, dtype=np.float32)
    return encode(Image.fromarray(values, "F"), "TIFF", compression="tiff_adobe_deflate")


def test_the_bomb_check_counts_the_bytes_a_32_bit_pixel_decodes_to() -> None:
    data = float_tiff(2500, 2000, noisy_rows_every=120)
    ratio = 2500 * 2000 / len(data)
    assert 15 < ratio < 60  # a photo's share of the limit of 60, but 4 bytes a pixel decoded: a quarter
    with pytest.raises(UserError) as err:
        decode(data, **UPLOAD_LIMITS)  # type: ignore[arg-type]
    assert err.value.status_code == 413
    assert "32-bit images have far fewer than 15): refused as a decompression bomb" in err.value.detail
    less_smooth = float_tiff(2500, 2000, noisy_rows_every=20)  # about 5 pixels per byte: read
    assert decode(less_smooth, **UPLOAD_LIMITS).mode == "F"  # type: ignore[arg-type]


def test_a_32_bit_image_is_converted_a_band_at_a_time() -> None:
    data = float_tiff(2000, 2000, noisy_rows_every=8)  # 4 MP: no pixels-per-byte limit applies
    tracemalloc.start()
    try:
        decoded = decode(data, **UPLOAD_LIMITS)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # float64 copies of the whole image were 40 bytes a pixel at the peak (a 40 MP one: 1.7 GB, 6 s)
    assert peak < 20 * 2000 * 2000
    assert decoded.rgb.shape == (2000, 2000, 3)
    ramp = np.round(np.linspace(0, 1, 2000) * 255)
    assert np.array_equal(decoded.rgb[1:8, 0, 0], ramp[1:8])  # [0, 1] floats scaled to 255, rounded


def test_float_values_that_are_not_numbers_become_black_or_the_ends() -> None:
    values = np.array([[np.nan, np.inf, -np.inf, 0.5]], np.float32)
    rgb = decode(encode(Image.fromarray(values, "F"), "TIFF"), max_pixels=MAX_PIXELS).rgb
    assert rgb[0, :, 0].tolist() == [0, 255, 0, 128]


def gray_tiff(bits: int, photometric: int, *, big_endian: bool = False, compression: int = 1) -> bytes:
    """A 4 × 2 one-sample TIFF with the given layout, its samples counting 0, 1, ... (written by hand)."""
    order = ">" if big_endian else "<"
    samples = np.arange(8, dtype=f"{order}u{bits // 8}").tobytes()
    entries = [
        (256, 4, 4),
        (257, 4, 2),
        (258, 3, bits),
        (259, 3, compression),
        (262, 3, photometric),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, 2),
        (279, 4, len(samples)),
    ]

    def entry(tag: int, kind: int, value: int) -> bytes:
        packed = struct.pack(order + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,)))
        return struct.pack(order + "HHI", tag, kind, 1) + packed

    directory = struct.pack(order + "H", len(entries)) + b"".join(entry(*e) for e in entries) + bytes(4)
    header = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(order + "I", 8 + len(samples))
    return header + samples + directory


@pytest.mark.parametrize(
    ("data", "variant"),
    [
        (gray_tiff(16, 0, big_endian=True), "16-bit min-is-white"),
        (gray_tiff(8, 8), "8-bit CIELab"),
        (gray_tiff(8, 32844), "8-bit LogL"),
    ],
)
def test_a_tiff_variant_nothing_here_reads_is_named(data: bytes, variant: str) -> None:
    with pytest.raises(UserError) as err:
        decode(data, max_pixels=MAX_PIXELS)
    assert err.value.status_code == 415
    assert err.value.detail == (
        f"this TIFF variant ({variant}) cannot be read here; save it as 8- or 16-bit gray with min-is-black "
        "(BlackIsZero), as 8-bit RGB, or as PNG"
    )


def test_a_tiff_compression_nothing_here_reads_is_named() -> None:
    with pytest.raises(UserError) as err:
        decode(gray_tiff(8, 1, compression=34712), max_pixels=MAX_PIXELS)
    assert err.value.status_code == 415
    assert err.value.detail.startswith("this TIFF's compression (34712, JPEG 2000) cannot be read here")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_damaged_tiff_is_still_called_damaged() -> None:
    data = gray_tiff(8, 1)
    directory = struct.unpack_from("<I", data, 4)[0]
    for damaged in (data[: directory + 10], data[:4] + struct.pack("<I", len(data) + 100) + data[8:]):
        with pytest.raises(UserError) as err:
            decode(damaged, max_pixels=MAX_PIXELS)
        assert (err.value.status_code, err.value.detail) == (
            400,
            "the file starts like a TIFF image but is corrupt or truncated",
        )


def test_a_16_bit_min_is_white_tiff_is_read_white_at_zero() -> None:
    # little-endian: Pillow opens it as 16-bit gray but does not invert it (an 8-bit one it does)
    decoded = decode(gray_tiff(16, 0), max_pixels=MAX_PIXELS)
    assert decoded.gray16 is not None
    assert decoded.gray16.ravel().tolist() == [65535 - level for level in range(8)]
    eight_bit = decode(gray_tiff(8, 0), max_pixels=MAX_PIXELS).rgb[..., 0]
    assert eight_bit.ravel().tolist() == [255 - level for level in range(8)]


def test_png_chunk_counting_reads_lengths_only() -> None:
    png = encode(Image.new("L", (2, 2)), "PNG")
    assert png16.chunk_count(png) == 3  # IHDR, IDAT, IEND
    broken = png[:-4] + b"\0\0\0\0"  # a wrong CRC is not looked at here
    assert png16.chunk_count(broken) == 3
    assert png16.chunk_count(png[:20]) == 1  # as far as it goes
