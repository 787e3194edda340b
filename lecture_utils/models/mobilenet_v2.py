"""MobileNetV2 (Sandler et al. 2018) and C_MobileNetV2, a variant from a course experiment.

MobileNetV2's block is the inverted residual with a linear bottleneck:
1x1 expand (t times, ReLU6) -> 3x3 depthwise (stride s, ReLU6) -> 1x1 project (no activation).
The block is thin at its ends and wide in the middle (the reverse of ResNet's bottleneck),
and its last 1x1 conv is linear because ReLU on a thin tensor destroys information.
It adds the input back only when it can: stride 1 and as many channels out as in.

Channels follow the paper and torchvision: ``c * width_multiplier`` is rounded to a
multiple of 8 (``make_divisible``), and the last 1x1 conv keeps its 1280 channels for
widths below 1 (it grows above 1, e.g. 1792 at 1.4). A listing that truncates with
``int(c * alpha)`` and scales the 1280 layer down is a different, smaller network.

C_MobileNetV2 changes the block in two ways, each behind a switch:

* ``leaky_after_add``: a LeakyReLU (slope 0.01) after the residual add, in every block that
  has one.
* ``projection_shortcut``: where stride != 1 or the channel count changes, a 1x1
  conv-BN-ReLU6 (with the block's stride) maps the input to the output shape, so these
  blocks become residual too; with it on, every block is residual.

A third switch, not part of C_MobileNetV2, separates what the first one does:

* ``leaky_on_branch``: a LeakyReLU (slope 0.01) on the block's output branch (after its linear
  1x1 projection) before the add, in every block that has one. The identity path stays linear,
  so this is "a non-linearity on the thin output" without "a non-linearity on the identity path",
  which ``leaky_after_add`` adds as well.

All off is MobileNetV2, parameter for parameter. ``create_model("c_mobilenet_v2")`` turns
both on; lesson 09's ablation turns one on at a time, for example
``create_model("c_mobilenet_v2", leaky_after_add=True, projection_shortcut=False)``
(``create_model("mobilenet_v2", ...)`` accepts the same switches and ``leaky_on_branch``, all off by default).

Sizes below are for a 224x224 input.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_common, check_positive_float, check_probability
from .blocks import ConvNormAct, make_divisible

__all__ = ["InvertedResidual", "MobileNetV2", "C_MobileNetV2", "INVERTED_RESIDUAL_SETTING"]

# The paper's Table 2 as data. t: expansion factor, c: output channels, n: repeats,
# s: stride of the first repeat (the others have stride 1).
INVERTED_RESIDUAL_SETTING: list[tuple[int, int, int, int]] = [
    # t, c, n, s
    (1, 16, 1, 1),  # 112 x 112 -> 112 x 112
    (6, 24, 2, 2),  # -> 56 x 56
    (6, 32, 3, 2),  # -> 28 x 28
    (6, 64, 4, 2),  # -> 14 x 14
    (6, 96, 3, 1),  # -> 14 x 14
    (6, 160, 3, 2),  # -> 7 x 7
    (6, 320, 1, 1),  # -> 7 x 7
]


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise (3x3) -> linear project (1x1), with the C_MobileNetV2 switches."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        stride: int,
        expand_ratio: int,
        leaky_after_add: bool = False,
        projection_shortcut: bool = False,
        leaky_on_branch: bool = False,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        hidden = int(round(in_ch * expand_ratio))
        layers: list[nn.Module] = []
        if expand_ratio != 1:  # with t = 1 the depthwise conv works on the input directly
            layers.append(ConvNormAct(in_ch, hidden, 1, activation=nn.ReLU6))  # expand: in -> t*in
        layers += [
            ConvNormAct(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6),  # depthwise
            ConvNormAct(hidden, out_ch, 1, activation=None),  # project: the linear bottleneck
        ]
        self.conv = nn.Sequential(*layers)
        self.out_channels = out_ch

        self.use_identity = stride == 1 and in_ch == out_ch
        self.shortcut: nn.Module | None = None
        self.stride = stride
        if projection_shortcut and not self.use_identity:
            # A 1x1 conv with stride s (padding 0) reads every s-th pixel: forward() subsamples x and
            # the conv has stride 1, the same numbers. (PyTorch 2.14's CPU kernel for a strided 1x1 conv
            # corrupts memory in the backward pass on channels_last input with 8 channels at 112 x 112.)
            self.shortcut = ConvNormAct(in_ch, out_ch, 1, activation=nn.ReLU6)
        self.is_residual = self.use_identity or self.shortcut is not None
        self.act: nn.Module | None = nn.LeakyReLU(0.01) if leaky_after_add and self.is_residual else None
        self.branch_act: nn.Module | None = nn.LeakyReLU(0.01) if leaky_on_branch and self.is_residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H/stride, W/stride)."""
        out = self.conv(x)
        if self.branch_act is not None:
            out = self.branch_act(out)
        if self.use_identity:
            out = out + x
        elif self.shortcut is not None:
            out = out + self.shortcut(x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x)
        if self.act is not None:
            out = self.act(out)
        return out


