"""Run profiles: what each lesson trains on, how long, and where.

``LECTURE_PROFILE=quick`` trains on the embedded sample at a small resolution on the CPU (what CI
runs: a lesson's training takes about a minute on 2 cores); ``LECTURE_PROFILE=full`` trains on the
real data set at the lesson's resolution on a GPU. Without the variable: ``full`` when CUDA is
available, else ``quick``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lecture_utils.recipe import RECOMMENDED, Recipe, recipe_for

PROFILES = ("quick", "full")
LESSONS = ("01", "02", "03", "04", "05", "06", "07", "08", "09")


@dataclass(frozen=True)
class LessonSettings:
    """Everything a lesson's training cell needs; subsets are images per class (None: all)."""

    profile: str
    lesson: str
    dataset: str
    resolution: int
    resolutions: tuple[int, ...]
    epochs: int
    batch_size: int
    train_subset: int | None
    val_subset: int | None
    device: str
    model: str = ""  # the network the lesson trains (lecture_utils.models name) and its arguments
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    download: bool = False  # fetch the data set once if it is not found (full profile)
    # how the lesson's network trains (optimiser, schedule, weight decay, label smoothing): the recipe
    # chosen on the held-out split (lecture_utils.recipe.RECOMMENDED; a tenth of its rate for AlexNet and
    # VGG16, which have no batch norm: recipe.recipe_for), in both profiles
    recipe: Recipe = RECOMMENDED

    def checkpoint(self, tag: str) -> Path | None:
        """Where the full profile keeps run `tag`'s checkpoint (resumed on rerun); None in the quick profile.

        The name holds everything that makes it resumable: the recipe's optimiser and schedule, the data set,
        the resolution, the epochs (a schedule's length), the batch size and the images per class (all, or
        ``LECTURE_FULL_SHRINK``'s), so a run with other settings starts afresh instead of resuming another's.
        """
        if self.profile != "full":
            return None
        if not tag or not all(c.isalnum() or c in "-_" for c in tag):
            raise ValueError(f"tag must be letters, digits, '-' or '_', got {tag!r}")
        how = f"{self.recipe.optimizer}-{self.recipe.schedule}"
        # one number when both splits take the same (n20), else train-val (n20-all)
        halves = ("all" if n is None else str(n) for n in (self.train_subset, self.val_subset))
        per_class = "-".join(dict.fromkeys(halves))
        budget = f"e{self.epochs}-b{self.batch_size}-n{per_class}"
        return runs_dir() / f"lesson{self.lesson}-{tag}-{how}-{self.dataset}-{self.resolution}px-{budget}.pt"

    def loaders(self) -> tuple[Any, Any]:
        """The lesson's (training, validation) loaders at its resolution: cached, not augmented, seeded (0).

        A lesson validates on (a subset of) the official test split, as the course does; it chooses nothing on it.

        The global seeds are set first (``seed_everything(0)``), so the network built next starts from the
        same weights on every run.
        """
        from lecture_utils.data import make_loaders
        from lecture_utils.trainer import seed_everything

        seed_everything(0)
        loaders = make_loaders(self.dataset, [self.resolution], batch_size=self.batch_size,
                               subset=(self.train_subset, self.val_subset), augment=False, seed=0, cached=True,
                               device=self.device, download=self.download)
        key = f"R{self.resolution}"
        return loaders["train"][key], loaders["test"][key]

    def create_model(self) -> Any:
        """The network the lesson trains in this profile (``cfg.model`` with ``cfg.model_kwargs``), 10 classes."""
        from lecture_utils.models import create_model

        if not self.model:
            raise ValueError(f"lesson {self.lesson} trains several networks; build each condition's instead")
        return create_model(self.model, num_classes=10, **self.model_kwargs)

    def train(self, model: Any, loaders: tuple[Any, Any], tag: str | None = None, **kwargs: Any) -> Any:
        """Train `model` on `loaders` (``cfg.loaders()``) with the lesson's recipe and epochs; its History.

        :func:`lecture_utils.trainer.train` with this profile's device; in the full profile the checkpoint
        :meth:`checkpoint` names after `tag` (default: the lesson's network) is resumed and kept. `kwargs`
        go to ``train`` (e.g. ``progress=False``).
        """
        from lecture_utils.trainer import train

        train_loader, val_loader = loaders
        return train(model, self.recipe, train_loader, val_loader, self.epochs, device=self.device,
                     checkpoint=self.checkpoint(tag or self.model), **kwargs)

    def estimate_seconds(self, gpu: str = "t4", train_images: int | None = None,
                         val_images: int | None = None) -> float:
        """Estimated training time of the lesson's network in these settings on `gpu` (lecture_utils.estimate)."""
        from lecture_utils.estimate import estimate_seconds, meta_model, training_cost
        from lecture_utils.models import create_model

        if not self.model:
            raise ValueError(f"lesson {self.lesson} trains several networks; estimate each condition instead")
        n_train, n_val = dataset_sizes(self.dataset, (self.train_subset, self.val_subset))
        n_train, n_val = train_images or n_train, val_images or n_val
        cost = training_cost(meta_model(create_model, self.model, num_classes=10, **self.model_kwargs),
                             self.resolution)
        return estimate_seconds(cost, n_train, n_val, self.epochs, self.batch_size, gpu)


