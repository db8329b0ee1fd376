"""Quality of one finished job against its ground truth (the upload, when it was a colour photo).

Pure numpy, via :mod:`worker.colorizers.metrics`: the report's eq. 9 accuracy, Zhang's raw-accuracy AuC,
PSNR, SSIM, colourfulness and its gap to the truth. Stored on the job and shown by the compare view.

A photo over :data:`METRICS_MAX_PIXELS` is scored on copies of the result and the truth reduced alike (area
average) to that size: at full size a 40 MP photo's scores took 90 s and 5 GB of the worker (SSIM in float64
alone 59 s, 4.3 GB), against about 3 s at 2 MP, where every score is as telling.
"""

from __future__ import annotations

import numpy as np

from worker.colorizers import lab, metrics
from worker.colorizers.pipeline import area_reduced

METRICS_MAX_PIXELS = 2_000_000


def job_metrics(result_rgb: np.ndarray, truth_rgb: np.ndarray) -> dict[str, float | None]:
    """The scores of a result (uint8, or uint16: a 16-bit one, scored on its 8-bit rounding as the truth has
    8 bits) against its truth (uint8)."""
    result_rgb, truth_rgb = lab.to_uint8(result_rgb), lab.to_uint8(truth_rgb)
    if result_rgb.shape != truth_rgb.shape:
        raise ValueError(f"result {result_rgb.shape} and truth {truth_rgb.shape} differ in size")
    result_rgb, truth_rgb = (area_reduced(rgb, METRICS_MAX_PIXELS) for rgb in (result_rgb, truth_rgb))
    values, _ = metrics.compare_rgb(result_rgb, truth_rgb)
    psnr = values["psnr"]
    # The API's names (GET /jobs/{id} `metrics`), longer than the evaluation CSV's columns.
    return {
        "eq9_accuracy": round(values["eq9_acc"], 5),
        "auc": round(values["auc"], 5),
        "psnr": round(psnr, 3) if np.isfinite(psnr) else None,  # None: identical images (infinite PSNR)
        "ssim": round(values["ssim"], 5),
        "colourfulness": round(values["colourfulness"], 3),
        "colourfulness_truth": round(values["cf_truth"], 3),
        "colourfulness_gap": round(values["dcf"], 3),
    }
