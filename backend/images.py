"""Decoding uploaded images, once, under limits; and encoding images for the browser.

Every upload goes through :func:`decode`: the format must be one people send photos in (by content, never
by file name), the pixel count is checked from the header before any pixel is decoded, and so is the decode
cost: the strips or tiles of a TIFF and the chunks of a PNG (before Pillow reads the file), pixels per byte
of file for the bytes a pixel decodes to (a tiny file that decodes to a huge image is a bomb; a 1-bit scan
may have 8 times a photo's share) and the number of scans of a progressive JPEG. A TIFF variant no decoder
here reads is named as such. Pillow's decompression-bomb guard is an error, EXIF orientation is applied,
the first frame of an animation is used, and every mode (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I;16, I,
F, ...) becomes 8-bit sRGB, with transparency composited over white; a 16-bit gray scan (an archive's
master) also keeps its 65,536 levels (:attr:`DecodedImage.gray16`) for its colorization, a 16-bit PNG
(:mod:`backend.png16`). A photo that says which colour space its numbers are in (an embedded ICC profile:
Adobe RGB, Display P3 from a phone, a CMYK press profile, a gray dot-gain profile) is converted to sRGB, so a
reference's and a ground truth's colours are the ones the photographer saw; so is a PNG whose gAMA chunk
states another gamma than sRGB's (as browsers do). What the file says beyond its pixels
(:class:`PhotoMetadata`: resolution, EXIF, XMP, IPTC, PNG text and JPEG comments) is kept and written into
the photo's colorizations, where what it says about the pixels (their size, colour mode, profile, a turned
photo's resolutions) is made the result's.
:func:`renditions` makes, once, the PNGs and the thumbnail that are served afterwards. Torch-free: the web
process and the worker both use it.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from backend import png16, provenance, tiff_pages
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
# Bits a pixel of these modes decodes to (every other mode: 8 per channel, the cap as set): the cap is scaled
# by 8 / bits, so a 1-bit scan (raw data is 8 pixels a byte; a Group 4 page of text about 270) may have 8
# times as many pixels per byte, and a 16-bit or 32-bit image (2 or 4 bytes a pixel decoded) half or a
# quarter as many.
_DECODED_BITS = {"1": 1, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}
# Most strips or tiles of a TIFF, and chunks of a PNG: each is read on its own (a 17 MB TIFF of 2.4 million
# one-row strips took 15 s and 880 MB to open, a 19 MB PNG of 1.6 million empty chunks 6 s), while a 40 MP
# photo has a few thousand at most (a TIFF of one-row strips: one a row; a PNG of 8 KB IDAT chunks: 2,500 in
# 20 MB). Checked on the file's structure before Pillow reads it.
MAX_TIFF_BLOCKS = 100_000
MAX_PNG_CHUNKS = png16.MAX_CHUNKS
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
# modes a PNG's gAMA is applied in (:func:`to_srgb`): their colour bands and alpha bands (kept as they are)
_GAMMA_BANDS = {"L": (1, 0), "LA": (1, 1), "RGB": (3, 0), "RGBA": (3, 1)}
_ORIENTATION, _X_RESOLUTION, _EXIF_IFD, _COLOR_SPACE, _INTEROP_IFD = 0x0112, 0x011A, 0x8769, 0xA001, 0xA005
_PIXEL_WIDTH, _PIXEL_HEIGHT = 0xA002, 0xA003  # the Exif IFD's ExifImageWidth/ExifImageHeight
_Y_RESOLUTION = 0x011B
_STRIP_OFFSETS, _TILE_OFFSETS = 273, 324  # a TIFF's one entry per strip or tile
# PNG text keywords that describe the photo (the PNG specification's, but Software: a result's is ColorLab's),
# kept in its colorizations (:attr:`PhotoMetadata.texts`)
_TEXT_KEYWORDS = (
    *("Title", "Author", "Description", "Copyright", "Creation Time"),
    *("Source", "Disclaimer", "Warning", "Comment"),
)
# IPTC-IIM: Photoshop's image resource that holds it, the byte each of its datasets starts with, and the PNG
# text ImageMagick and exiftool keep it in (zTXt, as a raw profile: :func:`_raw_profile_text`)
_IPTC_RESOURCE = 0x0404
_TIFF_IPTC, _TIFF_PHOTOSHOP = 33723, 34377  # a TIFF's IPTC-NAA tag and its Photoshop image resources
_IIM_TAG_MARKER = b"\x1c"
_PNG_IPTC = "Raw profile type iptc"
_JPEG_SEGMENT_LIMIT = 65_533  # bytes of data in one JPEG marker segment
# Comments ColorLab writes into its results ("ColorLab (method)", and the CLI's record of the source file):
# a result's are written anew, never carried over from a photo that was one
_OWN_COMMENTS = (provenance.software("").removesuffix(")"), f"{provenance.SOURCE_KEY}: ")
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # a "comment" some cameras fill with data
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
_QUARTER_TURNS = frozenset(_TURNS[orientation] for orientation in (5, 6, 7, 8))
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
    (:func:`_exif_for_result`, :func:`_xmp_for_result`): only then is its size known. Besides them, what
    catalogues write elsewhere: the text chunks of a PNG (``texts``: title, author, description, copyright,
    creation time, comment; a JPEG's or GIF's comment is its "Comment") and the IPTC-IIM record of a JPEG
    (``iptc``: caption, by-line, copyright notice, keywords; as Photoshop and newsroom tools write it)."""

    dpi: tuple[float, float] | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    texts: tuple[tuple[str, str], ...] = ()  # (PNG keyword, text), in the file's order
    iptc: bytes | None = None  # IPTC-IIM datasets (Photoshop's image resource 0x0404), as stored


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
    if mode in _SIXTEEN_BIT_GRAY:
        return _gray_to_rgb(np.asarray(img), 1 / 257.0, 255)
    if mode in ("I", "F"):
        values = np.asarray(img)
        top = _finite_top(values)
        scale = 1.0
        if mode == "F" and top <= 1.0:
            scale = 255.0  # float images in [0, 1]
        elif top > 65535:
            scale = 255.0 / top
        elif top > 255:
            scale = 1 / 257.0  # 16-bit data in a 32-bit container
        return _gray_to_rgb(values, scale, 255)
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
    are then taken as sRGB, as any browser would). A PNG without a profile whose gAMA chunk states another
    gamma than sRGB's is converted as browsers do (:func:`file_gamma`)."""
    icc = img.info.get("icc_profile")
    gamma = file_gamma(img.info)
    if (icc or gamma is not None) and img.mode in ("P", "PA"):
        img = img.convert("RGBA")  # a palette's colours are converted, not its indices (info is copied)
    if gamma is not None and img.mode in _GAMMA_BANDS:
        color_bands, alpha = _GAMMA_BANDS[img.mode]
        return img.point(_gamma_table8(gamma) * color_bands + list(range(256)) * alpha)
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


