"""What a result's records say about how it was made: a colorization by a trained model, never a capture.

Archives must never let a colorization pass for the original, and the EU AI Act (art. 50(2)) asks that
content an AI system manipulated be marked as such in a machine-readable way. Every result therefore says
so where photo software looks:

- XMP: ``Iptc4xmpExt:DigitalSourceType`` = IPTC's ``compositeWithTrainedAlgorithmicMedia`` (the lightness is
  the photo's, the colours were made by a trained model), replacing what the original said (``print``,
  ``negativeFilm``, ``digitalCapture``), and an ``xmpMM:History`` event (``edited`` by ``ColorLab (method)``,
  when, what) appended to the original's history; a new ``xmpMM:InstanceID`` where it had one (this file is
  another instance of the document);
- EXIF: ``Software`` (0x0131) = ``ColorLab (method)``;
- the PNG "Software" text chunk or the JPEG comment (``backend.images``).

The original's packet is edited in place, the rest byte for byte (titles, keywords, rights stay as the
archive wrote them); a packet that is not well-formed XML is replaced by a new one, since no reader could take
anything from it and the marking must be readable.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from xml.etree import ElementTree

SOFTWARE = "ColorLab"
# The key under which `colorlab colorize` records which photo a result was made from (a digest of its path).
SOURCE_KEY = f"{SOFTWARE} source"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_IPTC_EXT = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
_XMP_MM = "http://ns.adobe.com/xap/1.0/mm/"
_ST_EVT = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"
_EXIF_SOFTWARE = 0x0131
# The largest EXIF or XMP record a result carries: a JPEG's APP1 segment holds 64 KB (Pillow: 65,504 bytes
# of XMP), so a larger one could not go into the JPEG download.
RECORD_LIMIT = 65_000


def software(method: str) -> str:
    """Who made a result: ``ColorLab (unet-bins)``."""
    return f"{SOFTWARE} ({method})"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _event(method: str, when: datetime, rdf: str) -> str:
    """One xmpMM:History entry, its stEvt namespace declared on itself (whatever the packet binds)."""
    return (
        f'<{rdf}:li {rdf}:parseType="Resource" xmlns:stEvt="{_ST_EVT}">'
        "<stEvt:action>edited</stEvt:action>"
        "<stEvt:changed>/</stEvt:changed>"
        f"<stEvt:when>{when.isoformat(timespec='seconds')}</stEvt:when>"
        f"<stEvt:softwareAgent>{_escape(software(method))}</stEvt:softwareAgent>"
        f"<stEvt:parameters>colorized: the colours were made by {_escape(method)}, a trained model; the "
        "lightness is the original's</stEvt:parameters>"
        f"</{rdf}:li>"
    )


def _description(method: str, when: datetime, rdf: str, with_history: bool) -> str:
    history = (
        f"<xmpMM:History><{rdf}:Seq>{_event(method, when, rdf)}</{rdf}:Seq></xmpMM:History>"
        if with_history
        else ""
    )
    return (
        f'<{rdf}:Description {rdf}:about="" xmlns:Iptc4xmpExt="{_IPTC_EXT}" xmlns:xmpMM="{_XMP_MM}">'
        f"<Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>"
        f"{history}</{rdf}:Description>"
    )


def new_packet(method: str, when: datetime) -> bytes:
    """An XMP packet that says only how the result was made (for a photo whose file had none)."""
    body = (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        f'<rdf:RDF xmlns:rdf="{_RDF}">{_description(method, when, "rdf", True)}</rdf:RDF>'
        '</x:xmpmeta><?xpacket end="w"?>'
    )
    return body.encode("utf-8")


def _prefixes(packet: bytes, uri: str) -> list[bytes]:
    return re.findall(rb'xmlns:([\w.-]+)\s*=\s*["\']' + re.escape(uri.encode()) + rb'["\']', packet)


def _parses(packet: bytes) -> ElementTree.Element | None:
    if b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:  # XMP has no DTD: never expand one
        return None
    try:
        return ElementTree.fromstring(packet)
    except (ElementTree.ParseError, ValueError, LookupError):  # also an encoding expat cannot read
        return None


def mark_xmp(packet: bytes | None, method: str, when: datetime) -> bytes:
    """``packet`` (the original's XMP, or None) saying the result is a colorization by ``method``."""
    if packet is None or _parses(packet) is None:
        return new_packet(method, when)
    rdf = _prefixes(packet, _RDF)
    if len(set(rdf)) != 1:
        return new_packet(method, when)  # no rdf:RDF to add to, or one too odd to edit by its text
    r = rdf[0]
    edited = packet
    # The original's DigitalSourceType (an attribute, an element, or an element with rdf:resource) goes.
    for p in set(_prefixes(packet, _IPTC_EXT)):
        name = re.escape(p + b":DigitalSourceType")
        edited = re.sub(rb"\s" + name + rb"""\s*=\s*(?:"[^"]*"|'[^']*')""", b"", edited)
        edited = re.sub(rb"<" + name + rb"\b[^>]*/>", b"", edited)
        edited = re.sub(rb"<" + name + rb"\b[^>]*>[^<]*</" + name + rb"\s*>", b"", edited)
    # A new instance of the document: a new InstanceID where the original had one.
    instance = f"xmp.iid:{uuid.uuid4()}".encode()
    for p in set(_prefixes(packet, _XMP_MM)):
        name = re.escape(p + b":InstanceID")
        edited = re.sub(
            rb"(\s" + name + rb"""\s*=\s*)(?:"[^"]*"|'[^']*')""", rb'\1"' + instance + b'"', edited
        )
        edited = re.sub(
            rb"(<" + name + rb"\s*>)[^<]*(</" + name + rb"\s*>)", rb"\1" + instance + rb"\2", edited
        )
    # Our event at the end of the original's history, when it has one: before the first close of an
    # rdf:Seq after its opening (found with find, not a lazy regex: linear on any packet)
    appended = False
    event = _event(method, when, r.decode()).encode()
    for p in set(_prefixes(packet, _XMP_MM)):
        opening = re.compile(
            rb"<" + re.escape(p + b":History") + rb"\s*>\s*<" + re.escape(r + b":Seq") + rb"\s*>"
        )
        found = opening.search(edited)
        seq_end = edited.find(b"</" + r + b":Seq", found.end()) if found else -1
        if seq_end >= 0 and not appended:
            edited = edited[:seq_end] + event + edited[seq_end:]
            appended = True
    description = _description(method, when, r.decode(), with_history=not appended).encode()
    closes = list(re.finditer(rb"</" + re.escape(r + b":RDF") + rb"\s*>", edited))
    if len(closes) != 1:
        return new_packet(method, when)
    at = closes[0].start()
    marked = _within_limit(edited[:at] + description + edited[at:])
    return marked if marked is not None and _says_colorized(marked, method) else new_packet(method, when)


def _within_limit(packet: bytes) -> bytes | None:
    """``packet`` at most :data:`RECORD_LIMIT` bytes, by giving up its padding (the blank space editors leave
    before ``<?xpacket end`` to rewrite in place), or None when that is not enough."""
    excess = len(packet) - RECORD_LIMIT
    if excess <= 0:
        return packet
    end = packet.rfind(b"<?xpacket end")
    padding = len(packet[:end]) - len(packet[:end].rstrip()) if end > 0 else 0
    if padding <= excess:  # one line end stays
        return None
    return packet[: end - padding] + b"\n" + packet[end:]


def _says_colorized(packet: bytes, method: str) -> bool:
    """The edit read back as XML: one DigitalSourceType, ours, and our event last in one history."""
    root = _parses(packet)
    if root is None:
        return False
    kinds = [e.text for e in root.iter(f"{{{_IPTC_EXT}}}DigitalSourceType")]
    kinds += [
        v
        for e in root.iter(f"{{{_RDF}}}Description")
        for k, v in e.attrib.items()
        if k == f"{{{_IPTC_EXT}}}DigitalSourceType"
    ]
    histories = list(root.iter(f"{{{_XMP_MM}}}History"))
    if kinds != [DIGITAL_SOURCE_TYPE] or len(histories) != 1:
        return False
    events = histories[0].findall(f"{{{_RDF}}}Seq/{{{_RDF}}}li")
    agent = events[-1].findtext(f"{{{_ST_EVT}}}softwareAgent") if events else None
    return agent == software(method)


def mark_exif(exif: bytes | None, method: str) -> bytes | None:
    """The EXIF record with ``Software`` = ``ColorLab (method)`` (a new record when the photo had none);
    the record as it was when it cannot be rewritten."""
    from PIL import Image  # here: the CLI reads SOFTWARE at start-up, before it needs Pillow

    try:
        record = Image.Exif()
        if exif:
            record.load(exif)
        record[_EXIF_SOFTWARE] = software(method)
        marked = record.tobytes()
    except Exception:  # read once already, so unlikely
        return exif
    return marked if len(marked) <= RECORD_LIMIT else exif
