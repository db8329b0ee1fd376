"""Quality of the exemplar colorizer (issue 4 #6): the paper's four optimiser variants (its Fig. 2) and ours.

Quantitative: color ImageNet photos from ../shared/data/imagenet-samples, grayed here (their own L), each
colored from a photo of a neighbouring ImageNet class of the same WordNet family (the sample set holds one
photo per class, so "similar content" means the adjacent class: hen <- cock, house finch <- goldfinch, ...;
see PAIRS). Scores against the real colors, at the photo's own resolution, of the pipeline's output:
the report's eq. 9 accuracy (|Δa|, |Δb| ≤ 0.02 with ab/128, normalised by H·W) and Zhang's raw-accuracy AuC
(share of pixels with L2 ab error ≤ t, t = 0…150, area normalised to 1), both from
worker/colorizers/metrics.py, plus mean chroma. A gray output (a = b = 0) is scored as the floor.

Qualitative: contact sheets of the same runs (Fig. 2 analogue) and of ../shared/data/exemplar-pairs.

Variants: the paper's recipe (RGB image optimised) with SGD or L-BFGS × fixed or decreasing style weight,
and our default ``fast`` mode (a, b optimised with L fixed). Runtime is bounded (small working size, few
iterations, 1 torch thread); the numbers compare variants at equal iterations, not at the paper's 1000.

    .venv/bin/python benchmarks/bench_exemplar_quality.py [--size 128] [--iterations 150]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from worker.colorizers import lab, metrics
from worker.colorizers.method_info import LoadContext, validate_params
from worker.colorizers.methods import exemplar as exemplar_method
from worker.colorizers.pipeline import compose

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
IMAGENET = DATA / "imagenet-samples"
WEIGHTS = ROOT / "var" / "weights"
OUT = ROOT / "benchmarks" / "results"

# (target class index, reference class index): adjacent ImageNet classes of one WordNet family
PAIRS = [(8, 7), (12, 11), (290, 288), (281, 282), (331, 330), (346, 345)]  # --photos takes the first N
VARIANTS = {
    "paper SGD fixed (a)": {"mode": "paper", "optimizer": "sgd", "schedule": "fixed"},
    "paper SGD decreasing (b)": {"mode": "paper", "optimizer": "sgd", "schedule": "decreasing"},
    "paper L-BFGS fixed (c)": {"mode": "paper", "optimizer": "lbfgs", "schedule": "fixed"},
    "paper L-BFGS decreasing (d)": {"mode": "paper", "optimizer": "lbfgs", "schedule": "decreasing"},
    "ours: fast (defaults)": {},
}
EXEMPLAR_SETS = [("example", 1), ("example", 2), ("examplar-based", 1), ("legacy", 2), ("learning-based", 3)]


def imagenet(index: int) -> tuple[str, np.ndarray]:
    path = next(IMAGENET.glob(f"{index:03d}_*.jpg"))
    return path.stem.split("_", 2)[2], np.asarray(Image.open(path).convert("RGB"))


def label(image: np.ndarray, text: str) -> np.ndarray:
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas.width, 12), fill=(0, 0, 0))
    draw.text((2, 0), text, fill=(255, 255, 255))
    return np.asarray(canvas)


def tile(images: list[np.ndarray], height: int) -> np.ndarray:
    resized = [
        np.asarray(Image.fromarray(im).resize((round(im.shape[1] * height / im.shape[0]), height)))
        for im in images
    ]
    gap = np.full((height, 4, 3), 255, np.uint8)
    row = [x for im in resized for x in (im, gap)][:-1]
    return np.concatenate(row, axis=1)


def stack(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate(padded, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--photos", type=int, default=len(PAIRS), help="ImageNet pairs to score (first N)")
    parser.add_argument("--sheet-pairs", type=int, default=len(EXEMPLAR_SETS), help="exemplar pairs to show")
    parser.add_argument("--targets", type=str, default="", help="target class indices, e.g. 8,281")
    parser.add_argument("--tag", type=str, default="", help="suffix of the output file names")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    colorizer = exemplar_method.load(LoadContext(WEIGHTS, "cpu"))
    info = exemplar_method.INFO
    args.out.mkdir(parents=True, exist_ok=True)
    scores: dict[str, dict[str, list[float]]] = {
        v: {"eq9": [], "auc": [], "chroma": [], "s": [], "final_loss": []}
        for v in ["gray (a = b = 0)", *VARIANTS]
    }
    rows = []
    pairs = PAIRS[: args.photos]
    if args.targets:
        pairs = [p for p in PAIRS if str(p[0]) in args.targets.split(",")]
    tag = f"_{args.tag}" if args.tag else ""
    for target_idx, ref_idx in pairs:
        name, rgb = imagenet(target_idx)
        ref_name, ref = imagenet(ref_idx)
        lightness = lab.rgb_to_lightness(rgb)
        true_ab = lab.rgb_to_lab(rgb)[..., 1:]
        gray = compose(lightness, np.zeros((*lightness.shape, 2), np.float32))
        outputs = [label(gray, f"gray {name}"), label(ref, f"ref {ref_name}")]
        for variant, options in [("gray (a = b = 0)", None), *VARIANTS.items()]:
            if options is None:
                out, seconds, final = gray, 0.0, float("nan")
            else:
                params = validate_params(info, {**options, "size": args.size, "iterations": args.iterations})
                start = time.perf_counter()
                ab = colorizer.predict_ab(lightness, reference=ref, params=params, progress=None)
                seconds = time.perf_counter() - start
                final = colorizer.last_result.losses[-1]["total"]
                out = compose(lightness, ab)
                outputs.append(label(out, variant.split(" (")[0] if "(" in variant else variant))
            out_ab = lab.rgb_to_lab(out)[..., 1:]
            s = scores[variant]
            s["eq9"].append(metrics.eq9_accuracy(out_ab, true_ab))
            s["auc"].append(metrics.raw_accuracy_auc(out_ab, true_ab))
            s["chroma"].append(float(np.sqrt((out_ab**2).sum(-1)).mean()))
            s["s"].append(seconds)
            s["final_loss"].append(final)
            print(
                f"{name:>14} {variant:<28} eq9 {s['eq9'][-1]:.3f} auc {s['auc'][-1]:.3f} "
                f"chroma {s['chroma'][-1]:.1f} loss {final:.3g} {seconds:.1f}s",
                flush=True,
            )
        outputs.append(label(rgb, "ground truth"))
        rows.append(tile(outputs, 128))
    Image.fromarray(stack(rows)).save(args.out / f"exemplar_variants_imagenet{tag}.jpg", quality=88)
    true_chroma = [
        float(np.hypot(*lab.rgb_to_lab(imagenet(t)[1])[..., 1:].transpose(2, 0, 1)).mean()) for t, _ in pairs
    ]
    table = {
        v: {k: float(np.mean(x)) for k, x in s.items() if not np.isnan(x).any()} for v, s in scores.items()
    }
    table["ground truth"] = {"chroma": float(np.mean(true_chroma))}
    summary = {
        "size": args.size,
        "iterations": args.iterations,
        "threads": args.threads,
        "pairs": pairs,
        "weights": colorizer.weights_name,
        "mean": table,
    }
    (args.out / f"exemplar_quality{tag}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2), flush=True)

    # qualitative: exemplar pairs (no ground truth), paper L-BFGS decreasing vs ours
    rows = []
    for folder, n in EXEMPLAR_SETS[: args.sheet_pairs]:
        d = DATA / "exemplar-pairs" / folder
        target = np.asarray(Image.open(next(d.glob(f"in{n}.*"))).convert("RGB"))
        ref = np.asarray(Image.open(next(d.glob(f"ref{n}.*"))).convert("RGB"))
        lightness = lab.rgb_to_lightness(target)
        outs = [label(target, f"{folder}/in{n}"), label(ref, "reference")]
        for variant in ("paper L-BFGS decreasing (d)", "ours: fast (defaults)"):
            options = {**VARIANTS[variant], "size": args.size, "iterations": args.iterations}
            params = validate_params(info, options)
            ab = colorizer.predict_ab(lightness, reference=ref, params=params, progress=None)
            outs.append(label(compose(lightness, ab), variant.split(" (")[0]))
        rows.append(tile(outs, 160))
        print(f"exemplar pair {folder}/{n} done", flush=True)
    if rows:
        Image.fromarray(stack(rows)).save(args.out / f"exemplar_pairs_contact_sheet{tag}.jpg", quality=88)


if __name__ == "__main__":
    main()
