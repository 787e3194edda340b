"""The lessons' planned runs: lesson 09's experiment and lessons 01-08's reference runs, as conditions.

``python -m lecture_utils.experiment.sweep plan lesson09|lessons`` runs them; the Makefile's reference
targets call that command, and the lessons and tests read the stored runs through these plans.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from lecture_utils.augment import AUGMENTATIONS
from lecture_utils.experiment.conditions import (ABLATION_VARIANTS, DEFAULT_BATCH, DEFAULT_WIDTHS, MODELS, Condition, expand_grid,
                                      unique)
from lecture_utils.recipe import RECOMMENDED, Recipe, recipe_for
from lecture_utils.settings import REFERENCE_09_GRID, lesson_settings

__all__ = ["lesson09_plan", "lesson09_profile_plan", "lesson09_conditions", "lesson09_part",
           "LESSON_REFERENCE", "lessons_reference_plan", "PLAN_PARTS", "condition_seconds", "session_parts",
           "SESSION_HOURS", "recipe_choice_plan", "ZOO", "zoo_plan", "REFERENCE_09_EPOCHS", "PLAN_BATCH",
           "plan_batch_size", "SCALE_ZOO", "SCALE_ZOO_EPOCHS", "ZOOS", "REFERENCE_09_SEEDS",
           "REFERENCE_09_ABLATION_SEEDS", "GRID_SCALE_RESOLUTIONS", "GRID_SCALE_RESEEDED", "grid_scale_plan",
           "grid_scale_conditions"]

PLAN_PARTS = ("grid", "ablation", "augment")


def lesson09_plan(resolutions: Sequence[int], epochs: int, dataset: str, subset: int | tuple[int, int] | None = None,
                  seeds: Sequence[int] = (0, 1, 2), recipe: Recipe | None = None, validation: str = "test",
                  ablation_resolutions: Sequence[int] | None = None, ablation_widths: Sequence[float] = (1.0, 0.35),
                  baseline: bool = False, ablation_seeds: Sequence[int] | None = None,
                  batch_size: int = DEFAULT_BATCH) -> dict[str, list[Condition]]:
    """Lesson 09's experiment: ``{"grid": ..., "ablation": ..., "augment": ...}`` conditions.

    grid: the 3 models x 4 widths x 5 `resolutions`, seed 0, light augmentation (with `baseline`, the
    two-convolution ``small_cnn`` at the largest resolution, every seed, beside them). ablation: the
    MobileNetV2 variants (``conditions.ABLATION_VARIANTS``) at `ablation_widths` (default 1.0 and 0.35), at
    `ablation_resolutions` (default: the middle and the smallest resolution), every seed of `ablation_seeds`
    (default `seeds`). augment:
    MobileNetV2 and C_MobileNetV2 at width 0.35 and the smallest resolution, every seed, with each of
    the course's, the light and no augmentation. The three lists share conditions (light ones).
    `recipe` (default: the course's Adam), `validation` (test or heldout) and `batch_size` apply to every condition.
    """
    if len(resolutions) < 3:
        raise ValueError(f"lesson09_plan needs at least 3 resolutions, got {list(resolutions)}")
    pair = (sorted(resolutions)[len(resolutions) // 2], min(resolutions))
    if ablation_resolutions is None:
        ablation_resolutions = pair
    args = dict(epochs=epochs, dataset=dataset, subset=subset, recipe=recipe, validation=validation,
                batch_size=batch_size)
    ablation_seeds = seeds if ablation_seeds is None else ablation_seeds
    grid = expand_grid(MODELS, DEFAULT_WIDTHS, resolutions, seed=0, augment="light", **args)
    if baseline:
        grid += [c for s in seeds
                 for c in expand_grid(["small_cnn"], [1.0], [max(resolutions)], seed=s, augment="light", **args)]
    return {
        "grid": grid,
        "ablation": [c for s in ablation_seeds
                     for c in expand_grid(ABLATION_VARIANTS, ablation_widths, ablation_resolutions, seed=s,
                                          augment="light", **args)],
        "augment": [c for a in AUGMENTATIONS for s in seeds
                    for c in expand_grid(("mobilenet_v2", "c_mobilenet_v2"), (0.35,), pair[1:], seed=s, augment=a,
                                         **args)],
    }


def lesson09_profile_plan(profile: str) -> dict[str, list[Condition]]:
    """``lesson09_plan`` of `profile`: ``reference`` (the stored CPU run) or ``full`` (the full profile's settings)."""
    if profile == "reference":  # REFERENCE_09 below
        return lesson09_plan(REFERENCE_09_GRID, REFERENCE_09_EPOCHS, "fashion_mnist",
                             subset=(REFERENCE_09_PER_CLASS, None), recipe=RECOMMENDED, validation="heldout",
                             ablation_resolutions=(REFERENCE_09_ABLATION_RESOLUTION,),
                             ablation_widths=REFERENCE_09_ABLATION_WIDTHS, baseline=True,
                             seeds=REFERENCE_09_SEEDS, ablation_seeds=REFERENCE_09_ABLATION_SEEDS,
                             batch_size=plan_batch_size("lesson09", "reference"))
    if profile == "full":
        cfg = lesson_settings("09", "full")
        subset = None if cfg.train_subset is None else (cfg.train_subset, cfg.val_subset)  # LECTURE_FULL_SHRINK
        return lesson09_plan(cfg.resolutions, cfg.epochs, cfg.dataset, subset=subset, recipe=cfg.recipe,
                             validation="heldout", batch_size=plan_batch_size("lesson09", "full"))
    raise ValueError(f"unknown plan profile {profile!r}; allowed: reference, full")


# Lesson 09's stored CPU run (data/reference/lesson09-*.jsonl): Fashion-MNIST at 28, 20 and 12 px
# (settings.REFERENCE_09_GRID), 500 training images per class (from the training split less its held-out
# part), validated on the 500 held-out images per class, the whole test split once at the end, 4 epochs
# of the recommended recipe, batch 64 (PLAN_BATCH: 316 steps, 79 an epoch; batch 192 would give 108, and MobileNet v1
# 1.0 at 28 px ended at 0.66 after them, 0.71 after 316). The ablation at width 0.35 and 20 px, five
# variants x 5 seeds (3 seeds left +proj's 5.5-point gain at t = 2.8, short of the 4.30 that 95 % needs
# with 2 degrees of freedom; two more seeds cost 10 conditions of about 40 s). That is what the 2-core CPU
# allows: a condition takes 20 s to 2.5 min of one core.
REFERENCE_09_EPOCHS = 4
REFERENCE_09_PER_CLASS = 500
REFERENCE_09_ABLATION_RESOLUTION = 20
REFERENCE_09_ABLATION_WIDTHS = (0.35,)
REFERENCE_09_SEEDS = (0, 1, 2)  # the small CNN beside the grid and the augmentation comparison
REFERENCE_09_ABLATION_SEEDS = (0, 1, 2, 3, 4)


# the batch size of a plan run by ``python -m lecture_utils.experiment.sweep plan NAME --profile PROFILE`` (default 192)
PLAN_BATCH = {("lesson09", "reference"): 64, ("zoo-scale", "full"): 128, ("grid-scale", "full"): 128}


def plan_batch_size(name: str, profile: str = "full") -> int:
    """The batch size plan `name` (lesson09, lessons, zoo, ...) trains with in `profile`."""
    return PLAN_BATCH.get((name, profile), DEFAULT_BATCH)


def lesson09_conditions(profile: str) -> list[Condition]:
    """Every condition of lesson 09 in `profile` (reference or full), each once."""
    plan = lesson09_profile_plan(profile)
    return unique((c for part in plan.values() for c in part), key=lambda c: c.key)


# Lessons 01-08's course-recipe runs, the lessons' "before" (data/reference/lessons.jsonl; the zoo below
# replaced them as the lessons' reference): their budgets and epochs were chosen on the test split they
# were scored on, before the series had a held-out split. The network each lesson trains, at the
# lesson's quick resolution, on Fashion-MNIST (all 10,000 test images for validation), batch 192.
# Measured cost of one training step of 64 images on one core: VGG16 3.7 s, AlexNet (64 px) 0.90 s,
# ResNeXt-50 0.78 s, WRN-16-2 0.47 s, GoogLeNet / ResNet-18 0.23 s, MobileNet v1 / v2 at width 0.5
# 0.05 / 0.07 s. Each lesson's first entry is its reference; the others are the measurements beside
# it: the light augmentation (flips, jitter, small affine) left every network below the linear
# baseline in these few epochs (training accuracy under validation accuracy: the augmented images
# are the harder task), so the references train without augmentation; VGG16 without batch norm is
# the paper's problem, measured on the same data as VGG16_bn. Heaviest first, so that two workers
# sharing the file finish together.
#   lesson: [(model, width, train images per class, epochs, Adam learning rate, augmentation), ...]
LESSON_REFERENCE = {
    "02": [("vgg16_bn", 1.0, 500, 3, 1e-4, "light"), ("vgg16", 1.0, 500, 3, 1e-4, "light")],  # 1e-3: chance
    "01": [("alexnet", 1.0, 3000, 5, 1e-4, "none"), ("alexnet", 1.0, 2000, 4, 1e-4, "light")],  # no BN: 1e-4
    "05": [("resnext50_32x4d", 1.0, 2000, 6, 1e-3, "none"), ("resnext50_32x4d", 1.0, 2000, 4, 1e-3, "none"),
           ("resnext50_32x4d", 1.0, 2000, 4, 1e-3, "light")],  # 4 epochs: 0.847, still rising: 6
    "06": [("wide_resnet16_2", 1.0, 2000, 4, 1e-3, "none"), ("wide_resnet16_2", 1.0, 2000, 4, 1e-3, "light")],
    "08": [("mobilenet_v2", 0.5, 6000, 8, 1e-3, "none"), ("mobilenet_v2", 0.5, 6000, 8, 1e-3, "light")],
    "03": [("googlenet", 1.0, 2000, 5, 1e-3, "none"), ("googlenet", 1.0, 2000, 5, 1e-3, "light")],
    "04": [("resnet18", 1.0, 2000, 5, 1e-3, "none"), ("resnet18", 1.0, 2000, 5, 1e-3, "light")],
    "07": [("mobilenet_v1", 0.5, 6000, 8, 1e-3, "none"), ("mobilenet_v1", 0.5, 6000, 8, 1e-3, "light")],
}


def lessons_reference_plan() -> dict[str, list[Condition]]:
    """The reference conditions of lessons 01-08, ``{"01": [reference, other...], ...}`` (see ``LESSON_REFERENCE``)."""
    plan = {}
    for lesson, runs in LESSON_REFERENCE.items():
        resolution = lesson_settings(lesson, "quick").resolution
        plan[lesson] = [c for model, width, n, epochs, lr, augment in runs
                        for c in expand_grid([model], [width], [resolution], epochs, "fashion_mnist",
                                             subset=(n, 1000), seed=0, augment=augment, lr=lr)]
    return plan


# The zoo on equal terms (data/reference/zoo.jsonl): each lesson's network with the recommended recipe,
# 1,000 training images per class (from the training split less its held-out part), validated on the
# 500 held-out images per class, the whole test split once at the end, 5 epochs, no augmentation, batch 192:
# the budget the recipe was chosen at (AlexNet, without batch norm, at a tenth of its peak rate:
# recipe.recipe_for). Resolutions: the lessons' quick 32 px (AlexNet 64), but the
# MobileNets at 64 px: at 32 px their stride 32 leaves 1 x 1 maps and the recipe's choice measured
# MobileNetV2 0.5 at 0.78 there, below the linear baseline; MobileNetV2 0.5 at 32 px stays beside them
# (the resolution ceiling, measured on one network with 3 seeds). VGG16 is not in the CPU zoo: one epoch
# of its 5,000 images took about 8 minutes of one core (its 1x1 map at 32 px is copied 49 times into a
# 102 M-parameter classifier, and a checkpoint of 1.6 GB is written every epoch), so 5 epochs of the
# budget would take as long as the rest of the zoo; lesson 02 uses its stored course-recipe runs and the
# GPU reference. One training step of 64 images at 32 px on one core: ResNeXt-50 0.92 s, AlexNet at 64 px
# 0.44 s, WRN-16-2 0.40 s, GoogLeNet 0.27 s, MobileNetV2 0.5 at 64 px 0.27 s, ResNet-18 0.21 s. Three
# seeds for the networks under 10 M multiply-adds and for the two-convolution baseline (small_cnn at
# Fashion-MNIST's own 28 px). Heaviest first, so that two workers sharing the file finish together.
#   (lesson, model, width, resolution, training images per class, seeds); lesson "--": no lesson's own
ZOO_EPOCHS = 5
ZOO_PER_CLASS = 1000
ZOO = (
    ("05", "resnext50_32x4d", 1.0, 32, 1000, (0,)),
    ("08", "mobilenet_v2", 0.5, 64, 1000, (0, 1, 2)),
    ("01", "alexnet", 1.0, 64, 1000, (0,)),
    ("07", "mobilenet_v1", 0.5, 64, 1000, (0, 1, 2)),
    ("06", "wide_resnet16_2", 1.0, 32, 1000, (0,)),
    ("03", "googlenet", 1.0, 32, 1000, (0,)),
    ("04", "resnet18", 1.0, 32, 1000, (0,)),
    ("08", "mobilenet_v2", 0.5, 32, 1000, (0, 1, 2)),  # the resolution ceiling: 32 px against 64
    ("--", "small_cnn", 1.0, 28, 1000, (0, 1, 2)),
)


# The zoo at the CPU's real scale (data/reference/zoo-scale.jsonl, ``make -j2 reference-zoo-scale``): the
# same networks, recipe and held-out protocol, but trained on the whole training split less its held-out
# part (55,000 images), 3 epochs, batch 128 (1,290 optimiser steps, 26 times the 1,000-per-class zoo's
# 260). The budget is set by cost, not chosen on the held-out split: one epoch of 55,000 images on one
# core of the 2-core Xeon VM, measured as training steps of 128 images: small CNN 1.0 min, MobileNetV2 0.5
# at 32 px 1.5, MobileNet v1 0.5 at 64 px 2.5, ResNet-18 2.7, MobileNetV2 0.5 at 64 px 3.5, GoogLeNet 4.2,
# WRN-16-2 8.2, AlexNet at 64 px 9.4, ResNeXt-50 10.9, VGG16_bn 43.6. At 64 px every network would end on
# a 2 x 2 map but cost four times as much: only the MobileNets (cheap, and at 32 px they end on 1 x 1 maps)
# train there, MobileNetV2 0.5 at 32 px beside them as the resolution ceiling. Seeds: 5 for the small CNN,
# 3 for every network whose run costs under 20 minutes of one core, 1 above (a one-seed row is read with
# a seed term pooled from the seeded rows: lecture_utils.experiment.zoo). Cheapest first, so that the rows an
# interrupted run has finished are whole; VGG16_bn last (about 2.2 h of one core).
SCALE_ZOO_EPOCHS = 3
SCALE_ZOO = (
    ("--", "small_cnn", 1.0, 28, None, (0, 1, 2, 3, 4)),
    ("04", "resnet18", 1.0, 32, None, (0, 1, 2)),
    ("08", "mobilenet_v2", 0.5, 32, None, (0, 1, 2)),  # the resolution ceiling: 32 px against 64
    ("07", "mobilenet_v1", 0.5, 64, None, (0, 1, 2)),
    ("08", "mobilenet_v2", 0.5, 64, None, (0, 1, 2)),
    ("03", "googlenet", 1.0, 32, None, (0, 1, 2)),
    ("06", "wide_resnet16_2", 1.0, 32, None, (0,)),
    ("01", "alexnet", 1.0, 64, None, (0,)),
    ("05", "resnext50_32x4d", 1.0, 32, None, (0,)),
    ("02", "vgg16_bn", 1.0, 32, None, (0,)),
)
# plan name -> (table, epochs, results file under data/reference/)
ZOOS = {"zoo": (ZOO, ZOO_EPOCHS, "zoo"), "zoo-scale": (SCALE_ZOO, SCALE_ZOO_EPOCHS, "zoo-scale")}


# Lesson 09's grid at the CPU's scale (data/reference/grid-scale.jsonl, ``make -j2 reference-grid-scale``): the
# three MobileNets x 4 widths at 64, 48 and 32 px, on the zoo-scale protocol (the whole training split less
# its held-out part, 3 epochs, batch 128, no augmentation, the recommended recipe, chosen on the held-out
# split, tested once), seed 0. At 500 images per class and 4 epochs (the stored grid, REFERENCE_09) no
# MobileNet reaches the linear baseline fitted on the same images (0.818); at this budget MobileNet v1 and
# MobileNetV2 0.5 at 64 px clear the whole-split baseline (0.8465) by 4 points (zoo-scale), so the grid
# compares the models where they work. 64 px is the course's 224 px scaled to keep a 2 x 2 last map, 48 and
# 32 px end on 2 x 2 and 1 x 1. The three conditions the zoo has trained (v1 and V2 at width 0.5 and 64 px, V2
# at 32 px) are read from zoo-scale.jsonl, not trained again. Order: C_MobileNetV2 at width 0.5 first (it completes
# a three-model slice with the zoo's rows), then width 1.0 at 64 px, then the rest of 64, 48 and 32 px.
# 4.8 h of one core for the 33 (an epoch of MobileNetV2 0.5: 1.5 min at 32 px, 3.5 min at 64 px). Then seeds 1
# and 2 of the three models at width 0.35 and 32 px (GRID_SCALE_RESEEDED): the one pair where seed 0 found
# MobileNet v1 ahead of MobileNetV2 (+1.9 points, one of twelve pairs), trained again on fresh seeds to see
# whether the lead holds; with them, three more conditions have a seed spread of their own (5.2 h in all).
GRID_SCALE_RESOLUTIONS = (64, 48, 32)
GRID_SCALE_RESEEDED = ((0.35, 32), (1, 2))  # (width, resolution), extra seeds


def _grid_scale_condition(model: str, width: float, resolution: int, seed: int = 0) -> Condition:
    """One condition of the CPU-scale grid: the zoo-scale protocol, seed 0 unless given."""
    (condition,) = expand_grid([model], [width], [resolution], SCALE_ZOO_EPOCHS, "fashion_mnist", subset=None, seed=seed,
                               augment="none", recipe=recipe_for(model), validation="heldout",
                               batch_size=plan_batch_size("grid-scale"))
    return condition


def grid_scale_plan() -> list[Condition]:
    """The conditions of lesson 09's CPU-scale grid that zoo-scale has not trained, in training order."""
    zoo_keys = {c.key for _, c in zoo_plan("zoo-scale")}

    def conditions(models: Sequence[str], widths: Sequence[float], resolutions: Sequence[int]) -> list[Condition]:
        return [_grid_scale_condition(m, w, r) for r in resolutions for w in widths for m in models]

    (width, resolution), seeds = GRID_SCALE_RESEEDED
    order = (conditions(["c_mobilenet_v2"], [0.5], [64, 32]) + conditions(MODELS, [1.0], [64])
             + conditions(MODELS, DEFAULT_WIDTHS, GRID_SCALE_RESOLUTIONS)
             + [_grid_scale_condition(m, width, resolution, seed) for seed in seeds for m in MODELS])
    return [c for c in unique(order, key=lambda c: c.key) if c.key not in zoo_keys]


def grid_scale_conditions() -> list[Condition]:
    """Every condition of the CPU-scale grid at seed 0, the zoo's three included, in the grid's order (models,
    widths, resolutions), for reading; a record of another seed is a further run of its seed-0 condition."""
    return [_grid_scale_condition(m, w, r) for m in MODELS for w in DEFAULT_WIDTHS for r in GRID_SCALE_RESOLUTIONS]


def zoo_plan(name: str = "zoo") -> list[tuple[str, Condition]]:
    """The conditions of zoo `name` (zoo, zoo-scale) as ``[(lesson, condition), ...]`` in its table's order,
    seeds innermost."""
    if name not in ZOOS:
        raise ValueError(f"unknown zoo {name!r}; allowed: {', '.join(ZOOS)}")
    table, epochs, _ = ZOOS[name]
    return [(lesson, c) for lesson, model, width, resolution, per_class, seeds in table for seed in seeds
            for c in expand_grid([model], [width], [resolution], epochs, "fashion_mnist",
                                 subset=None if per_class is None else (per_class, None), seed=seed,
                                 augment="none", recipe=recipe_for(model), validation="heldout",
                                 batch_size=plan_batch_size(name))]


def lesson09_part(profile: str, part: str) -> list[Condition]:
    """The conditions that `part` (grid, ablation, augment) of lesson 09's plan adds to the parts before it.

    The stored reference run keeps one file per part (``data/reference/lesson09-<part>.jsonl``): the
    ablation file lacks the grid's conditions, the augmentation file those of both.
    """
    if part not in PLAN_PARTS:
        raise ValueError(f"unknown part {part!r} of lesson 09's plan; allowed: {', '.join(PLAN_PARTS)}")
    plan = lesson09_profile_plan(profile)
    before = {c.key for p in PLAN_PARTS[:PLAN_PARTS.index(part)] for c in plan[p]}
    return unique((c for c in plan[part] if c.key not in before), key=lambda c: c.key)


# A Colab session ends after at most 12 hours: each part of a long plan is sized to 11, leaving an hour
# for the runtime's start, the data and the estimate's error.
SESSION_HOURS = 11.0


def condition_seconds(condition: Condition, gpu: str = "t4", batch_size: int = 192) -> float:
    """Estimated training time of `condition` on `gpu` (:mod:`lecture_utils.estimate`), its data set's size included."""
    from lecture_utils.estimate import estimate_seconds
    from lecture_utils.holdout import heldout_sizes
    from lecture_utils.settings import dataset_sizes

    n_train, n_val = dataset_sizes(condition.dataset, condition.subset)
    cost = _training_cost(condition.model, condition.width, condition.resolution)
    if condition.validation == "test":
        return estimate_seconds(cost, n_train, n_val, condition.epochs, batch_size, gpu)
    # held out: training on the rest of the training split, validating on the held-out part, the test split once
    held_train, held_val = heldout_sizes(dataset_sizes(condition.dataset)[0], condition.subset)
    return (estimate_seconds(cost, held_train, held_val, condition.epochs, batch_size, gpu)
            + estimate_seconds(cost, 0, n_val, 1, batch_size, gpu))


@functools.lru_cache(maxsize=512)
def _training_cost(model: str, width: float, resolution: int) -> Any:
    from lecture_utils.experiment.conditions import build_model
    from lecture_utils.estimate import meta_model, training_cost

    return training_cost(meta_model(build_model, model, width, 10), resolution)


def session_parts(conditions: Sequence[Condition], hours: float = SESSION_HOURS, gpu: str = "t4",
                  batch_size: int = 192) -> list[tuple[list[Condition], float]]:
    """`conditions` in order, cut into parts of at most `hours` each on `gpu`: ``[(conditions, seconds), ...]``.

    A condition longer than `hours` alone gets a part of its own (it still resumes from its checkpoints).
    """
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours!r}")
    parts: list[tuple[list[Condition], float]] = []
    current: list[Condition] = []
    total = 0.0
    for condition in conditions:
        seconds = condition_seconds(condition, gpu, batch_size)
        if current and total + seconds > hours * 3600:
            parts.append((current, total))
            current, total = [], 0.0
        current.append(condition)
        total += seconds
    if current:
        parts.append((current, total))
    return parts


def recipe_choice_plan() -> list[Condition]:
    """The recipe's choice on the held-out split: the course's constant Adam against the proposed recipe.

    ResNet-18 and MobileNetV2 0.5 (lessons 04 and 08) at 32 px, 1,000 training images per class (from
    the training split less its held-out part), validated on 500 held-out images per class, 5 epochs,
    no augmentation, seeds 0, 1, 2 (``python -m lecture_utils.experiment.sweep plan recipe-choice``); heaviest first.
    """
    from lecture_utils.recipe import RECIPES

    return [c for model, width in (("resnet18", 1.0), ("mobilenet_v2", 0.5)) for seed in (0, 1, 2)
            for recipe in RECIPES.values()
            for c in expand_grid([model], [width], [32], 5, "fashion_mnist", subset=(1000, 500), seed=seed,
                                 augment="none", recipe=recipe, validation="heldout")]
