"""Colorization quality: `colorlab evaluate` on held-out imagenet-samples photos, the colour-photos validation
split (1,037 photos) and 1,000 CIFAR-10 photos.

    .venv/bin/python benchmarks/bench_quality.py [--methods unet-bins,cnn,fusion,gan] [--sets ...] [--write]

Runs (or resumes) both evaluations into var/eval/ (per-image CSVs stay there: they are large), prints their
summaries, and with --write copies the summaries and figures to benchmarks/results/ and replaces the
"Evaluation" section of benchmarks/RESULTS.md (between its markers; other sections are left alone).
Methods whose weights are absent are left out with their reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
FIGURES = ROOT / "benchmarks" / "results"
NOTES = FIGURES / "eval-notes.md"  # hand-written reading of the tables, included in the section when present
BEGIN = "<!-- evaluation:begin (written by benchmarks/bench_quality.py) -->"
END = "<!-- evaluation:end -->"
SETS = {
    # name: (data, split, limit, batch size, contact-sheet photos)
    "imagenet-val": (DATA / "imagenet-samples", "val", None, 8, 8),
    "colour-photos-val": (DATA / "colour-photos", "val", None, 16, 12),
    "cifar10-test-1000": (DATA / "cifar10.zip", "all", 1000, 16, 10),
}


def available(methods: list[str], weights_dir: Path) -> tuple[list[str], dict[str, str]]:
    from worker.colorizers import methods as method_list

    ok, missing = [], {}
    for name in methods:
        info = method_list.get(name)
        reason = "not a method" if info is None else info.unavailable_reason(weights_dir)
        if reason:
            missing[name] = reason
        else:
            ok.append(name)
    return ok, missing


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores (shared), torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s), Python {platform.python_version()}"
    )


def classifier_check(cache: Path, device: str) -> dict:
    """EfficientNet-Lite0 top-1/top-5 on all imagenet-samples photos, real and gray (cached in ``cache``)."""
    import json

    if cache.is_file():
        return json.loads(cache.read_text())
    import numpy as np

    from worker.colorizers import classifier, datasets
    from worker.colorizers.evaluation.selection import imagenet_label
    from worker.colorizers.lab import lightness_to_gray_uint8, rgb_to_lightness

    refs = datasets.list_images(DATA / "imagenet-samples")
    reader = datasets.ImageReader()
    labels = np.array([imagenet_label(Path(r.name).name) for r in refs])
    real = [reader.read(r) for r in refs]
    gray = [np.repeat(lightness_to_gray_uint8(rgb_to_lightness(im))[..., None], 3, axis=-1) for im in real]
    out = {"photos": len(refs)}
    for name, images in (("real", real), ("gray", gray)):
        top5 = classifier.top_k(images, 5, device=device)
        out[name] = {
            "top1": float((top5[:, 0] == labels).mean()),
            "top5": float((top5 == labels[:, None]).any(axis=1).mean()),
        }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out, indent=2))
    return out


# How the numbers are measured, a paragraph of RESULTS.md.
METRICS_NOTE = " ".join(
    [
        "Metrics (`worker/colorizers/metrics.py`): eq. 9 accuracy of the report (share of pixels with",
        "|Δa| and |Δb| ≤ 0.02 on ab/128, normalised by H·W, not 2·H·W); raw-accuracy AuC of Zhang et al.",
        "2016 (share of pixels with L2 ab error ≤ t, mean over t = 0…150); PSNR and SSIM on RGB (SSIM:",
        "Gaussian window 11, σ 1.5, per channel, averaged); colourfulness (Hasler & Süsstrunk 2003) and",
        "ΔCF = CF(colorized) − CF(real) (|ΔCF| beside it); top-1 = EfficientNet-Lite0 ImageNet top-1 on",
        "the delivered photo (the `real` row: on the real photos; `gray`: on the L-only photos).",
        "Each value is a mean over photos. The ab metrics use the delivered RGB image converted back to",
        "Lab. Photos whose ground truth is grayscale are left out (as Zhang et al. 2016 did).",
        "`gray` is the trivial prediction ab = 0.",
    ]
)


def section(results: dict, methods: list[str], missing: dict[str, str], device: str, check: dict) -> str:
    from worker.colorizers.evaluation import report as evalreport

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Evaluation (colorization quality)",
        "",
        f"Measured {now} on {machine()}, device {device}. Command per data set: "
        "`colorlab evaluate --methods " + ",".join(methods) + " --data DATA --out DIR ...` "
        "(re-run all of it with `.venv/bin/python benchmarks/bench_quality.py --write`).",
        "",
        METRICS_NOTE,
        "",
    ]
    lines += [
        f"Classifier check (all {check['photos']} imagenet-samples photos, "
        f"`worker/colorizers/classifier.py`): top-1 {check['real']['top1']:.1%} / "
        f"top-5 {check['real']['top5']:.1%} on the real photos, top-1 {check['gray']['top1']:.1%} / "
        f"top-5 {check['gray']['top5']:.1%} on their gray (L-only) versions "
        "(published EfficientNet-Lite0 top-1 on the ImageNet validation set: 75.1 %; these are one canonical "
        "photo per class).",
        "",
    ]
    weights = []
    for name in methods:
        card = ROOT / "worker" / "colorizers" / "weights" / f"{name}.md"
        fingerprint = next(iter(results.values())).weights.get(name, "") if results else ""
        link = f" (model card: `worker/colorizers/weights/{name}.md`)" if card.is_file() else ""
        weights.append(f"`{name}`: {fingerprint or 'n/a'}{link}")
    if weights:
        lines += ["Weights evaluated (file: sha256 prefix): " + "; ".join(weights) + ".", ""]
    if missing:
        absent = "; ".join(f"`{k}`: {v}" for k, v in missing.items())
        lines += [f"Not evaluated (weights absent): {absent}", ""]
    titles = {
        "imagenet-val": "imagenet-samples, held-out validation split (classes with index % 10 == 7, never "
        "trained on; `datasets.split_paths`)",
        "colour-photos-val": "colour-photos, validation split (`val/`: 1,037 photos of people, objects, "
        "animals, food, flowers, streets and landscapes, 128 px short side; never "
        "trained on); no ImageNet labels, so no top-1",
        "cifar10-test-1000": "CIFAR-10 test set, 1,000 photos (32×32; every 10th of the sorted test/ "
        "entries, 100 per class); no ImageNet labels, so no top-1",
    }
    for name, result in results.items():
        lines += [f"### {titles[name]}", "", evalreport.markdown_table(result.summaries).rstrip(), ""]
        if result.skipped_grayscale:
            left_out = len(result.skipped_grayscale)
            lines += [f"{result.evaluated} photos evaluated; {left_out} grayscale photos left out.", ""]
        lines += [
            f"![raw accuracy curves, {name}](results/eval-{name}-curves.png) "
            f"([SVG](results/eval-{name}-curves.svg)); "
            f"contact sheet (gray | each method | truth): [results/eval-{name}-contact.png]"
            f"(results/eval-{name}-contact.png)",
            "",
        ]
    if NOTES.is_file():
        lines += [NOTES.read_text(encoding="utf-8").strip(), ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.is_file() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(new, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", default="unet-bins,cnn,fusion,gan")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "eval")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md and results/")
    args = parser.parse_args()

    from backend.config import get_settings
    from worker.colorizers.evaluation.evaluate import EvalConfig, run_evaluation

    settings = get_settings()
    if settings.torch_threads > 0:
        import torch

        torch.set_num_threads(settings.torch_threads)
    weights_dir = settings.weights_dir
    methods, missing = available([m for m in args.methods.split(",") if m], weights_dir)
    for name, reason in missing.items():
        print(f"skipping {name}: {reason}")
    results = {}
    for name in args.sets.split(","):
        data, split, limit, batch, samples = SETS[name]
        config = EvalConfig(
            methods=tuple(methods),
            data=data,
            out=args.out / name,
            split=split,
            limit=limit,
            batch_size=batch,
            device=args.device,
            weights_dir=weights_dir,
            samples=samples,
        )
        results[name] = result = run_evaluation(config)
        print((result.out / "summary.md").read_text())
        if args.write:
            FIGURES.mkdir(parents=True, exist_ok=True)
            for key, suffix in (
                ("curves_png", "curves.png"),
                ("curves_svg", "curves.svg"),
                ("contact_sheet", "contact.png"),
                ("summary_md", "summary.md"),
                ("summary_csv", "summary.csv"),
            ):
                if key in result.files:
                    shutil.copyfile(result.files[key], FIGURES / f"eval-{name}-{suffix}")
    if args.write:
        check = classifier_check(args.out / "classifier_check.json", args.device)
        write_section(section(results, methods, missing, args.device, check))
        print(f"updated {RESULTS}")


if __name__ == "__main__":
    main()
