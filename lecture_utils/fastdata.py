"""Fast data path: decode each image once, keep it on the training device, augment per sample there.

The course's pipeline (:func:`lecture_utils.data.define_transform` + ``DataLoader``) decodes and
augments every image with PIL, in the main process, every epoch. Here each image is decoded once
into a uint8 tensor ``[N, 3, R, R]`` (the *cache*), the cache is kept on the training device when
it fits a memory budget, and every batch is augmented there with one random draw per image,
normalised and handed out channels_last. A cache that does not fit is streamed batch by batch
from (pinned) host memory instead, with a warning.

Same as the course's ``define_transform(R, stats, augment=True)``:

* the distribution of every random parameter. Flip with p = 0.5. Brightness, contrast and
  saturation factors uniform in [0.6, 1.4], hue shift uniform in [-0.1, 0.1], the four colour
  operations applied in a random order drawn per image (``ColorJitter`` draws a permutation per
  call, and the course calls it once per image). Affine: angle uniform in [30, 70] degrees,
  horizontal shift uniform in +-0.1 x width and vertical shift in +-0.3 x height (torchvision's
  ``translate=(a, b)``: maximum fractions, horizontal first), rounded to whole pixels of the
  original image as torchvision rounds them; scale uniform in [0.5, 0.75]; no shear; rotation
  about the image centre; fill 0 (black, before normalisation).
* the geometry. The affine map is built in the original image's own pixel frame (a 300 x 225
  image turns as a 300 x 225 image), then carried through the non-uniform resize to R x R, so a
  pixel lands where the course's Resize puts it.
* validation images: PIL bilinear resize to R x R, then /255 and normalise; the same numbers as
  the course's transform.

Different (the order of resampling, not the distribution):

* the course applies the affine to the full-size image with nearest-neighbour sampling and then
  resizes (PIL, antialiased); here the image is resized once at decode time and the affine
  resamples the R x R image bilinearly (``grid_sample``, zeros outside);
* the colour jitter runs on the R x R image in float32, the course's on the full-size image in
  PIL's uint8 arithmetic. Brightness and saturation act per pixel and commute with the resize;
  contrast blends with the mean grey of the resized image (equal up to rounding); hue differs
  only where colours mix across an edge.

``tests/test_fastdata.py`` checks that per-channel mean and std of augmented images match the
course pipeline's on the same images.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import Dataset, Subset

from lecture_utils import LectureWarning
from lecture_utils.data import AUGMENTATIONS, AugmentSpec, augment_spec

__all__ = [
    "AugmentSpec",
    "COURSE_AUGMENT",
    "StreamingFallbackWarning",
    "ImageCache",
    "build_cache",
    "memory_budget",
    "sample_augment_params",
    "affine_theta",
    "color_jitter",
    "augment_batch",
    "FastLoader",
    "make_fast_loaders",
]

CACHE_FORMAT = 1  # bump when the cached bytes would change (decode or resize rule)
# Grey as PIL's convert("L") weighs the channels (ITU-R 601-2 luma); the course's jitter runs in PIL.
_GREY = (0.299, 0.587, 0.114)


class StreamingFallbackWarning(LectureWarning):
    """The image cache does not fit the device's memory budget; batches are streamed from the host."""


# ---------------------------------------------------------------------------------------------
# augmentation: parameters


COURSE_AUGMENT = AUGMENTATIONS["course"]


