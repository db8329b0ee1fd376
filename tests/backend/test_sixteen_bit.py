"""16-bit gray scans (an archive's masters) keep their tonal precision: their colorization is a 16-bit RGB PNG
whose lightness follows the scan's 65,536 levels, with every record an 8-bit result has; everything that
reads a stored result reads it (JPEG downloads rounded to 8 bits, thumbnails, zips, the CLI); and 8-bit
photos give the very bytes they gave before."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from backend import png16
from backend.config import get_settings
from backend.db import session_scope
from backend.images import (
    decode,
    encode_jpeg,
    encode_png,
    png_to_jpeg,
    renditions,
    thumbnail_jpeg,
)
from backend.models import Image as ImageRow
from tests.backend.cli.conftest import run_cli
from tests.backend.test_photo_metadata import (
    archive_records,
    assert_carries_the_archive_records,
    gray_scan_jpeg,
    icc_profile,
    scan_xmp,
)
from tests.backend.test_provenance import unmarked
from tests.backend.test_runner import get, new_job
from tests.conftest import method_available, photo_bytes
from worker.colorizers import lab, loading
from worker.colorizers.pipeline import compose, predict_many
from worker.quality import job_metrics
from worker.runner import Runner

# -- an independent reader -------------------------------------------------------------------------------


def read_png(data: bytes) -> tuple[tuple[int, ...], list[tuple[bytes, bytes]], np.ndarray]:
    """A minimal PNG reader of its own (not backend.png16's): the IHDR fields (width, height, bit depth,
    colour type, compression, filter method, interlace), every chunk (its CRC checked) and the samples of a
    non-interlaced gray or RGB PNG of 8 or 16 bits, (H, W, channels) uint8 or uint16, any row filter."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    at = 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0], (
            kind
        )
        chunks.append((kind, body))
        at += 12 + length
    assert at == len(data) and chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    header = struct.unpack(">IIBBBBB", chunks[0][1])
    width, height, depth, colour, _, _, interlace = header
    assert interlace == 0 and colour in (0, 2) and depth in (8, 16)
    channels = 3 if colour == 2 else 1
    step = channels * depth // 8  # bytes per pixel: a filter's left neighbour
    stride = width * step
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + stride)
    rows = np.zeros((height + 1, stride), np.int64)  # rows[0]: the zeros above the image
    for y in range(height):
        kind = raw[y * (1 + stride)]
        line = np.frombuffer(raw, np.uint8, stride, y * (1 + stride) + 1).astype(np.int64)
        above, row = rows[y], rows[y + 1]
        for x in range(stride) if kind in (1, 3, 4) else ():
            left = row[x - step] if x >= step else 0
            upper_left = above[x - step] if x >= step else 0
            if kind == 1:
                predicted = left
            elif kind == 3:
                predicted = (left + above[x]) // 2
            else:  # Paeth
                p = left + above[x] - upper_left
                pa, pb, pc = abs(p - left), abs(p - above[x]), abs(p - upper_left)
                predicted = left if pa <= pb and pa <= pc else above[x] if pb <= pc else upper_left
            row[x] = (line[x] + predicted) % 256
        if kind in (0, 2):
            row[:] = (line + (above if kind == 2 else 0)) % 256
    samples = rows[1:].astype(np.uint8)
    if depth == 16:
        samples = samples.view(">u2").astype(np.uint16)
    return header, chunks, samples.reshape(height, width, channels)


