"""Zhang, Isola, Efros 2016 "Colorful Image Colorization" (ECCV), with the official release's parameter names.

The state dict keys and shapes equal ``colorization_release_v2-9b330a0b.pth`` (richzhang/colorization):
``model1`` … ``model8`` (VGG-style blocks, dilated in 5-6, BatchNorm at the end of 1-7; ``model8`` ends with
the 1×1 convolution to the 313 quantised ab bins) and ``model_out``, the release's fixed 1×1 convolution
(no bias) from the 313-bin softmax to ab — the expectation over bin centres, in units of 110 — upsampled ×4.
``forward(L)``: L in [0, 100], (N, 1, H, W), H and W multiples of 8 -> ab in Lab units (N, 2, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.nets.zhang_common import AB_NORM, L_CENT, L_NORM, conv_relu_block

NUM_BINS = 313


class ECCV16(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*conv_relu_block([1, 64, 64], last_stride=2))
        self.model2 = nn.Sequential(*conv_relu_block([64, 128, 128], last_stride=2))
        self.model3 = nn.Sequential(*conv_relu_block([128, 256, 256, 256], last_stride=2))
        self.model4 = nn.Sequential(*conv_relu_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_relu_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_relu_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_relu_block([512, 512, 512, 512]))
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(True),
            *conv_relu_block([256, 256, 256], norm=False),
            nn.Conv2d(256, NUM_BINS, 1),
        )
        self.model_out = nn.Conv2d(NUM_BINS, 2, 1, bias=False)

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        x = (lightness - L_CENT) / L_NORM
        for block in (
            self.model1,
            self.model2,
            self.model3,
            self.model4,
            self.model5,
            self.model6,
            self.model7,
        ):
            x = block(x)
        logits = self.model8(x)
        ab = self.model_out(torch.softmax(logits, dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False) * AB_NORM
