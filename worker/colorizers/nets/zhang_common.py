"""Pieces shared by the Zhang et al. ECCV16 and SIGGRAPH17 nets (parameter names follow the releases).

Those nets see L as ``(L - 50) / 100`` and produce ab in units of 110 (the releases' ``ab_norm``); their
``forward`` takes L in [0, 100] and returns ab in Lab units, like the official code.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

L_CENT = 50.0
L_NORM = 100.0
AB_NORM = 110.0


def conv_relu_block(
    channels: list[int],
    *,
    dilation: int = 1,
    last_stride: int = 1,
    norm: bool = True,
    lead_relu: bool = False,
) -> list[nn.Module]:
    """[ReLU]? then (3×3 conv, ReLU) per channel step, then BatchNorm (indices as in the releases)."""
    layers: list[nn.Module] = [nn.ReLU(True)] if lead_relu else []
    steps = list(itertools.pairwise(channels))
    for i, (cin, cout) in enumerate(steps):
        stride = last_stride if i == len(steps) - 1 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return layers


def load_release_state(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Strict load of a release file; BatchNorm counters absent from old files are filled with zeros."""
    state = dict(state)
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    net.load_state_dict(state, strict=True)
