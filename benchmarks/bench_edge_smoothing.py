"""unet-bins' served colours with and without the edge-aware smoothing (a guided filter over the net's ab,
guided by the photo's L; `worker/colorizers/nets/unet_bins.py`, SMOOTH_RADIUS / SMOOTH_EPS).

    .venv/bin/python benchmarks/bench_edge_smoothing.py [--write] [--variants 0,8:0.01,8:0.003]

Scores on both validation sets (every photo with colour in its truth, the delivered full-resolution RGB):
AuC, PSNR, colourfulness, and the colours' roughness where the photo is flat (mean |∇a| + |∇b| where
|∇L| < 1: rainbow patches on one gray sweater are rough, a colour that changes at an edge is not). A
variant is radius:eps; 0 is the net's own ab. With --write: the table to
benchmarks/results/edge_smoothing.md and a contact sheet (gray | the net's own | smoothed as shipped | truth)
to benchmarks/results/edge_smoothing_contact_sheet.jpg.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_unet_bins import _scores, _spread, val_photos  # noqa: E402
from worker.colorizers import lab  # noqa: E402
from worker.colorizers.evaluation.figures import contact_sheet  # noqa: E402
from worker.colorizers.loading import get_colorizer  # noqa: E402
from worker.colorizers.nets.unet_bins import SMOOTH_EPS, SMOOTH_RADIUS, UNetBinsColorizer  # noqa: E402
from worker.colorizers.pipeline import compose, resize_ab  # noqa: E402

OUT = ROOT / "benchmarks" / "results"
EXAMPLES = ROOT.parent / "shared" / "data" / "exemplar-pairs" / "example"


def roughness(plane: np.ndarray, ab: np.ndarray) -> float:
    """Mean colour change between neighbours where the photo itself is flat (|∇L| < 1 L unit per pixel)."""
    flat = np.hypot(*np.gradient(plane)) < 1.0
    step = np.hypot(*np.gradient(ab[..., 0])) + np.hypot(*np.gradient(ab[..., 1]))
    return float(step[flat].mean()) if flat.any() else 0.0


def variant_name(smoothing: tuple[int, float] | None) -> str:
    return "the net's own" if smoothing is None else f"radius {smoothing[0]}, eps {smoothing[1]:g}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="0,4:0.003,8:0.01,8:0.003,12:0.003")
    parser.add_argument("--limit", type=int, default=0, help="colour-photos val photos (0: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    served = get_colorizer("unet-bins", ROOT / "var" / "weights", "cpu")
    net = served.net  # type: ignore[attr-defined]
    variants: list[tuple[int, float] | None] = []
    for item in args.variants.split(","):
        radius, _, eps = item.partition(":")
        variants.append(None if int(radius) == 0 else (int(radius), float(eps or SMOOTH_EPS)))
    colorizers = [UNetBinsColorizer(net, "cpu", smoothing=v) for v in variants]
    sets = {
        "imagenet-samples val": val_photos("imagenet-samples", None),
        "colour-photos val": val_photos("colour-photos", args.limit or None),
    }
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, torch {torch.__version__}); `benchmarks/bench_edge_smoothing.py`. "
        f"Shipped: radius {SMOOTH_RADIUS}, eps {SMOOTH_EPS:g} (at the net's input size, L scaled to 0-1).",
        "",
        "| data | photos | variant | AuC | PSNR (dB) | colourfulness (truth) | roughness in flat areas |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for label, photos in sets.items():
        truth_cf = np.mean([_scores(rgb, rgb)[2] for _, rgb in photos])
        for smoothing, colorizer in zip(variants, colorizers, strict=True):
            rows = []
            for _, rgb in photos:
                plane = lab.rgb_to_lightness(rgb)
                ab = resize_ab(colorizer.predict_ab(plane, params={}), *plane.shape)
                rows.append((*_scores(rgb, compose(plane, ab)), roughness(plane, ab)))
            m = np.array(rows).mean(0)
            lines.append(
                f"| {label} | {len(photos)} | {variant_name(smoothing)} | {m[0]:.4f} | {m[1]:.2f} "
                f"| {m[2]:.1f} ({truth_cf:.1f}) | {m[3]:.2f} |"
            )
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.write:
        return
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "edge_smoothing.md").write_text(text, encoding="utf-8")
    raw, shipped = UNetBinsColorizer(net, "cpu", smoothing=None), served
    sheet: list[tuple[str, np.ndarray, bool]] = [
        (p.name, np.asarray(Image.open(p).convert("RGB")), False) for p in sorted(EXAMPLES.glob("in*"))
    ]
    sheet += [(n, rgb, True) for n, rgb in _spread(sets["colour-photos val"], 10)]
    sheet += [(n, rgb, True) for n, rgb in _spread(sets["imagenet-samples val"], 4)]
    rows_img, labels = [], []
    for name, rgb, has_truth in sheet:
        plane = lab.rgb_to_lightness(rgb)
        gray = np.repeat(lab.lightness_to_gray_uint8(plane)[..., None], 3, axis=-1)
        outs = [compose(plane, c.predict_ab(plane, params={})) for c in (raw, shipped)]
        rows_img.append([gray, *outs, rgb if has_truth else None])
        labels.append(name[:28])
    png = OUT / "edge_smoothing_contact_sheet.png"
    columns = ["gray", "the net's own", "smoothed (shipped)", "truth"]
    contact_sheet(rows_img, columns, png, row_labels=labels, cell=192)
    Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=88)
    png.unlink()


if __name__ == "__main__":
    main()
