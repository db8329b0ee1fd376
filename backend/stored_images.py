"""Image rows in the database: uploads (stored once per distinct file), images we made, deleting unused ones.

Decoding and encoding the bytes is ``backend.images``; which job uses which image is
``backend.job_lifecycle``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.db import rowcount
from backend.images import DecodedImage, ImageFacts, Renditions, decode, renditions
from backend.models import Image, Job
from backend.study.models import Stimulus, StudyPhoto


@dataclass(frozen=True)
class Upload:
    """An uploaded file, decoded under the limits (see ``backend.images.decode``)."""

    data: bytes
    # A batch's photos are the facts alone: the request holds them all until their jobs are made, and a
    # 12 MP photo's pixels are 36 MB, its renditions 17 MB, its file 1.2 MB (benchmarks/RESULTS.md)
    decoded: DecodedImage | ImageFacts
    filename: str | None
    renditions: Renditions | None = None  # made by the caller (in the decode pool); else by store_image


@dataclass
class Freed:
    """What a deletion removed (reported by the sweeper and `colorlab sweep`)."""

    jobs: int = 0
    images: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        return f"{self.jobs} job(s), {self.images} image(s), {self.bytes / 1e6:.1f} MB"

    def __add__(self, other: Freed) -> Freed:
        return Freed(self.jobs + other.jobs, self.images + other.images, self.bytes + other.bytes)


def is_junk(path: str) -> bool:
    """A hidden file or folder, or macOS's ``__MACOSX``, in a relative path ("a/b.jpg"): a folder or zip made
    on a Mac holds a "._photo.jpg" (not an image) beside every photo. Left out of a zip, a folder upload and
    ``colorlab colorize``'s folders alike."""
    parts = [part for part in path.replace("\\", "/").split("/") if part not in (".", "..")]  # ./a.jpg: kept
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


# Browsers send a multipart file name with these three characters percent-escaped (the HTML standard's
# form-data encoding): `a "quoted".jpg` arrives as `a %22quoted%22.jpg`.
_FORM_ESCAPES = {"%22": '"', "%0A": " ", "%0D": " "}


def display_name(name: str | None) -> str | None:
    """A file name for display only: the browser's escapes undone, no directories, no control characters,
    bounded length."""
    if not name:
        return None
    for escaped, char in _FORM_ESCAPES.items():
        name = name.replace(escaped, char)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if ch.isprintable()).strip()
    return clean[:255] or None


def distinct_names(paths: Sequence[str | None]) -> list[str]:
    """Display names for files uploaded together (a batch): each file's own name, or, where two share one,
    as much of their folder path as tells them apart ("2019/IMG_0001.jpg", "2020/IMG_0001.jpg"). Each
    part is cleaned as :func:`display_name` does; a nameless file is "photo N"."""
    parts = [
        [
            c
            for c in (display_name(part) for part in (path or "").replace("\\", "/").split("/"))
            if c and c != ".."
        ]
        or [f"photo {n + 1}"]
        for n, path in enumerate(paths)
    ]
    depth = [1] * len(parts)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        shared = Counter(name.lower() for name in names)
        deeper = [i for i, name in enumerate(names) if shared[name.lower()] > 1 and depth[i] < len(parts[i])]
        if not deeper:
            return [name[-255:] for name in names]
        for i in deeper:
            depth[i] += 1


def find_image(session: Session, data: bytes) -> Image | None:
    """An already stored image with exactly these bytes."""
    digest = hashlib.sha256(data).hexdigest()
    return session.scalars(
        select(Image).where(Image.sha256 == digest, Image.size_bytes == len(data)).limit(1)
    ).first()


def store_image(session: Session, upload: Upload) -> Image:
    """Insert the upload's bytes and its served renditions (or reuse an identical stored image)."""
    existing = find_image(session, upload.data)
    if existing is not None:
        return existing
    decoded = upload.decoded
    made = upload.renditions
    if made is None:  # made here, one photo at a time: from the pixels, or (a batch's photo) from the file
        if not isinstance(decoded, DecodedImage):  # checked under the limits already
            decoded = decode(upload.data, max_pixels=decoded.width * decoded.height)
        made = renditions(decoded)
    image = Image(
        gray_png=made.gray_png,
        color_png=made.color_png,
        thumb_jpeg=made.thumb_jpeg,
        sha256=hashlib.sha256(upload.data).hexdigest(),
        data=upload.data,
        size_bytes=len(upload.data),
        width=decoded.width,
        height=decoded.height,
        mode=decoded.mode[:16],
        format=decoded.format[:16],
        is_color=decoded.is_color,
        filename=display_name(upload.filename),
    )
    session.add(image)
    session.flush()
    # The session need not keep the renditions until the commit (a batch stores up to BATCH_MAX_PHOTOS):
    # they are read from the database if anything asks for them.
    session.expire(image, ["gray_png", "color_png", "thumb_jpeg"])
    return image


def store_result(
    session: Session,
    data: bytes,
    width: int,
    height: int,
    *,
    fmt: str = "PNG",
    is_color: bool = True,
    filename: str | None = None,
) -> Image:
    """Insert an image we made ourselves (a colorization, a gray input, a study rendition); RGB."""
    image = Image(
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        size_bytes=len(data),
        width=width,
        height=height,
        mode="RGB",
        format=fmt,
        is_color=is_color,
        filename=filename,
    )
    session.add(image)
    session.flush()
    return image


def delete_unused_images(session: Session, candidates: set[str]) -> Freed:
    """Delete those of ``candidates`` that no job and no study uses any more (the caller commits)."""
    if not candidates:
        return Freed()
    users = (
        Job.input_image_id,
        Job.reference_image_id,
        Job.result_image_id,
        StudyPhoto.image_id,
        StudyPhoto.gray_image_id,
        Stimulus.source_image_id,
        Stimulus.display_image_id,
    )
    used: set[str] = set()
    for column in users:
        used.update(session.scalars(select(column).where(column.in_(candidates))))
    unused = sorted(candidates - used)
    if not unused:
        return Freed()
    lengths = [func.coalesce(func.length(c), 0) for c in (Image.data, Image.gray_png, Image.color_png)]
    total = lengths[0] + lengths[1] + lengths[2] + func.coalesce(func.length(Image.thumb_jpeg), 0)
    size = session.scalar(select(func.sum(total)).where(Image.id.in_(unused)))
    deleted = session.execute(delete(Image).where(Image.id.in_(unused)))  # those still there are counted
    return Freed(images=rowcount(deleted), bytes=int(size or 0))
