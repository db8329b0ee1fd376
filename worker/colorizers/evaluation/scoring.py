"""Scoring one delivered image against the real photo, and the ImageNet classifier's top-1 on it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from worker.colorizers import metrics

Classify = Callable[[list[np.ndarray]], np.ndarray]  # RGB photos -> top-1 ImageNet class per photo


def score(
    pred_rgb: np.ndarray, true_rgb: np.ndarray, true_ab: np.ndarray, eps: float
) -> tuple[dict[str, float], np.ndarray]:
    """Metrics of one delivered image against the truth, and its raw accuracy curve."""
    return metrics.compare_rgb(pred_rgb, true_rgb, eps=eps, true_ab=true_ab)


def real_values(true_rgb: np.ndarray) -> dict[str, float]:
    """The ``real`` row's figures: the real photo's own colourfulness."""
    cf = metrics.colourfulness(true_rgb)
    return {"colourfulness": cf, "cf_truth": cf}


def perfect_curve() -> np.ndarray:
    """The raw accuracy curve of the real photo against itself (1 at every threshold)."""
    return np.ones(metrics.AUC_MAX_THRESHOLD + 1)


def classifier(device: str, batch_size: int) -> Classify:
    """Top-1 ImageNet classes of RGB photos (EfficientNet-Lite0, loaded on first use)."""

    def classify(images: list[np.ndarray]) -> np.ndarray:
        from worker.colorizers import classifier as model

        return model.predict(images, device=device, batch_size=batch_size)

    return classify


def add_top1(row: dict[str, Any], preds: np.ndarray | None, i: int, label: int | None) -> None:
    """The classifier's class for photo ``i`` and whether it is the label (photos with a known class only)."""
    if preds is not None and label is not None:
        row["pred_class"] = int(preds[i])
        row["top1"] = int(int(preds[i]) == label)