def _uniform(low: float, high: float, n: int, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def sample_augment_params(sizes: torch.Tensor, spec: AugmentSpec = COURSE_AUGMENT,
                          generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """One independent draw of every augmentation parameter per image (CPU tensors).

    `sizes` is ``[B, 2]``: each image's original (width, height), which sets its shift range.
    """
    if sizes.ndim != 2 or sizes.shape[1] != 2:
        raise ValueError(f"sizes must have shape [B, 2] (width, height), got {tuple(sizes.shape)}")
    if generator is None:
        generator = torch.default_generator
    n = sizes.shape[0]
    width, height = sizes[:, 0].double(), sizes[:, 1].double()
    b, c, s = spec.brightness, spec.contrast, spec.saturation
    # torchvision: horizontal shift in (-a * width, a * width), vertical in (-b * height, b * height),
    # each rounded to a whole pixel of the image it is applied to.
    tx = torch.round(_uniform(-1.0, 1.0, n, generator) * spec.translate[0] * width)
    ty = torch.round(_uniform(-1.0, 1.0, n, generator) * spec.translate[1] * height)
    return {
        "flip": torch.rand(n, generator=generator) < spec.flip_p,
        "brightness": _uniform(max(0.0, 1 - b), 1 + b, n, generator).float(),
        "contrast": _uniform(max(0.0, 1 - c), 1 + c, n, generator).float(),
        "saturation": _uniform(max(0.0, 1 - s), 1 + s, n, generator).float(),
        "hue": _uniform(-spec.hue, spec.hue, n, generator).float(),
        # order[i, k]: the colour operation image i gets at step k (0 brightness, 1 contrast,
        # 2 saturation, 3 hue): a random permutation per image, as ColorJitter draws per call
        "order": torch.rand(n, 4, generator=generator).argsort(dim=1),
        "angle": _uniform(spec.degrees[0], spec.degrees[1], n, generator),
        "translate": torch.stack([tx, ty], dim=1),
        "scale": _uniform(spec.scale[0], spec.scale[1], n, generator),
    }


def affine_theta(params: Mapping[str, torch.Tensor], sizes: torch.Tensor) -> torch.Tensor:
    """``[B, 2, 3]`` matrices for ``F.affine_grid``: flip, then torchvision's affine, per image.

    The map is torchvision's inverse affine (rotation by ``angle`` about the centre, ``scale``,
    shift in pixels) written in each image's own pixel frame and carried to normalised coordinates.
    """
    width, height = sizes[:, 0].double(), sizes[:, 1].double()
    angle = torch.deg2rad(params["angle"].double())
    cos, sin = torch.cos(angle), torch.sin(angle)
    scale = params["scale"].double()
    tx, ty = params["translate"][:, 0].double(), params["translate"][:, 1].double()
    # In pixels, an output point p maps to the input point c + R^-1 (p - c - t) / scale with
    # R^-1 = [[cos, sin], [-sin, cos]] (torchvision's inverse matrix without shear). With
    # p - c = D n, D = diag(width/2, height/2), n in [-1, 1] (align_corners=False), this is
    # n_in = D^-1 R^-1 D n / scale - D^-1 R^-1 t / scale.
    a = cos / scale
    b = sin * height / width / scale
    c = -sin * width / height / scale
    d = cos / scale
    e = -(cos * tx + sin * ty) / (width / 2) / scale
    f = -(-sin * tx + cos * ty) / (height / 2) / scale
    theta = torch.stack([torch.stack([a, b, e], 1), torch.stack([c, d, f], 1)], 1)
    # a flip before the affine reads the input at -x: negate the first row
    flip = params["flip"].to(theta.dtype).mul(-2).add(1)
    theta[:, 0, :] *= flip[:, None]
    return theta.float()


# ---------------------------------------------------------------------------------------------
# augmentation: the operations (float images in [0, 1], [B, 3, H, W], per-image factors [B])


def _grey(x: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` luma of ``[B, 3, H, W]`` (one new plane, no full-size temporary)."""
    grey = x[:, 0:1] * _GREY[0]
    grey.add_(x[:, 1:2], alpha=_GREY[1]).add_(x[:, 2:3], alpha=_GREY[2])
    return grey


# In-place operations on a [b, 3, H, W] float image in [0, 1] with per-image factors [b]:
# they work on slices of the batch, and a fresh full-size tensor per call is what costs on a CPU.


def _brightness_(x: torch.Tensor, factor: torch.Tensor) -> None:
    x.mul_(factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def _contrast_(x: torch.Tensor, factor: torch.Tensor) -> None:
    # blend with a flat image at the image's mean grey level
    means = x.mean(dim=(2, 3))  # [b, 3]
    mean_grey = _GREY[0] * means[:, 0] + _GREY[1] * means[:, 1] + _GREY[2] * means[:, 2]
    x.mul_(factor.view(-1, 1, 1, 1)).add_(((1 - factor) * mean_grey).view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


def _saturation_(x: torch.Tensor, factor: torch.Tensor) -> None:
    # blend with the grey version of the same image
    grey = _grey(x).mul_((1 - factor).view(-1, 1, 1, 1))
    x.mul_(factor.view(-1, 1, 1, 1)).add_(grey).clamp_(0.0, 1.0)


def _hue_(x: torch.Tensor, shift: torch.Tensor) -> None:
    # rotate the HSV hue by `shift` turns; value V and chroma C = V - min stay as they are
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    value = x.amax(dim=1)
    chroma = value - x.amin(dim=1)
    inv = chroma.reciprocal().masked_fill_(chroma == 0, 0.0)
    # hue in sixths of a turn, from the channel that holds the maximum (ties: red, green, blue)
    hue6 = torch.where(value == r, (g - b).mul_(inv),
                       torch.where(value == g, (b - r).mul_(inv).add_(2.0), (r - g).mul_(inv).add_(4.0)))
    hue6.add_(6.0 * shift.view(-1, 1, 1))
    # channel = V - C clamp(min(k, 4 - k), 0, 1), k = (n + 6 H) mod 6, n = 5, 3, 1 for R, G, B
    for channel, n in enumerate((5.0, 3.0, 1.0)):
        k = torch.remainder(hue6 + n, 6.0)
        ramp = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        torch.sub(value, chroma * ramp, out=x[:, channel])


_COLOR_OPS = (("brightness", _brightness_), ("contrast", _contrast_),
              ("saturation", _saturation_), ("hue", _hue_))


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    # small per-batch host tensors: through pinned memory on CUDA so the copy does not stall the stream
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def order_ids(order: torch.Tensor) -> torch.Tensor:
    """One integer per image naming its colour-operation order (a permutation of 0..3)."""
    return (order * torch.tensor([64, 16, 4, 1], dtype=order.dtype, device=order.device)).sum(dim=1)


def color_jitter(x: torch.Tensor, params: Mapping[str, torch.Tensor], inplace: bool = False) -> torch.Tensor:
    """Brightness, contrast, saturation and hue with per-image factors, in a per-image order.

    Images that share an order are processed together on a slice of the batch; a batch already
    grouped by :func:`order_ids` (as :class:`FastLoader` hands it over) is not reordered.
    """
    order = params["order"].cpu()
    ids = order_ids(order)
    regroup = None
    if bool((ids[1:] < ids[:-1]).any()):
        regroup = torch.argsort(ids, stable=True)
        ids, order = ids[regroup], order[regroup]
        x = x.index_select(0, _to_device(regroup, x.device))
    elif not inplace:
        x = x.clone()
    stacked = torch.stack([params[name].float().cpu() for name, _fn in _COLOR_OPS], dim=1)  # [B, 4]
    if regroup is not None:
        stacked = stacked[regroup]
    # an operation whose range is empty (factor 1, hue shift 0: e.g. saturation in "light") is skipped
    identity = torch.tensor([1.0, 1.0, 1.0, 0.0])
    active = (stacked != identity).any(dim=0).tolist()
    stacked = _to_device(stacked, x.device)
    factors = {name: stacked[:, j] for j, (name, _fn) in enumerate(_COLOR_OPS)}
    start = 0
    for count in torch.unique_consecutive(ids, return_counts=True)[1].tolist():
        group = slice(start, start + count)
        for op in order[start].tolist():
            name, fn = _COLOR_OPS[op]
            if active[op]:
                fn(x[group], factors[name][group])
        start += count
    if regroup is not None:
        x = x.index_select(0, _to_device(torch.argsort(regroup), x.device))
    return x


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, [B, C, height, width], align_corners=False)``, built separably."""
    # pixel centres in normalised coordinates, where affine_grid puts them
    xs = (torch.arange(width, device=theta.device, dtype=theta.dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=theta.device, dtype=theta.dtype) * 2 + 1) / height - 1
    t = theta.view(-1, 2, 3, 1, 1)
    gx = t[:, 0, 0] * xs.view(1, 1, -1) + (t[:, 0, 1] * ys.view(1, -1, 1) + t[:, 0, 2])
    gy = t[:, 1, 0] * xs.view(1, 1, -1) + (t[:, 1, 1] * ys.view(1, -1, 1) + t[:, 1, 2])
    return torch.stack([gx, gy], dim=-1)


def augment_batch(x: torch.Tensor, params: Mapping[str, torch.Tensor], sizes: torch.Tensor,
                  inplace: bool = False) -> torch.Tensor:
    """The course's augmentation of a float batch in [0, 1]: flip, colour jitter, affine (fill 0).

    The flip is folded into the affine's sampling grid (it commutes with the colour operations).
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be a [B, 3, H, W] batch, got {tuple(x.shape)}")
    x = color_jitter(x, params, inplace=inplace)
    theta = _to_device(affine_theta(params, sizes), x.device)
    grid = affine_grid(theta, x.shape[2], x.shape[3])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------------
# decode once: the uint8 cache


@dataclass
class ImageCache:
    """Decoded images per resolution (uint8 ``[N, 3, R, R]``, CPU or memory-mapped), labels, sizes."""

    images: dict[int, torch.Tensor | np.ndarray]
    labels: torch.Tensor  # int64 [N]
    sizes: torch.Tensor  # float32 [N, 2]: each image's original (width, height)
    decoded: int  # images decoded by the call that built this cache (0 when read from disk)
    seconds: float  # wall time of that call

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _decode_item(dataset: Dataset, index: int,
                 resolutions: Sequence[int]) -> tuple[list[np.ndarray], tuple[int, int], int] | None:
    """Read item `index` of `dataset` once and resize it to every resolution (PIL bilinear)."""
    item = dataset[index]
    if item is None:  # data.ImageFolderDataset returns None (with a warning) for unreadable files
        return None
    image, label = item
    if not isinstance(image, Image.Image):
        raise ValueError("build_cache needs a data set whose items are (PIL image, label); "
                         "create it with transform=None")
    image = image.convert("RGB")
    size = image.size  # (width, height)
    # exactly what v2.Resize((r, r)) does to a PIL image: PIL's bilinear (antialiased) resize
    arrays = [np.asarray(image.resize((r, r), Image.BILINEAR)) for r in resolutions]
    return arrays, size, int(label)


def _file_list(dataset: Dataset, indices: Sequence[int]) -> list[tuple[str, int]] | None:
    """(path, label) of the chosen items when the data set is a folder of files, else None."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None
    return [(str(samples[i][0]), int(samples[i][1])) for i in indices]


def _cache_key(files: Sequence[tuple[str, int]]) -> str:
    digest = hashlib.sha256(f"format={CACHE_FORMAT}".encode())
    for path, label in files:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}\0{label}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
    return digest.hexdigest()[:24]


def _unwrap(dataset: Dataset, indices: Sequence[int] | None) -> tuple[Dataset, list[int]]:
    if indices is None:
        indices = range(len(dataset))
    indices = [int(i) for i in indices]
    while isinstance(dataset, Subset):
        indices = [int(dataset.indices[i]) for i in indices]
        dataset = dataset.dataset
    return dataset, indices


def build_cache(dataset: Dataset, resolutions: int | Iterable[int], *, indices: Sequence[int] | None = None,
                cache_dir: str | Path | None = None, num_threads: int = 0) -> ImageCache:
    """Decode every item of `dataset` (``(PIL image, label)``) once into uint8 tensors per resolution.

    With `cache_dir`, folder data sets are stored as ``.npy`` keyed by file paths, mtimes and
    resolution, and read back (memory-mapped) on the next call instead of being decoded again.
    """
    if isinstance(resolutions, int):
        resolutions = [resolutions]
    resolutions = [int(r) for r in resolutions]
    if not resolutions or any(r <= 0 for r in resolutions):
        raise ValueError(f"resolutions must be positive integers, got {resolutions!r}")
    if int(num_threads) < 0:
        raise ValueError(f"num_threads must be >= 0 (0: one per CPU core), got {num_threads!r}")
    start = time.perf_counter()
    dataset, indices = _unwrap(dataset, indices)
    files = _file_list(dataset, indices) if cache_dir is not None else None
    paths = None
    if files is not None:
        cache_dir = Path(cache_dir)
        key = _cache_key(files)
        paths = {r: cache_dir / f"{key}_R{r}.npy" for r in resolutions}
        meta_path = cache_dir / f"{key}_meta.npz"
        if meta_path.is_file() and all(p.is_file() for p in paths.values()):
            with np.load(meta_path) as meta:
                labels, sizes = torch.from_numpy(meta["labels"]), torch.from_numpy(meta["sizes"])
            images = {r: np.load(paths[r], mmap_mode="r") for r in resolutions}
            return ImageCache(images, labels, sizes, decoded=0, seconds=time.perf_counter() - start)

    n = len(indices)
    # filled in place, image by image, by the decode threads (PIL releases the GIL while it works)
    arrays = {r: np.empty((n, 3, r, r), dtype=np.uint8) for r in resolutions}
    labels_np = np.zeros(n, dtype=np.int64)
    sizes_np = np.zeros((n, 2), dtype=np.float32)
    readable = np.zeros(n, dtype=bool)

    def decode(slot: int) -> None:
        result = _decode_item(dataset, indices[slot], resolutions)
        if result is None:
            return
        pixels, size, label = result
        for r, hwc in zip(resolutions, pixels):
            arrays[r][slot] = hwc.transpose(2, 0, 1)
        labels_np[slot], sizes_np[slot], readable[slot] = label, size, True

    threads = int(num_threads) or (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(decode, range(n)))
    if not readable.any():
        raise ValueError("build_cache: the data set has no readable images")
    if not readable.all():  # drop the unreadable ones (already warned about by the data set)
        arrays = {r: a[readable] for r, a in arrays.items()}
        labels_np, sizes_np = labels_np[readable], sizes_np[readable]
    images: dict[int, torch.Tensor | np.ndarray] = {r: torch.from_numpy(a) for r, a in arrays.items()}
    labels, sizes = torch.from_numpy(labels_np), torch.from_numpy(sizes_np)
    if paths is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for r in resolutions:
            _atomic_save(paths[r], lambda f, r=r: np.save(f, images[r].numpy()))
        _atomic_save(meta_path, lambda f: np.savez(f, labels=labels.numpy(), sizes=sizes.numpy()))
    return ImageCache(images, labels, sizes, decoded=len(indices), seconds=time.perf_counter() - start)


def _atomic_save(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# memory budget


def _available_ram() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30  # no way to ask: assume a modest machine


def memory_budget(device: str | torch.device, fraction: float = 0.5) -> int:
    """Bytes an image cache may take on `device`: `fraction` of its free memory (RAM off-GPU)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
    else:
        free = _available_ram()
    return int(free * fraction)


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from exc


# ---------------------------------------------------------------------------------------------
# the loader


class _CachedImages(Dataset):
    """Item view of a loader's cache (un-augmented, normalised); lets code ask ``len(loader.dataset)``."""

    def __init__(self, loader: FastLoader) -> None:
        self._loader = loader

    def __len__(self) -> int:
        return self._loader.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        idx = torch.tensor([int(index)])
        x = self._loader._normalise(self._loader._fetch(idx).float().div_(255.0))
        return x[0].cpu(), int(self._loader._labels_host[index])


class FastLoader:
    """Batches ``(x, y)`` from a uint8 cache: x float32 normalised (channels_last), y int64.

    Shuffles with a generator seeded by (seed, epoch); each pass over the loader is one epoch.
    The cache sits on `device` when it fits ``memory_fraction`` of its free memory (RAM on the
    CPU), else each batch is gathered on the host (pinned for CUDA) and copied over. On CUDA it
    also turns on ``cudnn.benchmark``: every batch has the same shape.
    """

    def __init__(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor, *,
                 sizes: torch.Tensor | None = None, batch_size: int = 192, shuffle: bool = False,
                 augment: str | bool | AugmentSpec | None = None, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), device: str | torch.device | None = None,
                 seed: int = 0, drop_last: bool = False, channels_last: bool = True,
                 memory_fraction: float = 0.5) -> None:
        if int(batch_size) != batch_size or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] != images.shape[3]:
            raise ValueError(f"images must be uint8 [N, 3, R, R], got shape {tuple(images.shape)}")
        if str(images.dtype) not in ("torch.uint8", "uint8"):
            raise ValueError(f"images must be uint8, got {images.dtype}")
        if len(labels) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(labels)} labels")
        if images.shape[0] == 0:
            raise ValueError("images must hold at least one image")
        if len(mean) != 3 or len(std) != 3 or any(s <= 0 for s in std):
            raise ValueError("mean and std must have 3 values each, std > 0")
        self.augment: AugmentSpec | None = augment_spec(augment)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.channels_last = bool(channels_last)
        self.seed = int(seed)
        self.epoch = 0
        self.device = _resolve_device(device)
        self.resolution = int(images.shape[-1])
        self.num_samples = int(images.shape[0])
        if self.drop_last and self.num_samples < self.batch_size:
            raise ValueError(f"drop_last=True with {self.num_samples} images and batch_size "
                             f"{self.batch_size} gives no batch; lower batch_size")
        self._labels_host = torch.as_tensor(labels, dtype=torch.int64).cpu()
        if sizes is None:  # treat the cached square as the original image
            sizes = torch.full((self.num_samples, 2), float(self.resolution))
        self._sizes = torch.as_tensor(sizes, dtype=torch.float32).cpu()
        if self._sizes.shape != (self.num_samples, 2):
            raise ValueError(f"sizes must have shape [{self.num_samples}, 2], got {tuple(self._sizes.shape)}")
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._inv_std = 1.0 / torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.nbytes = int(np.prod(images.shape))
        self.budget = memory_budget(self.device, memory_fraction)
        self.resident = self.nbytes <= self.budget
        pin = self.device.type == "cuda"
        if self.resident:
            host = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.array(images))
            self._images = host.to(self.device)
        else:
            warnings.warn(
                f"image cache {self.nbytes / 2**20:.0f} MiB (R{self.resolution}) exceeds the "
                f"{self.device.type} budget of {self.budget / 2**20:.0f} MiB (memory_fraction="
                f"{memory_fraction}); streaming batches from host memory instead",
                StreamingFallbackWarning, stacklevel=2)
            if isinstance(images, torch.Tensor) and pin:
                images = images.pin_memory()
            self._images = images  # host tensor or memory-mapped array, gathered per batch
        self._pin = pin
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    @property
    def dataset(self) -> Dataset:
        """The cached images as a map-style data set (no augmentation), for ``len(loader.dataset)``."""
        return _CachedImages(self)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the shuffle and augmentation draws of `epoch`."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = int(epoch)

    def with_augment(self, augment: str | bool | AugmentSpec | None, seed: int = 0) -> FastLoader:
        """The same images in the same order, augmented with `augment` (e.g. validation as in training)."""
        twin = copy.copy(self)
        twin.augment, twin.seed, twin.epoch, twin.shuffle = augment_spec(augment), int(seed), 0, False
        return twin

    def _fetch(self, idx: torch.Tensor) -> torch.Tensor:
        """uint8 images `idx` (CPU index tensor) on the device."""
        if self.resident:
            return self._images.index_select(0, _to_device(idx, self.device))
        if isinstance(self._images, torch.Tensor):
            if self._pin:
                out = torch.empty((len(idx), *self._images.shape[1:]), dtype=torch.uint8, pin_memory=True)
                torch.index_select(self._images, 0, idx, out=out)
            else:
                out = self._images.index_select(0, idx)
        else:  # memory-mapped .npy
            out = torch.from_numpy(np.ascontiguousarray(self._images[idx.numpy()]))
            if self._pin:
                out = out.pin_memory()
        return out.to(self.device, non_blocking=True)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self._mean).mul_(self._inv_std)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        n = self.num_samples
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        stop = len(self) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            if self.augment is not None:
                sizes = self._sizes[idx]
                params = sample_augment_params(sizes, self.augment, generator)
                # group the batch by colour-jitter order so that each group is one slice
                regroup = torch.argsort(order_ids(params["order"]), stable=True)
                idx, sizes = idx[regroup], sizes[regroup]
                params = {k: v[regroup] for k, v in params.items()}
                x = self._fetch(idx).float().div_(255.0)
                x = augment_batch(x, params, sizes, inplace=True)
            else:
                x = self._fetch(idx).float().div_(255.0)
            y = _to_device(self._labels_host.index_select(0, idx), self.device)
            yield self._normalise(x), y


# ---------------------------------------------------------------------------------------------
# drop-in for data.make_loaders


def make_fast_loaders(name: str, resolutions: int | Iterable[int], batch_size: int = 192,
                      normal_val: Mapping[str, Sequence[float]] | None = None,
                      augment: str | bool | AugmentSpec | None = True, root: str | Path | None = None, subset: Any = None, seed: int = 0,
                      device: str | torch.device | None = None, *, num_workers: int = 0,
                      download: bool = False, cache_dir: str | Path | None = None,
                      memory_fraction: float = 0.5, drop_last: bool = False,
                      channels_last: bool = True) -> dict[str, dict[str, FastLoader]]:
    """``{"train": {"R96": FastLoader, ...}, "val": {...}}``, the same shape as ``data.make_loaders``.

    Same data, subset, statistics and augmentation as the course's loaders; each image is decoded
    once for all resolutions. `num_workers` sets the decode threads (0: one per CPU core).
    """
    from lecture_utils import data  # local: keeps `import lecture_utils.fastdata` light

    data._check_name(name)
    if int(batch_size) != batch_size or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if int(num_workers) != num_workers or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
    keys = data.resolution_keys(resolutions)
    stats = normal_val if normal_val is not None else data.DEFAULT_STATS[name]
    if "mean" not in stats or "std" not in stats:
        raise ValueError("normal_val must have the keys 'mean' and 'std'")
    device = _resolve_device(device)
    per_split = data._split_subsets(subset)
    loaders: dict[str, dict[str, FastLoader]] = {"train": {}, "val": {}}
    for split in data.SPLITS:
        base = data.get_dataset(name, split, transform=None, root=root, download=download)
        indices = None
        if per_split[split] is not None:
            indices = data.balanced_indices(data.dataset_targets(base), per_split[split], seed)
        cache = build_cache(base, list(keys.values()), indices=indices, cache_dir=cache_dir,
                            num_threads=num_workers)
        train = split == "train"
        for key, size in keys.items():
            loaders[split][key] = FastLoader(
                cache.images[size], cache.labels, sizes=cache.sizes, batch_size=batch_size,
                shuffle=train, augment=augment if train else None, mean=stats["mean"], std=stats["std"],
                device=device, seed=seed, drop_last=drop_last and train, channels_last=channels_last,
                memory_fraction=memory_fraction)
    return loaders
