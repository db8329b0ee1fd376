"""Every result says, machine-readably, that it is a colorization by a trained model (IPTC digital source
type, an XMP history event, EXIF Software), keeping the rest of the original's records byte for byte — read
back with a namespace-aware XML parser and Pillow, not with the code under test."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from backend import provenance
from worker.runner import Runner

WHEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "dc": "http://purl.org/dc/elements/1.1/",
}
AI = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"

# As Lightroom writes it: properties as attributes, a title, keywords, a history of two events.
LIGHTROOM = b"""<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="Adobe XMP Core 7.0-c000">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmpMM:InstanceID="xmp.iid:1111" xmpMM:DocumentID="xmp.did:2222"
    Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/negativeFilm">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour, 1931 &amp; after</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>boats</rdf:li></rdf:Bag></dc:subject>
   <xmpMM:History>
    <rdf:Seq>
     <rdf:li stEvt:action="derived" stEvt:parameters="converted from tiff"/>
     <rdf:li rdf:parseType="Resource"><stEvt:action>saved</stEvt:action></rdf:li>
    </rdf:Seq>
   </xmpMM:History>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


# What marking adds to a packet without a history or an instance ID: one rdf:Description, last in rdf:RDF
MARKING = re.compile(
    rb'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="[^"]*" xmlns:xmpMM="[^"]*">.*?</rdf:Description>'
    rb"(?=</rdf:RDF>)",
    re.DOTALL,
)


def unmarked(packet: bytes) -> bytes:
    """``packet`` as it was before :func:`provenance.mark_xmp` added its description (which it must have)."""
    assert source_types(read(packet)) == [AI]
    original, found = MARKING.subn(b"", packet)
    assert found == 1
    return original


