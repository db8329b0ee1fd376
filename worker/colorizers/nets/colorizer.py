"""The Colorizer/BatchColorizer wrapper around a feed-forward net (pure torch/numpy).

Precision: on a CPU with native bfloat16 (AVX-512 BF16 / AMX, checked with oneDNN) the forward pass runs
under bfloat16 autocast, about 2.5× faster than float32 on the 2-core development machine; the predicted
ab differs from float32 by about one Lab unit or less (measured in tests/worker/colorizers/test_weights.py).
A caller that wants float32 there passes ``bf16=False`` (the service's ``CPU_BF16`` setting, through
:class:`~worker.colorizers.method_info.LoadContext`). Elsewhere float32 is used.

The photo's full-resolution L (float32, [0, 100]) is resized (area-averaged) to the net's square input
size (256×256) and the net predicts ab in Lab units (each net normalises inside its ``forward``). The ab
map is then resized to an aspect-preserving working size (short side 256); the pipeline upsamples it to
full size and joins it with the photo's own L.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.base import PredictsOneAsABatch

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def channels_last(module: ModuleT) -> ModuleT:
    """``module`` (changed in place) with its 4-D weights channels-last, as CPU convolutions prefer."""
    return module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's stubs omit it


def cpu_bf16_supported() -> bool:
    """True when oneDNN runs bfloat16 natively on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def working_size(height: int, width: int, short: int = 256) -> tuple[int, int]:
    """(h, w) with the photo's aspect ratio and short side ``short``, never larger than the photo itself."""
    scale = min(1.0, short / max(1, min(height, width)))
    return max(1, round(height * scale)), max(1, round(width * scale))


def lightness_to_input(lightness: list[np.ndarray], size: int, device: str) -> torch.Tensor:
    """Full-size L planes -> (N, 1, size, size) float32 L in [0, 100] on ``device``."""
    tensors = []
    for plane in lightness:
        t = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]
        if t.shape[-2:] != (size, size):
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        tensors.append(t)
    return torch.cat(tensors).to(device).contiguous(memory_format=torch.channels_last)


class NetColorizer(PredictsOneAsABatch):
    """A loaded feed-forward net served through the Colorizer and BatchColorizer protocols."""

    def __init__(
        self, name: str, net: nn.Module, device: str = "cpu", size: int = 256, bf16: bool = True
    ) -> None:
        """``bf16``: bfloat16 autocast where the CPU runs it natively (never on other devices)."""
        self.name = name
        self.device = device
        self.size = size
        self.net = channels_last(net.to(device).eval())
        is_cpu = torch.device(device).type == "cpu"
        self.bf16 = bf16 and is_cpu and cpu_bf16_supported()

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        """(N, 1, S, S) L in [0, 100] -> (N, 2, S, S) ab in Lab units; override for nets with extra inputs."""
        out: torch.Tensor = self.net(lightness)
        return out

    def predict_ab_batch(
        self, lightness: list[np.ndarray], *, params: Mapping[str, Any] | None = None
    ) -> list[np.ndarray]:
        """ab (Lab units, float32 (h, w, 2), short side 256, the photo's aspect ratio) for each L plane."""
        if not lightness:
            return []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            ab_batch = self.forward(lightness_to_input(lightness, self.size, self.device)).float()
            out = []
            for plane, ab in zip(lightness, ab_batch, strict=True):
                h, w = working_size(plane.shape[0], plane.shape[1], short=self.size)
                if (h, w) != tuple(ab.shape[-2:]):
                    ab = F.interpolate(ab[None], size=(h, w), mode="bilinear", align_corners=False)[0]
                out.append(ab.permute(1, 2, 0).cpu().numpy().astype(np.float32, copy=False))
        return out
