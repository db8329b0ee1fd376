"""Decoding uploaded images, once, under limits; and encoding images for the browser.

Every upload goes through :func:`decode`: the format must be one people send photos in (by content, never
by file name), the pixel count is checked from the header before any pixel is decoded, and so is the decode
cost: pixels per byte of file (a tiny file that decodes to a huge image is a bomb) and the number of scans of
a progressive JPEG. Pillow's decompression-bomb guard is an error, EXIF orientation is applied, the first
frame of an animation is used, and every mode (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I;16, I, F, ...)
becomes 8-bit sRGB, with transparency composited over white; a 16-bit gray scan (an archive's master) also
keeps its 65,536 levels (:attr:`DecodedImage.gray16`) for its colorization, a 16-bit PNG
(:mod:`backend.png16`). A photo that says which colour space its numbers are in (an embedded ICC profile:
Adobe RGB, Display P3 from a phone, a CMYK press profile, a gray dot-gain profile) is converted to sRGB, so a
reference's and a ground truth's colours are the ones the photographer saw. What the file says beyond its
pixels (:class:`PhotoMetadata`: resolution, EXIF, XMP) is kept and written into the photo's colorizations,
where what it says about the pixels (their size, colour mode, profile) is made the result's.
:func:`renditions` makes, once, the PNGs and the thumbnail that are served afterwards. Torch-free: the web
process and the worker both use it.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from backend import png16, provenance
from backend.errors import UserError
from worker.colorizers import lab

log = logging.getLogger("colorlab.images")

ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.init()  # register every format plugin now, so `formats=` can name them
# Raster formats we accept (matched against the file's content by Pillow, not its name): what cameras,
# phones, scanners and browsers save photos as. JPEG 2000, AVIF and PPM are refused: nobody sends photos in
# them here, and their decoders turned 1-3 KB files into gigabyte, multi-second decodes.
ALLOWED_FORMATS = tuple(f for f in ("PNG", "JPEG", "MPO", "GIF", "WEBP", "BMP", "TIFF") if f in Image.OPEN)
# The pixels-per-byte cap applies above this size: small images are cheap whatever their file size.
RATIO_FREE_PIXELS = 4_000_000
THUMB_SIDE = 320
# A pixel counts as coloured when its channels differ by more than this (8-bit levels); JPEG noise on a
# gray photo stays below it.
_CHROMA_LEVELS = 12
_COLOR_SHARE = 0.005
# JPEG keeps EXIF and XMP in one APP1 segment each: a larger record (a camera's maker notes, a long edit
# history) is dropped rather than fail the result.
_RECORD_LIMIT = provenance.RECORD_LIMIT
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_SRGB_ICC = _SRGB.tobytes()  # 588 bytes, "sRGB built-in": what a result is tagged with
_D50 = (0.9642, 1.0, 0.8249)  # the ICC connection space's white
# modes whose embedded profile is applied (LittleCMS; 16-bit gray is a scanner's; LA's gray apart from its
# alpha)
_MANAGED_MODES = ("RGB", "RGBA", "CMYK", "L", "LA", "I;16", "I;16L", "I;16B")
# 16-bit gray, an archive's scanning master (FADGI, Metamorfoze): its 65,536 levels are kept for its
# colorization's lightness (:attr:`DecodedImage.gray16`), besides the 8-bit copy everything else uses
_SIXTEEN_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N")
_ORIENTATION, _X_RESOLUTION, _EXIF_IFD, _COLOR_SPACE, _INTEROP_IFD = 0x0112, 0x011A, 0x8769, 0xA001, 0xA005
_PIXEL_WIDTH, _PIXEL_HEIGHT = 0xA002, 0xA003  # the Exif IFD's ExifImageWidth/ExifImageHeight
# EXIF orientation -> the turn that shows the photo upright (ImageOps.exif_transpose's table; that function
# also writes the record back into the image, and a damaged record made it refuse a readable photo)
_TURNS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# A TIFF's EXIF record, as Pillow reads it, is the file's own directory: how its pixels are laid out,
# compressed and coloured (its ICC profile, transfer curve, palette), its XMP and Photoshop blocks (with a
# thumbnail of the original). None of them describes a result, whose pixels are sRGB in another file.
_FILE_TAGS = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 263, 264, 265, 266, 273, 277, 278, 279, 280, 281, 284, 288, 289}
    | {290, 291, 292, 293, 301, 317, 318, 319, 320, 321, 322, 323, 324, 325, 330, 332, 333, 334, 336, 338}
    | {339, 340, 341, 347, *range(512, 522), 529, 530, 532, 700, 34377, 34675, 37724}
)
# Left out of the XMP record: the orientation (the pixels are turned) and the thumbnails of the gray original
# that Photoshop and Bridge keep there (xap: in older files; :func:`_without_thumbnails`)
_XMP_ORIENTATION = re.compile(rb'tiff:Orientation="[0-9]"|<tiff:Orientation>[0-9]</tiff:Orientation>')
_XMP_THUMBNAILS = re.compile(rb"<(xmp|xap):Thumbnails\b")
# A packet larger than this is not read at all: thumbnails aside, a record must fit _RECORD_LIMIT anyway
_XMP_READ_LIMIT = 4 * _RECORD_LIMIT
# XMP's fields that describe the pixels of the file they came from (:func:`_xmp_for_result` writes a result's
# over them), by the namespace their prefix must be bound to; None: the result's width or height.
_XMP_NAMESPACES = {
    b"photoshop": b"http://ns.adobe.com/photoshop/1.0/",
    b"tiff": b"http://ns.adobe.com/tiff/1.0/",
    b"exif": b"http://ns.adobe.com/exif/1.0/",
}
_XMP_PIXEL_FIELDS: dict[bytes, bytes | None] = {
    b"photoshop:ColorMode": b"3",  # RGB (a gray original says 1, Grayscale)
    b"photoshop:ICCProfile": b"sRGB IEC61966-2.1",  # the name of the profile the pixels are in
    b"tiff:PhotometricInterpretation": b"2",  # RGB (gray: 1 or 0)
    b"tiff:SamplesPerPixel": b"3",
    b"tiff:BitsPerSample": b"8, 8, 8",  # 16, 16, 16 for a 16-bit result; an rdf:Seq of three where it is one
    b"exif:ColorSpace": b"1",  # sRGB
    b"tiff:ImageWidth": None,
    b"tiff:ImageLength": None,
    b"exif:PixelXDimension": None,
    b"exif:PixelYDimension": None,
}
_XMP_WIDTHS = (b"tiff:ImageWidth", b"exif:PixelXDimension")
_XMP_FIELD_NAMES = b"|".join(re.escape(name) for name in _XMP_PIXEL_FIELDS)
# One attribute, and a start tag of rdf:Description read attribute by attribute (a quoted value may hold ">");
# an attribute's blanks are matched from the first of them only (from each, a long run took quadratic time)
_XMP_ATTRIBUTE = re.compile(rb"""(?<!\s)(\s+)([\w.:-]+)(\s*=\s*)("[^"<]*"|'[^'<]*')""")
_XMP_DESCRIPTION = re.compile(rb"""<rdf:Description(?:\s+[\w.:-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*\s*/?>""")
# A field as an element holding text, and BitsPerSample's list (<rdf:Seq> of <rdf:li>), its layout kept
_XMP_ELEMENT = re.compile(rb"<(" + _XMP_FIELD_NAMES + rb")\s*>[^<]*</\1\s*>")
_XMP_BITS_SEQ = re.compile(
    rb"<tiff:BitsPerSample\s*>(\s*<rdf:Seq\s*>)(\s*)<rdf:li\s*>[^<]*</rdf:li\s*>"
    rb"(?:\s*<rdf:li\s*>[^<]*</rdf:li\s*>)*(\s*</rdf:Seq\s*>\s*)</tiff:BitsPerSample\s*>"
)


