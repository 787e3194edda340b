"""Wide Residual Networks (Zagoruyko and Komodakis 2016), the CIFAR family WRN-d-k.

The block is pre-activation (BN -> ReLU -> conv, twice), with dropout between the two 3x3
convs when ``dropout_rate`` > 0 (the paper's "wide-dropout" block). Where a block changes
the shape (first block of a group), the shortcut is a 1x1 conv; as in the authors' code it
reads the same BN-ReLU output as the first conv. Elsewhere the shortcut is the identity.

WRN-d-k: ``depth`` d = 6N + 4, where N is the number of blocks in each of the three groups
(3 groups x N blocks x 2 convs = 6N), and ``widen_factor`` k multiplies the groups' widths:

    stem    3x3 conv, 16 channels             32 x 32 (CIFAR input)
    conv2   N blocks, 16k channels, stride 1  32 x 32
    conv3   N blocks, 32k channels, stride 2  16 x 16
    conv4   N blocks, 64k channels, stride 2   8 x 8
    BN-ReLU, global average pool, FC

The paper's Tables 4 and 5 give WRN-40-4: 8.9M, WRN-16-8: 11.0M, WRN-28-10: 36.5M parameters (10 classes).
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from ._checks import check_common, check_positive_int, check_probability

__all__ = ["WideBasicBlock", "WideResNet", "wide_resnet"]


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3 -> [dropout] -> BN-ReLU-conv3x3, plus the shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout_rate)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv2(dropout(BN-ReLU(conv1(BN-ReLU(x))))) + shortcut."""
        out = self.relu1(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.dropout(self.relu2(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-d-k for small images: stem conv, three groups of N wide blocks, BN-ReLU, pool, FC."""

    def __init__(
        self,
        depth: int = 28,
        widen_factor: int = 10,
        dropout_rate: float = 0.0,
        num_classes: int = 1000,
        in_chans: int = 3,
    ) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        if (
            isinstance(depth, bool)
            or not isinstance(depth, numbers.Integral)
            or depth < 10
            or (depth - 4) % 6 != 0
        ):
            raise ValueError(f"depth must be 6N+4 with N >= 1 (10, 16, 22, 28, 34, 40, ...), got {depth!r}")
        k = check_positive_int("widen_factor", widen_factor)
        dropout_rate = check_probability("dropout_rate", dropout_rate)
        n = (int(depth) - 4) // 6  # blocks per group
        widths = [16, 16 * k, 32 * k, 64 * k]
        self.depth, self.widen_factor = int(depth), k

        self.stem = nn.Conv2d(in_chans, widths[0], 3, stride=1, padding=1, bias=False)  # 16 x 32 x 32
        self.conv2 = self._make_group(widths[0], widths[1], n, 1, dropout_rate)  # 16k x 32 x 32
        self.conv3 = self._make_group(widths[1], widths[2], n, 2, dropout_rate)  # 32k x 16 x 16
        self.conv4 = self._make_group(widths[2], widths[3], n, 2, dropout_rate)  # 64k x 8 x 8
        self.bn = nn.BatchNorm2d(widths[3])  # the last blocks end in a conv: normalise and activate
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3], num_classes)

        for m in self.modules():  # torchvision-style initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    @staticmethod
    def _make_group(in_ch: int, out_ch: int, n: int, stride: int, dropout_rate: float) -> nn.Sequential:
        blocks = [WideBasicBlock(in_ch, out_ch, stride, dropout_rate)]
        blocks += [WideBasicBlock(out_ch, out_ch, 1, dropout_rate) for _ in range(1, n)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits."""
        x = self.conv4(self.conv3(self.conv2(self.stem(x))))
        x = self.relu(self.bn(x))
        x = torch.flatten(self.avgpool(x), 1)  # N x 64k
        return self.fc(x)


def wide_resnet(
    *,
    depth: int = 28,
    widen_factor: int = 10,
    dropout_rate: float = 0.0,
    num_classes: int = 1000,
    in_chans: int = 3,
) -> WideResNet:
    """WRN-``depth``-``widen_factor`` (CIFAR style); depth must be 6N+4."""
    return WideResNet(depth, widen_factor, dropout_rate, num_classes, in_chans)
