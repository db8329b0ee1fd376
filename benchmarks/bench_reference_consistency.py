"""Does one reference give related photos consistent colours (issue 12: "the same reference applied to a
folder or batch gives consistent colours across the photos")?

Related photos are made from each target of ``reference_pairs.csv``: three overlapping views of it (crops of
80 % of its width and height, at its top left, centre and bottom right: the same scene framed three ways, as
in a series shot from one spot). Each view is colorized on its own from its gray L by ``unet-bins`` and by
``unet-bins-reference`` (default, and ``follow_reference`` 1) with the pair's reference, the same for the
three views. The scene's middle (60 % of the photo's width and height) is in every view, so its colours can be
compared point by point:

- **flicker**: the mean ab distance (Lab units) between two views' colours of the same scene point, over the
  middle and the three pairs of views. 0: a thing keeps its colour whatever the framing (the truth's flicker
  is 0, gray's too, trivially);
- **flicker / chroma**: the mean flicker over the results' mean chroma there, since a paler result flickers
  less for that reason alone;
- mean AuC of the views against their true colours, and colourfulness (the truth's beside).

    .venv/bin/python benchmarks/bench_reference_consistency.py \\
        --sheet benchmarks/results/reference_consistency.jpg
"""

from __future__ import annotations

import argparse
import csv
import itertools
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.colorizers import lab as labmod  # noqa: E402
from worker.colorizers import metrics  # noqa: E402
from worker.colorizers.evaluation.figures import contact_sheet  # noqa: E402
from worker.colorizers.loading import get_colorizer  # noqa: E402
from worker.colorizers.pipeline import compose  # noqa: E402

VIEW = 0.8  # each view's share of the photo's width and height
CORNERS = ((0.0, 0.0), (0.1, 0.1), (0.2, 0.2))  # top left of each view, as shares of the photo
METHODS: dict[str, tuple[str, dict, bool]] = {  # name: (method, params, uses the reference)
    "unet-bins": ("unet-bins", {}, False),
    "unet-bins-reference": ("unet-bins-reference", {}, True),
    "unet-bins-reference, follow 1": ("unet-bins-reference", {"follow_reference": 1.0}, True),
}


def views(rgb: np.ndarray) -> tuple[list[np.ndarray], list[tuple[slice, slice]]]:
    """The three views of a photo and, for each, where the photo's middle (in every view) lies in it."""
    height, width = rgb.shape[:2]
    h, w = round(VIEW * height), round(VIEW * width)
    top, left = round(0.2 * height), round(0.2 * width)  # the middle: rows top..height-top, columns alike
    crops, middles = [], []
    for fy, fx in CORNERS:
        y, x = round(fy * height), round(fx * width)
        crops.append(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
        middles.append((slice(top - y, height - top - y), slice(left - x, width - left - x)))
    return crops, middles


def flicker(middles_ab: list[np.ndarray]) -> tuple[float, float]:
    """(mean ab distance between views at the same scene point, mean chroma there) over the view pairs."""
    distances = [
        float(np.linalg.norm(a - b, axis=-1).mean()) for a, b in itertools.combinations(middles_ab, 2)
    ]
    chroma = float(np.mean([np.linalg.norm(ab, axis=-1).mean() for ab in middles_ab]))
    return float(np.mean(distances)), chroma


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=Path, default=ROOT / "benchmarks" / "reference_pairs.csv")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "var" / "weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sheet", type=Path, default=None, help="a contact sheet of --sheet-pairs (JPEG)")
    parser.add_argument("--sheet-pairs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    colorizers = {
        name: get_colorizer(method, args.weights_dir, "cpu") for name, (method, _, _) in METHODS.items()
    }
    pairs = list(csv.DictReader(args.pairs.open()))
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in METHODS}
    aucs: dict[str, list[float]] = {name: [] for name in METHODS}
    colourful: dict[str, list[float]] = {name: [] for name in [*METHODS, "truth"]}
    sheet_rows: list[list[np.ndarray]] = []
    for i, pair in enumerate(pairs):
        reference = load_rgb(args.data / pair["reference"])
        crops, middles = views(load_rgb(args.data / pair["target"]))
        labs = [labmod.rgb_to_lab(crop) for crop in crops]
        colourful["truth"] += [metrics.colourfulness(crop) for crop in crops]
        row = [reference]
        for name, (_, params, guided) in METHODS.items():
            middles_ab = []
            for crop_lab, middle in zip(labs, middles, strict=True):
                lightness = crop_lab[..., 0].astype(np.float32)
                ab = colorizers[name].predict_ab(
                    lightness, reference=reference if guided else None, params=params, progress=None
                )
                rgb = compose(lightness, ab)
                result_ab = labmod.rgb_to_lab(rgb)[..., 1:]
                middles_ab.append(result_ab[middle])
                aucs[name].append(metrics.raw_accuracy_auc(result_ab, crop_lab[..., 1:]))
                colourful[name].append(metrics.colourfulness(rgb))
                if name in ("unet-bins", "unet-bins-reference"):
                    row.append(rgb)
            scores[name].append(flicker(middles_ab))
        if len(sheet_rows) < args.sheet_pairs:
            sheet_rows.append([*row, *crops])
        print(f"{i + 1}/{len(pairs)} {pair['group']}: " + "; ".join(
            f"{name} {scores[name][-1][0]:.2f}" for name in METHODS
        ), flush=True)  # fmt: skip
    truth = np.mean(colourful["truth"])
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {args.threads} thread(s), "
          f"{len(pairs)} targets × 3 views, each pair's reference for its target's views\n")  # fmt: skip
    print(
        f"| method | flicker (Lab units) | flicker / chroma | mean AuC | colourfulness (truth {truth:.1f}) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name in METHODS:
        distance, chroma = np.mean(scores[name], axis=0)
        ratio = distance / max(chroma, 1e-6)
        auc, colour = np.mean(aucs[name]), np.mean(colourful[name])
        print(f"| {name} | {distance:.2f} | {ratio:.3f} | {auc:.4f} | {colour:.1f} |")
    if args.sheet and sheet_rows:
        columns = ["reference", *(f"unet-bins {k}" for k in (1, 2, 3))]
        columns += [f"+ reference {k}" for k in (1, 2, 3)]
        columns += [f"truth {k}" for k in (1, 2, 3)]
        png = args.sheet.with_suffix(".png")
        labels = [pairs[k]["group"] for k in range(len(sheet_rows))]
        contact_sheet(sheet_rows, columns, png, row_labels=labels, cell=150)
        Image.open(png).convert("RGB").save(args.sheet, quality=85)
        png.unlink()
        print(f"-> {args.sheet}")


if __name__ == "__main__":
    main()