def file_gamma(info: dict[Any, Any]) -> float | None:
    """The gamma a PNG's gAMA chunk states its samples are encoded with (Pillow's ``info["gamma"]``), where it
    decides their colours: no ICC profile and no sRGB chunk, and not 1/2.2 (sRGB's, near enough: the file's
    numbers are then taken as sRGB, as they are without gAMA). Chromium and Firefox decode such samples with
    it to linear light; None where there is nothing to convert or the value is out of libpng's range."""
    gamma = info.get("gamma")
    if info.get("icc_profile") or "srgb" in info or not isinstance(gamma, float | int):
        return None
    if not 0.00016 <= gamma <= 6250 or abs(gamma * 2.2 - 1) <= 0.02:
        return None
    return float(gamma)


def _gamma_curve(gamma: float, levels: int) -> np.ndarray:
    """Each of ``levels`` levels encoded with ``gamma`` (sample = linear ** gamma) as sRGB encodes it, as
    float in [0, 1]."""
    linear = (np.arange(levels) / (levels - 1)) ** (1.0 / gamma)
    return np.asarray(lab.linear_to_srgb(linear))


@lru_cache(maxsize=8)
def _gamma_table8(gamma: float) -> list[int]:
    """Image.point's table: every 8-bit level of a file encoded with ``gamma`` as sRGB's level."""
    return [int(v) for v in np.round(_gamma_curve(gamma, 256) * 255)]