@dataclass(frozen=True)
class PhotoMetadata:
    """What a photo's file says beyond its pixels, written into its colorizations: the resolution (a scan
    printed at its size), and the EXIF and XMP records (date, camera, caption, copyright, place). The
    orientation is left out (the pixels are already turned), and EXIF's colour space says sRGB (the pixels
    were converted to it). What the records say about the original's pixels (their size; in XMP also their
    colour mode, samples, bits and profile) is written over with the result's when one is encoded
    (:func:`_exif_for_result`, :func:`_xmp_for_result`): only then is its size known."""

    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # (H, W, 3) uint8 sRGB, oriented
    mode: str  # Pillow mode of the file as uploaded
    format: str  # PNG, JPEG, ...
    is_color: bool
    metadata: PhotoMetadata = PhotoMetadata()
    # a 16-bit gray scan's own levels, (H, W) uint16 sRGB gray, oriented (``rgb`` is them rounded to 8 bits);
    # None for every other photo
    gray16: np.ndarray | None = None

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def bits(self) -> int:
        """Bits per channel of its colorization: 16 for a 16-bit gray scan (a 16-bit PNG, whose lightness
        keeps the scan's levels), else 8."""
        return 16 if self.gray16 is not None else 8

    def lightness(self) -> np.ndarray:
        """CIE L (H, W) float32 in [0, 100]; a 16-bit scan's from its 65,536 levels, not 8-bit ``rgb``."""
        if self.gray16 is not None:
            return lab.gray16_to_lightness(self.gray16)
        return lab.rgb_to_lightness(self.rgb)

    @property
    def facts(self) -> ImageFacts:
        return ImageFacts(self.width, self.height, self.mode, self.format, self.is_color)


