"""The weights manifest (torch-free): every weight file a method may need, where it comes from, and checks.

Weights are never downloaded when a model is constructed. ``colorlab weights fetch`` obtains the
fetchable ones into ``WEIGHTS_DIR``; the small weights we train ourselves are committed under
``worker/colorizers/weights/`` ("bundled"). A method is available only when all its files are present.
"""

from __future__ import annotations

import hashlib
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

    def path(self, weights_dir: Path) -> Path:
        return (BUNDLED_DIR if self.bundled else Path(weights_dir)) / self.filename

    @property
    def fetch_command(self) -> str:
        return f"colorlab weights fetch {self.name}"


# Filled in by the colorizer modules' authors: one entry per file.
MANIFEST: dict[str, WeightFile] = {}


def register(weight: WeightFile) -> WeightFile:
    MANIFEST[weight.name] = weight
    return weight


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def missing_reason(name: str, weights_dir: Path) -> str | None:
    """None when the weight file is present; otherwise why not and how to fix it."""
    weight = MANIFEST.get(name)
    if weight is None:
        return f"weight file {name!r} is not in the manifest"
    path = weight.path(weights_dir)
    if path.is_file():
        return None
    if weight.bundled:
        return (
            f"bundled weights {weight.filename} are missing from the checkout; restore them from git or "
            f"retrain: `colorlab train --arch {weight.name}`"
        )
    if weight.fetchable:
        return f"weights not fetched: run `{weight.fetch_command}`"
    return f"weights {weight.filename} not in {weights_dir} (source: {weight.source}; unreachable from here)"
