"""The four data sets of the series, by name: where they live, how they are read, their statistics.

* ``sample``: the Fashion-MNIST subset that ships in ``data/sample/`` (offline default);
* ``fashion_mnist``: the full Fashion-MNIST, read from local raw idx files (``.gz`` or not),
  or downloaded by torchvision when asked (``download=True``);
* ``cifar10``: torchvision's CIFAR-10 (downloaded only when asked);
* ``animals10``: a folder with ``train/<class>/`` and ``val/<class>/`` made by
  :func:`prepare_animals10` from Kaggle's Animals-10.

Every image comes out with 3 channels, so the same model serves all four. How the images are fed
to a network (transforms, augmentation, loaders) is :mod:`lecture_utils.data`.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torch.utils.data.dataloader import default_collate
from torchvision import datasets
from torchvision.transforms import v2

from lecture_utils import LectureWarning
from lecture_utils.holdout import draw_per_class

DATASET_NAMES = ("sample", "fashion_mnist", "cifar10", "animals10")
SPLITS = ("train", "val")

# Fashion-MNIST labels 0..9 in the official order, spelled so they can be folder names.
FASHION_MNIST_CLASSES = (
    "t-shirt_top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle_boot",
)

# Kaggle's Animals-10 ships its class folders with Italian names.
ANIMALS10_TRANSLATION = {
    "cane": "dog", "cavallo": "horse", "elefante": "elephant", "farfalla": "butterfly",
    "gallina": "chicken", "gatto": "cat", "mucca": "cow", "pecora": "sheep",
    "ragno": "spider", "scoiattolo": "squirrel",
}

# Per-channel statistics of each training split, in [0, 1] pixel units.
# SAMPLE_STATS: compute_mean_std on data/sample/train (tests recompute it).
SAMPLE_STATS = {"mean": [0.2843, 0.2843, 0.2843], "std": [0.3520, 0.3520, 0.3520]}
# FASHION_MNIST_STATS: compute_mean_std on the 60,000 official training images.
FASHION_MNIST_STATS = {"mean": [0.2860, 0.2860, 0.2860], "std": [0.3530, 0.3530, 0.3530]}
# ANIMALS10_STATS: the values the course normalises its Animals-10 runs with.
ANIMALS10_STATS = {"mean": [0.5177, 0.5003, 0.4126], "std": [0.2133, 0.2130, 0.2149]}
# CIFAR10_STATS: over all pixels of the 50,000 training images.
CIFAR10_STATS = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616]}

DEFAULT_STATS = {
    "sample": SAMPLE_STATS,
    "fashion_mnist": FASHION_MNIST_STATS,
    "cifar10": CIFAR10_STATS,
    "animals10": ANIMALS10_STATS,
}

# Where Debian's `dataset-fashion-mnist` package puts the raw idx files.
SYSTEM_FASHION_MNIST_DIRS = [Path("/usr/share/datasets/fashion-mnist")]

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
_FOLDER_LAYOUT = "<root>/train/<class>/*.png|jpg and <root>/val/<class>/*.png|jpg"


class UnreadableImageWarning(LectureWarning):
    """An image file could not be decoded; its sample was skipped."""


class MissingClassWarning(LectureWarning):
    """The validation split has no images of a training class; labels still follow the training split."""


# ---------------------------------------------------------------------------------------------
# where the data lives


def data_root() -> Path:
    """The folder holding ``sample/`` and the default roots of the full data sets.

    ``$LECTURE_DATA_ROOT`` when set, else ``data/`` of the repository checkout.
    """
    env = os.environ.get("LECTURE_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


def default_root(name: str) -> Path:
    """Default root of data set `name`: ``data_root()/sample``, ``.../fashion_mnist``, ..."""
    check_dataset_name(name)
    return data_root() / name


def canonical_root(name: str, root: str | os.PathLike | None) -> str | None:
    """The data root a condition records for data set `name` read from `root`: None where `root` holds what the
    default search finds (no root, the default folder, fashion_mnist's system copy), else its absolute path."""
    check_dataset_name(name)
    if root is None or not str(root).strip():
        return None
    given = Path(root).expanduser().resolve()
    if given == default_root(name).resolve():
        return None
    if name == "fashion_mnist":
        found = find_fashion_mnist_raw("train", default_root(name))
        if found is not None and found[0].parent.resolve() == given:
            return None
    return str(given)


def check_dataset_name(name: str) -> None:
    """A ValueError listing the data set names unless `name` is one of them."""
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; allowed: {', '.join(DATASET_NAMES)}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")

# ---------------------------------------------------------------------------------------------
# image folders (sample, animals10)


def _folder_classes(directory: str | Path) -> list[str]:
    """Class folder names of an ImageFolder split, in label order (Fashion-MNIST's own when they match)."""
    classes, _ = datasets.folder.find_classes(str(directory))
    if set(classes) == set(FASHION_MNIST_CLASSES):
        classes = list(FASHION_MNIST_CLASSES)
    return classes


class ImageFolderDataset(datasets.ImageFolder):
    """ImageFolder whose unreadable images give a warning naming the file and ``None``.

    Use with :func:`collate_skip_none` so that a bad file costs one sample, not the epoch.
    Folders named after the Fashion-MNIST classes keep the official label order. With `classes`
    the labels follow that list (e.g. the training split's) and a class may have no images.
    """

    def __init__(self, root: str | Path, transform: Callable | None = None,
                 classes: Sequence[str] | None = None) -> None:
        self._given_classes = list(classes) if classes is not None else None
        super().__init__(root, transform=transform, allow_empty=classes is not None)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        if getattr(self, "_given_classes", None) is not None:
            classes = list(self._given_classes)
        else:
            classes = _folder_classes(directory)
        return classes, {c: i for i, c in enumerate(classes)}

    def __getitem__(self, index: int) -> tuple[Any, int] | None:
        path, target = self.samples[index]
        try:
            image = self.loader(path)
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's decode errors
            warnings.warn(f"skipping unreadable image {path}: {exc}", UnreadableImageWarning,
                          stacklevel=2)
            return None
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target


def collate_skip_none(batch: list[Any]) -> Any:
    """``default_collate`` without the ``None`` samples; ``None`` when nothing is left."""
    batch = [item for item in batch if item is not None]
    if not batch:
        return None
    return default_collate(batch)


def _image_folder(root: Path, split: str, transform: Callable | None, name: str) -> ImageFolderDataset:
    split_dir = Path(root) / split
    layout = f"expected layout: {_FOLDER_LAYOUT}"
    if not split_dir.is_dir():
        present = sorted(p.name for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else None
        where = f"{root} has folders {present}" if present is not None else f"{root} does not exist"
        hint = ""
        if name == "animals10":
            hint = " (make it from Kaggle's raw-img/ with lecture_utils.data.prepare_animals10)"
        elif name == "sample":
            hint = " (remake it with data/make_sample.py, or set LECTURE_DATA_ROOT)"
        raise FileNotFoundError(f"{name}: no {split}/ folder; {where}; {layout}{hint}")
    class_dirs = [p for p in split_dir.iterdir() if p.is_dir()]
    if not class_dirs:
        raise FileNotFoundError(
            f"{name}: {split_dir} has no class folders (images must sit in one folder per class); {layout}")
    classes = _training_classes(Path(root), split_dir, name) if split == "val" else None
    empty = sorted(p.name for p in class_dirs
                   if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir() if f.is_file()))
    if empty and split == "train":  # the data set is there, but a class of it has nothing to learn from
        raise ValueError(f"{name}: class folder(s) {empty} of {split_dir} hold no images "
                         f"({', '.join(IMAGE_EXTENSIONS)}); add images to them or remove them")
    try:
        dataset = ImageFolderDataset(str(split_dir), transform=transform, classes=classes)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{name}: {exc}; {layout}") from exc
    if classes is not None:
        _warn_missing_classes(dataset, split_dir, name)
    return dataset


def _training_classes(root: Path, val_dir: Path, name: str) -> list[str] | None:
    """The training split's class list, which validation labels must follow; None without train/.

    A validation class folder that training lacks is an error: no label could be right for it.
    """
    train_dir = root / "train"
    if not train_dir.is_dir() or not any(p.is_dir() for p in train_dir.iterdir()):
        return None
    train_classes = _folder_classes(train_dir)
    val_classes = sorted(p.name for p in val_dir.iterdir() if p.is_dir())
    extra = sorted(set(val_classes) - set(train_classes))
    if extra:
        raise ValueError(
            f"{name}: {val_dir} has class folder(s) {extra} that {train_dir} lacks, so the model "
            f"has no label for them. train classes: {train_classes}; val classes: {val_classes}. "
            "Both splits must hold the same class folders: remove the extra ones from val/ "
            "or add them, with images, to train/.")
    return train_classes


def _warn_missing_classes(dataset: ImageFolderDataset, val_dir: Path, name: str) -> None:
    present = set(dataset.targets)
    missing = [f"{c} ({i})" for c, i in dataset.class_to_idx.items() if i not in present]
    if missing:
        warnings.warn(
            f"{name}: {val_dir} has no images of class(es) {', '.join(missing)}; labels keep the "
            f"training split's order, and validation accuracy covers the other "
            f"{len(dataset.classes) - len(missing)} classes only. Add val/<class>/ images to measure them.",
            MissingClassWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST from raw idx files


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file (MNIST format, ``.gz`` or not) into a numpy array of its stored type."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown idx element type 0x{data[2]:02x}")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values, found {array.size}")
    return array.reshape(shape)


def find_fashion_mnist_raw(split: str, root: str | Path | None = None,
                           include_system: bool = True) -> tuple[Path, Path] | None:
    """Paths of the (images, labels) idx files of a split, or ``None`` if not found.

    Looks in `root`, ``root/FashionMNIST/raw`` (torchvision's layout), then the Debian folder.
    """
    _check_split(split)
    candidates = []
    if root is not None:
        candidates += [Path(root), Path(root) / "FashionMNIST" / "raw"]
    if include_system:
        candidates += SYSTEM_FASHION_MNIST_DIRS
    images_name, labels_name = _FASHION_MNIST_FILES[split]
    for folder in candidates:
        for suffix in ("", ".gz"):
            images, labels = folder / (images_name + suffix), folder / (labels_name + suffix)
            if images.is_file() and labels.is_file():
                return images, labels
    return None


class FashionMNISTRaw(Dataset):
    """Fashion-MNIST read from its raw idx files; items are (RGB PIL image or transformed, label)."""

    classes = list(FASHION_MNIST_CLASSES)

    def __init__(self, images_path: str | Path, labels_path: str | Path,
                 transform: Callable | None = None) -> None:
        self.images = read_idx(images_path)
        self.targets = read_idx(labels_path).astype(np.int64).tolist()
        if self.images.ndim != 3 or len(self.images) != len(self.targets):
            raise ValueError(f"{images_path} and {labels_path} do not form an image/label pair")
        self.transform = transform
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = Image.fromarray(self.images[index]).convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


def _fashion_mnist(split: str, transform: Callable | None, root: Path, download: bool,
                  include_system: bool = True) -> Dataset:
    from lecture_utils.download import download_dir, download_fashion_mnist

    found = find_fashion_mnist_raw(split, root, include_system)
    fetched = download_dir(root)
    if download and (found is None or found[0].parent == fetched):
        for plain in fetched.glob("*-ubyte"):  # an extraction cut short; read before its .gz, so removed
            try:
                read_idx(plain)
            except (ValueError, OSError):
                plain.unlink()
        # fetch what is missing and replace what fails its checksum (a cut-off or damaged download)
        download_fashion_mnist(root)
        found = find_fashion_mnist_raw(split, root, include_system)
    if found is None:
        searched = [str(root), str(fetched)]
        searched += [str(p) for p in SYSTEM_FASHION_MNIST_DIRS] if include_system else []
        names = ", ".join(_FASHION_MNIST_FILES[split])
        raise FileNotFoundError(
            f"fashion_mnist: raw files ({names}, .gz or not) not found in {searched}. Get them with "
            "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or let torchvision download "
            "them: get_dataset('fashion_mnist', ..., download=True)")
    try:
        return FashionMNISTRaw(*found, transform=transform)
    except (ValueError, EOFError, OSError) as exc:  # a truncated .gz, an empty or cut-off idx file
        reason = " ".join(str(exc).split()) or type(exc).__name__
        again = (" (downloaded files are fetched again: give download=True, as the full profile does)"
                 if found[0].parent == fetched else "")
        raise FileNotFoundError(f"fashion_mnist: cannot read {found[0].name} / {found[1].name} in {found[0].parent} "
                                f"({reason}); delete the damaged file{again}") from None


# ---------------------------------------------------------------------------------------------
# data sets by name


def get_dataset(name: str, split: str, transform: Callable | None = None,
                root: str | Path | None = None, download: bool = False) -> Dataset:
    """Data set `name` (sample, fashion_mnist, cifar10, animals10), split "train" or "val".

    For fashion_mnist and cifar10 "val" is the official test split. Nothing is downloaded
    unless ``download=True``. A `root` given is the only place searched: a mistyped one is an error, not
    a silent read of the system's copy (which only the default search, ``root=None``, looks in).
    """
    check_dataset_name(name)
    _check_split(split)
    given = root is not None
    root = Path(root).expanduser() if root is not None else default_root(name)
    if name in ("sample", "animals10"):
        return _image_folder(root, split, transform, name)
    if name == "fashion_mnist":
        return _fashion_mnist(split, transform, root, download, include_system=not given)
    # cifar10
    try:
        return datasets.CIFAR10(str(root), train=(split == "train"), transform=transform, download=download)
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"cifar10: not found in {root} (expected {root}/cifar-10-batches-py/); "
            "download it with get_dataset('cifar10', ..., download=True)") from exc


