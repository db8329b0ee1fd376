"""One training recipe per architecture (cnn, fusion, gan): its networks, optimisers, losses, one training
step and its prediction. ``unet-bins`` has its own trainer
(:mod:`worker.colorizers.training.unet_bins_trainer`).

Batches arrive as RGB uint8 (N, 3, S, S) plus the photos' dataset indices; :func:`lab_batch` turns them into
L (N, 1, S, S) and ab (N, 2, S, S) in Lab units, which is what the nets take and return. The losses are on
``ab / 128`` (:func:`~worker.colorizers.lab.normalize_ab`), as in the report.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.lab import normalize_ab, rgb_to_lab_torch
from worker.colorizers.training.class_vectors import precompute_class_vectors


def lab_batch(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 (N, 3, S, S) -> (L, ab) as float32 tensors in Lab units."""
    lab = rgb_to_lab_torch(rgb)
    return lab[:, :1], lab[:, 1:]


class Recipe(ABC):
    """Base: subclasses set ``arch``, build ``nets`` and ``optims`` and implement the steps."""

    arch: str = ""
    monitor: str = "mse"  # validation figure used for early stopping and the best checkpoint
    nets: dict[str, nn.Module]
    optims: dict[str, torch.optim.Optimizer]

    def __init__(self, lr: float, device: str) -> None:
        self.lr = lr
        self.device = device
        self.bf16 = False  # bfloat16 autocast for the forward passes (set by the trainer)

    def amp(self) -> torch.autocast:
        """Autocast context for forward passes (a no-op unless ``bf16``); losses are computed in float32."""
        return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16)

    def prepare(self, datasets: Sequence[Any], cache_dir: Path | None = None) -> None:  # noqa: B027
        """Hook run once before training (fusion precomputes classifier outputs here); most need none."""

    def init_from(self, blob: dict[str, Any]) -> None:
        """Start from exported weights (``load_weights`` output) instead of a random initialisation."""
        if blob["arch"] != self.arch:
            raise ValueError(f"cannot initialise {self.arch} from {blob['arch']} weights")
        next(iter(self.nets.values())).load_state_dict(blob["state_dict"])

    @abstractmethod
    def train_step(self, rgb: torch.Tensor, index: torch.Tensor, split: str = "train") -> dict[str, float]:
        """One optimisation step on a batch of RGB crops: the losses, for the log."""

    @abstractmethod
    def predict(self, lightness: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        """ab in Lab units for a batch of L (eval mode, no grad)."""

    @abstractmethod
    def export(self) -> dict[str, Any]:
        """What the weights file stores: ``{"arch", "state_dict", "config"}`` for the served network."""

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)


