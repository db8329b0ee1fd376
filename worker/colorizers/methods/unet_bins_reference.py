"""``unet-bins-reference``: the default net's colours steered by a colour reference photo, in one pass.

The method of Phung & Shin's proposal (a feed-forward CNN "that at the final step takes into account
user reference images"): :mod:`worker.colorizers.reference_guided` turns the reference's matched colours and
palette into a prior over ``unet-bins``'s colour classes, and a small learned last step
(:mod:`worker.colorizers.nets.reference_fusion`) decides per location how far to follow it. Weights:
``unet-bins``'s and the fusion's (both committed); chosen automatically when a request brings a reference
and names no method.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import LoadContext, MethodInfo, Param
from worker.colorizers.methods import unet_bins

if TYPE_CHECKING:
    from worker.colorizers.reference_guided import ReferenceGuidedColorizer


FOLLOW_DEFAULT = 0.5  # ``follow_reference``: the learned step's own balance

# The committed fusion weights (update sha256 and size when retraining).
REFERENCE_FUSION = WeightFile(
    name="reference-fusion",
    filename="reference-fusion.pt",
    source="trained by `colorlab train --arch reference-fusion` on same-class pairs of "
    "../shared/data/colour-photos training photos, over the committed unet-bins (see reference-fusion.md)",
    licence="MIT (ColorLab); trained on research-use photos (colour-photos SOURCES.md)",
    sha256="004d8a81774145130e4263462ee68872986a807c6cfbd3d0034688d61ff65c8a",
    size=173333,
    bundled=True,
)


def load(ctx: LoadContext) -> ReferenceGuidedColorizer:
    from worker.colorizers.nets.reference_fusion import ARCH, ReferenceFusion
    from worker.colorizers.nets.weights_file import load_weights
    from worker.colorizers.reference_guided import ReferenceGuidedColorizer

    blob = load_weights(ctx.path(REFERENCE_FUSION), ARCH)
    fusion = ReferenceFusion(**blob["config"])
    fusion.load_state_dict(blob["state_dict"])
    return ReferenceGuidedColorizer(unet_bins.load(ctx).net, fusion, ctx.device)


INFO = MethodInfo(
    name="unet-bins-reference",
    title="Colours from a reference (fast)",
    summary="Our automatic colours, steered towards the colours of a reference photo you choose. Seconds.",
    description=(
        "Give it a colour photo of a similar scene whose things have the colours you want (the reference "
        "decides the colours): every part of your photo is matched to the part of the "
        "reference that looks alike (in gray, so colour cannot mislead the match), and the U-Net's colour "
        "guess is pulled towards the reference's colour there; where nothing matches well, towards the "
        "reference's colours at that brightness. A small learned last step decides, part by part, how far "
        "to follow the reference: fully where it matches well, less where the reference's object may well "
        'have another colour than yours; "follow reference" towards 1 takes the matched colours everywhere, '
        "thin things too, each part the colour of the matched reference pixels of its own brightness. One "
        "pass, seconds. The same reference gives a whole batch of related photos consistent colours. Colour "
        "hints still steer it where it is wrong."
    ),
    load=load,
    params=(
        *(
            replace(
                param,
                description="From safer, muted colours (0) to more vivid ones (1). Where it cannot tell a "
                "colour, this method colours weakly; towards 1 it colours those parts fully too, towards 0 "
                "even more weakly (0.5: its own balance).",
            )
            if param.name == "vividness"
            else param
            for param in unet_bins.INFO.params
        ),
        Param(
            "follow_reference",
            "float",
            FOLLOW_DEFAULT,
            "How closely to take the reference's colours. 0.5: where the two photos match well, less where "
            "the reference's thing may have another colour than yours; 1: the matched colour everywhere, "
            "thin things too (for a reference whose things have exactly the colours you want); 0: the "
            "reference left out (the automatic colours).",
            minimum=0.0,
            maximum=1.0,
            ends=("loosely", "closely"),
        ),
    ),
    needs_reference=True,
    weights=(*unet_bins.INFO.weights, REFERENCE_FUSION),
    paper="Zhang et al. 2016 (colour classes); Welsh, Ashikhmin & Mueller 2002 (matching by luminance); "
    "Phung & Shin's proposal (reference-guided feed-forward colorization)",
)
