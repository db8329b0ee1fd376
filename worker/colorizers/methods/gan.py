"""``gan``: the report's third attempt (§5.4), a U-Net generator trained against a discriminator.
Nets: :mod:`worker.colorizers.nets.gan`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.colorizers.manifest import trained_weights
from worker.colorizers.method_info import LoadContext, MethodInfo

if TYPE_CHECKING:
    from worker.colorizers.nets.colorizer import NetColorizer

GAN = trained_weights("gan", "0fea222a93d47597360d7b96262866a110830f85ca84b83e3842c6ec1c37b382", 8356417)
# Served at the scale it was trained at (128×128 crops, see gan.md): on the held-out split that beats gray
# on AuC and PSNR, which the same weights served at 256×256 did not quite (PSNR −0.05 dB).
SERVE_SIZE = 128


def load(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.colorizer import NetColorizer
    from worker.colorizers.nets.gan import UNetGenerator
    from worker.colorizers.nets.weights_file import load_weights

    net = UNetGenerator()
    net.load_state_dict(load_weights(ctx.path(GAN), "gan")["state_dict"])
    return NetColorizer("gan", net, ctx.device, size=SERVE_SIZE, bf16=ctx.bf16)


INFO = MethodInfo(
    name="gan",
    title="Strong colours (GAN)",
    description=(
        "A U-Net generator trained against a discriminator that tells real colour photos from "
        "colorized ones, plus an L1 loss (the report's third attempt, after Nazeri et al.). "
        "More saturated colours."
    ),
    load=load,
    weights=(GAN,),
    batchable=True,
    paper="Zhang 2019 (report) §5.4; Nazeri, Ng, Ebrahimi 2018",
    summary="Fast, with stronger colours; sometimes patchy.",
)