@dataclass(frozen=True)
class ImageFacts:
    """What decoding told us about an image, without its pixels (kept once its renditions are made)."""

    width: int
    height: int
    mode: str
    format: str
    is_color: bool


def to_rgb8(img: Image.Image) -> np.ndarray:
    """8-bit sRGB (H, W, 3) of an image in any mode: 16-bit and float gray scaled, transparency over white."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return _gray_to_rgb(np.asarray(img, dtype=np.float64) / 257.0)
    if mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        finite = arr[np.isfinite(arr)]
        top = float(finite.max()) if finite.size else 0.0
        if mode == "F" and top <= 1.0:
            arr = arr * 255.0  # float images in [0, 1]
        elif top > 65535:
            arr = arr * (255.0 / top)
        elif top > 255:
            arr = arr / 257.0  # 16-bit data in a 32-bit container
        return _gray_to_rgb(np.nan_to_num(arr, nan=0.0))
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode in ("1", "L"):
        gray = np.asarray(img.convert("L"))  # already 8-bit: no float copy (a CLI scan may be 170 MP)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def to_srgb(img: Image.Image) -> Image.Image:
    """``img`` converted from its embedded ICC profile to sRGB (perceptual intent); unchanged without one,
    with an sRGB one, in a mode LittleCMS is not given here, or when the profile cannot be read (its numbers
    are then taken as sRGB, as any browser would)."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # a palette's colours are converted, not its indices (info is copied)
    if not icc or img.mode not in _MANAGED_MODES:
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return img  # most cameras' and browsers' profile: nothing to convert
        gray_alpha = img.mode == "LA"  # its gray converted, its alpha put back (LittleCMS reads it as gray)
        converted = ImageCms.profileToProfile(
            img.convert("L") if gray_alpha else img,
            source,
            _SRGB,
            outputMode="RGBA" if img.mode == "RGBA" else "RGB",
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img
    if not isinstance(converted, Image.Image):
        return img
    if gray_alpha:
        converted.putalpha(img.getchannel("A"))
    return converted


def read_metadata(record: Image.Exif, info: dict[Any, Any]) -> PhotoMetadata:
    """:class:`PhotoMetadata` from an opened image's EXIF ``record`` (changed here) and ``info``; the
    orientation is left out of both (the pixels are turned upright), and so are what a TIFF's record says
    about its own file and XMP's thumbnails; records that cannot be read or written back are left out, never
    an error."""
    dpi = info.get("dpi")
    try:
        x, y = (float(v) for v in dpi) if isinstance(dpi, tuple) and len(dpi) == 2 else (0.0, 0.0)
    except (TypeError, ValueError):
        x, y = 0.0, 0.0
    # JFIF keeps the resolution in 16 bits: a larger one would wrap around in the JPEG download
    resolution = (x, y) if 1.0 <= x <= 65_535 and 1.0 <= y <= 65_535 else None
    exif: bytes | None = None
    try:
        for tag in {_ORIENTATION, *_FILE_TAGS}.intersection(record):
            del record[tag]
        if len(record):
            if _EXIF_IFD in record:  # get_ifd would add an empty one
                camera = record.get_ifd(_EXIF_IFD)
                camera[_COLOR_SPACE] = 1  # sRGB, as the pixels now are
                camera.pop(_INTEROP_IFD, None)  # its "R03" would tell viewers Adobe RGB
            exif = record.tobytes() or None
    except Exception:  # a malformed EXIF record is the file's problem: leave it out
        exif = None
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
    packet = xmp.encode("utf-8") if isinstance(xmp, str) else xmp if isinstance(xmp, bytes) else None
    if packet and len(packet) <= _XMP_READ_LIMIT:
        packet = _without_thumbnails(_XMP_ORIENTATION.sub(b"", packet))
    return PhotoMetadata(
        dpi=resolution,
        exif=exif if exif and len(exif) <= _RECORD_LIMIT else None,
        xmp=packet if packet and len(packet) <= _RECORD_LIMIT else None,
    )


def _without_thumbnails(packet: bytes) -> bytes:
    """``packet`` without its ``<xmp:Thumbnails>`` (or ``xap:``) elements, in one pass: a lazy regex from each
    opening tag to its closing one rescans the rest of the packet for every opening left unclosed (1.5 s on
    a hostile 65 KB packet, on every upload)."""
    kept: list[bytes] = []
    start = searched = 0
    unclosed: set[bytes] = set()  # prefixes with no closing tag left: none after a later opening either
    while found := _XMP_THUMBNAILS.search(packet, searched):
        searched = found.end()
        prefix = found.group(1)
        end = -1 if prefix in unclosed else packet.find(b"</" + prefix + b":Thumbnails>", searched)
        if end < 0:
            unclosed.add(prefix)
            continue
        kept.append(packet[start : found.start()])
        start = searched = end + len(prefix) + len(b"</:Thumbnails>")
    kept.append(packet[start:])
    return b"".join(kept)


def decode_opened(img: Image.Image, *, pixels: np.ndarray | None = None) -> DecodedImage:
    """An opened image (its frame loaded) as a :class:`DecodedImage`: 8-bit sRGB (EXIF orientation applied,
    ICC profile converted), a 16-bit gray scan's own levels beside (``gray16``), and its metadata.
    ``pixels``: its 8-bit RGB read otherwise (:func:`decode_rgb16_png`), which ``img`` only describes."""
    try:
        record = img.getexif()  # the file's own: a turned copy would lose a TIFF's tags
        orientation = record.get(_ORIENTATION)
    except Exception:  # a record too damaged to read: no orientation and no EXIF, as a browser shows it
        record, orientation = Image.Exif(), None
    turn = _TURNS.get(orientation) if isinstance(orientation, int) else None
    source = img
    if pixels is not None:
        source = Image.fromarray(pixels)
        source.info = dict(img.info)  # its profile is converted from as any photo's
    upright = source.transpose(turn) if turn is not None else source
    info = img.info
    if img.format == "TIFF" and _X_RESOLUTION not in record:  # Pillow says 1 dpi where a TIFF states none
        info = {key: value for key, value in info.items() if key != "dpi"}
    gray16 = sixteen_bit_gray(upright)
    if gray16 is not None:
        rgb = np.repeat(lab.to_uint8(gray16)[..., None], 3, axis=-1)  # what to_rgb8 makes of it, v / 257
    else:
        rgb = to_rgb8(to_srgb(upright))
    return DecodedImage(
        rgb=rgb,
        mode=img.mode,
        format=img.format or "unknown",
        is_color=has_color(rgb),
        metadata=read_metadata(record, info),
        gray16=gray16,
    )


def decode_rgb16_png(data: bytes) -> DecodedImage | None:
    """A 16-bit RGB PNG (a 16-bit scan's result) decoded by :mod:`backend.png16`, rounded to 8 bits: Pillow
    truncates them, and decoding all six bytes a pixel for that took as long again. Its records are read by
    Pillow from the same chunks around a 1 × 1 image. None where png16 does not read the file (another
    program's, with Average or Paeth filters, or interlaced): Pillow's reading of it then stands. ValueError
    for a damaged file."""
    if not png16.is_rgb16(data):
        return None
    try:
        rgb = png16.read_rgb16(data, eight_bit=True)
    except png16.UnsupportedPng:
        return None
    with Image.open(io.BytesIO(png16.records_png(data)), formats=["PNG"]) as records:
        records.load()
        return decode_opened(records, pixels=rgb)


def sixteen_bit_gray(img: Image.Image) -> np.ndarray | None:
    """A 16-bit gray image's levels as (H, W) uint16 sRGB gray: I;16 in any byte order (its embedded gray
    profile applied without losing them: :func:`_gray16_curve`), or I and F holding 16-bit data (as
    :func:`to_rgb8` tells them: above 255, none above 65,535); None for any other image."""
    if img.mode in _SIXTEEN_BIT_GRAY:
        # native byte order (I;16B's samples are big-endian; the others are native already: no copy)
        levels = np.asarray(img).astype(np.uint16, copy=False)
        icc = img.info.get("icc_profile")
        curve = _gray16_curve(icc) if isinstance(icc, bytes) and icc else None
        return levels if curve is None else curve[levels]
    if img.mode in ("I", "F"):
        values = np.asarray(img)
        finite = values[np.isfinite(values)] if img.mode == "F" else values
        top = float(finite.max()) if finite.size else 0.0
        if 255 < top <= 65535:
            return np.clip(np.round(np.nan_to_num(values, nan=0.0)), 0, 65535).astype(np.uint16)
    return None


def _srgb_gray_profile() -> bytes:
    """An ICC v2 gray display profile whose tone curve is sRGB's (IEC 61966-2-1, as a parametric curve),
    D50 white: what a gray scan's levels are converted to. Pillow makes only RGB, Lab and XYZ profiles."""

    def fixed(value: float) -> bytes:  # s15Fixed16Number
        return struct.pack(">i", round(value * 65536))

    name = b"sRGB gray (ColorLab)"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name) + 1) + name + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    srgb_curve = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)  # g, a, b, c, d of function type 3
    para = b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(fixed(v) for v in srgb_curve)
    white = b"XYZ \0\0\0\0" + b"".join(fixed(v) for v in _D50)
    tags = [(b"desc", desc), (b"wtpt", white), (b"kTRC", para)]
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, content in tags:
        content += bytes(-len(content) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(content))
        body += content
    header = struct.pack(
        ">I4sI4s4s4s6H4s", offset + len(body), b"\0" * 4, 0x02100000, b"mntr", b"GRAY", b"XYZ ",
        *([0] * 6), b"acsp",
    )  # fmt: skip
    # platform, flags, device, attributes, intent (28 bytes); the illuminant; creator, ID and reserved (48)
    header += bytes(28) + b"".join(fixed(v) for v in _D50) + bytes(48)
    return header + struct.pack(">I", len(tags)) + table + body


