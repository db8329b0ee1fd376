"""What colour management and metadata cost when an upload is read (``backend.images.decode``).

A 12 MP photo (4000×3000 JPEG, quality 90) is decoded as the web process decodes every upload, in four
versions of the same pixels, side by side (rounds interleaved, median of each): no embedded profile (the
baseline), an sRGB profile (recognised, not converted), a wide-gamut profile (converted to sRGB with
LittleCMS), and no profile but 600 dpi, an EXIF record and an XMP packet (read and kept for the results).

    .venv/bin/python benchmarks/bench_decode.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backend.images import decode  # noqa: E402
from tests.backend.test_photo_metadata import archive_records, icc_profile  # noqa: E402


def photo() -> np.ndarray:
    """A smooth 4000×3000 photo-like image (random 400×300, upscaled: JPEG sizes like a real photo's)."""
    small = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((4000, 3000), Image.Resampling.BILINEAR))


def jpeg(rgb: np.ndarray, **extra: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90, **extra)  # type: ignore[arg-type]
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rgb = photo()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    versions = {
        "no profile (baseline)": jpeg(rgb),
        "sRGB profile": jpeg(rgb, icc_profile=srgb),
        "wide-gamut profile, converted": jpeg(rgb, icc_profile=icc_profile("Wide RGB", 1.8)),
        "600 dpi + EXIF + XMP, kept": jpeg(rgb, dpi=(600, 600), **archive_records(turned=False)),
    }
    times: dict[str, list[float]] = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, data in versions.items():
            start = time.perf_counter()
            decode(data, max_pixels=10**8)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["no profile (baseline)"])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{stamp}, {platform.machine()}, {args.rounds} rounds, 4000×3000 JPEG")
    print("| version | median decode (ms) | × baseline |\n|---|---:|---:|")
    for name, spent in times.items():
        median = statistics.median(spent)
        print(f"| {name} | {median * 1000:.0f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
