"""Every result says, machine-readably, that it is a colorization by a trained model (IPTC digital source
type, an XMP history event, EXIF Software), keeping the rest of the original's records byte for byte — read
back with a namespace-aware XML parser and Pillow, not with the code under test."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from xml.etree import ElementTree

import pytest
from PIL import Image

from backend import provenance

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
