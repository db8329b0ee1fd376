"""A job's scores against its ground truth (worker.quality): a large photo is scored on reduced copies."""

from __future__ import annotations

import numpy as np
from PIL import Image

from tests.conftest import photo
from worker.colorizers import lab, metrics
from worker.colorizers.pipeline import area_reduced
from worker.quality import METRICS_MAX_PIXELS, job_metrics


def pair(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A real photo at this size (the truth) and a result that misses some of its colour."""
    truth = np.asarray(Image.open(photo()).convert("RGB").resize((width, height), Image.Resampling.BILINEAR))
    ab = lab.rgb_to_lab(truth)
    ab[..., 1:] *= 0.6
    return lab.lab_to_rgb_uint8(ab), truth


def test_a_photo_within_the_limit_is_scored_at_full_size() -> None:
    result, truth = pair(300, 400)
    scores = job_metrics(result, truth)
    true_ab, pred_ab = lab.rgb_to_lab(truth)[..., 1:], lab.rgb_to_lab(result)[..., 1:]
    assert scores["auc"] == round(metrics.raw_accuracy_auc(pred_ab, true_ab), 5)
    assert scores["ssim"] == round(metrics.ssim(result, truth), 5)
    assert 0.5 < scores["auc"] < 1 and scores["colourfulness"] < scores["colourfulness_truth"]


def test_a_large_photo_is_scored_on_copies_reduced_alike() -> None:
    result, truth = pair(1500, 2000)  # 3 MP: over the limit
    small_result, small_truth = (area_reduced(rgb, METRICS_MAX_PIXELS) for rgb in (result, truth))
    assert small_result.shape == small_truth.shape
    height, width = small_result.shape[:2]
    assert height * width <= METRICS_MAX_PIXELS and abs(width / height - 4 / 3) < 0.01  # the shape kept
    assert job_metrics(result, truth) == job_metrics(small_result, small_truth)
    full = metrics.raw_accuracy_auc(lab.rgb_to_lab(result)[..., 1:], lab.rgb_to_lab(truth)[..., 1:])
    assert abs(job_metrics(result, truth)["auc"] - full) < 0.01  # as telling as the full-size score
