"""``cnn``: the report's first attempt (§5.2), a plain encoder/decoder.
Net: :mod:`worker.colorizers.nets.cnn`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.colorizers.manifest import trained_weights
from worker.colorizers.method_info import LoadContext, MethodInfo

if TYPE_CHECKING:
    from worker.colorizers.nets.colorizer import NetColorizer

CNN = trained_weights("cnn", "f0566323ede9c1b018c6ed65ea3f21aa61c5005c39acee3ad2aff8dd6885654d", 7728219)


def load(ctx: LoadContext) -> NetColorizer:
    from worker.colorizers.nets.cnn import ColorizationCNN
    from worker.colorizers.nets.colorizer import NetColorizer
    from worker.colorizers.nets.weights_file import load_weights

    net = ColorizationCNN()
    net.load_state_dict(load_weights(ctx.path(CNN), "cnn")["state_dict"])
    return NetColorizer("cnn", net, ctx.device, bf16=ctx.bf16)


INFO = MethodInfo(
    name="cnn",
    title="Soft colours (CNN)",
    description=(
        "A plain convolutional encoder/decoder trained to predict the colour channels from lightness "
        "with a mean-squared-error loss (the report's first attempt, after Baldassarre et al.). Fast; "
        "muted, often brownish colours."
    ),
    load=load,
    weights=(CNN,),
    batchable=True,
    paper="Zhang 2019 (report) §5.2; Baldassarre, Morín, Rodés-Guirao 2017",
    summary="Fast and simple; soft, muted colours.",
)