def dataset_targets(dataset: Dataset) -> list[int]:
    """The label of every item of `dataset` (read from ``.targets`` when it has one)."""
    if isinstance(dataset, Subset):
        parent = dataset_targets(dataset.dataset)
        return [parent[i] for i in dataset.indices]
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return [int(t) for t in targets]
    return [int(dataset[i][1]) for i in range(len(dataset))]


def balanced_indices(targets: Sequence[int], per_class: int, seed: int = 0) -> list[int]:
    """Indices of at most `per_class` items of each class, drawn with `seed`, in ascending order."""
    if int(per_class) != per_class or per_class <= 0:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    return draw_per_class(targets, lambda _n: int(per_class), seed)


def compute_mean_std(dataset: Dataset) -> dict[str, list[float]]:
    """Per-channel mean and standard deviation over all pixels of `dataset`, in [0, 1] units.

    Items may be PIL images or tensors; images of different sizes are fine.
    """
    total = None
    total_sq = None
    count = 0
    for i in range(len(dataset)):
        item = dataset[i]
        if item is None:
            continue
        image = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(image, torch.Tensor):
            image = v2.functional.to_dtype(v2.functional.to_image(image), torch.float32, scale=True)
        elif not image.is_floating_point():
            image = v2.functional.to_dtype(image, torch.float32, scale=True)
        x = image.reshape(image.shape[0], -1).double()
        total = x.sum(1) if total is None else total + x.sum(1)
        total_sq = (x * x).sum(1) if total_sq is None else total_sq + (x * x).sum(1)
        count += x.shape[1]
    if count == 0:
        raise ValueError("compute_mean_std: the data set has no readable images")
    mean = total / count
    std = (total_sq / count - mean * mean).clamp_min(0).sqrt()
    return {"mean": [round(float(m), 4) for m in mean], "std": [round(float(s), 4) for s in std]}