@lru_cache(maxsize=8)
def _gray16_curve(icc: bytes) -> np.ndarray | None:
    """Every 16-bit level of a gray image tagged with the profile ``icc``, converted to sRGB gray (uint16,
    65,536 entries): LittleCMS converts them all at once, perceptual intent as :func:`to_srgb`. Without its
    optimisation, which joins the curves into a coarse table (up to 2,500 levels off near black, against
    one). None with an sRGB profile or one that cannot be used (the levels are then taken as sRGB, as
    :func:`to_srgb` takes an 8-bit image's)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower():
            return None
        target = ImageCms.ImageCmsProfile(io.BytesIO(_srgb_gray_profile()))
        transform = ImageCms.buildTransform(source, target, "I;16", "I;16", flags=ImageCms.Flags.NOOPTIMIZE)
        every_level = Image.fromarray(np.arange(65536, dtype=np.uint16).reshape(256, 256))
        converted = ImageCms.applyTransform(every_level, transform)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    if converted is None:
        return None
    return np.asarray(converted).astype(np.uint16).reshape(-1)


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    g = np.clip(np.round(gray), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=-1)


def has_color(rgb: np.ndarray) -> bool:
    step = max(1, int((rgb.shape[0] * rgb.shape[1] / 1_000_000) ** 0.5))  # a ~1 MP sample is plenty
    sample = rgb[::step, ::step]
    r, g, b = (sample[..., i].astype(np.int16) for i in range(3))
    diff = np.maximum(np.abs(r - g), np.abs(g - b))
    return float(np.mean(diff > _CHROMA_LEVELS)) > _COLOR_SHARE


def decode(
    data: bytes,
    *,
    max_pixels: int,
    max_pixels_per_byte: float | None = None,
    max_jpeg_scans: int | None = None,
) -> DecodedImage:
    """Decode one uploaded image under the limits, or raise :class:`UserError` (400/413/415).

    ``max_pixels_per_byte`` and ``max_jpeg_scans`` bound the decode cost of untrusted uploads; images we
    made ourselves are decoded without them.
    """
    if not data:
        raise UserError(400, "the file is empty")
    try:
        with warnings.catch_warnings():
            # max_pixels (checked on the header, before any decoding) is the limit; PIL's own warning would
            # only say it in its words. Its hard limit (DecompressionBombError) still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            width, height = img.size
            if width <= 0 or height <= 0:
                raise UserError(400, f"the image has invalid dimensions {width}×{height}")
            if width * height > max_pixels:
                raise UserError(
                    413,
                    f"the image is {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,}",
                )
            fmt = img.format or "unknown"
            _check_cost(data, fmt, width * height, max_pixels_per_byte, max_jpeg_scans)
            img.seek(0)  # first frame of an animation
            decoded = decode_rgb16_png(data) if fmt == "PNG" else None
            if decoded is None:
                img.load()
                decoded = decode_opened(img)
    except UserError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's hard limit, far above max_pixels
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        raise UserError(413, f"the image has {size}; the limit is {max_pixels:,}") from None
    except UnidentifiedImageError:
        claimed = sniff(data)
        if claimed:  # the right signature, but Pillow could not even read the header: a damaged file
            raise UserError(
                400, f"the file starts like a {claimed} image but is corrupt or truncated"
            ) from None
        raise UserError(
            415, f"not a supported image: the content is not one of {', '.join(ALLOWED_FORMATS)}"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, struct.error) as exc:
        raise UserError(400, f"the image could not be decoded (corrupt or truncated): {exc}") from None
    except MemoryError:
        raise UserError(413, "the image is too large to decode") from None
    return decoded


def _check_cost(
    data: bytes, fmt: str, pixels: int, max_pixels_per_byte: float | None, max_jpeg_scans: int | None
) -> None:
    if max_pixels_per_byte is not None and pixels > RATIO_FREE_PIXELS:
        ratio = pixels / len(data)
        if ratio > max_pixels_per_byte:
            raise UserError(
                413,
                f"the image decodes to {pixels:,} pixels from a {len(data):,}-byte file ({ratio:,.0f} "
                f"pixels per byte; photos have far fewer than {max_pixels_per_byte:g}): refused as a "
                "decompression bomb",
            )
    if max_jpeg_scans is not None and fmt in ("JPEG", "MPO"):
        # Entropy-coded data stuffs every 0xFF with 0x00, so each FF DA is a start-of-scan marker (or one in
        # an embedded thumbnail): an upper bound found without decoding.
        scans = data.count(b"\xff\xda")
        if scans > max_jpeg_scans:
            raise UserError(
                413,
                f"the JPEG has {scans} scans; at most {max_jpeg_scans} are accepted (each scan is a full "
                "decoding pass)",
            )


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


def sniff(data: bytes) -> str | None:
    """The image format a file's first bytes announce, if any (used only to word an error)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _SIGNATURES if data.startswith(magic)), None)


