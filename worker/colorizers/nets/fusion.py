"""The report's second attempt (§5.3, after Baldassarre et al.): encoder/decoder fused with a classifier.

The gray photo (3 equal channels, resized to 224×224) goes through the ImageNet classifier
(EfficientNet-Lite0, :mod:`worker.colorizers.classifier`); its 1000 class probabilities are tiled to
H/8×W/8, concatenated with the encoder's 256 channels, mixed by a 1×1 convolution (256, ReLU) and decoded.
Input ``L / 50 - 1`` (N, 1, H, W) and class probabilities (N, 1000); output ``ab / 128`` (N, 2, H, W).
The classifier is frozen; for training its outputs are precomputed once per photo (as the report did).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.lab import L_CENTER, lightness_to_gray_torch
from worker.colorizers.nets.cnn import Decoder, Encoder, init_weights
from worker.colorizers.nets.colorizer import NetColorizer

NUM_CLASSES = 1000
CLASSIFIER_SIZE = 224


class FusionNet(nn.Module):
    """``forward(l_norm (N,1,H,W), class_probs (N,1000)) -> ab_norm (N,2,H,W)``."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.fusion = nn.Sequential(nn.Conv2d(256 + num_classes, 256, 1), nn.ReLU(inplace=True))
        self.decoder = Decoder(256)
        init_weights(self)

    def forward(self, l_norm: torch.Tensor, class_probs: torch.Tensor) -> torch.Tensor:
        features = self.encoder(l_norm)
        n, _, h, w = features.shape
        tiled = class_probs.to(features.dtype)[:, :, None, None].expand(n, class_probs.shape[1], h, w)
        return self.decoder(self.fusion(torch.cat([features, tiled], dim=1)))


def classifier_input(l_norm: torch.Tensor) -> torch.Tensor:
    """``L / 50 - 1`` (N, 1, H, W) -> classifier input: gray sRGB ×3, 224×224, EfficientNet-Lite norm."""
    from worker.colorizers.classifier import normalize_tensor

    gray = lightness_to_gray_torch((l_norm.float() + 1.0) * L_CENTER)
    gray = F.interpolate(
        gray, size=(CLASSIFIER_SIZE, CLASSIFIER_SIZE), mode="bilinear", align_corners=False, antialias=True
    )
    return normalize_tensor(gray.expand(-1, 3, -1, -1)).contiguous()


@torch.no_grad()
def class_probabilities(classifier: nn.Module, l_norm: torch.Tensor) -> torch.Tensor:
    """(N, 1000) softmax class probabilities of the gray photos."""
    return torch.softmax(classifier(classifier_input(l_norm)).float(), dim=1)


@torch.no_grad()
def precompute_class_vectors(
    dataset: Any, *, cache_dir: Path | None = None, split: str = "train", batch_size: int = 32
) -> torch.Tensor:
    """(len(dataset), 1000) class probabilities of each photo's centre crop (short side = the crop size).

    Cached in ``cache_dir`` under a key made of the photo names and size, so a resumed run reuses them.
    """
    from worker.colorizers.classifier import load_classifier
    from worker.colorizers.datasets import PhotoDataset
    from worker.colorizers.training.tasks import lab_batch

    key = hashlib.sha256(
        ("\n".join(r.label for r in dataset.refs) + f"|{dataset.size}").encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"fusion-classes-{split}-{key}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        return torch.load(cache, weights_only=True)
    classifier = load_classifier("cpu")
    plain = PhotoDataset(dataset.refs, dataset.size, train=False)
    plain._cached = dataset._cached  # share decoded photos
    out = []
    for start in range(0, len(plain), batch_size):
        rgb = torch.stack([plain[i][0] for i in range(start, min(start + batch_size, len(plain)))])
        l_norm, _, _ = lab_batch(rgb)
        out.append(class_probabilities(classifier, l_norm))
    vectors = torch.cat(out) if out else torch.zeros(0, NUM_CLASSES)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(vectors, cache)
    return vectors


class FusionColorizer(NetColorizer):
    """Serves :class:`FusionNet`: runs the classifier on the gray input, then the fused net."""

    def __init__(
        self,
        net: FusionNet,
        classifier: nn.Module,
        device: str = "cpu",
        size: int = 256,
        bf16: bool | None = None,
    ) -> None:
        super().__init__("fusion", net, device, size, bf16)
        self.classifier = classifier.to(device).eval()

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm, class_probabilities(self.classifier, l_norm))
