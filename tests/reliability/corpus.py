"""A generated corpus of hostile and awkward uploads, each with the answer it must get."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from tests.conftest import photo_bytes


@dataclass
class Case:
    name: str
    status: int  # expected HTTP status
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    expect_size: tuple[int, int] | None = None  # (width, height) of an accepted job's input


def _enc(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _noise(w: int, h: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(w * 1000 + h)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray((rng.random(shape) * 255).astype(np.uint8), mode)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int, rows: int = 8) -> bytes:
    """A tiny PNG whose header claims width×height."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress((b"\x00" + b"\x00" * min(width, 4096)) * rows, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def cases(max_upload_bytes: int) -> list[Case]:
    jpeg = photo_bytes()
    png = _enc(_noise(64, 48), "PNG")
    gray = _enc(_noise(40, 30, "L"), "PNG")

    def img(name: str, data: bytes, status: int, ctype: str = "image/png", size=None, **form: str) -> Case:  # type: ignore[no-untyped-def]
        return Case(name, status, {"image": (f"{name}.png", data, ctype)}, {"method": "cnn", **form}, size)

    exif = Image.Exif()
    exif[0x0112] = 6
    pal = Image.new("P", (20, 10), 0)
    pal.putpalette([200, 30, 30] * 256)
    anim = [_noise(24, 16), _noise(24, 16).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    huge_gray_bomb = png_claiming(20000, 20000)
    out = [
        img("truncated-png", png[: len(png) // 2], 400),
        img("truncated-jpeg", jpeg[: len(jpeg) // 3], 400, "image/jpeg"),
        img("zero-bytes", b"", 400),
        img("text-as-png", b"just some text, honestly", 415),
        img("html-as-png", b"<!doctype html><html><script>alert(1)</script></html>", 415),
        img("svg-as-png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 415),
        img("pdf-as-png", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", 415),
        img("zip-as-png", b"PK\x03\x04" + b"\x00" * 40, 415),
        img("png-signature-only", b"\x89PNG\r\n\x1a\n", 400),
        img("decompression-bomb", huge_gray_bomb, 413),
        img("absurd-dimensions", png_claiming(2**31 - 1, 2**31 - 1), 413),
        img("zero-width-header", png_claiming(0, 10), 400),
        img("bad-crc-png", png[:20] + bytes([png[20] ^ 0xFF]) + png[21:], 400),
        img(
            "cmyk-jpeg",
            _enc(Image.new("CMYK", (30, 20), (0, 128, 255, 0)), "JPEG"),
            202,
            "image/jpeg",
            (30, 20),
        ),
        img("16-bit-png", _enc(Image.new("I;16", (33, 21), 40000), "PNG"), 202, size=(33, 21)),
        img("palette-transparency", _enc(pal, "PNG", transparency=0), 202, size=(20, 10)),
        # an animation is not a photo: refused with words that say so, never its first frame unsaid
        img("animated-gif", _enc(anim[0], "GIF", save_all=True, append_images=anim[1:], duration=100), 422),
        img("animated-webp", _enc(anim[0], "WEBP", save_all=True, append_images=anim[1:], duration=100), 422),
        img(
            "multi-page-tiff",
            _enc(anim[0], "TIFF", save_all=True, append_images=anim[1:], compression="tiff_lzw"),
            422,
        ),
        img("exif-rotated", _enc(_noise(40, 20), "JPEG", exif=exif.tobytes()), 202, "image/jpeg", (20, 40)),
        img("1x1", _enc(Image.new("L", (1, 1), 77), "PNG"), 202, size=(1, 1)),
        img("10000x1", _enc(Image.new("L", (10000, 1), 77), "PNG"), 202, size=(10000, 1)),
        img("la-mode", _enc(Image.new("LA", (12, 9), (90, 128)), "PNG"), 202, size=(12, 9)),
        img("bmp", _enc(_noise(17, 13), "BMP"), 202, "image/bmp", (17, 13)),
        img("tiff-float", _enc(Image.new("F", (9, 7), 0.5), "TIFF"), 202, "image/tiff", (9, 7)),
        img("unknown-method", gray, 422, method="magic"),
        img("option-out-of-range", gray, 422, method="exemplar", iterations="1000000"),
        img("option-wrong-type", gray, 422, method="exemplar", iterations="many"),
        img("option-nan", gray, 422, method="exemplar", beta="nan"),
        img("unknown-option", gray, 422, colours="vivid"),
        img("options-not-json", gray, 422, options="{not json"),
        img("reference-for-cnn", gray, 422, reference_id="whatever"),
        Case("missing-image", 422, {}, {"method": "cnn"}),
        # No method: the default one (unet-bins) runs; a method sent as a file is refused.
        Case("missing-method", 202, {"image": ("a.png", gray, "image/png")}, {}),
        Case(
            "method-is-a-file",
            422,
            {"image": ("a.png", gray, "image/png"), "method": ("m", b"cnn", "text/plain")},
            {},
        ),
        Case("image-as-text-field", 422, {}, {"method": "cnn", "image": "not a file"}),
        Case(
            "unicode-filename",
            202,
            {"image": ("фото 🌈 照片.png", _enc(_noise(41, 30, "L"), "PNG"), "image/png")},
            {"method": "cnn"},
            (41, 30),
        ),
        Case(
            "path-traversal-filename",
            202,
            {"image": ("../../../../etc/passwd", _enc(_noise(42, 30, "L"), "PNG"), "image/png")},
            {"method": "cnn"},
            (42, 30),
        ),
        Case(
            "oversized-reference",
            413,
            {
                "image": ("a.png", gray, "image/png"),
                "reference": ("r.png", b"\x89PNG" + b"\x00" * (max_upload_bytes + 10), "image/png"),
            },
            {"method": "exemplar"},
        ),
        Case(
            "oversized-image",
            413,
            {"image": ("a.png", b"\xff\xd8" + b"\x00" * (max_upload_bytes + 10), "image/jpeg")},
            {"method": "cnn"},
        ),
        Case(
            "gray-reference",
            422,
            {"image": ("a.png", gray, "image/png"), "reference": ("r.png", gray, "image/png")},
            {"method": "exemplar"},
        ),
    ]
    return out
