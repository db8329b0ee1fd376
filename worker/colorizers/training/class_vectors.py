"""The fusion net's training input: the frozen classifier's class probabilities of every photo, computed once
(as the report did) and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from worker.colorizers.classifier import IMAGENET_CLASSES
from worker.colorizers.datasets import PhotoDataset
from worker.colorizers.lab import rgb_to_lab_torch
from worker.colorizers.nets.fusion import class_probabilities


@torch.no_grad()
def precompute_class_vectors(
    dataset: PhotoDataset, *, cache_dir: Path | None = None, split: str = "train", batch_size: int = 32
) -> torch.Tensor:
    """(len(dataset), 1000) class probabilities of each photo's centre crop (short side = the crop size).

    Cached in ``cache_dir`` under a key made of the photo names and size, so a resumed run reuses them.
    """
    from worker.colorizers.classifier import load_classifier

    key = hashlib.sha256(
        ("\n".join(r.label for r in dataset.refs) + f"|{dataset.size}").encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"fusion-classes-{split}-{key}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        vectors: torch.Tensor = torch.load(cache, weights_only=True)
        return vectors
    classifier = load_classifier("cpu")
    plain = PhotoDataset(dataset.refs, dataset.size, train=False)
    plain._cached = dataset._cached  # share decoded photos
    out = []
    for start in range(0, len(plain), batch_size):
        rgb = torch.stack([plain[i][0] for i in range(start, min(start + batch_size, len(plain)))])
        lightness = rgb_to_lab_torch(rgb)[:, :1]
        out.append(class_probabilities(classifier, lightness))
    vectors = torch.cat(out) if out else torch.zeros(0, IMAGENET_CLASSES)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(vectors, cache)
    return vectors
