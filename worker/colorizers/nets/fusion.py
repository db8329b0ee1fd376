"""The report's second attempt (§5.3, after Baldassarre et al.): encoder/decoder fused with a classifier.

The gray photo (3 equal channels, resized to 224×224) goes through the ImageNet classifier
(EfficientNet-Lite0, :mod:`worker.colorizers.classifier`); its 1000 class probabilities are tiled to
H/8×W/8, concatenated with the encoder's 256 channels, mixed by a 1×1 convolution (256, ReLU) and decoded.
``forward``: L in [0, 100] (N, 1, H, W) and class probabilities (N, 1000) -> ab in Lab units (N, 2, H, W);
inside, the layers see ``L / 50 - 1`` and the tanh output is ``ab / 128``. The classifier is frozen; for
training its outputs are precomputed once per photo (:mod:`worker.colorizers.training.class_vectors`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.classifier import IMAGENET_CLASSES
from worker.colorizers.lab import denormalize_ab, lightness_to_gray_torch, normalize_l
from worker.colorizers.nets.cnn import Decoder, Encoder, init_weights
from worker.colorizers.nets.colorizer import NetColorizer

CLASSIFIER_SIZE = 224


class FusionNet(nn.Module):
    """``forward(L (N,1,H,W), class_probs (N,1000)) -> ab (N,2,H,W)``."""

    def __init__(self, num_classes: int = IMAGENET_CLASSES) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.fusion = nn.Sequential(nn.Conv2d(256 + num_classes, 256, 1), nn.ReLU(inplace=True))
        self.decoder = Decoder(256)
        init_weights(self)

    def forward(self, lightness: torch.Tensor, class_probs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(normalize_l(lightness))
        n, _, h, w = features.shape
        tiled = class_probs.to(features.dtype)[:, :, None, None].expand(n, class_probs.shape[1], h, w)
        return denormalize_ab(self.decoder(self.fusion(torch.cat([features, tiled], dim=1))))


def classifier_input(lightness: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] (N, 1, H, W) -> classifier input: gray sRGB ×3, 224×224, EfficientNet-Lite norm."""
    from worker.colorizers.classifier import normalize_tensor

    gray = lightness_to_gray_torch(lightness.float())
    gray = F.interpolate(
        gray, size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE), mode="bilinear", align_corners=False, antialias=True
    )
    return normalize_tensor(gray.expand(-1, 3, -1, -1)).contiguous()


@torch.no_grad()
def class_probabilities(classifier: nn.Module, lightness: torch.Tensor) -> torch.Tensor:
    """(N, 1000) softmax class probabilities of the gray photos (L in [0, 100])."""
    return torch.softmax(classifier(classifier_input(lightness)).float(), dim=1)


class FusionColorizer(NetColorizer):
    """Serves :class:`FusionNet`: runs the classifier on the gray input, then the fused net."""

    def __init__(
        self,
        net: FusionNet,
        classifier: nn.Module,
        device: str = "cpu",
        size: int = 256,
        bf16: bool = True,
    ) -> None:
        super().__init__("fusion", net, device, size, bf16)
        self.classifier = classifier.to(device).eval()

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        return self.net(lightness, class_probabilities(self.classifier, lightness))
