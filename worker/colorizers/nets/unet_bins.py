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

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worker.colorizers.base import PredictsOneAsABatch
from worker.colorizers.edge_aware import guided_filter
from worker.colorizers.methods.unet_bins import VIVIDNESS_DEFAULT
from worker.colorizers.nets.colorizer import channels_last
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
            assert conv.bias is not None  # Conv2d's default bias=True
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, hints: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        h4 = self.down4(hints)
        h8 = self.down8(h4)
        h16 = self.down16(h8)
        return self.out4(h4), self.out8(h8), self.out16(h16)


class UNetBins(nn.Module):
    # Buffers (register_buffer below), declared so that the type checker knows them as tensors.
    bins: Tensor
    mean: Tensor
    std: Tensor

    def __init__(self, bins: Tensor, widths: tuple[int, int, int] = (64, 128, 256)) -> None:
        super().__init__()
        self.encoder = MobileNetV2()
        del self.encoder.classifier  # only the convolutional features are used
        self.register_buffer("bins", bins.float().clone(), persistent=True)
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)
        _, c4, c8, c16, c32 = STAGE_CHANNELS
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
        return self.classify(self.decoded(lightness, hint_ab, hint_mask, features))

    def decoded(
        self,
        lightness: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        features: list[Tensor] | None = None,
    ) -> Tensor:
        """The decoder's last features (N, widths[0], H/4, W/4), from which :attr:`classify` makes the
        logits (arguments as :meth:`logits`)."""
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
        return self.up4(x, s4, h4)

    def forward(
        self,
        lightness: Tensor,
        hint_ab: Tensor | None = None,
        hint_mask: Tensor | None = None,
        temperature: float = 0.38,
    ) -> Tensor:
        """L in [0, 100] -> ab in Lab units at the input resolution (annealed mean of the bins)."""
        return self.decode(self.logits(lightness, hint_ab, hint_mask), lightness.shape[-2:], temperature)

    def decode(self, logits: Tensor, size: Sequence[int], temperature: float = 0.38) -> Tensor:
        """Logits -> ab in Lab units, upsampled to ``size`` (the input's height and width)."""
        from worker.colorizers.colour_bins import annealed_mean

        ab = annealed_mean(logits, self.bins, temperature)
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)


# --- serving ---------------------------------------------------------------------------------------------

# The net's input: short side in pixels (rounded to a multiple of 32); chosen in benchmarks/RESULTS.md.
SERVE_SHORT_SIDE = 160
SERVE_MAX_LONG_SIDE = 1024
# A hint covers a square of this fraction of the short side (≥ 3 px): 8 px at the serving size, about the
# training patches' relative size. 10 true hints, round-2 weights, AuC/PSNR gain over gray on imagenet val:
# 1/40 +0.013/-0.13 dB, 1/20 +0.020/+0.30, 1/12 +0.023/+0.53 (bigger squares also spill over edges).
HINT_PATCH_FRACTION = 1 / 20


# The served ab is evened out along the photo's edges (a guided filter over the net's input, guided by its L):
# neighbouring locations that picked different colour classes for one gray sweater made rainbow patches,
# a yellow band on a forehead. benchmarks/bench_edge_smoothing.py, imagenet-samples val (97) / colour-photos
# val (1,033), the net's own -> radius 12, eps 3e-3: AuC 0.8713 -> 0.8743 / 0.8975 -> 0.8992, PSNR 21.05 ->
# 21.42 / 23.06 -> 23.35 dB, colourfulness 43.3 -> 39.4 / 43.6 -> 40.0 (truth 41.9 / 41.3), roughness where L
# is flat 0.78 -> 0.35 / 1.15 -> 0.51. Radius 8 (session 15) left the bundled example's forehead band (its
# most yellow b 22; now 3) and patches on the sweater; 16 mutes more (colourfulness 38.1) and a small
# colourful part near its surroundings' lightness more (a pheasant's wattle, a ≈ 16 / 12 / 8 at radius
# 8 / 12 / 16; the net's own 22, the truth 62). eps barely matters (1e-3 to 1e-2).
SMOOTH_RADIUS = 12
SMOOTH_EPS = 3e-3


def vividness_to_temperature(vividness: float) -> float:
    """0 -> T 1 (the plain mean: safe, muted); 0.5 -> T 0.38 (Zhang et al.'s); 1 -> T 0.144 (vivid)."""
    return float(0.38 ** (2.0 * min(max(vividness, 0.0), 1.0)))