def png_bytes(levels: np.ndarray, **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(levels).save(buf, format="PNG", **save)
    return buf.getvalue()


def tiff_bytes(levels: np.ndarray, **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(levels).save(buf, format="TIFF", **save)
    return buf.getvalue()


def gradient(width: int = 2048, height: int = 64) -> np.ndarray:
    """A smooth 16-bit sky: levels 1,000-62,851 rising along x and y, over 60,000 of them distinct."""
    y, x = np.mgrid[0:height, 0:width]
    return (1000 + 30 * x + 7 * y).astype(np.uint16)


def lightness_of_levels(levels: np.ndarray) -> np.ndarray:
    """L of 16-bit sRGB gray levels, in float64 (not through lab's 16-bit table)."""
    return lab.rgb_to_lab(np.repeat((levels / 65535.0)[..., None], 3, axis=-1))[..., 0].astype(np.float64)


def lightness_of_rgb16(rgb: np.ndarray) -> np.ndarray:
    return lab.rgb_to_lab(rgb / 65535.0)[..., 0].astype(np.float64)


class FixedColours:
    """A colorizer whose ab is a fixed smooth field at a net's working size, strong enough that part of it
    is out of gamut (the compose's chroma bisection runs): the same colours on every machine."""

    name = "_fixed"

    def predict_ab(self, lightness: np.ndarray, **_: Any) -> np.ndarray:
        rows, cols = np.meshgrid(np.linspace(-1, 1, 24), np.linspace(-1, 1, 32), indexing="ij")
        return np.stack([70 * rows, 90 * np.sin(3 * cols)], axis=-1).astype(np.float32)


def archive_png16(levels: np.ndarray, **save: Any) -> bytes:
    """A 16-bit gray PNG scan as an archive keeps it: 600 dpi, EXIF (turned: orientation 6), and XMP saying
    what its stored pixels are (Photoshop's fields, as attributes)."""
    info = PngInfo()
    height, width = levels.shape
    info.add_itxt("XML:com.adobe.xmp", scan_xmp("attributes", width, height).decode())
    return png_bytes(levels, dpi=(600, 600), exif=archive_records()["exif"], pnginfo=info, **save)


# -- decoding a 16-bit scan --------------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["PNG I;16", "TIFF I;16", "TIFF I;16B", "TIFF I", "TIFF F"])
def test_a_16_bit_scan_keeps_its_levels(container: str) -> None:
    levels = gradient()
    stored = {
        "PNG I;16": lambda: png_bytes(levels),
        "TIFF I;16": lambda: tiff_bytes(levels),
        "TIFF I;16B": lambda: tiff_bytes(levels.astype(">u2")),
        "TIFF I": lambda: tiff_bytes(levels.astype(np.int32)),
        "TIFF F": lambda: tiff_bytes(levels.astype(np.float32)),
    }[container]()
    decoded = decode(stored, max_pixels=10**7)
    assert decoded.mode == container.split()[1] and decoded.bits == 16
    assert decoded.gray16 is not None and np.array_equal(decoded.gray16, levels)
    # the 8-bit copy everything else uses is what it always was: v / 257 rounded
    assert np.array_equal(decoded.rgb[..., 1], np.round(levels / 257.0).astype(np.uint8))
    lightness = decoded.lightness()
    assert lightness.dtype == np.float32 and len(np.unique(lightness)) > 60_000
    np.testing.assert_allclose(lightness, lightness_of_levels(levels), atol=1e-4)


def test_8_bit_data_in_a_wide_container_stays_an_8_bit_photo() -> None:
    small = (gradient() // 257).astype(np.int32)  # at most 255: 8-bit data (mode I), read as always
    decoded = decode(tiff_bytes(small), max_pixels=10**7)
    assert decoded.gray16 is None and decoded.bits == 8


def test_a_16_bit_scan_is_turned_upright_with_its_levels() -> None:
    levels = gradient(300, 40)
    decoded = decode(archive_png16(levels), max_pixels=10**7)  # orientation 6: turn 90° clockwise
    assert decoded.gray16 is not None and np.array_equal(decoded.gray16, np.rot90(levels, -1))
    assert decoded.rgb.shape == (300, 40, 3)


def test_a_gray_profile_on_a_16_bit_scan_is_applied_at_16_bits() -> None:
    levels = gradient()
    for data in (
        png_bytes(levels, icc_profile=icc_profile("Gray 1.0", 1.0, "GRAY")),
        tiff_bytes(levels, icc_profile=icc_profile("Gray 1.0", 1.0, "GRAY")),
    ):
        decoded = decode(data, max_pixels=10**7)
        assert decoded.gray16 is not None
        # linear light: level v is sRGB-encoded v / 65535 (within a level: LittleCMS's fixed-point maths)
        expected = lab.linear_to_srgb(levels / 65535.0) * 65535
        assert np.abs(decoded.gray16 - expected).max() <= 1.0
        assert len(np.unique(decoded.gray16)) > 40_000  # none lost to an 8-bit conversion
        assert np.array_equal(decoded.rgb[..., 0], lab.to_uint8(decoded.gray16))
    # an unusable profile leaves the levels as they are (read as sRGB), as for an 8-bit photo
    broken = decode(png_bytes(levels, icc_profile=b"not a profile" * 10), max_pixels=10**7)
    assert broken.gray16 is not None and np.array_equal(broken.gray16, levels)


# -- the 16-bit PNG ----------------------------------------------------------------------------------------


def colorized16(data: bytes) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A 16-bit scan colorized as the worker does it, with :class:`FixedColours`: (its PNG, the scan's L, the
    result's uint16 pixels)."""
    decoded = decode(data, max_pixels=10**7)
    lightness = decoded.lightness()
    rgb = predict_many(FixedColours(), [lightness], depths=[decoded.bits])[0]  # type: ignore[list-item]
    assert rgb.dtype == np.uint16
    return encode_png(rgb, metadata=decoded.metadata, colorized_by="_fixed"), lightness, rgb


def test_a_16_bit_gradient_is_colorized_into_a_16_bit_png_with_its_levels() -> None:
    levels = gradient()
    png, _, rgb = colorized16(png_bytes(levels))
    header, _, pixels = read_png(png)
    assert header[:5] == (2048, 64, 16, 2, 0)  # 16 bits per channel, RGB
    assert np.array_equal(pixels, rgb)
    lightness = lightness_of_rgb16(pixels)
    assert np.abs(lightness - lightness_of_levels(levels)).max() < 0.01  # the scan's own lightness
    assert len(np.unique(np.round(lightness, 3))) > 30_000
    chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(pixels / 65535.0)[..., 1:], -1, 0))
    assert chroma.mean() > 10  # coloured, not gray
    # read at 8 bits, as it was before, the scan had at most 256 lightness levels: the banding this removes
    assert len(np.unique(lab.rgb_to_lightness(decode(png_bytes(levels), max_pixels=10**7).rgb))) <= 256


def test_the_16_bit_png_keeps_every_record_and_says_16_bits() -> None:
    levels = gradient(300, 40)
    png, _, _ = colorized16(archive_png16(levels))
    header, chunks, _ = read_png(png)  # every CRC checked
    kinds = [kind for kind, _ in chunks]
    assert header[2:4] == (16, 2)
    first_data = kinds.index(b"IDAT")
    for kind in (b"iCCP", b"pHYs", b"eXIf", b"iTXt"):
        assert kinds.index(kind) < first_data, kinds  # before the image data, as Pillow writes them
    assert kinds.count(b"IHDR") == 1 and kinds[-1] == b"IEND"
    assert_carries_the_archive_records(png, "PNG")  # Pillow reads them: profile, dpi, EXIF, XMP
    with Image.open(io.BytesIO(png)) as img:
        assert img.size == (40, 300)
        camera = img.getexif().get_ifd(0x8769)
        assert 0x0112 not in img.getexif() and camera[0xA001] == 1
        xmp = img.info["XML:com.adobe.xmp"].encode()
    expected = scan_xmp("attributes", 40, 300, gray=False)
    expected = expected.replace(b"<rdf:li>8</rdf:li>", b"<rdf:li>16</rdf:li>")
    assert unmarked(xmp) == expected  # RGB, 3 × 16 bits, sRGB, the result's size, marked: nothing else
    software = encode_png(read_png(png)[2], software="ColorLab (cnn)")
    assert (b"tEXt", b"Software\0ColorLab (cnn)") in read_png(software)[1]


def test_a_16_bit_result_downloads_as_a_rounded_8_bit_jpeg() -> None:
    png, _, rgb = colorized16(archive_png16(gradient(300, 40)))
    rounded = ((rgb.astype(np.uint32) + 128) // 257).astype(np.uint8)
    assert not np.array_equal(rounded, (rgb >> 8).astype(np.uint8))  # truncating would differ here
    read = decode(png, max_pixels=10**7)  # how every reader of a stored result reads it
    assert np.array_equal(read.rgb, rounded) and read.gray16 is None and read.is_color
    jpeg = png_to_jpeg(png, 95, 10**7)
    assert_carries_the_archive_records(jpeg, "JPEG")
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.mode == "RGB" and img.size == (40, 300)
        xmp = img.info["xmp"]
        assert np.abs(np.asarray(img).astype(int) - rounded).mean() < 1.5
    assert b"<rdf:li>8</rdf:li>" in xmp and b"<rdf:li>16</rdf:li>" not in xmp  # a JPEG has 8 bits
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(read.rgb)))
    assert thumb.format == "JPEG" and max(thumb.size) <= 320
    made = renditions(read)
    assert made.color_png is not None and Image.open(io.BytesIO(made.color_png)).mode == "RGB"


def test_the_compose_writes_16_bits_exactly_where_the_scan_is_gray() -> None:
    levels = gradient()
    lightness = decode(png_bytes(levels), max_pixels=10**7).lightness()
    gray = compose(lightness, np.zeros((8, 8, 2), np.float32), depth=16)
    assert np.abs(gray.astype(np.int64) - levels[..., None]).max() <= 1  # L -> sRGB gray: the levels back
    with pytest.raises(ValueError, match="8 or 16"):
        compose(lightness, np.zeros((8, 8, 2), np.float32), depth=12)


# -- the encoder and reader --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (129, 200), (40, 1)])
def test_png16_reads_what_it_writes(shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(png16, "BAND_PIXELS", 500)  # several bands, and a band of one row for (1, 1)
    rng = np.random.default_rng(sum(shape))
    smooth = np.cumsum(rng.integers(-300, 300, (*shape, 3)), axis=1) + 30_000
    rgb = np.clip(smooth, 0, 65535).astype(np.uint16)
    data = encode_png(rgb)
    header, _, pixels = read_png(data)
    assert header[:5] == (shape[1], shape[0], 16, 2, 0) and np.array_equal(pixels, rgb)
    assert np.array_equal(png16.read_rgb16(data), rgb)
    assert np.array_equal(png16.read_rgb16(data, eight_bit=True), lab.to_uint8(rgb))
    with Image.open(io.BytesIO(data)) as img:  # Pillow reads it too (its 8 bits: the high bytes)
        assert img.mode == "RGB" and np.array_equal(np.asarray(img), (rgb >> 8).astype(np.uint8))


def test_png16_chooses_sub_or_up_row_by_row() -> None:
    rgb = np.zeros((64, 64, 3), np.uint16)
    rgb[:32] = np.arange(64, dtype=np.uint16)[None, :, None] * 1000  # rows that repeat: Up leaves zeros
    rgb[32:] = np.arange(32, dtype=np.uint16)[:, None, None] * 1000 + 7  # flat rows: Sub leaves zeros
    raw = zlib.decompress(b"".join(b for k, b in read_png(encode_png(rgb))[1] if k == b"IDAT"))
    filters = [raw[y * (1 + 64 * 6)] for y in range(64)]
    assert set(filters[1:32]) == {2} and set(filters[33:]) == {1}


def _other_program_png16(rgb: np.ndarray, filter_type: int, trailing: bytes = b"") -> bytes:
    """A 16-bit RGB PNG as another program may write it: every row with the filter None or Paeth, and the
    chunks ``trailing`` after its image data."""
    height, width, _ = rgb.shape
    samples = rgb.astype(">u2").view(np.uint8).reshape(height, width * 6).astype(np.int64)
    rows = []
    for y in range(height):
        line = samples[y]
        if filter_type == 4:
            above = samples[y - 1] if y else np.zeros_like(line)
            left = np.concatenate([np.zeros(6, np.int64), line[:-6]])
            upper_left = np.concatenate([np.zeros(6, np.int64), above[:-6]])
            p = left + above - upper_left
            pa, pb, pc = np.abs(p - left), np.abs(p - above), np.abs(p - upper_left)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, above, upper_left))
            line = (line - predicted) % 256
        rows.append(bytes([filter_type]) + line.astype(np.uint8).tobytes())
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        png16.SIGNATURE
        + png16.chunk(b"IHDR", ihdr)
        + png16.chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + trailing
        + png16.chunk(b"IEND", b"")
    )


