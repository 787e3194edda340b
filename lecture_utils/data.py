"""What a lesson feeds its network: transforms, the sampler, and the loaders.

Loaders are built once per input resolution and keyed as the course keys them (``"R224"``,
``"R192"``, ...), from the data sets of :mod:`lecture_utils.datasets`, augmented with the named
augmentations of :mod:`lecture_utils.augment`; ``make_loaders(cached=True)`` builds the cached
ones of :mod:`lecture_utils.cached`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2

from lecture_utils._util import epoch_generator, positive_int, resolve_device
from lecture_utils.augment import AugmentSpec, augment_spec
from lecture_utils.cached import CachedLoader, build_cache, place_cache, place_caches
from lecture_utils.datasets import (DEFAULT_STATS, SPLITS, balanced_indices, check_dataset_name, collate_skip_none,
                                    dataset_targets, get_dataset)
from lecture_utils.holdout import heldout_split

# ---------------------------------------------------------------------------------------------
# transforms


def define_transform(resolution: int, normal_val: Mapping[str, Sequence[float]] | None,
                     augment: str | bool | AugmentSpec | None = None) -> v2.Compose:
    """[flip, colour jitter, affine] + resize to `resolution`, to float in [0, 1], normalise.

    `augment` names one of :data:`lecture_utils.augment.AUGMENTATIONS` (True: the course's).
    Grayscale images become 3 channels. `normal_val` (the course's name) holds the normalisation
    statistics, ``{"mean": [r, g, b], "std": [r, g, b]}``; None skips the normalisation.
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
                 holdout: bool = False) -> dict[str, dict[str, Any]]:
    """Loaders per split and resolution: ``{"train": {"R32": loader, ...}, "test": {...}}``.

    `normal_val` (the course's name) holds the normalisation statistics ``{"mean": [...], "std":
    [...]}`` and defaults to the data set's own; `augment` applies to train only;
    `subset` is images per class (int for both splits, or ``(train, val)`` / a mapping); the train
    loaders shuffle by (`seed`, epoch) and have ``set_epoch``. ``cached=False``: DataLoaders that
    read, resize and augment every image every epoch (torchvision, `num_workers` processes).
    ``cached=True``: each split decoded once and kept at its stored size (`num_workers` threads, 0: one
    per core; kept in `cache_dir` when given), on `device` when it fits the cache budget, and resized
    and augmented there per batch for every resolution (:class:`lecture_utils.cached.CachedLoader`).
    "test" is the data set's evaluation split (its ``val/`` folder, Fashion-MNIST's t10k files: the official
    test split). ``holdout=True``: ``{"train", "heldout", "test"}``, where "heldout" is the held-out part of
    the training split (:mod:`lecture_utils.holdout`), "train" is drawn from the rest only; the subset's
    second count caps both "heldout" and "test".
    """
    check_dataset_name(name)
    positive_int(batch_size, "batch_size")
    positive_int(num_workers, "num_workers", minimum=0)
    keys = resolution_keys(resolutions)
    stats = normal_val if normal_val is not None else DEFAULT_STATS[name]
    if "mean" not in stats or "std" not in stats:
        raise ValueError("normal_val must have the keys 'mean' and 'std'")
    bases = {split: get_dataset(name, split, transform=None, root=root, download=download) for split in SPLITS}
    sources = _sources(bases, _split_subsets(subset), seed, holdout)
    common = {"keys": keys, "batch_size": int(batch_size), "augment": augment, "stats": stats, "seed": seed}
    if cached:
        what = "train and test" if not holdout else "train, held-out and test"
        return _cached_loaders(bases, sources, resolve_device(device), cache_dir, num_workers,
                               f"{name} cache ({what})", **common)
    return _plain_loaders(bases, sources, num_workers, **common)


def _sources(bases: Mapping[str, Any], per_split: Mapping[str, int | None], seed: int,
             holdout: bool) -> dict[str, tuple[str, list[int] | None]]:
    """Each loader's source: (the data set split it reads, the indices it reads of it, or None for all)."""
    # the data set's folders are train/ and val/ (the course's layout); val/ is the test split
    sources = {name: (split, None if per_split[split] is None
                      else balanced_indices(dataset_targets(bases[split]), per_split[split], seed))
               for name, split in (("train", "train"), ("test", "val"))}
    if not holdout:
        return sources
    targets = dataset_targets(bases["train"])
    rest, held = heldout_split(targets)
    return {"train": ("train", pick_per_class(targets, rest, per_split["train"], seed)),
            "heldout": ("train", pick_per_class(targets, held, per_split["val"], seed)), "test": sources["test"]}


def _cached_loaders(bases: Mapping[str, Any], sources: Mapping[str, tuple[str, list[int] | None]],
                    device: torch.device, cache_dir: str | Path | None, num_workers: int, what: str, *,
                    keys: Mapping[str, int], batch_size: int, augment: Any, stats: Mapping[str, Sequence[float]],
                    seed: int) -> dict[str, dict[str, Any]]:
    """Each split decoded once at its stored size; every resolution made from it per batch, on the device."""
    caches = {split: build_cache(bases[base], max(keys.values()), indices=rows, cache_dir=cache_dir,
                                 num_threads=num_workers) for split, (base, rows) in sources.items()}
    resident = place_caches(sum(c.nbytes for c in caches.values()), device, what)
    loaders: dict[str, dict[str, Any]] = {split: {} for split in sources}
    for split, cache in caches.items():
        train = split == "train"
        # placed once here: every resolution's loader reads this one copy (five loaders each moving
        # the cache themselves would hold five copies on the GPU, or pin five in host memory)
        images, labels = place_cache(cache.images, cache.labels, device, resident)
        for key, size in keys.items():
            loaders[split][key] = CachedLoader(
                images, labels, resolution=size, batch_size=batch_size, shuffle=train,
                augment=augment if train else None, mean=stats["mean"], std=stats["std"], device=device,
                seed=seed, resident=resident)
    return loaders


def _plain_loaders(bases: Mapping[str, Any], sources: Mapping[str, tuple[str, list[int] | None]],
                   num_workers: int, *, keys: Mapping[str, int], batch_size: int, augment: Any,
                   stats: Mapping[str, Sequence[float]], seed: int) -> dict[str, dict[str, Any]]:
    """torchvision DataLoaders that read, resize and augment every image every epoch (the course's path)."""
    loaders: dict[str, dict[str, Any]] = {split: {} for split in sources}
    for split, (base, rows) in sources.items():
        train = split == "train"
        for key, size in keys.items():
            dataset = copy.copy(bases[base])  # shares the file list / pixel arrays, own transform
            dataset.transform = define_transform(size, stats, augment=augment if train else None)
            if rows is not None:
                dataset = Subset(dataset, rows)
            loaders[split][key] = DataLoader(
                dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), seed) if train else None,
                num_workers=num_workers, collate_fn=collate_skip_none,
                pin_memory=torch.cuda.is_available(), persistent_workers=num_workers > 0)
    return loaders


def pick_per_class(targets: Sequence[int], among: Sequence[int], per_class: int | None, seed: int) -> list[int] | None:
    """Indices into `targets`: `per_class` of each class drawn with `seed` from `among` (all of it for None)."""
    if per_class is None:
        return list(among)
    return [among[i] for i in balanced_indices([targets[j] for j in among], per_class, seed)]
