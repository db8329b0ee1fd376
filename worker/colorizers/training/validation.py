"""Validation figures computed during training (torch, batched).

L is in [0, 100] and ab in Lab units, as the nets take and return them; the errors are on ``ab / 128``.
- ``mse``: mean squared error of ab/128 (the cnn/fusion training loss, report eq. 4 without the ½);
- ``mae``: mean absolute error of ab/128 (the GAN's L1 term);
- ``acc_eq9``: report eq. 9 share of pixels with |Δa| and |Δb| both ≤ 0.02 in ab/128 units, normalised by H·W;
- ``auc``: Zhang's raw-accuracy area: share of pixels with Euclidean ab error ≤ t (Lab units), t = 0…150;
- ``psnr``: RGB PSNR (dB, per image, averaged) of L + predicted ab against the true photo;
- ``chroma``: mean predicted chroma √(a² + b²) in Lab units.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from worker.colorizers.lab import lab_to_rgb_torch, normalize_ab

AUC_THRESHOLDS = torch.arange(0, 151, dtype=torch.float32)


@dataclass
class ValidationStats:
    """Running sums over a validation pass; :meth:`result` gives the means."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0

    def add(self, lightness: torch.Tensor, ab_true: torch.Tensor, ab_pred: torch.Tensor) -> None:
        """lightness (N, 1, H, W) in [0, 100]; ab_true, ab_pred (N, 2, H, W) in Lab units."""
        n = ab_true.shape[0]
        ab_true, ab_pred = ab_true.float(), ab_pred.float()
        diff = (normalize_ab(ab_pred) - normalize_ab(ab_true)).abs()
        per = {
            "mse": (diff**2).mean(dim=(1, 2, 3)),
            "mae": diff.mean(dim=(1, 2, 3)),
            "acc_eq9": (diff <= 0.02).all(dim=1).float().mean(dim=(1, 2)),
        }
        dist = (ab_pred - ab_true).pow(2).sum(dim=1).sqrt().flatten(1)  # (N, HW) Lab units
        thresholds = AUC_THRESHOLDS.to(dist.device)
        curve = torch.stack([(dist <= t).float().mean(dim=1) for t in thresholds], dim=1)
        # metrics.curve_auc's: the mean over the thresholds 0..150 (a trapezoid / 150 read 0.002-0.003
        # higher, more than the gap between two of the nets, beside `colorlab evaluate`'s figures)
        per["auc"] = curve.mean(dim=1)
        rgb_pred = lab_to_rgb_torch(torch.cat([lightness, ab_pred], dim=1))
        rgb_true = lab_to_rgb_torch(torch.cat([lightness, ab_true], dim=1))
        mse_rgb = ((rgb_pred - rgb_true) ** 2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
        per["psnr"] = 10 * torch.log10(1.0 / mse_rgb)
        per["chroma"] = ab_pred.pow(2).sum(dim=1).sqrt().mean(dim=(1, 2))
        for key, values in per.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(values.sum())
        self.count += n

    def result(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}
