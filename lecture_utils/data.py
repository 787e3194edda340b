"""What a lesson feeds its network: transforms, the named augmentations, and the loaders.

Loaders are built once per input resolution and keyed as the course keys them (``"R224"``,
``"R192"``, ...), from the data sets of :mod:`lecture_utils.datasets` (whose names this module
also exports, so that a lesson needs one import).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2

from lecture_utils._util import positive_int, resolve_device
from lecture_utils.datasets import (  # noqa: F401  (re-exported: lessons import them from here)
    ANIMALS10_STATS, ANIMALS10_TRANSLATION, CIFAR10_STATS, DATASET_NAMES, DEFAULT_STATS, FASHION_MNIST_CLASSES,
    FASHION_MNIST_STATS, SAMPLE_STATS, SPLITS, FashionMNISTRaw, ImageFolderDataset,
    MissingClassWarning, UnreadableImageWarning, _check_name, balanced_indices, collate_skip_none,
    compute_mean_std, data_root, dataset_targets, default_root, find_fashion_mnist_raw, get_dataset,
    prepare_animals10, read_idx)

# ---------------------------------------------------------------------------------------------
# transforms


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of one augmentation (flip, ColorJitter, RandomAffine), with torchvision's meaning.

    torchvision (:func:`define_transform`) and kornia (:func:`device_augment`) check the ranges.
    """

    flip_p: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    degrees: tuple[float, float] = (30.0, 70.0)
    translate: tuple[float, float] = (0.1, 0.3)
    scale: tuple[float, float] = (0.5, 0.75)


# The augmentations by name, defined once: define_transform (PIL images, torchvision v2, one draw per
# image in the loader) and device_augment (a batch on the training device, kornia, one draw per image)
# both read them.
AUGMENTATIONS: dict[str, AugmentSpec | None] = {
    # the course's: every image turned 30-70 degrees the same way, shrunk to 0.5-0.75, shifted up
    # to 10 % across and 30 % down or up; saturation and hue do nothing to a grey image
    "course": AugmentSpec(),
    # flips, mild brightness/contrast, a small affine centred on the identity
    "light": AugmentSpec(brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, degrees=(-10.0, 10.0),
                         translate=(0.1, 0.1), scale=(0.9, 1.1)),
    "none": None,
}