# quick profile, per lesson: (resolution, train_subset, val_subset). One training step of 64
# images on one CPU core (float32, measured): AlexNet at 64 px 1.3 s; at 32 px VGG16 5 s,
# WRN-16-4 1.9 s, ResNet-50 / ResNeXt-50 1.0 s, GoogLeNet / ResNet-18 0.4 s, MobileNets 0.1 s.
# The subsets keep two epochs (3,000 sample images each without a subset) near a minute on 2 cores.
_QUICK = {
    "01": (64, 150, None),   # AlexNet needs >= 63 px to reach its last pooling layer
    "02": (32, 100, 20),     # VGG16: the heaviest per image (and _QUICK_STEPS below)
    "03": (32, None, None),  # GoogLeNet
    "04": (32, 150, None),   # ResNet (up to ResNet-50)
    "05": (32, 150, None),   # ResNeXt-50
    "06": (32, 100, 30),     # Wide ResNet
    "07": (32, None, None),  # MobileNet v1
    "08": (32, None, None),  # MobileNetV2
    "09": (12, None, None),  # a live rerun of the cheapest condition of the stored reference run
}
# quick-profile (epochs, batch size) where a lesson differs from 2 epochs of batch 64: plain VGG16 (no batch
# norm, a tenth of the recipe's rate) needs optimiser steps more than images. Measured on 100 images per class
# at 32 px, validation accuracy after the last epoch: 2 epochs of batch 64 (32 steps) 0.20; 3 epochs of
# batch 64 (48 steps) 0.42; 3 epochs of batch 32 (96 steps) 0.58, in about two minutes of 2 cores; the same
# at 2.5 times the rate learned more slowly.
_QUICK_STEPS = {"02": (3, 32)}
# full profile, per lesson: (resolution, epochs), on all of Fashion-MNIST (60,000 training, 10,000 test
# images), batch 128. Resolutions where the ImageNet networks still end on spatial maps (not 1x1);
# each at most 10 minutes on a Colab T4 by lecture_utils.estimate, the top of its +-25 % range included
# (docs/gpu.md; bench gpu-check measures it on a GPU).
_FULL = {
    "01": (96, 10),   # AlexNet: 2 x 2 maps before its classifier
    "02": (64, 5),    # VGG16: the heaviest; 2 x 2 last maps
    "03": (96, 10),   # GoogLeNet: 3 x 3
    "04": (96, 10),   # ResNet-18: 3 x 3
    "05": (64, 10),   # ResNeXt-50: 2 x 2
    "06": (32, 10),   # WRN-16-4 at its own 32 px: 8 x 8
    "07": (96, 10),   # MobileNet v1 0.5: 3 x 3
    "08": (96, 10),   # MobileNetV2 0.5: 3 x 3
}
# the network each lesson trains, per profile where they differ (lesson 09 trains a whole plan)
_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "01": ("alexnet", {}),
    "02": ("vgg16", {}),
    "03": ("googlenet", {}),
    "04": ("resnet18", {}),
    "05": ("resnext50_32x4d", {}),
    "06": ("wide_resnet", {"depth": 16, "widen_factor": 4, "dropout_rate": 0.3}),
    "07": ("mobilenet_v1", {"width_multiplier": 0.5}),
    "08": ("mobilenet_v2", {"width_multiplier": 0.5}),
}
_QUICK_MODEL_CHANGES = {"06": {"widen_factor": 2}}  # WRN-16-2 on the CPU
_DATASET_SIZES = {"sample": (3000, 1000), "fashion_mnist": (60000, 10000), "cifar10": (50000, 10000),
                  "animals10": (20938, 5241)}



def dataset_sizes(dataset: str, subset: int | tuple[int | None, int | None] | None = None) -> tuple[int, int]:
    """(training, validation) images of `dataset` (10 classes) with `subset` images per class (None: all)."""
    if dataset not in _DATASET_SIZES:
        raise ValueError(f"unknown data set {dataset!r}; allowed: {', '.join(_DATASET_SIZES)}")
    per_split = (subset, subset) if subset is None or isinstance(subset, int) else tuple(subset)
    return tuple(full if n is None else min(full, 10 * int(n))  # type: ignore[return-value]
                 for full, n in zip(_DATASET_SIZES[dataset], per_split))