class CNNRecipe(Recipe):
    """Report §5.2: MSE on ab/128, Adam."""

    arch = "cnn"
    model: nn.Module  # a ColorizationCNN here, a FusionNet in FusionRecipe

    def __init__(self, lr: float = 1e-3, device: str = "cpu") -> None:
        super().__init__(lr, device)
        from worker.colorizers.nets.cnn import ColorizationCNN

        self.model = ColorizationCNN().to(device)
        self.nets = {"model": self.model}
        self.optims = {"model": torch.optim.Adam(self.model.parameters(), lr=lr)}

    def forward(self, lightness: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        out: torch.Tensor = self.model(lightness)
        return out

    def train_step(self, rgb: torch.Tensor, index: torch.Tensor, split: str = "train") -> dict[str, float]:
        lightness, ab = lab_batch(rgb.to(self.device))
        opt = self.optims["model"]
        opt.zero_grad(set_to_none=True)
        with self.amp():
            pred = self.forward(lightness, index, split)
        loss = F.mse_loss(normalize_ab(pred.float()), normalize_ab(ab))
        loss.backward()
        opt.step()
        return {"loss": loss.detach().item()}

    @torch.no_grad()
    def predict(self, lightness: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        with self.amp():
            return self.forward(lightness, index, split).float()

    def export(self) -> dict[str, Any]:
        return {"arch": self.arch, "state_dict": self.model.state_dict(), "config": {}}


class FusionRecipe(CNNRecipe):
    """Report §5.3: the cnn's encoder/decoder fused with precomputed classifier outputs; MSE, Adam."""

    arch = "fusion"

    def __init__(self, lr: float = 1e-3, device: str = "cpu") -> None:
        Recipe.__init__(self, lr, device)
        from worker.colorizers.nets.fusion import FusionNet

        self.model = FusionNet().to(device)
        self.nets = {"model": self.model}
        self.optims = {"model": torch.optim.Adam(self.model.parameters(), lr=lr)}
        self.features: dict[str, torch.Tensor] = {}

    def prepare(self, datasets: Sequence[Any], cache_dir: Path | None = None) -> None:
        for split, dataset in zip(("train", "val"), datasets, strict=False):
            self.features[split] = precompute_class_vectors(dataset, cache_dir=cache_dir, split=split)

    def forward(self, lightness: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        vectors = self.features[split][index.cpu()].to(lightness.device)
        out: torch.Tensor = self.model(lightness, vectors)
        return out

    def init_from(self, blob: dict[str, Any]) -> None:
        """From fusion weights, or from trained ``cnn`` weights: the shared encoder/decoder are copied and the
        1×1 fusion convolution starts as the identity on the encoder's 256 channels (zero on the 1000 class
        channels), so training starts exactly from the cnn's predictions and learns to use the classes."""
        if blob["arch"] != "cnn":
            super().init_from(blob)
            return
        from worker.colorizers.nets.fusion import FusionNet

        assert isinstance(self.model, FusionNet)  # set in __init__; narrows CNNRecipe's nn.Module
        state = blob["state_dict"]
        self.model.encoder.load_state_dict(
            {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        )
        self.model.decoder.load_state_dict(
            {k[len("decoder.") :]: v for k, v in state.items() if k.startswith("decoder.")}
        )
        conv = self.model.fusion[0]
        assert isinstance(conv, nn.Conv2d) and conv.bias is not None  # fusion = Sequential(Conv2d, ReLU)
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :256, 0, 0] = torch.eye(256)


class GANRecipe(Recipe):
    """Report §5.4 (after Nazeri et al.): U-Net generator, DCGAN discriminator on Lab images.

    Discriminator: binary cross-entropy, real Lab photos vs generated ones. Generator: λ·L1(ab/128) plus the
    non-saturating adversarial term −log D(G(L)) (report eq. 8). Adam 2e-4, β1 = 0.5 for both.
    """

    arch = "gan"
    monitor = "mae"

    def __init__(
        self, lr: float = 2e-4, device: str = "cpu", l1_weight: float = 100.0, real_label: float = 1.0
    ) -> None:
        super().__init__(lr, device)
        self.real_label = real_label  # < 1: one-sided label smoothing of the discriminator's real targets
        from worker.colorizers.nets.gan import Discriminator, UNetGenerator

        self.generator = UNetGenerator().to(device)
        self.discriminator = Discriminator().to(device)
        self.l1_weight = l1_weight
        self.nets = {"generator": self.generator, "discriminator": self.discriminator}
        self.optims = {
            name: torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
            for name, net in self.nets.items()
        }

    def train_step(self, rgb: torch.Tensor, index: torch.Tensor, split: str = "train") -> dict[str, float]:
        lightness, ab = lab_batch(rgb.to(self.device))
        real = torch.cat([lightness, ab], dim=1)
        with self.amp():
            fake_ab = self.generator(lightness).float()
        fake = torch.cat([lightness, fake_ab], dim=1)
        # Discriminator: log D(real) + log(1 - D(fake)).
        opt_d = self.optims["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        with self.amp():
            logit_real = self.discriminator(real).float()
            logit_fake = self.discriminator(fake.detach()).float()
        loss_d = 0.5 * (
            F.binary_cross_entropy_with_logits(logit_real, torch.full_like(logit_real, self.real_label))
            + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
        )
        loss_d.backward()
        opt_d.step()
        # Generator: non-saturating -log D(G(z)) + λ L1.
        opt_g = self.optims["generator"]
        opt_g.zero_grad(set_to_none=True)
        with self.amp():
            logit = self.discriminator(fake).float()
        adv = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit))
        l1 = F.l1_loss(normalize_ab(fake_ab), normalize_ab(ab))
        loss_g = adv + self.l1_weight * l1
        loss_g.backward()
        opt_g.step()
        return {"loss": l1.detach().item(), "g_adv": adv.detach().item(), "d": loss_d.detach().item()}

    @torch.no_grad()
    def predict(self, lightness: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        with self.amp():
            return self.generator(lightness).float()

    def init_from(self, blob: dict[str, Any]) -> None:
        """From exported gan weights: the generator only (the discriminator starts afresh)."""
        if blob["arch"] != "gan":
            raise ValueError(f"cannot initialise gan from {blob['arch']} weights")
        self.generator.load_state_dict(blob["state_dict"])

    def export(self) -> dict[str, Any]:
        return {"arch": self.arch, "state_dict": self.generator.state_dict(), "config": {}}


RECIPES: dict[str, type[Recipe]] = {"cnn": CNNRecipe, "fusion": FusionRecipe, "gan": GANRecipe}
DEFAULTS: dict[str, dict[str, float | int]] = {
    "cnn": {"lr": 1e-3, "batch_size": 50, "patience": 3},
    "fusion": {"lr": 1e-3, "batch_size": 50, "patience": 3},
    "gan": {"lr": 2e-4, "batch_size": 16, "patience": 0},
}


def make_recipe(arch: str, *, lr: float | None = None, device: str = "cpu", **options: float) -> Recipe:
    """The recipe for ``arch``; ``options`` are architecture-specific (gan: ``l1_weight``, ``real_label``)."""
    if arch not in RECIPES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(RECIPES)}")
    lr = float(lr if lr is not None else DEFAULTS[arch]["lr"])
    return RECIPES[arch](lr=lr, device=device, **options)
