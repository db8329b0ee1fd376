"""Training data: photos from a folder or a zip file, random crops and flips, and THE train/validation split.

The split (:func:`split_paths`) is the one place that decides which photos are validation photos; training
never sees them and the quality benchmark evaluates on them:

- files under a top-level ``test/`` or ``val/`` folder (``colour-photos``, CIFAR-10's zip) are the validation
  set, and those under ``train/`` the training set, whatever their names;
- otherwise files named ``<class index>_...`` (``../shared/data/imagenet-samples``): split by class index, so
  validation classes are never trained on (:func:`is_validation_class`);
- otherwise a stable hash of the file name picks one photo in ten.

Items are RGB uint8 tensors (3, S, S); Lab conversion happens batched in torch
(:func:`worker.colorizers.lab.rgb_to_lab_torch`; the nets take L in [0, 100] and return ab in Lab units).
"""

from __future__ import annotations

import io
import random
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from worker.colorizers.folders import UnreadableFolder, files_under

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VALIDATION_MODULUS = 10
VALIDATION_RESIDUE = 7  # classes 7, 17, 27, ... (100 of imagenet-samples' 800 photos)
_CLASS_RE = re.compile(r"^(\d{1,4})_")


@dataclass(frozen=True)
class ImageRef:
    """One photo: a file on disk (``archive`` None) or a member ``name`` of the zip file ``archive``."""

    name: str
    archive: str | None = None

    @property
    def label(self) -> str:
        return self.name if self.archive is None else f"{self.archive}:{self.name}"


@dataclass(frozen=True)
class Split:
    train: list[ImageRef]
    val: list[ImageRef]


def class_index(name: str) -> int | None:
    """ImageNet class index from a file name like ``007_n01514859_hen.jpg``; None if the name has none."""
    match = _CLASS_RE.match(Path(name).name)
    return int(match.group(1)) if match else None


def is_validation_class(index: int) -> bool:
    """True for the ImageNet classes held out for validation (never trained on)."""
    return index % VALIDATION_MODULUS == VALIDATION_RESIDUE


def list_images(source: str | Path) -> list[ImageRef]:
    """Every image file in a folder (recursively) or a zip file, sorted by name; UnreadableFolder when a
    folder under it cannot be listed."""
    source = Path(source)
    if source.is_dir():
        files, unreadable = files_under(source)
        if unreadable:
            raise UnreadableFolder(f"cannot read the folder {'; '.join(unreadable)}")
        return [ImageRef(str(p)) for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if source.is_file() and zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as zf:
            names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_SUFFIXES)
        return [ImageRef(n, str(source)) for n in names]
    raise FileNotFoundError(f"{source}: not a folder or a zip file of images")


# A source's top-level folders that decide a photo's side of the split (the CLI's training refuses the
# held-out ones as --data).
HELD_OUT_FOLDERS = frozenset({"test", "val", "valid", "validation"})
TRAINING_FOLDERS = frozenset({"train", "training"})


def _is_val(ref: ImageRef, root: str) -> bool:
    # A source's own train/ and val/ folders come first: a name that starts with digits and "_" (a camera's,
    # "2019_beach.jpg") in val/ is not trained on for looking like an ImageNet class index
    rel = Path(ref.name).relative_to(root) if ref.archive is None else Path(ref.name)
    top = rel.parts[0].lower() if len(rel.parts) > 1 else ""
    if top in HELD_OUT_FOLDERS:
        return True
    if top in TRAINING_FOLDERS:
        return False
    index = class_index(ref.name)
    if index is not None:
        return is_validation_class(index)
    return zlib.crc32(rel.as_posix().encode()) % VALIDATION_MODULUS == VALIDATION_RESIDUE


def split_paths(source: str | Path) -> Split:
    """THE train/validation split of a folder or zip of photos (rules in the module docstring)."""
    refs = list_images(source)
    root = str(source)
    train: list[ImageRef] = []
    val: list[ImageRef] = []
    for ref in refs:
        (val if _is_val(ref, root) else train).append(ref)
    return Split(train, val)


def split_imagenet_samples(root: str | Path = "../shared/data/imagenet-samples") -> Split:
    """imagenet-samples split by class index: 700 training photos, 100 validation photos."""
    return split_paths(root)