@lru_cache(maxsize=8)
def _gamma_table16(gamma: float) -> np.ndarray:
    """Every 16-bit level of a file encoded with ``gamma`` as sRGB's (uint16, 65,536 entries)."""
    return np.round(_gamma_curve(gamma, 65536) * 65535).astype(np.uint16)


def read_metadata(
    record: Image.Exif,
    info: dict[Any, Any],
    *,
    quarter_turn: bool = False,
    comments: Sequence[bytes] = (),
) -> PhotoMetadata:
    """:class:`PhotoMetadata` from an opened image's EXIF ``record`` (changed here) and ``info``; the
    orientation is left out of both (the pixels are turned upright), and so are what a TIFF's record says
    about its own file and XMP's thumbnails; records that cannot be read or written back are left out, never
    an error. ``quarter_turn``: the pixels were turned a quarter (orientations 5-8), so the horizontal and
    vertical resolutions (``dpi`` and EXIF's) trade places. ``comments``: a JPEG's every comment (``info``
    holds its last only)."""
    dpi = info.get("dpi")
    try:
        x, y = (float(v) for v in dpi) if isinstance(dpi, tuple) and len(dpi) == 2 else (0.0, 0.0)
    except (TypeError, ValueError):
        x, y = 0.0, 0.0
    if quarter_turn:
        x, y = y, x
    # JFIF keeps the resolution in 16 bits: a larger one would wrap around in the JPEG download
    resolution = (x, y) if 1.0 <= x <= 65_535 and 1.0 <= y <= 65_535 else None
    iptc = _iptc_of(info, record)
    exif: bytes | None = None
    try:
        if iptc is not None:  # a TIFF's IPTC-NAA tag: the result carries the record where JPEG and PNG do
            record.pop(_TIFF_IPTC, None)
        for tag in {_ORIENTATION, *_FILE_TAGS}.intersection(record):
            del record[tag]
        if quarter_turn and _X_RESOLUTION in record and _Y_RESOLUTION in record:
            record[_X_RESOLUTION], record[_Y_RESOLUTION] = (
                record[_Y_RESOLUTION],
                record[_X_RESOLUTION],
            )
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
        texts=_texts_of(info, comments),
        iptc=iptc if iptc and len(iptc) <= _RECORD_LIMIT else None,
    )


def _texts_of(info: dict[Any, Any], comments: Sequence[bytes]) -> tuple[tuple[str, str], ...]:
    """A PNG's text chunks with the keywords that describe the photo, and a JPEG's or GIF's comments as one
    "Comment" (ColorLab's own mark left out: a result says who made it anew), as long as they fit in
    :data:`_RECORD_LIMIT` bytes together (a JPEG comment holds 64 KB)."""
    found = [(keyword, info[keyword]) for keyword in _TEXT_KEYWORDS if isinstance(info.get(keyword), str)]
    comment = info.get("comment")
    notes = list(comments) or ([comment] if isinstance(comment, bytes) else [])
    if notes and "Comment" not in info:
        kept = [
            text
            for text in map(_text_of, notes)
            if not text.startswith(_OWN_COMMENTS) and not _BINARY.search(text)
        ]
        found.append(("Comment", "\n".join(kept)))
    texts: list[tuple[str, str]] = []
    size = 0
    for keyword, value in found:
        text = str(value).replace("\0", "")  # a NUL would end the text in a PNG chunk
        length = len(text.encode("utf-8"))
        if text.strip() and size + length <= _RECORD_LIMIT:
            texts.append((keyword, text))
            size += length
    return tuple(texts)


def _text_of(comment: bytes) -> str:
    """A comment's bytes as text: UTF-8 where they are (what current software writes), else Latin-1; without
    the NUL some programs end it with."""
    comment = comment.rstrip(b"\0")
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


