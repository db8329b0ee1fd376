"""``eccv16``: Zhang, Isola, Efros 2016 with the official released weights.
Net: :mod:`worker.colorizers.nets.eccv16`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import LoadContext, MethodInfo
from worker.colorizers.weights import download_hub_file

if TYPE_CHECKING:
    from worker.colorizers.nets.colorizer import NetColorizer

ECCV16_WEIGHTS = WeightFile(
    name="eccv16",
    filename="colorization_release_v2-9b330a0b.pth",
    source="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
    licence="BSD-2-Clause (richzhang/colorization)",
    sha256=None,  # only the file name's sha256 prefix 9b330a0b is published; the fetcher checks it
    # fetchable where S3 is reachable; from this sandbox `colorlab weights fetch eccv16` fails cleanly
    fetch=download_hub_file,
)


def load(ctx: LoadContext) -> NetColorizer:
    import torch

    from worker.colorizers.nets.colorizer import NetColorizer
    from worker.colorizers.nets.eccv16 import ECCV16
    from worker.colorizers.nets.zhang_common import load_release_state

    net = ECCV16()
    load_release_state(net, torch.load(ctx.path(ECCV16_WEIGHTS), map_location="cpu", weights_only=True))
    return NetColorizer("eccv16", net, ctx.device, bf16=ctx.bf16)


INFO = MethodInfo(
    name="eccv16",
    title="Zhang et al. 2016 (ECCV)",
    description=(
        "Colorful Image Colorization: a deep VGG-style net that predicts a distribution over 313 "
        "quantised ab colours; the official released weights (fetched separately)."
    ),
    load=load,
    weights=(ECCV16_WEIGHTS,),
    batchable=True,
    paper="Zhang, Isola, Efros 2016, Colorful Image Colorization (ECCV)",
    summary="Vivid colours from Zhang et al.'s well-known 2016 model.",
)
