"""Network shapes, the report's layer table, and the Zhang et al. release key lists."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from worker.colorizers.lab import AB_SCALE
from worker.colorizers.nets.cnn import ColorizationCNN
from worker.colorizers.nets.eccv16 import ECCV16
from worker.colorizers.nets.fusion import FusionNet, classifier_input
from worker.colorizers.nets.gan import Discriminator, UNetGenerator
from worker.colorizers.nets.siggraph17 import SIGGRAPH17
from worker.colorizers.nets.zhang_common import load_release_state

torch.set_num_threads(1)


def _bn(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.{k}", (channels,)) for k in ("weight", "bias", "running_mean", "running_var")]


def _conv(prefix: str, cout: int, cin: int, k: int, bias: bool = True) -> list[tuple[str, tuple[int, ...]]]:
    keys = [(f"{prefix}.weight", (cout, cin, k, k))]
    return keys + ([(f"{prefix}.bias", (cout,))] if bias else [])


def _convt(prefix: str, cin: int, cout: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f"{prefix}.weight", (cin, cout, 4, 4)), (f"{prefix}.bias", (cout,))]


# Keys and shapes of the official files (richzhang/colorization, colorizers/eccv16.py and siggraph17.py:
# colorization_release_v2-9b330a0b.pth and siggraph17-df00044c.pth), BatchNorm counters aside.
OFFICIAL_ECCV16 = [
    *_conv("model1.0", 64, 1, 3),
    *_conv("model1.2", 64, 64, 3),
    *_bn("model1.4", 64),
    *_conv("model2.0", 128, 64, 3),
    *_conv("model2.2", 128, 128, 3),
    *_bn("model2.4", 128),
    *_conv("model3.0", 256, 128, 3),
    *_conv("model3.2", 256, 256, 3),
    *_conv("model3.4", 256, 256, 3),
    *_bn("model3.6", 256),
    *_conv("model4.0", 512, 256, 3),
    *_conv("model4.2", 512, 512, 3),
    *_conv("model4.4", 512, 512, 3),
    *_bn("model4.6", 512),
    *_conv("model5.0", 512, 512, 3),
    *_conv("model5.2", 512, 512, 3),
    *_conv("model5.4", 512, 512, 3),
    *_bn("model5.6", 512),
    *_conv("model6.0", 512, 512, 3),
    *_conv("model6.2", 512, 512, 3),
    *_conv("model6.4", 512, 512, 3),
    *_bn("model6.6", 512),
    *_conv("model7.0", 512, 512, 3),
    *_conv("model7.2", 512, 512, 3),
    *_conv("model7.4", 512, 512, 3),
    *_bn("model7.6", 512),
    *_convt("model8.0", 512, 256),
    *_conv("model8.2", 256, 256, 3),
    *_conv("model8.4", 256, 256, 3),
    *_conv("model8.6", 313, 256, 1),
    ("model_out.weight", (2, 313, 1, 1)),
]
OFFICIAL_SIGGRAPH17 = [
    *_conv("model1.0", 64, 4, 3),
    *_conv("model1.2", 64, 64, 3),
    *_bn("model1.4", 64),
    *_conv("model2.0", 128, 64, 3),
    *_conv("model2.2", 128, 128, 3),
    *_bn("model2.4", 128),
    *_conv("model3.0", 256, 128, 3),
    *_conv("model3.2", 256, 256, 3),
    *_conv("model3.4", 256, 256, 3),
    *_bn("model3.6", 256),
    *_conv("model4.0", 512, 256, 3),
    *_conv("model4.2", 512, 512, 3),
    *_conv("model4.4", 512, 512, 3),
    *_bn("model4.6", 512),
    *_conv("model5.0", 512, 512, 3),
    *_conv("model5.2", 512, 512, 3),
    *_conv("model5.4", 512, 512, 3),
    *_bn("model5.6", 512),
    *_conv("model6.0", 512, 512, 3),
    *_conv("model6.2", 512, 512, 3),
    *_conv("model6.4", 512, 512, 3),
    *_bn("model6.6", 512),
    *_conv("model7.0", 512, 512, 3),
    *_conv("model7.2", 512, 512, 3),
    *_conv("model7.4", 512, 512, 3),
    *_bn("model7.6", 512),
    *_convt("model8up.0", 512, 256),
    *_conv("model8.1", 256, 256, 3),
    *_conv("model8.3", 256, 256, 3),
    *_bn("model8.5", 256),
    *_convt("model9up.0", 256, 128),
    *_conv("model9.1", 128, 128, 3),
    *_bn("model9.3", 128),
    *_convt("model10up.0", 128, 128),
    *_conv("model10.1", 128, 128, 3),
    *_conv("model3short8.0", 256, 256, 3),
    *_conv("model2short9.0", 128, 128, 3),
    *_conv("model1short10.0", 128, 64, 3),
    *_conv("model_class.0", 529, 256, 1),
    *_conv("model_out.0", 2, 128, 1),
]


def _keys(net: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.mark.parametrize(("cls", "official"), [(ECCV16, OFFICIAL_ECCV16), (SIGGRAPH17, OFFICIAL_SIGGRAPH17)])
def test_zhang_state_dict_equals_official_release(cls, official):
    assert _keys(cls()) == dict(official)


@pytest.mark.parametrize("cls", [ECCV16, SIGGRAPH17])
def test_zhang_loads_a_release_style_state_dict(cls):
    """A file saved like the releases (no BatchNorm counters) loads strictly; forward gives Lab ab."""
    net = cls()
    state = {k: torch.randn(s) * 0.01 for k, s in _keys(net).items()}
    load_release_state(net, state)
    net.eval()
    with torch.no_grad():
        ab = net(torch.full((1, 1, 32, 48), 50.0))
    assert ab.shape == (1, 2, 32, 48)
    with pytest.raises(RuntimeError):
        load_release_state(cls(), {**state, "unexpected.weight": torch.zeros(1)})


def test_cnn_follows_the_report_layer_table():
    net = ColorizationCNN()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride[0]) for c in convs] == [
        (1, 64, 2),
        (64, 128, 1),
        (128, 128, 2),
        (128, 256, 1),
        (256, 256, 2),
        (256, 512, 1),
        (512, 256, 1),
        (256, 128, 1),
        (128, 64, 1),
        (64, 32, 1),
        (32, 16, 1),
        (16, 2, 1),
    ]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, nn.Upsample) for m in net.modules()) == 3
    assert isinstance(list(net.modules())[-1], nn.Tanh)
    shapes = []
    x = torch.zeros(1, 1, 256, 256)
    for layer in net.encoder.layers:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    assert shapes == [
        (64, 128, 128),
        (128, 128, 128),
        (128, 64, 64),
        (256, 64, 64),
        (256, 32, 32),
        (512, 32, 32),
        (256, 32, 32),
    ]


@pytest.mark.parametrize(("h", "w"), [(64, 64), (32, 96)])
def test_output_shapes_and_range(h, w):
    """Every net takes L in [0, 100] and returns ab in Lab units (its tanh output times 128)."""
    lightness = torch.rand(2, 1, h, w) * 100
    with torch.no_grad():
        for out in (
            ColorizationCNN()(lightness),
            FusionNet()(lightness, torch.softmax(torch.randn(2, 1000), 1)),
            UNetGenerator().eval()(lightness),
        ):
            assert out.shape == (2, 2, h, w)
            assert out.abs().max() <= AB_SCALE
        lab = torch.cat([lightness, out], 1)
        assert Discriminator()(lab).shape == (2,)


def test_nets_normalise_inside_forward():
    """cnn sees ``L / 50 - 1`` and its tanh output is ``ab / 128``."""
    net = ColorizationCNN().eval()
    lightness = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        inside = net.decoder(net.encoder(lightness / 50 - 1))
        assert torch.allclose(net(lightness), inside * 128)


def test_fusion_tiles_the_class_vector():
    net = FusionNet().eval()
    x = torch.zeros(1, 1, 32, 32)
    with torch.no_grad():
        a = net(x, torch.nn.functional.one_hot(torch.tensor([1]), 1000).float())
        b = net(x, torch.nn.functional.one_hot(torch.tensor([500]), 1000).float())
    assert not torch.allclose(a, b)
    assert net.fusion[0].in_channels == 256 + 1000 and net.fusion[0].kernel_size == (1, 1)


def test_classifier_input_is_gray_224_normalised():
    lightness = torch.linspace(0, 100, 64 * 64).view(1, 1, 64, 64)
    x = classifier_input(lightness)
    assert x.shape == (1, 3, 224, 224)
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_gan_generator_is_small_enough_for_fp16_under_15mb():
    params = sum(p.numel() for p in UNetGenerator().parameters())
    assert params * 2 < 15e6
