"""Cached data path: decode each image once, keep it on the training device, augment per image there.

The course's pipeline (:func:`lecture_utils.data.define_transform` + ``DataLoader``) decodes,
resizes and augments every image with PIL, in the main process, every epoch. Here each split is
decoded once into a uint8 tensor at its stored size (the *cache*: Fashion-MNIST's 28-px grey images
as they are; photos shrunk once, PIL bilinear as ``v2.Resize`` does, to the largest resolution used);
the cache moves to the training device, and every batch is resized there to its loader's resolution,
augmented by :func:`device_augment` (kornia, one draw per image, the ranges of
:mod:`lecture_utils.augment` that the course's transform reads), then normalised. Loaders of several
resolutions share one copy of each split's cache (on the device, or pinned in host memory when it does
not fit: :func:`place_cache`). Build the loaders with ``data.make_loaders(..., cached=True)``. Nothing
here sets a process-wide flag: the trainer turns on ``cudnn.benchmark`` for the run it owns
(``ModelTrainer.fit``).

What differs from the course's pipeline is the order of the work, not the distribution: the
resize, the affine and the colour jitter work in float32 (the course's on the original in PIL's
uint8 arithmetic, so resized pixels differ by at most one grey level); kornia draws the order of
the four colour operations once per batch.
``tests/test_cached.py`` checks that the augmented images' per-channel statistics match.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, Subset, TensorDataset

from lecture_utils import LectureWarning
from lecture_utils._util import atomic_write, epoch_generator, positive_int, resolve_device
from lecture_utils.augment import AugmentSpec, augment_spec

__all__ = ["ImageCache", "build_cache", "place_caches", "place_cache", "device_augment", "CachedLoader",
           "StreamingFallbackWarning"]

CACHE_FORMAT = 3  # bump when the cached bytes would change (decode or resize rule, file layout)


class StreamingFallbackWarning(LectureWarning):
    """The image cache does not fit the device's memory; batches are copied from host memory."""


def device_augment(augment: str | bool | AugmentSpec | None) -> torch.nn.Module | None:
    """``augment`` for a float batch ``[B, 3, H, W]`` in [0, 1] on any device (kornia), or None.

    Every image gets its own draw of every parameter, as in ``data.define_transform``; one
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


@dataclass
class ImageCache:
    """Every image once, at its stored size: uint8 ``[N, C, S, S]`` (C = 1 for grey, 3 for colour), labels int64 ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    decoded: int  # images decoded by the call that built this cache (0 when read from disk or an array)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes of the images (one byte per pixel and channel)."""
        return int(self.images.numel())


def _decode(dataset: Dataset, index: int, size: int, mode: str) -> tuple[np.ndarray, int] | None:
    """Item `index` of `dataset` as a uint8 ``[C, size, size]`` array (resized only if it is not that size)."""
    item = dataset[index]
    if item is None:  # datasets.ImageFolderDataset returns None (with a warning) for unreadable files
        return None
    image, label = item
    if not isinstance(image, Image.Image):
        raise ValueError("build_cache needs a data set whose items are (PIL image, label); "
                         "create it with transform=None")
    image = image.convert(mode)
    if image.size != (size, size):  # the course's Resize((r, r)): PIL bilinear, aspect not kept
        image = image.resize((size, size), Image.BILINEAR)
    pixels = np.asarray(image)
    return (pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)), int(label)


def _stored_form(dataset: Dataset, indices: Sequence[int], max_resolution: int | None) -> tuple[int, str]:
    """(side, PIL mode) every image is kept at: the first readable image's, if square and no larger than needed."""
    for i in indices:
        item = dataset[i]
        if item is not None:
            image = item[0]
            mode = "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"
            width, height = image.size
            if width == height and (max_resolution is None or width <= max_resolution):
                return width, mode
            if max_resolution is None:
                raise ValueError(f"images of {width} x {height} px need a resolution to be cached at; "
                                 "give max_resolution")
            return int(max_resolution), mode
    raise ValueError("build_cache: the data set has no readable images")


