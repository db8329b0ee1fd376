"""``siggraph17``: Zhang et al. 2017, run automatically, with the official released weights.
Net: :mod:`worker.colorizers.nets.siggraph17`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import LoadContext, MethodInfo
from worker.colorizers.weights import download_hub_file

if TYPE_CHECKING:
    from worker.colorizers.nets.colorizer import NetColorizer

SIGGRAPH17_WEIGHTS = WeightFile(
    name="siggraph17",
    filename="siggraph17-df00044c.pth",
    source="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
    licence="BSD-2-Clause (richzhang/colorization)",
    sha256=None,  # only the file name's sha256 prefix df00044c is published; the fetcher checks it
    fetch=download_hub_file,
)


def load(ctx: LoadContext) -> NetColorizer:
    import torch

    from worker.colorizers.nets.colorizer import NetColorizer
    from worker.colorizers.nets.siggraph17 import SIGGRAPH17
    from worker.colorizers.nets.zhang_common import load_release_state

    net = SIGGRAPH17()
    load_release_state(net, torch.load(ctx.path(SIGGRAPH17_WEIGHTS), map_location="cpu", weights_only=True))
    return NetColorizer("siggraph17", net, ctx.device, bf16=ctx.bf16)


INFO = MethodInfo(
    name="siggraph17",
    title="Zhang et al. 2017 (SIGGRAPH)",
    description=(
        "Real-Time User-Guided Image Colorization with Learned Deep Priors, run automatically "
        "(no user hints); the official released weights (fetched separately)."
    ),
    load=load,
    weights=(SIGGRAPH17_WEIGHTS,),
    batchable=True,
    paper="Zhang, Zhu, Isola, Geng, Lin, Yu, Efros 2017 (SIGGRAPH)",
    summary="Natural colours from Zhang et al.'s 2017 model.",
)
