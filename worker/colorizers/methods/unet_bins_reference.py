"""``unet-bins-reference``: the default net's colours steered by a colour reference photo, in one pass.

The method of Phung & Shin's proposal (a feed-forward CNN "that at the final step takes into account
user reference images"): :mod:`worker.colorizers.reference_guided` multiplies ``unet-bins``'s per-pixel
distribution over the colour classes by a prior from the reference's matched colours and its palette. Same
weights as ``unet-bins``; chosen automatically when a request brings a reference and names no method.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.colorizers.method_info import LoadContext, MethodInfo
from worker.colorizers.methods import unet_bins

if TYPE_CHECKING:
    from worker.colorizers.reference_guided import ReferenceGuidedColorizer


def load(ctx: LoadContext) -> ReferenceGuidedColorizer:
    from worker.colorizers.reference_guided import ReferenceGuidedColorizer

    return ReferenceGuidedColorizer(unet_bins.load(ctx).net, ctx.device)


INFO = MethodInfo(
    name="unet-bins-reference",
    title="Colours from a reference (fast)",
    summary="Our automatic colours, steered towards the colours of a reference photo you choose. Seconds.",
    description=(
        "Give it a colour photo of a similar scene: every part of your photo is matched to the part of the "
        "reference that looks alike (in gray, so colour cannot mislead the match), and the U-Net's colour "
        "guess is pulled towards the reference's colour there; where nothing matches well, towards the "
        "reference's colours at that brightness. One pass, seconds. The same reference gives a whole batch "
        "of related photos consistent colours. Colour hints still steer it where it is wrong."
    ),
    load=load,
    params=unet_bins.INFO.params,
    needs_reference=True,
    weights=unet_bins.INFO.weights,
    paper="Zhang et al. 2016 (colour classes); Welsh, Ashikhmin & Mueller 2002 (matching by luminance); "
    "Phung & Shin's proposal (reference-guided feed-forward colorization)",
)