# ---------------------------------------------------------------------------------------------# ---------------------------------------------------------------------------------------------
# Animals-10


def prepare_animals10(src: str | Path, dst: str | Path, val_fraction: float = 0.2, seed: int = 0,
                      link: bool = False) -> dict[str, dict[str, int]]:
    """Split Kaggle's ``raw-img/<italian name>/`` into ``dst/train`` and ``dst/val`` with English names.

    Each class is split on its own with `seed`; files are copied (hard-linked with ``link=True``).
    Returns the image counts ``{"train": {"dog": n, ...}, "val": {...}}``.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    src, dst = Path(src), Path(dst)
    raw = src / "raw-img" if (src / "raw-img").is_dir() else src
    expected = f"expected {src}/raw-img/<{'|'.join(ANIMALS10_TRANSLATION)}>/*.jpg"
    if not raw.is_dir():
        raise FileNotFoundError(f"animals10: {src} does not exist; {expected}")
    missing = [it for it in ANIMALS10_TRANSLATION if not (raw / it).is_dir()]
    if missing:
        present = sorted(p.name for p in raw.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"animals10: class folders {missing} missing in {raw} (found {present}); {expected}")
    for split in SPLITS:
        if (dst / split).is_dir() and any((dst / split).iterdir()):
            raise FileExistsError(f"animals10: {dst / split} is not empty; remove it or choose another dst")
    counts: dict[str, dict[str, int]] = {"train": {}, "val": {}}
    rng = random.Random(seed)
    for italian, english in ANIMALS10_TRANSLATION.items():
        files = sorted(p for p in (raw / italian).iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if len(files) < 2:
            raise ValueError(f"animals10: {raw / italian} has {len(files)} images; need at least 2 to split")
        rng.shuffle(files)
        n_val = min(max(1, round(len(files) * val_fraction)), len(files) - 1)
        for split, chosen in (("val", files[:n_val]), ("train", files[n_val:])):
            out = dst / split / english
            out.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                if link:
                    os.link(f, out / f.name)
                else:
                    shutil.copy2(f, out / f.name)
            counts[split][english] = len(chosen)
    return counts