def _iptc_of(info: dict[Any, Any], record: Image.Exif) -> bytes | None:
    """The IPTC-IIM datasets of a JPEG's Photoshop segment (Pillow's ``info["photoshop"]``), a PNG's "Raw
    profile type iptc" text (ImageMagick's and exiftool's, and ours) or a TIFF's IPTC-NAA tag or Photoshop
    resources (its EXIF ``record`` is its directory), without the padding after the last dataset; None where
    there are none or they are not IIM."""
    found: list[object] = []
    if isinstance(resources := info.get("photoshop"), dict):
        found.append(resources.get(_IPTC_RESOURCE))
    if isinstance(profile := info.get(_PNG_IPTC), str) and (raw := _raw_profile_bytes(profile)):
        found.append(_iptc_of_resources(raw) if raw.startswith(b"8BIM") else raw)
    try:
        found.append(record.get(_TIFF_IPTC))
        if isinstance(tiff_resources := record.get(_TIFF_PHOTOSHOP), bytes):
            found.append(_iptc_of_resources(tiff_resources))
    except Exception:  # a damaged record: as read_metadata, leave it out
        pass
    for iptc in found:
        if isinstance(iptc, bytes) and iptc.startswith(_IIM_TAG_MARKER):
            return iptc[: _iim_length(iptc)]
    return None


def _iim_length(iptc: bytes) -> int:
    """Where the datasets of an IPTC-IIM record end (Photoshop pads a TIFF's to 4 bytes): each is 0x1C, a
    record and a dataset number, a 2-byte length and the value (an extended length: to the end)."""
    at = 0
    while at + 5 <= len(iptc) and iptc[at : at + 1] == _IIM_TAG_MARKER:
        size = int.from_bytes(iptc[at + 3 : at + 5], "big")
        if size & 0x8000:
            return len(iptc)
        at += 5 + size
    return min(at, len(iptc))


def _iptc_of_resources(blocks: bytes) -> bytes | None:
    """The IPTC-IIM resource (0x0404) among Photoshop image resources: "8BIM", an id, a name (a Pascal
    string padded to an even size), a size and data (padded likewise)."""
    at = 0
    while blocks[at : at + 4] == b"8BIM" and at + 12 <= len(blocks):
        code = int.from_bytes(blocks[at + 4 : at + 6], "big")
        name = 1 + blocks[at + 6]
        at += 6 + name + (name & 1)
        size = int.from_bytes(blocks[at : at + 4], "big")
        at += 4
        if code == _IPTC_RESOURCE:
            return blocks[at : at + size] if at + size <= len(blocks) else None
        at += size + (size & 1)
    return None


def _iptc_resources(iptc: bytes) -> bytes:
    """``iptc`` as the one Photoshop image resource of a JPEG's APP13 segment or a PNG's raw profile."""
    return b"8BIM" + struct.pack(">HHI", _IPTC_RESOURCE, 0, len(iptc)) + iptc + bytes(len(iptc) & 1)


def _raw_profile_bytes(text: str) -> bytes | None:
    """The bytes of an ImageMagick raw profile text: a blank line, the profile's name, its length in bytes,
    then the bytes in hexadecimal over lines; None when it is not one."""
    lines = text.lstrip("\n").split("\n", 2)
    try:
        length = int(lines[1])
        raw = bytes.fromhex("".join(lines[2].split()))
    except (IndexError, ValueError):
        return None
    return raw if len(raw) == length else None


def _raw_profile_text(name: str, raw: bytes) -> str:
    """``raw`` as ImageMagick writes a profile into a PNG text (:func:`_raw_profile_bytes`): 72 hex digits
    a line."""
    digits = raw.hex()
    lines = "\n".join(digits[at : at + 72] for at in range(0, len(digits), 72))
    return f"\n{name}\n{len(raw):8d}\n{lines}\n"


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
    # a quarter turn (orientations 5-8): the stored rows become columns, and so do their resolutions
    quarter_turn = turn in _QUARTER_TURNS
    source = img
    if pixels is not None:
        source = Image.fromarray(pixels)
        source.info = dict(img.info)  # its profile is converted from as any photo's
    upright = source.transpose(turn) if turn is not None else source
    info = img.info
    if img.format == "TIFF" and _X_RESOLUTION not in record:  # Pillow says 1 dpi where a TIFF states none
        info = {key: value for key, value in info.items() if key != "dpi"}
    # Pillow reads a little-endian 16-bit min-is-white TIFF as min-is-black (an 8-bit one it inverts)
    white_is_zero = img.format == "TIFF" and img.mode in _SIXTEEN_BIT_GRAY and _photometric(img) == 0
    gray16 = sixteen_bit_gray(upright, white_is_zero=white_is_zero)
    if gray16 is not None:
        rgb = np.repeat(lab.to_uint8(gray16)[..., None], 3, axis=-1)  # what to_rgb8 makes of it, v / 257
    else:
        rgb = to_rgb8(to_srgb(upright))
    return DecodedImage(
        rgb=rgb,
        mode=img.mode,
        format=img.format or "unknown",
        is_color=has_color(rgb),
        metadata=read_metadata(record, info, quarter_turn=quarter_turn, comments=_jpeg_comments(img)),
        gray16=gray16,
    )


