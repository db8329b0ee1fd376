"""Reading a study's colour photos from uploads, a folder or a zip file, under limits, and display copies."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.errors import UserError
from backend.images import DecodedImage, decode
from backend.models import Image
from backend.stored_images import store_result
from backend.uploads import zip_entries_beyond

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
MAX_PHOTOS = 1000
MAX_ZIP_ENTRIES = 5000


@dataclass(frozen=True)
class PhotoFile:
    name: str
    data: bytes


def _is_photo_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
        return False
    return path.suffix.lower() in PHOTO_SUFFIXES


def from_zip(data: bytes, settings: Settings) -> list[PhotoFile]:
    """The photos inside a zip archive (sorted by name); other entries are ignored. Bombs are refused, and
    a zip of more than MAX_ZIP_ENTRIES entries before its directory is read."""
    if beyond := zip_entries_beyond(data, MAX_ZIP_ENTRIES):
        raise UserError(413, f"the zip file has {beyond}; at most {MAX_ZIP_ENTRIES:,} are read")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise UserError(400, "the archive is not a valid zip file") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:  # not counted above: a directory that is not where it says
            raise UserError(
                413, f"the zip file has {len(infos):,} entries; at most {MAX_ZIP_ENTRIES:,} are read"
            )
        photos: list[PhotoFile] = []
        total = 0
        for info in sorted(infos, key=lambda i: i.filename):
            if info.is_dir() or not _is_photo_name(info.filename):
                continue
            if info.file_size > settings.max_upload_bytes:
                raise UserError(
                    413, f"{info.filename} is larger than the {settings.max_upload_bytes:,}-byte limit"
                )
            try:
                with archive.open(info) as fh:
                    content = fh.read(settings.max_upload_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
                raise UserError(400, f"{info.filename} could not be read from the zip file: {exc}") from None
            if len(content) > settings.max_upload_bytes:
                raise UserError(
                    413, f"{info.filename} is larger than the {settings.max_upload_bytes:,}-byte limit"
                )
            total += len(content)
            if total > 20 * settings.max_upload_bytes:
                raise UserError(413, "the zip file holds too much data")
            photos.append(PhotoFile(PurePosixPath(info.filename).name, content))
            if len(photos) > MAX_PHOTOS:
                raise UserError(413, f"more than {MAX_PHOTOS} photos")
    return photos


def from_path(path: Path, settings: Settings, limit: int | None = None) -> list[PhotoFile]:
    """The photos of a folder (and its subfolders: each named by its path within, sorted) or of a zip
    file; ``limit``: only the first so many, taken before any is read (a sample of a large archive)."""
    from worker.colorizers.folders import files_under

    if path.is_file() and path.suffix.lower() == ".zip":
        return from_zip(path.read_bytes(), settings)[:limit]
    if not path.is_dir():
        raise UserError(400, f"{path} is neither a folder nor a .zip file")
    listed, unreadable = files_under(path)
    if unreadable:
        raise UserError(400, f"cannot read the folder {unreadable[0]}: its photos would be left out")
    names = [(p, p.relative_to(path).as_posix()) for p in listed]
    files = [(p, name) for p, name in names if _is_photo_name(name)][:limit]
    if len(files) > MAX_PHOTOS:
        raise UserError(413, f"{path} holds {len(files)} photos; at most {MAX_PHOTOS} (--limit takes fewer)")
    out = []
    for p, name in files:
        if p.stat().st_size > settings.max_upload_bytes:
            raise UserError(413, f"{name} is larger than the {settings.max_upload_bytes:,}-byte limit")
        out.append(PhotoFile(name, p.read_bytes()))
    return out


def decode_photo(photo: PhotoFile, settings: Settings) -> DecodedImage:
    try:
        decoded = decode(photo.data, max_pixels=settings.max_pixels, one_photo=True)
    except UserError as exc:  # name the photo: a study takes many
        raise UserError(exc.status_code, f"{photo.name}: {exc.detail}") from None
    if not decoded.is_color:
        raise UserError(
            422, f"{photo.name} has no colour: a study needs colour photos (they are the real condition)"
        )
    return decoded


def display_jpeg(rgb: np.ndarray, max_side: int) -> bytes:
    """The copy participants see: every condition resized and encoded alike (the file gives nothing away)."""
    img = PILImage.fromarray(rgb)
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize(
            (max(1, round(img.width * scale)), max(1, round(img.height * scale))), PILImage.Resampling.LANCZOS
        )
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90, optimize=True)
    return buf.getvalue()


def store_display(session: Session, rgb: np.ndarray, max_side: int) -> Image:
    data = display_jpeg(rgb, max_side)
    with PILImage.open(io.BytesIO(data)) as im:
        width, height = im.size
    return store_result(session, data, width, height, fmt="JPEG")
