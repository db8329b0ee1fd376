"""What an archive sends: TIFF scans (16-bit, compressed, with their own tags), gray, gray + alpha and palette
images with a colour profile, damaged EXIF records, odd resolutions. Their pixels are read as sRGB and their
records reach the results, nothing of the file's own layout or of the gray original with them."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps, TiffImagePlugin

from backend.images import _without_thumbnails, decode, encode_jpeg, encode_png, png_to_jpeg
from tests.backend.cli.conftest import run_cli
from tests.backend.test_photo_metadata import icc_profile

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
    b' tiff:Orientation="6"><dc:title>Harbour, 1923</dc:title></rdf:Description></rdf:RDF></x:xmpmeta>'
)


def encoded(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)  # type: ignore[arg-type]
    return buf.getvalue()


def exif_of(data: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(data)
    return exif


def test_a_tiff_scan_keeps_its_records_and_not_its_file_s_layout() -> None:
    # A 16-bit LZW scan as archive software writes it: caption, author, copyright, 600 dpi, turned by its
    # orientation, with a gray profile, a Photoshop block and XMP among its tags.
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[270], tags[315], tags[33432] = "Harbour at dawn", "A. Photographer", "City Archive"
    tags[274] = 6
    tags[34377] = b"8BIM\x04\x0c" + b"thumbnail of the gray original" * 10  # Photoshop resources
    tags[700] = XMP
    gray = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50
    scan = encoded(
        Image.fromarray(gray),
        "TIFF",
        tiffinfo=tags,
        compression="tiff_lzw",
        dpi=(600, 600),
        icc_profile=icc_profile("Gray 2.2", 2.2, "GRAY"),
    )
    decoded = decode(scan, max_pixels=10**6)
    assert decoded.rgb.shape == (40, 30, 3) and decoded.metadata.dpi == (600, 600)
    assert decoded.metadata.exif is not None and decoded.metadata.xmp is not None
    assert b"Orientation" not in decoded.metadata.xmp  # the pixels are upright: no viewer may turn them again
    for result in (
        encode_png(decoded.rgb, metadata=decoded.metadata),
        encode_jpeg(decoded.rgb, metadata=decoded.metadata),
    ):
        exif = Image.open(io.BytesIO(result)).getexif()
        assert (exif[270], exif[315], exif[33432]) == ("Harbour at dawn", "A. Photographer", "City Archive")
        # the TIFF's own layout (width, 16 bits, LZW, strips), its gray profile, Photoshop block and XMP tag
        # describe the scan's file, not the result's
        assert not {256, 257, 258, 259, 262, 273, 274, 279, 34377, 34675, 700} & set(exif)
        assert b"thumbnail of the gray original" not in result


def test_a_tiff_that_states_no_resolution_gives_none() -> None:
    scan = encoded(Image.new("L", (20, 10)), "TIFF")
    assert Image.open(io.BytesIO(scan)).info["dpi"] == (1, 1)  # Pillow's stand-in, not the file's word
    assert decode(scan, max_pixels=10**6).metadata.dpi is None


@pytest.mark.parametrize(
    "kind", ["16-bit PNG", "16-bit TIFF", "gray + alpha", "palette", "palette + transparency"]
)
def test_the_profile_of_a_16_bit_gray_a_gray_alpha_or_a_palette_image_is_applied(kind: str) -> None:
    # Linear light: level 128 is sRGB 188, as for an 8-bit gray or RGB photo with the same profile
    flat = Image.new("L", (16, 16), 128)
    img, fmt, options = {
        "16-bit PNG": (Image.fromarray(np.full((16, 16), 128 * 257, np.uint16)), "PNG", {}),
        "16-bit TIFF": (Image.fromarray(np.full((16, 16), 128 * 257, np.uint16)), "TIFF", {}),
        "gray + alpha": (flat.convert("LA"), "PNG", {}),
        "palette": (flat.convert("RGB").convert("P"), "PNG", {}),
        "palette + transparency": (flat.convert("RGB").convert("P"), "PNG", {"transparency": 255}),
    }[kind]
    profile = icc_profile("Linear", 1.0, "RGB" if img.mode == "P" else "GRAY")
    rgb = decode(encoded(img, fmt, icc_profile=profile, **options), max_pixels=10**6).rgb
    assert abs(float(rgb.mean()) - 188) <= 2


def test_transparency_stays_when_a_gray_alpha_profile_is_applied() -> None:
    la = Image.merge("LA", (Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 0)))  # transparent black
    data = encoded(la, "PNG", icc_profile=icc_profile("Linear", 1.0, "GRAY"))
    assert decode(data, max_pixels=10**6).rgb.min() == 255  # over white, as without a profile


def damaged_gps_exif() -> bytes:
    """An EXIF record, turned by its orientation, whose GPS version (4 bytes) is typed as text: Pillow reads
    it, but cannot write it back."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010E] = 6, "caption"
    exif.get_ifd(ExifTags.IFD.GPSInfo)[0] = b"\x02\x02\x00\x00"
    raw = exif.tobytes()
    entry = b"\x00\x00\x00\x01\x00\x00\x00\x04\x02\x02\x00\x00"  # GPSVersionID, BYTE, 4: 2.2.0.0
    assert raw.count(entry) == 1
    return raw.replace(entry, b"\x00\x00\x00\x02" + entry[4:])  # ASCII


