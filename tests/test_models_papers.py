"""Models without a torchvision twin, checked against their papers and hand-derived counts."""

from __future__ import annotations

import pytest
import torch
import torchvision.models as tvm
from torch import nn

from lecture_utils.models import create_model


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- MobileNet v1
# Howard et al. 2017, Table 6: million parameters (one decimal) by width multiplier. The tables'
# Mult-Adds are checked in tests/test_costs.py against the closed form, which tests/test_profile.py
# checks against the model's measured multiply-adds.
@pytest.mark.parametrize(
    ("width", "paper_params_m"), [(1.0, 4.2), (0.75, 2.6), (0.5, 1.3), (0.25, 0.5)]
)
def test_mobilenet_v1_params_match_paper_table_6(width, paper_params_m):
    with torch.device("meta"):
        model = create_model("mobilenet_v1", width_multiplier=width)
    assert round(_count(model) / 1e6, 1) == paper_params_m


def test_mobilenet_v1_has_13_depthwise_separable_layers_of_table_1():
    # Table 1 of the paper, (depthwise stride, pointwise output channels) per layer.
    table_1 = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]
    model = create_model("mobilenet_v1")
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    pointwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert [(m.stride[0], p.out_channels) for m, p in zip(depthwise, pointwise)] == table_1
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)


def test_mobilenet_v1_ends_at_7x7_with_1024_channels_at_224():
    model = create_model("mobilenet_v1").eval()
    with torch.no_grad():
        features = model.features(torch.zeros(1, 3, 224, 224))
    assert features.shape == (1, 1024, 7, 7)


# --------------------------------------------------------------------------- Wide ResNet
# Zagoruyko and Komodakis 2016, CIFAR-10 results: million parameters, one decimal.
@pytest.mark.parametrize(
    ("depth", "widen_factor", "paper_params_m"), [(40, 4, 8.9), (16, 8, 11.0), (28, 10, 36.5)]
)
def test_wide_resnet_params_match_paper(depth, widen_factor, paper_params_m):
    with torch.device("meta"):
        model = create_model("wide_resnet", depth=depth, widen_factor=widen_factor, num_classes=10)
    assert round(_count(model) / 1e6, 1) == paper_params_m


def test_wide_resnet_28_10_has_4_blocks_per_group_and_widths_160_320_640():
    with torch.device("meta"):
        model = create_model("wide_resnet", depth=28, widen_factor=10, num_classes=10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    # 28 = 6 * 4 + 4: 1 stem conv + 3 groups x 4 blocks x 2 convs
    assert len(convs) == 1 + 3 * 4 * 2
    assert [c.out_channels for c in convs] == [16] + [160] * 8 + [320] * 8 + [640] * 8
    shortcuts = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    expected = [(16, 160, 1), (160, 320, 2), (320, 640, 2)]
    assert [(s.in_channels, s.out_channels, s.stride[0]) for s in shortcuts] == expected


def test_wide_resnet_k1_first_group_has_identity_shortcuts_only():
    with torch.device("meta"):
        model = create_model("wide_resnet", depth=16, widen_factor=1, num_classes=10)
    shortcuts = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert [(s.in_channels, s.out_channels) for s in shortcuts] == [(16, 32), (32, 64)]


def test_wide_resnet_dropout_sits_between_the_two_convs_and_adds_no_params():
    plain = create_model("wide_resnet", depth=16, widen_factor=2, num_classes=10)
    dropped = create_model("wide_resnet", depth=16, widen_factor=2, num_classes=10, dropout_rate=0.3)
    assert _count(plain) == _count(dropped)
    rates = [m.p for m in dropped.modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.3] * 6  # one per block: 3 groups x 2 blocks


def test_wide_resnet_block_is_preactivation_bn_relu_conv():
    model = create_model("wide_resnet", depth=10, widen_factor=1, num_classes=10).eval()
    block = model.conv3[0]
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(type(m).__name__)) for m in block.children()]
    with torch.no_grad():
        block(torch.randn(1, 16, 8, 8))
    for h in hooks:
        h.remove()
    assert order[:7] == ["BatchNorm2d", "ReLU", "Conv2d", "Conv2d", "BatchNorm2d", "ReLU", "Dropout"]
    assert order[-1] == "Conv2d"


# --------------------------------------------------------------------------- GoogLeNet
# Table 1 of Szegedy et al. 2014: (#5x5 reduce, #5x5) of inception 3a, 3b, 4a-4e, 5a, 5b.
PAPER_5X5 = [(16, 32), (32, 96), (16, 48), (24, 64), (24, 64), (32, 64), (32, 128), (32, 128), (48, 128)]


@pytest.mark.parametrize("aux_logits", [True, False])
def test_googlenet_params_are_torchvision_plus_the_real_5x5_kernels(aux_logits):
    # torchvision's GoogLeNet is the same network with 3x3 kernels in the "5x5" branch:
    # each such conv has (25 - 9) * reduce * out more weights here.
    with torch.device("meta"):
        ours = create_model("googlenet", aux_logits=aux_logits)
        theirs = tvm.googlenet(weights=None, aux_logits=aux_logits, init_weights=True)
    extra = sum((25 - 9) * red * out for red, out in PAPER_5X5)
    assert _count(ours) == _count(theirs) + extra


def test_googlenet_aux_heads_hold_the_hand_counted_params():
    # per head: 1x1 conv in->128 + BN(128) + FC 2048->1024 + FC 1024->10, on 4a (512) and 4d (528)
    def head(in_ch: int) -> int:
        return in_ch * 128 + 2 * 128 + 2048 * 1024 + 1024 + 1024 * 10 + 10

    with torch.device("meta"):
        with_aux = create_model("googlenet", num_classes=10)
        without = create_model("googlenet", num_classes=10, aux_logits=False)
    assert _count(with_aux) - _count(without) == head(512) + head(528)


def test_googlenet_inception_outputs_follow_table_1():
    model = create_model("googlenet", aux_logits=False).eval()
    widths = {}
    hooks = [
        getattr(model, f"inception{k}").register_forward_hook(lambda m, i, o, k=k: widths.__setitem__(k, o.shape[1:]))
        for k in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    ]
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert logits.shape == (1, 1000)
    assert widths == {
        "3a": (256, 28, 28), "3b": (480, 28, 28),
        "4a": (512, 14, 14), "4b": (512, 14, 14), "4c": (512, 14, 14), "4d": (528, 14, 14), "4e": (832, 14, 14),
        "5a": (832, 7, 7), "5b": (1024, 7, 7),
    }
