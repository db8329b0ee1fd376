"""Which photos an evaluation scores, and the reference image each one gets.

Data: a folder of images (``split="val"``: the validation photos of
:func:`worker.colorizers.datasets.split_paths`, i.e. the classes held out from training for imagenet-samples),
or a zip file (its ``test/`` entries). Photos whose ground truth is grayscale (99 % of pixels with chroma
below 2 Lab units) are skipped, as Zhang et al. 2016 removed grayscale images from their test set.
``limit`` keeps N photos spread evenly over the sorted list (every len/N-th one), so a limit on a
class-ordered set still covers every class.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from worker.colorizers.evaluation import EvaluationError

if TYPE_CHECKING:
    from worker.colorizers.datasets import ImageReader, ImageRef

GRAYSCALE_CHROMA = 2.0  # Lab units
GRAYSCALE_SHARE = 99.0  # percentile
REFERENCE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
_LABEL_RE = re.compile(r"^(\d{1,4})_n\d{8}_")
Item = TypeVar("Item")


@dataclass(frozen=True)
class Photo:
    key: str  # stable id in the CSV: path relative to the data folder, or the zip member name
    ref: ImageRef
    label: int | None  # ImageNet class index from "<idx>_<wnid>_<label>.jpg", else None


def imagenet_label(name: str) -> int | None:
    """Class index from an imagenet-samples file name ``<idx>_<wnid>_<label>.jpg``; None otherwise."""
    match = _LABEL_RE.match(Path(name).name)
    return int(match.group(1)) if match else None


def spread(items: Sequence[Item], limit: int | None) -> list[Item]:
    """``limit`` items spread evenly over ``items`` (all of them when limit is None or ≥ len)."""
    n = len(items)
    if limit is None or limit >= n:
        return list(items)
    if limit <= 0:
        return []
    return [items[(i * n) // limit] for i in range(limit)]


def select_photos(data: Path, split: str = "all", limit: int | None = None) -> list[Photo]:
    """The photos to evaluate (see the module docstring), sorted by key, then spread to ``limit``."""
    from worker.colorizers import datasets

    data = Path(data)
    if split not in ("val", "all"):
        raise EvaluationError(f"split must be 'val' or 'all', got {split!r}")
    try:
        if data.is_file():
            refs = [r for r in datasets.list_images(data) if Path(r.name).parts[0].lower() == "test"]
        elif split == "val":
            refs = datasets.split_paths(data).val
        else:
            refs = datasets.list_images(data)
    except (FileNotFoundError, datasets.UnreadableFolder) as exc:  # none left out unsaid: they skew scores
        raise EvaluationError(str(exc)) from exc
    photos = []
    for ref in refs:
        key = ref.name if ref.archive is not None else Path(ref.name).relative_to(data).as_posix()
        photos.append(Photo(key=key, ref=ref, label=imagenet_label(key)))
    photos.sort(key=lambda p: p.key)
    if not photos:
        raise EvaluationError(f"no images to evaluate in {data} (split {split!r})")
    return spread(photos, limit)


def photo_rgb(reader: ImageReader, photo: Photo) -> np.ndarray:
    """The photo as RGB uint8 (H, W, 3)."""
    return np.ascontiguousarray(reader.read(photo.ref), dtype=np.uint8)


def is_grayscale(true_ab: np.ndarray) -> bool:
    """True when 99 % of the pixels have chroma sqrt(a² + b²) below 2 Lab units."""
    chroma = np.hypot(true_ab[..., 0], true_ab[..., 1])
    return bool(np.percentile(chroma, GRAYSCALE_SHARE) < GRAYSCALE_CHROMA)


def find_reference(references: Path | None, key: str) -> Path | None:
    """The reference photo for ``key``: same file name, else same stem with any image suffix."""
    if references is None:
        return None
    name = Path(key).name
    exact = references / name
    if exact.is_file():
        return exact
    stem = Path(key).stem
    for candidate in sorted(references.glob(f"{stem}.*")):
        if candidate.suffix.lower() in REFERENCE_SUFFIXES:
            return candidate
    return None