def _cache_file(dataset: Dataset, indices: Sequence[int], size: int, mode: str, cache_dir: Path) -> Path | None:
    """Where a folder data set's cache is kept: named by its files' paths, sizes and mtimes; else None."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None
    digest = hashlib.sha256(f"format={CACHE_FORMAT} size={size} mode={mode}".encode())
    for i in indices:
        path, label = samples[i]
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{label}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return Path(cache_dir) / f"{digest.hexdigest()[:24]}.pt"


def build_cache(dataset: Dataset, max_resolution: int | None = None, *, indices: Sequence[int] | None = None,
                cache_dir: str | Path | None = None, num_threads: int = 0) -> ImageCache:
    """Every item of `dataset` (``(PIL image, label)``) once, as uint8, at its stored size.

    Square images no larger than `max_resolution` (Fashion-MNIST's 28 px) are kept as they are;
    larger or non-square ones (photos) are resized once to `max_resolution`, the largest input the
    loaders will make from them. A data set that holds its grey pixels as an array
    (``datasets.FashionMNISTRaw``) is not decoded at all and keeps one channel. `num_threads` decode in parallel (0: one
    per core). With `cache_dir`, a folder data set's cache is saved there and read back next time.
    """
    if max_resolution is not None:
        positive_int(max_resolution, "max_resolution")
    positive_int(num_threads, "num_threads (0: one per CPU core)", minimum=0)
    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    while isinstance(dataset, Subset):
        indices = [int(dataset.indices[i]) for i in indices]
        dataset = dataset.dataset
    pixels = getattr(dataset, "images", None)
    if isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 3 \
            and pixels.shape[1] == pixels.shape[2] and (max_resolution is None or pixels.shape[1] <= max_resolution):
        # grey square images held in memory (Fashion-MNIST's idx files): slice, no decoding
        rows = np.asarray(indices, dtype=np.int64)
        images = torch.from_numpy(pixels[rows][:, None])  # indexing copies: 47 MB for all of Fashion-MNIST
        targets = torch.as_tensor(np.asarray(dataset.targets)[rows], dtype=torch.int64)  # type: ignore[attr-defined]
        return ImageCache(images, targets, decoded=0)
    size, mode = _stored_form(dataset, indices, max_resolution)
    path = _cache_file(dataset, indices, size, mode, cache_dir) if cache_dir is not None else None
    if path is not None and path.is_file():
        saved = torch.load(path, mmap=True, weights_only=True)
        return ImageCache(saved["images"], saved["labels"], decoded=0)
    with ThreadPoolExecutor(max_workers=int(num_threads) or os.cpu_count() or 1) as pool:
        items = [item for item in pool.map(lambda i: _decode(dataset, i, size, mode), indices) if item is not None]
    if not items:
        raise ValueError("build_cache: the data set has no readable images")
    images = torch.from_numpy(np.stack([pixels for pixels, _ in items]))
    cache = ImageCache(images, torch.tensor([label for _, label in items], dtype=torch.int64), decoded=len(indices))
    if path is not None:
        atomic_write(path, lambda tmp: torch.save({"images": images, "labels": cache.labels}, tmp))
    return cache


def place_caches(nbytes: int, device: torch.device, what: str = "the image cache") -> bool:
    """Whether caches of `nbytes` in all may live on `device` (always on the CPU); says where they go on CUDA.

    On CUDA the budget is :func:`lecture_utils.device.cache_budget`: a quarter of the GPU's memory,
    and no more than is free counting the blocks PyTorch holds. Over it, the caches stay in pinned host
    memory and each batch is copied over, with a StreamingFallbackWarning.
    """
    from lecture_utils.device import DEVICE_CACHE_FRACTION, cache_budget, device_free_bytes

    if device.type != "cuda":
        return True
    budget = cache_budget(device)
    total = torch.cuda.mem_get_info(device)[1]
    fits = nbytes <= budget
    print(f"{what}: {nbytes / 2**20:.0f} MiB {'on ' + str(device) if fits else 'in host memory'} (budget "
          f"{budget / 2**30:.2f} GiB: {DEVICE_CACHE_FRACTION:.0%} of {total / 2**30:.1f} GiB, at most the "
          f"{device_free_bytes(device) / 2**30:.2f} GiB free including what PyTorch holds unused)")
    if not fits:
        warnings.warn(f"{what} ({nbytes / 2**30:.2f} GiB) is over the device's cache budget ({budget / 2**30:.2f} "
                      "GiB): it stays in host memory and each batch is copied over (slower)",
                      StreamingFallbackWarning, stacklevel=2)
    return fits


def place_cache(images: torch.Tensor, labels: Sequence[int] | torch.Tensor, device: torch.device,
                resident: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` where a loader reads them: on `device` when `resident`, else in host memory,
    page-locked (pinned) when `device` is CUDA. A tensor already there is returned as it is, never copied
    again, so loaders of several resolutions given one placed cache share it.
    """
    labels = torch.as_tensor(labels, dtype=torch.int64)
    if resident:  # .to returns the tensor itself when it is already on the device
        return images.to(device), labels.to(device)
    if device.type != "cuda":
        return images, labels
    # pinned host memory lets each batch's copy run asynchronously; a tensor already pinned (the one
    # make_loaders placed for every resolution of the split) is kept, so there is one pinned copy per split
    return tuple(t if t.is_pinned() else t.pin_memory() for t in (images, labels))  # type: ignore[return-value]


def _pinned_empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """A page-locked host tensor; torch's caching host allocator reuses a block once its copy has finished."""
    return torch.empty(tuple(shape), dtype=dtype, pin_memory=True)


def _gather(source: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``source[rows]``, kept page-locked when `source` is.

    ``index_select`` allocates its result in pageable memory even from a pinned source, and a
    ``.to(cuda, non_blocking=True)`` from pageable memory waits for the copy; gathering into a
    pinned buffer keeps the copy asynchronous (it overlaps the previous batch's compute).
    """
    if source.device.type != "cpu" or not source.is_pinned():
        return source.index_select(0, rows)
    out = _pinned_empty((len(rows), *source.shape[1:]), source.dtype)
    return torch.index_select(source, 0, rows, out=out)


class CachedLoader:
    """Batches ``(x, y)`` from a uint8 cache at its stored size: x float32 ``[B, 3, R, R]`` normalised, y int64.

    Each batch is taken from the cache, made 3-channel (grey images), resized to `resolution` (None: the
    stored size) with bilinear interpolation on the device (antialiased when shrinking, as PIL does),
    augmented there (kornia, one draw per image) and normalised; so loaders of several resolutions
    share one cache. Shuffles and augments with a generator seeded by (seed, epoch): ``set_epoch(e)``
    picks epoch e's batches, and each pass moves on to the next epoch. `resident` says whether the
    cache lives on `device` (None: decided by :func:`place_caches`); otherwise it stays in pinned host
    memory and each batch is copied over.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, resolution: int | None = None,
                 batch_size: int = 192, shuffle: bool = False, augment: str | bool | AugmentSpec | None = None,
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 device: str | torch.device | None = None, seed: int = 0, drop_last: bool = False,
                 resident: bool | None = None) -> None:
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] not in (1, 3) or images.dtype != torch.uint8 or not len(images):
            raise ValueError(f"images must be a uint8 [N, C, S, S] tensor with C 1 or 3 and N >= 1, got "
                             f"{images.dtype} {tuple(images.shape)}")
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("mean and std must have 3 values each, std > 0")
        self.resolution = int(images.shape[-1]) if resolution is None else positive_int(resolution, "resolution")
        self.batch_size = positive_int(batch_size, "batch_size")
        self.shuffle, self.drop_last, self.seed, self.epoch = bool(shuffle), bool(drop_last), int(seed), 0
        self.device = resolve_device(device)
        self.augment = augment_spec(augment)
        self._augment = device_augment(self.augment)
        if self.drop_last and len(images) < self.batch_size:
            raise ValueError(f"drop_last=True with {len(images)} images and batch_size {self.batch_size} "
                             "gives no batch; lower batch_size")
        self.nbytes = images.numel()
        self.resident = place_caches(self.nbytes, self.device) if resident is None else bool(resident)
        self.images, self.labels = place_cache(images, labels, self.device, self.resident)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._inv_std = 1.0 / torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    @property
    def dataset(self) -> TensorDataset:
        """The cached (uint8, stored-size, un-augmented) images and labels, e.g. for ``len(loader.dataset)``."""
        return TensorDataset(self.images, self.labels)

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the shuffle and augmentation draws of `epoch`."""
        self.epoch = positive_int(epoch, "epoch", minimum=0)

    def with_augment(self, augment: str | bool | AugmentSpec | None, seed: int = 0) -> CachedLoader:
        """The same images in the same order, augmented with `augment` (e.g. validation as in training)."""
        twin = copy.copy(self)
        twin.augment, twin.seed, twin.epoch, twin.shuffle = augment_spec(augment), int(seed), 0, False
        twin._augment = device_augment(twin.augment)
        return twin

    def _to_input(self, stored: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, C, S, S]`` -> float ``[B, 3, R, R]`` in [0, 1] on the device."""
        x = stored.to(self.device, non_blocking=True).float().div_(255.0)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=self.resolution < x.shape[-1])
        return x.contiguous()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        generator = epoch_generator(self.seed, epoch)
        n = len(self.images)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        order = order.to(self.images.device)  # one copy per epoch, not one per batch
        # kornia draws from torch's global generator: give it this epoch's own state, and put back the caller's
        rng = generator.get_state() if self._augment is not None else None
        for start in range(0, len(self) * self.batch_size if self.drop_last else n, self.batch_size):
            rows = order[start:start + self.batch_size]
            x = self._to_input(_gather(self.images, rows))
            y = _gather(self.labels, rows).to(self.device, non_blocking=True)
            if self._augment is not None:
                with torch.random.fork_rng(devices=[]):
                    torch.set_rng_state(rng)
                    x = self._augment(x)
                    rng = torch.get_rng_state()
            yield (x - self._mean).mul_(self._inv_std), y