def test_another_program_s_16_bit_png_is_read_rounded_or_as_pillow_reads_it(tmp_path: Path) -> None:
    from backend.cli.colorize import read_photo

    rgb = np.random.default_rng(5).integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    xmp = png16.chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>after the pixels</x:xmpmeta>")
    plain = _other_program_png16(rgb, 0, trailing=xmp)
    assert np.array_equal(read_png(plain)[2], rgb)
    decoded = decode(plain, max_pixels=10**7)
    assert np.array_equal(decoded.rgb, lab.to_uint8(rgb))  # rounded
    assert decoded.metadata.xmp == b"<x:xmpmeta>after the pixels</x:xmpmeta>"  # a record after the pixels
    (tmp_path / "plain.png").write_bytes(plain)
    local = read_photo(tmp_path / "plain.png")  # `colorlab colorize` reads it alike
    assert np.array_equal(local.rgb, decoded.rgb) and local.metadata == decoded.metadata
    paeth = _other_program_png16(rgb, 4)
    assert np.array_equal(read_png(paeth)[2], rgb)
    with pytest.raises(png16.UnsupportedPng):
        png16.read_rgb16(paeth)
    assert np.array_equal(decode(paeth, max_pixels=10**7).rgb, (rgb >> 8).astype(np.uint8))  # Pillow's


