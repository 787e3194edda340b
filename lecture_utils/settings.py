"""Run profiles: what each lesson trains on, how long, and where.

``LECTURE_PROFILE=quick`` trains on the embedded sample at a small resolution on the CPU (what CI
runs: a lesson's training takes about a minute on 2 cores); ``LECTURE_PROFILE=full`` trains on the
real data set at the lesson's resolution on a GPU. Without the variable: ``full`` when CUDA is
available, else ``quick``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    lr: float


# quick profile, per lesson: (resolution, train_subset, val_subset). One training step of 64
# images on one CPU core (float32, measured): AlexNet at 64 px 1.3 s; at 32 px VGG16 5 s,
# WRN-16-4 1.9 s, ResNet-50 / ResNeXt-50 1.0 s, GoogLeNet / ResNet-18 0.4 s, MobileNets 0.1 s.
# The subsets keep two epochs (3,000 sample images each without a subset) near a minute on 2 cores.
_QUICK = {
    "01": (64, 150, None),   # AlexNet needs >= 63 px to reach its last pooling layer
    "02": (32, 50, 20),      # VGG16: the heaviest per image
    "03": (32, None, None),  # GoogLeNet
    "04": (32, 150, None),   # ResNet (up to ResNet-50)
    "05": (32, 150, None),   # ResNeXt-50
    "06": (32, 100, 30),     # Wide ResNet
    "07": (32, None, None),  # MobileNet v1
    "08": (32, None, None),  # MobileNetV2
    "09": (12, None, None),  # a live rerun of the cheapest condition of the stored reference run
}
# Lesson 09's reference run (data/reference/): Fashion-MNIST's own 28 px down to 12 px, 7:6:5:4:3 as
# the course's 224:192:160:128:96
REFERENCE_09_RESOLUTIONS = (28, 24, 20, 16, 12)
_FULL_09_RESOLUTIONS = (224, 192, 160, 128, 96)


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
    if profile == "quick":
        resolution, train_subset, val_subset = _QUICK[key]
        resolutions = REFERENCE_09_RESOLUTIONS if key == "09" else (resolution,)
        return LessonSettings(profile=profile, lesson=key, dataset="sample", resolution=resolution,
                              resolutions=resolutions, epochs=2, batch_size=192 if key == "09" else 64,
                              train_subset=train_subset, val_subset=val_subset, device="cpu", lr=1e-3)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if key == "09":  # the course's experiment: 5 resolutions, 10 epochs, batch 192, Animals-10
        dataset = "animals10" if _animals10_present() else "fashion_mnist"
        return LessonSettings(profile=profile, lesson=key, dataset=dataset, resolution=224,
                              resolutions=_FULL_09_RESOLUTIONS, epochs=10, batch_size=192,
                              train_subset=None, val_subset=None, device=device, lr=1e-3)
    return LessonSettings(profile=profile, lesson=key, dataset="fashion_mnist", resolution=224,
                          resolutions=(224,), epochs=5, batch_size=128, train_subset=None,
                          val_subset=None, device=device, lr=1e-3)
