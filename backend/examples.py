"""Reference images a user can reuse for the exemplar method: their own earlier uploads and bundled examples.

Example files are listed from ``EXAMPLES_DIR`` once; a request names an example only by its opaque id
(``ex-`` + a hash of the file name), never by a path.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, undefer

from backend.config import Settings
from backend.errors import UserError
from backend.images import decode
from backend.models import Image, Job, is_valid_id
from backend.stored_images import Upload, store_image

_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MAX_EXAMPLES = 12
MAX_OWN = 24  # a browser's own colour uploads offered as references, the most recently used


@lru_cache
def _examples(directory: str) -> dict[str, Path]:
    root = Path(directory)
    if not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        # Colour references only (exemplar-pairs names them refN.*).
        if path.suffix.lower() in _SUFFIXES and path.stem.lower().startswith("ref") and path.is_file():
            key = "ex-" + hashlib.sha256(str(path.relative_to(root)).encode()).hexdigest()[:16]
            found[key] = path
        if len(found) >= MAX_EXAMPLES:
            break
    return found


@lru_cache
def _example_hashes(directory: str) -> frozenset[str]:
    return frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in _examples(directory).values())


def list_references(session: Session, settings: Settings, client: str | None) -> list[dict[str, str]]:
    """This browser's colour uploads (photos and references), the most recently used first, each named as
    this browser last named the file (identical uploads by others share the stored image, never their
    names); then the bundled examples (an example picked as a reference is listed once, as the example)."""
    out: list[dict[str, str]] = []
    examples_dir = str(settings.examples_dir.resolve())
    if client:
        last_used = func.max(Job.created_at).label("last_used")
        rows = session.execute(
            select(Image.id, Image.sha256, last_used)
            .join(Job, or_(Job.input_image_id == Image.id, Job.reference_image_id == Image.id))
            .where(Job.client == client, Image.is_color.is_(True))
            .group_by(Image.id, Image.sha256)
            .order_by(last_used.desc(), Image.id)
            .limit(MAX_OWN + MAX_EXAMPLES)  # room for the examples skipped below
        ).all()
        ids = [r.id for r in rows if r.sha256 not in _example_hashes(examples_dir)][:MAX_OWN]
        names: dict[str, str] = {}
        for photo_id, reference_id, photo_name, reference_name in session.execute(
            select(Job.input_image_id, Job.reference_image_id, Job.source_name, Job.reference_name)
            .where(Job.client == client, or_(Job.input_image_id.in_(ids), Job.reference_image_id.in_(ids)))
            .order_by(Job.created_at.desc(), Job.id)
        ):
            if photo_id in ids and photo_name:
                names.setdefault(photo_id, photo_name)
            if reference_id is not None and reference_id in ids and reference_name:
                names.setdefault(reference_id, reference_name)
        out += [
            {
                "id": image_id,
                "url": f"/references/{image_id}.png",
                "label": names.get(image_id, "your upload"),
                "source": "upload",
            }
            for image_id in ids
        ]
    # Numbered, not named after the data folders ("examplar-based · ref1" tells a person nothing).
    for number, key in enumerate(_examples(examples_dir), start=1):
        out.append(
            {"id": key, "url": f"/references/{key}.png", "label": f"Example {number}", "source": "example"}
        )
    return out


def resolve_reference(session: Session, settings: Settings, ref_id: str, client: str | None) -> Image | None:
    """The stored image for a reference id the caller may use (its own upload, or an example)."""
    if ref_id.startswith("ex-"):
        path = _examples(str(settings.examples_dir.resolve())).get(ref_id)
        if path is None:
            return None
        data = path.read_bytes()
        try:
            decoded = decode(data, max_pixels=settings.max_pixels)
        except UserError:
            return None
        return store_image(session, Upload(data=data, decoded=decoded, filename=path.name))
    if not client or not is_valid_id(ref_id):
        return None
    owned = session.scalars(
        select(Image)
        .join(Job, or_(Job.input_image_id == Image.id, Job.reference_image_id == Image.id))
        .where(Image.id == ref_id, Job.client == client)
        .options(undefer(Image.data))
        .limit(1)
    ).first()
    return owned
