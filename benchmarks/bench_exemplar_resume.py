"""What an interrupted exemplar job costs: a run stopped halfway and resumed from its saved state
(``worker.colorizers.base.IterationState``, what the worker saves every RESUME_STATE_INTERVAL) against the
same run uninterrupted, side by side in one process.

The state keeps the optimisation's unknowns, the loss scale and SGD's step size, not L-BFGS's curvature
memory (100 pairs of vectors the size of the unknowns: too much to save every 30 s), so the resumed run
starts its optimiser afresh. Reported: the total loss after all iterations, resumed / uninterrupted, for
``fast`` (the default) and ``paper`` mode, and the colours' difference (mean |Δab|, Lab units).

    .venv/bin/python benchmarks/bench_exemplar_resume.py [--size 128] [--iterations 60]
"""

from __future__ import annotations

import argparse
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.colorizers import lab  # noqa: E402
from worker.colorizers.base import IterationState, Progress  # noqa: E402
from worker.colorizers.loading import get_colorizer  # noqa: E402
from worker.colorizers.method_info import validate_params  # noqa: E402
from worker.colorizers.methods import exemplar as exemplar_method  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pair", type=Path, default=ROOT.parent / "shared/data/exemplar-pairs/example")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "var" / "weights")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    colorizer = get_colorizer("exemplar", args.weights_dir, "cpu")
    target = np.asarray(Image.open(next(args.pair.glob("in1.*"))).convert("RGB"))
    reference = np.asarray(Image.open(next(args.pair.glob("ref1.*"))).convert("RGB"))
    lightness = lab.rgb_to_lightness(target)
    half = args.iterations // 2
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {args.threads} thread(s)"
    print(
        f"{when}, {args.pair.name}/in1 at {args.size} px, {args.iterations} iterations, stopped after {half}"
    )
    print("| mode | loss after all (uninterrupted) | loss after all (resumed) | resumed / uninterrupted | "
          "mean abs. ab difference |\n|---|---:|---:|---:|---:|")  # fmt: skip
    for mode in ("fast", "paper"):
        params = validate_params(
            exemplar_method.INFO, {"mode": mode, "iterations": args.iterations, "size": args.size}
        )
        saved: list[IterationState] = []

        def keep_half(p: Progress, saved: list[IterationState] = saved) -> None:
            if p.step == half and p.state is not None:  # as the worker stores it: to bytes and back
                saved.append(IterationState.from_bytes(p.state().to_bytes()))

        whole = colorizer.predict_ab(lightness, reference=reference, params=params, progress=keep_half)
        whole_loss = colorizer.last_result.losses[-1]["total"]
        resumed = colorizer.predict_ab(
            lightness, reference=reference, params=params, progress=None, resume=saved[0]
        )
        resumed_loss = colorizer.last_result.losses[-1]["total"]
        print(f"| {mode} | {whole_loss:.4g} | {resumed_loss:.4g} | {resumed_loss / whole_loss:.4f} | "
              f"{float(np.abs(resumed - whole).mean()):.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
