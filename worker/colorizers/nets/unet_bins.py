"""``unet-bins``: an ImageNet-pretrained MobileNetV2 encoder with a U-Net decoder that classifies every
location into quantised ab colours, and takes optional user colour hints.

- Encoder: torchvision's MobileNetV2 (weights ``mobilenet_v2-b0353104.pth``); the gray L goes in as three
  equal channels, L/100 normalised with the ImageNet mean/std.
- Decoder: U-Net with skips from the strides 32, 16, 8 and 4 (the hypercolumn idea), predicting logits
  over the Q gamut bins (:mod:`worker.colorizers.colour_bins`) at 1/4 of the input resolution.
- Hints (Zhang et al. 2017): sparse revealed ab (÷110) and their mask, at the input resolution; a small
  strided branch adds them to the decoder at strides 16, 8 and 4 (its last layers start at zero, so the
  hint-free behaviour is the plain classifier's).
- :meth:`UNetBins.forward` takes L in [0, 100] (N, 1, H, W) and returns ab in Lab units at the input
  resolution; :meth:`UNetBins.logits` is what training uses. H and W must be multiples of 32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worker.colorizers.nets.mobilenet_v2 import MEAN, STAGE_CHANNELS, STD, MobileNetV2

HINT_AB_NORM = 110.0
MULTIPLE = 32


def conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class UpBlock(nn.Module):
    """Upsample ×2, concatenate the encoder's skip, two 3×3 convs; hint features are added at the end."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin + skip, cout), conv_bn_relu(cout, cout))

    def forward(self, x: Tensor, skip: Tensor, hint: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], dim=1)) + hint


class HintBranch(nn.Module):
    """(ab/110, mask) at the input resolution -> features at strides 4, 8 and 16 for the decoder."""

    def __init__(self, widths: tuple[int, int, int]) -> None:
        super().__init__()
        self.down4 = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(True), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(True)
        )
        self.down8 = nn.Sequential(nn.Conv2d(64, 96, 3, 2, 1), nn.ReLU(True))
        self.down16 = nn.Sequential(nn.Conv2d(96, 128, 3, 2, 1), nn.ReLU(True))
        self.out4, self.out8, self.out16 = (
            nn.Conv2d(c, w, 1) for c, w in zip((64, 96, 128), widths, strict=True)
        )
        for conv in (self.out4, self.out8, self.out16):
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, hints: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h4 = self.down4(hints)
        h8 = self.down8(h4)
        h16 = self.down16(h8)
        return self.out4(h4), self.out8(h8), self.out16(h16)


class UNetBins(nn.Module):
    def __init__(self, bins: Tensor, widths: tuple[int, int, int] = (64, 128, 256)) -> None:
        super().__init__()
        self.encoder = MobileNetV2()
        del self.encoder.classifier  # only the convolutional features are used
        self.register_buffer("bins", bins.float().clone(), persistent=True)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        c2, c4, c8, c16, c32 = STAGE_CHANNELS
        w4, w8, w16 = widths
        self.bottleneck = nn.Sequential(
            nn.Conv2d(c32, w16, 1, bias=False), nn.BatchNorm2d(w16), nn.ReLU(True)
        )
        self.up16 = UpBlock(w16, c16, w16)
        self.up8 = UpBlock(w16, c8, w8)
        self.up4 = UpBlock(w8, c4, w4)
        self.hints = HintBranch(widths)
        self.classify = nn.Conv2d(w4, bins.shape[0], 1)

    @property
    def num_bins(self) -> int:
        return int(self.bins.shape[0])

    def encode(self, lightness: Tensor) -> list[Tensor]:
        x = (lightness / 100.0).expand(-1, 3, -1, -1)
        return self.encoder.stages((x - self.mean) / self.std)

    def logits(
        self,
        lightness: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        features: list[Tensor] | None = None,
    ) -> Tensor:
        """L (N, 1, H, W) in [0, 100], hints ab (N, 2, H, W) in Lab units and mask (N, 1, H, W) in {0, 1}
        -> (N, Q, H/4, W/4) logits. ``features``: precomputed :meth:`encode` output (frozen encoder)."""
        n, _, h, w = lightness.shape
        if h % MULTIPLE or w % MULTIPLE:
            raise ValueError(f"input size {h}x{w} must be a multiple of {MULTIPLE}")
        _, s4, s8, s16, s32 = features if features is not None else self.encode(lightness)
        if hint_ab is None or hint_mask is None:
            hint_ab = lightness.new_zeros(n, 2, h, w)
            hint_mask = lightness.new_zeros(n, 1, h, w)
        h4, h8, h16 = self.hints(torch.cat([hint_ab / HINT_AB_NORM * hint_mask, hint_mask], dim=1))
        x = self.bottleneck(s32)
        x = self.up16(x, s16, h16)
        x = self.up8(x, s8, h8)
        x = self.up4(x, s4, h4)
        return self.classify(x)

    def forward(
        self,
        lightness: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        temperature: float = 0.38,
    ) -> Tensor:
        """L in [0, 100] -> ab in Lab units at the input resolution (annealed mean of the bins)."""
        from worker.colorizers.colour_bins import annealed_mean

        ab = annealed_mean(self.logits(lightness, hint_ab, hint_mask), self.bins, temperature)
        return F.interpolate(ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False)