def augment_spec(augment: str | bool | AugmentSpec | None) -> AugmentSpec | None:
    """The augmentation named ``augment`` (course, light, none); True means course, False/None none."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return AUGMENTATIONS["course"]
    if isinstance(augment, AugmentSpec):
        return augment
    if isinstance(augment, str) and augment in AUGMENTATIONS:
        return AUGMENTATIONS[augment]
    raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)} (or True/False), got {augment!r}")


def augment_name(augment: str | bool | AugmentSpec | None) -> str:
    """The name under which results record ``augment``: course, light, none (or custom)."""
    spec = augment_spec(augment)
    return next((name for name, s in AUGMENTATIONS.items() if s == spec), "custom")


def device_augment(augment: str | bool | AugmentSpec | None) -> torch.nn.Module | None:
    """``augment`` for a float batch ``[B, 3, H, W]`` in [0, 1] on any device (kornia), or None.

    Every image gets its own draw of every parameter, as in :func:`define_transform`; one
    difference: kornia draws the order of the four colour operations once per batch, torchvision
    once per image. The affine acts on the resized image (torchvision's on the original).
    """
    spec = augment_spec(augment)
    if spec is None:
        return None
    import kornia.augmentation as K

    return torch.nn.Sequential(
        K.RandomHorizontalFlip(p=spec.flip_p),
        K.ColorJitter(brightness=spec.brightness, contrast=spec.contrast, saturation=spec.saturation,
                      hue=spec.hue, p=1.0),
        K.RandomAffine(degrees=spec.degrees, translate=spec.translate, scale=spec.scale, p=1.0))


def define_transform(resolution: int, normal_val: Mapping[str, Sequence[float]] | None,
                     augment: str | bool | AugmentSpec | None = None) -> v2.Compose:
    """[flip, colour jitter, affine] + resize to `resolution`, to float in [0, 1], normalise.

    `augment` names one of ``AUGMENTATIONS`` (True: the course's). Grayscale images become 3
    channels. ``normal_val=None`` skips the normalisation.
    """
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution <= 0:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    spec = augment_spec(augment)
    steps: list[Any] = [v2.RGB()]
    if spec is not None:
        b, c, s = spec.brightness, spec.contrast, spec.saturation
        steps += [
            v2.RandomHorizontalFlip(p=spec.flip_p),
            v2.ColorJitter(brightness=b or None, contrast=c or None, saturation=s or None, hue=spec.hue or None),
            v2.RandomAffine(degrees=spec.degrees, translate=spec.translate, scale=spec.scale),
        ]
    steps += [
        v2.Resize((int(resolution), int(resolution))),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
    ]
    if normal_val is not None:
        if "mean" not in normal_val or "std" not in normal_val:
            raise ValueError("normal_val must have the keys 'mean' and 'std'")
        steps.append(v2.Normalize(mean=list(normal_val["mean"]), std=list(normal_val["std"])))
    return v2.Compose(steps)


def resolution_keys(resolutions: int | Iterable[int]) -> dict[str, int]:
    """Key each resolution as the course does: ``[224, 192] -> {"R224": 224, "R192": 192}``."""
    if isinstance(resolutions, int):
        resolutions = [resolutions]
    keys = {}
    for r in resolutions:
        if int(r) != r or r <= 0:
            raise ValueError(f"resolutions must be positive integers, got {r!r}")
        keys[f"R{int(r)}"] = int(r)
    if not keys:
        raise ValueError("resolutions must name at least one resolution")
    return keys

# ---------------------------------------------------------------------------------------------
# loaders


def _split_subsets(subset: Any) -> dict[str, int | None]:
    if subset is None or isinstance(subset, int):
        return {"train": subset, "val": subset}
    if isinstance(subset, Mapping):
        unknown = set(subset) - set(SPLITS)
        if unknown:
            raise ValueError(f"subset keys must be among {', '.join(SPLITS)}, got {sorted(unknown)}")
        return {s: subset.get(s) for s in SPLITS}
    if isinstance(subset, (tuple, list)) and len(subset) == 2:
        return {"train": subset[0], "val": subset[1]}
    raise ValueError("subset must be None, an int (images per class), a (train, val) pair "
                     "or a mapping {'train': n, 'val': m}")


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of epoch `epoch`'s shuffle (and, cached, augmentation): a function of both only."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


class EpochSampler(torch.utils.data.Sampler[int]):
    """A shuffle that depends on (seed, epoch) only: ``set_epoch(e)`` picks epoch e's order.

    Each pass moves on to the next epoch, so a plain ``for`` over the epochs reshuffles too.
    ``ModelTrainer`` calls ``set_epoch`` before every epoch, which is what makes resuming exact.
    """

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seed, self.epoch = int(size), int(seed), 0

    def __len__(self) -> int:
        return self.size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = positive_int(epoch, "epoch", minimum=0)

    def __iter__(self) -> Iterator[int]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        return iter(torch.randperm(self.size, generator=epoch_generator(self.seed, epoch)).tolist())


def make_loaders(name: str, resolutions: int | Iterable[int], batch_size: int = 192,
                 normal_val: Mapping[str, Sequence[float]] | None = None,
                 augment: str | bool | AugmentSpec | None = True,
                 root: str | Path | None = None, subset: Any = None, seed: int = 0,
                 num_workers: int = 0, download: bool = False, *, cached: bool = False,
                 device: str | torch.device | None = None, cache_dir: str | Path | None = None,
                 drop_last: bool = False) -> dict[str, dict[str, Any]]:
    """Loaders per split and resolution: ``{"train": {"R32": loader, ...}, "val": {...}}``.

    `normal_val` defaults to the data set's own statistics; `augment` applies to train only;
    `subset` is images per class (int for both splits, or ``(train, val)`` / a mapping); the train
    loaders shuffle by (`seed`, epoch) and have ``set_epoch``. ``cached=False``: DataLoaders that
    read, resize and augment every image every epoch (torchvision, `num_workers` processes).
    ``cached=True``: each image decoded once for all resolutions (`num_workers` threads, 0: one per
    core, kept in `cache_dir` when given), kept on `device` and augmented there per image
    (:class:`lecture_utils.fastdata.FastLoader`).
    """
    _check_name(name)
    positive_int(batch_size, "batch_size")
    positive_int(num_workers, "num_workers", minimum=0)
    keys = resolution_keys(resolutions)
    stats = normal_val if normal_val is not None else DEFAULT_STATS[name]
    if "mean" not in stats or "std" not in stats:
        raise ValueError("normal_val must have the keys 'mean' and 'std'")
    per_split = _split_subsets(subset)
    if cached:
        from lecture_utils.fastdata import FastLoader, build_cache

        device = resolve_device(device)
    loaders: dict[str, dict[str, Any]] = {"train": {}, "val": {}}
    for split in SPLITS:
        train = split == "train"
        base = get_dataset(name, split, transform=None, root=root, download=download)
        indices = None
        if per_split[split] is not None:
            indices = balanced_indices(dataset_targets(base), per_split[split], seed)
        if cached:
            cache = build_cache(base, list(keys.values()), indices=indices, cache_dir=cache_dir,
                                num_threads=num_workers)
        for key, size in keys.items():
            if cached:
                loaders[split][key] = FastLoader(
                    cache.images[size], cache.labels, batch_size=batch_size, shuffle=train,
                    augment=augment if train else None, mean=stats["mean"], std=stats["std"], device=device,
                    seed=seed, drop_last=drop_last and train)
                continue
            dataset = copy.copy(base)  # shares the file list / pixel arrays, own transform
            dataset.transform = define_transform(size, stats, augment=augment if train else None)
            if indices is not None:
                dataset = Subset(dataset, indices)
            loaders[split][key] = DataLoader(
                dataset, batch_size=int(batch_size), sampler=EpochSampler(len(dataset), seed) if train else None,
                num_workers=num_workers, collate_fn=collate_skip_none, drop_last=drop_last and train,
                pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0)
    return loaders
