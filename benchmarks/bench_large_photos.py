"""What a large photo costs the worker, per method: peak resident memory and seconds of one job's path.

Archives send 24–40 MP scans (``MAX_PIXELS`` is 40,000,000). For each method and photo size this runs, in a
fresh process per case, what the worker's ``Runner`` does with one job (or one fast-lane batch): decode the
stored file, its L, ``predict_ab``, compose at full resolution, encode the PNG and (colour uploads) the
quality metrics against the original, and reports the process's peak resident memory above what it held
before the job (``VmHWM``, reset through ``/proc/self/clear_refs`` once the model is loaded and warmed up)
and the seconds of ``predict_ab`` and of the whole path. Photos are a real ImageNet photo scaled up to the
size with sensor-like noise (JPEG, quality 90), written to a temporary folder; the reference of the
reference methods is another photo of the same size.

    .venv/bin/python benchmarks/bench_large_photos.py [--sizes 1,12,24,40] [--methods unet-bins,cnn,...]
        [--kinds gray,colour] [--batch 4] [--batch-size 24]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHOTOS = ROOT.parent / "shared" / "data" / "imagenet-samples"
HINTS = [
    {"x": 0.2, "y": 0.2, "color": "#3a7bd5"},
    {"x": 0.5, "y": 0.7, "color": "#2e8b57"},
    {"x": 0.8, "y": 0.4, "color": "#c0392b"},
]
# (label, method, options): the methods installed here (eccv16/siggraph17 need official weights)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("unet-bins", "unet-bins", {}),
    ("unet-bins + 3 hints", "unet-bins", {"hints": HINTS}),
    ("unet-bins-reference", "unet-bins-reference", {}),
    ("cnn", "cnn", {}),
    ("fusion", "fusion", {}),
    ("gan", "gan", {}),
    ("exemplar (default, 5 it.)", "exemplar", {"iterations": 5}),
    ("exemplar paper (5 it.)", "exemplar", {"mode": "paper", "iterations": 5}),
]


def photo_file(folder: Path, megapixels: int, gray: bool, index: int = 0) -> Path:
    """A 3:2 JPEG of about ``megapixels`` MP made from ImageNet sample ``index`` (made once per folder)."""
    path = folder / f"{megapixels}mp-{'gray' if gray else 'colour'}-{index}.jpg"
    if path.exists():
        return path
    width = round((megapixels * 1e6 * 1.5) ** 0.5)
    height = int(megapixels * 1e6 // width)
    source = sorted(PHOTOS.glob("*.jpg"))[index]
    img = Image.open(source).convert("L" if gray else "RGB")
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    arr = np.array(img)
    rng = np.random.default_rng(index)
    for top in range(0, height, 512):  # noise in bands: the parent stays small too
        band = arr[top : top + 512].astype(np.float32)
        band += rng.normal(0, 4, band.shape).astype(np.float32)
        arr[top : top + 512] = np.clip(band, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, format="JPEG", quality=90)
    return path


def _status(field: str) -> float:
    """A ``/proc/self/status`` memory figure in MB."""
    text = Path("/proc/self/status").read_text()
    return int(text.split(f"{field}:")[1].split()[0]) / 1024


def run_case(method: str, options: dict[str, Any], files: list[str], reference: str | None) -> dict[str, Any]:
    """One job (or one batch, several files) as the Runner runs it, in this (fresh) process."""
    import torch

    from backend.config import Settings
    from backend.images import decode, encode_png
    from worker import runner
    from worker.colorizers import loading, methods
    from worker.colorizers.pipeline import compose
    from worker.quality import job_metrics

    settings = Settings()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    colorizer = loading.get_colorizer(method, settings.weights_dir, "cpu")
    info = methods.get(method)
    assert info is not None
    small = np.linspace(10, 90, 384 * 256, dtype=np.float32).reshape(256, 384)
    small_ref = np.full((256, 384, 3), 128, np.uint8) if info.needs_reference else None
    colorizer.predict_ab(small, reference=small_ref, params=options, progress=None)  # warm up
    datas = [Path(f).read_bytes() for f in files]
    ref_data = Path(reference).read_bytes() if reference else None
    # the Runner's fast-lane batch runs in passes of about this many pixels (one pass before it did)
    pass_pixels = getattr(runner, "BATCH_PASS_PIXELS", None) or 10**12
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the peak from here on
    before = _status("VmRSS")
    start = time.perf_counter()
    predict_seconds, predict_peak = 0.0, 0.0
    pending = list(datas)
    while pending:
        decoded, planes = [], []
        while pending and sum(d.width * d.height for d in decoded) < pass_pixels:
            decoded.append(decode(pending.pop(0), max_pixels=settings.max_pixels))
            planes.append(decoded[-1].lightness())
        ref = decode(ref_data, max_pixels=settings.max_pixels).rgb if ref_data else None
        predict_start = time.perf_counter()
        if len(datas) > 1:  # the fast lane's batch: predict_many as Runner._run_batch calls it
            abs_ = colorizer.predict_ab_batch(planes, params=options)
        else:
            abs_ = [colorizer.predict_ab(planes[0], reference=ref, params=options, progress=None)]
        predict_seconds += time.perf_counter() - predict_start
        predict_peak = max(predict_peak, _status("VmHWM"))
        # predict_many: all of a pass, each at its photo's depth (a 16-bit scan's result is uint16)
        depths = [d.bits for d in decoded]
        results = [compose(p, ab, depth=b) for p, ab, b in zip(planes, abs_, depths, strict=True)]
        del planes, ref, abs_
        for rgb, source in zip(results, decoded, strict=True):  # then _finish, one job after another
            encode_png(rgb, metadata=source.metadata)
            if source.is_color:
                job_metrics(rgb, source.rgb)
        del results, decoded
    seconds = time.perf_counter() - start
    return {
        "before_mb": before,
        "predict_peak_mb": predict_peak - before,
        "peak_mb": _status("VmHWM") - before,
        "predict_s": predict_seconds,
        "job_s": seconds,
    }


def measure(
    method: str, options: dict[str, Any], files: list[Path], reference: Path | None
) -> dict[str, Any]:
    """One case in a fresh process (``--case``): its figures, or its error's last line."""
    spec = {"method": method, "options": options, "files": [str(f) for f in files]}
    spec["reference"] = str(reference) if reference else None
    out = subprocess.run(
        [sys.executable, __file__, "--case", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["killed"])[-1]}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,12,24,40", help="megapixels, comma-separated")
    parser.add_argument("--methods", default="", help="case labels' methods to run (default: all)")
    parser.add_argument("--kinds", default="gray,colour")
    parser.add_argument("--batch", type=int, default=4, help="photos in the fast-lane batch case (0: none)")
    parser.add_argument("--batch-size", type=int, default=24, help="their megapixels")
    parser.add_argument("--folder", default="", help="where the photos are made (default: a temporary one)")
    parser.add_argument("--case", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        spec = json.loads(args.case)
        print(json.dumps(run_case(spec["method"], spec["options"], spec["files"], spec["reference"])))
        return
    from worker.colorizers import methods

    wanted = set(filter(None, args.methods.split(",")))
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(args.folder or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
        print(f"{stamp}, {machine}, torch threads = CPUs; one fresh process a case")
        print()
        print(
            "| method | photo | peak RSS to predict_ab's end | peak RSS, whole job | predict_ab | whole job |"
        )
        print("|---|---|---:|---:|---:|---:|")
        for label, method, options in CASES:
            if wanted and method not in wanted:
                continue
            for mp in sizes:
                for kind in kinds:
                    photo = photo_file(folder, mp, kind == "gray")
                    info = methods.get(method)
                    needs_reference = info is not None and info.needs_reference
                    reference = photo_file(folder, mp, False, index=1) if needs_reference else None
                    print_row(f"| {label} | {mp} MP {kind}", measure(method, options, [photo], reference))
        if args.batch > 1:
            files = [photo_file(folder, args.batch_size, True, index=i) for i in range(args.batch)]
            for n in (1, args.batch):
                row = f"| unet-bins, fast-lane batch of {n} | {args.batch_size} MP gray"
                print_row(row, measure("unet-bins", {}, files[:n], None))


def print_row(row: str, r: dict[str, Any]) -> None:
    """One table row of a case's measurement (or its error)."""
    if "error" in r:
        print(f"{row} | {r['error']} | | | |", flush=True)
        return
    print(
        f"{row} | +{r['predict_peak_mb']:,.0f} MB | +{r['peak_mb']:,.0f} MB "
        f"| {r['predict_s']:.1f} s | {r['job_s']:.1f} s |",
        flush=True,
    )


if __name__ == "__main__":
    main()
