"""Speed of the feed-forward colorizers: photos/s at 256×256 (batch 1, 16) and a 1024×768 photo end to end.

End to end = decode the JPEG → L → predict (256×256) → upsample ab, join with full-resolution L, gamut map
(``pipeline.compose``) → encode a full-resolution PNG. Real photos from ../shared/data/imagenet-samples.

    .venv/bin/python benchmarks/bench_feedforward.py [--methods unet-bins,cnn,eccv16-random] [--device cpu]

``eccv16-random`` is Zhang et al.'s ECCV16 architecture on random weights, for speed only (its released
weights are not reachable here); ``unet-bins@256`` serves unet-bins with a 256-pixel short side instead of
its default 160.

Prints a Markdown table (and writes it to benchmarks/results/feedforward_speed.md with --write).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.colorizers import lab  # noqa: E402
from worker.colorizers.loading import Unavailable, get_colorizer  # noqa: E402
from worker.colorizers.nets.colorizer import cpu_bf16_supported  # noqa: E402
from worker.colorizers.pipeline import compose  # noqa: E402

IMAGENET = ROOT.parent / "shared" / "data" / "imagenet-samples"


def _photos(n: int, size: tuple[int, int]) -> list[np.ndarray]:
    paths = sorted(IMAGENET.glob("*.jpg"))[:n]
    return [np.asarray(Image.open(p).convert("RGB").resize(size, Image.Resampling.BICUBIC)) for p in paths]


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def throughput(colorizer, planes: list[np.ndarray], batch: int, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """Photos per second of predict_ab_batch at 256×256 for ``batch`` photos at a time."""
    chunk = planes[:batch]
    colorizer.predict_ab_batch(chunk, params={})  # warm-up
    seconds = _best(lambda: colorizer.predict_ab_batch(chunk, params={}), repeat)
    return len(chunk) / seconds


def end_to_end(colorizer, jpeg: bytes, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Seconds for decode → predict → compose → PNG of one photo, with the stages' share."""
    stages: dict[str, float] = {}

    def run() -> None:
        t0 = time.perf_counter()
        rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
        lightness = lab.rgb_to_lightness(rgb)
        t1 = time.perf_counter()
        ab = colorizer.predict_ab(lightness, reference=None, params={}, progress=None)
        t2 = time.perf_counter()
        out = compose(lightness, ab)
        t3 = time.perf_counter()
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="PNG", compress_level=3)  # as backend.images.encode_png
        t4 = time.perf_counter()
        for key, value in (("decode", t1 - t0), ("predict", t2 - t1), ("compose", t3 - t2), ("png", t4 - t3)):
            stages[key] = min(stages.get(key, 1e9), value)

    run()
    total = _best(run, repeat)
    return {"total": total, **stages}


def _colorizer(name: str, weights_dir: Path, device: str):  # type: ignore[no-untyped-def]
    if name == "eccv16-random":  # speed only: the architecture with random weights, never served
        from worker.colorizers.nets.colorizer import NetColorizer
        from worker.colorizers.nets.eccv16 import ECCV16

        return NetColorizer("eccv16", ECCV16(), device)
    if name.startswith("unet-bins@"):
        from worker.colorizers.nets.unet_bins import UNetBinsColorizer

        served = get_colorizer("unet-bins", weights_dir, device)
        return UNetBinsColorizer(served.net, device, short_side=int(name.split("@")[1]))  # type: ignore[attr-defined]
    return get_colorizer(name, weights_dir, device)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="unet-bins,cnn,fusion,gan,eccv16-random")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--weights-dir", default=os.environ.get("WEIGHTS_DIR", str(ROOT / "var" / "weights")))
    parser.add_argument(
        "--write", action="store_true", help="also write benchmarks/results/feedforward_speed.md"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    planes = [lab.rgb_to_lightness(p) for p in _photos(16, (256, 256))]
    big = (
        Image.open(sorted(IMAGENET.glob("*.jpg"))[1])
        .convert("RGB")
        .resize((1024, 768), Image.Resampling.BICUBIC)
    )
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=92)
    jpeg = buf.getvalue()
    rows = []
    for name in [m.strip() for m in args.methods.split(",") if m.strip()]:
        try:
            colorizer = _colorizer(name, Path(args.weights_dir), args.device)
        except Unavailable as exc:
            rows.append(f"| {name} | unavailable: {exc} | | | |")
            continue
        b1 = throughput(colorizer, planes, 1, args.repeat)
        b16 = throughput(colorizer, planes, 16, args.repeat)
        e2e = end_to_end(colorizer, jpeg, args.repeat)
        stages = ", ".join(f"{k} {v * 1000:.0f}" for k, v in e2e.items() if k != "total")
        rows.append(f"| {name} | {b1:.1f} | {b16:.1f} | {e2e['total']:.2f} | {stages} |")
        print(rows[-1], flush=True)
    header = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}, bf16 autocast {cpu_bf16_supported()}); "
        f"best of {args.repeat}.\n\n"
        "| method | photos/s, 256×256, batch 1 | photos/s, 256×256, batch 16 | 1024×768 end to end (s) "
        "| stages (ms) |\n"
        "|---|---|---|---|---|\n"
    )
    table = header + "\n".join(rows) + "\n"
    print(table)
    if args.write:
        out = ROOT / "benchmarks" / "results" / f"feedforward_speed_{args.device.replace(':', '')}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
