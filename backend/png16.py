"""16-bit-per-channel RGB PNGs (colour type 2, bit depth 16): a 16-bit scan's colorization is stored as one.

Pillow writes no such PNG and reads one as 8 bits by dropping each sample's low byte, so both ways are here,
in numpy and zlib, a band of rows at a time (a 40 MP result is 240 MB of samples; a band's temporaries are a
few MB). :func:`encode_rgb16` writes the pixels itself and takes every other chunk (ICC profile, resolution,
EXIF, XMP, text) from a PNG that Pillow wrote with the same metadata for a 1 × 1 image, so the records are
encoded once, by the same code as an 8-bit result's. :func:`read_rgb16` reads the files it writes (and any
other non-interlaced one whose rows use the filters None, Sub or Up; the others raise
:class:`UnsupportedPng`), and :func:`records_png` gives Pillow their chunks to read the records from without
the pixels. Torch-free.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np

from worker.colorizers import lab

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RGB16_HEADER = (16, 2, 0, 0, 0)  # bit depth, colour type (RGB), compression, filter method, no interlace
_SAMPLE_BYTES = 6  # bytes per pixel: three big-endian 16-bit samples (the filters' left neighbour distance)
_FILTER_NONE, _FILTER_SUB, _FILTER_UP = 0, 1, 2
_ANIMATION = (b"acTL", b"fcTL", b"fdAT")  # an APNG's frames: its image is the default one, in IDAT
# Rows are filtered, compressed and read back in bands of about this many pixels (the colour conversions').
BAND_PIXELS = lab.BAND_PIXELS
# A band of at most this many rows (256 pixels wide or more) is unfiltered row by row, a taller one at once.
_ROWS_ONE_BY_ONE = 4096
_IDAT_MAX = 1 << 20  # about this many bytes of compressed data per IDAT chunk (any size is valid)
# Most chunks read from one PNG: each costs its own step (a 19 MB file of 1.6 million empty chunks took
# seconds), and a photo has a few thousand at most (20 MB in libpng's 8 KB IDAT chunks: 2,500).
MAX_CHUNKS = 100_000


class UnsupportedPng(ValueError):
    """A valid PNG this reader does not read (interlaced, another colour type or depth, Average or Paeth
    filters): the caller reads it some other way."""


def chunk_count(data: bytes, limit: int = MAX_CHUNKS) -> int:
    """How many chunks the PNG ``data`` has through IEND (or as far as it goes), from their lengths alone (no
    CRC), counting no further than ``limit`` + 1: a quick look before it is decoded."""
    at, count, end = len(SIGNATURE), 0, len(data)
    while at + 8 <= end and count <= limit:
        count += 1
        if data[at + 4 : at + 8] == b"IEND":
            break
        at += 12 + int.from_bytes(data[at : at + 4], "big")
    return count


def chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Each chunk of a PNG as (type, body), through IEND, its CRC checked; ValueError when the file is not a
    PNG, is cut short, a CRC is wrong or it has more than :data:`MAX_CHUNKS` chunks."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    at = len(SIGNATURE)
    for _ in range(MAX_CHUNKS):
        if at + 8 > len(data):
            raise ValueError("the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        end = at + 8 + length
        if end + 4 > len(data):
            raise ValueError(f"the PNG's {kind!r} chunk is cut short")
        body = data[at + 8 : end]
        if zlib.crc32(kind + body) != struct.unpack(">I", data[end : end + 4])[0]:
            raise ValueError(f"the PNG's {kind!r} chunk has a wrong CRC")
        yield kind, body
        if kind == b"IEND":
            return
        at = end + 4
    raise ValueError(f"the PNG has more than {MAX_CHUNKS:,} chunks")


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def is_rgb16(head: bytes) -> bool:
    """Whether a file's first 33 bytes (signature and IHDR) are those of a non-interlaced 16-bit RGB PNG."""
    if len(head) < 33 or not head.startswith(SIGNATURE) or head[12:16] != b"IHDR":
        return False
    return tuple(head[24:29]) == _RGB16_HEADER