def _jpeg_comments(img: Image.Image) -> list[bytes]:
    """Every COM segment of a JPEG, in order (Pillow's ``info["comment"]`` is the last one only)."""
    segments = getattr(img, "applist", None) or []
    return [body for marker, body in segments if marker == "COM" and isinstance(body, bytes)]


def _photometric(img: Image.Image) -> int | None:
    """A TIFF's PhotometricInterpretation (0: min-is-white, 1: min-is-black, ...); None for other files."""
    tags = getattr(img, "tag_v2", None)
    value = tags.get(262) if tags is not None else None
    return value if isinstance(value, int) else None


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


def sixteen_bit_gray(img: Image.Image, *, white_is_zero: bool = False) -> np.ndarray | None:
    """A 16-bit gray image's levels as (H, W) uint16 sRGB gray: I;16 in any byte order (its embedded gray
    profile applied without losing them: :func:`_gray16_curve`), or I and F holding 16-bit data (as
    :func:`to_rgb8` tells them: above 255, none above 65,535); None for any other image.
    ``white_is_zero``: an I;16 image's levels run from white (0) to black, and are inverted."""
    if img.mode in _SIXTEEN_BIT_GRAY:
        # native byte order (I;16B's samples are big-endian; the others are native already: no copy)
        levels = np.asarray(img).astype(np.uint16, copy=False)
        if white_is_zero:
            levels = 65535 - levels
        icc = img.info.get("icc_profile")
        curve = _gray16_curve(icc) if isinstance(icc, bytes) and icc else None
        if (gamma := file_gamma(img.info)) is not None:
            curve = _gamma_table16(gamma)  # a PNG's gAMA, as to_srgb applies it to 8-bit levels
        return levels if curve is None else curve[levels]
    if img.mode in ("I", "F"):
        values = np.asarray(img)
        if 255 < _finite_top(values) <= 65535:
            return _gray_levels_of(values, 1.0, 65535)
    return None


def _finite_top(values: np.ndarray) -> float:
    """The largest finite value of a gray image (0 when it has none), a band of rows at a time: a float copy
    of a 40 MP image (and of its finite values) was a gigabyte."""
    if values.size == 0:
        return 0.0
    if values.dtype.kind != "f":
        return float(values.max())
    top = -np.inf
    for band in lab.row_bands(values):
        finite = band[np.isfinite(band)]
        if finite.size:
            top = max(top, float(finite.max()))
    return top if np.isfinite(top) else 0.0


def _gray_levels_of(values: np.ndarray, scale: float, top: int) -> np.ndarray:
    """(H, W) gray ``values`` × ``scale`` rounded to levels 0..``top`` (uint8 up to 255, else uint16), NaN
    as 0 and infinities as the ends, a band of rows at a time (float64 temporaries of one band only)."""
    dtype = np.uint8 if top <= 255 else np.uint16

    def levels(band: np.ndarray) -> np.ndarray:
        scaled = np.nan_to_num(band.astype(np.float64) * scale, nan=0.0)
        return np.clip(np.round(scaled), 0, top).astype(dtype)

    return lab.in_bands(levels, values)


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


def _gray_to_rgb(values: np.ndarray, scale: float, top: int) -> np.ndarray:
    """8-bit RGB (H, W, 3) of the gray ``values`` × ``scale`` (:func:`_gray_levels_of`)."""
    return np.repeat(_gray_levels_of(values, scale, top)[..., None], 3, axis=-1)


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
    one_photo: bool = False,
) -> DecodedImage:
    """Decode one uploaded image under the limits, or raise :class:`UserError` (400/413/415/422).

    ``max_pixels_per_byte`` and ``max_jpeg_scans`` bound the decode cost of untrusted uploads; images we
    made ourselves are decoded without them. ``one_photo``: refuse (422) a file that holds more than one
    photo, a multi-page TIFF or an animation, rather than take its first page or frame unsaid (a stored
    photo, already taken, is decoded without it).
    """
    if not data:
        raise UserError(400, "the file is empty")
    _check_structure(data)
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
            _check_cost(data, fmt, img.mode, width * height, max_pixels_per_byte, max_jpeg_scans)
            if one_photo and (several := more_than_one_photo(img, data)):
                raise UserError(422, several)
            img.seek(0)  # the first page or frame, as a viewer shows the file
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
        if claimed == "TIFF" and (unsupported := _unsupported_tiff(data)):
            raise UserError(415, unsupported) from None
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


