"""The bundled Golden Gate pair (exemplar-pairs/example in1 + ref1) through ``unet-bins-reference``: the
learned default leaves the thin red towers beige; ``follow_reference 1`` takes the matched colours
everywhere. Writes results/reference_golden_gate_follow.jpg (gray | unguided | reference, default | follow 1
with the matched cells' mean colour, as before session 13 | follow 1 with the colour by lightness, as
shipped | the same at vividness 1 | reference) and prints the towers' mean a, b in each.

    .venv/bin/python benchmarks/reference_golden_gate.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.colorizers import correspondence  # noqa: E402
from worker.colorizers import lab as labmod  # noqa: E402
from worker.colorizers.evaluation.figures import contact_sheet  # noqa: E402
from worker.colorizers.loading import get_colorizer  # noqa: E402
from worker.colorizers.pipeline import compose, resize_ab  # noqa: E402

PAIR = ROOT.parent / "shared" / "data" / "exemplar-pairs" / "example"
OUT = ROOT / "benchmarks" / "results" / "reference_golden_gate_follow.jpg"


def cells_mean(self: correspondence.Match, lightness):  # type: ignore[no-untyped-def]
    """The transfer before the colour by lightness: the matched cells' mean colour, upsampled."""
    return F.interpolate(self.ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)


def main() -> None:
    weights = ROOT / "var" / "weights"
    guided, plain = get_colorizer("unet-bins-reference", weights), get_colorizer("unet-bins", weights)
    rgb, ref = (np.asarray(Image.open(PAIR / n).convert("RGB")) for n in ("in1.jpg", "ref1.jpg"))
    lightness = labmod.rgb_to_lab(rgb)[..., 0].astype(np.float32)
    steel = np.zeros(lightness.shape, bool)  # the near tower's steel, not the sky between its legs
    steel[50:170, 100:135] = lightness[50:170, 100:135] < 60

    def run(name: str, colorizer, params: dict, reference: np.ndarray | None = ref) -> np.ndarray:  # type: ignore[no-untyped-def]
        ab = resize_ab(colorizer.predict_ab(lightness, reference=reference, params=params), *lightness.shape)
        print(f"{name:28} tower a, b = {ab[steel][:, 0].mean():5.1f}, {ab[steel][:, 1].mean():5.1f}")
        return compose(lightness, ab)

    cells = [
        compose(lightness, np.zeros((*lightness.shape, 2), np.float32)),
        run("unguided", plain, {}, None),
    ]
    cells.append(run("reference, default", guided, {}))
    by_lightness = correspondence.Match.ab_at
    correspondence.Match.ab_at = cells_mean  # type: ignore[method-assign]
    cells.append(run("follow 1, cells' mean", guided, {"follow_reference": 1.0}))
    correspondence.Match.ab_at = by_lightness  # type: ignore[method-assign]
    cells.append(run("follow 1, by lightness", guided, {"follow_reference": 1.0}))
    cells.append(run("... + vividness 1", guided, {"follow_reference": 1.0, "vividness": 1.0}))
    cells.append(ref)
    columns = ["gray", "unguided", "reference, default", "follow 1, cell mean", "follow 1, by lightness",
               "… + vividness 1", "reference"]  # fmt: skip
    png = OUT.with_suffix(".png")
    contact_sheet([cells], columns, png, row_labels=["example in1 / ref1"], cell=256)
    Image.open(png).convert("RGB").save(OUT, quality=90)
    png.unlink()
    print(f"-> {OUT}")


if __name__ == "__main__":
    main()
