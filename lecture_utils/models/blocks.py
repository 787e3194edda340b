"""Building blocks shared by the model files: ``ConvNormAct`` and ``make_divisible``."""

from __future__ import annotations

from typing import Callable

from torch import nn

__all__ = ["ConvNormAct", "make_divisible"]


class ConvNormAct(nn.Sequential):
    """Conv2d -> BatchNorm2d -> activation, the unit most CNNs repeat.

    ``activation`` is a callable that returns a module (``nn.ReLU``, ``nn.ReLU6``,
    ``functools.partial(nn.LeakyReLU, 0.1)``) or ``None`` for a linear block (a conv and
    its BN, as before a residual add or in MobileNetV2's linear bottleneck).
    ``padding=None`` keeps the spatial size at stride 1: ``(kernel_size - 1) // 2``.
    The children are named ``0`` (conv), ``1`` (norm), ``2`` (activation), as in
    torchvision's ``Conv2dNormActivation``, so state-dict keys line up with it.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: Callable[[], nn.Module] | None = nn.ReLU,
        padding: int | None = None,
        bias: bool = False,
        norm: bool = True,
    ) -> None:
        if padding is None:
            padding = (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=bias)
        ]
        if norm:
            layers.append(nn.BatchNorm2d(out_ch))
        if activation is not None:
            layers.append(activation())
        super().__init__(*layers)
        self.out_channels = out_ch


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count ``v`` to the nearest multiple of ``divisor`` (never below ``min_value``).

    Why: hardware kernels run fastest on channel counts that are multiples of 8, so
    MobileNetV2 rounds ``c * width_multiplier`` this way instead of truncating it with
    ``int()``. Rounding down by more than 10% is undone by adding one ``divisor``, so a
    thin network never loses much of its width to the rounding.
    """
    if divisor < 1:
        raise ValueError(f"divisor must be a positive integer, got {divisor}")
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down took away more than 10%: go one step up
        new_v += divisor
    return new_v
