"""Closed-form cost formulas of convolutional layers and blocks.

Everything here is arithmetic on hyper-parameters: no tensors, no forward pass. The lessons
derive these formulas on the board and then check them against a network with
:mod:`lecture_utils.profile`, which measures the same quantities with forward hooks.

Costs are counted as multiply-adds (MACs), the papers' "Mult-Adds": a ``k x k`` convolution
producing one output value from ``C_in / groups`` input channels costs ``k^2 C_in / groups``
multiply-adds. Biases, batch norm, activations, pooling and residual additions are not
included; they are small next to the convolutions and the papers leave them out too.

Notation used in the docstrings: ``H, W`` spatial size of a layer's output (of a block's
input/output for the block formulas), ``C`` channels, ``k`` kernel size, ``g`` groups,
``r`` bottleneck reduction, ``t`` expansion ratio.
"""

from __future__ import annotations

from collections.abc import Sequence

from lecture_utils._util import positive_float, positive_int

__all__ = [
    "MOBILENET_RELEASED",
    "conv_output_size",
    "conv_params",
    "conv_macs",
    "linear_params",
    "linear_macs",
    "depthwise_separable_macs",
    "depthwise_separable_ratio",
    "standard_block_macs",
    "bottleneck_block_macs",
    "inverted_residual_macs",
    "bottleneck_saving",
    "inverted_residual_ratio",
    "inception_params",
    "inception_macs",
    "resnext_block_params",
    "resnext_block_macs",
    "mobilenet_v1_macs",
    "mobilenet_v2_macs",
    "MOBILENET_V2_SETTINGS",
]

KernelSize = int | Sequence[int]


# --------------------------------------------------------------------------- argument checks
# Every public function checks its own arguments once, in its first lines; what follows is the formula.
def _ints(**values: object) -> None:
    """ValueError naming the first keyword whose value is not an integer >= 1."""
    for what, value in values.items():
        positive_int(value, what)


def _pair(value: object, what: str) -> tuple[int, int]:
    """An integer >= 1 or a pair of them (height, width), as nn.Conv2d accepts, as a pair."""
    pair = tuple(value) if isinstance(value, Sequence) and len(value) == 2 else (value, value)
    try:
        return positive_int(pair[0], what), positive_int(pair[1], what)
    except ValueError:
        raise ValueError(f"{what} must be an integer >= 1 or a pair of them, got {value!r}") from None


def _conv_kernel(in_ch: object, out_ch: object, kernel_size: object, groups: object) -> tuple[int, int]:
    """Check a convolution's channels, groups and kernel; return the kernel as (k_h, k_w)."""
    _ints(in_ch=in_ch, out_ch=out_ch, groups=groups)
    if in_ch % groups or out_ch % groups:
        raise ValueError(
            f"groups must divide in_ch and out_ch, got in_ch={in_ch}, out_ch={out_ch}, groups={groups}"
        )
    return _pair(kernel_size, "kernel_size")


# --------------------------------------------------------------------------- single layers
def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """Output length of a convolution or pooling along one axis.

    O = floor((I + 2P - D (K - 1) - 1) / S) + 1; e.g. AlexNet conv1: (256 + 4 - 11) // 4 + 1 = 63.
    """
    _ints(size=size, kernel_size=kernel_size, stride=stride, dilation=dilation)
    positive_int(padding, "padding", minimum=0)
    span = dilation * (kernel_size - 1) + 1  # receptive field of one output value
    if size + 2 * padding < span:
        raise ValueError(
            f"kernel span {span} is larger than the padded input {size + 2 * padding}; "
            "the output would be empty"
        )
    return (size + 2 * padding - span) // stride + 1


