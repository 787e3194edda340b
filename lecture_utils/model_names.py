"""The names of the series' networks: one grammar for ``create_model``, the sweep's conditions and the records.

Every name in a plan, a record or a lesson is one of these, and ``lecture_utils.models.create_model`` builds
each of them:

- a registry name of :mod:`lecture_utils.models` (``alexnet``, ``resnet18``, ``mobilenet_v2``, ...);
- ``wide_resnetD_K``: WRN-D-K (``wide_resnet16_4`` is ``wide_resnet`` with ``depth=16, widen_factor=4``;
  ``wide_resnet50_2`` is torchvision's registry name, a bottleneck ResNet);
- the ablation variants of lesson 09: ``mobilenet_v2+leaky`` (LeakyReLU after the residual add only),
  ``mobilenet_v2+proj`` (projection shortcut only; ``+leaky+proj`` is ``c_mobilenet_v2``) and
  ``mobilenet_v2+branch`` (LeakyReLU on the residual branch before the add, not part of C_MobileNetV2).

Nothing here imports torch, nor the registry: :func:`parse_model_name` is given the registry's names as a
function (``create_model`` its own; the sweep's conditions one that imports the models only when a name
outside the MobileNet family is asked for).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

__all__ = ["MODELS", "SWITCHES", "C_SWITCHES", "ABLATION_VARIANTS", "parse_model_name", "has_width"]

# The three networks of the source experiment, in the order the lesson shows them: the ones with a
# width multiplier (a MobileNetV2 ablation variant has its base's).
MODELS = ("mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2")
# Ablation switches: "+name" after mobilenet_v2 turns on one of C_MobileNetV2's two changes.
# "+branch" (a LeakyReLU on the residual branch before the add) is not part of C_MobileNetV2: it
# separates a non-linearity on the thin output from one on the identity path ("+leaky" does both).
SWITCHES = {"leaky": "leaky_after_add", "proj": "projection_shortcut", "branch": "leaky_on_branch"}
C_SWITCHES = {"leaky_after_add": True, "projection_shortcut": True, "leaky_on_branch": False}
ABLATION_VARIANTS = ("mobilenet_v2", "mobilenet_v2+leaky", "mobilenet_v2+branch", "mobilenet_v2+proj",
                     "c_mobilenet_v2")


Registry = Callable[[], Iterable[str]]


def parse_model_name(name: str, registry: Registry) -> tuple[str, str, dict[str, Any]]:
    """Split a model name into (canonical name, registry name, keyword arguments); `registry()` lists the
    registry's names (asked only for a name outside the MobileNet family).

    ``"mobilenet_v2+leaky"`` -> ``("mobilenet_v2+leaky", "c_mobilenet_v2",
    {"leaky_after_add": True, "projection_shortcut": False, "leaky_on_branch": False})``; ``"wide_resnet16_4"`` ->
    ``("wide_resnet16_4", "wide_resnet", {"depth": 16, "widen_factor": 4})``.
    """

    def _zoo() -> list[str]:  # every registry name but the MobileNets and the WRN family's own builder
        return [m for m in registry() if m not in MODELS and m != "wide_resnet"]

    def _allowed() -> str:
        return ", ".join(MODELS + tuple(f"mobilenet_v2+{s}" for s in SWITCHES) + tuple(_zoo())
                         + ("wide_resnetD_K (e.g. wide_resnet16_4)",))

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string; allowed: {_allowed()}")
    base, *parts = name.strip().split("+")
    if base in MODELS and not parts:
        return base, base, {}
    wrn = re.fullmatch(r"wide_resnet(\d+)_(\d+)", base)
    if wrn and not parts and base not in _zoo():  # wide_resnet50_2 is torchvision's, a zoo name
        depth, k = int(wrn.group(1)), int(wrn.group(2))
        if (depth - 4) % 6 or depth < 10 or k < 1:
            raise ValueError(f"{name!r}: a wide ResNet needs depth 6n + 4 >= 10 (10, 16, 22, 28, 40) and width "
                             f"k >= 1; allowed: {_allowed()}")
        return base, "wide_resnet", {"depth": depth, "widen_factor": k}
    if base not in MODELS:
        if not parts and base in _zoo():
            return base, base, {}
        raise ValueError(f"unknown model {name!r}; allowed: {_allowed()}")
    if base != "mobilenet_v2":
        raise ValueError(f"switches (+{'/+'.join(SWITCHES)}) only apply to mobilenet_v2, got {name!r}; "
                         f"allowed: {_allowed()}")
    if any(p not in SWITCHES for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"bad switches in {name!r}: each of +{', +'.join(SWITCHES)} at most once; "
                         f"allowed: {_allowed()}")
    on = {SWITCHES[s]: (s in parts) for s in SWITCHES}
    if on == C_SWITCHES:
        return "c_mobilenet_v2", "c_mobilenet_v2", {}
    return "+".join(["mobilenet_v2"] + [s for s in SWITCHES if s in parts]), "c_mobilenet_v2", on


def has_width(model: str) -> bool:
    """Whether the network `model` names takes a width multiplier (the MobileNets and their variants)."""
    return model.split("+")[0] in MODELS
