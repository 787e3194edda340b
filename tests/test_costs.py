"""Closed-form cost formulas against hand-derived numbers and the papers' tables."""

import pytest

from lecture_utils import costs


# --------------------------------------------------------------------------- worked numbers of the lessons
def test_alexnet_conv1_on_256_input_gives_63x63():
    # (256 + 2*2 - 11) // 4 + 1 = 249 // 4 + 1 = 63
    assert costs.conv_output_size(256, 11, stride=4, padding=2) == 63


def test_alexnet_conv1_has_23296_params():
    # 11*11*3*64 weights + 64 biases
    assert costs.conv_params(3, 64, 11) == 23_296


def test_conv_output_size_with_dilation_and_same_padding():
    assert costs.conv_output_size(224, 3, stride=1, padding=1) == 224
    assert costs.conv_output_size(224, 3, stride=2, padding=1) == 112
    # a dilated 3x3 spans 5 pixels: (32 + 4 - 5) // 1 + 1 = 32
    assert costs.conv_output_size(32, 3, padding=2, dilation=2) == 32
    # VGG max pool 2x2/2 halves the map; overlapping 3x3/2 AlexNet pool: (55 - 3) // 2 + 1 = 27
    assert costs.conv_output_size(14, 2, stride=2) == 7
    assert costs.conv_output_size(55, 3, stride=2) == 27


def test_1x1_conv_1024_to_10_has_10250_params():
    assert costs.conv_params(1024, 10, 1) == 10_250


def test_fc_from_1024x8x8_to_10_without_bias_has_655360_params():
    assert costs.linear_params(1024 * 8 * 8, 10, bias=False) == 655_360


def test_grouped_and_depthwise_conv_params():
    # depthwise 3x3 on 32 channels: one 3x3 filter per channel
    assert costs.conv_params(32, 32, 3, groups=32, bias=False) == 32 * 9
    # 4 groups: each output channel sees 64/4 = 16 inputs
    assert costs.conv_params(64, 128, 3, groups=4, bias=False) == 128 * 16 * 9
    assert costs.conv_params(3, 8, (1, 7), bias=False) == 8 * 3 * 7


def test_conv_macs_is_output_positions_times_weights():
    # AlexNet conv1 at 224 input: 55x55 positions, 11*11*3*96 weights each
    assert costs.conv_macs(3, 96, 11, 55, 55) == 55 * 55 * 11 * 11 * 3 * 96
    assert costs.conv_macs(32, 32, 3, 112, 112, groups=32) == 112 * 112 * 32 * 9


def test_two_3x3_convs_have_fewer_params_than_one_5x5():
    c = 64
    two_3x3 = 2 * costs.conv_params(c, c, 3, bias=False)
    one_5x5 = costs.conv_params(c, c, 5, bias=False)
    assert (two_3x3, one_5x5) == (18 * c * c, 25 * c * c)


def test_bottleneck_saves_8_47x_at_k3_r4():
    # 9 / (2/4 + 9/16) = 9 / 1.0625
    assert costs.bottleneck_saving(3, 4) == pytest.approx(8.47, abs=0.005)
    assert costs.bottleneck_saving(3, 4) == pytest.approx(144 / 17)


def test_bottleneck_saving_equals_ratio_of_block_macs():
    standard = costs.standard_block_macs(56, 56, 256, 3)
    bottleneck = costs.bottleneck_block_macs(56, 56, 256, 3, 4)
    # ResNet-50 conv2_x bottleneck: 256*64 + 9*64*64 + 64*256 weights at 56x56
    assert bottleneck == 56 * 56 * (256 * 64 + 9 * 64 * 64 + 64 * 256)
    assert standard / bottleneck == pytest.approx(costs.bottleneck_saving(3, 4))


@pytest.mark.parametrize("c", [16, 32, 96, 320])
def test_inverted_residual_ratio_is_9c_over_8c_plus_36(c):
    assert costs.inverted_residual_ratio(c, k=3, t=4) == pytest.approx(9 * c / (8 * c + 36))
    standard = costs.standard_block_macs(14, 14, c, 3)
    inverted = costs.inverted_residual_macs(14, 14, c, 3, 4)
    assert standard / inverted == pytest.approx(9 * c / (8 * c + 36))


def test_inverted_residual_ratio_tends_to_1_125():
    assert costs.inverted_residual_ratio(10**7) == pytest.approx(1.125, abs=1e-6)
    assert costs.inverted_residual_ratio(64) < costs.inverted_residual_ratio(1024) < 1.125


def test_depthwise_separable_ratio_is_1_over_n_plus_1_over_k2():
    assert costs.depthwise_separable_ratio(64, 3) == pytest.approx(1 / 64 + 1 / 9)
    dws = costs.depthwise_separable_macs(128, 256, 3, 28, 28)
    std = costs.conv_macs(128, 256, 3, 28, 28)
    assert dws / std == pytest.approx(costs.depthwise_separable_ratio(256, 3))


def test_resnext_32x4d_block_has_about_70k_params_like_resnet_bottleneck():
    # ResNeXt paper, Sec. 3.3: 32 * (256*4 + 3*3*4*4 + 4*256) = 70,144 vs 69,632 for width 64
    assert costs.resnext_block_params(256, 32, 4) == 70_144
    assert costs.resnext_block_params(256, 1, 64) == 256 * 64 + 9 * 64 * 64 + 64 * 256 == 69_632


