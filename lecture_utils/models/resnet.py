"""ResNet (He et al. 2015), ResNeXt (Xie et al. 2016) and Wide ResNet-50-2, as torchvision builds them.

A residual block learns F(x) and outputs ReLU(F(x) + x). ``BasicBlock`` (two 3x3 convs)
builds ResNet-18/34; ``Bottleneck`` (1x1 reduce, 3x3, 1x1 expand by 4) builds ResNet-50/101/152.
ResNeXt is the same bottleneck with a grouped 3x3 conv: ``groups`` is the cardinality C and
``width_per_group`` the width d of each group ("32x4d": C=32, d=4). Wide ResNet-50-2 is the
bottleneck with twice the inner width (``width_per_group=128``) and one group.

Choices, all as in torchvision (so its state dicts load by order, see ``load_state_dict_by_order``):
the stem is a 7x7/2 conv padded by 3 (224 -> 112); a block's stride sits on its 3x3 conv
(as in the ResNeXt paper; the original ResNet-50 strided the first 1x1); a 1x1 projection
shortcut is used only where the shape changes (the first block of a stage), identity elsewhere.
A listing that pads the stem by 4, strides the first 1x1 conv and projects on every block
is a different network with other parameter counts.

Sizes below are for a 224x224 input.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_common, check_positive_int
from .blocks import ConvNormAct

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus the shortcut, then ReLU (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        if groups != 1 or width_per_group != 64:
            raise ValueError("BasicBlock allows only groups=1 and width_per_group=64; use Bottleneck for ResNeXt")
        self.conv1 = ConvNormAct(in_ch, planes, 3, stride=stride)
        self.conv2 = ConvNormAct(planes, planes, 3, activation=None)  # ReLU comes after the add
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU(F(x) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand (x4), plus the shortcut, then ReLU."""

    expansion = 4

    def __init__(
        self,
        in_ch: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        # ResNet-50: width = planes. ResNeXt-50 32x4d, first stage: 64 * 4/64 * 32 = 128 channels
        # in 32 groups of 4. Wide ResNet-50-2: 64 * 128/64 = 128 channels in one group.
        width = int(planes * (width_per_group / 64.0)) * groups
        self.conv1 = ConvNormAct(in_ch, width, 1)  # reduce
        self.conv2 = ConvNormAct(width, width, 3, stride=stride, groups=groups)  # transform
        self.conv3 = ConvNormAct(width, planes * self.expansion, 1, activation=None)  # expand, linear
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ReLU(F(x) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """Stem, four stages of residual blocks (64, 128, 256, 512 planes), global average pool, FC."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        groups: int = 1,
        width_per_group: int = 64,
    ) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        self.groups = check_positive_int("groups", groups)
        self.width_per_group = check_positive_int("width_per_group", width_per_group)
        if len(layers) != 4:
            raise ValueError(f"layers must list the block counts of 4 stages, got {layers!r}")
        for n in layers:
            check_positive_int("each entry of layers", n)
        self.in_ch = 64
        self.stem = ConvNormAct(in_chans, 64, 7, stride=2)  # 64 x 112 x 112
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # 64 x 56 x 56
        self.layer1 = self._make_layer(block, 64, layers[0])  # 64*e x 56 x 56 (e = expansion)
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)  # 128*e x 28 x 28
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)  # 256*e x 14 x 14
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)  # 512*e x 7 x 7
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():  # torchvision's initialisation (the FC keeps PyTorch's default)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        out_ch = planes * block.expansion
        downsample = None
        if stride != 1 or self.in_ch != out_ch:  # the shape changes: 1x1 projection shortcut
            downsample = ConvNormAct(self.in_ch, out_ch, 1, stride=stride, activation=None)
        layers = [block(self.in_ch, planes, stride, downsample, self.groups, self.width_per_group)]
        self.in_ch = out_ch
        for _ in range(1, blocks):
            layers.append(block(self.in_ch, planes, groups=self.groups, width_per_group=self.width_per_group))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        x = self.maxpool(self.stem(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)  # N x 512*e
        return self.fc(x)


def resnet18(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNet-18: BasicBlock, [2, 2, 2, 2]."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_chans)


def resnet34(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNet-34: BasicBlock, [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_chans)


def resnet50(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNet-50: Bottleneck, [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_chans)


def resnet101(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNet-101: Bottleneck, [3, 4, 23, 3]."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_chans)


def resnet152(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNet-152: Bottleneck, [3, 8, 36, 3]."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, in_chans)


def resnext50_32x4d(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50's layout, cardinality 32, 4 channels per group."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_chans, groups=32, width_per_group=4)


def resnext101_32x4d(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNeXt-101 (32x4d): ResNet-101's layout, cardinality 32, 4 channels per group."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_chans, groups=32, width_per_group=4)


def resnext101_32x8d(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """ResNeXt-101 (32x8d): ResNet-101's layout, cardinality 32, 8 channels per group."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, in_chans, groups=32, width_per_group=8)


def wide_resnet50_2(*, num_classes: int = 1000, in_chans: int = 3) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with bottleneck inner widths doubled (width_per_group=128)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_chans, width_per_group=128)
