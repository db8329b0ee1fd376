"""One training task per architecture: its networks, optimisers, one training step and its prediction.

Batches arrive as RGB uint8 (N, 3, S, S) plus the photos' dataset indices; :func:`lab_batch` turns them
into ``l_norm = L / 50 - 1`` (N, 1, S, S), ``ab_norm = ab / 128`` (N, 2, S, S) and L itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker.colorizers.lab import AB_SCALE, L_CENTER, rgb_to_lab_torch


def lab_batch(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RGB uint8 (N, 3, S, S) -> (l_norm, ab_norm, L) as float32 tensors."""
    lab = rgb_to_lab_torch(rgb)
    lightness = lab[:, :1]
    return lightness / L_CENTER - 1.0, lab[:, 1:] / AB_SCALE, lightness


class Task:
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

    def prepare(self, datasets: Sequence[Any], cache_dir: Any = None) -> None:
        """Hook run once before training (fusion precomputes classifier outputs here)."""

    def init_from(self, blob: dict[str, Any]) -> None:
        """Start from exported weights (``load_weights`` output) instead of a random initialisation."""
        if blob["arch"] != self.arch:
            raise ValueError(f"cannot initialise {self.arch} from {blob['arch']} weights")
        next(iter(self.nets.values())).load_state_dict(blob["state_dict"])

    def train_step(self, rgb: torch.Tensor, index: torch.Tensor, split: str = "train") -> dict[str, float]:
        raise NotImplementedError

    def predict(self, l_norm: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        """ab_norm for a batch (eval mode, no grad)."""
        raise NotImplementedError

    def export(self) -> dict[str, Any]:
        """What the weights file stores: ``{"arch", "state_dict", "config"}`` for the served network."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)


class CNNTask(Task):
    """Report §5.2: MSE on ab/128, Adam."""

    arch = "cnn"

    def __init__(self, lr: float = 1e-3, device: str = "cpu") -> None:
        super().__init__(lr, device)
        from worker.colorizers.nets.cnn import ColorizationCNN

        self.model = ColorizationCNN().to(device)
        self.nets = {"model": self.model}
        self.optims = {"model": torch.optim.Adam(self.model.parameters(), lr=lr)}

    def forward(self, l_norm: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        return self.model(l_norm)

    def train_step(self, rgb: torch.Tensor, index: torch.Tensor, split: str = "train") -> dict[str, float]:
        l_norm, ab_norm, _ = lab_batch(rgb.to(self.device))
        opt = self.optims["model"]
        opt.zero_grad(set_to_none=True)
        with self.amp():
            pred = self.forward(l_norm, index, split)
        loss = F.mse_loss(pred.float(), ab_norm)
        loss.backward()
        opt.step()
        return {"loss": loss.detach().item()}

    @torch.no_grad()
    def predict(self, l_norm: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        with self.amp():
            return self.forward(l_norm, index, split).float()

    def export(self) -> dict[str, Any]:
        return {"arch": self.arch, "state_dict": self.model.state_dict(), "config": {}}


class FusionTask(CNNTask):
    """Report §5.3: the cnn's encoder/decoder fused with precomputed classifier outputs; MSE, Adam."""

    arch = "fusion"

    def __init__(self, lr: float = 1e-3, device: str = "cpu") -> None:
        Task.__init__(self, lr, device)
        from worker.colorizers.nets.fusion import FusionNet

        self.model = FusionNet().to(device)
        self.nets = {"model": self.model}
        self.optims = {"model": torch.optim.Adam(self.model.parameters(), lr=lr)}
        self.features: dict[str, torch.Tensor] = {}

    def prepare(self, datasets: Sequence[Any], cache_dir: Any = None) -> None:
        from worker.colorizers.nets.fusion import precompute_class_vectors

        for split, dataset in zip(("train", "val"), datasets, strict=False):
            self.features[split] = precompute_class_vectors(dataset, cache_dir=cache_dir, split=split)

    def forward(self, l_norm: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        vectors = self.features[split][index.cpu()].to(l_norm.device)
        return self.model(l_norm, vectors)

    def init_from(self, blob: dict[str, Any]) -> None:
        """From fusion weights, or from trained ``cnn`` weights: the shared encoder/decoder are copied and the
        1×1 fusion convolution starts as the identity on the encoder's 256 channels (zero on the 1000 class
        channels), so training starts exactly from the cnn's predictions and learns to use the classes."""
        if blob["arch"] != "cnn":
            super().init_from(blob)
            return
        state = blob["state_dict"]
        self.model.encoder.load_state_dict(
            {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        )
        self.model.decoder.load_state_dict(
            {k[len("decoder.") :]: v for k, v in state.items() if k.startswith("decoder.")}
        )
        conv = self.model.fusion[0]
        with torch.no_grad():
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, :256, 0, 0] = torch.eye(256)


class GANTask(Task):
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
        l_norm, ab_norm, _ = lab_batch(rgb.to(self.device))
        real = torch.cat([l_norm, ab_norm], dim=1)
        with self.amp():
            fake_ab = self.generator(l_norm).float()
        fake = torch.cat([l_norm, fake_ab], dim=1)
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
        l1 = F.l1_loss(fake_ab, ab_norm)
        loss_g = adv + self.l1_weight * l1
        loss_g.backward()
        opt_g.step()
        return {"loss": l1.detach().item(), "g_adv": adv.detach().item(), "d": loss_d.detach().item()}

    @torch.no_grad()
    def predict(self, l_norm: torch.Tensor, index: torch.Tensor, split: str) -> torch.Tensor:
        with self.amp():
            return self.generator(l_norm).float()

    def init_from(self, blob: dict[str, Any]) -> None:
        """From exported gan weights: the generator only (the discriminator starts afresh)."""
        if blob["arch"] != "gan":
            raise ValueError(f"cannot initialise gan from {blob['arch']} weights")
        self.generator.load_state_dict(blob["state_dict"])

    def export(self) -> dict[str, Any]:
        return {"arch": self.arch, "state_dict": self.generator.state_dict(), "config": {}}


TASKS: dict[str, type[Task]] = {"cnn": CNNTask, "fusion": FusionTask, "gan": GANTask}
DEFAULTS: dict[str, dict[str, float | int]] = {
    "cnn": {"lr": 1e-3, "batch_size": 50, "patience": 3},
    "fusion": {"lr": 1e-3, "batch_size": 50, "patience": 3},
    "gan": {"lr": 2e-4, "batch_size": 16, "patience": 0},
}


def make_task(arch: str, *, lr: float | None = None, device: str = "cpu", **options: float) -> Task:
    """The task for ``arch``; ``options`` are architecture-specific (gan: ``l1_weight``, ``real_label``)."""
    if arch not in TASKS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(TASKS)}")
    return TASKS[arch](lr=float(lr if lr is not None else DEFAULTS[arch]["lr"]), device=device, **options)
