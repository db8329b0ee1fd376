"""A decoded-once cache of training photos: one uint8 array (N, S, S, 3) on disk, memory-mapped.

Decoding 20,000 JPEGs every epoch would take most of a 2-core CPU; instead each photo is decoded once
(in a process pool), its short side resized to S and the centre S×S square kept, and the array saved as
``<dir>/<key>.npy`` beside ``<key>.txt`` (the photos' names, one per line). The key is a hash of the names,
file sizes and S, so a changed data set builds a new cache. Random crops and flips happen later, batched
in torch (:mod:`worker.colorizers.training.unet_bins_trainer`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from worker.colorizers.datasets import ImageReader, ImageRef


def _centre_square(rgb: np.ndarray, size: int) -> np.ndarray:
    img = Image.fromarray(rgb)
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.Resampling.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8)


def _decode_chunk(args: tuple[list[ImageRef], int]) -> np.ndarray:
    refs, size = args
    reader = ImageReader()
    return np.stack([_centre_square(reader.read(ref), size) for ref in refs])


def cache_key(refs: Sequence[ImageRef], size: int) -> str:
    digest = hashlib.sha256(f"size={size}".encode())
    for ref in refs:
        stat_size = os.path.getsize(ref.name) if ref.archive is None else 0
        digest.update(f"{ref.label}|{stat_size}\n".encode())
    return digest.hexdigest()[:16]


def load_or_build(refs: Sequence[ImageRef], size: int, cache_dir: Path, workers: int = 2) -> np.ndarray:
    """The (N, size, size, 3) uint8 array of ``refs`` (memory-mapped), building it on first use."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(refs, size)
    path = cache_dir / f"{key}.npy"
    if not path.is_file():
        chunks = [list(refs[i : i + 256]) for i in range(0, len(refs), 256)]
        out = np.lib.format.open_memmap(
            cache_dir / f".{key}.npy.tmp", mode="w+", dtype=np.uint8, shape=(len(refs), size, size, 3)
        )
        start = 0
        with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
            for block in pool.map(_decode_chunk, [(c, size) for c in chunks]):
                out[start : start + len(block)] = block
                start += len(block)
        out.flush()
        del out
        os.replace(cache_dir / f".{key}.npy.tmp", path)
        (cache_dir / f"{key}.txt").write_text("\n".join(r.label for r in refs) + "\n", encoding="utf-8")
    return np.load(path, mmap_mode="r")