def test_a_damaged_exif_record_is_left_out_and_the_photo_still_turned() -> None:
    photo = encoded(Image.new("L", (40, 20)), "JPEG", exif=damaged_gps_exif())
    with pytest.raises(TypeError):  # what refused the photo as "corrupt or truncated" before
        ImageOps.exif_transpose(Image.open(io.BytesIO(photo)))
    decoded = decode(photo, max_pixels=10**6)
    assert decoded.rgb.shape == (40, 20, 3)
    assert Image.open(io.BytesIO(encode_png(decoded.rgb, metadata=decoded.metadata))).size == (20, 40)


def test_a_resolution_jfif_cannot_hold_is_left_out() -> None:
    # JFIF keeps dpi in 16 bits: 70,000 dpi would come out of the JPEG download as 4,464
    png = encoded(Image.new("L", (8, 8)), "PNG", dpi=(70_000, 70_000))
    assert decode(png, max_pixels=10**6).metadata.dpi is None
    assert "dpi" not in Image.open(io.BytesIO(png_to_jpeg(png, 90, 10**6))).info


def test_the_exif_thumbnail_of_the_gray_original_is_not_carried() -> None:
    # IFD1 (a camera's or a scanner's preview JPEG) is left behind by Pillow's Exif.tobytes: only IFD0 and its
    # EXIF and GPS directories are written.
    with Image.open(io.BytesIO(encoded(Image.new("L", (64, 48), 90), "JPEG"))) as preview:
        preview_jpeg = encoded(preview.resize((16, 12)), "JPEG")
    ifd1_offset = 8 + 2 + 12 * 2 + 4 + 8  # after IFD0 and its caption
    head = b"MM\x00*\x00\x00\x00\x08"
    ifd0 = b"\x00\x02" + b"\x01\x0e\x00\x02\x00\x00\x00\x08" + (8 + 2 + 24 + 4).to_bytes(4, "big")
    ifd0 += (
        b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + ifd1_offset.to_bytes(4, "big") + b"caption\x00"
    )
    thumb_at = ifd1_offset + 2 + 24 + 4
    ifd1 = b"\x00\x02" + b"\x02\x01\x00\x04\x00\x00\x00\x01" + thumb_at.to_bytes(4, "big")
    ifd1 += b"\x02\x02\x00\x04\x00\x00\x00\x01" + len(preview_jpeg).to_bytes(4, "big") + bytes(4)
    photo = encoded(
        Image.new("L", (64, 48), 90), "JPEG", exif=b"Exif\x00\x00" + head + ifd0 + ifd1 + preview_jpeg
    )
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.IFD1)[0x0202] == len(preview_jpeg)
    decoded = decode(photo, max_pixels=10**6)
    assert decoded.metadata.exif is not None and preview_jpeg[-64:] not in decoded.metadata.exif
    result = encode_jpeg(decoded.rgb, metadata=decoded.metadata)
    assert exif_of(decoded.metadata.exif)[0x010E] == "caption" and preview_jpeg[-64:] not in result