def conv_params(
    in_ch: int, out_ch: int, kernel_size: KernelSize, groups: int = 1, bias: bool = True
) -> int:
    """Learnable parameters of a 2-D convolution.

    P = C_out * (C_in / g) * k_h * k_w + (C_out if bias else 0).
    """
    k_h, k_w = _conv_kernel(in_ch, out_ch, kernel_size, groups)
    return out_ch * (in_ch // groups) * k_h * k_w + (out_ch if bias else 0)


def conv_macs(
    in_ch: int, out_ch: int, kernel_size: KernelSize, out_h: int, out_w: int, groups: int = 1
) -> int:
    """Multiply-adds of a 2-D convolution (bias not counted).

    MACs = H_out * W_out * C_out * (C_in / g) * k_h * k_w.
    """
    k_h, k_w = _conv_kernel(in_ch, out_ch, kernel_size, groups)
    _ints(out_h=out_h, out_w=out_w)
    return out_h * out_w * out_ch * (in_ch // groups) * k_h * k_w


def linear_params(in_features: int, out_features: int, bias: bool = True) -> int:
    """Learnable parameters of a fully connected layer: P = N_in * N_out + (N_out if bias else 0)."""
    _ints(in_features=in_features, out_features=out_features)
    return in_features * out_features + (out_features if bias else 0)


def linear_macs(in_features: int, out_features: int) -> int:
    """Multiply-adds of a fully connected layer for one input vector: MACs = N_in * N_out."""
    _ints(in_features=in_features, out_features=out_features)
    return in_features * out_features


# --------------------------------------------------------------------------- depthwise separable
def depthwise_separable_macs(
    in_ch: int, out_ch: int, kernel_size: int, out_h: int, out_w: int
) -> int:
    """Multiply-adds of a depthwise k x k conv followed by a pointwise 1 x 1 conv (MobileNet eq. 4).

    MACs = H W M k^2 + H W M N, with M input and N output channels.
    """
    _ints(in_ch=in_ch, out_ch=out_ch, out_h=out_h, out_w=out_w)
    k_h, k_w = _pair(kernel_size, "kernel_size")
    return out_h * out_w * in_ch * k_h * k_w + out_h * out_w * in_ch * out_ch


def depthwise_separable_ratio(out_ch: int, kernel_size: int) -> float:
    """Cost of a depthwise separable conv relative to a standard conv (MobileNet eq. 5).

    (H W M k^2 + H W M N) / (H W M N k^2) = 1/N + 1/k^2; about 1/8 to 1/9 for k = 3.
    """
    _ints(out_ch=out_ch, kernel_size=kernel_size)
    return 1.0 / out_ch + 1.0 / kernel_size**2


# --------------------------------------------------------------------------- blocks (C in = C out)
def standard_block_macs(h: int, w: int, c: int, k: int) -> int:
    """Multiply-adds of one standard k x k convolution from C to C channels, stride 1.

    MACs = H W C^2 k^2.
    """
    _ints(h=h, w=w, c=c, k=k)
    return h * w * c * c * k * k


def bottleneck_block_macs(h: int, w: int, c: int, k: int, r: int) -> int:
    """Multiply-adds of a ResNet bottleneck: 1x1 C -> C/r, k x k C/r -> C/r, 1x1 C/r -> C.

    MACs = H W (C^2/r + C^2 k^2 / r^2 + C^2/r) = H W C^2 (2/r + k^2/r^2); r must divide C.
    """
    _ints(h=h, w=w, c=c, k=k, r=r)
    if c % r:
        raise ValueError(f"r must divide c (the inner width is C/r), got c={c}, r={r}")
    m = c // r
    return h * w * (c * m + m * m * k * k + m * c)


def inverted_residual_macs(h: int, w: int, c: int, k: int, t: int) -> int:
    """Multiply-adds of a MobileNetV2 inverted residual, stride 1, C -> tC -> C.

    1x1 expand + k x k depthwise + 1x1 linear projection:
    MACs = H W (C tC + tC k^2 + tC C) = H W t C (2C + k^2)   (paper: h w d' t (d' + k^2 + d'')).
    """
    _ints(h=h, w=w, c=c, k=k, t=t)
    return h * w * t * c * (2 * c + k * k)


def bottleneck_saving(k: int, r: int) -> float:
    """How many times cheaper a bottleneck block is than one standard k x k conv at equal C.

    H W C^2 k^2 / (H W C^2 (2/r + k^2/r^2)) = k^2 / (2/r + k^2/r^2); 8.47 at k = 3, r = 4.
    """
    _ints(k=k, r=r)
    return k * k / (2.0 / r + k * k / r**2)


def inverted_residual_ratio(c: int, k: int = 3, t: int = 4) -> float:
    """How many times cheaper an inverted residual is than one standard k x k conv at equal C.

    H W C^2 k^2 / (H W t C (2C + k^2)) = k^2 C / (t (2C + k^2)); at k = 3, t = 4 this is
    9C / (8C + 36), which tends to 9/8 = 1.125 as C grows.
    """
    _ints(c=c, k=k, t=t)
    return k * k * c / (t * (2 * c + k * k))


# --------------------------------------------------------------------------- GoogLeNet, ResNeXt
def _inception_convs(
    in_ch: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int, k5: int
) -> list[tuple[int, int, int]]:
    """(C_in, C_out, k) of every conv in an inception module (GoogLeNet Table 1 columns)."""
    return [
        (in_ch, ch1x1, 1),  # branch 1: 1x1
        (in_ch, ch3x3red, 1),  # branch 2: 1x1 reduce, then 3x3
        (ch3x3red, ch3x3, 3),
        (in_ch, ch5x5red, 1),  # branch 3: 1x1 reduce, then 5x5
        (ch5x5red, ch5x5, k5),
        (in_ch, pool_proj, 1),  # branch 4: 3x3 max pool (stride 1, no parameters), then 1x1
    ]


def inception_params(
    in_ch: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch5x5red: int,
    ch5x5: int,
    pool_proj: int,
    bias: bool = True,
    k5: int = 5,
) -> int:
    """Parameters of an inception module with dimension reductions (GoogLeNet Fig. 2b).

    Sum of C_in k^2 C_out (+ C_out biases) over: 1x1; 1x1 reduce + 3x3; 1x1 reduce + k5 x k5;
    3x3 max pool + 1x1. Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj.
    """
    _ints(in_ch=in_ch, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5,
          pool_proj=pool_proj, k5=k5)
    convs = _inception_convs(in_ch, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, k5)
    return sum(c_in * k * k * c_out + (c_out if bias else 0) for c_in, c_out, k in convs)


def inception_macs(
    h: int,
    w: int,
    in_ch: int,
    ch1x1: int,
    ch3x3red: int,
    ch3x3: int,
    ch5x5red: int,
    ch5x5: int,
    pool_proj: int,
    k5: int = 5,
) -> int:
    """Multiply-adds of an inception module on an H x W input (all branches keep H x W).

    H W sum(C_in k^2 C_out) over the six convs listed in :func:`inception_params`.
    """
    _ints(h=h, w=w, in_ch=in_ch, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3, ch5x5red=ch5x5red,
          ch5x5=ch5x5, pool_proj=pool_proj, k5=k5)
    convs = _inception_convs(in_ch, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj, k5)
    return h * w * sum(c_in * k * k * c_out for c_in, c_out, k in convs)


def resnext_block_params(
    in_ch: int, cardinality: int, bottleneck_width: int, out_ch: int | None = None, k: int = 3
) -> int:
    """Weights of a ResNeXt block (no BN, no bias), in its grouped-conv form (c).

    With D = cardinality * bottleneck_width: C_in D + k^2 D^2 / cardinality + D C_out, which equals
    cardinality * (C_in d + k^2 d^2 + d C_out) of the C-branch form (a); 32x4d at 256: 70,144.
    """
    _ints(in_ch=in_ch, cardinality=cardinality, bottleneck_width=bottleneck_width, k=k)
    out_ch = in_ch if out_ch is None else positive_int(out_ch, "out_ch")
    d = cardinality * bottleneck_width
    return in_ch * d + k * k * d * d // cardinality + d * out_ch


def resnext_block_macs(
    h: int,
    w: int,
    in_ch: int,
    cardinality: int,
    bottleneck_width: int,
    out_ch: int | None = None,
    k: int = 3,
) -> int:
    """Multiply-adds of a stride-1 ResNeXt block on an H x W input: H W times its weight count.

    H W (C_in D + k^2 D^2 / cardinality + D C_out), D = cardinality * bottleneck_width.
    """
    _ints(h=h, w=w, in_ch=in_ch, cardinality=cardinality, bottleneck_width=bottleneck_width, k=k)
    out_ch = in_ch if out_ch is None else positive_int(out_ch, "out_ch")
    d = cardinality * bottleneck_width
    return h * w * (in_ch * d + k * k * d * d // cardinality + d * out_ch)


# --------------------------------------------------------------------------- whole networks
def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to the nearest multiple of ``divisor``, never below 90% of ``value``.

    The MobileNetV2 reference code's rule (kept here so the closed form does not import the models).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


# MobileNet v1 (Table 1): (stride of the depthwise conv, output channels of the pointwise conv).
_MOBILENET_V1_BODY = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [
    (2, 1024),
    (1, 1024),
]


def mobilenet_v1_macs(
    width_multiplier: float = 1.0, resolution: int = 224, num_classes: int = 1000
) -> int:
    """Multiply-adds of MobileNet v1 from the paper's Table 1 (conv + FC; no BN, bias, pooling).

    Stem 3x3/2 conv 3 -> 32a, 13 depthwise separable layers, global pool, FC 1024a -> classes,
    channels max(int(C * a), 8) as in the reference code; paper: 569M at a = 1.0, resolution 224.
    Every 3x3 conv has padding 1, so stride s takes H to ceil(H / s) = (H - 1) // s + 1.
    """
    a = positive_float(width_multiplier, "width_multiplier")
    _ints(resolution=resolution, num_classes=num_classes)
    size = (resolution - 1) // 2 + 1
    in_ch = max(int(32 * a), 8)
    total = size * size * 3 * in_ch * 9  # stem: H W C_in C_out k^2
    for stride, channels in _MOBILENET_V1_BODY:
        out_ch = max(int(channels * a), 8)
        size = (size - 1) // stride + 1
        total += size * size * in_ch * 9 + size * size * in_ch * out_ch  # eq. 4: H W M k^2 + H W M N
        in_ch = out_ch
    return total + in_ch * num_classes  # FC


# MobileNetV2 (Table 2) rows: expansion t, output channels c, repeats n, first stride s.
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def mobilenet_v2_macs(
    width_multiplier: float = 1.0, resolution: int = 224, num_classes: int = 1000
) -> int:
    """Multiply-adds of MobileNetV2 from the paper's Table 2 (conv + FC; no BN, bias, adds).

    Per block C_in -> tC_in -> C_out at stride s: H_in W_in C_in tC_in (expand, absent when t = 1)
    + H_out W_out tC_in 9 (depthwise) + H_out W_out tC_in C_out (project); channels rounded to
    multiples of 8, last conv max(1280, 1280a); paper: 300M at a = 1.0, resolution 224.
    Every 3x3 conv has padding 1, so stride s takes H to ceil(H / s) = (H - 1) // s + 1.
    """
    a = positive_float(width_multiplier, "width_multiplier")
    _ints(resolution=resolution, num_classes=num_classes)
    size = (resolution - 1) // 2 + 1
    in_ch = _make_divisible(32 * a)
    total = size * size * 3 * in_ch * 9  # stem: H W C_in C_out k^2
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        out_ch = _make_divisible(c * a)
        for i in range(n):
            hidden = t * in_ch
            if t != 1:
                total += size * size * in_ch * hidden  # expand, at the input's size
            size = (size - 1) // (s if i == 0 else 1) + 1
            total += size * size * hidden * 9 + size * size * hidden * out_ch  # depthwise + project
            in_ch = out_ch
    last_ch = _make_divisible(1280 * max(1.0, a))
    return total + size * size * in_ch * last_ch + last_ch * num_classes  # last 1x1 conv + FC


# ImageNet top-1 (%) of the MobileNet authors' released checkpoints at about equal multiply-adds, in the
# range the course's grid covers (TensorFlow models, research/slim: the tables of nets/mobilenet_v1.md and
# nets/mobilenet/README.md): ((v1 model, width, resolution), top-1, (v2 model, width, resolution), top-1).
# The papers' own tables compare only the largest models (lessons 08 and 09 print both).
MOBILENET_RELEASED = (
    (("mobilenet_v1", 0.25, 224), 49.8, ("mobilenet_v2", 0.35, 192), 58.2),
    (("mobilenet_v1", 0.5, 128), 56.3, ("mobilenet_v2", 0.5, 160), 61.0),
    (("mobilenet_v1", 0.5, 224), 63.3, ("mobilenet_v2", 1.0, 160), 68.8),
)
