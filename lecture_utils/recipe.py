"""A training recipe: optimiser, learning rate and its schedule, weight decay, label smoothing.

A :class:`Recipe` is part of a sweep condition (:class:`lecture_utils.experiment.conditions.Condition`), so two
runs that differ only in their recipe are two conditions. :data:`COURSE` is the course's recipe,
Adam at a constant 1e-3 with nothing else, which every stored record was trained with (a record
without recipe fields reads as it). :data:`RECOMMENDED` is a proposal for runs that should show what
each network can do. Nothing here imports torch at module level: results are read without it.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["Recipe", "COURSE", "RECOMMENDED", "RECIPES", "recipe_for", "NO_NORM_MODELS", "OPTIMIZERS", "SCHEDULES",
           "RECIPE_FIELDS", "add_recipe_arguments", "recipe_changes", "fused_for"]

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
# the fraction of the steps spent warming up when a schedule is given without one: torch's OneCycleLR
# default (pct_start 0.3), and a short linear warm-up before the cosine
DEFAULT_WARMUP = {"constant": 0.0, "onecycle": 0.3, "cosine": 0.05}
SGD_MOMENTUM = 0.9


def _number(value: Any, what: str, low: float, high: float, high_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < low or value > high or (high_open and value == high):
        bound = f"{low:g} <= {what} {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{what} must be a number with {bound}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: `optimizer` (adam, adamw, sgd) at peak learning rate `lr`, `schedule`.

    schedule: constant; onecycle (torch's OneCycleLR: up for the `warmup` fraction of the steps, then
    annealed to lr / 1e4 by cosine); cosine (a linear warm-up over the `warmup` fraction, then cosine to 0).
    Schedules step once per batch. `weight_decay` is not applied to biases and normalisation weights;
    `label_smoothing` goes to the training loss; `momentum` applies to sgd only (Nesterov, default 0.9).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    schedule: str = "constant"
    warmup: float | None = None
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    momentum: float | None = None

    def __post_init__(self) -> None:
        optimizer = str(self.optimizer).strip().lower() if isinstance(self.optimizer, str) else self.optimizer
        if optimizer not in OPTIMIZERS:  # stored records spell it "Adam"
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        lr = _number(self.lr, "learning rate", 0.0, math.inf)
        if lr == 0:
            raise ValueError("learning rate must be a number > 0, got 0")
        warmup = DEFAULT_WARMUP[self.schedule] if self.warmup is None else self.warmup
        if self.schedule == "constant" and warmup != 0:
            raise ValueError(f"warmup applies to the onecycle and cosine schedules only, got {warmup!r} with constant")
        warmup = _number(warmup, "warmup (fraction of the steps)", 0.0, 1.0)
        if self.schedule == "onecycle" and warmup == 0:
            raise ValueError("warmup (fraction of the steps) must be > 0 for onecycle, got 0")
        momentum = self.momentum
        if optimizer == "sgd":
            momentum = _number(SGD_MOMENTUM if momentum is None else momentum, "momentum", 0.0, 1.0)
        elif momentum is not None:
            raise ValueError(f"momentum applies to sgd only, got momentum {momentum!r} with {optimizer}")
        for name, value in dict(optimizer=optimizer, lr=lr, warmup=warmup, momentum=momentum,
                                weight_decay=_number(self.weight_decay, "weight_decay", 0.0, math.inf),
                                label_smoothing=_number(self.label_smoothing, "label_smoothing", 0.0, 1.0)).items():
            object.__setattr__(self, name, value)

    def describe(self) -> str:
        """Short text, e.g. ``adam 0.001 constant`` or ``adamw 0.002 onecycle wd0.05 ls0.1``."""
        extra = [f"wd{self.weight_decay:g}"] if self.weight_decay else []
        extra += [f"ls{self.label_smoothing:g}"] if self.label_smoothing else []
        extra += [f"warmup{self.warmup:g}"] if self.warmup != DEFAULT_WARMUP[self.schedule] else []
        extra += [f"m{self.momentum:g}"] if self.momentum not in (None, SGD_MOMENTUM) else []
        return " ".join([self.optimizer, f"{self.lr:g}", self.schedule, *extra])

    def criterion(self) -> Any:
        """The training loss: ``CrossEntropyLoss(label_smoothing=...)``."""
        from torch import nn

        return nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)

    def build(self, model: Any, steps_per_epoch: int, epochs: int, device: Any = None) -> tuple[Any, Any]:
        """``(optimizer, scheduler or None)`` for `model`; the scheduler steps once per batch.

        With `device`, the model moves there first; with its parameters on CUDA the optimiser is torch's
        fused one (:func:`fused_for`). The course's recipe gives ``torch.optim.Adam(model.parameters(),
        lr)`` and no scheduler.
        """
        import torch

        for value, what in ((steps_per_epoch, "steps_per_epoch"), (epochs, "epochs")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
        if device is not None:  # before the optimiser: its kernels are chosen by where the parameters are
            model.to(device)
        fused = fused_for(model.parameters())
        params: Any = model.parameters()
        if self.weight_decay:  # biases and normalisation weights (one dimension) are not decayed
            decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
            rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
            params = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        if self.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=self.lr, fused=fused)
        elif self.optimizer == "adamw":  # the groups carry the decay
            optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0, fused=fused)
        else:
            optimizer = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.momentum > 0,
                                        fused=fused)
        total = steps_per_epoch * epochs
        if self.schedule == "constant":
            return optimizer, None
        if self.schedule == "onecycle":
            return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=total,
                                                                  pct_start=self.warmup)
        warm = round(self.warmup * total)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _warmup_cosine(step, warm, total))


def fused_for(parameters: Any) -> bool | None:
    """``True`` when every parameter is on CUDA (torch's fused optimiser step), else None (torch's default).

    Why fused on CUDA: torch's default there, the multi-tensor (foreach) step, runs a chain of kernels
    that each read and write the parameters, gradients and moments (about 80 bytes per float32
    parameter and step for Adam(W)); the fused step reads and writes each once (28 bytes: parameter,
    gradient, two moments). Under fp16 autocast it also spares a host sync: ``GradScaler.step`` hands
    an optimiser that supports AMP scaling (fused Adam, AdamW, SGD) its scale and inf flag as tensors,
    where for any other optimiser it reads the flag with ``.item()`` every step. On the CPU torch's
    default is kept (the stored CPU records were trained with it).
    """
    devices = {p.device.type for p in parameters}
    return True if devices == {"cuda"} else None


def _warmup_cosine(step: int, warm: int, total: int) -> float:
    """The factor on the peak rate at `step`: linear from 1/warm to 1 over `warm` steps, then cosine to 0 at `total`."""
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(1, total - warm)))


# the recipe of every stored record: Adam at a constant 1e-3, no weight decay, no label smoothing
COURSE = Recipe("adam", 1e-3, "constant")
# The recipe chosen on the held-out validation split (lecture_utils.holdout): AdamW with a one-cycle
# schedule (warm-up, then an annealed end, so the last epoch is a stable point rather than a random point
# of the noise), decoupled weight decay 0.05 and label smoothing 0.1. Against COURSE on ResNet-18 and
# MobileNetV2 0.5 at 32 px, 1,000 images per class, 5 epochs, 3 seeds each (data/reference/recipe-choice.jsonl,
# `python -m lecture_utils.experiment.results recipe-choice`), it adds 2.96 +- 0.79 points of held-out accuracy at the
# last epoch, higher in all 6 pairs. Chosen there, for those budgets; other networks and longer runs may
# want other rates.
RECOMMENDED = Recipe("adamw", 2e-3, "onecycle", weight_decay=0.05, label_smoothing=0.1)
RECIPES = {"course": COURSE, "recommended": RECOMMENDED}
# the training augmentation each named recipe was chosen with (lecture_utils.augment): the course's turns and
# shrinks every image; the recommended recipe was chosen on unaugmented images (the zoo's and lesson 09's runs)
RECIPE_AUGMENT = {"course": "course", "recommended": "none"}
# Networks without batch normalisation take a tenth of the peak rate. On the quick profile's sample
# (lesson 01's live run: 1,500 images, 2 epochs at 64 px), AlexNet ends at 0.20 validation accuracy with
# RECOMMENDED's 2e-3 and at 0.585 with 2e-4 (the course's constant Adam 1e-3: 0.26); the course's own
# reference runs of AlexNet and VGG16 needed 1e-4 for the same reason (lessons.jsonl).
NO_NORM_MODELS = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19")
NO_NORM_LR_FACTOR = 0.1


def recipe_for(model: str, recipe: Recipe = RECOMMENDED) -> Recipe:
    """`recipe` for the network `model` names: its peak rate times NO_NORM_LR_FACTOR for a network without batch norm."""
    return replace(recipe, lr=recipe.lr * NO_NORM_LR_FACTOR) if model in NO_NORM_MODELS else recipe


RECIPE_FIELDS = tuple(f.name for f in fields(Recipe))


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """``--recipe`` (a named recipe) and one flag per recipe field, each overriding it."""
    group = parser.add_argument_group("training recipe (default: the plan's own; for run: recommended)")
    group.add_argument("--recipe", choices=tuple(RECIPES), default=None,
                       help="course: Adam 1e-3, constant, nothing else (every stored record); recommended: "
                       f"{RECOMMENDED.describe()} (a proposal)")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="optimiser")
    group.add_argument("--schedule", choices=SCHEDULES, default=None, help="learning-rate schedule, stepped per batch")
    group.add_argument("--warmup", type=float, default=None, help="fraction of the steps spent warming up")
    group.add_argument("--weight-decay", type=float, default=None, help="not applied to biases and norm weights")
    group.add_argument("--label-smoothing", type=float, default=None, help="of the training loss (0 to 1)")
    group.add_argument("--momentum", type=float, default=None, help="sgd only (default 0.9, Nesterov)")


def recipe_changes(args: argparse.Namespace, base: Recipe | None = None) -> dict[str, Any]:
    """The recipe fields the command line sets: ``--recipe`` (else `base`, else the course's) with each flag over it.

    Returns ``{}`` when no recipe flag was given; a bad combination raises ValueError.
    """
    named = RECIPES[args.recipe] if getattr(args, "recipe", None) else None
    given = {f: getattr(args, f) for f in RECIPE_FIELDS if getattr(args, f, None) is not None}
    if named is None and not given:
        return {}
    start = {f: getattr(named or base or COURSE, f) for f in RECIPE_FIELDS}
    if given.get("optimizer", start["optimizer"]) != start["optimizer"] and "momentum" not in given:
        start["momentum"] = None  # the new optimiser's own (sgd: 0.9; none for the others)
    if given.get("schedule", start["schedule"]) != start["schedule"] and "warmup" not in given:
        start["warmup"] = None  # the new schedule's own default
    recipe = Recipe(**{**start, **given})
    return {f: getattr(recipe, f) for f in RECIPE_FIELDS}