def test_resnext_grouped_form_equals_sum_over_branches():
    cardinality, d, c = 32, 4, 256
    branches = cardinality * (
        costs.conv_macs(c, d, 1, 56, 56) + costs.conv_macs(d, d, 3, 56, 56) + costs.conv_macs(d, c, 1, 56, 56)
    )
    assert costs.resnext_block_macs(56, 56, c, cardinality, d) == branches


def test_inception_3a_params_and_output_channels():
    # GoogLeNet Table 1, inception (3a): 192 in; #1x1 64, #3x3red 96, #3x3 128, #5x5red 16, #5x5 32, pool 32
    weights = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    biases = 64 + 96 + 128 + 16 + 32 + 32
    assert costs.inception_params(192, 64, 96, 128, 16, 32, 32) == weights + biases
    assert costs.inception_params(192, 64, 96, 128, 16, 32, 32, bias=False) == weights
    assert costs.inception_macs(28, 28, 192, 64, 96, 128, 16, 32, 32) == 28 * 28 * weights


# --------------------------------------------------------------------------- paper tables
# The papers' Mult-Adds are checked here, against the closed forms, and only here: tests/test_profile.py
# checks that the models' measured multiply-adds equal these closed forms exactly.
# MobileNet v1 paper, Tables 6 and 7, in whole millions. Every row rounds to the paper's number but
# 160 px: 290.68M, printed 290 (the paper is loose about the classifier's 1M there), hence +-1M.
@pytest.mark.parametrize(
    ("width_multiplier", "resolution", "paper_millions"),
    [(1.0, 224, 569), (0.75, 224, 325), (0.5, 224, 149), (0.25, 224, 41),
     (1.0, 192, 418), (1.0, 160, 290), (1.0, 128, 186)],
)
def test_mobilenet_v1_mult_adds_match_paper_tables_6_and_7(width_multiplier, resolution, paper_millions):
    macs = costs.mobilenet_v1_macs(width_multiplier, resolution)
    assert macs / 1e6 == pytest.approx(paper_millions, abs=1 if resolution == 160 else 0.5)


# MobileNetV2 paper: 300M at width 1.0 (Table 3; the closed form gives 300.77M); the reference
# release's table: 0.75 -> 209M, 0.5 -> 97M, 0.35 -> 59M.
@pytest.mark.parametrize(("width_multiplier", "paper_millions"), [(1.0, 300), (0.75, 209), (0.5, 97), (0.35, 59)])
def test_mobilenet_v2_mult_adds_match_paper(width_multiplier, paper_millions):
    assert costs.mobilenet_v2_macs(width_multiplier, 224) / 1e6 == pytest.approx(paper_millions, abs=1)


# --------------------------------------------------------------------------- argument checks
@pytest.mark.parametrize(
    ("func", "args", "message"),
    [
        (costs.conv_output_size, (0, 3), "size must be an integer >= 1, got 0"),
        (costs.conv_output_size, (32, 3, 0), "stride must be an integer >= 1"),
        (costs.conv_output_size, (32, 3, 1, -1), "padding must be an integer >= 0, got -1"),
        (costs.conv_output_size, (2, 5), "kernel span 5 is larger than the padded input 2"),
        (costs.conv_params, (3, 64, 0), "kernel_size must be an integer >= 1 or a pair of them, got 0"),
        (costs.conv_params, (3, 64, (3, 0)), r"kernel_size must be .* or a pair of them, got \(3, 0\)"),
        (costs.conv_params, (30, 64, 3, 4), "groups must divide in_ch and out_ch, got in_ch=30"),
        (costs.conv_params, (3.0, 64, 3), "in_ch must be an integer >= 1, got 3.0"),
        (costs.conv_macs, (3, 64, 3, 0, 10), "out_h must be an integer >= 1"),
        (costs.linear_params, (-1, 10), "in_features must be an integer >= 1"),
        (costs.depthwise_separable_macs, (8, 16, 3, 7, 0), "out_w must be an integer >= 1"),
        (costs.bottleneck_block_macs, (8, 8, 30, 3, 4), r"r must divide c \(the inner width is C/r\)"),
        (costs.bottleneck_saving, (3, 0), "r must be an integer >= 1"),
        (costs.inverted_residual_ratio, (0,), "c must be an integer >= 1"),
        (costs.depthwise_separable_ratio, (True, 3), "out_ch must be an integer >= 1, got True"),
        (costs.inception_params, (192, 64, 96, 128, 16, 32, 0), "pool_proj must be an integer >= 1"),
        (costs.resnext_block_macs, (56, 56, 256, 32, 4, 0), "out_ch must be an integer >= 1"),
        (costs.mobilenet_v1_macs, (0.0, 224), "width_multiplier must be a number > 0, got 0.0"),
        (costs.mobilenet_v2_macs, (1.0, -224), "resolution must be an integer >= 1, got -224"),
    ],
)
def test_bad_arguments_raise_value_error_saying_what_is_allowed(func, args, message):
    with pytest.raises(ValueError, match=message):
        func(*args)