def read(packet: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(packet)


def source_types(root: ElementTree.Element) -> list[str | None]:
    key = f"{{{NS['Iptc4xmpExt']}}}DigitalSourceType"
    found = [e.text for e in root.iter(key)]
    found += [e.get(f"{{{NS['rdf']}}}resource") for e in root.iter(key) if e.text is None]
    return [f for f in found if f] + [
        d.attrib[key] for d in root.iter(f"{{{NS['rdf']}}}Description") if key in d.attrib
    ]


def events(root: ElementTree.Element) -> list[ElementTree.Element]:
    [history] = root.findall(".//xmpMM:History", NS)
    return history.findall("rdf:Seq/rdf:li", NS)


def test_a_photo_without_xmp_gets_a_packet_that_says_colorized() -> None:
    root = read(provenance.mark_xmp(None, "unet-bins", WHEN))
    assert source_types(root) == [AI]
    [event] = events(root)
    assert event.findtext("stEvt:action", namespaces=NS) == "edited"
    assert event.findtext("stEvt:softwareAgent", namespaces=NS) == "ColorLab (unet-bins)"
    assert event.findtext("stEvt:when", namespaces=NS) == "2026-12-01T12:00:00+00:00"
    assert "trained model" in (event.findtext("stEvt:parameters", namespaces=NS) or "")


def test_the_archive_s_records_stay_and_the_marking_replaces_what_the_original_said() -> None:
    marked = provenance.mark_xmp(LIGHTROOM, "exemplar", WHEN)
    root = read(marked)
    assert source_types(root) == [AI]  # negativeFilm no longer: the colours are not the film's
    history = events(root)
    assert (
        len(history) == 3
        and history[-1].findtext("stEvt:softwareAgent", namespaces=NS) == "ColorLab (exemplar)"
    )
    assert history[0].get(f"{{{NS['stEvt']}}}action") == "derived"
    title = root.find(".//dc:title/rdf:Alt/rdf:li", NS)
    assert title is not None and title.text == "Harbour, 1931 & after"
    for kept in (
        b"<dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>boats</rdf:li></rdf:Bag></dc:subject>",
        b'xmpMM:DocumentID="xmp.did:2222"',
        b'x:xmptk="Adobe XMP Core 7.0-c000"',
    ):
        assert kept in marked
    [description] = [
        d for d in root.iter(f"{{{NS['rdf']}}}Description") if f"{{{NS['xmpMM']}}}InstanceID" in d.attrib
    ]
    assert description.attrib[f"{{{NS['xmpMM']}}}InstanceID"] not in ("xmp.iid:1111", "")  # a new instance


@pytest.mark.parametrize(
    "form",
    [
        b"<Iptc4xmpExt:DigitalSourceType>http://cv.iptc.org/newscodes/digitalsourcetype/print</Iptc4xmpExt:DigitalSourceType>",
        b'<Iptc4xmpExt:DigitalSourceType rdf:resource="http://cv.iptc.org/newscodes/digitalsourcetype/print"/>',
    ],
)
def test_an_element_form_source_type_is_replaced_too(form: bytes) -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        + form
        + b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    root = read(provenance.mark_xmp(packet, "cnn", WHEN))
    assert source_types(root) == [AI] and len(events(root)) == 1


@pytest.mark.parametrize(
    "broken",
    [
        b"<x:xmpmeta><rdf:RDF>not closed",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/">&a;</x:xmpmeta>',
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',  # no rdf:RDF to add to
    ],
)
def test_a_packet_no_reader_could_use_is_replaced_by_one_that_says_colorized(broken: bytes) -> None:
    root = read(provenance.mark_xmp(broken, "gan", WHEN))
    assert source_types(root) == [AI] and len(events(root)) == 1


def test_a_colorization_colorized_again_has_both_events_and_one_source_type() -> None:
    twice = provenance.mark_xmp(provenance.mark_xmp(None, "cnn", WHEN), "unet-bins", WHEN)
    root = read(twice)
    assert source_types(root) == [AI]
    agents = [e.findtext("stEvt:softwareAgent", namespaces=NS) for e in events(root)]
    assert agents == ["ColorLab (cnn)", "ColorLab (unet-bins)"]


def test_exif_software_says_colorlab_and_the_rest_stays() -> None:
    record = Image.Exif()
    record[0x0131] = "Adobe Photoshop 25.0"
    record[0x010E] = "Harbour, 1931"  # ImageDescription
    record[0x8298] = "City Archive"  # Copyright
    marked = Image.Exif()
    marked.load(provenance.mark_exif(record.tobytes(), "unet-bins") or b"")
    assert marked[0x0131] == "ColorLab (unet-bins)"
    assert marked[0x010E] == "Harbour, 1931" and marked[0x8298] == "City Archive"
    fresh = Image.Exif()
    fresh.load(provenance.mark_exif(None, "cnn") or b"")
    assert dict(fresh) == {0x0131: "ColorLab (cnn)"}
    # and Pillow writes it into a file that reads back
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG", exif=provenance.mark_exif(None, "cnn"))
    assert Image.open(io.BytesIO(buf.getvalue())).getexif()[0x0131] == "ColorLab (cnn)"


# -- the marking in the files ColorLab writes ------------------------------------------------------------


def assert_says_colorized(data: bytes, method: str, *, events_expected: int = 1) -> ElementTree.Element:
    """``data`` (a PNG or JPEG) says it is ``method``'s colorization: XMP source type and history event,
    EXIF Software, and the PNG Software chunk or JPEG comment; its XMP returned."""
    with Image.open(io.BytesIO(data)) as img:
        packet = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
        exif = img.getexif()
        note = img.info.get("Software") or img.info.get("comment")
    assert packet, "no XMP"
    root = read(packet.encode() if isinstance(packet, str) else packet)
    assert source_types(root) == [AI]
    history = events(root)
    assert len(history) == events_expected
    assert history[-1].findtext("stEvt:softwareAgent", namespaces=NS) == f"ColorLab ({method})"
    assert exif[0x0131] == f"ColorLab ({method})"
    assert (note.decode() if isinstance(note, bytes) else note) == f"ColorLab ({method})"
    return root


def test_encoders_mark_a_result_with_or_without_the_photo_s_records() -> None:
    from backend.images import PhotoMetadata, encode_jpeg, encode_png

    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    for data in (encode_png(rgb, colorized_by="cnn"), encode_jpeg(rgb, colorized_by="cnn")):
        assert_says_colorized(data, "cnn")
    exif = Image.Exif()
    exif[0x0131] = "SilverFast 9"  # the scanner's: the result was made by ColorLab
    exif[0x8298] = "City Archive"
    archive = PhotoMetadata(dpi=(600.0, 600.0), exif=exif.tobytes(), xmp=LIGHTROOM)
    for data in (
        encode_png(rgb, metadata=archive, colorized_by="unet-bins"),
        encode_jpeg(rgb, metadata=archive, colorized_by="unet-bins"),
        encode_png(rgb.astype(np.uint16) * 257, metadata=archive, colorized_by="unet-bins"),  # 16-bit
    ):
        root = assert_says_colorized(data, "unet-bins", events_expected=3)
        title = root.find(".//dc:title/rdf:Alt/rdf:li", NS)
        assert title is not None and title.text == "Harbour, 1931 & after"
        with Image.open(io.BytesIO(data)) as img:
            assert img.getexif()[0x8298] == "City Archive"
            assert img.info["dpi"] == pytest.approx((600, 600), abs=0.01)
    # not a result (a gray input, a preview): nothing said
    with Image.open(io.BytesIO(encode_png(rgb))) as img:
        assert not img.getexif() and "XML:com.adobe.xmp" not in img.info and "Software" not in img.info


def gray_jpeg() -> bytes:
    gray = np.repeat(np.linspace(0, 255, 40 * 56, dtype=np.uint8).reshape(40, 56)[..., None], 3, axis=-1)
    buf = io.BytesIO()
    Image.fromarray(gray).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def test_a_worker_s_result_and_its_jpeg_download_say_colorized(runner: Runner) -> None:
    from sqlalchemy import select

    from backend.db import session_scope
    from backend.images import png_to_jpeg
    from backend.models import Image as ImageRow
    from tests.backend.test_runner import get, new_job
    from tests.conftest import method_available

    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    job_id = new_job("cnn", data=gray_jpeg())
    assert runner.run(job_id) == "done"
    with session_scope() as s:
        png = s.scalars(select(ImageRow.data).where(ImageRow.id == get(job_id).result_image_id)).one()
    assert_says_colorized(png, "cnn")
    # the download re-encodes the stored PNG: the records are copied, not marked twice
    jpeg = png_to_jpeg(png, 90, 10**6)
    with Image.open(io.BytesIO(jpeg)) as img:
        assert img.getexif()[0x0131] == "ColorLab (cnn)"
        packet = img.info["xmp"]
    root = read(packet)
    assert source_types(root) == [AI] and len(events(root)) == 1


def test_colorize_cli_results_say_colorized(tmp_path: Path) -> None:
    from tests.backend.cli.conftest import run_cli

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.jpg").write_bytes(gray_jpeg())
    for fmt in ("png", "jpg"):
        code, output = run_cli(
            "colorize", str(tmp_path / "in"), "-o", str(tmp_path / fmt), "--method", "cnn",
            "--format", fmt, "--no-progress",
        )  # fmt: skip
        assert code == 0, output
        assert_says_colorized((tmp_path / fmt / f"scan.{fmt}").read_bytes(), "cnn")


def test_a_study_s_display_images_say_nothing_that_gives_the_condition_away() -> None:
    from backend.study.photos import display_jpeg

    rgb = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    with Image.open(io.BytesIO(display_jpeg(rgb, 512))) as img:
        assert not img.getexif() and "xmp" not in img.info and "comment" not in img.info
        assert "icc_profile" not in img.info


RDF_ONLY = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description rdf:about=""/></rdf:RDF></x:xmpmeta>'
)


