"""Reference-guided colorization judged on target/reference pairs with ground truth (reference_pairs.csv).

For every pair (two validation photos of the same class or scene), the target's gray L is colorized by:
gray (ab = 0), ``unet-bins`` (no reference), ``unet-bins-reference``, ``exemplar`` as it was before
``init=matched`` (init=content, no anchor, no smoothness: the old default) and ``exemplar``'s new default
(init=matched, anchor and smoothness 1). Scores: AuC of the raw ab accuracy curve (0-150) and PSNR, against
the target's true colours; seconds per photo. A contact sheet shows ``--sheet`` pairs with the paper's exact
recipe too (mode=paper, 1000 iterations; slow): gray | reference | paper exemplar | new exemplar |
reference-guided | truth. Also times ``unet-bins-reference`` on a 1024×768 photo.

``unet-bins-reference, hand-made rule`` is the same method with an untrained fusion step (the net × prior
rule shipped before the learned one), run beside it on every pair. ``--fusion-sheet N`` writes a second,
cheap contact sheet of N pairs: gray | reference | unguided | hand-made rule | learned fusion | truth.
Colourfulness (Hasler & Süsstrunk) of each method's results is reported beside the truth's, since a
method can buy AuC by muting colours.

``--ceiling`` adds ``unet-bins-reference`` given the target's own colours, mirrored left to right, as its
reference: what the method reaches when the reference's colours are the right ones (it must still find
where each colour belongs), against which the same-class pairs show how much a reference of other colours
costs. ``follow_reference 1`` rows: the same method told to take the reference's colours everywhere.

    .venv/bin/python benchmarks/bench_reference.py --write        # results/reference_*.{csv,md,jpg}
"""

from __future__ import annotations

import argparse
import csv
import platform
import sys
import time
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
from worker.colorizers.nets.reference_fusion import ReferenceFusion  # noqa: E402
from worker.colorizers.pipeline import compose  # noqa: E402
from worker.colorizers.reference_guided import ReferenceGuidedColorizer  # noqa: E402

OLD_EXEMPLAR = {"init": "content", "anchor": 0.0, "smoothness": 0.0}
RULE = "unet-bins-reference, hand-made rule"
FOLLOW = {"follow_reference": 1.0}
CONTESTANTS: dict[str, tuple[str, dict]] = {
    "unet-bins": ("unet-bins", {}),
    "unet-bins-reference": ("unet-bins-reference", {}),
    "unet-bins-reference, follow_reference 1": ("unet-bins-reference", FOLLOW),
    RULE: ("unet-bins-reference", {}),
    "exemplar (old default)": ("exemplar", OLD_EXEMPLAR),
    "exemplar (new default)": ("exemplar", {}),
}


CEILING = "unet-bins-reference, own colours mirrored (ceiling)"
CEILING_FOLLOW = f"{CEILING}, follow_reference 1"


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--pairs", type=Path, default=ROOT / "benchmarks" / "reference_pairs.csv")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "var" / "weights")
    parser.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    parser.add_argument("--groups", default="", help="only these pairs (comma-separated group names)")
    parser.add_argument("--sheet", type=int, default=6, help="pairs on the contact sheet (paper mode runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-every", type=int, default=1, help="the new exemplar default on every Nth pair")
    parser.add_argument("--old-every", type=int, default=1,
                        help="run the old exemplar default on every Nth pair only (it is slow)")  # fmt: skip
    parser.add_argument("--ceiling", action="store_true",
                        help="also unet-bins-reference with the target's own colours (mirrored)")  # fmt: skip
    parser.add_argument("--fusion-sheet", type=int, default=8,
                        help="pairs on the cheap sheet (unguided, hand-made rule, fusion)")  # fmt: skip
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/reference_*")
    parser.add_argument("--sheet-only", action="store_true", help="with --write: only the contact sheet")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pairs = list(csv.DictReader(args.pairs.open()))
    if args.groups:
        wanted = args.groups.split(",")
        pairs = sorted((p for p in pairs if p["group"] in wanted), key=lambda p: wanted.index(p["group"]))
    pairs = pairs[: args.limit or None]
    colorizers = {
        name: get_colorizer(method, args.weights_dir, "cpu")
        for name, (method, _) in CONTESTANTS.items()
        if name != RULE
    }
    colorizers[RULE] = ReferenceGuidedColorizer(colorizers["unet-bins"].net, ReferenceFusion())
    rows: list[dict] = []
    sheet_rows, sheet_labels = [], []
    fusion_rows, fusion_labels = [], []
    for i, pair in enumerate(pairs):
        rgb, ref = load_rgb(args.data / pair["target"]), load_rgb(args.data / pair["reference"])
        photo = labmod.rgb_to_lab(rgb)
        lightness, truth = photo[..., 0].astype(np.float32), photo[..., 1:]
        row: dict = {"group": pair["group"], "target": pair["target"], "reference": pair["reference"]}
        row["gray auc"] = metrics.raw_accuracy_auc(np.zeros_like(truth), truth)
        row["gray psnr"] = metrics.psnr(compose(lightness, np.zeros_like(truth)), rgb)
        runs = [
            (name, colorizers[name], ref if method != "unet-bins" else None, params)
            for name, (method, params) in CONTESTANTS.items()
            if not (name == "exemplar (old default)" and i % args.old_every)
            and not (name == "exemplar (new default)" and i % args.new_every)
        ]
        if args.ceiling:
            own = np.ascontiguousarray(rgb[:, ::-1])
            runs.append((CEILING, colorizers["unet-bins-reference"], own, {}))
            runs.append((CEILING_FOLLOW, colorizers["unet-bins-reference"], own, FOLLOW))
        results = {}
        for name, colorizer, reference, params in runs:
            t0 = time.perf_counter()
            ab = colorizer.predict_ab(lightness, reference=reference, params=params, progress=None)
            row[f"{name} s"] = time.perf_counter() - t0
            results[name] = compose(lightness, ab)
            row[f"{name} auc"] = metrics.raw_accuracy_auc(labmod.rgb_to_lab(results[name])[..., 1:], truth)
            row[f"{name} psnr"] = metrics.psnr(results[name], rgb)
            row[f"{name} colourfulness"] = metrics.colourfulness(results[name])
        row["truth colourfulness"] = metrics.colourfulness(rgb)
        rows.append(row)
        if i < args.fusion_sheet:
            gray = compose(lightness, np.zeros_like(truth))
            learned = results["unet-bins-reference"]
            fusion_rows.append([gray, ref, results["unet-bins"], results[RULE], learned, rgb])
            fusion_labels.append(pair["group"])
        print(f"{i + 1}/{len(pairs)} {pair['group']}: " + " ".join(
            f"{k}={v:.3f}" for k, v in row.items() if k.endswith("auc")), flush=True)  # fmt: skip
        if i < args.sheet and "exemplar (new default)" in results:
            t0 = time.perf_counter()
            paper = colorizers["exemplar (new default)"].predict_ab(
                lightness, reference=ref, params={"mode": "paper"}, progress=None
            )
            row["paper s"] = time.perf_counter() - t0
            gray = compose(lightness, np.zeros_like(truth))
            sheet_rows.append([gray, ref, compose(lightness, paper), results["exemplar (new default)"],
                               results["unet-bins-reference"], rgb])  # fmt: skip
            sheet_labels.append(pair["group"])
    speed = time_1024(colorizers["unet-bins-reference"], args.data / pairs[0]["reference"])
    report = summarise(rows, speed)
    print(report)
    if args.write:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        if not args.sheet_only:
            with (out / "reference_pairs_scores.csv").open("w", newline="") as fh:
                keys = list(dict.fromkeys(k for r in rows for k in r))
                writer = csv.DictWriter(fh, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)
            (out / "reference_pairs.md").write_text(report)
        if sheet_rows:
            columns = ["gray", "reference", "exemplar (paper)", "exemplar (new)", "reference-guided", "truth"]
            write_sheet(sheet_rows, columns, sheet_labels, out / "reference_contact_sheet.jpg")
        if fusion_rows:
            columns = ["gray", "reference", "unguided", "hand-made rule", "learned fusion", "truth"]
            write_sheet(fusion_rows, columns, fusion_labels, out / "reference_fusion_sheet.jpg")


