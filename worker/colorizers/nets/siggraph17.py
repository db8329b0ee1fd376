"""Zhang et al. 2017 "Real-Time User-Guided Image Colorization with Learned Deep Priors" (SIGGRAPH).

Parameter names and shapes equal the official release ``siggraph17-df00044c.pth`` (richzhang/colorization):
``model1`` … ``model10`` with the up-convolutions ``model8up``/``model9up``/``model10up``, the shortcuts
``model3short8``/``model2short9``/``model1short10``, the 529-way ``model_class`` head (kept for the keys; the
automatic colorization does not use it) and the regression head ``model_out`` (tanh, units of 110).
Inputs: L in [0, 100] (N, 1, H, W); optional ab hints in Lab units (N, 2, H, W) and their mask (N, 1, H, W)
(1 where a hint is given); without hints both are zero (automatic colorization). H, W multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from worker.colorizers.nets.zhang_common import AB_NORM, L_CENT, L_NORM, conv_relu_block

AB_BINS = 529  # the release's classification head (its ab bins), not ImageNet classes


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))


def _short(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1))


class SIGGRAPH17(nn.Module):
    def __init__(self, classes: int = AB_BINS) -> None:
        super().__init__()
        self.model1 = nn.Sequential(*conv_relu_block([4, 64, 64]))
        self.model2 = nn.Sequential(*conv_relu_block([64, 128, 128]))
        self.model3 = nn.Sequential(*conv_relu_block([128, 256, 256, 256]))
        self.model4 = nn.Sequential(*conv_relu_block([256, 512, 512, 512]))
        self.model5 = nn.Sequential(*conv_relu_block([512, 512, 512, 512], dilation=2))
        self.model6 = nn.Sequential(*conv_relu_block([512, 512, 512, 512], dilation=2))
        self.model7 = nn.Sequential(*conv_relu_block([512, 512, 512, 512]))
        self.model8up = _up(512, 256)
        self.model3short8 = _short(256, 256)
        self.model8 = nn.Sequential(*conv_relu_block([256, 256, 256], lead_relu=True))
        self.model9up = _up(256, 128)
        self.model2short9 = _short(128, 128)
        self.model9 = nn.Sequential(*conv_relu_block([128, 128], lead_relu=True))
        self.model10up = _up(128, 128)
        self.model1short10 = _short(64, 128)
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, 3, padding=1), nn.LeakyReLU(0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, classes, 1))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, 1), nn.Tanh())

    def forward(
        self, lightness: torch.Tensor, hints: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        n, _, h, w = lightness.shape
        if hints is None:
            hints = lightness.new_zeros(n, 2, h, w)
        if mask is None:
            mask = lightness.new_zeros(n, 1, h, w)
        x = torch.cat([(lightness - L_CENT) / L_NORM, hints / AB_NORM, mask], dim=1)
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        x = self.model4(conv3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        x = self.model8(self.model8up(x) + self.model3short8(conv3))
        x = self.model9(self.model9up(x) + self.model2short9(conv2))
        x = self.model10(self.model10up(x) + self.model1short10(conv1))
        return self.model_out(x) * AB_NORM
