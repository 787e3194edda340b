"""GoogLeNet, the Inception v1 network (Szegedy et al. 2014), following the paper's Table 1.

An Inception module runs four branches side by side and concatenates them along channels:
a 1x1 conv; a 1x1 reduce then a 3x3 conv; a 1x1 reduce then a 5x5 conv; a 3x3 max-pool
then a 1x1 projection. The 1x1 reductions keep the 3x3 and 5x5 convs cheap. The head is a
global average pool, dropout 40% and one FC layer (no large FC stack as in AlexNet/VGG).

Two auxiliary classifiers sit on inception 4a and 4d during training (paper, section 5):
average pool 5x5/3 -> 1x1 conv with 128 filters -> FC 1024 -> dropout 70% -> FC. Here the
pool is ``AdaptiveAvgPool2d(4)``: the same 4x4 output as 5x5/3 on 14x14 maps at 224, and it
still works on small inputs. In train mode (with ``aux_logits=True``) the network returns
``GoogLeNetOutputs(logits, aux1, aux2)``; in eval mode the main logits only.

Differences from the paper, shared with torchvision: every conv is followed by batch
normalisation (the paper had none, and local response normalisation in the stem), and
max-pools round up (``ceil_mode``) as Caffe did. Where this differs from torchvision: the
"5x5" branch has a real 5x5 conv as in the paper (torchvision uses 3x3), the fourth max-pool
is 3x3/2 as in the table (torchvision: 2x2/2; both give 7x7 at 224), and the main head's
dropout is the paper's 40% (torchvision: 20%). So there is no torchvision model to compare
outputs with; the parameter count is torchvision's plus the larger 5x5 kernels.

Sizes below are for a 224x224 input.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ._checks import check_common, check_probability
from .blocks import ConvNormAct

__all__ = ["Inception", "InceptionAux", "GoogLeNet", "GoogLeNetOutputs", "INCEPTION_SETTING", "googlenet"]

# Table 1 of the paper: input channels, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_SETTING: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),  # -> 256 x 28 x 28
    "3b": (256, 128, 128, 192, 32, 96, 64),  # -> 480 x 28 x 28
    "4a": (480, 192, 96, 208, 16, 48, 64),  # -> 512 x 14 x 14
    "4b": (512, 160, 112, 224, 24, 64, 64),  # -> 512 x 14 x 14
    "4c": (512, 128, 128, 256, 24, 64, 64),  # -> 512 x 14 x 14
    "4d": (512, 112, 144, 288, 32, 64, 64),  # -> 528 x 14 x 14
    "4e": (528, 256, 160, 320, 32, 128, 128),  # -> 832 x 14 x 14
    "5a": (832, 256, 160, 320, 32, 128, 128),  # -> 832 x 7 x 7
    "5b": (832, 384, 192, 384, 48, 128, 128),  # -> 1024 x 7 x 7
}


class GoogLeNetOutputs(NamedTuple):
    """What GoogLeNet returns in train mode: main logits and the two auxiliary classifiers' logits."""

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class Inception(nn.Module):
    """Four parallel branches (1x1 | 1x1-3x3 | 1x1-5x5 | pool-1x1), concatenated along channels."""

    def __init__(
        self, in_ch: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
    ) -> None:
        super().__init__()
        self.branch1 = ConvNormAct(in_ch, ch1x1, 1)
        self.branch2 = nn.Sequential(ConvNormAct(in_ch, ch3x3red, 1), ConvNormAct(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(ConvNormAct(in_ch, ch5x5red, 1), ConvNormAct(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True), ConvNormAct(in_ch, pool_proj, 1)
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)."""
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: avg pool to 4x4 -> 1x1 conv 128 -> FC 1024 -> dropout 0.7 -> FC."""

    def __init__(self, in_ch: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d((4, 4))  # = 5x5/3 average pool on a 14x14 map
        self.conv = ConvNormAct(in_ch, 128, 1)  # 128 x 4 x 4
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_ch, H, W) feature map -> (N, num_classes) logits."""
        x = torch.flatten(self.conv(self.avgpool(x)), 1)  # N x 2048
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    """Stem (7x7/2 conv, pool, 1x1 and 3x3 convs, pool), nine Inception modules, avg pool, dropout, FC."""

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
    ) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        if not isinstance(aux_logits, bool):
            raise ValueError(f"aux_logits must be True or False, got {aux_logits!r}")
        dropout = check_probability("dropout", dropout)
        dropout_aux = check_probability("dropout_aux", dropout_aux)
        self.aux_logits = aux_logits

        self.conv1 = ConvNormAct(in_chans, 64, 7, stride=2)  # 64 x 112 x 112
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 64 x 56 x 56
        self.conv2 = ConvNormAct(64, 64, 1)  # the 3x3 row's reduce layer
        self.conv3 = ConvNormAct(64, 192, 3)  # 192 x 56 x 56
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 192 x 28 x 28
        self.inception3a = Inception(*INCEPTION_SETTING["3a"])
        self.inception3b = Inception(*INCEPTION_SETTING["3b"])
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 480 x 14 x 14
        self.inception4a = Inception(*INCEPTION_SETTING["4a"])
        self.inception4b = Inception(*INCEPTION_SETTING["4b"])
        self.inception4c = Inception(*INCEPTION_SETTING["4c"])
        self.inception4d = Inception(*INCEPTION_SETTING["4d"])
        self.inception4e = Inception(*INCEPTION_SETTING["4e"])
        self.maxpool4 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # 832 x 7 x 7
        self.inception5a = Inception(*INCEPTION_SETTING["5a"])
        self.inception5b = Inception(*INCEPTION_SETTING["5b"])
        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout_aux)  # on inception 4a
            self.aux2 = InceptionAux(528, num_classes, dropout_aux)  # on inception 4d
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        """Logits in eval mode; ``GoogLeNetOutputs(logits, aux1, aux2)`` in train mode with aux heads."""
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)  # 512 x 14 x 14
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # 528 x 14 x 14
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))  # 1024 x 7 x 7
        x = torch.flatten(self.avgpool(x), 1)  # N x 1024
        logits = self.fc(self.dropout(x))
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux1, aux2)
        return logits


def googlenet(
    *,
    num_classes: int = 1000,
    in_chans: int = 3,
    aux_logits: bool = True,
    dropout: float = 0.4,
    dropout_aux: float = 0.7,
) -> GoogLeNet:
    """GoogLeNet (paper's Table 1, with the 5x5 branch) and, by default, its two auxiliary classifiers."""
    return GoogLeNet(num_classes, in_chans, aux_logits, dropout, dropout_aux)