def write_sheet(rows: list[list[np.ndarray]], columns: list[str], labels: list[str], jpeg: Path) -> None:
    """A contact sheet (160 px cells) saved as JPEG (quality 88) at ``jpeg``."""
    png = jpeg.with_suffix(".png")
    contact_sheet(rows, columns, png, row_labels=labels, cell=160)
    Image.open(png).convert("RGB").save(jpeg, quality=88)
    png.unlink()


def time_1024(colorizer, reference_path: Path) -> float:  # type: ignore[no-untyped-def]
    """Median seconds of unet-bins-reference on a 1024×768 photo (a validation photo enlarged)."""
    rgb = np.asarray(Image.open(reference_path).convert("RGB").resize((1024, 768)))
    lightness = labmod.rgb_to_lightness(rgb)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        compose(lightness, colorizer.predict_ab(lightness, reference=rgb[:, ::-1], params={}, progress=None))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def summarise(rows: list[dict], speed_1024: float) -> str:
    gray = np.array([r["gray auc"] for r in rows])
    plain = np.array([r["unet-bins auc"] for r in rows])
    lines = [
        f"# Reference-guided colorization on {len(rows)} target/reference pairs",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()} {torch.get_num_threads()} thread(s).",
        "",
        "| method | mean AuC | mean PSNR (dB) | beating gray (AuC) | beating gray and unet-bins | "
        "colourfulness | s/photo |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| gray (ab = 0) | {gray.mean():.4f} | {np.mean([r['gray psnr'] for r in rows]):.2f} "
        "| – | – | 0 | – |",
        f"| truth | – | – | – | – | {np.mean([r['truth colourfulness'] for r in rows]):.1f} | – |",
    ]
    for name in [*CONTESTANTS, CEILING, CEILING_FOLLOW]:
        ran = [i for i, r in enumerate(rows) if f"{name} auc" in r]
        if not ran:
            continue
        auc = np.array([rows[i][f"{name} auc"] for i in ran])
        both = ((auc > gray[ran]) & (auc > plain[ran])).mean() if name != "unet-bins" else float("nan")
        label = (
            name
            if len(ran) == len(rows)
            else f"{name}, {len(ran)} pairs (gray on them {gray[ran].mean():.4f})"
        )
        lines.append(
            f"| {label} | {auc.mean():.4f} | {np.mean([rows[i][f'{name} psnr'] for i in ran]):.2f} | "
            f"{(auc > gray[ran]).mean():.0%} | {'–' if np.isnan(both) else f'{both:.0%}'} | "
            f"{np.mean([rows[i][f'{name} colourfulness'] for i in ran]):.1f} | "
            f"{np.mean([rows[i][f'{name} s'] for i in ran]):.2f} |"
        )
    paper = [r["paper s"] for r in rows if "paper s" in r]
    if paper:
        lines.append(f"\nexemplar mode=paper (1000 iterations) on the {len(paper)} contact-sheet pairs: "
                     f"{np.mean(paper):.1f} s/photo.")  # fmt: skip
    lines.append(f"\nunet-bins-reference on a 1024×768 photo: {speed_1024:.2f} s (median of 3, end to end).")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