def _exif_for_result(exif: bytes, width: int, height: int) -> bytes:
    """``exif`` with its pixel dimensions (the Exif IFD's ExifImageWidth/Height, where it has them) set to a
    result's ``width`` × ``height``: they were the original's stored pixels, which for orientations 5-8 were
    turned on reading (width and height trade places). The record as it was when it cannot be rewritten."""
    try:
        record = Image.Exif()
        record.load(exif)
        if _EXIF_IFD not in record:  # get_ifd would add an empty one
            return exif
        camera = record.get_ifd(_EXIF_IFD)
        sizes = {tag: size for tag, size in ((_PIXEL_WIDTH, width), (_PIXEL_HEIGHT, height)) if tag in camera}
        if all(camera[tag] == size for tag, size in sizes.items()):
            return exif  # nothing to change (or no dimensions: none is added)
        camera.update(sizes)
        sized = record.tobytes()
    except Exception:  # read once already, so unlikely; the record is then kept as read
        return exif
    return sized if len(sized) <= _RECORD_LIMIT else exif


def _xmp_for_result(packet: bytes, width: int, height: int, bits: int = 8) -> bytes:
    """The XMP ``packet`` with what it says about the original's pixels written over with a result's
    (``width`` × ``height``, RGB of ``bits`` bits per channel, sRGB): Lightroom, Bridge and exiftool show
    these fields, and a gray original's (photoshop:ColorMode 1 = Grayscale, tiff:PhotometricInterpretation 1,
    SamplesPerPixel 1, its gray profile's name, its size) would misdescribe the colour result in an
    archive's catalogue.

    Only the fields in ``_XMP_PIXEL_FIELDS`` that the packet has are rewritten (none is added), as an
    attribute of rdf:Description or as an element (BitsPerSample's rdf:Seq too), and only where their prefix
    is bound to their namespace; everything else stays byte for byte (an XML parser would rename prefixes and
    drop the packet's padding), and so does Photoshop's xmpMM:Pantry (the placed documents' own fields). A
    field written otherwise stays as it is; a rewritten packet over the size limit is kept as read."""
    bound = {
        prefix
        for prefix, uri in _XMP_NAMESPACES.items()
        if re.search(rb"xmlns:" + prefix + rb"""\s*=\s*["']""" + re.escape(uri) + rb"""["']""", packet)
    }
    values = {
        name: value if value is not None else str(width if name in _XMP_WIDTHS else height).encode()
        for name, value in _XMP_PIXEL_FIELDS.items()
        if name.split(b":")[0] in bound
    }
    depth = str(bits).encode()
    if b"tiff:BitsPerSample" in values:
        values[b"tiff:BitsPerSample"] = b", ".join([depth] * 3)
    if not values:
        return packet

    def attribute(found: re.Match[bytes]) -> bytes:
        space, name, equals, _ = found.groups()
        return space + name + equals + b'"' + values[name] + b'"' if name in values else found[0]

    def element(found: re.Match[bytes]) -> bytes:
        name = found[1]
        return b"<%s>%s</%s>" % (name, values[name], name) if name in values else found[0]

    def bits_list(found: re.Match[bytes]) -> bytes:
        items = b"".join(found[2] + b"<rdf:li>" + depth + b"</rdf:li>" for _ in range(3))
        return b"<tiff:BitsPerSample>" + found[1] + items + found[3] + b"</tiff:BitsPerSample>"

    def rewrite(part: bytes) -> bytes:
        part = _XMP_DESCRIPTION.sub(lambda tag: _XMP_ATTRIBUTE.sub(attribute, tag[0]), part)
        if b"tiff:BitsPerSample" in values:
            part = _XMP_BITS_SEQ.sub(bits_list, part)
        return _XMP_ELEMENT.sub(element, part)

    # Photoshop's record of the documents placed in this one (their own sizes and modes) is left as it is,
    # from its start to its end or the packet's (found with find, not a lazy regex: linear on any packet)
    start, end = packet.find(b"<xmpMM:Pantry"), packet.rfind(b"</xmpMM:Pantry")
    if start < 0:
        rewritten = rewrite(packet)
    else:
        end = end if end > start else len(packet)
        rewritten = rewrite(packet[:start]) + packet[start:end] + rewrite(packet[end:])
    return rewritten if len(rewritten) <= _RECORD_LIMIT else packet