def size_of(head: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's first 24 bytes."""
    return struct.unpack(">II", head[16:24])


def _filtered(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    """PNG rows (h, n) of bytes, each with its filter type byte in front: Sub or Up, whichever leaves the
    smaller sum of absolute differences (libpng's heuristic; a photo's smooth rows and columns both
    compress well, and trying Average and Paeth too gained 1-2 % for twice the time); ``above`` is the
    unfiltered row before the first one (zeros at the top of the image)."""
    up = rows.copy()
    up[0] -= above  # uint8 arithmetic wraps modulo 256, as the filters are defined
    up[1:] -= rows[:-1]
    sub = rows.copy()
    sub[:, _SAMPLE_BYTES:] -= rows[:, :-_SAMPLE_BYTES]
    # |difference| of a byte read as signed: abs() of int8 -128 stays -128, whose uint8 view is 128
    cost_up = np.abs(up.view(np.int8)).view(np.uint8).sum(axis=1, dtype=np.uint64)
    cost_sub = np.abs(sub.view(np.int8)).view(np.uint8).sum(axis=1, dtype=np.uint64)
    use_up = cost_up < cost_sub
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = np.where(use_up, _FILTER_UP, _FILTER_SUB)
    out[:, 1:] = np.where(use_up[:, None], up, sub)
    return out


def _ancillary(png: bytes) -> tuple[list[bytes], list[bytes]]:
    """The chunks of a PNG but its IHDR, IDAT, IEND and animation, whole: those before its image data, those
    after."""
    before: list[bytes] = []
    after: list[bytes] = []
    seen_data = False
    for kind, body in chunks(png):
        if kind == b"IDAT":
            seen_data = True
        elif kind not in (b"IHDR", b"IEND", *_ANIMATION):
            (after if seen_data else before).append(chunk(kind, body))
    return before, after


def encode_rgb16(rgb: np.ndarray, *, around: bytes, compress_level: int = 3) -> bytes:
    """uint16 (H, W, 3) RGB -> a 16-bit RGB PNG holding every chunk of the PNG ``around`` but its IHDR, IDAT
    and IEND, each where it was (before the image data or after it)."""
    if rgb.dtype != np.uint16 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint16 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise ValueError(f"a PNG cannot be {width} × {height}")
    before, after = _ancillary(around)
    out = io.BytesIO()  # written as it comes: a list of parts joined at the end held the file twice
    out.write(SIGNATURE + chunk(b"IHDR", struct.pack(">II5B", width, height, *_RGB16_HEADER)))
    out.write(b"".join(before))
    compressor = zlib.compressobj(compress_level)
    pending = b""
    above = np.zeros(width * _SAMPLE_BYTES, dtype=np.uint8)
    rows_per_band = max(1, BAND_PIXELS // width)
    for top in range(0, height, rows_per_band):
        # big-endian samples, as PNG stores them: one row is width × 6 bytes
        band = rgb[top : top + rows_per_band].astype(">u2").view(np.uint8).reshape(-1, width * _SAMPLE_BYTES)
        pending += compressor.compress(_filtered(band, above).data)
        above = band[-1].copy()
        if len(pending) >= _IDAT_MAX:
            out.write(chunk(b"IDAT", pending))
            pending = b""
    pending += compressor.flush()
    out.write(chunk(b"IDAT", pending))
    out.write(b"".join(after) + chunk(b"IEND", b""))
    return out.getvalue()


def records_png(data: bytes) -> bytes:
    """A PNG with every chunk of the PNG ``data`` but its image: the same chunks, each where it was, around a
    1 × 1 8-bit RGB image, for Pillow to read the records from (it would decode the whole image for them)."""
    before, after = _ancillary(data)
    header = chunk(b"IHDR", struct.pack(">II5B", 1, 1, 8, 2, 0, 0, 0))
    pixel = chunk(b"IDAT", zlib.compress(bytes(4)))  # filter byte and one black pixel
    return b"".join([SIGNATURE, header, *before, pixel, *after, chunk(b"IEND", b"")])


def read_rgb16(data: bytes, *, eight_bit: bool = False) -> np.ndarray:
    """The pixels of a 16-bit RGB PNG as uint16 (H, W, 3), or with ``eight_bit`` as uint8 rounded to the
    nearest level (v / 257; Pillow truncates), made a band at a time so that no full-size uint16 copy is
    held. ValueError for a damaged file, :class:`UnsupportedPng` for one this reader does not read."""
    if not is_rgb16(data):
        raise UnsupportedPng("not a non-interlaced 16-bit RGB PNG")
    width, height = size_of(data)
    if width == 0 or height == 0:
        raise ValueError(f"the PNG is {width} × {height}")
    compressed = (body for kind, body in chunks(data) if kind == b"IDAT")
    stride = 1 + width * _SAMPLE_BYTES
    inflater = zlib.decompressobj()
    out = np.empty((height, width, 3), dtype=np.uint8 if eight_bit else np.uint16)
    rows_per_band = max(1, BAND_PIXELS // width)
    above = np.zeros(width * _SAMPLE_BYTES, dtype=np.uint8)
    buffered = bytearray()  # grown and consumed in place: small IDAT chunks must not copy it each time
    for top in range(0, height, rows_per_band):
        count = min(rows_per_band, height - top)
        wanted = count * stride
        while len(buffered) < wanted:  # inflate no more than the band needs: a bomb cannot grow it
            piece = inflater.unconsumed_tail or next(compressed, None)
            if piece is None:
                raise ValueError("the PNG's image data ends early")
            try:
                buffered += inflater.decompress(piece, wanted - len(buffered))
            except zlib.error as exc:  # not a ValueError: callers catch those
                raise ValueError(f"the PNG's image data is damaged: {exc}") from None
        rows = np.frombuffer(buffered[:wanted], dtype=np.uint8).reshape(count, stride)
        del buffered[:wanted]
        band = _unfiltered(rows, above)
        above = band[-1]
        samples = band.view(">u2").reshape(count, width, 3)
        if eight_bit:
            out[top : top + count] = lab.to_uint8(samples.astype(np.uint16))  # native order, then rounded
        else:
            out[top : top + count] = samples
    return out


def _unfiltered(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    """The bytes of filtered PNG rows (h, 1 + n) undone (``above``: the unfiltered row before the first): row
    by row when they are few (a photo's band: the fastest), else the whole band at once (a tall, narrow image
    has a million rows a band)."""
    kinds = rows[:, 0]
    if (kinds > _FILTER_UP).any():
        kind = int(kinds[kinds > _FILTER_UP][0])
        if kind in (3, 4):
            raise UnsupportedPng(f"PNG filter type {kind} (Average or Paeth) is not read here")
        raise ValueError(f"the PNG has an unknown filter type {kind}")
    return (
        _unfiltered_by_row(rows, above)
        if rows.shape[0] <= _ROWS_ONE_BY_ONE
        else _unfiltered_at_once(rows, above)
    )


def _unfiltered_by_row(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    out = np.empty((rows.shape[0], rows.shape[1] - 1), dtype=np.uint8)
    for i, row in enumerate(rows):
        kind, line = int(row[0]), row[1:]
        if kind == _FILTER_NONE:
            out[i] = line
        elif kind == _FILTER_UP:
            np.add(line, out[i - 1] if i else above, out=out[i])  # wraps modulo 256
        else:  # Sub: each byte adds the one a pixel to its left, a running sum per byte position
            np.cumsum(
                line.reshape(-1, _SAMPLE_BYTES), axis=0, dtype=np.uint8, out=out[i].reshape(-1, _SAMPLE_BYTES)
            )
    return out


def _unfiltered_at_once(rows: np.ndarray, above: np.ndarray) -> np.ndarray:
    """:func:`_unfiltered` of a whole band in a few numpy passes.

    None and Sub rows stand on their own (Sub: a running sum along the row). An Up row adds the row above, so
    a run of Up rows is a running sum down the columns from the row before the run: with C the running sum
    of every row (modulo 256, as the filters wrap), a row is C at it less C before its run's start."""
    kinds = rows[:, 0]
    height, width = rows.shape[0], rows.shape[1] - 1
    own = np.empty((height + 1, width), dtype=np.uint8)  # own[0]: the row above, then each row's own part
    own[0] = above
    own[1:] = rows[:, 1:]
    sub = np.flatnonzero(kinds == _FILTER_SUB) + 1
    if sub.size:
        pixels = own[sub].reshape(sub.size, -1, _SAMPLE_BYTES)
        own[sub] = np.cumsum(pixels, axis=1, dtype=np.uint8).reshape(sub.size, width)
    if not (kinds == _FILTER_UP).any():
        return own[1:]
    starts = np.concatenate(([True], kinds != _FILTER_UP))  # the rows that do not add the one above
    start_of = np.maximum.accumulate(np.where(starts, np.arange(height + 1), 0))
    total = np.empty((height + 2, width), dtype=np.uint8)  # total[i + 1]: C at row i; total[0]: zero
    total[0] = 0
    np.cumsum(own, axis=0, dtype=np.uint8, out=total[1:])
    return total[2:] - total[start_of[1:]]
