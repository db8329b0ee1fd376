"""How much `exemplar`'s colours depend on the number of torch threads: its default run on the
``exemplar-pairs`` ``in1`` photos with 1 and with 2 threads (each in a process of its own: torch's thread
count is set once per process), the results compared pixel by pixel.

    .venv/bin/python benchmarks/bench_exemplar_threads.py [--threads 1 2] [--pairs N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAIRS = ROOT.parent / "shared" / "data" / "exemplar-pairs"


def colorize(threads: int, pairs: int, into: Path) -> None:
    """In this process: the default exemplar result of each pair's in1 photo, saved as ``NAME.npy``."""
    import torch
    from PIL import Image

    from worker.colorizers import lab
    from worker.colorizers.loading import get_colorizer
    from worker.colorizers.pipeline import colorize_lightness

    torch.set_num_threads(threads)
    colorizer = get_colorizer("exemplar", ROOT / "var" / "weights", "cpu")
    for folder in sorted(p for p in PAIRS.iterdir() if p.is_dir())[:pairs]:
        photo = np.asarray(Image.open(next(folder.glob("in1.*"))).convert("RGB"))
        reference = np.asarray(Image.open(next(folder.glob("ref1.*"))).convert("RGB"))
        result = colorize_lightness(colorizer, lab.rgb_to_lightness(photo), reference=reference, params={})
        np.save(into / f"{folder.name}.npy", result)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs=2, default=(1, 2))
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--run", nargs=2, metavar=("THREADS", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        colorize(int(args.run[0]), args.pairs, Path(args.run[1]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folders = []
        for threads in args.threads:
            folder = Path(tmp) / str(threads)
            folder.mkdir()
            subprocess.run(
                [sys.executable, __file__, "--pairs", str(args.pairs), "--run", str(threads), str(folder)],
                check=True,
            )
            folders.append(folder)
        print("| photo | pixels off by more than 1 level | off at all | largest difference | mean |\n"
              "|---|---:|---:|---:|---:|")  # fmt: skip
        for first in sorted(folders[0].glob("*.npy")):
            a = np.load(first).astype(int)
            b = np.load(folders[1] / first.name).astype(int)
            off = np.abs(a - b).max(-1)
            print(f"| {first.stem}/in1 ({a.shape[0]} × {a.shape[1]}) | {(off > 1).mean():.1%} | "
                  f"{(off > 0).mean():.1%} | {off.max()} | {off.mean():.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