def _records(
    metadata: PhotoMetadata | None,
    width: int,
    height: int,
    bits: int = 8,
    colorized_by: str | None = None,
) -> dict[str, Any]:
    """Pillow's save() arguments for a result of ``width`` × ``height`` and ``bits`` per channel: the
    resolution, EXIF and XMP (``xmp``: a PNG writes it itself) of ``metadata`` with the result's size and
    colour written over the original's, and an sRGB profile (the pixels are sRGB; untagged, a
    colour-managed editor may read them in its own working space). ``colorized_by`` (a method): the EXIF and
    XMP also say the result is that method's colorization (:mod:`backend.provenance`), new records if the
    photo had none."""
    if metadata is None and colorized_by is None:
        return {}
    records: dict[str, Any] = {"icc_profile": _SRGB_ICC}
    if metadata is not None and metadata.dpi:
        records["dpi"] = metadata.dpi
    if metadata is not None and metadata.exif:
        records["exif"] = _exif_for_result(metadata.exif, width, height)
    if metadata is not None and metadata.xmp:
        records["xmp"] = _xmp_for_result(metadata.xmp, width, height, bits)
    if colorized_by is not None:
        if (exif := provenance.mark_exif(records.get("exif"), colorized_by)) is not None:
            records["exif"] = exif
        now = datetime.now(UTC)
        try:
            records["xmp"] = provenance.mark_xmp(records.get("xmp"), colorized_by, now)
        except Exception:  # a packet nobody foresaw must not cost the result: it is then marked anew
            log.exception("marking the XMP of a %s result", colorized_by)
            records["xmp"] = provenance.new_packet(colorized_by, now)
    return records


