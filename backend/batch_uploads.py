"""A batch's photos from its upload (`POST /batches`): the files and zips read under the batch limits, the
pages of a multi-page TIFF made photos of their own, then each photo validated as a single upload is.

Two steps, so the caller can spend the photo budget between them (counted before any photo is decoded):
:func:`read_files` refuses a batch that is too big as a whole (413); :func:`validate` lists each bad photo
in ``rejected`` and lets the rest go on (422 when none is usable).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import NamedTuple

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from backend import tiff_pages
from backend.config import Settings
from backend.errors import UserError
from backend.stored_images import Upload, display_name, distinct_names, is_junk
from backend.uploads import decode_checked, has_file, read_limited, zip_entries_beyond

ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with files; an empty one


class BatchFile(NamedTuple):
    """One file of a batch before it is decoded: its path (inside its zip, if any), and its bytes or why it
    was refused."""

    path: str
    data: bytes | None
    refused: str | None


def photo_count(count: int) -> str:
    return f"{count} photo" if count == 1 else f"{count} photos"


def _too_many_files(count: int, settings: Settings) -> UserError:
    """413 for a batch of more files than BATCH_MAX_PHOTOS (as sent, or once its zips are unpacked)."""
    return UserError(
        413, f"{photo_count(count)}; a batch takes at most {settings.batch_max_photos} (BATCH_MAX_PHOTOS)"
    )


def _zip_too_full(holds: str, settings: Settings) -> UserError:
    """413 for a zip of more entries or files than a batch takes; ``holds`` says how many, in words."""
    return UserError(
        413, f"the zip holds {holds}; a batch takes at most {photo_count(settings.batch_max_photos)}"
    )


def _too_large(settings: Settings) -> str:
    return f"larger than the {settings.max_upload_bytes:,}-byte limit"


def _zip_entry_limit(settings: Settings) -> int:
    """Most entries a batch's zip may have before it is listed: each photo, its macOS ``._`` companion and
    the folders (the photos among them are counted again once listed)."""
    return 3 * settings.batch_max_photos + 100


def refuse_image_field(form: FormData) -> None:
    """422 for photos sent as ``image``: reserved for single uploads, that field would be dropped unsaid."""
    if form.getlist("image"):
        raise UserError(422, "a batch takes its photos as repeated `images` fields, not `image`")


def sent_files(uploads: Sequence[StarletteUpload]) -> list[StarletteUpload]:
    """The file parts that hold something (a browser sends an empty part for an empty file input)."""
    return [u for u in uploads if isinstance(u, StarletteUpload) and has_file(u)]


def zip_members(zip_name: str, data: bytes, settings: Settings) -> list[BatchFile]:
    """Each file of a zip; refuses bombs and oversized members. A damaged or empty zip is one refused entry
    named ``zip_name``: the other files of the batch go on. Blocking: run it in a thread."""
    # Counted before zipfile lists it: listing two million entries took 1.2 GB and 18 s.
    if beyond := zip_entries_beyond(data, _zip_entry_limit(settings)):
        raise _zip_too_full(beyond, settings)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return [BatchFile(zip_name, None, "the zip file is damaged or not a zip")]
    members = [i for i in archive.infolist() if not i.is_dir() and not is_junk(i.filename)]
    if len(members) > settings.batch_max_photos:
        raise _zip_too_full(f"{len(members)} files", settings)
    unpacked = sum(i.file_size for i in members)
    if unpacked > settings.batch_max_bytes:
        raise UserError(
            413,
            f"the zip unpacks to {unpacked:,} bytes, over the {settings.batch_max_bytes:,}-byte batch limit",
        )
    if not members:
        return [BatchFile(zip_name, None, "the zip holds no photos")]
    out: list[BatchFile] = []
    for info in members:
        name = info.filename
        if info.file_size > settings.max_upload_bytes:
            out.append(BatchFile(name, None, _too_large(settings)))
            continue
        try:
            with archive.open(info) as member:
                # Read one byte more than declared: a member that lies about its size is refused.
                content = member.read(settings.max_upload_bytes + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError) as exc:
            out.append(BatchFile(name, None, f"cannot be unpacked ({exc.__class__.__name__})"))
            continue
        if len(content) > settings.max_upload_bytes:
            out.append(BatchFile(name, None, _too_large(settings)))
            continue
        out.append(BatchFile(name, content, None))
    return out


async def read_files(uploads: Sequence[StarletteUpload], settings: Settings) -> list[BatchFile]:
    """The batch's files, its zips unpacked (in a thread); 422 when none came, 413 when there are more than
    BATCH_MAX_PHOTOS (as sent, or unpacked) or a zip is too big. An oversized photo is one refused file."""
    files = sent_files(uploads)
    if not files:
        raise UserError(422, "no photos: send them as repeated `images` fields, or one zip")
    if len(files) > settings.batch_max_photos:
        raise _too_many_files(len(files), settings)
    out: list[BatchFile] = []
    for upload in files:
        name = upload.filename or ""
        # A zip may be as large as the whole batch; a photo is checked against its own limit once read.
        data = await read_limited(upload, max(settings.max_upload_bytes, settings.batch_max_bytes))
        if data is not None and (data.startswith(ZIP_MAGICS) or name.lower().endswith(".zip")):
            out.extend(await run_in_threadpool(zip_members, display_name(name) or "zip", data, settings))
        elif data is None or len(data) > settings.max_upload_bytes:
            out.append(BatchFile(name, None, _too_large(settings)))
        else:
            out.append(BatchFile(name, data, None))
    out = await run_in_threadpool(split_pages, out, settings)
    if len(out) > settings.batch_max_photos:
        raise _too_many_files(len(out), settings)
    return out


def split_pages(files: list[BatchFile], settings: Settings) -> list[BatchFile]:
    """The batch's files with each multi-page TIFF replaced by its pages, one file each
    (``scan-page2.tif``, :mod:`backend.tiff_pages`). A page keeps the whole file's bytes, so a TIFF whose
    pages would take the batch over BATCH_MAX_BYTES is one refused file. Blocking: run it in a thread."""
    total = sum(len(file.data) for file in files if file.data is not None)
    out: list[BatchFile] = []
    for file in files:
        found = tiff_pages.pages(file.data) if file.data is not None else []
        if file.data is None or len(found) < 2:
            out.append(file)
            continue
        more = (len(found) - 1) * len(file.data)
        if total + more > settings.batch_max_bytes:
            whole = len(found) * len(file.data)
            refused = (
                f"its {len(found)} pages as photos of their own would take {whole:,} bytes, over the "
                f"{settings.batch_max_bytes:,}-byte batch limit: save the pages as files of their own"
            )
            out.append(BatchFile(file.path, None, refused))
            continue
        total += more
        path = PurePosixPath(file.path)
        for number, directory in enumerate(found, start=1):
            name = path.with_name(f"{path.stem}-page{number}{path.suffix}").as_posix()
            out.append(BatchFile(name, tiff_pages.page(file.data, directory), None))
    return out


async def _validate_photo(name: str, data: bytes, settings: Settings) -> Upload | str:
    """One photo of a batch decoded as a single upload is (the same limits, in the decode pool), or why it
    is refused; only what decoding told is kept, not the pixels: the batch holds all its photos until their
    jobs are made, and each one's renditions are made when it is stored (``stored_images.store_image``),
    one at a time."""
    try:
        decoded = await decode_checked(data, settings)
    except UserError as exc:  # one bad photo is listed in `rejected`; the rest go on
        return exc.detail
    return Upload(data=data, decoded=decoded.facts, filename=name)


async def validate(files: list[BatchFile], settings: Settings) -> tuple[list[Upload], list[dict[str, str]]]:
    """(accepted photos, rejected ones as {name, detail}), named apart where names repeat
    (folder/IMG_0001.jpg); 422 when none is usable, quoting the first reasons."""
    accepted: list[Upload] = []
    rejected: list[dict[str, str]] = []
    names = distinct_names([file.path for file in files])
    for name, file in zip(names, files, strict=True):
        checked = file.refused if file.data is None else await _validate_photo(name, file.data, settings)
        if isinstance(checked, Upload):
            accepted.append(checked)
        else:
            rejected.append({"name": name, "detail": str(checked)})
    if not accepted:
        reasons = "; ".join(f"{r['name']}: {r['detail']}" for r in rejected[:5])
        raise UserError(422, f"none of the {len(files)} files is a usable photo ({reasons})")
    return accepted, rejected