class MobileNetV2(nn.Module):
    """Stem conv 3x3/2, 17 inverted residual blocks from the (t, c, n, s) table, 1x1 conv to 1280, pool, FC."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_multiplier: float = 1.0,
        dropout: float = 0.2,
        leaky_after_add: bool = False,
        projection_shortcut: bool = False,
        leaky_on_branch: bool = False,
    ) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        wm = self.width_multiplier = check_positive_float("width_multiplier", width_multiplier)
        dropout = check_probability("dropout", dropout)
        for name, flag in (("leaky_after_add", leaky_after_add), ("projection_shortcut", projection_shortcut),
                           ("leaky_on_branch", leaky_on_branch)):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        self.leaky_after_add, self.projection_shortcut = leaky_after_add, projection_shortcut
        self.leaky_on_branch = leaky_on_branch

        in_ch = make_divisible(32 * wm)
        self.last_channel = make_divisible(1280 * max(1.0, wm))  # not thinned below width 1.0
        features: list[nn.Module] = [ConvNormAct(in_chans, in_ch, 3, stride=2, activation=nn.ReLU6)]  # 112 x 112
        for t, c, n, s in INVERTED_RESIDUAL_SETTING:
            out_ch = make_divisible(c * wm)
            for i in range(n):
                features.append(
                    InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t, leaky_after_add, projection_shortcut,
                                     leaky_on_branch)
                )
                in_ch = out_ch
        features.append(ConvNormAct(in_ch, self.last_channel, 1, activation=nn.ReLU6))  # 1280 x 7 x 7
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(self.last_channel, num_classes))

        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)  # N x 1280
        return self.classifier(x)


class C_MobileNetV2(MobileNetV2):
    """MobileNetV2 with LeakyReLU after the add and projection shortcuts (both on by default)."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_multiplier: float = 1.0,
        dropout: float = 0.2,
        leaky_after_add: bool = True,
        projection_shortcut: bool = True,
        leaky_on_branch: bool = False,
    ) -> None:
        super().__init__(num_classes, in_chans, width_multiplier, dropout, leaky_after_add, projection_shortcut,
                         leaky_on_branch)


def mobilenet_v2(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    width_multiplier: float = 1.0,
    dropout: float = 0.2,
    leaky_after_add: bool = False,
    projection_shortcut: bool = False,
    leaky_on_branch: bool = False,
) -> MobileNetV2:
    """MobileNetV2 as in the paper and torchvision; the three switches are off by default."""
    return MobileNetV2(num_classes, in_chans, width_multiplier, dropout, leaky_after_add, projection_shortcut,
                       leaky_on_branch)


def c_mobilenet_v2(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    width_multiplier: float = 1.0,
    dropout: float = 0.2,
    leaky_after_add: bool = True,
    projection_shortcut: bool = True,
    leaky_on_branch: bool = False,
) -> C_MobileNetV2:
    """C_MobileNetV2; turn either switch off to study the other one alone (``leaky_on_branch``: the third one)."""
    return C_MobileNetV2(num_classes, in_chans, width_multiplier, dropout, leaky_after_add, projection_shortcut,
                         leaky_on_branch)