def encode_png(
    array: np.ndarray,
    *,
    compress_level: int = 3,
    software: str | None = None,
    metadata: PhotoMetadata | None = None,
    colorized_by: str | None = None,
) -> bytes:
    """uint8 (H, W) or (H, W, 3) array -> PNG bytes, or a uint16 (H, W, 3) one (a 16-bit scan's result) ->
    a 16-bit RGB PNG; ``software``: a "Software" text chunk (who made it); ``metadata`` (a colour result):
    the photo's resolution (pHYs), EXIF (eXIf) and XMP (iTXt) records, with the result's size and colour
    in them, and an sRGB profile (iCCP); ``colorized_by`` (the method that made a result): records that say
    so (:mod:`backend.provenance`), and "ColorLab (method)" as Software unless ``software`` is given."""
    sixteen = array.dtype == np.uint16
    if sixteen and (array.ndim != 3 or array.shape[2] != 3):
        raise ValueError(f"a 16-bit PNG is written from (H, W, 3) RGB, not {array.shape}")
    buf = io.BytesIO()
    info = PngInfo()
    if software is None and colorized_by is not None:
        software = provenance.software(colorized_by)
    if software is not None:
        info.add_text("Software", software)
    depth = 16 if sixteen else 8
    records = _records(metadata, array.shape[1], array.shape[0], bits=depth, colorized_by=colorized_by)
    if xmp := records.pop("xmp", None):
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    # Pillow writes no 16-bit RGB: it encodes the chunks of a 1 × 1 image, and png16 puts the pixels in
    pixels = np.zeros((1, 1, 3), np.uint8) if sixteen else array
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=compress_level, pnginfo=info, **records)
    if sixteen:
        return png16.encode_rgb16(array, around=buf.getvalue(), compress_level=compress_level)
    return buf.getvalue()