def _filtered_any_way(rgb: np.ndarray, kinds: np.ndarray) -> bytes:
    """The rows of ``rgb`` as PNG image data, row y filtered with ``kinds[y]`` (None, Sub or Up)."""
    height, width, _ = rgb.shape
    samples = rgb.astype(">u2").view(np.uint8).reshape(height, width * 6).astype(np.int64)
    rows = []
    for y in range(height):
        line = samples[y]
        if kinds[y] == 1:
            line = line - np.concatenate([np.zeros(6, np.int64), line[:-6]])
        elif kinds[y] == 2:
            line = line - (samples[y - 1] if y else 0)
        rows.append(bytes([int(kinds[y])]) + (line % 256).astype(np.uint8).tobytes())
    return b"".join(rows)


@pytest.mark.parametrize("shape", [(700, 1), (60, 13), (1, 90)])
@pytest.mark.parametrize("one_by_one", [4096, 0], ids=["row by row", "band at once"])
def test_png16_reads_rows_filtered_any_way_in_chunks_of_any_size(
    shape: tuple[int, int], one_by_one: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs of Up rows across bands, single Sub or None rows among them, image data cut into chunks of one
    byte, empty ones (valid) and large ones, and an APNG's animation chunks: read as written, by either
    way of undoing the filters."""
    monkeypatch.setattr(png16, "BAND_PIXELS", 97)
    monkeypatch.setattr(png16, "_ROWS_ONE_BY_ONE", one_by_one)
    rng = np.random.default_rng(shape[0])
    rgb = rng.integers(0, 65536, (*shape, 3), dtype=np.uint16)
    kinds = rng.choice([0, 1, 2], shape[0], p=[0.1, 0.2, 0.7])
    stream = zlib.compress(_filtered_any_way(rgb, kinds))
    cuts = [0, 1, 2, 2, 3, *sorted(rng.integers(3, len(stream), 20)), len(stream)]
    idats = b"".join(png16.chunk(b"IDAT", stream[a:b]) for a, b in itertools.pairwise(cuts))
    height, width = shape
    animation = png16.chunk(b"acTL", struct.pack(">II", 1, 0)) + png16.chunk(
        b"fcTL", struct.pack(">IIIIIHHBB", 0, width, height, 0, 0, 1, 10, 0, 0)
    )
    data = (
        png16.SIGNATURE
        + png16.chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
        + animation
        + idats
        + png16.chunk(b"IEND", b"")
    )
    assert png16.chunk(b"IDAT", b"") in data  # an empty chunk among them
    assert np.array_equal(png16.read_rgb16(data), rgb)
    assert np.array_equal(decode(data, max_pixels=10**7).rgb, lab.to_uint8(rgb))  # records read by Pillow


def test_png16_refuses_damaged_files() -> None:
    data = encode_png(np.full((30, 40, 3), 1234, np.uint16))
    at = data.index(b"IDAT") + 10
    with pytest.raises(ValueError, match="CRC"):
        png16.read_rgb16(data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :])
    idat = next(body for kind, body in png16.chunks(data) if kind == b"IDAT")
    short = data.replace(png16.chunk(b"IDAT", idat), png16.chunk(b"IDAT", idat[: len(idat) // 2]))
    with pytest.raises(ValueError, match=r"ends early|damaged"):
        png16.read_rgb16(short)


def test_png16_holds_one_band_at_a_time() -> None:
    import tracemalloc

    y, x = np.mgrid[0:1500, 0:4000]  # 6 MP of smooth 16-bit colour
    rgb = np.stack([x * 16, y * 40, (x + y) * 11], axis=-1).astype(np.uint16)
    del y, x
    tracemalloc.start()
    try:
        data = encode_png(rgb)
        encoded_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        eight = png16.read_rgb16(data, eight_bit=True)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # a band's temporaries are ~30 MB; a full-size filtered copy alone would be 36 MB more (and 8 bytes a
    # pixel in int64)
    assert encoded_peak < 2 * len(data) + 50e6, f"{encoded_peak / 1e6:.0f} MB"
    assert read_peak < len(data) + eight.nbytes + 50e6, f"{read_peak / 1e6:.0f} MB"


# -- 8-bit sources: unchanged, byte for byte ---------------------------------------------------------------

# Made by `eight_bit_outputs()` run against the code before 16-bit results existed (commit b7be481), with the
# same fixed sRGB profile (LittleCMS dates the profile it makes: the one results carry says when the process
# started, so it is fixed here). Every 8-bit source still gives these very bytes (results, renditions,
# thumbnails, JPEG downloads, the CLI's files) and these metrics.
EIGHT_BIT_DIGESTS = {
    "colour-jpeg result.png": "d8a9fef6e5b4094d471cd08a1dd1b7dbf147ea3dc6155db6c35244643e0f8767",
    "colour-jpeg result.jpg": "8c75c302d36f5f9bbf61e2499848f0bb8ee464822c146367c59da8a0daf238b0",
    "colour-jpeg result-thumb.jpg": "83240b5b9c039dfb0c4ab0152426064e2784726bda334bd422e94c147c235acc",
    "colour-jpeg cli.png": "daf0ba80dfe134039fcb31ab59f08dd09653521b7eb9930cbb77a26fc6a4da6c",
    "colour-jpeg cli.jpg": "f34907acc80c2f0746289c44c0d68d40217059ee4224fce365934b1d79f39b95",
    "colour-jpeg input.png": "12951978de88c54978d00ed323f4466324c9dcfc0297ea5ed1a7d8a8a5795a0d",
    "colour-jpeg original.png": "57de12cf3682843255786ed42ec98a8d69c19cc72c4cbd0f30a5c22060ff982c",
    "colour-jpeg thumb.jpg": "71d1837e7c6f0a0e1ebc4d780354df4c0ba82cb6acfcda40986b2ce95ce2cf33",
    "colour-jpeg metrics": "[('auc', 0.75011), ('colourfulness', 100.076), ('colourfulness_gap', 50.028), "
    "('colourfulness_truth', 50.048), ('eq9_accuracy', 0.00783), ('psnr', 14.628), ('ssim', 0.60763)]",
    "archive-jpeg result.png": "9fe54699add9596763ae3c932ff55a423a82174676bcc1ac4ba772597286824a",
    "archive-jpeg result.jpg": "0dbca0e6f57f8672fb725ef86c2b067bf1169b29ded01779f46fa49a34abb49e",
    "archive-jpeg result-thumb.jpg": "8a4fcdd13482f326de8b53bc1d29163f06fa91b86d4f5bebcfaea91915576627",
    "archive-jpeg cli.png": "c6f9e5da115b58f865a2b7392b7ebc3c7bdbd9845de15e3e852f0d7b5a79874a",
    "archive-jpeg cli.jpg": "652bfbbafa2cc1f730ed70e9abec4f76a2eca4762f95de9f68f95908256d6a46",
    "archive-jpeg input.png": "f42e3e71ab874252e77f5f92cdaed9d069f2aa88b4820462e9af3d713996c27a",
    "archive-jpeg original.png": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "archive-jpeg thumb.jpg": "b859c9c575be235909cf286cd6dd86d4791eb00585714ea25aa42fd05422ccbc",
    "gray-png-profile result.png": "20444565cba6f9a00a343d7116b346c5e1eadff2bb4e1669eeb574ed3de499ef",
    "gray-png-profile result.jpg": "f667bc7f8735fc7a94f2b54c63b3518fb0fcd97eeaa1f875ecf8ac548c91c9cc",
    "gray-png-profile result-thumb.jpg": "81a935168a11df386be5a58f6f33eb438a067e585dfd98efbf2443426aaf635d",
    "gray-png-profile cli.png": "fcac9c6c94f24f4a4b728cb33d7adbad53f2e7281f3f3b87b91f13a89cb80b8d",
    "gray-png-profile cli.jpg": "388e95376af1bd04611c0bb92131119c7df72c1065f0f58a69bc572a1555100f",
    "gray-png-profile input.png": "78acd502f38efbff378ad4542f671e0d9877911ce5f37c859bc4e224e1208e85",
    "gray-png-profile original.png": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "gray-png-profile thumb.jpg": "92736b4ecfa87f2112b05c3a6719e9e9176c7056398bd1fa16adc6b0eca91e8d",
}


def eight_bit_sources() -> dict[str, bytes]:
    """8-bit photos as people send them: a real colour JPEG (a ground truth), an archive's gray JPEG with
    its records (turned, 600 dpi, EXIF, XMP), an 8-bit gray PNG with a gray profile."""
    gray = np.random.default_rng(3).integers(0, 256, (40, 56), dtype=np.uint8)
    gray = np.clip(gray // 4 + np.linspace(0, 190, 56, dtype=np.uint8)[None, :], 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="PNG", icc_profile=icc_profile("Gray 1.8", 1.8, "GRAY"))
    return {
        "colour-jpeg": photo_bytes("001_"),
        "archive-jpeg": gray_scan_jpeg(np.repeat(gray[..., None], 3, axis=-1), "attributes"),
        "gray-png-profile": buf.getvalue(),
    }


def eight_bit_outputs() -> dict[str, str]:
    """sha256 of everything made from :func:`eight_bit_sources` (and the metrics, as text)."""
    out: dict[str, str] = {}
    for name, data in eight_bit_sources().items():
        decoded = decode(data, max_pixels=10**8)
        rgb = predict_many(FixedColours(), [decoded.lightness()])[0]  # type: ignore[list-item]
        png = encode_png(rgb, metadata=decoded.metadata)
        made = renditions(decoded)
        made_by_us = {
            "result.png": png,
            "result.jpg": png_to_jpeg(png, 90, 10**8),
            "result-thumb.jpg": thumbnail_jpeg(decode(png, max_pixels=10**8).rgb),
            "cli.png": encode_png(rgb, software="ColorLab (_fixed)", metadata=decoded.metadata),
            "cli.jpg": encode_jpeg(rgb, 90, software="ColorLab (_fixed)", metadata=decoded.metadata),
            "input.png": made.gray_png,
            "original.png": made.color_png or b"",
            "thumb.jpg": made.thumb_jpeg,
        }
        out |= {f"{name} {kind}": hashlib.sha256(v).hexdigest() for kind, v in made_by_us.items()}
        if decoded.is_color:
            out[f"{name} metrics"] = repr(sorted(job_metrics(rgb, decoded.rgb).items()))
    return out


@pytest.fixture
def dated_profile_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Results' sRGB profile with its creation date (bytes 24-35 of the header) zeroed, as the digests were
    made."""
    from backend import images

    monkeypatch.setattr(images, "_SRGB_ICC", images._SRGB_ICC[:24] + bytes(12) + images._SRGB_ICC[36:])


# numpy's float32 maths runs other SIMD code on a CPU without AVX-512 (an AMD EPYC with AVX2 only), whose
# results differ in the last bit now and then: a few of the colour photo's pixels round the other way. Its
# results on such a CPU (the same code, the same sources; session 24's VM), in place of the ones above.
WITHOUT_AVX512 = {
    "colour-jpeg result.png": "49baed57d22ace047de8601e19e17eebfcd2b20ef022557bad53e5016df9a99a",
    "colour-jpeg result.jpg": "b60709e472523585fd8534b02ac8ec97fa09391a9fa135767e477b72a547b93f",
    "colour-jpeg cli.png": "82a66955f2d31c38133a32e242610fb6a108796b467c2741699794f20130b7cf",
    "colour-jpeg cli.jpg": "c9c5bff65051c473fa3b9d232e4da372bbf6f29e1689039a433d853ad72f9aaf",
}


@pytest.mark.usefixtures("dated_profile_fixed")
def test_8_bit_sources_give_the_same_bytes_as_before() -> None:
    for name, data in eight_bit_sources().items():
        decoded = decode(data, max_pixels=10**8)
        assert decoded.gray16 is None and decoded.bits == 8, name
    from numpy._core._multiarray_umath import __cpu_features__

    avx512 = any(on for feature, on in __cpu_features__.items() if feature.startswith("AVX512"))
    assert eight_bit_outputs() == (EIGHT_BIT_DIGESTS if avx512 else EIGHT_BIT_DIGESTS | WITHOUT_AVX512)


# -- the worker --------------------------------------------------------------------------------------------


def stored_result(job_id: str) -> bytes:
    with session_scope() as s:
        data: bytes = s.scalars(select(ImageRow.data).where(ImageRow.id == get(job_id).result_image_id)).one()
        return data


@pytest.fixture
def cnn() -> None:
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")


@pytest.mark.usefixtures("cnn")
def test_the_worker_stores_a_16_bit_scan_s_colorization_as_a_16_bit_png(runner: Runner) -> None:
    levels = gradient(1024, 96)
    job_id = new_job("cnn", data=archive_png16(levels))
    assert runner.run(job_id) == "done"
    png = stored_result(job_id)
    header, chunks, pixels = read_png(png)
    assert header[:4] == (96, 1024, 16, 2)  # turned upright
    lightness = lightness_of_rgb16(pixels)
    assert np.abs(lightness - lightness_of_levels(np.rot90(levels, -1))).max() < 0.05
    assert len(np.unique(np.round(lightness, 3))) > 20_000
    assert b"iCCP" in dict(chunks) and b"<rdf:li>16</rdf:li>" in dict(chunks)[b"iTXt"]
    assert_carries_the_archive_records(png_to_jpeg(png, 90, 10**7), "JPEG")
    assert get(job_id).metrics is None  # a gray scan has no ground truth


@pytest.mark.usefixtures("cnn")
def test_a_fast_lane_batch_gives_each_photo_its_own_depth(runner: Runner) -> None:
    scans = [png_bytes(gradient(200, 50)), tiff_bytes(gradient(120, 80).astype(">u2"))]
    ids = [new_job("cnn", data=scan) for scan in scans] + [new_job("cnn", data=gray_scan_jpeg(
        np.zeros((30, 20, 3), np.uint8) + 90, "elements"))]  # fmt: skip
    assert runner.run(ids[0]) == "done"
    assert [get(i).status for i in ids] == ["done"] * 3  # one pass
    depths = [read_png(stored_result(i))[0][2] for i in ids]
    assert depths == [16, 16, 8]


@pytest.mark.usefixtures("cnn", "dated_profile_fixed")
def test_an_8_bit_scan_s_worker_result_is_the_8_bit_compose(runner: Runner) -> None:
    """The worker's result of an 8-bit photo is the 8-bit functions' (whose bytes are the ones they gave
    before: :func:`test_8_bit_sources_give_the_same_bytes_as_before`), byte for byte but for the time and
    instance ID in the XMP that says it is a colorization."""
    data = eight_bit_sources()["archive-jpeg"]
    job_id = new_job("cnn", data=data)
    assert runner.run(job_id) == "done"
    decoded = decode(data, max_pixels=10**8)
    colorizer = loading.get_colorizer("cnn", get_settings().weights_dir, runner.device)
    lightness = lab.rgb_to_lightness(decoded.rgb)
    ab = colorizer.predict_ab(lightness, reference=None, params=get(job_id).params, progress=None)
    expected = encode_png(compose(lightness, ab), metadata=decoded.metadata, colorized_by="cnn")

    def without_marking(png: bytes) -> list[tuple[bytes, bytes]]:
        chunks = read_png(png)[1]
        return [
            (k, b[: b.index(b"<")] + unmarked(b[b.index(b"<") :]) if k == b"iTXt" else b) for k, b in chunks
        ]

    assert without_marking(stored_result(job_id)) == without_marking(expected)


@pytest.mark.usefixtures("cnn")
def test_a_16_bit_result_serves_its_page_downloads_and_zips(client) -> None:  # type: ignore[no-untyped-def]
    scan = tiff_bytes(gradient(400, 60), icc_profile=icc_profile("Gray 2.2", 2.2, "GRAY"))
    r = client.post("/colorize", files={"image": ("scan.tif", scan, "image/tiff")}, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    assert Runner(get_settings()).run(job_id) == "done"
    png = client.get(f"/jobs/{job_id}/result.png")
    assert png.status_code == 200 and read_png(png.content)[0][2:4] == (16, 2)
    jpg = client.get(f"/jobs/{job_id}/result.png?format=jpg&quality=90")
    assert jpg.status_code == 200 and jpg.headers["content-type"] == "image/jpeg"
    rounded = decode(png.content, max_pixels=10**7).rgb
    assert np.abs(np.asarray(Image.open(io.BytesIO(jpg.content))).astype(int) - rounded).mean() < 1.5
    thumb = client.get(f"/jobs/{job_id}/thumb.jpg?of=result")
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (320, 48)
    assert client.get(f"/jobs/{job_id}/input.png").status_code == 200
    assert client.get(f"/jobs/{job_id}/thumb.jpg?of=input").status_code == 200
    for fmt in ("png", "jpg"):
        archive = client.get(f"/results.zip?id={job_id}&format={fmt}")
        assert archive.status_code == 200, archive.text
        with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
            (name,) = zipped.namelist()
            assert name == f"scan-cnn.{fmt}"
            content = zipped.read(name)
        assert content == png.content if fmt == "png" else Image.open(io.BytesIO(content)).format == "JPEG"
    assert client.get(f"/jobs/{job_id}/view").status_code == 200  # the page, whose script reads these
    urls = client.get(f"/jobs/{job_id}").json()["urls"]
    assert client.get(urls["result"]).content == png.content
    assert client.get(urls["thumb"]).status_code == 200


# -- the command line ----------------------------------------------------------------------------------------


@pytest.mark.usefixtures("cnn")
def test_colorize_cli_writes_a_16_bit_png_for_a_16_bit_scan(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    levels = gradient(320, 48)
    (folder / "scan16.png").write_bytes(archive_png16(levels))
    (folder / "scan16.tif").write_bytes(tiff_bytes(levels))
    (folder / "scan8.jpg").write_bytes(gray_scan_jpeg(np.zeros((30, 20, 3), np.uint8) + 90, "attributes"))
    out = tmp_path / "png"
    for _ in range(2):  # the second run replaces its own results (a 16-bit one is known as ours too)
        code, output = run_cli("colorize", str(folder), "-o", str(out), "--method", "cnn", "--no-progress")
        assert code == 0, output
    assert sorted(p.name for p in out.iterdir()) == ["scan16-2.png", "scan16.png", "scan8.png"]
    for name, upright in (("scan16.png", np.rot90(levels, -1)), ("scan16-2.png", levels)):
        header, chunks, pixels = read_png((out / name).read_bytes())
        assert header[2:4] == (16, 2)
        assert np.abs(lightness_of_rgb16(pixels) - lightness_of_levels(upright)).max() < 0.05
        assert (b"tEXt", b"Software\0ColorLab (cnn)") in chunks
    assert_carries_the_archive_records((out / "scan16.png").read_bytes(), "PNG")
    assert read_png((out / "scan8.png").read_bytes())[0][2] == 8
    jpg = tmp_path / "jpg"
    code, output = run_cli("colorize", str(folder), "-o", str(jpg), "--method", "cnn", "--format", "jpg",
                           "--no-progress")  # fmt: skip
    assert code == 0, output
    with Image.open(jpg / "scan16.jpg") as img:
        assert img.format == "JPEG" and img.mode == "RGB" and img.size == (48, 320)
    assert_carries_the_archive_records((jpg / "scan16.jpg").read_bytes(), "JPEG")
