"""Quality of the trained feed-forward colorizers on the held-out validation classes of imagenet-samples.

Runs the evaluation runner (:mod:`worker.colorizers.evaluation`; metrics: :mod:`worker.colorizers.metrics`)
on the validation split of ../shared/data/imagenet-samples (ImageNet classes with index % 10 == 7, never
trained on: :func:`worker.colorizers.datasets.split_paths`) for ``cnn``, ``fusion``, ``gan`` and the trivial
``gray`` prediction (ab = 0). Reports eq. 9 accuracy (ε = 0.02, normalised by H·W), Zhang's AuC (0-150),
PSNR, SSIM, colourfulness (Hasler & Süsstrunk) and classifier top-1, checks that every trained method beats
gray on AuC and PSNR and is more colourful, writes the contact sheet (gray | cnn | fusion | gan | truth) to
benchmarks/results/feedforward_contact_sheet.png, and (with ``--cards``) adds the table to the model cards.

    .venv/bin/python benchmarks/bench_feedforward_quality.py [--methods cnn,fusion,gan] [--limit N] [--cards]

(benchmarks/bench_quality.py runs the same evaluation for RESULTS.md's "Evaluation" section, plus CIFAR-10;
this script adds the acceptance check against gray, the feed-forward contact sheet and the model cards.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.colorizers.evaluation import report  # noqa: E402
from worker.colorizers.evaluation.evaluate import EvalConfig, run_evaluation  # noqa: E402
from worker.colorizers.manifest import BUNDLED_DIR  # noqa: E402

IMAGENET = ROOT.parent / "shared" / "data" / "imagenet-samples"
RESULTS = ROOT / "benchmarks" / "results"
CARD_SECTION = "## Quality benchmark (benchmarks/bench_feedforward_quality.py)"


def table(summaries: list[report.MethodSummary]) -> str:
    lines = [
        "| method | photos | eq. 9 acc (ε 0.02) | AuC 0-150 | PSNR (dB) | SSIM | colourfulness | top-1 "
        "| s/photo |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        lines.append(
            f"| {s.method} | {s.images} | {s.eq9_acc:.4f} | {s.auc:.4f} | {s.psnr:.2f} | {s.ssim:.4f} | "
            f"{s.colourfulness:.2f} | {s.top1:.2f} | {s.seconds_per_image:.3f} |"
        )
    return "\n".join(lines)


def check(summaries: list[report.MethodSummary], methods: list[str]) -> list[str]:
    """The acceptance rule: each trained method beats gray on AuC and PSNR and is more colourful."""
    by = {s.method: s for s in summaries}
    gray = by[report.GRAY]
    failures = []
    for name in methods:
        s = by.get(name)
        if s is None:
            failures.append(f"{name}: not evaluated")
            continue
        if not s.auc > gray.auc:
            failures.append(f"{name}: AuC {s.auc:.4f} <= gray {gray.auc:.4f}")
        if not s.psnr > gray.psnr:
            failures.append(f"{name}: PSNR {s.psnr:.2f} <= gray {gray.psnr:.2f}")
        if not s.colourfulness > gray.colourfulness:
            failures.append(f"{name}: colourfulness {s.colourfulness:.2f} <= gray {gray.colourfulness:.2f}")
    return failures


def update_card(path: Path, text: str) -> None:
    card = path.read_text(encoding="utf-8") if path.is_file() else ""
    card = re.sub(re.escape(CARD_SECTION) + r".*?(?=\n## |\Z)", "", card, flags=re.S).rstrip() + "\n"
    path.write_text(card + "\n" + CARD_SECTION + "\n\n" + text + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="cnn,fusion,gan")
    parser.add_argument("--limit", type=int, default=None, help="evaluate N validation photos (default: all)")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench_feedforward_quality"))
    parser.add_argument("--weights-dir", default=os.environ.get("WEIGHTS_DIR", str(ROOT / "var" / "weights")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--samples", type=int, default=6, help="photos on the contact sheet")
    parser.add_argument("--cards", action="store_true", help="write the table into the bundled model cards")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    config = EvalConfig(
        methods=tuple(methods),
        data=IMAGENET,
        out=Path(args.out),
        split="val",
        limit=args.limit,
        device=args.device,
        weights_dir=Path(args.weights_dir),
        samples=args.samples,
        progress=True,
    )
    result = run_evaluation(config, log=print)
    stamp = (
        f"Validation split of imagenet-samples ({result.evaluated} photos of held-out classes, "
        "never trained on); "
        f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} "
        f"({os.cpu_count()} CPUs, torch {torch.__version__}, device {args.device})."
    )
    text = stamp + "\n\n" + table(result.summaries)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "feedforward_quality.md").write_text(text + "\n", encoding="utf-8")
    sheet = Path(args.out) / "contact_sheet.png"
    if sheet.is_file():
        shutil.copyfile(sheet, RESULTS / "feedforward_contact_sheet.png")
    if args.cards:
        for name in methods:
            if (BUNDLED_DIR / f"{name}.md").is_file():
                update_card(BUNDLED_DIR / f"{name}.md", text)
    failures = check(result.summaries, methods)
    for failure in failures:
        print("FAIL:", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
