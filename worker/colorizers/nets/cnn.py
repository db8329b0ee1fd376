"""The report's first attempt (§5.2, after Baldassarre et al.): a plain encoder/decoder CNN.

``forward``: L in [0, 100], (N, 1, H, W) -> ab in Lab units, (N, 2, H, W). Inside, the layers see
``L / 50 - 1`` and the tanh output is ``ab / 128``. H and W must be multiples of 8 (three stride-2
convolutions, three ×2 upsamplings).
"""

from __future__ import annotations

import torch
from torch import nn

from worker.colorizers.lab import denormalize_ab, normalize_l


def conv(cin: int, cout: int, stride: int = 1, act: bool = True) -> nn.Sequential:
    """3×3 convolution with padding 1 (size kept, or halved with stride 2), then ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """64/s2, 128, 128/s2, 256, 256/s2, 512, 256: (N, 1, H, W) -> (N, 256, H/8, W/8)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv(1, 64, 2),
            conv(64, 128),
            conv(128, 128, 2),
            conv(128, 256),
            conv(256, 256, 2),
            conv(256, 512),
            conv(512, 256),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """conv 128, up×2, conv 64, up×2, conv 32, up×2, conv 16, conv 2 + tanh: (N, C, H/8, W/8) -> (N, 2, H, W).

    Upsampling is nearest-neighbour (Keras UpSampling2D's default, as in the report's table).
    """

    def __init__(self, in_channels: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            conv(in_channels, 128),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(128, 64),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(64, 32),
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv(32, 16),
            conv(16, 2, act=False),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def init_weights(module: nn.Module) -> None:
    """He (Kaiming) normal initialisation for the ReLU convolutions, zero biases, Xavier for the tanh output.

    PyTorch's default (Kaiming uniform with a = √5) shrinks the signal through this 12-layer plain ReLU net
    without normalisation, and training then sits on the "constant brownish ab" plateau for many epochs.
    """
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
    if convs and convs[-1].out_channels == 2:
        nn.init.xavier_uniform_(convs[-1].weight)


class ColorizationCNN(nn.Module):
    """Encoder + decoder; ``forward(L) -> ab`` (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder(256)
        init_weights(self)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return denormalize_ab(self.decoder(self.encoder(normalize_l(lightness))))
