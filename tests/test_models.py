"""The model zoo's API: names, arguments, output shapes, building blocks, GoogLeNet's outputs, C_MobileNetV2's switches.

Counts against torchvision are in test_models_torchvision.py, against the papers in test_models_papers.py.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models._utils import _make_divisible as torchvision_make_divisible

from lecture_utils.models import (
    ConvNormAct,
    GoogLeNetOutputs,
    UnknownArgumentError,
    create_model,
    list_models,
    make_divisible,
)

# The names issue 2 asks for.
ISSUE_NAMES = {
    "alexnet",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x4d", "resnext101_32x8d", "wide_resnet50_2",
    "wide_resnet",
    "mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2",
    "small_cnn",  # the zoo table's two-convolution baseline
}
WIDTH_MODELS = ["mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2"]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- registry
def _names_in_plans_records_and_lessons() -> set[str]:
    import json
    import re

    from lecture_utils.experiment import gpu_reference, plans
    from lecture_utils.settings import LESSONS, lesson_settings

    root = Path(__file__).resolve().parent.parent
    conditions = [c for part in plans.lessons_reference_plan().values() for c in part]
    conditions += [c for zoo in ("zoo", "zoo-scale") for _, c in plans.zoo_plan(zoo)]
    conditions += plans.grid_scale_plan() + plans.recipe_choice_plan() + gpu_reference.gpu_reference_conditions()
    conditions += [c for profile in ("reference", "full") for c in plans.lesson09_conditions(profile)]
    names = {c.model for c in conditions}
    for path in (root / "data" / "reference").glob("*.jsonl"):
        names |= {json.loads(line)["model"] for line in path.read_text().splitlines() if line.strip()}
    names |= {lesson_settings(k, p).model for k in LESSONS for p in ("quick", "full")} - {""}
    for path in (root / "notebooks").rglob("*.ipynb"):
        names |= set(re.findall(r'create_model\(\\"([^\\"]+)\\"', path.read_text()))
    return names


def test_every_model_name_of_a_plan_a_record_or_a_lesson_builds():
    names = _names_in_plans_records_and_lessons()
    # the variants the plans and records use are among them, as are names of every family
    assert {"mobilenet_v2+leaky", "wide_resnet16_2", "vgg16_bn", "c_mobilenet_v2", "small_cnn"} <= names
    for name in sorted(names):
        model = create_model(name, num_classes=10)
        assert isinstance(model, nn.Module), name


def test_variant_names_build_their_family_with_its_keywords():
    wrn = create_model("wide_resnet16_4", num_classes=10)
    assert sum(p.numel() for p in wrn.parameters()) == sum(
        p.numel() for p in create_model("wide_resnet", depth=16, widen_factor=4, num_classes=10).parameters())
    leaky = create_model("mobilenet_v2+leaky", num_classes=10, width_multiplier=0.35)
    proj = create_model("mobilenet_v2+proj", num_classes=10, width_multiplier=0.35)
    # the projection shortcut adds weights, LeakyReLU after the add does not
    base = create_model("mobilenet_v2", num_classes=10, width_multiplier=0.35)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(leaky) == count(base) < count(proj)


def test_create_model_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown model 'resnet99'") as err:
        create_model("resnet99")
    for name in ISSUE_NAMES:
        assert name in str(err.value)


def test_create_model_unknown_keyword_names_the_accepted_ones():
    with pytest.raises(UnknownArgumentError) as err:
        create_model("resnet18", width_multiplier=0.5)
    message = str(err.value)
    assert "width_multiplier" in message and "num_classes" in message and "in_chans" in message
    assert isinstance(err.value, TypeError) and isinstance(err.value, ValueError)


def test_create_model_typo_in_a_keyword_is_caught():
    with pytest.raises(ValueError, match="num_class.*accepts: num_classes"):
        create_model("mobilenet_v2", num_class=10)


@pytest.mark.parametrize("name", sorted(ISSUE_NAMES))
def test_every_model_takes_num_classes_and_in_chans(name):
    with torch.device("meta"):
        model = create_model(name, num_classes=7, in_chans=1)
    first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert first_conv.in_channels == 1
    assert last_linear.out_features == 7


@pytest.mark.parametrize("name", sorted(ISSUE_NAMES))
def test_every_model_defaults_to_1000_classes(name):
    with torch.device("meta"):
        model = create_model(name)
    assert [m for m in model.modules() if isinstance(m, nn.Linear)][-1].out_features == 1000


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("name", sorted(ISSUE_NAMES))
@pytest.mark.parametrize("num_classes", [0, -3, 2.5, True])
def test_num_classes_below_one_or_not_an_int_raises(name, num_classes):
    with pytest.raises(ValueError, match="num_classes must be an integer >= 1"):
        create_model(name, num_classes=num_classes)


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet18", "googlenet", "wide_resnet", "mobilenet_v2"])
def test_in_chans_below_one_raises(name):
    with pytest.raises(ValueError, match="in_chans must be an integer >= 1"):
        create_model(name, in_chans=0)


@pytest.mark.parametrize("name", WIDTH_MODELS)
@pytest.mark.parametrize("width", [0, -0.5, 0.0, "1.0"])
def test_width_multiplier_not_positive_raises(name, width):
    with pytest.raises(ValueError, match="width_multiplier must be a number > 0"):
        create_model(name, width_multiplier=width)


@pytest.mark.parametrize("depth", [27, 29, 4, 0, -2, 28.0])
def test_wide_resnet_depth_not_6n_plus_4_raises(depth):
    with pytest.raises(ValueError, match=r"depth must be 6N\+4 with N >= 1 \(10, 16, 22, 28"):
        create_model("wide_resnet", depth=depth)


@pytest.mark.parametrize("widen_factor", [0, -1, 2.5])
def test_wide_resnet_widen_factor_not_positive_int_raises(widen_factor):
    with pytest.raises(ValueError, match="widen_factor must be an integer >= 1"):
        create_model("wide_resnet", widen_factor=widen_factor)


@pytest.mark.parametrize(
    ("name", "keyword"),
    [("wide_resnet", "dropout_rate"), ("alexnet", "dropout"), ("vgg16", "dropout"), ("googlenet", "dropout"),
     ("googlenet", "dropout_aux"), ("mobilenet_v2", "dropout")],
)
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_dropout_outside_0_1_raises(name, keyword, value):
    with pytest.raises(ValueError, match=f"{keyword} must be a probability in \\[0, 1\\)"):
        create_model(name, **{keyword: value})


@pytest.mark.parametrize("switch", ["leaky_after_add", "projection_shortcut"])
def test_c_mobilenet_v2_switch_must_be_a_bool(switch):
    with pytest.raises(ValueError, match=f"{switch} must be True or False"):
        create_model("c_mobilenet_v2", **{switch: "yes"})


def test_googlenet_aux_logits_must_be_a_bool():
    with pytest.raises(ValueError, match="aux_logits must be True or False"):
        create_model("googlenet", aux_logits=1)


# --------------------------------------------------------------------------- output shapes
# The models that torchvision also has are run at 32x32 in test_models_torchvision.py.
@pytest.mark.parametrize("name", ["googlenet", "wide_resnet", "mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2"])
def test_models_without_torchvision_twin_run_on_small_inputs(name):
    model = create_model(name, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert out.shape == (1, 10)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "c_mobilenet_v2"])
def test_imagenet_size_gives_1000_logits(name):
    model = create_model(name).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_one_channel_input_works():
    model = create_model("resnet18", num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


def test_alexnet_below_63_pixels_raises_and_says_what_to_do():
    model = create_model("alexnet", num_classes=10)
    assert model.min_input_size == 63
    with pytest.raises(ValueError) as err:
        model(torch.zeros(1, 3, 62, 70))
    assert str(err.value) == "AlexNet needs inputs of at least 63x63 pixels (got 62x70); resize, e.g. to 64"
    with pytest.raises(ValueError, match=r"\(got 32x32\)"):
        model(torch.zeros(1, 3, 32, 32))
    with torch.no_grad():
        assert model.eval()(torch.zeros(1, 3, 63, 63)).shape == (1, 10)


# --------------------------------------------------------------------------- GoogLeNet outputs
@pytest.fixture(scope="module")
def googlenet_10() -> nn.Module:
    return create_model("googlenet", num_classes=10)


def test_googlenet_train_mode_returns_main_and_two_aux_logits_at_32px(googlenet_10):
    out = googlenet_10.train()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, GoogLeNetOutputs)
    logits, aux1, aux2 = out  # unpacks like a tuple
    assert logits.shape == aux1.shape == aux2.shape == (2, 10)
    assert out.logits is logits and out.aux1 is aux1 and out.aux2 is aux2


def test_googlenet_eval_mode_returns_main_logits_only(googlenet_10):
    with torch.no_grad():
        out = googlenet_10.eval()(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_googlenet_without_aux_returns_logits_in_train_mode():
    model = create_model("googlenet", num_classes=10, aux_logits=False).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_googlenet_aux_heads_train_through_the_backward_pass(googlenet_10):
    model = googlenet_10.train()
    logits, aux1, aux2 = model(torch.randn(2, 3, 32, 32))
    (logits.sum() + aux1.sum() + aux2.sum()).backward()
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None


def test_googlenet_5x5_branch_has_5x5_kernels(googlenet_10):
    model = googlenet_10
    assert model.inception3a.branch3[1][0].kernel_size == (5, 5)
    assert model.aux1.fc1.in_features == 128 * 4 * 4 and model.aux1.dropout.p == 0.7


# --------------------------------------------------------------------------- C_MobileNetV2
# Blocks of MobileNetV2 at width 1.0 from the paper's Table 2: (in, out, stride).
V2_BLOCKS = (
    [(32, 16, 1)]
    + [(16, 24, 2), (24, 24, 1)]
    + [(24, 32, 2)] + [(32, 32, 1)] * 2
    + [(32, 64, 2)] + [(64, 64, 1)] * 3
    + [(64, 96, 1)] + [(96, 96, 1)] * 2
    + [(96, 160, 2)] + [(160, 160, 1)] * 2
    + [(160, 320, 1)]
)


def _blocks(model: nn.Module) -> list[nn.Module]:
    return list(model.features)[1:-1]  # between the stem conv and the last 1x1 conv


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_c_mobilenet_v2_with_both_switches_off_equals_mobilenet_v2(width):
    torch.manual_seed(0)
    plain = create_model("mobilenet_v2", width_multiplier=width, num_classes=10).eval()
    variant = create_model(
        "c_mobilenet_v2", width_multiplier=width, num_classes=10, leaky_after_add=False, projection_shortcut=False
    ).eval()
    assert _count(variant) == _count(plain)
    assert list(variant.state_dict()) == list(plain.state_dict())
    variant.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(variant(x), plain(x))


def test_c_mobilenet_v2_defaults_turn_both_switches_on_and_every_block_is_residual():
    model = create_model("c_mobilenet_v2")
    assert model.leaky_after_add and model.projection_shortcut
    blocks = _blocks(model)
    assert len(blocks) == 17
    assert all(b.is_residual for b in blocks)
    assert all(isinstance(b.act, nn.LeakyReLU) for b in blocks)


def test_projection_shortcut_adds_params_only_where_stride_2_or_channels_change():
    plain = create_model("mobilenet_v2")
    projected = create_model("c_mobilenet_v2", leaky_after_add=False, projection_shortcut=True)
    for (in_ch, out_ch, stride), a, b in zip(V2_BLOCKS, _blocks(plain), _blocks(projected)):
        expected = in_ch * out_ch + 2 * out_ch if (stride != 1 or in_ch != out_ch) else 0  # 1x1 conv + BN
        assert _count(b) - _count(a) == expected
    assert len(_blocks(plain)) == len(_blocks(projected)) == len(V2_BLOCKS)  # zip above compared every block
    assert _count(projected) - _count(plain) == sum(i * o + 2 * o for i, o, s in V2_BLOCKS if s != 1 or i != o)


def test_projection_shortcut_is_1x1_conv_bn_relu6_with_the_block_stride():
    model = create_model("c_mobilenet_v2", leaky_after_add=False)
    block = _blocks(model)[1]  # 16 -> 24, stride 2
    conv, bn, act = block.shortcut
    # the stride is taken by subsampling the input (see the next test: the same numbers as a stride-2 conv)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, block.stride) == (16, 24, (1, 1), 2)
    assert isinstance(bn, nn.BatchNorm2d) and isinstance(act, nn.ReLU6)
    assert block.act is None


def test_leaky_switch_adds_no_params_but_changes_the_output():
    torch.manual_seed(0)
    plain = create_model("mobilenet_v2", num_classes=10).eval()
    leaky = create_model("c_mobilenet_v2", num_classes=10, projection_shortcut=False).eval()
    assert _count(leaky) == _count(plain)
    leaky.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        # freshly initialised logits are tiny (~1e-10): compare relative differences only
        assert not torch.allclose(leaky(x), plain(x), rtol=1e-3, atol=0)


def test_leaky_switch_alone_acts_only_after_existing_adds():
    model = create_model("c_mobilenet_v2", leaky_after_add=True, projection_shortcut=False)
    with_add = [s == 1 and i == o for i, o, s in V2_BLOCKS]
    assert [b.act is not None for b in _blocks(model)] == with_add  # 10 of the 17 blocks
    assert all(b.shortcut is None for b in _blocks(model))


def test_leaky_relu_follows_the_add():
    block = _blocks(create_model("c_mobilenet_v2", projection_shortcut=False))[2].eval()  # 24 -> 24, stride 1
    x = torch.randn(1, 24, 8, 8)
    with torch.no_grad():
        expected = nn.functional.leaky_relu(block.conv(x) + x, 0.01)
        assert torch.allclose(block(x), expected)


def test_mobilenet_v2_accepts_the_switches_too():
    with torch.device("meta"):
        a = create_model("mobilenet_v2", leaky_after_add=True, projection_shortcut=True)
        b = create_model("c_mobilenet_v2")
    assert _count(a) == _count(b)
    assert list(a.state_dict()) == list(b.state_dict())


# --------------------------------------------------------------------------- MobileNetV2 channels
@pytest.mark.parametrize(
    ("width", "stem", "last"), [(1.0, 32, 1280), (0.5, 16, 1280), (0.35, 16, 1280), (0.75, 24, 1280), (1.4, 48, 1792)]
)
def test_mobilenet_v2_rounds_to_8_and_keeps_1280_below_width_1(width, stem, last):
    with torch.device("meta"):
        model = create_model("mobilenet_v2", width_multiplier=width)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].out_channels == stem
    assert convs[-1].out_channels == last
    assert all(c.out_channels % 8 == 0 for c in convs)


# --------------------------------------------------------------------------- blocks
@pytest.mark.parametrize("v", [3, 8, 11.2, 12, 18, 22.4, 24 * 0.75, 96 * 0.35, 160 * 0.35, 1280, 1792, 0.1])
def test_make_divisible_agrees_with_torchvision(v):
    assert make_divisible(v, 8) == torchvision_make_divisible(v, 8)


def test_make_divisible_hand_examples():
    assert make_divisible(32 * 0.35) == 16  # 11.2 -> 8 would lose 29%, so one step up
    assert make_divisible(24 * 0.75) == 24  # 18 -> 16 would lose 11%, so one step up
    assert make_divisible(20) == 24  # halfway rounds up
    assert make_divisible(3) == 8  # never below the divisor
    assert make_divisible(100, divisor=16) == 96
    with pytest.raises(ValueError, match="divisor must be a positive integer"):
        make_divisible(10, divisor=0)


def test_conv_norm_act_keeps_size_at_stride_1_and_halves_at_stride_2():
    x = torch.randn(1, 4, 9, 9)
    for k in (1, 3, 5, 7):
        assert ConvNormAct(4, 6, k)(x).shape == (1, 6, 9, 9)
        assert ConvNormAct(4, 6, k, stride=2)(x).shape == (1, 6, 5, 5)


def test_conv_norm_act_activation_is_a_parameter():
    relu = ConvNormAct(4, 8, 3)
    linear = ConvNormAct(4, 8, 1, activation=None)
    leaky = ConvNormAct(4, 8, 3, activation=functools.partial(nn.LeakyReLU, 0.1))
    assert [type(m) for m in relu] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in linear] == [nn.Conv2d, nn.BatchNorm2d]
    assert isinstance(leaky[2], nn.LeakyReLU) and leaky[2].negative_slope == 0.1
    assert relu[0].bias is None  # BN follows: a conv bias would be redundant


def test_conv_norm_act_without_norm_and_with_groups():
    block = ConvNormAct(8, 8, 3, groups=8, norm=False, bias=True, activation=nn.ReLU6)
    assert [type(m) for m in block] == [nn.Conv2d, nn.ReLU6]
    assert block[0].groups == 8 and block[0].bias is not None
    assert _count(block) == 8 * 9 + 8


def test_projection_shortcut_is_a_stride_2_1x1_conv_bn_relu6():
    from torch.nn import functional as F

    from lecture_utils.models.mobilenet_v2 import InvertedResidual

    torch.manual_seed(0)
    block = InvertedResidual(8, 16, stride=2, expand_ratio=6, projection_shortcut=True).eval()
    x = torch.randn(2, 8, 15, 15)
    conv, bn = block.shortcut[0], block.shortcut[1]
    expected = F.relu6(bn(F.conv2d(x, conv.weight, stride=2)))
    assert torch.allclose(block(x) - block.conv(x), expected, atol=1e-6)


def test_c_mobilenet_v2_trains_channels_last_at_224_on_the_cpu():
    # a strided 1x1 conv here crashed PyTorch 2.14's CPU backward (8 channels, 112 x 112, channels_last)
    torch.manual_seed(0)
    model = create_model("c_mobilenet_v2", num_classes=10, width_multiplier=0.35).to(memory_format=torch.channels_last)
    x = torch.randn(5, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    model(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_small_cnn_counts_by_hand():
    # conv 5x5 3->32 and 32->64 without bias, two batch norms (weight and bias), linear 64*7*7 -> 10
    model = create_model("small_cnn", num_classes=10)
    assert _count(model) == 3 * 32 * 25 + 2 * 32 + 32 * 64 * 25 + 2 * 64 + 64 * 7 * 7 * 10 + 10
    for side in (28, 32, 12):  # the adaptive pooling keeps the parameters the same at every size
        assert model(torch.randn(2, 3, side, side)).shape == (2, 10)
    with pytest.raises(ValueError, match="dropout"):
        create_model("small_cnn", dropout=1.5)


def test_leaky_on_branch_acts_on_the_branch_before_the_add_and_leaves_the_identity_linear():
    from lecture_utils.models.mobilenet_v2 import InvertedResidual

    torch.manual_seed(0)
    block = InvertedResidual(16, 16, 1, 6, leaky_on_branch=True).eval()
    plain = InvertedResidual(16, 16, 1, 6).eval()
    plain.load_state_dict(block.state_dict())  # the switch adds no parameters
    x = torch.randn(2, 16, 8, 8)
    branch = plain.conv(x)
    assert torch.allclose(block(x), nn.functional.leaky_relu(branch, 0.01) + x, atol=1e-6)
    assert torch.allclose(plain(x), branch + x, atol=1e-6)
    # a block without a residual add has nothing to switch
    assert InvertedResidual(16, 24, 2, 6, leaky_on_branch=True).branch_act is None
    # the network: same parameters as MobileNetV2, different function
    a = create_model("mobilenet_v2", num_classes=10, leaky_on_branch=True)
    assert _count(a) == _count(create_model("mobilenet_v2", num_classes=10))