def encode_jpeg(
    array: np.ndarray,
    quality: int = 90,
    *,
    software: str | None = None,
    metadata: PhotoMetadata | None = None,
    colorized_by: str | None = None,
) -> bytes:
    """uint8 RGB array (uint16: rounded to 8 bits, JPEG's) -> JPEG bytes; full-resolution colour (4:4:4)
    from quality 90 up; ``software``: a comment (COM marker) saying who made it; ``metadata`` (a result):
    the photo's resolution, EXIF and XMP, with the result's size and colour in them, and an sRGB profile;
    ``colorized_by``: as for :func:`encode_png` (the comment is then "ColorLab (method)")."""
    array = lab.to_uint8(array)
    buf = io.BytesIO()
    subsampling = 0 if quality >= 90 else 2
    if software is None and colorized_by is not None:
        software = provenance.software(colorized_by)
    extra = _records(metadata, array.shape[1], array.shape[0], colorized_by=colorized_by)
    if software is not None:
        extra["comment"] = software.encode()
    Image.fromarray(array).save(
        buf, format="JPEG", quality=quality, subsampling=subsampling, optimize=True, **extra
    )
    return buf.getvalue()


def made_by(path: Path, software: str) -> bool:
    """Whether the image file at ``path`` says it was made by ``software`` (PNG Software chunk or JPEG
    comment starting with it); False for anything unreadable."""
    try:
        with warnings.catch_warnings():  # only the header is read: a big scan is no bomb here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mark = img.info.get("Software") or img.info.get("comment") or ""
    except (OSError, ValueError, Image.DecompressionBombError):
        return False
    if isinstance(mark, bytes):
        mark = mark.decode("utf-8", "replace")
    return isinstance(mark, str) and mark.startswith(software)


def png_to_jpeg(png: bytes, quality: int, max_pixels: int) -> bytes:
    """A stored PNG result re-encoded as JPEG (a download with ``format=jpg``), its metadata kept (its
    Software chunk as the JPEG's comment)."""
    decoded = decode(png, max_pixels=max_pixels)
    with Image.open(io.BytesIO(png)) as img:  # the header's chunks only
        software = img.info.get("Software")
    software = software if isinstance(software, str) else None
    return encode_jpeg(decoded.rgb, quality, software=software, metadata=decoded.metadata)


def gray_png(decoded: DecodedImage) -> bytes:
    """The photo as the colorizers see it: its CIE lightness as an 8-bit gray PNG."""
    return encode_png(gray_levels(decoded.rgb), compress_level=1)


# The gray level with a given luminance Y is sRGB-encoded Y (a = b = 0): per-channel tables for Y and a
# 65,536-step table for the encoding are ~10× faster than the Lab round trip on a 24 MP photo and agree
# with it to within one level.
_Y_OF_LEVEL = (lab.srgb_to_linear(np.arange(256) / 255.0)[:, None] * lab.RGB_TO_XYZ[1][None, :]).astype(
    np.float32
)
_Y_STEPS = 65535
_GRAY_OF_Y = np.round(lab.linear_to_srgb(np.linspace(0.0, 1.0, _Y_STEPS + 1)) * 255.0).astype(np.uint8)


def gray_levels(rgb: np.ndarray) -> np.ndarray:
    """(H, W) uint8 gray with the photo's CIE lightness, computed in bands of rows to bound memory."""
    return lab.in_bands(_gray_levels, rgb)


def _gray_levels(rgb: np.ndarray) -> np.ndarray:
    y = _Y_OF_LEVEL[rgb[..., 0], 0] + _Y_OF_LEVEL[rgb[..., 1], 1] + _Y_OF_LEVEL[rgb[..., 2], 2]
    return _GRAY_OF_Y[np.clip(y * _Y_STEPS + 0.5, 0, _Y_STEPS).astype(np.uint16)]


@dataclass(frozen=True)
class Renditions:
    """What is served for a stored upload, made once when it is stored (never by decoding it again)."""

    gray_png: bytes  # input.png: the CIE lightness as the colorizers see it
    color_png: bytes | None  # original.png / reference.png of a colour image (None: gray_png is the original)
    thumb_jpeg: bytes  # previews (history, lists): longest side THUMB_SIDE


def renditions(decoded: DecodedImage) -> Renditions:
    gray = gray_levels(decoded.rgb)
    color = encode_png(decoded.rgb, compress_level=1) if decoded.is_color else None
    return Renditions(
        gray_png=encode_png(gray, compress_level=1),
        color_png=color,
        thumb_jpeg=thumbnail_jpeg(decoded.rgb if decoded.is_color else gray),
    )


def thumbnail_jpeg(pixels: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    img = Image.fromarray(lab.to_uint8(pixels))
    img.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=82, optimize=True)
    return buf.getvalue()
