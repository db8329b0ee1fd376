"""unet-bins quality beyond `colorlab evaluate`: the contact sheet, colour hints, and the serving size.

    .venv/bin/python benchmarks/bench_unet_bins.py [--write] [--hints-photos 300] [--sizes 128,160,224,256]

- Contact sheet: 32 validation photos of colour-photos (spread over its sources) and imagenet-samples,
  gray | unet-bins at vividness 0.5 | at 0.85 | truth -> benchmarks/results/unet_bins_contact_sheet.jpg.
- Hints: 10 true-colour hints per photo (the mean colour of a 5×5 patch of the truth at a random place,
  seeded), AuC and PSNR against gray and the hint-free prediction, on both validation sets.
- Serving size: AuC / PSNR / colourfulness of the held-out imagenet-samples photos (larger than 128 px)
  at several short sides of the net's input (the default is SERVE_SHORT_SIDE).
Every figure is on the delivered full-resolution RGB (as `colorlab evaluate` does); photos whose truth is
gray are left out. With --write, the tables go to benchmarks/results/unet_bins_quality.md.
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

from worker.colorizers import lab  # noqa: E402
from worker.colorizers.datasets import split_paths  # noqa: E402
from worker.colorizers.evaluation.figures import contact_sheet  # noqa: E402
from worker.colorizers.hints import parse_hints  # noqa: E402
from worker.colorizers.loading import get_colorizer  # noqa: E402
from worker.colorizers.metrics import colourfulness, psnr, raw_accuracy_auc  # noqa: E402
from worker.colorizers.nets.unet_bins import SERVE_SHORT_SIDE, UNetBinsColorizer  # noqa: E402
from worker.colorizers.pipeline import compose  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "benchmarks" / "results"


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def _load(ref) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    rgb = np.asarray(Image.open(ref.name).convert("RGB"))
    chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(rgb[::4, ::4])[..., 1:], -1, 0)).mean()
    return rgb if chroma > 2.0 else None  # grayscale truth: left out


def _scores(rgb: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    auc = raw_accuracy_auc(lab.rgb_to_lab(out)[..., 1:], lab.rgb_to_lab(rgb)[..., 1:])
    return auc, psnr(out, rgb), colourfulness(out)


def _true_hints(rgb: np.ndarray, rng: np.random.Generator, count: int = 10) -> list[dict]:
    h, w, _ = rgb.shape
    hints = []
    for _ in range(count):
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        patch = rgb[max(0, y - 2) : y + 3, max(0, x - 2) : x + 3].reshape(-1, 3).mean(0).round().astype(int)
        hints.append({"x": x / w, "y": y / h, "color": "#" + "".join(f"{v:02x}" for v in patch)})
    return hints


def val_photos(name: str, limit: int | None) -> list[tuple[str, np.ndarray]]:
    source = DATA / name
    refs = sorted(split_paths(source).val, key=lambda r: r.name)
    photos = []
    for ref in _spread(refs, limit) if limit else refs:
        rgb = _load(ref)
        if rgb is not None:
            photos.append((Path(ref.name).relative_to(source).as_posix(), rgb))
    return photos


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hints-photos", type=int, default=300, help="colour-photos/val photos for hints")
    parser.add_argument("--sizes", default="128,160,224,256")
    parser.add_argument("--vividness", default="0.3,0.4,0.5,0.6,0.7", help="vividness values to sweep")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    served = get_colorizer("unet-bins", ROOT / "var" / "weights", "cpu")
    lines = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, torch {torch.__version__}), "
        "weights `worker/colorizers/weights/unet-bins.pt`; "
        "`benchmarks/bench_unet_bins.py`.",
        "",
    ]
    imagenet = val_photos("imagenet-samples", None)
    colour = val_photos("colour-photos", args.hints_photos)

    # contact sheet: 24 colour-photos + 8 imagenet validation photos
    sheet_photos = _spread(colour, 24) + _spread(imagenet, 8)
    rows, labels = [], []
    for name, rgb in sheet_photos:
        plane = lab.rgb_to_lightness(rgb)
        gray = np.repeat(lab.lightness_to_gray_uint8(plane)[..., None], 3, axis=-1)
        outs = [compose(plane, served.predict_ab(plane, params={"vividness": v})) for v in (0.5, 0.85)]
        rows.append([gray, *outs, rgb])
        labels.append(name[:28])
    if args.write:
        OUT.mkdir(parents=True, exist_ok=True)
        png = OUT / "unet_bins_contact_sheet.png"
        contact_sheet(rows, ["gray", "vividness 0.5", "vividness 0.85", "truth"], png, row_labels=labels)
        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=88)
        png.unlink()

    # hints
    lines += [
        "### Colour hints: 10 true-colour hints per photo at random places",
        "",
        "| data | photos | AuC gray | AuC no hints | AuC 10 hints "
        "| PSNR gray | PSNR no hints | PSNR 10 hints |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, photos in (("imagenet-samples val", imagenet), (f"colour-photos val ({len(colour)})", colour)):
        rng = np.random.default_rng(0)
        sums = np.zeros(6)
        for _, rgb in photos:
            plane = lab.rgb_to_lightness(rgb)
            gray_out = compose(plane, np.zeros((*plane.shape, 2), np.float32))
            plain = compose(plane, served.predict_ab(plane, params={}))

            hinted = compose(
                plane, served.predict_ab(plane, params={"hints": parse_hints(_true_hints(rgb, rng))})
            )
            g, p, h = _scores(rgb, gray_out), _scores(rgb, plain), _scores(rgb, hinted)
            sums += [g[0], p[0], h[0], g[1], p[1], h[1]]
        m = sums / max(len(photos), 1)
        lines.append(
            f"| {label} | {len(photos)} | {m[0]:.4f} | {m[1]:.4f} | {m[2]:.4f} "
            f"| {m[3]:.2f} | {m[4]:.2f} | {m[5]:.2f} |"
        )
        print(lines[-1], flush=True)

    # serving size
    lines += [
        "",
        f"### Serving size (imagenet-samples val, {len(imagenet)} photos; default {SERVE_SHORT_SIDE})",
        "",
        "| short side | AuC | PSNR | colourfulness (truth "
        + f"{np.mean([colourfulness(r) for _, r in imagenet]):.1f}) |",
        "|---:|---:|---:|---:|",
    ]
    for size in [int(s) for s in args.sizes.split(",")]:
        colorizer = UNetBinsColorizer(served.net, "cpu", short_side=size)  # type: ignore[attr-defined]
        scores = np.array(
            [
                _scores(rgb, compose(p := lab.rgb_to_lightness(rgb), colorizer.predict_ab(p, params={})))
                for _, rgb in imagenet
            ]
        ).mean(0)
        lines.append(f"| {size} | {scores[0]:.4f} | {scores[1]:.2f} | {scores[2]:.1f} |")
        print(lines[-1], flush=True)
    # vividness (the annealed mean's temperature): the trade-off between colourfulness and AuC / PSNR
    lines += [
        "",
        f"### Vividness (imagenet-samples val {len(imagenet)}, colour-photos val {len(colour)})",
        "",
        "| vividness | T | AuC (imagenet / colour-photos) | PSNR | colourfulness |",
        "|---:|---:|---|---|---|",
    ]
    from worker.colorizers.nets.unet_bins import vividness_to_temperature

    for v in [float(x) for x in args.vividness.split(",")]:
        cells = []
        for photos in (imagenet, colour):
            rows_v = []
            for _, rgb in photos:
                plane = lab.rgb_to_lightness(rgb)
                rows_v.append(_scores(rgb, compose(plane, served.predict_ab(plane, params={"vividness": v}))))
            cells.append(np.array(rows_v).mean(0))
        lines.append(
            f"| {v:.2f} | {vividness_to_temperature(v):.3f} | {cells[0][0]:.4f} / {cells[1][0]:.4f} "
            f"| {cells[0][1]:.2f} / {cells[1][1]:.2f} | {cells[0][2]:.1f} / {cells[1][2]:.1f} |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        (OUT / "unet_bins_quality.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