def photo_group(source: str, original_path: str) -> str:
    """The class or scene of a ``colour-photos`` photo, from its MANIFEST.csv row (source and original path):
    ImageNet synset, Flowers-102 class, Caltech-101 category, grocery product, action, pets' cats/dogs,
    CamVid sequence or Yosemite season; faces, facades and street fashion are one scene each."""
    synset = re.search(r"(n\d{8})", original_path)
    parts = original_path.split("/")
    if source in {"imagenette", "imagenet-mini"} and synset:
        return synset.group(1)
    if source in {"flowers102", "caltech101", "grocery", "clothing", "people-actions", "yosemite"}:
        return parts[-2]
    if source == "pets":
        return parts[-2] if parts[-2] in {"cats", "dogs"} else "pets"
    if source == "streets-camvid":
        return parts[-1].split("_")[0]
    return source


def colour_photos_groups(root: str | Path, split: str) -> dict[tuple[str, str], list[str]]:
    """``colour-photos`` files of one split folder (``train`` or ``val``) by (source, :func:`photo_group`),
    as paths relative to ``root``, sorted; from the folder's MANIFEST.csv."""
    import csv

    groups: dict[tuple[str, str], list[str]] = {}
    with (Path(root) / "MANIFEST.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["file"].startswith(f"{split}/"):
                key = (row["source"], photo_group(row["source"], row["path"]))
                groups.setdefault(key, []).append(row["file"])
    return {key: sorted(files) for key, files in sorted(groups.items())}


class ImageReader:
    """Decodes :class:`ImageRef` photos to RGB uint8 arrays, keeping zip files open (one per reader)."""

    def __init__(self) -> None:
        self._zips: dict[str, zipfile.ZipFile] = {}

    def read(self, ref: ImageRef) -> np.ndarray:
        if ref.archive is None:
            with Image.open(ref.name) as img:
                return np.asarray(img.convert("RGB"))
        zf = self._zips.get(ref.archive)
        if zf is None:
            zf = self._zips[ref.archive] = zipfile.ZipFile(ref.archive)
        with Image.open(io.BytesIO(zf.read(ref.name))) as img:
            return np.asarray(img.convert("RGB"))

    def __getstate__(self) -> dict:
        return {"_zips": {}}


def _resize_short(img: Image.Image, short: int) -> Image.Image:
    w, h = img.size
    scale = short / min(w, h)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    return img.resize(size, Image.Resampling.BICUBIC)


class PhotoDataset(torch.utils.data.Dataset):
    """Items ``(crop, index)``: a square RGB crop (3, size, size) uint8 and the photo's index.

    Training (``train=True``): the photo's short side is resized to a random length in
    [size, size * max_zoom], then a random size×size crop, flipped left-right half the time.
    Validation: short side resized to ``size``, centre crop, no flip (deterministic).
    Decoded photos are cached in memory when ``cache`` (the default; fine for a few thousand small photos).
    """

    def __init__(
        self,
        refs: Sequence[ImageRef],
        size: int = 256,
        *,
        train: bool = True,
        max_zoom: float = 1.25,
        cache: bool = True,
    ) -> None:
        self.refs = list(refs)
        self.size = size
        self.train = train
        self.max_zoom = max_zoom
        self.cache = cache
        self._reader = ImageReader()
        self._cached: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def photo(self, index: int) -> np.ndarray:
        """The decoded photo (RGB uint8, original size)."""
        if index in self._cached:
            return self._cached[index]
        try:
            rgb = self._reader.read(self.refs[index])
        except (OSError, ValueError, zipfile.BadZipFile, Image.DecompressionBombError) as exc:
            # a training run stops here, mid-epoch: it says which of thousands of files it was
            raise ValueError(f"{self.refs[index].label}: not a readable image ({exc})") from None
        if self.cache:
            self._cached[index] = rgb
        return rgb

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(self.photo(index))
        size = self.size
        if self.train:
            img = _resize_short(img, random.randint(size, max(size, round(size * self.max_zoom))))
            w, h = img.size
            x, y = random.randint(0, w - size), random.randint(0, h - size)
            img = img.crop((x, y, x + size, y + size))
            if random.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        else:
            img = _resize_short(img, size)
            w, h = img.size
            x, y = (w - size) // 2, (h - size) // 2
            img = img.crop((x, y, x + size, y + size))
        return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).contiguous(), index
