"""The checked answers of the exercise notebooks, and what each is measured on.

Each answer is made from the package's models or real layers (their parameters, their measured
multiply-adds), from torchvision, or from the stored reference records; known wrong values come with the
mistake that gives them. :func:`lecture_utils.exercises.check` compares a student's number with these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "ANSWERS", "forward_time_ratio", "fmt"]


@dataclass(frozen=True)
class Answer:
    """One checked number: what it is, how it is made, how close is right, and the mistakes it catches."""

    question: str
    expected: Callable[[], float]
    why: Callable[[float], str]  # the reason shown with a right answer (the expected value passed in)
    rel_tol: float = 0.0  # 0: an exact integer
    abs_tol: float = 0.0
    points: bool = False  # an accuracy difference in points: a fraction (x 0.01) is caught as a mistake
    mistakes: Callable[[float], list[tuple[float, str]]] = lambda expected: []


def fmt(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.4g}"


# --------------------------------------------------------------------------- what the answers are measured on
def _params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _model(name: str, **kwargs: Any) -> Any:
    from lecture_utils.models import create_model

    return create_model(name, **kwargs)


def _zoo_row(model: str, resolution: int | None = None, width: float | None = None) -> Any:
    """The CPU-scale zoo's row of `model` (the lessons' zoo; only whole rows, which later runs do not change)."""
    from lecture_utils.experiment import zoo

    rows = [r for r in zoo.zoo_rows(name=zoo.LESSON_ZOO, partial=True) if r.model == model
            and (resolution is None or r.resolution == resolution) and (width is None or r.width == width)]
    if not rows:
        raise ValueError(f"the zoo has no whole row of {model} yet: make -j2 reference-zoo-scale")
    return rows[0]


def _lesson_records(lesson: str) -> list[dict]:
    from lecture_utils.experiment import results

    return results.lesson_reference(lesson)


def _alexnet_gap_head() -> Any:
    """AlexNet (10 classes) with a global average pool and fc6 on 256 inputs instead of 256 x 6 x 6."""
    from torch import nn

    model = _model("alexnet", num_classes=10)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier[1] = nn.Linear(256, 4096)
    return model


def _vgg16_gap_head() -> Any:
    """VGG16 (10 classes) whose three fully connected layers are one nn.Linear(512, 10) after a global pool."""
    from torch import nn

    model = _model("vgg16", num_classes=10)
    model.avgpool, model.classifier = nn.AdaptiveAvgPool2d(1), nn.Linear(512, 10)
    return model


def _vgg_receptive_field(key: str) -> int:
    """Receptive field after the last pool of VGG configuration `key`, measured by a gradient.

    One channel, every kernel 1, and 2x2 average pools in place of the max-pools (same windows; a max-pool's
    gradient would reach only one pixel of its window): the input columns the centre output depends on.
    """
    import torch
    from torch import nn

    from lecture_utils.models.vgg import cfgs

    layers = [nn.AvgPool2d(2, 2) if v == "M" else nn.Conv2d(1, 1, 3, padding=1, bias=False) for v in cfgs[key]]
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            nn.init.ones_(layer.weight)
    image = torch.ones(1, 1, 512, 512, requires_grad=True)
    out = nn.Sequential(*layers)(image)
    out[0, 0, out.shape[-2] // 2, out.shape[-1] // 2].backward()
    return int((image.grad[0, 0].abs().sum(dim=0) > 0).sum())


def _vgg_c_params() -> int:
    """VGG configuration C (1000 classes): D with the third conv of stages 3-5 as a 1x1 conv, built and counted."""
    from torch import nn

    plan = [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M"]
    layers, c_in = [], 3
    for v in plan:
        if v != "M":
            c_out, k = v if isinstance(v, tuple) else (v, 3)
            layers.append(nn.Conv2d(c_in, c_out, k, padding=k // 2))
            c_in = c_out
    layers += [nn.Linear(512 * 7 * 7, 4096), nn.Linear(4096, 4096), nn.Linear(4096, 1000)]
    return sum(_params(layer) for layer in layers)


def _conv_weights(module: Any) -> int:
    from torch import nn

    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def _measured_macs(module: Any, size: int, in_chans: int) -> int:
    from lecture_utils.profile import conv_linear_macs

    return conv_linear_macs(module, size, in_chans=in_chans)


def _bottleneck_saving(r: int, c: int = 256, k: int = 3) -> float:
    """Standard k x k conv over a bottleneck of reduction r, both C -> C, measured on real layers."""
    from torch import nn

    m = c // r
    block = nn.Sequential(nn.Conv2d(c, m, 1), nn.Conv2d(m, m, k, padding=k // 2), nn.Conv2d(m, c, 1))
    return _measured_macs(nn.Conv2d(c, c, k, padding=k // 2), 8, c) / _measured_macs(block, 8, c)


def _identity_blocks() -> tuple[int, float]:
    """ResNet-18 with each block's last batch-norm scale set to 0: (blocks that are then exactly the
    identity, the largest |block(x) - x| over them) for a random post-ReLU input, in eval mode."""
    import torch

    from lecture_utils.models.resnet import BasicBlock

    torch.manual_seed(0)
    model = _model("resnet18", num_classes=10).eval()
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    same, worst = 0, 0.0
    with torch.no_grad():
        for block in blocks:
            block.conv2[1].weight.zero_()
            x = torch.relu(torch.randn(1, block.conv1[0].in_channels, 8, 8))
            y = block(x)
            if y.shape == x.shape:
                worst = max(worst, (y - x).abs().max().item())
                same += bool(torch.equal(y, x))
    return same, worst


def _equal_cost_d(cardinality: int) -> float:
    """Width d per path at which a ResNeXt block of `cardinality` paths has the weights of ResNet-50's first
    block (measured on it): the positive root of C (2 * 256 d + 9 d^2) = target."""
    from lecture_utils.models.resnet import Bottleneck

    target = _conv_weights(Bottleneck(256, 64))
    a, b = 9 * cardinality, 2 * 256 * cardinality
    return (-b + math.sqrt(b * b + 4 * a * target)) / (2 * a)


def _resnext50(groups: int, width: int) -> int:
    import torch

    from lecture_utils.models.resnet import Bottleneck, ResNet

    with torch.device("meta"):
        return _params(ResNet(Bottleneck, [3, 4, 6, 3], groups=groups, width_per_group=width))


def _wrn(depth: int, k: int) -> int:
    import torch

    with torch.device("meta"):
        return _params(_model("wide_resnet", depth=depth, widen_factor=k, num_classes=10))


def _separable_20x(k: int = 5, m: int = 8) -> int:
    """The output width N at which a depthwise separable k x k conv is exactly 20 times cheaper, measured."""
    from torch import nn

    for n in range(1, 1001):
        standard = _measured_macs(nn.Conv2d(m, n, k, padding=k // 2), 4, m)
        separable = _measured_macs(nn.Sequential(nn.Conv2d(m, m, k, padding=k // 2, groups=m), nn.Conv2d(m, n, 1)), 4, m)
        if standard == 20 * separable:
            return n
    raise RuntimeError("no width up to 1000 is exactly 20 times cheaper")


def _shallow_mobilenet_v1() -> Any:
    """MobileNet v1 (1000 classes) without the five repeated 14 x 14 x 512 layers (the paper's Table 5)."""
    from torch import nn

    model = _model("mobilenet_v1")
    model.features = nn.Sequential(*[layer for i, layer in enumerate(model.features) if i not in range(7, 12)])
    return model


def _inverted_equals_standard(t: int = 4) -> int:
    """The width C at which an inverted residual (expansion t) costs exactly one standard 3x3 conv, measured."""
    from torch import nn

    from lecture_utils.models.mobilenet_v2 import InvertedResidual

    for c in range(1, 201):
        if _measured_macs(nn.Conv2d(c, c, 3, padding=1), 4, c) == _measured_macs(InvertedResidual(c, c, 1, t), 4, c):
            return c
    raise RuntimeError("no width up to 200 makes the two equal")


def _rounding_params() -> int:
    """Parameters that rounding to multiples of 8 adds to MobileNetV2 0.35 (1000 classes): ours against
    torchvision's with its `round_nearest=1`."""
    import torch
    import torchvision

    with torch.device("meta"):
        return _params(_model("mobilenet_v2", width_multiplier=0.35)) - \
            _params(torchvision.models.mobilenet_v2(width_mult=0.35, round_nearest=1))


def _confidence() -> float:
    from lecture_utils.experiment import stats

    return stats.CONFIDENCE


def _v1_pairs() -> int:
    """How many (width, resolution) pairs of lesson 09's CPU-scale grid compare MobileNet v1 with MobileNetV2."""
    from lecture_utils.experiment import findings

    return sum(model == "mobilenet_v1" for model, *_ in findings.scale_differences())


def _ablation_binomial() -> tuple[float, float, float]:
    """(binomial error of the mean paired difference, in points; p; the seeds' standard error in points) of
    the ablation's +branch against MobileNetV2 on the held-out images."""
    from lecture_utils.experiment import conditions, plans, results

    plan = plans.lesson09_profile_plan("reference")["ablation"]
    by_key = {conditions.condition_key(r): r for r in results.load_reference("lesson09")}
    rows = [by_key[c.key] for c in plan]
    base = [results.final(r) for r in rows if r["model"] == "mobilenet_v2"]
    p, n_images = sum(base) / len(base), int(rows[0]["val_images"])
    (comparison,) = results.compare(rows, ["mobilenet_v2+branch"])
    return 100 * math.sqrt(2 * p * (1 - p) / n_images) / math.sqrt(comparison.n), p, 100 * comparison.se


def forward_time_ratio(first: Any, second: Any, size: int, batch: int = 8, repeats: int = 7) -> float:
    """How many times longer `second` takes than `first` for one forward pass of a batch (eval mode).

    The two are timed in turns, so that a machine that speeds up or slows down meanwhile affects both;
    the ratio is that of the median times.
    """
    import statistics
    import time

    import torch

    x, times = torch.randn(batch, 3, size, size), {0: [], 1: []}
    models = (first.eval(), second.eval())
    with torch.no_grad():
        for model in models:
            model(x)  # the first pass allocates; it is not timed
        for _ in range(repeats):
            for i, model in enumerate(models):
                start = time.perf_counter()
                model(x)
                times[i].append(time.perf_counter() - start)
    return statistics.median(times[1]) / statistics.median(times[0])


def _points(a: float, b: float) -> float:
    return round(100 * (a - b), 6)


# --------------------------------------------------------------------------- the answers, per lesson
ANSWERS: dict[tuple[str, str], Answer] = {
    ("01", "a"): Answer(
        "the parameters of fc6, the first fully connected layer of AlexNet",
        lambda: _params(_model("alexnet", num_classes=10).classifier[1]),
        lambda e: "256 x 6 x 6 = 9,216 inputs: 4,096 x 9,216 weights plus 4,096 biases",
        mistakes=lambda e: [(e - 4096, "off by the bias terms: 4,096 x 9,216 weights plus 4,096 biases"),
                            (256 * 4096 + 4096, "that is fc6 on 256 inputs; the pool hands it 256 x 6 x 6 values")]),
    ("01", "b"): Answer(
        "how many parameters fewer AlexNet has with a global average pool and fc6 on 256 inputs",
        lambda: _params(_model("alexnet", num_classes=10)) - _params(_alexnet_gap_head()),
        lambda e: "fc6 keeps 256 of its 9,216 inputs: (9,216 - 256) x 4,096 weights go, its biases stay",
        mistakes=lambda e: [(_params(_alexnet_gap_head()), "that is how many are left; the question asks how many fewer"),
                            (e + 4096, "the 4,096 biases of fc6 stay: only weights on the lost inputs go")]),
    ("01", "c"): Answer(
        "how many times more training images per second the small CNN processed than AlexNet (the zoo)",
        lambda: _zoo_row("small_cnn").images_per_s / _zoo_row("alexnet").images_per_s,
        lambda e: "images_per_s of the two zoo rows (median epoch, one thread)",
        rel_tol=0.01,
        mistakes=lambda e: [(_zoo_row("alexnet").macs / _zoo_row("small_cnn").macs,
                             "that is the ratio of multiply-adds, not of the measured speed"),
                            (1 / e, "inverted: the small CNN is the faster one, so the ratio is above 1")]),
    ("01", "d"): Answer(
        "the output values ('neurons') of the paper's conv1 (96 kernels 11x11/4, no padding) on a 227 px image",
        lambda: _model_output_numel(227),
        lambda e: "floor((227 - 11) / 4) + 1 = 55, and 96 x 55 x 55 values",
        mistakes=lambda e: [(253_440, "that is the paper's own Section 3.5 entry, which its layer sizes do not give"),
                            (_model_output_numel(224), "that is a 224 px input, which gives 54 x 54 maps")]),
    ("02", "a"): Answer(
        "the receptive field (in pixels) after the last max-pool of VGG19",
        lambda: _vgg_receptive_field("E"),
        lambda e: "r grows by (k - 1) x jump per layer; each 2x2 pool adds one jump and doubles it",
        mistakes=lambda e: [(e - 16, "that is after the last convolution: the last 2x2 pool adds (2 - 1) x 16 pixels"),
                            (_vgg_receptive_field("A"), "that is VGG11 (configuration A)"),
                            (_vgg_receptive_field("D"), "that is VGG16 (configuration D)")]),
    ("02", "b"): Answer(
        "the parameters of VGG16 (10 classes) with a global average pool and one nn.Linear(512, 10) as head",
        lambda: _params(_vgg16_gap_head()),
        lambda e: "the 13 convolutions' 14,714,688 plus 512 x 10 weights and 10 biases",
        mistakes=lambda e: [(e - 5130, "that is the convolutions alone; the new linear layer adds 512 x 10 + 10"),
                            (_params(_model("vgg16", num_classes=10)) - e,
                             "that is how many parameters go; the question asks how many are left")]),
    ("02", "c"): Answer(
        "by how many points VGG16_bn's validation accuracy is ahead of VGG16's after the last epoch (stored runs)",
        lambda: _points(*(float(r["val_acc"][-1]) for r in _lesson_records("02"))),
        lambda e: "the two stored runs' last val_acc values", abs_tol=0.05, points=True,
        mistakes=lambda e: [(_points(*(float(r["val_acc"][0]) for r in _lesson_records("02"))),
                             "that is after the first epoch, not the last")]),
    ("02", "d"): Answer(
        "the parameters of VGG configuration C at 1000 classes",
        _vgg_c_params,
        lambda e: "D less 8 of the 9 weights per channel pair in three convs: 8 x (256^2 + 2 x 512^2)",
        mistakes=lambda e: [(_params(_model("vgg16")), "that is configuration D: C's third conv of stages 3-5 is 1x1")]),
    ("03", "a"): Answer(
        "the convolution weights of inception (4e), with its reduce layers",
        lambda: _conv_weights(_model("googlenet", aux_logits=False).inception4e),
        lambda e: "sum of C_in k^2 C_out over the 1x1, 1x1 + 3x3, 1x1 + 5x5 and pool-projection convolutions",
        mistakes=lambda e: [(_params(_model("googlenet", aux_logits=False).inception4e),
                             "that includes batch norm's two parameters per channel; count the convolution weights"),
                            (e + 256 + 160 + 320 + 32 + 128 + 128,
                             "those extra are biases; these convolutions have none (batch norm follows them)")]),
    ("03", "b"): Answer(
        "how many parameters the two auxiliary classifiers add to GoogLeNet (10 classes)",
        lambda: _params(_model("googlenet", num_classes=10)) - _params(_model("googlenet", num_classes=10, aux_logits=False)),
        lambda e: "two heads of conv 1x1 (128), fc 2048 -> 1024 and fc 1024 -> 10, each with their biases",
        mistakes=lambda e: [(_params(getattr(_model("googlenet", num_classes=10), aux)),
                             "that is one auxiliary classifier; GoogLeNet has two") for aux in ("aux1", "aux2")]),
    ("03", "c"): Answer(
        "by how many points the best epoch flatters lesson 03's stored reference run over its last epoch",
        lambda: _points(max(_lesson_records("03")[0]["val_acc"]), _lesson_records("03")[0]["val_acc"][-1]),
        lambda e: "results.best(record) - results.final(record)", abs_tol=0.05, points=True),
    ("04", "a"): Answer(
        "how many times cheaper a bottleneck block with r = 8 is than one standard 3x3 conv of the same width",
        lambda: _bottleneck_saving(8),
        lambda e: "k^2 / (2/r + k^2/r^2) = 9 / (0.25 + 0.140625)", rel_tol=0.001,
        mistakes=lambda e: [(64, "r^2 = 64 would hold if the two 1x1 convolutions were free; they cost 2/r"),
                            (_bottleneck_saving(4), "that is r = 4")]),
    ("04", "b"): Answer(
        "how many of ResNet-18's 8 blocks become exactly the identity when their last batch-norm scale is 0",
        lambda: _identity_blocks()[0],
        lambda e: "F(x) = 0, so ReLU(0 + x) = x where the shortcut is the identity; 3 blocks project theirs",
        mistakes=lambda e: [(8, "the 3 blocks that change shape keep their 1x1 projection: y = ReLU(P x), not x")]),
    ("04", "c"): Answer(
        "by how many points ResNet-18's test accuracy is above the small CNN's in the zoo",
        lambda: _points(_zoo_row("resnet18").test_acc, _zoo_row("small_cnn").test_acc),
        lambda e: "the two zoo rows' test_acc (means over their seeds)", abs_tol=0.05, points=True),
    ("05", "a"): Answer(
        "the width d per path (two decimals) at which a 16-path ResNeXt block costs as much as ResNet-50's",
        lambda: _equal_cost_d(16),
        lambda e: "positive root of 16 (512 d + 9 d^2) = 69,632", abs_tol=0.01,
        mistakes=lambda e: [(float(round(e)), "rounded to a whole number; give d to two decimals"),
                            (_equal_cost_d(64), "that is C = 64")]),
    ("05", "b"): Answer(
        "how many parameters ResNeXt-50 gains from 32x4d to 64x4d (1000 classes)",
        lambda: _resnext50(64, 4) - _resnext50(32, 4),
        lambda e: "twice the inner width: its 1x1 convolutions double, its grouped 3x3 (d^2 per path) too",
        mistakes=lambda e: [(_resnext50(64, 4), "that is the whole 64x4d network; the question asks for the gain")]),
    ("05", "c"): Answer(
        "by how many points the 6-epoch reference run of lesson 05 is ahead of the 4-epoch one (last epochs)",
        lambda: _points(_lesson_records("05")[0]["val_acc"][-1], _lesson_records("05")[1]["val_acc"][-1]),
        lambda e: "the last val_acc of the first two stored records", abs_tol=0.05, points=True),
    ("06", "a"): Answer(
        "the parameters of one WideBasicBlock(256, 256) (the third group of a WRN-d-4)",
        lambda: _params(_wide_block()),
        lambda e: "two 3x3 convs of 256 x 256 x 9 weights (no bias) and two batch norms of 2 x 256",
        mistakes=lambda e: [(e - 1024, "off by the batch norms: a scale and a shift per channel, 2 x 2 x 256"),
                            (e + 512, "these convolutions have no bias (batch norm follows or precedes them)")]),
    ("06", "b"): Answer(
        "how many times the parameters of WRN-16-2 WRN-16-4 has (10 classes)",
        lambda: _wrn(16, 4) / _wrn(16, 2),
        lambda e: "the 3x3 convolutions scale as k^2; the stem and classifier less", rel_tol=0.001,
        mistakes=lambda e: [(2, "that is linear in k; a conv of width 16k to 16k has 9 (16k)^2 weights")]),
    ("06", "c"): Answer(
        "the gap in points between training and validation accuracy of lesson 06's reference run, last epoch",
        lambda: _points(_lesson_records("06")[0]["train_acc"][-1], _lesson_records("06")[0]["val_acc"][-1]),
        lambda e: "train_acc[-1] - val_acc[-1] of the first stored record", abs_tol=0.05, points=True,
        mistakes=lambda e: [(_points(_lesson_records("06")[1]["train_acc"][-1], _lesson_records("06")[1]["val_acc"][-1]),
                             "that is the run with the light augmentation, the second record")]),
    ("07", "a"): Answer(
        "the output width N at which a depthwise separable 5x5 convolution is exactly 20 times cheaper",
        lambda: _separable_20x(),
        lambda e: "1/N + 1/25 = 1/20 gives 1/N = 1/100",
        mistakes=lambda e: [(20, "1/N alone is not the ratio: 1/N + 1/k^2 = 1/20 with k^2 = 25")]),
    ("07", "b"): Answer(
        "the parameters of the shallow MobileNet v1 (no five 14x14x512 layers), 1000 classes",
        lambda: _params(_shallow_mobilenet_v1()),
        lambda e: "each removed layer had 512 x 9 + 512 x 512 weights and 2 x 2 x 512 batch-norm parameters",
        mistakes=lambda e: [(_params(_model("mobilenet_v1")) - e, "that is how many go; the question asks how many stay")]),
    ("07", "c"): Answer(
        "by how many points MobileNetV2 0.5 is above MobileNet v1 0.5 on test accuracy at 64 px (the zoo)",
        lambda: _points(_zoo_row("mobilenet_v2", 64).test_acc, _zoo_row("mobilenet_v1", 64).test_acc),
        lambda e: "the two zoo rows' test_acc at 64 px", abs_tol=0.05, points=True),
    ("08", "a"): Answer(
        "the width C at which an inverted residual with t = 4 costs exactly one standard 3x3 convolution",
        lambda: _inverted_equals_standard(4),
        lambda e: "9C = 4 (2C + 9) gives C = 36; at t = 6 the block is never as cheap",
        mistakes=lambda e: [(-18, "that is the t = 6 root: negative, so no width makes that block as cheap")]),
    ("08", "b"): Answer(
        "how many parameters rounding widths to multiples of 8 adds to MobileNetV2 0.35 (1000 classes)",
        lambda: _rounding_params(),
        lambda e: "ours (divisor 8) less torchvision's mobilenet_v2(width_mult=0.35, round_nearest=1)",
        mistakes=lambda e: [(-e, "the sign: rounding to 8 makes the layers wider, so it adds parameters")]),
    ("08", "c"): Answer(
        "by how many points MobileNetV2 0.5 at 64 px is above itself at 32 px on test accuracy (the zoo)",
        lambda: _points(_zoo_row("mobilenet_v2", 64).test_acc, _zoo_row("mobilenet_v2", 32).test_acc),
        lambda e: "the two zoo rows' test_acc", abs_tol=0.05, points=True),
    ("09a", "a"): Answer(
        "the multiply-adds of MobileNetV2 1.0 at 160 px (1000 classes)",
        lambda: _measured_macs(_model("mobilenet_v2"), 160, 3),
        lambda e: "profile.conv_linear_macs, or costs.mobilenet_v2_macs(1.0, 160)", rel_tol=0.0005,
        mistakes=lambda e: [(_measured_macs(_model("mobilenet_v2"), 224, 3) * (160 / 224) ** 2,
                             "that is the rho^2 estimate; the classifier's 1,280 x 1,000 multiply-adds do not "
                             "shrink with the image, so measure it")]),
    ("09a", "b"): Answer(
        "how many parameters the projection shortcuts add to MobileNetV2 0.35 (10 classes)",
        lambda: _params(_model("c_mobilenet_v2", width_multiplier=0.35, num_classes=10))
        - _params(_model("mobilenet_v2", width_multiplier=0.35, num_classes=10)),
        lambda e: "a 1x1 conv and a batch norm on each of the 7 blocks without an identity shortcut; "
                  "the LeakyReLU has none",
        mistakes=lambda e: [(_params(_model("c_mobilenet_v2", width_multiplier=0.35, num_classes=10)),
                             "that is the whole C_MobileNetV2; the question asks what the shortcuts add")]),
    ("09b", "a"): Answer(
        "the binomial error (points) of the ablation's mean +branch - MobileNetV2 held-out difference",
        lambda: _ablation_binomial()[0],
        lambda e: "sqrt(2 p (1 - p) / N) / sqrt(n), p the baseline's mean held-out accuracy, N = 5,000, n = 5",
        rel_tol=0.05, points=True,
        mistakes=lambda e: [(e * math.sqrt(5), "that is the error of one pair; the mean of n = 5 pairs has sqrt(5) less"),
                            (e / math.sqrt(2), "a difference of two accuracies has twice the variance of one"),
                            (_ablation_binomial()[2], "that is the seeds' standard error, the other term")]),
    ("09b", "b"): Answer(
        "the probability that at least one of the CPU-scale grid's MobileNet v1 - MobileNetV2 comparisons comes "
        "out resolved at 95 % when the two are equally accurate (the tests taken as independent)",
        lambda: 1 - _confidence() ** _v1_pairs(),
        lambda e: "each test stays unresolved with probability 0.95, all m of them with 0.95^m; at least one: "
                  "1 - 0.95^m",
        rel_tol=0.01,
        mistakes=lambda e: [(_v1_pairs() * (1 - _confidence()),
                             "that is the expected number of chance findings, m x 0.05, not a probability"),
                            (1 - _confidence(), "that is the chance of one test; there are m of them"),
                            (_confidence() ** _v1_pairs(), "that is the chance that none comes out resolved"),
                            (1 - (1 - (1 - _confidence()) / 2) ** _v1_pairs(),
                             "one tail only: 'resolved' counts a difference in either direction, 5 % per test")]),
}


def _model_output_numel(size: int) -> int:
    import torch
    from torch import nn

    with torch.no_grad():
        return nn.Conv2d(3, 96, 11, stride=4)(torch.zeros(1, 3, size, size)).numel()


def _wide_block() -> Any:
    from lecture_utils.models.wide_resnet import WideBasicBlock

    return WideBasicBlock(256, 256)


