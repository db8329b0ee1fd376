"""The colorization methods, in display order, and the manifest of every weight file they use (torch-free).

One file per method (``methods/<name>.py``) holds its user-facing description and options, its weight files
and a ``load`` that imports torch only when called. This list is explicit: adding a method means adding
its file and one line to :data:`METHODS`. The web process imports this package, so nothing here may import
torch at import time.
"""

from __future__ import annotations

from pathlib import Path

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import MethodInfo
from worker.colorizers.methods import (
    cnn,
    eccv16,
    exemplar,
    fusion,
    gan,
    siggraph17,
    unet_bins,
    unet_bins_reference,
)

# Display order: our default and its reference-guided form, the report's three nets, Zhang et al.'s, then
# the iterative exemplar.
METHODS: tuple[MethodInfo, ...] = (
    unet_bins.INFO,
    unet_bins_reference.INFO,
    cnn.INFO,
    fusion.INFO,
    gan.INFO,
    eccv16.INFO,
    siggraph17.INFO,
    exemplar.INFO,
)


def get(name: str) -> MethodInfo | None:
    """The method called ``name``, or None."""
    return next((m for m in METHODS if m.name == name), None)


def default_method(with_reference: bool = False) -> MethodInfo:
    """The method used when a request names none (upload page, POST /colorize, the CLI): the default, or
    its reference-guided form when the request brings a colour reference."""
    return unet_bins_reference.INFO if with_reference else next(m for m in METHODS if m.default)


def available(weights_dir: Path) -> list[MethodInfo]:
    """The methods that can run with ``weights_dir``, in display order."""
    return [m for m in METHODS if m.unavailable_reason(weights_dir) is None]


def weight_files() -> dict[str, WeightFile]:
    """Every weight file a method runs on or trains from, by name (the manifest ``colorlab weights`` uses)."""
    files: dict[str, WeightFile] = {}
    for method in METHODS:
        for weight in (*method.weights, *method.training_weights):
            files.setdefault(weight.name, weight)
    return files
