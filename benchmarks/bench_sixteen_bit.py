"""What a 16-bit scan's result costs against an 8-bit one of the same photo.

1. The stored result: a scan's colorization as the worker stores it (``encode_png`` with the scan's records:
   600 dpi, EXIF, XMP), 8-bit (Pillow) and 16-bit (``backend.png16``), seconds (best of 3) and size; and
   reading it back as the JPEG download (``png_to_jpeg``), which every zip and thumbnail path shares.
2. The worker: one job's path (decode the stored scan, its L, ``unet-bins``' ``predict_ab``, compose, PNG) for
   the same scan stored as an 8-bit and as a 16-bit gray PNG, seconds and peak RSS above the loaded model,
   by ``bench_large_photos``' method (a fresh process per case, ``VmHWM`` reset through
   ``/proc/self/clear_refs``).

Scans: a real ImageNet photo's gray, scaled up in float (smooth, as a scan of a print is) to a 3:2 size,
with or without sensor-like noise (Gaussian, in 8-bit levels; ×257 in 16-bit ones); the 8-bit scan is the
16-bit one rounded to 8 bits. Part 1's colours are a fixed smooth ab field (a net's are smooth too: it
predicts them at a small working size).

    .venv/bin/python benchmarks/bench_sixteen_bit.py [--encode-mp 12] [--noise 0,2] [--worker-mp 12,40]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

PHOTOS = ROOT.parent / "shared" / "data" / "imagenet-samples"


def scan_levels(megapixels: float, noise: float, index: int = 0) -> np.ndarray:
    """(H, W) uint16 levels of a 3:2 scan of about ``megapixels`` MP (see the module's docstring)."""
    width = round((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 // width)
    source = sorted(PHOTOS.glob("*.jpg"))[index]
    gray = Image.open(source).convert("L")
    big = np.asarray(Image.fromarray(np.asarray(gray, np.float32)).resize((width, height), Image.BILINEAR))
    levels = np.empty((height, width), np.uint16)
    rng = np.random.default_rng(index)
    for top in range(0, height, 512):  # in bands: a 40 MP float64 noise plane would be 320 MB
        band = big[top : top + 512] * np.float32(257)
        if noise:
            band += rng.normal(0, noise * 257, band.shape).astype(np.float32)
        levels[top : top + 512] = np.clip(band + np.float32(0.5), 0, 65535).astype(np.uint16)
    return levels


def scan_png(levels: np.ndarray, bits: int) -> bytes:
    """The scan as an archive stores it: a gray PNG of ``bits`` bits, 600 dpi, EXIF and XMP."""
    import io

    from tests.backend.test_photo_metadata import archive_records, scan_xmp
    from worker.colorizers import lab

    info = PngInfo()
    height, width = levels.shape
    info.add_itxt("XML:com.adobe.xmp", scan_xmp("attributes", width, height).decode())
    records = archive_records(turned=False)
    pixels = levels if bits == 16 else lab.to_uint8(levels)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1, dpi=(600, 600), exif=records["exif"],
                                 pnginfo=info)  # fmt: skip
    return buf.getvalue()


def best_of(times: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(times):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def encode_rows(megapixels: float, noise: float) -> list[str]:
    """Part 1's table rows for one scan."""
    from backend.images import decode, encode_png, png_to_jpeg
    from worker.colorizers.pipeline import compose

    levels = scan_levels(megapixels, noise)
    rows, cols = np.meshgrid(np.linspace(-1, 1, 160), np.linspace(-1, 1, 240), indexing="ij")
    ab = np.stack([30 * rows, 40 * np.sin(3 * cols)], axis=-1).astype(np.float32)
    out = []
    for bits in (8, 16):
        decoded = decode(scan_png(levels, bits), max_pixels=10**8)
        assert decoded.bits == bits
        rgb = compose(decoded.lightness(), ab, depth=bits)
        metadata = decoded.metadata
        del decoded
        encode_s, png = best_of(3, lambda rgb=rgb, metadata=metadata: encode_png(rgb, metadata=metadata))
        jpeg_s, jpeg = best_of(3, lambda png=png: png_to_jpeg(png, 90, 10**8))
        height, width = levels.shape
        out.append(
            f"| {width}×{height} ({megapixels:g} MP), noise {noise:g} | {bits}-bit PNG | {encode_s:.2f} s "
            f"| {len(png) / 1e6:.1f} MB | {jpeg_s:.2f} s | {len(jpeg) / 1e6:.1f} MB |"
        )
        del rgb, png
    return out


def worker_rows(megapixels: float, noise: float, folder: Path) -> list[str]:
    """Part 2's table rows: the same scan as an 8-bit and a 16-bit PNG through one job's path."""
    from bench_large_photos import measure

    levels = scan_levels(megapixels, noise)
    files = {}
    for bits in (8, 16):
        files[bits] = folder / f"scan-{megapixels:g}mp-{bits}bit.png"
        files[bits].write_bytes(scan_png(levels, bits))
    del levels
    out = []
    for bits, path in files.items():
        r = measure("unet-bins", {}, [path], None)
        if "error" in r:
            out.append(f"| {megapixels:g} MP, {bits}-bit scan | {r['error']} | | |")
            continue
        out.append(
            f"| {megapixels:g} MP, {bits}-bit scan ({path.stat().st_size / 1e6:.0f} MB file) "
            f"| +{r['peak_mb']:,.0f} MB | {r['job_s']:.1f} s | {r['predict_s']:.1f} s |"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--encode-mp", type=float, default=12, help="megapixels of part 1's scan")
    parser.add_argument("--noise", default="0,2", help="part 1's scans' noise, 8-bit levels, comma-separated")
    parser.add_argument("--worker-mp", default="12,40", help="megapixels of part 2's scans (empty: none)")
    parser.add_argument("--worker-noise", type=float, default=2)
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{stamp}, {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print()
    print("| scan | result | encode | size | JPEG download (decode + encode) | JPEG size |")
    print("|---|---|---:|---:|---:|---:|")
    for noise in (float(n) for n in args.noise.split(",") if n):
        for row in encode_rows(args.encode_mp, noise):
            print(row, flush=True)
    sizes = [float(mp) for mp in args.worker_mp.split(",") if mp]
    if sizes:
        print()
        print(f"unet-bins, noise {args.worker_noise:g}; torch threads = CPUs; one fresh process a case")
        print()
        print("| scan | peak RSS, whole job | whole job | predict_ab |")
        print("|---|---:|---:|---:|")
        with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
            for mp in sizes:
                for row in worker_rows(mp, args.worker_noise, Path(tmp)):
                    print(row, flush=True)


if __name__ == "__main__":
    main()
