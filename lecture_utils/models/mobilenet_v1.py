"""MobileNet v1 (Howard et al. 2017): a stack of depthwise separable convolutions.

A depthwise separable conv is a 3x3 depthwise conv (one filter per channel, ``groups=in_ch``)
followed by a 1x1 pointwise conv that mixes channels; each is followed by BN and ReLU.
It costs 1/N + 1/k^2 of a standard conv with N outputs and k x k kernels.

The paper's Table 1, written as rows (c, n, s) like MobileNetV2's table: n depthwise
separable layers with c output channels, the first of them with stride s. The paper lists
the last depthwise layer as "s2", but its input and output are both 7x7: it has stride 1,
as in the reference implementation. The width multiplier alpha scales every layer's
channels to ``int(c * alpha)`` (at least 8), as the reference implementation does; there is
no rounding to multiples of 8 here (that came with MobileNetV2). No dropout: the paper
goes straight from the average pool to the FC layer.

Paper (ImageNet, 224x224): 1.0 -> 4.2M parameters, 569M Mult-Adds; 0.75 -> 2.6M, 325M;
0.5 -> 1.3M, 149M; 0.25 -> 0.5M, 41M.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_common, check_positive_float
from .blocks import ConvNormAct

__all__ = ["DepthwiseSeparable", "MobileNetV1", "mobilenet_v1", "MOBILENET_V1_SETTING"]

# c, n, s: output channels, repeats, stride of the first repeat. Sizes for a 224x224 input.
MOBILENET_V1_SETTING: list[tuple[int, int, int]] = [
    (64, 1, 1),  # 112 x 112
    (128, 2, 2),  # 56 x 56
    (256, 2, 2),  # 28 x 28
    (512, 6, 2),  # 14 x 14
    (1024, 2, 2),  # 7 x 7
]


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv-BN-ReLU (stride s) then 1x1 pointwise conv-BN-ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = ConvNormAct(in_ch, in_ch, 3, stride=stride, groups=in_ch)
        self.pointwise = ConvNormAct(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, out_ch, H/s, W/s)."""
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """Stem conv 3x3/2, 13 depthwise separable layers, global average pool, FC."""

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, width_multiplier: float = 1.0) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        self.width_multiplier = check_positive_float("width_multiplier", width_multiplier)

        def width(c: int) -> int:
            return max(int(c * self.width_multiplier), 8)

        in_ch = width(32)
        layers: list[nn.Module] = [ConvNormAct(in_chans, in_ch, 3, stride=2)]  # 32a x 112 x 112
        for c, n, s in MOBILENET_V1_SETTING:
            out_ch = width(c)
            for i in range(n):
                layers.append(DepthwiseSeparable(in_ch, out_ch, stride=s if i == 0 else 1))
                in_ch = out_ch
        self.features = nn.Sequential(*layers)  # 1024a x 7 x 7
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(in_ch, num_classes)

        for m in self.modules():  # the initialisation torchvision uses for MobileNetV2
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)  # N x 1024a
        return self.classifier(x)


def mobilenet_v1(*, num_classes: int = 1000, in_chans: int = 3, width_multiplier: float = 1.0) -> MobileNetV1:
    """MobileNet v1 with width multiplier alpha (1.0, 0.75, 0.5, 0.25 in the paper)."""
    return MobileNetV1(num_classes=num_classes, in_chans=in_chans, width_multiplier=width_multiplier)
