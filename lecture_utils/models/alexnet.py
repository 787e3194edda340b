"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), in its single-GPU form.

The 2012 network was split over two GPUs (96-256-384-384-256 kernels) and used local
response normalisation. This is the single-tower version of Krizhevsky's 2014 "One weird
trick" note that torchvision ships: 64-192-384-256-256 kernels, no LRN, overlapping 3x3/2
max-pooling, ReLU, and dropout in the two hidden fully connected layers. Parameter names
and order equal torchvision's, so its state dict loads as is.

Sizes below are for a 224x224 input.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_common, check_probability

__all__ = ["AlexNet", "alexnet"]


class AlexNet(nn.Module):
    """Five conv layers and three fully connected layers (the last one is the classifier)."""

    #: the smallest height/width that survives conv1 (11x11/4) and the three 3x3/2 max-pools
    min_input_size = 63

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> None:
        super().__init__()
        num_classes, in_chans = check_common(num_classes, in_chans)
        dropout = check_probability("dropout", dropout)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2),  # 64 x 55 x 55
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 64 x 27 x 27 (overlapping pooling)
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 192 x 27 x 27
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 192 x 13 x 13
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 384 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 256 x 13 x 13
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),  # 256 x 6 x 6
        )
        # Makes the classifier input 256 x 6 x 6 whatever the input size (>= 63).
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),  # 9216 -> 4096: 37.7M of the 61M parameters
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, num_classes) logits; H and W must be at least 63."""
        h, w = x.shape[-2], x.shape[-1]
        if h < self.min_input_size or w < self.min_input_size:
            raise ValueError(
                f"AlexNet needs inputs of at least {self.min_input_size}x{self.min_input_size} "
                f"pixels (got {h}x{w}); resize, e.g. to 64"
            )
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)  # N x 9216
        return self.classifier(x)


def alexnet(*, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """AlexNet as in torchvision (61.1M parameters at 1000 classes)."""
    return AlexNet(num_classes=num_classes, in_chans=in_chans, dropout=dropout)