def serve_shape(height: int, width: int, short: int = SERVE_SHORT_SIDE) -> tuple[int, int]:
    """The net's input size for a photo: aspect kept, short side ``short`` (long side at most
    :data:`SERVE_MAX_LONG_SIDE`, for panoramas), both multiples of 32."""
    scale = min(short / max(1, min(height, width)), SERVE_MAX_LONG_SIDE / max(1, height, width))
    return (
        max(MULTIPLE, round(height * scale / MULTIPLE) * MULTIPLE),
        max(MULTIPLE, round(width * scale / MULTIPLE) * MULTIPLE),
    )


def rasterise_hints(hints: list[dict[str, Any]], height: int, width: int) -> tuple[Tensor, Tensor]:
    """Hints (relative x, y, '#rrggbb') -> hint_ab (1, 2, H, W) and mask (1, 1, H, W) at the input size."""
    from worker.colorizers.hints import hint_ab

    ab = torch.zeros(1, 2, height, width)
    mask = torch.zeros(1, 1, height, width)
    side = max(3, round(min(height, width) * HINT_PATCH_FRACTION))
    for hint in hints:
        cy = min(height - 1, int(hint["y"] * height))
        cx = min(width - 1, int(hint["x"] * width))
        # the whole square inside the photo on every side: a hint at an edge counts as much as one inside
        top = min(max(0, cy - side // 2), max(0, height - side))
        left = min(max(0, cx - side // 2), max(0, width - side))
        a, b = hint_ab(hint)
        ab[0, 0, top : top + side, left : left + side] = a
        ab[0, 1, top : top + side, left : left + side] = b
        mask[0, :, top : top + side, left : left + side] = 1.0
    return ab, mask


class UNetBinsColorizer(PredictsOneAsABatch):
    """Serves :class:`UNetBins` through the Colorizer/BatchColorizer protocols (options: vividness, hints).

    Each photo's L is resized to :func:`serve_shape`; photos of the same shape run as one batch.
    The ab comes back at the net's input size, evened out along the photo's edges (``smoothing``: the guided
    filter's radius and eps; None gives the net's own), and the pipeline upsamples it and joins the photo's L.
    """

    def __init__(
        self,
        net: UNetBins,
        device: str = "cpu",
        short_side: int = SERVE_SHORT_SIDE,
        smoothing: tuple[int, float] | None = (SMOOTH_RADIUS, SMOOTH_EPS),
    ) -> None:
        self.name = "unet-bins"
        self.device = device
        self.short_side = short_side
        self.smoothing = smoothing
        self.net = channels_last(net.to(device).eval())

    def predict_ab_batch(
        self, lightness: list[np.ndarray], *, params: Mapping[str, Any] | None = None
    ) -> list[np.ndarray]:
        params = params or {}
        temperature = vividness_to_temperature(float(params.get("vividness", VIVIDNESS_DEFAULT)))
        hints = list(params.get("hints") or ())
        groups: dict[tuple[int, int], list[int]] = {}
        for i, plane in enumerate(lightness):
            shape = serve_shape(plane.shape[0], plane.shape[1], short=self.short_side)
            groups.setdefault(shape, []).append(i)
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(lightness)
        with torch.inference_mode():
            for (h, w), members in groups.items():
                batch = torch.cat(
                    [
                        F.interpolate(
                            torch.from_numpy(np.ascontiguousarray(lightness[i], dtype=np.float32))[
                                None, None
                            ],
                            size=(h, w),
                            mode="bilinear",
                            align_corners=False,
                            antialias=True,
                        )
                        for i in members
                    ]
                ).to(self.device)
                hint_ab = hint_mask = None
                if hints:
                    ab1, mask1 = rasterise_hints(hints, h, w)
                    hint_ab = ab1.expand(len(members), -1, -1, -1).to(self.device)
                    hint_mask = mask1.expand(len(members), -1, -1, -1).to(self.device)
                batch = batch.contiguous(memory_format=torch.channels_last)
                ab = self.net(batch, hint_ab, hint_mask, temperature=temperature).float()
                if self.smoothing is not None:
                    radius, eps = self.smoothing
                    ab = guided_filter(batch.float() / 100.0, ab, radius=radius, eps=eps)
                for j, i in enumerate(members):
                    out[i] = ab[j].permute(1, 2, 0).cpu().numpy().astype(np.float32)
        return out
