"""VGG (Simonyan and Zisserman 2014): stacks of 3x3 convolutions, configured by a list.

The paper's Table 1 names its networks A, B, D and E (11, 13, 16 and 19 weight layers).
Each is a list in ``cfgs``: a number is a 3x3 conv with that many output channels
(padding 1, so the size is kept), ``"M"`` a 2x2/2 max-pool that halves it. One function,
``make_layers``, turns a list into layers, with or without batch normalisation after each
conv (the ``_bn`` variants, added later, are not in the paper). Names, order and
initialisation follow torchvision, so its state dicts load as they are.

Sizes below are for a 224x224 input; five max-pools leave 512 x 7 x 7.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import nn

from ._checks import check_common, check_positive_int, check_probability

__all__ = ["VGG", "make_layers", "cfgs"]

LayerSpec = Union[int, str]

# Table 1 of the paper, as data. Numbers: 3x3 conv output channels; "M": 2x2/2 max-pool.
cfgs: dict[str, list[LayerSpec]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # vgg11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # vgg13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],  # vgg16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],  # vgg19
}


def make_layers(cfg: list[LayerSpec], batch_norm: bool = False, in_chans: int = 3) -> nn.Sequential:
    """Build the convolutional part of a VGG from a ``cfgs`` list (conv[-BN]-ReLU per number, max-pool per "M")."""
    layers: list[nn.Module] = []
    in_channels = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        elif isinstance(v, int) and not isinstance(v, bool) and v > 0:
            # The conv keeps its bias even before BN, as torchvision's VGG does.
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
        else:
            raise ValueError(f'a VGG cfg entry must be a positive int or "M", got {v!r}')
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """Convolutional ``features`` from ``make_layers``, then three fully connected layers."""

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        num_classes = check_positive_int("num_classes", num_classes)
        dropout = check_probability("dropout", dropout)
        self.features = features  # 512 x 7 x 7 at 224
        # Small inputs (e.g. 32 -> 1x1) are spread back to 7x7, so the classifier is the same.
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),  # 25088 -> 4096: 103M of VGG16's 138M parameters
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
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
        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # N x 25088
        return self.classifier(x)


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_chans: int, dropout: float) -> VGG:
    _, in_chans = check_common(num_classes, in_chans)
    return VGG(make_layers(cfgs[cfg], batch_norm, in_chans), num_classes=num_classes, dropout=dropout)


def vgg11(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration A (11 weight layers)."""
    return _vgg("A", False, num_classes, in_chans, dropout)


def vgg11_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration A with batch normalisation."""
    return _vgg("A", True, num_classes, in_chans, dropout)


def vgg13(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration B (13 weight layers)."""
    return _vgg("B", False, num_classes, in_chans, dropout)


def vgg13_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration B with batch normalisation."""
    return _vgg("B", True, num_classes, in_chans, dropout)


def vgg16(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration D (16 weight layers, about 138M parameters)."""
    return _vgg("D", False, num_classes, in_chans, dropout)


def vgg16_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration D with batch normalisation."""
    return _vgg("D", True, num_classes, in_chans, dropout)


def vgg19(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration E (19 weight layers)."""
    return _vgg("E", False, num_classes, in_chans, dropout)


def vgg19_bn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
    """VGG configuration E with batch normalisation."""
    return _vgg("E", True, num_classes, in_chans, dropout)
