"""The report's third attempt (§5.4, after Nazeri et al.): U-Net generator and DCGAN discriminator.

Generator: L in [0, 100] (N, 1, H, W) -> ab in Lab units (N, 2, H, W); inside, the layers see ``L / 50 - 1``
and the tanh output is ``ab / 128``. H and W multiples of 32.
Five 4×4 stride-2 convolutions down (32-64-128-256-256 channels, BatchNorm, LeakyReLU 0.2), five 4×4
stride-2 transposed convolutions up (BatchNorm, ReLU, dropout in the two deepest) with skip connections
concatenated at every scale (about 4 M parameters, 8 MB in float16).
Discriminator: a Lab image (N, 3, H, W), L in [0, 100] and ab in Lab units, seen as
``cat(L / 50 - 1, ab / 128)`` -> one logit per image: 4×4 stride-2
convolutions with BatchNorm (not on the first layer, as in DCGAN) and LeakyReLU 0.2, then a convolution
(3×3, one channel) averaged over the remaining map (8×8 for a 256×256 input). The sigmoid is applied in
the loss (binary cross-entropy with logits, numerically the same as sigmoid + BCE).
"""

from __future__ import annotations

import torch
from torch import nn

from worker.colorizers.lab import denormalize_ab, normalize_ab, normalize_l

GEN_CHANNELS = (32, 64, 128, 256, 256)
DISC_CHANNELS = (32, 64, 128, 256, 256)


class Down(nn.Sequential):
    def __init__(self, cin: int, cout: int, norm: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        super().__init__(*layers)


class Up(nn.Sequential):
    def __init__(self, cin: int, cout: int, dropout: bool = False) -> None:
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        ]
        if dropout:
            layers.append(nn.Dropout(0.5))
        super().__init__(*layers)


class UNetGenerator(nn.Module):
    """``forward(L) -> ab``; see the module docstring."""

    def __init__(self, channels: tuple[int, ...] = GEN_CHANNELS) -> None:
        super().__init__()
        self.downs = nn.ModuleList()
        cin = 1
        for i, c in enumerate(channels):
            self.downs.append(Down(cin, c, norm=i > 0))
            cin = c
        self.ups = nn.ModuleList()
        skips = list(reversed(channels[:-1]))  # channels of the skip tensors, deepest first
        cin = channels[-1]
        for i, c in enumerate(skips):
            self.ups.append(Up(cin, c, dropout=i < 2))
            cin = c * 2  # concatenated with the skip of the same scale
        self.out = nn.Sequential(nn.ConvTranspose2d(cin, 2, 4, stride=2, padding=1), nn.Tanh())

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        skips = []
        x = normalize_l(lightness)
        for down in self.downs:
            x = down(x)
            skips.append(x)
        skips.pop()  # the bottleneck itself
        for up in self.ups:
            x = torch.cat([up(x), skips.pop()], dim=1)
        return denormalize_ab(self.out(x))


class Discriminator(nn.Module):
    """DCGAN discriminator on Lab images; ``forward(lab) -> logits (N,)``."""

    def __init__(self, channels: tuple[int, ...] = DISC_CHANNELS, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, c in enumerate(channels):
            layers.append(Down(cin, c, norm=i > 0))
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 1, 3, stride=1, padding=1)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        lab_norm = torch.cat([normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])], dim=1)
        logits = self.head(self.features(lab_norm))
        return logits.mean(dim=(1, 2, 3))  # one logit per image: the mean over the remaining map
