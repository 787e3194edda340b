"""Our models against torchvision's: equal parameter counts, and equal outputs with torchvision's weights.

torchvision models are built with ``weights=None`` (random initialisation, no download).
Counts are taken on the meta device (no memory, no initialisation). For outputs, the
torchvision model gets random BN statistics and affine parameters (so a misplaced BN would
show), our model is built on the meta device and takes torchvision's tensors by order.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from lecture_utils.models import create_model, load_state_dict_by_order

# Every architecture torchvision has too: our name -> torchvision builder.
SAME_AS_TORCHVISION = {
    "alexnet": tvm.alexnet,
    "vgg11": tvm.vgg11,
    "vgg11_bn": tvm.vgg11_bn,
    "vgg13": tvm.vgg13,
    "vgg13_bn": tvm.vgg13_bn,
    "vgg16": tvm.vgg16,
    "vgg16_bn": tvm.vgg16_bn,
    "vgg19": tvm.vgg19,
    "vgg19_bn": tvm.vgg19_bn,
    "resnet18": tvm.resnet18,
    "resnet34": tvm.resnet34,
    "resnet50": tvm.resnet50,
    "resnet101": tvm.resnet101,
    "resnet152": tvm.resnet152,
    "resnext50_32x4d": tvm.resnext50_32x4d,
    # torchvision has no resnext101_32x4d builder, but its ResNet class builds the same network
    "resnext101_32x4d": lambda **kw: tvm.ResNet(
        tvm.resnet.Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=4, **kw
    ),
    "resnext101_32x8d": tvm.resnext101_32x8d,
    "wide_resnet50_2": tvm.wide_resnet50_2,
}
MOBILENET_V2_WIDTHS = [1.0, 0.75, 0.5, 0.35, 1.4]
# Input size for the output comparisons: small for speed, yet the last stage of every
# network still sees a 2x2 map, so all nine positions of its 3x3 kernels meet real pixels
# (on a 1x1 map only the centre would). AlexNet needs at least 63 and gets 64.
SIZE = 40


def _tv(name: str, **kwargs) -> nn.Module:
    builder = SAME_AS_TORCHVISION[name]
    return builder(**kwargs) if name == "resnext101_32x4d" else builder(weights=None, **kwargs)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=gen) + 0.5
            m.bias.data = torch.randn(n, generator=gen) * 0.1
            m.running_mean = torch.randn(n, generator=gen) * 0.1
            m.running_var = torch.rand(n, generator=gen) + 0.5


def _transfer(theirs: nn.Module, ours_on_meta: nn.Module) -> tuple[nn.Module, nn.Module]:
    """Give torchvision's model random BN values, load its tensors into ours; both in eval mode."""
    _randomise_batchnorm(theirs)
    load_state_dict_by_order(ours_on_meta, theirs.state_dict(), assign=True)
    return ours_on_meta.eval(), theirs.eval()


def _assert_same_outputs(ours: nn.Module, theirs: nn.Module, size: int) -> None:
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        got = ours(x)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5), (got - expected).abs().max()


@pytest.fixture(scope="module", params=list(SAME_AS_TORCHVISION))
def pair(request) -> tuple[str, nn.Module, nn.Module]:
    """(name, ours, torchvision's) with 10 classes and the same weights; built once per name."""
    name = request.param
    torch.manual_seed(0)
    theirs = _tv(name, num_classes=10)
    with torch.device("meta"):
        ours = create_model(name, num_classes=10)
    return (name, *_transfer(theirs, ours))


# With 10 classes, the `pair` fixture's load_state_dict_by_order checks the same layout entry by entry.
@pytest.mark.parametrize("name", list(SAME_AS_TORCHVISION))
def test_params_and_state_dict_layout_match_torchvision(name):
    with torch.device("meta"):
        ours, theirs = create_model(name), _tv(name)
    assert _count(ours) == _count(theirs)
    shapes = [[tuple(t.shape) for t in model.state_dict().values()] for model in (ours, theirs)]
    assert shapes[0] == shapes[1]


def test_outputs_match_torchvision_with_its_weights(pair):
    name, ours, theirs = pair
    _assert_same_outputs(ours, theirs, size=64 if name == "alexnet" else SIZE)


def test_runs_on_small_inputs(pair):
    # the quick profile's 32x32 images; AlexNet needs at least 63 pixels (see test_models.py)
    name, ours, _ = pair
    size = 64 if name == "alexnet" else 32
    with torch.no_grad():
        assert ours(torch.randn(1, 3, size, size)).shape == (1, 10)


@pytest.mark.parametrize("width", MOBILENET_V2_WIDTHS)
def test_mobilenet_v2_params_match_torchvision(width):
    ours = create_model("mobilenet_v2", width_multiplier=width)
    theirs = tvm.mobilenet_v2(weights=None, width_mult=width)
    assert _count(ours) == _count(theirs)


@pytest.mark.parametrize("width", MOBILENET_V2_WIDTHS)
def test_mobilenet_v2_outputs_match_torchvision_with_its_weights(width):
    torch.manual_seed(0)
    theirs = tvm.mobilenet_v2(weights=None, width_mult=width, num_classes=10)
    with torch.device("meta"):
        ours = create_model("mobilenet_v2", width_multiplier=width, num_classes=10)
    _assert_same_outputs(*_transfer(theirs, ours), size=SIZE)


def test_resnet18_takes_torchvision_weights_by_order():
    torch.manual_seed(0)
    theirs = tvm.resnet18(weights=None)
    ours = create_model("resnet18")
    load_state_dict_by_order(ours, theirs.state_dict())
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        assert torch.equal(a, b)


def test_load_state_dict_by_order_rejects_a_different_layout():
    ours = create_model("resnet18")
    with pytest.raises(ValueError, match="state-dict entries"):
        load_state_dict_by_order(ours, create_model("resnet34").state_dict())
    with torch.device("meta"):
        theirs = tvm.resnet18(weights=None, num_classes=10)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_state_dict_by_order(ours, theirs.state_dict())


def test_torchvision_alexnet_also_needs_63_pixels():
    # where our AlexNet's min_input_size = 63 comes from: torchvision's fails one pixel below
    with torch.device("meta"):
        theirs = tvm.alexnet(weights=None).eval()
        assert theirs(torch.empty(1, 3, 63, 63)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            theirs(torch.empty(1, 3, 62, 62))
