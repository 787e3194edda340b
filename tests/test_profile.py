"""Measured counts: hooks, torch's FlopCounterMode, ptflops and torchinfo, on small nets and the zoo.

Tolerance of the cross-checks: none. Every counter multiplies integer shapes, so once the
operations one counter adds on top of another are accounted for (biases, batch norm,
activation and pooling modules; see lecture_utils.profile), the totals must agree exactly.
The extras are computed here from each layer's input shape and hyper-parameters (forward
pre-hooks + the closed forms of lecture_utils.costs), not from the hooks under test.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torchvision
from torch import nn

from lecture_utils import costs, profile
from lecture_utils.models import create_model, list_models

# What ptflops' pytorch backend counts besides conv and linear, by exact module type (as it matches them).
PTFLOPS_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.PReLU, nn.GELU)  # 1 per output element
PTFLOPS_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # 1 per input element
PTFLOPS_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)  # 2 per element with affine weight and bias
FREE_MODULES = (nn.Dropout, nn.Dropout2d, nn.Flatten, nn.Identity)  # no multiply-adds in any counter


def _out_size(size: int, module: nn.Conv2d, axis: int) -> int:
    return costs.conv_output_size(
        size, module.kernel_size[axis], module.stride[axis], module.padding[axis], module.dilation[axis]
    )


def reference_counts(model: nn.Module, resolution: int) -> Counter:
    """Closed-form conv/linear MACs and ptflops' extra terms, from each leaf's input shape and settings."""
    counts: Counter = Counter()

    def pre_hook(module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        kind = type(module)
        if kind is nn.Conv2d:
            out_h, out_w = _out_size(x.shape[2], module, 0), _out_size(x.shape[3], module, 1)
            counts["macs"] += costs.conv_macs(
                module.in_channels, module.out_channels, module.kernel_size, out_h, out_w, module.groups
            )
            if module.bias is not None:
                counts["bias"] += module.out_channels * out_h * out_w
        elif kind is nn.Linear:
            rows = x.numel() // module.in_features
            counts["macs"] += rows * costs.linear_macs(module.in_features, module.out_features)
            if module.bias is not None:
                counts["bias"] += rows * module.out_features
        elif kind in PTFLOPS_NORMS:
            counts["norm"] += x.numel() * (2 if module.affine else 1)
        elif kind in PTFLOPS_ACTIVATIONS:
            counts["activation"] += x.numel()
        elif kind in PTFLOPS_POOLS:
            counts["pool"] += x.numel()
        elif kind not in FREE_MODULES:
            counts[f"unknown {kind.__name__}"] += 1

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_pre_hook(pre_hook) for m in leaves]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros(1, 3, resolution, resolution))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def _unknown(counts: Counter) -> list[str]:
    return [key for key in counts if key.startswith("unknown")]


# --------------------------------------------------------------------------- small hand-checked nets
def _tiny_net() -> nn.Sequential:
    # 32x32 input: conv 3->8 3x3/2 p1 -> 16x16; depthwise 8 3x3 p1 -> 16x16; pool -> 1x1; linear 8->10
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


CONV1_MACS = 16 * 16 * 8 * 3 * 9
DEPTHWISE_MACS = 16 * 16 * 8 * 9  # one 3x3 filter per channel
LINEAR_MACS = 8 * 10


def test_layer_table_counts_grouped_conv_and_linear_by_hand():
    rows = profile.layer_table(_tiny_net(), 32)
    assert [r.type for r in rows] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "AdaptiveAvgPool2d", "Flatten", "Linear",
    ]
    assert [r.macs for r in rows] == [CONV1_MACS, 0, 0, DEPTHWISE_MACS, 0, 0, LINEAR_MACS]
    assert rows[0].out_shape == (1, 8, 16, 16) and rows[-1].out_shape == (1, 10)
    assert [r.params for r in rows] == [3 * 8 * 9, 16, 0, 8 * 9 + 8, 0, 0, 8 * 10 + 10]
    assert rows[3].name == "3"


def test_conv_linear_macs_is_the_table_total():
    assert profile.conv_linear_macs(_tiny_net(), 32) == CONV1_MACS + DEPTHWISE_MACS + LINEAR_MACS


def test_count_params_counts_shared_weights_once_and_can_skip_frozen():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Linear(4, 2))
    assert profile.count_params(model) == 20 + 10
    model[3].requires_grad_(False)
    assert profile.count_params(model, trainable_only=True) == 20


def test_module_called_twice_gives_two_rows_with_params_listed_once():
    shared = nn.Conv2d(3, 3, 1)
    rows = profile.layer_table(nn.Sequential(shared, shared), 8)
    assert [(r.params, r.macs) for r in rows] == [(12, 8 * 8 * 9), (0, 8 * 8 * 9)]


def test_flop_counter_and_ptflops_on_tiny_net_differ_by_the_documented_extras():
    model = _tiny_net()
    bias = 16 * 16 * 8 + 10  # depthwise conv bias per output element + linear bias
    norm = 2 * 8 * 16 * 16
    relu = 8 * 16 * 16
    pool = 8 * 16 * 16  # ptflops: one per input element
    hook = CONV1_MACS + DEPTHWISE_MACS + LINEAR_MACS
    assert profile.flop_counter_macs(model, 32) == hook
    assert profile.ptflops_macs(model, 32, backend="aten") == hook + bias
    assert profile.ptflops_macs(model, 32, backend="pytorch") == hook + bias + norm + relu + pool


def test_format_layer_table_lists_conv_rows_and_the_total():
    text = profile.format_layer_table(profile.layer_table(_tiny_net(), 32), only_macs=True)
    assert text.count("Conv2d") == 2 and "BatchNorm2d" not in text
    assert f"{CONV1_MACS + DEPTHWISE_MACS + LINEAR_MACS:,}" in text.splitlines()[-1]


# --------------------------------------------------------------------------- side effects
def _mixed_mode_model() -> nn.Sequential:
    model = _tiny_net().train()
    model[1].eval()  # e.g. a frozen batch norm
    return model


@pytest.mark.parametrize(
    "count",
    [
        profile.layer_table,
        profile.conv_linear_macs,
        profile.flop_counter_macs,
        profile.ptflops_macs,
        lambda m, r: profile.ptflops_macs(m, r, backend="aten"),
        profile.summary,
    ],
    ids=["layer_table", "conv_linear_macs", "flop_counter", "ptflops_pytorch", "ptflops_aten", "summary"],
)
def test_counters_restore_each_modules_mode_and_leave_bn_statistics(count):
    model = _mixed_mode_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count(model, 32)
    assert [m.training for m in model.modules()] == [m.training for m in _mixed_mode_model().modules()]
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_ptflops_macs_prints_nothing(capsys):
    profile.ptflops_macs(_tiny_net(), 32, backend="pytorch")
    profile.ptflops_macs(_tiny_net(), 32, backend="aten")
    assert capsys.readouterr() == ("", "")


def test_ptflops_macs_leaves_no_ptflops_attributes_or_hooks():
    model = _tiny_net()
    attrs = set(model.__dict__)
    for backend in ("pytorch", "aten"):
        profile.ptflops_macs(model, 32, backend=backend)
    assert set(model.__dict__) == attrs
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert not any(hasattr(m, "__flops__") for m in model.modules())


def test_googlenet_in_train_mode_is_counted_in_eval_mode_and_stays_in_train_mode():
    model = create_model("googlenet", num_classes=10).train()
    assert isinstance(model(torch.zeros(2, 3, 32, 32)), tuple)  # train mode: logits + two aux heads
    macs = profile.conv_linear_macs(model, 32)
    assert profile.flop_counter_macs(model, 32) == macs
    assert profile.ptflops_macs(model, 32, backend="aten") > macs
    assert "Total params" in profile.summary(model, 32, depth=1)
    assert all(m.training for m in model.modules())


# --------------------------------------------------------------------------- torchinfo summary
def test_summary_text_has_no_enum_names_and_reports_params():
    text = profile.summary(_tiny_net(), 32)
    assert "Units." not in text
    assert "Total mult-adds (M):" in text
    assert f"Total params: {3 * 8 * 9 + 16 + 8 * 9 + 8 + 8 * 10 + 10:,}" in text


def test_summary_of_alexnet_matches_torchvision_param_count():
    model = torchvision.models.alexnet(weights=None)
    expected = sum(p.numel() for p in model.parameters())
    assert f"Total params: {expected:,}" in profile.summary(model, 224)
    assert expected == 61_100_840  # AlexNet with 1000 classes, as torchvision documents


def test_summary_rejects_the_settings_it_fixes():
    with pytest.raises(ValueError, match="device"):
        profile.summary(_tiny_net(), 32, device="cuda")


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        (profile.ptflops_macs, {"backend": "fvcore"}),
        (profile.conv_linear_macs, {"resolution": 0}),
        (profile.layer_table, {"resolution": (32,)}),
        (profile.flop_counter_macs, {"in_chans": 0}),
    ],
)
def test_bad_arguments_raise_value_error(call, kwargs):
    with pytest.raises(ValueError):
        call(_tiny_net(), **kwargs)


# --------------------------------------------------------------------------- the closed forms of costs
# The models' measured multiply-adds equal the closed forms of lecture_utils.costs exactly; the papers'
# numbers (Tables 6 and 7 of MobileNet v1, 300M of MobileNetV2) are checked against the closed forms
# in tests/test_costs.py, and the parameter counts in tests/test_models_papers.py.
def test_torchvision_mobilenet_v2_conv_linear_macs_equal_closed_form():
    model = torchvision.models.mobilenet_v2(weights=None)
    assert profile.conv_linear_macs(model, 224) == costs.mobilenet_v2_macs(1.0, 224)


# the rows of the MobileNet v1 paper's Tables 6 (width at 224) and 7 (resolution at width 1.0)
@pytest.mark.parametrize(
    ("width_multiplier", "resolution"),
    [(1.0, 224), (0.75, 224), (0.5, 224), (0.25, 224), (1.0, 192), (1.0, 160), (1.0, 128)],
)
def test_mobilenet_v1_conv_linear_macs_equal_closed_form(width_multiplier, resolution):
    model = create_model("mobilenet_v1", width_multiplier=width_multiplier)
    assert profile.conv_linear_macs(model, resolution) == costs.mobilenet_v1_macs(width_multiplier, resolution)


@pytest.mark.parametrize("width_multiplier", [1.0, 0.75, 0.5, 0.35, 1.4])
def test_mobilenet_v2_conv_linear_macs_equal_table_closed_form(width_multiplier):
    model = create_model("mobilenet_v2", width_multiplier=width_multiplier)
    assert profile.conv_linear_macs(model, 96) == costs.mobilenet_v2_macs(width_multiplier, 96)


# --------------------------------------------------------------------------- every model of the zoo
# Small inputs keep this fast. AlexNet's 11x11/4 stem and three 3x3/2 pools need at least 63 pixels.
ZOO_RESOLUTION = {"alexnet": 64}


class _Measured:
    def __init__(self, name: str) -> None:
        torch.manual_seed(0)
        self.name = name
        self.resolution = ZOO_RESOLUTION.get(name, 32)
        self.model = create_model(name)  # left in train mode: the counters must switch to eval themselves
        self.reference = reference_counts(self.model, self.resolution)
        self.rows = profile.layer_table(self.model, self.resolution)
        self.hook = sum(row.macs for row in self.rows)  # what conv_linear_macs returns


@pytest.fixture(scope="module", params=list_models())
def zoo(request) -> _Measured:
    return _Measured(request.param)


def test_zoo_conv_linear_macs_equal_closed_form_summed_over_layers(zoo):
    assert not _unknown(zoo.reference), f"{zoo.name}: layers the reference does not know: {_unknown(zoo.reference)}"
    assert zoo.hook == zoo.reference["macs"]
    assert zoo.model.training


def test_zoo_flop_counter_mode_equals_conv_linear_macs(zoo):
    # FlopCounterMode counts 2 FLOPs per conv/matmul multiply-add and nothing else
    assert profile.flop_counter_macs(zoo.model, zoo.resolution) == zoo.hook


def test_zoo_ptflops_aten_equals_conv_linear_macs_plus_biases(zoo):
    assert profile.ptflops_macs(zoo.model, zoo.resolution, backend="aten") == zoo.hook + zoo.reference["bias"]


def test_zoo_ptflops_pytorch_equals_conv_linear_macs_plus_bias_norm_activation_pool(zoo):
    ref = zoo.reference
    extras = ref["bias"] + ref["norm"] + ref["activation"] + ref["pool"]
    assert profile.ptflops_macs(zoo.model, zoo.resolution, backend="pytorch") == zoo.hook + extras


def test_zoo_layer_table_params_cover_every_parameter_that_runs(zoo):
    rows = zoo.rows
    listed = sum(r.params for r in rows)
    total = profile.count_params(zoo.model)
    # GoogLeNet's auxiliary heads only run in train mode; every other model uses all its parameters
    unused = sum(p.numel() for n, p in zoo.model.named_parameters() if n.startswith("aux"))
    assert listed == total - unused
    assert math.prod(rows[-1].out_shape) == 1000


@pytest.mark.parametrize(("name", "resolution", "expected"), [
    ("vgg16", 32, ((512, 1, 1), (512, 7, 7))),      # 5 halvings: 32 -> 1, then copied to 7x7
    ("resnet18", 32, ((512, 1, 1), (512, 1, 1))),   # stride 32 in all
    ("resnet18", 224, ((512, 7, 7), (512, 1, 1))),
    ("alexnet", 64, ((256, 1, 1), (256, 6, 6))),
])
def test_pool_shapes_gives_the_map_entering_and_leaving_avgpool(name, resolution, expected):
    assert profile.pool_shapes(create_model(name, num_classes=10), resolution) == expected


def test_pool_shapes_needs_an_avgpool_module():
    with pytest.raises(ValueError, match="avgpool"):
        profile.pool_shapes(nn.Sequential(nn.Conv2d(3, 4, 3)), 32)
