"""Make data/sample/: a small class-balanced Fashion-MNIST subset as PNG files in ImageFolder layout.

    python data/make_sample.py --raw /usr/share/datasets/fashion-mnist --out data/sample

train/ is drawn from the official training split, val/ from the official test split. Each file is
named after the image's index in its split (train/bag/01234.png is training image 1234), so every
sample image can be traced back to the raw files. The same arguments give the same files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from lecture_utils.datasets import FASHION_MNIST_CLASSES, SPLITS, find_fashion_mnist_raw, read_idx


def write_split(images: np.ndarray, labels: np.ndarray, per_class: int, out: Path,
                rng: np.random.Generator) -> dict[str, int]:
    """Write `per_class` randomly chosen images of each class to ``out/<class>/NNNNN.png``."""
    counts = {}
    for label, name in enumerate(FASHION_MNIST_CLASSES):
        candidates = np.flatnonzero(labels == label)
        if len(candidates) < per_class:
            raise ValueError(f"class {name} has only {len(candidates)} images, asked for {per_class}")
        chosen = np.sort(rng.choice(candidates, size=per_class, replace=False))
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in chosen:
            Image.fromarray(images[index]).save(folder / f"{index:05d}.png", optimize=True)
        counts[name] = len(chosen)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the raw idx files (.gz or not)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "sample"),
                        help="output folder (gets train/ and val/)")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--val-per-class", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    out = Path(args.out)
    rng = np.random.default_rng(args.seed)
    per_class = {"train": args.train_per_class, "val": args.val_per_class}
    for split in SPLITS:
        found = find_fashion_mnist_raw(split, args.raw, include_system=False)
        if found is None:
            print(f"raw Fashion-MNIST files for {split} not found in {args.raw}", file=sys.stderr)
            return 1
        images, labels = read_idx(found[0]), read_idx(found[1])
        if (out / split).exists():
            shutil.rmtree(out / split)
        counts = write_split(images, labels, per_class[split], out / split, rng)
        print(f"{split}: {sum(counts.values())} images, {per_class[split]} per class -> {out / split}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
