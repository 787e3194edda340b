"""The model zoo of the series: ``create_model(name, **kwargs)`` and ``list_models()``.

Every model takes ``num_classes`` (default 1000) and ``in_chans`` (default 3); families add
their own keywords (``width_multiplier``, ``depth``, ``widen_factor``, ``aux_logits``, ...).

>>> from lecture_utils.models import create_model
>>> model = create_model("mobilenet_v2", num_classes=10, width_multiplier=0.5)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping

import torch
from torch import nn

from . import alexnet as _alexnet
from . import googlenet as _googlenet
from . import mobilenet_v1 as _mobilenet_v1
from . import mobilenet_v2 as _mobilenet_v2
from . import resnet as _resnet
from . import small_cnn as _small_cnn
from . import vgg as _vgg
from . import wide_resnet as _wide_resnet
from .blocks import ConvNormAct, make_divisible
from .googlenet import GoogLeNetOutputs

__all__ = [
    "create_model",
    "list_models",
    "load_state_dict_by_order",
    "UnknownArgumentError",
    "ConvNormAct",
    "make_divisible",
    "GoogLeNetOutputs",
]

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "alexnet": _alexnet.alexnet,
    "vgg11": _vgg.vgg11,
    "vgg11_bn": _vgg.vgg11_bn,
    "vgg13": _vgg.vgg13,
    "vgg13_bn": _vgg.vgg13_bn,
    "vgg16": _vgg.vgg16,
    "vgg16_bn": _vgg.vgg16_bn,
    "vgg19": _vgg.vgg19,
    "vgg19_bn": _vgg.vgg19_bn,
    "googlenet": _googlenet.googlenet,
    "resnet18": _resnet.resnet18,
    "resnet34": _resnet.resnet34,
    "resnet50": _resnet.resnet50,
    "resnet101": _resnet.resnet101,
    "resnet152": _resnet.resnet152,
    "resnext50_32x4d": _resnet.resnext50_32x4d,
    "resnext101_32x4d": _resnet.resnext101_32x4d,
    "resnext101_32x8d": _resnet.resnext101_32x8d,
    "wide_resnet50_2": _resnet.wide_resnet50_2,
    "wide_resnet": _wide_resnet.wide_resnet,
    "mobilenet_v1": _mobilenet_v1.mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2.mobilenet_v2,
    "c_mobilenet_v2": _mobilenet_v2.c_mobilenet_v2,
    "small_cnn": _small_cnn.small_cnn,
}


class UnknownArgumentError(TypeError, ValueError):
    """A keyword that the chosen model does not take (a TypeError, and a ValueError like other bad arguments)."""


def list_models() -> list[str]:
    """Names that ``create_model`` accepts, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: object) -> nn.Module:
    """Build the model called ``name`` with the given keyword arguments.

    ``name`` is a registry name (``list_models()``) or a variant's (:mod:`lecture_utils.model_names`:
    ``wide_resnet16_4``, ``mobilenet_v2+leaky``, ...), so every name in a plan, a record or a lesson builds.

    Unknown names raise ValueError listing the known ones; keywords the model does not take
    raise ``UnknownArgumentError`` listing the ones it does.
    """
    if name not in _MODELS:  # a variant's name (lecture_utils.model_names): its builder and keywords
        if not isinstance(name, str):
            raise ValueError(f"model name must be a string, got {name!r}; known models: {', '.join(list_models())}")
        from lecture_utils.model_names import parse_model_name

        try:
            _, name, variant = parse_model_name(name, list_models)
        except ValueError:
            raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}; and the variants "
                             "wide_resnetD_K (e.g. wide_resnet16_4) and mobilenet_v2+leaky, +proj, +branch") from None
        kwargs = {**variant, **kwargs}
    builder = _MODELS[name]
    accepted = list(inspect.signature(builder).parameters)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise UnknownArgumentError(
            f"{name} got unknown keyword argument(s) {', '.join(unknown)}; it accepts: {', '.join(accepted)}"
        )
    return builder(**kwargs)


def load_state_dict_by_order(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], assign: bool = False
) -> None:
    """Copy ``state_dict`` into ``model`` entry by entry in order, when names differ but the layout matches.

    Our models keep torchvision's order of parameters and buffers, and its shapes, but
    group conv and BN into ``ConvNormAct`` (``conv1.0.weight`` where torchvision has
    ``conv1.weight``); this loads torchvision's weights all the same. ``assign`` is passed
    to ``load_state_dict`` (use it for a model built on the meta device). Raises ValueError
    if the number of entries or any shape differs.
    """
    own = model.state_dict()
    if len(own) != len(state_dict):
        raise ValueError(f"the model has {len(own)} state-dict entries, the given state dict {len(state_dict)}")
    mapped = {}
    for (key, target), (src_key, value) in zip(own.items(), state_dict.items()):
        if target.shape != value.shape:
            raise ValueError(
                f"shape mismatch: {key} {tuple(target.shape)} vs {src_key} {tuple(value.shape)}"
            )
        mapped[key] = value
    model.load_state_dict(mapped, assign=assign)
