"""A photo's colour space and metadata: an embedded ICC profile is converted to sRGB on reading, and the
resolution, EXIF and XMP records reach its colorizations (the worker's PNG, the JPEG download, the CLI)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, IptcImagePlugin, TiffImagePlugin
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from backend import png16
from backend.db import session_scope
from backend.images import PhotoMetadata, decode, encode_jpeg, encode_png, png_to_jpeg
from backend.models import Image as ImageRow
from tests.backend.cli.conftest import run_cli
from tests.backend.test_provenance import unmarked
from tests.backend.test_runner import get, new_job, result_rgb
from tests.conftest import method_available
from worker.colorizers import lab
from worker.runner import Runner

# sRGB's primaries adapted to D50 (what an ICC v2 display profile states) and D50 itself
SRGB_PRIMARIES = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7142))
D50 = (0.9642, 1.0, 0.8249)
TITLE = "Harbour, 1923"


def icc_profile(description: str, gamma: float, space: str = "RGB") -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (sRGB primaries, one gamma), or a gray one with
    ``space="GRAY"``: enough for LittleCMS, written here so that no profile file is committed."""

    def fixed(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(fixed(c) for c in v)

    text = description.encode("ascii")
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0test\0"), (b"wtpt", xyz(D50))]
    if space == "RGB":
        tags += [(s, xyz(p)) for s, p in zip((b"rXYZ", b"gXYZ", b"bXYZ"), SRGB_PRIMARIES, strict=True)]
        tags += [(s, curve) for s in (b"rTRC", b"gTRC", b"bTRC")]
    else:
        tags += [(b"kTRC", curve)]
    table, data = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = struct.pack(">I4sI4s4s4s6H4s", size, b"lcms", 0x02100000, b"mntr",
                         space.ljust(4).encode(), b"XYZ ", 2026, 1, 1, 0, 0, 0, b"acsp")  # fmt: skip
    header += bytes(4 + 4 + 4 + 4 + 8 + 4) + b"".join(fixed(c) for c in D50) + bytes(4 + 44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def jpeg_with(rgb: np.ndarray, **extra: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, **extra)  # type: ignore[arg-type]
    return buf.getvalue()


def test_an_embedded_profile_is_converted_to_srgb() -> None:
    # Linear light (gamma 1): 50 % is sRGB level 188, not 128; a browser shows it so, and so do we now.
    linear = icc_profile("Linear RGB", 1.0)
    flat = np.full((16, 16, 3), 128, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(flat).save(buf, format="PNG", icc_profile=linear)
    assert abs(int(decode(buf.getvalue(), max_pixels=10**6).rgb.mean()) - 188) <= 2
    # A gray scan with a gray profile too (a "Gray Gamma 1.0" scanner profile)
    buf = io.BytesIO()
    Image.fromarray(flat[..., 0]).save(buf, format="PNG", icc_profile=icc_profile("Gray 1.0", 1.0, "GRAY"))
    decoded = decode(buf.getvalue(), max_pixels=10**6)
    assert abs(int(decoded.rgb.mean()) - 188) <= 2 and not decoded.is_color
    # A colour photo: its hue stays, only the numbers change to sRGB's
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 128
    rgb = decode(jpeg_with(red, icc_profile=linear), max_pixels=10**6).rgb
    assert rgb[..., 0].mean() > 180 and rgb[..., 1:].mean() < 8


@pytest.mark.parametrize(
    "profile",
    [
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),  # the usual: nothing to convert
        b"not an ICC profile at all" * 8,  # damaged: read as sRGB, as browsers do, and never an error
        icc_profile("Linear RGB", 1.0)[:200],  # truncated
    ],
)
def test_an_srgb_or_unreadable_profile_leaves_the_pixels_as_they_are(profile: bytes) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", icc_profile=profile)
    assert np.array_equal(decode(buf.getvalue(), max_pixels=10**6).rgb, rgb)


def archive_records(*, turned: bool = True) -> dict[str, bytes]:
    """EXIF and XMP as an archive keeps them (Pillow's save() arguments): a caption, an author, a copyright,
    a date, Adobe RGB in EXIF (the camera convention: ColorSpace "uncalibrated"), an orientation that turns
    the photo (unless not ``turned``), and an XMP title."""
    exif = Image.Exif()
    exif[0x010E] = "Harbour at dawn"  # ImageDescription
    exif[0x013B] = "A. Photographer"  # Artist
    exif[0x8298] = "City Archive"  # Copyright
    if turned:
        exif[0x0112] = 6  # Orientation: turn 90° clockwise to view
    camera = exif.get_ifd(0x8769)
    camera[0x9003] = "1923:05:01 06:30:00"  # DateTimeOriginal
    camera[0xA001] = 0xFFFF  # ColorSpace: uncalibrated
    xmp = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt>'
        f'<rdf:li xml:lang="x-default">{TITLE}</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF>'
        "</x:xmpmeta>"
    )
    return {"exif": exif.tobytes(), "xmp": xmp.encode()}


def archive_jpeg(rgb: np.ndarray) -> bytes:
    """A scan as an archive keeps it: 600 dpi and :func:`archive_records`."""
    return jpeg_with(rgb, dpi=(600, 600), **archive_records())


def assert_carries_the_archive_records(data: bytes, fmt: str) -> None:
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == fmt
        assert img.info["dpi"] == pytest.approx((600, 600), abs=0.01)
        exif = img.getexif()
        assert exif[0x010E] == "Harbour at dawn" and exif[0x013B] == "A. Photographer"
        assert exif[0x8298] == "City Archive"
        assert 0x0112 not in exif  # the pixels are already upright: a viewer must not turn them again
        camera = exif.get_ifd(0x8769)
        assert camera[0x9003] == "1923:05:01 06:30:00"
        assert camera[0xA001] == 1  # the pixels are sRGB now
        xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
        assert xmp and TITLE in (xmp.decode() if isinstance(xmp, bytes) else xmp)
        profile = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        assert "sRGB" in ImageCms.getProfileDescription(profile)  # tagged as what the pixels are


def test_the_records_are_read_and_written_back() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    decoded = decode(archive_jpeg(rgb), max_pixels=10**6)
    assert decoded.rgb.shape == (30, 20, 3)  # turned upright
    assert decoded.metadata.dpi == (600, 600)
    assert_carries_the_archive_records(encode_png(decoded.rgb, metadata=decoded.metadata), "PNG")
    assert_carries_the_archive_records(encode_jpeg(decoded.rgb, metadata=decoded.metadata), "JPEG")
    # A record too large for a JPEG segment is left out, not an error; nothing is written without records.
    huge = PhotoMetadata(dpi=(300.0, 300.0), exif=None, xmp=None)
    with Image.open(io.BytesIO(encode_jpeg(decoded.rgb, metadata=huge))) as img:
        assert img.info["dpi"] == (300, 300) and not img.getexif()
    info = PngInfo()  # a PNG may hold a larger XMP packet than a JPEG segment can
    info.add_itxt("XML:com.adobe.xmp", "<x>" + " " * 70_000 + "</x>")
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", pnginfo=info)
    too_large = decode(buf.getvalue(), max_pixels=10**6).metadata
    assert too_large.xmp is None
    assert Image.open(io.BytesIO(encode_jpeg(rgb, metadata=too_large))).format == "JPEG"
    with Image.open(io.BytesIO(encode_png(rgb))) as img:  # not a result: no records, no profile
        assert "dpi" not in img.info and not img.getexif() and "icc_profile" not in img.info


def test_a_colorization_keeps_the_photo_s_records(runner: Runner) -> None:
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    gray = np.repeat(np.linspace(0, 255, 48 * 64, dtype=np.uint8).reshape(48, 64)[..., None], 3, axis=-1)
    job_id = new_job("cnn", data=archive_jpeg(gray))
    assert runner.run(job_id) == "done"
    assert result_rgb(job_id).shape == (64, 48, 3)
    with session_scope() as s:
        png_bytes = s.scalars(select(ImageRow.data).where(ImageRow.id == get(job_id).result_image_id)).one()
    assert_carries_the_archive_records(png_bytes, "PNG")  # GET /jobs/{id}/result.png
    assert_carries_the_archive_records(png_to_jpeg(png_bytes, 90, 10**6), "JPEG")  # ?format=jpg, zips


def test_colorize_cli_keeps_the_photo_s_records(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    gray = np.repeat(np.linspace(0, 255, 40 * 56, dtype=np.uint8).reshape(40, 56)[..., None], 3, axis=-1)
    (folder / "scan.jpg").write_bytes(archive_jpeg(gray))
    for fmt, name in (("png", "PNG"), ("jpg", "JPEG")):
        out = tmp_path / fmt
        code, output = run_cli(
            "colorize", str(folder), "-o", str(out), "--method", "cnn", "--format", fmt, "--no-progress"
        )
        assert code == 0, output
        result = (out / f"scan.{fmt}").read_bytes()
        assert_carries_the_archive_records(result, name)
        assert Image.open(io.BytesIO(result)).size == (40, 56)


# What a gray scan's XMP says about its pixels (Photoshop's and Lightroom's fields) and what a colour result's
# must say instead; the namespaces its packets bind.
NAMESPACES = {
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "dc": "http://purl.org/dc/elements/1.1/",
}


def pixel_fields(width: int, height: int, *, gray: bool) -> dict[str, str]:
    return {
        "photoshop:ColorMode": "1" if gray else "3",
        "photoshop:ICCProfile": "Dot Gain 20%" if gray else "sRGB IEC61966-2.1",
        "tiff:PhotometricInterpretation": "1" if gray else "2",
        "tiff:SamplesPerPixel": "1" if gray else "3",
        "tiff:ImageWidth": str(width),
        "tiff:ImageLength": str(height),
        "exif:PixelXDimension": str(width),
        "exif:PixelYDimension": str(height),
        "exif:ColorSpace": "65535" if gray else "1",
    }


def scan_xmp(form: str, width: int, height: int, *, gray: bool = True) -> bytes:
    """An XMP packet as Photoshop writes it for a gray scan of ``width`` × ``height`` stored pixels (or, with
    ``gray=False``, as it must read for an 8-bit sRGB result), its pixel fields as ``form``: "attributes" of
    rdf:Description or "elements"; with BitsPerSample's list, a title, an author, a copyright and padding."""
    fields = pixel_fields(width, height, gray=gray)
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())
    attributes = (
        "".join(f'\n   {name}="{value}"' for name, value in fields.items()) if form == "attributes" else ""
    )
    elements = (
        "".join(f"\n   <{name}>{value}</{name}>" for name, value in fields.items())
        if form == "elements"
        else ""
    )
    bits = "".join("\n     <rdf:li>8</rdf:li>" for _ in range(1 if gray else 3))
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        f'  <rdf:Description rdf:about="" {declarations}{attributes}>{elements}\n'
        f"   <tiff:BitsPerSample>\n    <rdf:Seq>{bits}\n    </rdf:Seq>\n   </tiff:BitsPerSample>\n"
        f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{TITLE}</rdf:li></rdf:Alt></dc:title>\n'
        "   <dc:creator><rdf:Seq><rdf:li>A. Photographer</rdf:li></rdf:Seq></dc:creator>\n"
        '   <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">City Archive</rdf:li></rdf:Alt></dc:rights>\n'
        "  </rdf:Description>\n</rdf:RDF></x:xmpmeta>\n" + " " * 200 + '\n<?xpacket end="w"?>'
    ).encode()


