"""A small two-convolution network: the baseline every lesson's network has to beat.

Two 5x5 convolutions (32 and 64 channels, each with batch norm, ReLU and 2x2 max pooling), then
one linear layer. At Fashion-MNIST's own 28 px it has 85 K parameters and 12.0 M multiply-adds:
the size of the two-convolution networks the data set's benchmark lists at about 92 % test
accuracy. It is the yardstick of the zoo table: a network with ImageNet's stride 32 has to beat
what this one does with two layers on the same images.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_common, check_probability

__all__ = ["SmallCNN", "small_cnn"]


class SmallCNN(nn.Module):
    """conv5x5(32)-BN-ReLU-pool2, conv5x5(64)-BN-ReLU-pool2, dropout, linear on a 7 x 7 map.

    At 28 px the map is 7 x 7 already; at other sizes an adaptive average pooling brings it there,
    so the parameters do not depend on the input size.
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.25) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        dropout = check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 32, 5, padding=2, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),  # the identity at 28 px
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images (H, W >= 4) -> (N, num_classes) logits."""
        return self.classifier(self.features(x))


def small_cnn(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.25) -> SmallCNN:
    """The two-convolution baseline of the zoo table (:class:`SmallCNN`)."""
    return SmallCNN(num_classes, in_chans, dropout)