@pytest.mark.parametrize("encoding", [b"Shift_JIS", b"utf-7", b"x-unknown"])
def test_a_packet_in_an_encoding_the_parser_cannot_read_is_marked_anew(encoding: bytes) -> None:
    """expat raises ValueError/LookupError (not ParseError) for these: once an exception out of the
    worker's result encoding, leaving the job running."""
    from backend.images import PhotoMetadata, encode_png

    packet = b'<?xml version="1.0" encoding="' + encoding + b'"?>' + RDF_ONLY
    assert source_types(read(provenance.mark_xmp(packet, "cnn", WHEN))) == [AI]
    rgb = np.zeros((8, 8, 3), np.uint8)
    assert_says_colorized(encode_png(rgb, metadata=PhotoMetadata(xmp=packet), colorized_by="cnn"), "cnn")


def test_a_packet_near_the_size_limit_gives_up_its_padding_or_is_marked_anew() -> None:
    from backend.images import PhotoMetadata, encode_jpeg, png_to_jpeg

    def near_the_limit(padding: int) -> bytes:
        """LIGHTROOM grown by a long description to 100 bytes under the limit, with ``padding`` blanks."""
        body = LIGHTROOM.replace(b"<?xpacket end", b" " * padding + b"\n<?xpacket end")
        size = provenance.RECORD_LIMIT - len(body) - 100 - len(b"<dc:description></dc:description>")
        filler = b"<dc:description>" + b"x" * size + b"</dc:description>"
        return body.replace(b"<dc:subject>", filler + b"<dc:subject>")

    padded = near_the_limit(4000)
    assert len(padded) == provenance.RECORD_LIMIT - 100
    marked = provenance.mark_xmp(padded, "cnn", WHEN)
    assert len(marked) <= provenance.RECORD_LIMIT and b"x" * 1000 in marked  # the original's text kept
    assert len(events(read(marked))) == 3
    fresh = provenance.mark_xmp(near_the_limit(300), "cnn", WHEN)  # too little padding to make room
    assert len(fresh) < 2000 and len(events(read(fresh))) == 1
    # the JPEG takes it, and its download too (the marking survives the re-encoding)
    rgb = np.zeros((8, 8, 3), np.uint8)
    jpeg = encode_jpeg(rgb, metadata=PhotoMetadata(xmp=padded), colorized_by="cnn")
    assert_says_colorized(jpeg, "cnn", events_expected=3)
    from backend.images import encode_png

    png = encode_png(rgb, metadata=PhotoMetadata(xmp=padded), colorized_by="cnn")
    assert_says_colorized(png_to_jpeg(png, 90, 10**6), "cnn", events_expected=3)


def test_history_openings_left_unclosed_do_not_take_the_event() -> None:
    """Thousands of ``<xmpMM:History><rdf:Seq>`` in a comment, none closed: a lazy regex tried each (seconds
    per result); the event goes into a history of its own."""
    hostile = b"<!-- " + b"<xmpMM:History><rdf:Seq>" * 2500 + b" -->"
    packet = RDF_ONLY.replace(
        b'<rdf:Description rdf:about=""/>',
        b'<rdf:Description rdf:about="" xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/">'
        + hostile
        + b"</rdf:Description>",
    )
    assert not read(packet).findall(".//xmpMM:History", NS)  # well-formed, with no history element
    marked = read(provenance.mark_xmp(packet, "cnn", WHEN))
    assert source_types(marked) == [AI] and len(events(marked)) == 1