def gray_scan_jpeg(gray: np.ndarray, form: str) -> bytes:
    """A gray scan (stored turned: orientation 6) as :func:`archive_jpeg`, whose EXIF also has its stored
    pixel dimensions and whose XMP is :func:`scan_xmp`."""
    exif = Image.Exif()
    exif.load(archive_records()["exif"])
    height, width = gray.shape[:2]
    exif.get_ifd(0x8769).update({0xA002: width, 0xA003: height})  # ExifImageWidth, ExifImageHeight
    return jpeg_with(gray, dpi=(600, 600), exif=exif.tobytes(), xmp=scan_xmp(form, width, height))


def xmp_of(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as img:
        xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    return xmp.encode() if isinstance(xmp, str) else xmp


def assert_describes_the_result(data: bytes, fmt: str, form: str, width: int, height: int) -> None:
    """The records of a colour result of ``width`` × ``height`` made from :func:`gray_scan_jpeg`: its caption,
    author, copyright and title kept, and what they say of its pixels (size, colours) true of the result."""
    assert_carries_the_archive_records(data, fmt)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (width, height)
        camera = img.getexif().get_ifd(0x8769)
        assert (camera[0xA002], camera[0xA003]) == (width, height)  # upright: the stored sizes swapped
    # the packet byte for byte as it must read for the result: only the pixel fields changed, and the
    # description that says it is a colorization added (test_provenance)
    assert unmarked(xmp_of(data)) == scan_xmp(form, width, height, gray=False)


@pytest.mark.parametrize("form", ["attributes", "elements"])
def test_a_colorization_describes_its_own_pixels(runner: Runner, form: str) -> None:
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    gray = np.repeat(np.linspace(0, 255, 48 * 64, dtype=np.uint8).reshape(48, 64)[..., None], 3, axis=-1)
    scan = gray_scan_jpeg(gray, form)
    assert b'photoshop:ColorMode="1"' in scan or b"<photoshop:ColorMode>1<" in scan
    job_id = new_job("cnn", data=scan)
    assert runner.run(job_id) == "done"
    with session_scope() as s:
        png_bytes = s.scalars(select(ImageRow.data).where(ImageRow.id == get(job_id).result_image_id)).one()
    assert_describes_the_result(png_bytes, "PNG", form, 48, 64)  # GET /jobs/{id}/result.png
    assert_describes_the_result(png_to_jpeg(png_bytes, 90, 10**6), "JPEG", form, 48, 64)  # ?format=jpg


def test_colorize_cli_describes_its_results_pixels(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    gray = np.repeat(np.linspace(0, 255, 40 * 56, dtype=np.uint8).reshape(40, 56)[..., None], 3, axis=-1)
    for form in ("attributes", "elements"):
        (folder / f"{form}.jpg").write_bytes(gray_scan_jpeg(gray, form))
    for fmt, name in (("png", "PNG"), ("jpg", "JPEG")):
        out = tmp_path / fmt
        code, output = run_cli(
            "colorize", str(folder), "-o", str(out), "--method", "cnn", "--format", fmt, "--no-progress"
        )
        assert code == 0, output
        for form in ("attributes", "elements"):
            assert_describes_the_result((out / f"{form}.{fmt}").read_bytes(), name, form, 40, 56)


def encoded_records(packet: bytes, exif: bytes | None = None) -> tuple[bytes, Image.Exif]:
    """``packet`` (and ``exif``) as a 40 × 30 result's PNG carries them, read back."""
    rgb = np.zeros((30, 40, 3), np.uint8)
    png = encode_png(rgb, metadata=PhotoMetadata(exif=exif, xmp=packet))
    return xmp_of(png), Image.open(io.BytesIO(png)).getexif()


def test_only_the_pixel_fields_a_packet_has_are_rewritten() -> None:
    photoshop = NAMESPACES["photoshop"].encode()
    # no pixel fields: nothing is added, to XMP or to EXIF
    plain = b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" dc:title="x"/>'
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "1923:05:01 06:30:00"
    packet, record = encoded_records(plain, exif.tobytes())
    assert packet == plain and set(record.get_ifd(0x8769)) == {0x9003}
    # a simple-valued BitsPerSample, quotes of either kind, a ">" in another attribute's value
    simple = (
        b"<rdf:Description a:b='1 > 0' xmlns:tiff=\"http://ns.adobe.com/tiff/1.0/\" tiff:BitsPerSample='16'>"
    )
    assert encoded_records(simple)[0] == simple.replace(b"'16'", b'"8, 8, 8"')
    # a prefix bound to another namespace, a caption that quotes a field, Photoshop's record of placed
    # documents (their own sizes): all left as they are
    others = (
        b'<rdf:Description xmlns:photoshop="urn:not-photoshop" photoshop:ColorMode="1"/>',
        b'<rdf:Description xmlns:photoshop="' + photoshop + b'"><dc:description>photoshop:ColorMode="1"'
        b"</dc:description></rdf:Description>",
        b'<x xmlns:tiff="http://ns.adobe.com/tiff/1.0/"><xmpMM:Pantry><rdf:Description tiff:ImageWidth="9"/>'
        b"</xmpMM:Pantry></x>",
    )
    for packet in others:
        assert encoded_records(packet)[0] == packet
    # attributes apart by a long run of blanks (each blank once started a match over the whole run: 35 s for
    # this packet, in the web process that serves the JPEG download)
    spaced = (
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        + b" " * 60_000
        + b'tiff:ImageWidth="9"/>'
    )
    assert encoded_records(spaced)[0] == spaced.replace(b'"9"', b'"40"')


@pytest.mark.parametrize(
    "packet",
    [
        b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:ColorMode="1"',
        b"<photoshop:ColorMode>1<photoshop:ColorMode>\xff\xfe not XML at all",
        b"<tiff:BitsPerSample><rdf:Seq><rdf:li>8</rdf:Seq>",
    ],
)
def test_a_damaged_packet_is_kept_as_it_was(packet: bytes) -> None:
    assert encoded_records(packet)[0] == packet.decode("utf-8", "replace").encode()


def test_a_packet_the_rewrite_would_take_over_the_limit_is_kept_as_read() -> None:
    field = (
        b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" photoshop:ICCProfile="Gray"/>'
    )
    filler = b"<!--" + b" " * (65_000 - len(field) - 7) + b"-->"
    packet = field + filler
    assert len(packet) == 65_000  # as large as a JPEG's XMP record may be: sRGB's longer name would not fit
    rgb = np.zeros((30, 40, 3), np.uint8)
    assert xmp_of(encode_jpeg(rgb, metadata=PhotoMetadata(xmp=packet))) == packet


def png_with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """``png`` with one more chunk before its image data."""
    at = png.index(b"IDAT") - 4
    return png[:at] + png16.chunk(kind, body) + png[at:]


def gamma_encoded(srgb: np.ndarray, gamma: float, top: int) -> np.ndarray:
    """sRGB levels (0-255) re-encoded with a plain power ``gamma`` (sample = linear ** gamma), 0..``top``."""
    linear = lab.srgb_to_linear(srgb / 255.0)
    return np.round(linear**gamma * top).astype(np.uint8 if top == 255 else np.uint16)


RAMP = np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # every gray level
MAC_GAMMA = struct.pack(">I", 55556)  # gAMA: the samples are linear ** (1 / 1.8)


def test_a_png_s_gamma_is_applied_as_browsers_apply_it() -> None:
    # A gray and a colour PNG written at gamma 1/1.8 with no profile: browsers show them as the sRGB originals
    colour = np.stack([RAMP, RAMP[:, ::-1], np.full_like(RAMP, 90)], axis=-1)
    for srgb in (RAMP, colour):
        buf = io.BytesIO()
        Image.fromarray(gamma_encoded(srgb, 1 / 1.8, 255)).save(buf, format="PNG")
        rgb = decode(png_with_chunk(buf.getvalue(), b"gAMA", MAC_GAMMA), max_pixels=10**6).rgb
        expected = srgb if srgb.ndim == 3 else np.repeat(srgb[..., None], 3, axis=-1)
        assert np.abs(rgb.astype(int) - expected).max() <= 1
        # read without its gAMA (as before) its lightness was off by 5 on average
        unmanaged = decode(buf.getvalue(), max_pixels=10**6).rgb
        assert np.abs(lab.rgb_to_lightness(unmanaged) - lab.rgb_to_lightness(expected)).mean() > 4
    # a 16-bit gray scan keeps its 65,536 levels through the same conversion
    buf = io.BytesIO()
    Image.fromarray(gamma_encoded(RAMP, 1 / 1.8, 65535)).save(buf, format="PNG")
    decoded = decode(png_with_chunk(buf.getvalue(), b"gAMA", MAC_GAMMA), max_pixels=10**6)
    assert decoded.gray16 is not None
    assert np.abs(decoded.gray16.astype(int) - RAMP.astype(int) * 257).max() <= 1


def test_a_gamma_that_is_srgb_s_or_is_overridden_changes_nothing() -> None:
    buf = io.BytesIO()
    Image.fromarray(RAMP).save(buf, format="PNG")
    png = buf.getvalue()
    srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with_profile = io.BytesIO()
    Image.fromarray(RAMP).save(with_profile, format="PNG", icc_profile=srgb_profile)
    for same in (
        png_with_chunk(png, b"gAMA", struct.pack(">I", 45455)),  # 1/2.2: taken as sRGB
        png_with_chunk(png_with_chunk(png, b"sRGB", b"\0"), b"gAMA", MAC_GAMMA),  # the sRGB chunk decides
        png_with_chunk(with_profile.getvalue(), b"gAMA", MAC_GAMMA),  # and so does a profile
        png_with_chunk(png, b"gAMA", struct.pack(">I", 0)),  # out of range: ignored, as libpng does
    ):
        assert np.array_equal(decode(same, max_pixels=10**6).rgb[..., 0], RAMP)


def resolution_scan(orientation: int) -> bytes:
    """A 400 × 600 gray JPEG at 300 × 150 dpi (JFIF and EXIF), stored turned (``orientation``)."""
    exif = Image.Exif()
    exif.update({0x0112: orientation, 0x011A: 300, 0x011B: 150, 0x0128: 2})  # inches
    return jpeg_with(np.full((600, 400, 3), 90, np.uint8), dpi=(300, 150), exif=exif.tobytes())


def test_a_turned_photo_s_resolutions_are_turned_too() -> None:
    decoded = decode(resolution_scan(6), max_pixels=10**6)
    assert (decoded.width, decoded.height) == (600, 400)
    assert decoded.metadata.dpi == (150, 300)  # the stored columns are rows now
    for encoded in (encode_png, encode_jpeg):
        with Image.open(io.BytesIO(encoded(decoded.rgb, metadata=decoded.metadata))) as img:
            assert img.size == (600, 400)
            assert img.info["dpi"] == pytest.approx((150, 300), abs=0.02)  # pHYs (per metre), JFIF
            exif = img.getexif()
            assert (exif[0x011A], exif[0x011B]) == (150, 300)
    # half a turn leaves rows rows
    assert decode(resolution_scan(3), max_pixels=10**6).metadata.dpi == (300, 150)


def iim(record: int, dataset: int, value: bytes) -> bytes:
    """One IPTC-IIM dataset."""
    return bytes((0x1C, record, dataset)) + struct.pack(">H", len(value)) + value


CAPTION = "Harbour at dawn — the ferry Maud leaving"
IPTC = (
    iim(1, 90, b"\x1b%G")  # coded character set: UTF-8
    + iim(2, 120, CAPTION.encode())  # Caption-Abstract
    + iim(2, 80, b"A. Photographer")  # By-line
    + iim(2, 116, b"City Archive")  # CopyrightNotice
)
COMMENT = "Glass negative 13 x 18 cm, box 12"


def jpeg_with_iptc(rgb: np.ndarray, iptc: bytes, comment: str) -> bytes:
    """A JPEG as Photoshop and newsroom tools keep a catalogue's record: IPTC in an APP13 segment (as a
    Photoshop image resource) and a comment (COM)."""
    resources = b"8BIM\x04\x04\0\0" + struct.pack(">I", len(iptc)) + iptc + bytes(len(iptc) & 1)
    app13 = b"Photoshop 3.0\0" + resources
    data = jpeg_with(rgb, comment=comment.encode())
    return data[:2] + b"\xff\xed" + struct.pack(">H", len(app13) + 2) + app13 + data[2:]


def png_iptc(data: bytes) -> bytes:
    """The IPTC of a PNG's "Raw profile type iptc" text, read as ImageMagick and exiftool write it: the
    profile's name, its length and its bytes in hex, here a Photoshop image resource (8BIM, 0x0404)."""
    with Image.open(io.BytesIO(data)) as img:
        text = img.text["Raw profile type iptc"]
    _, _, length, *digits = text.split("\n")
    resources = bytes.fromhex("".join(digits))
    assert len(resources) == int(length) and resources[:8] == b"8BIM\x04\x04\0\0"
    return resources[12 : 12 + int.from_bytes(resources[8:12], "big")]


def jpeg_comments(data: bytes) -> list[bytes]:
    with Image.open(io.BytesIO(data)) as img:
        return [body for marker, body in img.applist if marker == "COM"]


def assert_carries_the_catalogue_records(png: bytes, method: str) -> None:
    """The IPTC and comment of :func:`jpeg_with_iptc` in a result's PNG and in its JPEG download."""
    assert png_iptc(png) == IPTC
    with Image.open(io.BytesIO(png)) as img:
        assert img.text["Comment"] == COMMENT and img.text["Software"] == f"ColorLab ({method})"
    jpeg = png_to_jpeg(png, 90, 10**6)
    with Image.open(io.BytesIO(jpeg)) as img:
        iptc = IptcImagePlugin.getiptcinfo(img)
        assert img.info["comment"] == f"ColorLab ({method})".encode()  # the last comment: who made it
    assert iptc is not None and iptc[(2, 120)] == CAPTION.encode()
    assert (iptc[(2, 80)], iptc[(2, 116)]) == (b"A. Photographer", b"City Archive")
    assert jpeg_comments(jpeg) == [COMMENT.encode(), f"ColorLab ({method})".encode()]


def test_iptc_and_comments_reach_png_and_jpeg_results() -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    decoded = decode(jpeg_with_iptc(rgb, IPTC, COMMENT), max_pixels=10**6)
    assert decoded.metadata.iptc == IPTC and decoded.metadata.texts == (("Comment", COMMENT),)
    png = encode_png(decoded.rgb, metadata=decoded.metadata, colorized_by="cnn")
    assert_carries_the_catalogue_records(png, "cnn")
    # a 16-bit result's PNG carries them as an 8-bit one's does; a JPEG result straight from the photo too
    rgb16 = decoded.rgb.astype(np.uint16) * 257
    for result in (
        encode_png(rgb16, metadata=decoded.metadata, colorized_by="cnn"),
        encode_jpeg(decoded.rgb, metadata=decoded.metadata, colorized_by="cnn"),
    ):
        read_back = decode(result, max_pixels=10**6).metadata
        assert (read_back.iptc, read_back.texts) == (IPTC, decoded.metadata.texts)
    # ColorLab's own comment is not the photo's (a result's is written anew), nor are bytes that are not text
    for not_the_photo_s in (b"ColorLab (gan)", b"\x01\x02\x00\xffAppleMark"):
        again = decode(jpeg_with(rgb, comment=not_the_photo_s), max_pixels=10**6)
        assert again.metadata.texts == () and again.metadata.iptc is None
    latin1 = decode(jpeg_with(rgb, comment="Négatif sur verre\0".encode("latin-1")), max_pixels=10**6)
    assert latin1.metadata.texts == (("Comment", "Négatif sur verre"),)


def test_a_tiff_s_iptc_is_carried_where_jpeg_and_png_keep_it() -> None:
    directory = TiffImagePlugin.ImageFileDirectory_v2()
    directory[33723] = IPTC + bytes(-len(IPTC) % 4)  # IPTC-NAA, padded to 4 bytes as Photoshop writes it
    directory.tagtype[33723] = 7  # undefined: bytes
    buf = io.BytesIO()
    Image.new("L", (40, 30), 90).save(buf, format="TIFF", tiffinfo=directory)
    decoded = decode(buf.getvalue(), max_pixels=10**6)
    assert decoded.metadata.iptc == IPTC  # without the padding
    png = encode_png(decoded.rgb, metadata=decoded.metadata)
    assert png_iptc(png) == IPTC
    with Image.open(io.BytesIO(png)) as img:
        assert 33723 not in img.getexif()  # not twice: in the EXIF record too


def test_png_text_chunks_reach_png_and_jpeg_results() -> None:
    texts = {
        "Title": TITLE,
        "Author": "Łucja Żak",  # not Latin-1: an iTXt chunk
        "Copyright": "City Archive",
        "Description": "The ferry Maud leaving the harbour",
        "Creation Time": "1923-05-01T06:30:00",
    }
    info = PngInfo()
    for keyword, text in texts.items():
        info.add_text(keyword, text)
    info.add_text("Software", "GIMP 2.10")  # the result's is ColorLab's
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 90, 90)).save(buf, format="PNG", pnginfo=info)
    decoded = decode(buf.getvalue(), max_pixels=10**6)
    assert dict(decoded.metadata.texts) == texts
    png = encode_png(decoded.rgb, metadata=decoded.metadata, colorized_by="cnn")
    with Image.open(io.BytesIO(png)) as img:
        kept = {keyword: text for keyword, text in img.text.items() if keyword != "XML:com.adobe.xmp"}
    assert kept == {**texts, "Software": "ColorLab (cnn)"}
    # a JPEG has one place for text: its comment says what the PNG's description says
    jpeg = png_to_jpeg(png, 90, 10**6)
    assert jpeg_comments(jpeg) == [texts["Description"].encode(), b"ColorLab (cnn)"]


def test_a_colorization_keeps_the_catalogue_records(runner: Runner) -> None:
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    gray = np.repeat(np.linspace(0, 255, 48 * 64, dtype=np.uint8).reshape(48, 64)[..., None], 3, axis=-1)
    job_id = new_job("cnn", data=jpeg_with_iptc(gray, IPTC, COMMENT))
    assert runner.run(job_id) == "done"
    with session_scope() as s:
        png_bytes = s.scalars(select(ImageRow.data).where(ImageRow.id == get(job_id).result_image_id)).one()
    assert_carries_the_catalogue_records(png_bytes, "cnn")  # GET /jobs/{id}/result.png and ?format=jpg
