"""Reading uploaded photos from a request: in chunks under the size limit, decoded once in a bounded pool.

Shared by the upload routes (``POST /colorize``, ``/batches``, ``/compare``) and ``backend.batch_uploads``;
every refusal is a :class:`~backend.errors.UserError` naming which file it was.
"""

from __future__ import annotations

import struct

import anyio
import anyio.to_thread
from fastapi import UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile as StarletteUpload

from backend import examples
from backend.config import Settings
from backend.errors import UserError
from backend.images import DecodedImage, Renditions, decode, renditions
from backend.models import Image
from backend.stored_images import Upload
from backend.web import thread_pool
from worker.colorizers.method_info import MethodInfo


def has_file(upload: StarletteUpload | None) -> bool:
    """Whether a file field was filled in (browsers send an empty part for an empty file input)."""
    return upload is not None and bool(upload.filename or upload.size)


async def read_limited(upload: StarletteUpload, limit: int) -> bytes | None:
    """The upload's bytes, read in chunks; None as soon as they pass ``limit`` (the rest is never read)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(upload: UploadFile, settings: Settings, what: str, field: str) -> Upload:
    """Read an uploaded file in chunks, refusing it as soon as it passes the size limit, and decode it;
    a refusal names the file (``what``) and its form ``field``."""
    limit = settings.max_upload_bytes
    data = await read_limited(upload, limit)
    if data is None:
        raise UserError(413, f"the {what} is larger than the {limit:,}-byte limit", field=field)
    try:
        decoded, made = await decode_upload(data, settings)
    except UserError as exc:  # say which file: a request may carry a photo and a reference
        raise UserError(exc.status_code, f"the {what}: {exc.detail}", field=field) from None
    return Upload(data=data, decoded=decoded.facts, filename=upload.filename, renditions=made)


def decode_limiter(settings: Settings) -> anyio.CapacityLimiter:
    """At most DECODE_CONCURRENCY decodes/encodes at a time in this process; the rest wait in the event
    loop (holding no thread), so a burst of uploads cannot take all the memory or all the threads."""
    return thread_pool("decode", settings.decode_concurrency)


def _decode(data: bytes, settings: Settings) -> DecodedImage:
    """An untrusted upload decoded under every limit: pixels, pixels per byte, JPEG scans."""
    return decode(
        data,
        max_pixels=settings.max_pixels,
        max_pixels_per_byte=settings.max_pixels_per_byte,
        max_jpeg_scans=settings.max_jpeg_scans,
        one_photo=True,
    )


def _decode_and_render(data: bytes, settings: Settings) -> tuple[DecodedImage, Renditions]:
    decoded = _decode(data, settings)
    return decoded, renditions(decoded)


async def decode_checked(data: bytes, settings: Settings) -> DecodedImage:
    """Decode an untrusted upload under the limits, in the decode pool, without making its renditions."""
    return await anyio.to_thread.run_sync(_decode, data, settings, limiter=decode_limiter(settings))


async def decode_upload(data: bytes, settings: Settings) -> tuple[DecodedImage, Renditions]:
    """Decode an upload under the limits and make its served renditions, once, in the decode pool."""
    limiter = decode_limiter(settings)
    return await anyio.to_thread.run_sync(_decode_and_render, data, settings, limiter=limiter)


async def read_reference(
    info: MethodInfo,
    reference: UploadFile | None,
    reference_id: str | None,
    session: Session,
    settings: Settings,
    client: str | None,
) -> Upload | Image | None:
    """The uploaded reference (validated like any upload) or the earlier/bundled one named by id; None when
    neither came (a form's empty file field counts as none)."""
    ref: Upload | Image | None = None
    if reference is not None and has_file(reference):
        ref = await read_upload(reference, settings, "reference", "reference")
    elif reference_id:
        ref = await run_in_threadpool(examples.resolve_reference, session, settings, reference_id, client)
        if ref is None:
            shown = reference_id if len(reference_id) <= 40 else reference_id[:40] + "…"
            raise UserError(
                404, f"no reference image {shown!r} among your uploads or the examples", field="reference"
            )
    if info.needs_reference and isinstance(ref, Upload):
        require_colour(ref)
    return ref


def require_colour(reference: Upload) -> None:
    """422 for a reference without colour: the exemplar method copies colours from it."""
    if not reference.decoded.is_color:
        raise UserError(
            422, "the reference image has no colour: the method copies colours from it", field="reference"
        )


# A zip read from its end, before zipfile lists it (a batch's and a study's zips).
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory: signature ... entries, size, offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_ENTRY = struct.Struct("<4s4B4HL2L5H2L")  # one central directory entry, before its name


def zip_entries_beyond(data: bytes, most: int) -> str | None:
    """How many entries a zip has, in words ("2,000,000 entries"), when that is more than ``most``; None
    when it has at most ``most`` (or its directory cannot be read: ``zipfile`` then says it is damaged).

    Read from the end-of-central-directory record (ZIP64's too) and counted in the central directory
    itself, stopping after ``most + 1``, before ``zipfile`` builds an object per entry: a 103 MB zip of two
    million empty entries took 1.2 GB and 18 s to list. The directory is located as ``zipfile`` locates it,
    and counted by its bytes rather than by the count the record declares, which may lie.
    """
    eocd_at = len(data) - _EOCD.size  # found as zipfile finds it: without a comment, else the last one
    if eocd_at < 0 or data[eocd_at : eocd_at + 4] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        eocd_at = data.rfind(b"PK\x05\x06", max(0, len(data) - _EOCD.size - 0xFFFF))
    if eocd_at < 0 or eocd_at + _EOCD.size > len(data):
        return None
    _, _, _, _, declared, cd_size, _, _ = _EOCD.unpack_from(data, eocd_at)
    cd_end = eocd_at
    locator_at = eocd_at - _ZIP64_LOCATOR.size
    zip64_at = locator_at - _ZIP64_EOCD.size
    if zip64_at >= 0 and data[locator_at : locator_at + 4] == b"PK\x06\x07":
        record = _ZIP64_EOCD.unpack_from(data, zip64_at)
        if record[0] == b"PK\x06\x06":
            declared, cd_size, cd_end = record[7], record[8], zip64_at
    if declared > most:
        return f"{declared:,} entries"
    position = cd_end - cd_size
    if position < 0:
        return None
    counted = 0
    while position + _CENTRAL_ENTRY.size <= cd_end:
        entry = _CENTRAL_ENTRY.unpack_from(data, position)
        if entry[0] != b"PK\x01\x02":
            return None
        counted += 1
        if counted > most:
            return f"more than {most:,} entries"
        name_length, extra_length, comment_length = entry[12], entry[13], entry[14]
        position += _CENTRAL_ENTRY.size + name_length + extra_length + comment_length
    return None
