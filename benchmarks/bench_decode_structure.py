"""What uploads that are cheap to send but costly to decode cost ``backend.images.decode`` now, against the
decoder before the structure checks (``--baseline``), run side by side: each file is decoded by each version
in a fresh process, which reports its wall time, the memory decoding added to the process's peak (its
maximum resident set, before and after) and how the upload was answered.

Files (the security and the archivist audits of session 22):
- a TIFF of 1 × 2,400,000 px stored one row per strip (16.8 MB; every strip read on its own);
- a PNG of 16 × 16 px with 1.6 million empty chunks before its image data (19 MB);
- 40 MP float (mode F) TIFFs, 4 bytes a pixel once decoded: one that compresses as photos do, one 7× better;
- an A4 600 dpi 1-bit line-art scan as Group 4 TIFF and as PNG (a photo an archive sends: it must be read).

    .venv/bin/python benchmarks/bench_decode_structure.py [--baseline 4de097e]
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.backend.test_decode_variants import float_tiff, line_art, strip_tiff, with_chunks  # noqa: E402

# Run in a fresh process: decode one file with the images module at PATH, under the upload limits.
CHILD = """
import importlib.util, json, resource, sys, time
sys.path.insert(0, {root!r})
spec = importlib.util.spec_from_file_location("images_under_test", {module!r})
images = sys.modules["images_under_test"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(images)
from backend.errors import UserError
data = open({file!r}, "rb").read()
before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    decoded = images.decode(data, max_pixels=40_000_000, max_pixels_per_byte=60.0, max_jpeg_scans=100)
    answer = "read, %d×%d" % (decoded.rgb.shape[1], decoded.rgb.shape[0])
except UserError as exc:
    answer = "%d: %s" % (exc.status_code, exc.detail[:60])
seconds = time.perf_counter() - started
peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024  # what decoding added
print(json.dumps({{"seconds": seconds, "peak_mb": peak_mb, "answer": answer}}))
"""


def files(folder: Path) -> dict[str, Path]:
    made: dict[str, bytes] = {}
    made["TIFF 1 × 2,400,000, one row per strip"] = strip_tiff(1, 2_400_000)
    small = io.BytesIO()
    Image.new("L", (16, 16), 99).save(small, format="PNG")
    made["PNG 16 × 16, 1.6 M empty chunks"] = with_chunks(small.getvalue(), 1_600_000)
    made["float TIFF 40 MP, about 5 pixels a byte (accepted)"] = float_tiff(8000, 5000, noisy_rows_every=20)
    made["float TIFF 40 MP, 37 pixels a byte"] = float_tiff(8000, 5000, noisy_rows_every=300)
    page = line_art(4960, 7016)
    for fmt, options in (("TIFF", {"compression": "group4"}), ("PNG", {"optimize": True})):
        out = io.BytesIO()
        page.save(out, format=fmt, **options)
        made[f"A4 600 dpi 1-bit line art, {'Group 4 TIFF' if fmt == 'TIFF' else 'PNG'}"] = out.getvalue()
    paths = {}
    for i, (name, data) in enumerate(made.items()):
        path = folder / f"file{i}"
        path.write_bytes(data)
        paths[name] = path
    return paths


def measure(module: Path, file: Path) -> dict[str, object]:
    code = CHILD.format(root=str(ROOT), module=str(module), file=str(file))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"decoding {file} with {module} failed:\n{out.stderr[-2000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="4de097e", help="git revision of the decoder to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = folder / "images_baseline.py"
        baseline.write_text(
            subprocess.run(
                ["git", "show", f"{args.baseline}:backend/images.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        current = ROOT / "backend" / "images.py"
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, baseline {args.baseline}\n\n"
            "| file | size | baseline: s, peak MB, answer | now: s, peak MB, answer | time baseline / now |\n"
            "|---|---:|---|---|---:|"
        )
        for name, path in files(folder).items():
            before, after = measure(baseline, path), measure(current, path)
            both_read = str(before["answer"]).startswith("read") and str(after["answer"]).startswith("read")
            faster = float(before["seconds"]) / max(float(after["seconds"]), 1e-3)  # type: ignore[arg-type]
            print(
                f"| {name} | {path.stat().st_size / 1e6:.2f} MB "
                f"| {before['seconds']:.2f} s, {before['peak_mb']:.0f} MB, {before['answer']} "
                f"| {after['seconds']:.2f} s, {after['peak_mb']:.0f} MB, {after['answer']} "
                f"| {f'{faster:.1f}×' if both_read else 'answered otherwise'} |"
            )


if __name__ == "__main__":
    main()