# Lesson 09's reference run (data/reference/): Fashion-MNIST's own 28 px down to 12 px, 7:6:5:4:3 as
# the course's 224:192:160:128:96
REFERENCE_09_RESOLUTIONS = (28, 24, 20, 16, 12)
# the stored CPU run's grid: three of them (its 2-core budget; lecture_utils.experiment.plans.REFERENCE_09_EPOCHS)
REFERENCE_09_GRID = (28, 20, 12)
FULL_09_RESOLUTIONS = (224, 192, 160, 128, 96)


def runs_dir() -> Path:
    """Where lessons keep training results: ``$LECTURE_RUNS_DIR`` when set, else ``runs/`` of the checkout.

    In Colab, point it at Google Drive (``/content/drive/MyDrive/...``) so that results survive a lost
    runtime; the sweep resumes from whatever it finds there.
    """
    env = os.environ.get("LECTURE_RUNS_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "runs"


def current_profile() -> str:
    """``$LECTURE_PROFILE`` if set (quick or full), else full with CUDA and quick without."""
    value = os.environ.get("LECTURE_PROFILE", "").strip().lower()
    if value:
        if value not in PROFILES:
            raise ValueError(f"LECTURE_PROFILE={value!r} is not a profile; allowed: {', '.join(PROFILES)}")
        return value
    import torch

    return "full" if torch.cuda.is_available() else "quick"


def _lesson_key(lesson: str | int) -> str:
    key = f"{lesson:02d}" if isinstance(lesson, int) else str(lesson).strip()
    if key.isdigit() and len(key) == 1:
        key = "0" + key
    if key not in LESSONS:
        raise ValueError(f"unknown lesson {lesson!r}; allowed: {', '.join(LESSONS)}")
    return key


def _animals10_present() -> bool:
    from lecture_utils.datasets import default_root

    root = default_root("animals10")
    return (root / "train").is_dir() and (root / "val").is_dir()


def lesson_settings(lesson: str | int, profile: str | None = None) -> LessonSettings:
    """The settings of `lesson` ("01".."09") in `profile` (quick, full; None: current_profile())."""
    key = _lesson_key(lesson)
    if profile is None:
        profile = current_profile()
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    model, model_kwargs = _MODELS.get(key, ("", {}))
    if profile == "quick":
        resolution, train_subset, val_subset = _QUICK[key]
        resolutions = REFERENCE_09_RESOLUTIONS if key == "09" else (resolution,)
        return LessonSettings(profile=profile, lesson=key, dataset="sample", resolution=resolution,
                              resolutions=resolutions, epochs=_QUICK_STEPS.get(key, (2, 0))[0],
                              batch_size=192 if key == "09" else _QUICK_STEPS.get(key, (0, 64))[1],
                              train_subset=train_subset, val_subset=val_subset, device="cpu",
                              model=model, model_kwargs={**model_kwargs, **_QUICK_MODEL_CHANGES.get(key, {})},
                              recipe=recipe_for(model))
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if key == "09":  # the course's experiment: 5 resolutions, 10 epochs, batch 192, Animals-10
        dataset = "animals10" if _animals10_present() else "fashion_mnist"
        per_class, epochs = _full_shrink(10)
        return LessonSettings(profile=profile, lesson=key, dataset=dataset, resolution=224,
                              resolutions=FULL_09_RESOLUTIONS, epochs=epochs, batch_size=192,
                              train_subset=per_class, val_subset=per_class, device=device,
                              download=dataset == "fashion_mnist")
    resolution, epochs = _FULL[key]
    per_class, epochs = _full_shrink(epochs)
    return LessonSettings(profile=profile, lesson=key, dataset="fashion_mnist", resolution=resolution,
                          resolutions=(resolution,), epochs=epochs, batch_size=128, train_subset=per_class,
                          val_subset=per_class, device=device, model=model, model_kwargs=dict(model_kwargs),
                          download=True, recipe=recipe_for(model))


def _full_shrink(epochs: int) -> tuple[int | None, int]:
    """``$LECTURE_FULL_SHRINK="N,E"``: the full profile on N images per class for E epochs (to try its path on a CPU)."""
    value = os.environ.get("LECTURE_FULL_SHRINK", "").strip()
    if not value:
        return None, epochs
    parts = value.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"LECTURE_FULL_SHRINK must be 'IMAGES_PER_CLASS,EPOCHS' (two integers >= 1), got {value!r}")
    return int(parts[0]), int(parts[1])