@pytest.mark.parametrize("prefix", ["xmp", "xap"])
def test_the_xmp_thumbnail_of_the_gray_original_is_not_carried(prefix: str) -> None:
    # Photoshop and Bridge keep a base64 JPEG of the photo in XMP (xap: in files from before 2005)
    thumbnail = (
        f'<{prefix}:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource">\n'
        f"<xmpGImg:format>JPEG</xmpGImg:format><xmpGImg:image>/9j/4AAQSkZJRgABAgEASABIAAD/gray+original</xmpGImg:image></rdf:li></rdf:Alt>"
        f"</{prefix}:Thumbnails>"
    ).encode()
    xmp = XMP.replace(b"<dc:title>", thumbnail + b"<dc:title>")
    photo = encoded(Image.new("L", (20, 10)), "JPEG", xmp=xmp)
    packet = decode(photo, max_pixels=10**6).metadata.xmp
    assert packet is not None and b"Harbour, 1923" in packet
    assert b"gray+original" not in packet and b"Thumbnails" not in packet


def test_thumbnails_are_cut_in_one_pass_as_the_lazy_pattern_would() -> None:
    """The one-pass cut gives what ``<(xmp|xap):Thumbnails\\b.*?</\\1:Thumbnails>`` removed (which rescanned
    the packet for every unclosed opening: 1.5 s on a hostile 65 KB one), on 20,000 random packets."""
    lazy = re.compile(rb"<(xmp|xap):Thumbnails\b.*?</\1:Thumbnails>", re.DOTALL)
    parts = [b"<xmp:Thumbnails>", b"</xmp:Thumbnails>", b"<xap:Thumbnails x='1'>", b"</xap:Thumbnails>"]
    parts += [b"<xmp:ThumbnailsX>", b"text", b"\n"]
    rng = random.Random(0)
    for _ in range(20_000):
        packet = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 12)))
        assert _without_thumbnails(packet) == lazy.sub(b"", packet), packet
    hostile = b"<xmp:Thumbnails>" * 4_000 + b"<xap:Thumbnails>gray</xap:Thumbnails>"
    assert _without_thumbnails(hostile) == b"<xmp:Thumbnails>" * 4_000


def test_colorize_cli_takes_names_as_long_as_the_file_system_allows(tmp_path: Path) -> None:
    # 255 bytes, the most a file name holds; two photos of one stem in one folder need "-2" more
    names = ["x" * 251 + ".jpg", "x" * 251 + ".tif", "é" * 125 + ".tif"]
    for folder in ("box 1", "box 2"):
        (tmp_path / "in" / folder).mkdir(parents=True)
        for name in names:
            Image.new("L", (24, 16), 90).save(tmp_path / "in" / folder / name)
    out = tmp_path / "out"
    code, output = run_cli("colorize", str(tmp_path / "in"), "-o", str(out), "-m", "cnn", "--no-progress")
    assert code == 0, output
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert len(made) == 6 and all(len(Path(name).name.encode()) <= 255 for name in made)
    for folder in ("box 1", "box 2"):  # the tree is kept: each folder's results in a folder of its name
        assert {f"{folder}/" + "x" * 251 + ".png", f"{folder}/" + "é" * 125 + ".png"} < set(made)


def test_colorize_cli_leaves_out_a_folder_s_hidden_files_and_macos_junk(tmp_path: Path) -> None:
    folder = tmp_path / "Archive 1923"
    (folder / "__MACOSX").mkdir(parents=True)
    Image.new("L", (24, 16), 90).save(folder / "scan.tif")
    apple_double = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # not an image
    (folder / "._scan.tif").write_bytes(apple_double)
    (folder / "__MACOSX" / "._scan.tif").write_bytes(apple_double)
    code, output = run_cli("colorize", str(folder), "-o", str(tmp_path / "out"), "-m", "cnn", "--no-progress")
    assert code == 0, output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["scan.png"]