def more_than_one_photo(img: Image.Image, data: tiff_pages.Buffer) -> str | None:
    """Why the opened file ``img`` (bytes ``data``) is more than one photo, in words for its owner, or None: a
    TIFF of several pages (previews and masks are not pages: :mod:`backend.tiff_pages`), or an animated
    GIF, PNG or WebP. A camera's MPO (a JPEG with a depth map or a stereo view beside it) is one photo."""
    if img.format == "TIFF" and (count := len(tiff_pages.pages(data))) > 1:
        return (
            f"the file holds {count} pages (a multi-page TIFF) and one photo is taken here: save the page "
            "you want as a file of its own, or colorize them all as a batch (several photos on the upload "
            "page, POST /batches or `colorlab colorize`), where each page becomes a photo"
        )
    if img.format in ("GIF", "PNG", "WEBP") and getattr(img, "is_animated", False):
        # A GIF's frames are counted by reading them all: its count is not worth the time
        frames = f" of {getattr(img, 'n_frames', 0)} frames" if img.format != "GIF" else ""
        return (
            f"the file is an animation{frames}; ColorLab colorizes still photos: save the frame you want "
            "as a PNG or JPEG file of its own"
        )
    return None


def _check_structure(data: bytes) -> None:
    """Refuse (413) a TIFF of more than :data:`MAX_TIFF_BLOCKS` strips or tiles and a PNG of more than
    :data:`MAX_PNG_CHUNKS` chunks, from the file's structure alone: Pillow reads each one by one while it
    opens the file, before any other limit could be checked."""
    if data.startswith(png16.SIGNATURE):
        if png16.chunk_count(data, MAX_PNG_CHUNKS) > MAX_PNG_CHUNKS:
            raise UserError(
                413,
                f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks (a photo's has a few thousand at most; "
                "each is read on its own): refused",
            )
    elif (blocks := _tiff_block_count(data)) > MAX_TIFF_BLOCKS:
        raise UserError(
            413,
            f"the TIFF is stored in {blocks:,} strips or tiles; at most {MAX_TIFF_BLOCKS:,} are accepted (a "
            "photo has a few thousand at most; each is read on its own)",
        )


def _tiff_block_count(data: bytes) -> int:
    """The strips or tiles of a TIFF's first image (the one decoded): the value counts of its StripOffsets
    and TileOffsets entries, read without their values; 0 for anything but a TIFF whose first directory can
    be found (Pillow then says what is wrong with it)."""
    try:
        if (first := tiff_pages.first_directory(data)) is None:
            return 0
        found = tiff_pages.entries(data, *first)
        return max((n for tag, n, _ in found if tag in (_STRIP_OFFSETS, _TILE_OFFSETS)), default=0)
    except struct.error:
        return 0


def _check_cost(
    data: bytes,
    fmt: str,
    mode: str,
    pixels: int,
    max_pixels_per_byte: float | None,
    max_jpeg_scans: int | None,
) -> None:
    if max_pixels_per_byte is not None and pixels > RATIO_FREE_PIXELS:
        ratio = pixels / len(data)
        bits = _DECODED_BITS.get(mode, 8)
        limit = max_pixels_per_byte * 8 / bits
        if ratio > limit:
            kind = "photos" if bits == 8 else "1-bit scans" if bits == 1 else f"{bits}-bit images"
            raise UserError(
                413,
                f"the image decodes to {pixels:,} pixels from a {len(data):,}-byte file ({ratio:,.0f} "
                f"pixels per byte; {kind} have far fewer than {limit:g}): refused as a decompression bomb",
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


# What a TIFF's PhotometricInterpretation and SampleFormat say, in the words of the programs that write them
_PHOTOMETRICS = {
    0: "min-is-white",
    1: "min-is-black",
    2: "RGB",
    3: "palette",
    4: "transparency mask",
    5: "CMYK",
    6: "YCbCr",
    8: "CIELab",
    9: "ICCLab",
    10: "ITULab",
    32844: "LogL",
    32845: "LogLuv",
}
_SAMPLE_FORMATS = {2: "signed ", 3: "floating-point ", 4: "untyped ", 5: "complex ", 6: "complex "}
_COMPRESSIONS = {34712: "JPEG 2000", 34887: "LERC", 52546: "JPEG XL"}  # some that Pillow does not read


def _unsupported_tiff(data: bytes) -> str | None:
    """Why a TIFF that Pillow would not open cannot be read, and how to save it so that it can, when its first
    directory reads well and states a compression or a layout of samples Pillow has no decoder for ("16-bit
    min-is-white"); None when the file is damaged (or Pillow opens it after all)."""
    from PIL import TiffImagePlugin

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns of damaged records; a damaged file is None anyway
            header = data[:16] if data[2:4] in (b"\x00+", b"+\x00") else data[:8]
            directory = TiffImagePlugin.ImageFileDirectory_v2(header)
            file = io.BytesIO(data)
            file.seek(directory.next)
            directory.load(file)
            compression = directory.get(259, 1)
            photometric = directory.get(262, 0)
            bits = tuple(directory.get(258, (1,)))
            formats = set(directory.get(339, (1,)))
            fill_order = directory.get(266, 1)
            if 256 not in directory or 257 not in directory:
                return None
    except Exception:  # a directory that cannot be read: a damaged file
        return None
    if compression not in TiffImagePlugin.COMPRESSION_INFO:
        name = f", {_COMPRESSIONS[compression]}" if compression in _COMPRESSIONS else ""
        return (
            f"this TIFF's compression ({compression}{name}) cannot be read here; save it uncompressed or "
            "with LZW, ZIP or JPEG compression, or as PNG"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TiffImagePlugin.TiffImageFile(io.BytesIO(data)).close()
    except SyntaxError as exc:
        if str(exc) != "unknown pixel mode":  # Pillow's word for a layout it has no mode for
            return None
    except Exception:
        return None
    else:
        return None
    depth = f"{bits[0]}-bit" if len(set(bits)) == 1 else "/".join(str(b) for b in bits) + "-bit"
    number = _SAMPLE_FORMATS.get(max(formats), "") if formats else ""
    kind = _PHOTOMETRICS.get(photometric, f"photometric {photometric}")
    order = ", least significant bit first" if fill_order == 2 else ""
    return (
        f"this TIFF variant ({depth} {number}{kind}{order}) cannot be read here; save it as 8- or 16-bit "
        "gray with min-is-black (BlackIsZero), as 8-bit RGB, or as PNG"
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
    source: str | None = None,
) -> bytes:
    """uint8 (H, W) or (H, W, 3) array -> PNG bytes, or a uint16 (H, W, 3) one (a 16-bit scan's result) ->
    a 16-bit RGB PNG; ``software``: a "Software" text chunk (who made it); ``metadata`` (a colour result):
    the photo's resolution (pHYs), EXIF (eXIf) and XMP (iTXt) records, with the result's size and colour
    in them, and an sRGB profile (iCCP); ``colorized_by`` (the method that made a result): records that say
    so (:mod:`backend.provenance`), and "ColorLab (method)" as Software unless ``software`` is given;
    ``source``: the file the result was made from (iTXt keyed ``SOURCE_KEY``, :func:`result_marks`)."""
    sixteen = array.dtype == np.uint16
    if sixteen and (array.ndim != 3 or array.shape[2] != 3):
        raise ValueError(f"a 16-bit PNG is written from (H, W, 3) RGB, not {array.shape}")
    buf = io.BytesIO()
    info = PngInfo()
    if software is None and colorized_by is not None:
        software = provenance.software(colorized_by)
    if software is not None:
        info.add_text("Software", software)
    if source is not None:  # before the pixels, where opening the file reads it (result_marks)
        info.add_itxt(provenance.SOURCE_KEY, source)
    depth = 16 if sixteen else 8
    records = _records(metadata, array.shape[1], array.shape[0], bits=depth, colorized_by=colorized_by)
    if xmp := records.pop("xmp", None):
        info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
    if metadata is not None:
        for keyword, text in metadata.texts:
            info.add_text(keyword, text)  # tEXt, or iTXt (UTF-8) where Latin-1 cannot hold it
        if metadata.iptc:
            profile = _raw_profile_text("IPTC profile", _iptc_resources(metadata.iptc))
            info.add_text(_PNG_IPTC, profile, zip=True)
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
    source: str | None = None,
) -> bytes:
    """uint8 RGB array (uint16: rounded to 8 bits, JPEG's) -> JPEG bytes; full-resolution colour (4:4:4)
    from quality 90 up; ``software``: a comment (COM marker) saying who made it; ``metadata`` (a result):
    the photo's resolution, EXIF and XMP, with the result's size and colour in them, and an sRGB profile;
    ``colorized_by``: as for :func:`encode_png` (the comment is then "ColorLab (method)"); ``source``: a
    comment "ColorLab source: <source>" before it (:func:`result_marks`)."""
    array = lab.to_uint8(array)
    buf = io.BytesIO()
    subsampling = 0 if quality >= 90 else 2
    if software is None and colorized_by is not None:
        software = provenance.software(colorized_by)
    extra = _records(metadata, array.shape[1], array.shape[0], colorized_by=colorized_by)
    Image.fromarray(array).save(
        buf, format="JPEG", quality=quality, subsampling=subsampling, optimize=True, **extra
    )
    segments: list[bytes] = []
    if metadata is not None and metadata.iptc:
        segments.append(_jpeg_segment(0xED, b"Photoshop 3.0\0" + _iptc_resources(metadata.iptc)))
    texts = dict(metadata.texts) if metadata is not None else {}
    if note := texts.get("Comment") or texts.get("Description"):
        segments.append(_jpeg_segment(0xFE, note.encode("utf-8")))
    if source is not None:
        segments.append(_jpeg_segment(0xFE, f"{provenance.SOURCE_KEY}: {source}".encode()))
    if software is not None:  # the last comment: the one Pillow's info["comment"] (and made_by) reads
        segments.append(_jpeg_segment(0xFE, software.encode()))
    return _with_segments(buf.getvalue(), [segment for segment in segments if segment])


def _jpeg_segment(marker: int, body: bytes) -> bytes:
    """One JPEG marker segment (APPn, COM), or nothing for a body larger than a segment holds."""
    if len(body) > _JPEG_SEGMENT_LIMIT:
        return b""
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def _with_segments(jpeg: bytes, segments: list[bytes]) -> bytes:
    """The JPEG with ``segments`` after its application segments and comments, before its tables."""
    at = 2  # after SOI
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and (0xE0 <= jpeg[at + 1] <= 0xEF or jpeg[at + 1] == 0xFE):
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    return jpeg[:at] + b"".join(segments) + jpeg[at:]


@dataclass(frozen=True)
class ResultMarks:
    """What an image file says of who made it and from which photo, read from its header alone."""

    software: str  # its PNG Software chunk or its last JPEG comment ("" for none)
    source: str | None  # the ``source`` a ColorLab result was encoded with (None: it records none)


def result_marks(path: Path) -> ResultMarks | None:
    """The marks :func:`encode_png` and :func:`encode_jpeg` leave in a file; None for anything unreadable."""
    source_comment = f"{provenance.SOURCE_KEY}: ".encode()
    try:
        with warnings.catch_warnings():  # only the header is read: a big scan is no bomb here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mark = img.info.get("Software") or img.info.get("comment") or ""
                source = img.info.get(provenance.SOURCE_KEY) if img.format == "PNG" else None
                comments = _jpeg_comments(img) if img.format == "JPEG" else []
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    if isinstance(mark, bytes):
        mark = mark.decode("utf-8", "replace")
    for comment in comments:
        if comment.startswith(source_comment):
            source = comment[len(source_comment) :].decode("utf-8", "replace")
    return ResultMarks(
        software=mark if isinstance(mark, str) else "", source=source if isinstance(source, str) else None
    )


def made_by(path: Path, software: str) -> bool:
    """Whether the image file at ``path`` says it was made by ``software`` (PNG Software chunk or JPEG
    comment starting with it); False for anything unreadable."""
    marks = result_marks(path)
    return marks is not None and marks.software.startswith(software)


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
