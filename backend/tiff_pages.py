"""The pages of a multi-page TIFF, read from its directory chain alone, and each page as a file of its own.

A scanner or an archive writes an album, a letter or a photo's front and back as one TIFF of several pages:
one image file directory (IFD) per page, chained by each directory's "next" offset. Some of the chained
directories are not pages: a reduced-resolution copy (a preview) or a transparency mask, which the
NewSubfileType tag marks. A page is made a file of its own by pointing the header at its directory and ending
the chain there: every byte stays as it was (pixels, compression, bit depth, ICC profile, EXIF), so the page
decodes exactly as it would inside the whole file.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterator
from typing import NamedTuple

Buffer = bytes | mmap.mmap  # a file's bytes, or the file mapped (a large scan need not be read into memory)

MAX_DIRECTORIES = 1_000  # directories walked at most: a chain that goes on (or loops) is cut there
_NEW_SUBFILE_TYPE, _SUBFILE_TYPE = 254, 255
_REDUCED, _MASK = 0x1, 0x4  # NewSubfileType bits: a reduced-resolution copy, a transparency mask
_OLD_REDUCED = 2  # SubfileType (the tag NewSubfileType replaced): a reduced-resolution copy


class _Layout(NamedTuple):
    order: str  # struct byte order, "<" or ">"
    first_at: int  # where the header holds the first directory's offset
    offset: str  # struct code of an offset: "I" (classic) or "Q" (BigTIFF)
    entries: str  # struct code of a directory's entry count: "H" or "Q"
    entry: int  # bytes in one entry: 12 or 20


def _layout(data: Buffer) -> _Layout | None:
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or len(data) < 16:
        return None
    magic = struct.unpack_from(order + "H", data, 2)[0]
    if magic == 42:
        return _Layout(order, 4, "I", "H", 12)
    if magic == 43:
        return _Layout(order, 8, "Q", "Q", 20)
    return None


def _entry_value(data: Buffer, layout: _Layout, at: int) -> int:
    """An entry's first value where it is held in the entry itself (a SHORT or a LONG; 0 for any other)."""
    kind = struct.unpack_from(layout.order + "H", data, at + 2)[0]
    value_at = at + (8 if layout.entry == 12 else 12)  # after the tag, the type and the count
    if kind == 3:
        return int(struct.unpack_from(layout.order + "H", data, value_at)[0])
    if kind == 4:
        return int(struct.unpack_from(layout.order + "I", data, value_at)[0])
    return 0


def first_directory(data: Buffer) -> tuple[_Layout, int] | None:
    """The TIFF's layout and the offset of its first directory (the image a reader shows); None for a file
    that is not a TIFF or too short to say."""
    layout = _layout(data)
    if layout is None:
        return None
    return layout, struct.unpack_from(layout.order + layout.offset, data, layout.first_at)[0]


def entries(data: Buffer, layout: _Layout, directory: int) -> Iterator[tuple[int, int, int]]:
    """(tag, value count, offset) of each entry of the directory at ``directory``, as far as the file holds
    them (the values are not read)."""
    count = struct.unpack_from(layout.order + layout.entries, data, directory)[0]
    first = directory + struct.calcsize(layout.entries)
    for at in range(first, min(first + count * layout.entry, len(data) - layout.entry + 1), layout.entry):
        tag, _, values = struct.unpack_from(layout.order + "HH" + layout.offset, data, at)
        yield tag, values, at


def _is_page(data: Buffer, layout: _Layout, directory: int) -> bool:
    for tag, _, at in entries(data, layout, directory):
        if tag == _NEW_SUBFILE_TYPE and _entry_value(data, layout, at) & (_REDUCED | _MASK):
            return False
        if tag == _SUBFILE_TYPE and _entry_value(data, layout, at) == _OLD_REDUCED:
            return False
    return True


def pages(data: Buffer) -> list[int]:
    """The offsets of the directories of a TIFF's pages, in order: the first directory (the image a reader
    shows) and every later one that is not a preview or a mask. [] for a file that is not a TIFF; the chain
    is followed as far as it reads well (a damaged tail ends it, the pages before it are kept)."""
    found: list[int] = []
    seen: set[int] = set()
    try:
        if (first := first_directory(data)) is None:
            return []
        layout, directory = first
        while directory and directory not in seen and len(seen) < MAX_DIRECTORIES:
            seen.add(directory)
            count = struct.unpack_from(layout.order + layout.entries, data, directory)[0]
            end = directory + struct.calcsize(layout.entries) + count * layout.entry
            (following,) = struct.unpack_from(layout.order + layout.offset, data, end)
            if not found or _is_page(data, layout, directory):
                found.append(directory)
            directory = following
    except struct.error:  # a directory or an offset past the end of the file: the chain ends here
        pass
    return found


def page(data: Buffer, directory: int) -> bytes:
    """The TIFF ``data`` as a file of the one page whose directory is at ``directory`` (:func:`pages`): the
    header points at it and its "next" offset is 0. The other pages' bytes stay in the file, unreferenced."""
    layout = _layout(data)
    if layout is None:
        raise ValueError("not a TIFF")
    entries = struct.unpack_from(layout.order + layout.entries, data, directory)[0]
    end = directory + struct.calcsize(layout.entries) + entries * layout.entry
    out = bytearray(data)
    struct.pack_into(layout.order + layout.offset, out, layout.first_at, directory)
    struct.pack_into(layout.order + layout.offset, out, end, 0)
    return bytes(out)
