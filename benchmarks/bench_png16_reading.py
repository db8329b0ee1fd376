"""Reading 16-bit RGB PNGs (``backend.png16.read_rgb16``, the reader every stored 16-bit result and every
uploaded 16-bit RGB PNG goes through) against the previous reader, run side by side in one process.

Files, all the same pixels' worth (a smooth colour gradient with noise, as a result of a scan is):
- ours: as ``encode_png`` writes it (1 MB IDAT chunks, Sub/Up rows);
- another program's: the same data in IDAT chunks of 8 KB (libpng's default) and of 1 KB;
- a tall, narrow image (1 px wide: a band of a million rows, each row its own filter);
- a hostile upload: 40 MP of zeros cut into 1-byte IDAT chunks (3 MB, accepted by the upload checks).

The baseline is ``backend/png16.py`` at ``--baseline`` (git), loaded as a module of its own; each figure is
the best of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_png16_reading.py [--baseline 6aeb223] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend import png16  # noqa: E402
from backend.images import encode_png  # noqa: E402


def baseline_module(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:backend/png16.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "png16_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("png16_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rechunked(data: bytes, size: int) -> bytes:
    """``data`` with its image data cut into IDAT chunks of ``size`` bytes."""
    stream = b"".join(body for kind, body in png16.chunks(data) if kind == b"IDAT")
    head = data[: data.index(b"IDAT") - 4]
    parts = [png16.chunk(b"IDAT", stream[at : at + size]) for at in range(0, len(stream), size)]
    return head + b"".join(parts) + png16.chunk(b"IEND", b"")


def zeros_png(width: int, height: int, idat_size: int) -> bytes:
    rows = zlib.compress(bytes((1 + width * 6) * height), 9)
    header = png16.chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
    parts = [png16.chunk(b"IDAT", rows[at : at + idat_size]) for at in range(0, len(rows), idat_size)]
    return png16.SIGNATURE + header + b"".join(parts) + png16.chunk(b"IEND", b"")


def gradient(height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width, y / height, (x + y) / (width + height)], axis=-1) * 60000 + 2000
    return np.clip(base + rng.normal(0, 300, base.shape), 0, 65535).astype(np.uint16)


def best(read: Callable[[bytes], object], data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        read(data)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default="6aeb223", help="git revision of the previous reader")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mp", type=float, default=6.0, help="megapixels of the gradient files")
    args = parser.parse_args()
    old = baseline_module(args.baseline)
    width = round((args.mp * 1e6 * 1.5) ** 0.5)
    ours = encode_png(gradient(int(args.mp * 1e6 // width), width))
    cases = {
        f"ours, {args.mp:g} MP": ours,
        f"8 KB IDAT chunks, {args.mp:g} MP": rechunked(ours, 8192),
        f"1 KB IDAT chunks, {args.mp:g} MP": rechunked(ours, 1024),
        "1 × 1,000,000 (tall, narrow)": encode_png(gradient(1_000_000, 1)),
        "40 MP of zeros in 1-byte IDAT chunks": zeros_png(8000, 5000, 1),
    }
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {platform.processor() or 'cpu'}")
    print("| file | size | baseline (s) | now (s) | baseline / now |")
    print("|---|---:|---:|---:|---:|")
    for name, data in cases.items():
        assert np.array_equal(png16.read_rgb16(data), old.read_rgb16(data))
        before = best(old.read_rgb16, data, args.repeat)
        now = best(png16.read_rgb16, data, args.repeat)
        print(f"| {name} | {len(data) / 1e6:.1f} MB | {before:.2f} | {now:.2f} | {before / now:.1f}× |")


if __name__ == "__main__":
    main()
