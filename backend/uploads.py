"""Reading uploaded photos from a request: in chunks under the size limit, decoded once in a bounded pool.

Shared by the upload routes (``POST /colorize``, ``/batches``, ``/compare``); every refusal is a
:class:`~backend.errors.UserError` naming which file it was.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from backend import examples
from backend.config import Settings
from backend.errors import UserError
from backend.images import DecodedImage, Renditions, decode, renditions
from backend.models import Image
from backend.stored_images import Upload
from backend.web import thread_pool
from worker.colorizers.method_info import MethodInfo


def has_file(upload: UploadFile | None) -> bool:
    """Whether a file field was filled in (browsers send an empty part for an empty file input)."""
    return upload is not None and bool(upload.filename or upload.size)


async def read_upload(upload: UploadFile, settings: Settings, what: str, field: str) -> Upload:
    """Read an uploaded file in chunks, refusing it as soon as it passes the size limit, and decode it;
    a refusal names the file (``what``) and its form ``field``."""
    limit = settings.max_upload_bytes
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise UserError(413, f"the {what} is larger than the {limit:,}-byte limit", field=field)
        chunks.append(chunk)
    data = b"".join(chunks)
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
