"""Benchmark: the course's training pipeline against the fast path, same model, same batches.

Command line::

    python -m lecture_utils.bench --device cpu --model mobilenet_v2 --resolution 96

1. Makes (once, then reuses) a folder of JPEGs shaped like Animals-10: about 300 x 225 pixels,
   10 classes told apart by the shape and fill of what is drawn on them.
2. Times ``ModelTrainer``'s own training step fed by (a) the course's pipeline:
   ``data.make_loaders`` (ImageFolder + transforms.v2 augmentation + DataLoader, batch 192,
   num_workers=0), fp32, NCHW; and (b) the cached path, ``data.make_loaders(..., cached=True)``
   (decode once, augment per image on the device with kornia; channels_last, and bf16 autocast
   on CUDA). Both start from the same weights; each repeat runs a fixed number of steps after
   untimed warm-up steps; the two pipelines alternate repeats so that a busy machine slows both
   alike. The cached path's one-off decode is reported on its own and folded into an
   over-10-epochs figure.
3. Trains both for a few epochs on the embedded sample (Fashion-MNIST) with the ``light``
   augmentation (``--acc-augment``) and prints their accuracy: on the last training epoch, on the
   validation images, and on the validation images augmented as in training.

The last line is ``speedup: X.XX``: fast over course images/s, the fast path's decode cost
amortised over 10 epochs of the synthetic set.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["make_jpeg_dataset", "StepStats", "train_steps", "run_bench", "main"]

JPEG_SIZES = ((300, 225), (300, 200), (225, 300), (300, 240), (280, 210))  # (width, height)
SHAPES = ("circle", "square", "triangle", "cross", "ring")
AMORTISE_EPOCHS = 10


# ---------------------------------------------------------------------------------------------
# the synthetic data set


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    # a smooth two-colour gradient with sensor-like noise, [H, W, 3] float
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    image = a + (b - a) * t[..., None]
    return image + rng.normal(0, 12, (height, width, 3))


def _draw_object(draw: ImageDraw.ImageDraw, rng: np.random.Generator, shape: str, striped: bool,
                 width: int, height: int) -> None:
    r = rng.uniform(0.12, 0.3) * min(width, height)
    cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
    box = [cx - r, cy - r, cx + r, cy + r]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    elif shape == "cross":
        w = r / 3
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fill)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fill)
    else:  # ring
        draw.ellipse(box, outline=fill, width=max(2, int(r / 4)))
    if striped:  # dark stripes across the object's box
        step = max(4, int(r / 3))
        for y in range(int(cy - r), int(cy + r), step):
            draw.line([(cx - r, y), (cx + r, y)], fill=(0, 0, 0), width=max(1, step // 3))


def _make_image(label: int, rng: np.random.Generator) -> Image.Image:
    width, height = JPEG_SIZES[int(rng.integers(len(JPEG_SIZES)))]
    image = Image.fromarray(np.clip(_background(rng, width, height), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    shape, striped = SHAPES[label % len(SHAPES)], label >= len(SHAPES)
    for _ in range(int(rng.integers(1, 4))):
        _draw_object(draw, rng, shape, striped, width, height)
    return image


def make_jpeg_dataset(root: str | Path, images: int = 2000, val_fraction: float = 0.1, seed: int = 0,
                      num_classes: int = 10) -> Path:
    """A folder ``root/{train,val}/class_XX/*.jpg`` of Animals-10-sized JPEGs; reused when complete.

    Classes differ by the drawn shape (circle, square, triangle, cross, ring) and fill (plain or
    striped); colours, sizes and positions are random.
    """
    if int(images) != images or images < num_classes:
        raise ValueError(f"images must be an integer >= num_classes ({num_classes}), got {images!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not 2 <= num_classes <= 2 * len(SHAPES):
        raise ValueError(f"num_classes must be in [2, {2 * len(SHAPES)}], got {num_classes!r}")
    root = Path(root)
    spec = {"images": int(images), "val_fraction": val_fraction, "seed": int(seed),
            "num_classes": int(num_classes), "format": 1}
    marker = root / "complete.json"
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return root
    for split in ("train", "val"):  # a different or unfinished set: start again
        if (root / split).is_dir():
            shutil.rmtree(root / split)
    rng = np.random.default_rng(seed)
    n_val = int(round(images * val_fraction))
    for split, count in (("train", int(images)), ("val", n_val)):
        for k in range(count):
            label = k % num_classes
            folder = root / split / f"class_{label:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            _make_image(label, rng).save(folder / f"{k:05d}.jpg", quality=90)
    marker.write_text(json.dumps(spec))
    return root


# ---------------------------------------------------------------------------------------------
# timing ModelTrainer's own training step


@dataclass
class StepStats:
    """What a run of training steps did: images seen, training accuracy, wall and fetch seconds."""

    images: int
    accuracy: float
    seconds: float
    fetch_seconds: float


def train_steps(trainer: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable,
                steps: int | None = None, progress: Any = None) -> StepStats:
    """One ``trainer.model_train`` pass over `steps` batches of `batches` (all when None), timed."""
    seen, fetch = [0], [0.0]

    def timed() -> Iterator:
        iterator = iter(batches)
        for _ in itertools.count() if steps is None else range(steps):
            t0 = time.perf_counter()
            batch = next(iterator, None)
            fetch[0] += time.perf_counter() - t0
            if batch is None:
                return
            seen[0] += len(batch[1])
            yield batch
            if progress is not None:
                progress.update(1)

    _sync(trainer.device)
    start = time.perf_counter()
    _, accuracy = trainer.model_train(model, timed(), None, optimizer, epoch=1)
    _sync(trainer.device)
    return StepStats(seen[0], accuracy, time.perf_counter() - start, fetch[0])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _parse_pair(text: str) -> tuple[int, int] | None:
    if text in ("", "none", "all"):
        return None
    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected N or TRAIN,VAL images per class (or 'all'), got {text!r}")
    return (values[0], values[-1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lecture_utils.bench",
        description="Train the same model with the course's data pipeline and with the fast path; "
                    "print images/s of each, their accuracy on the sample, and the speedup.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="default: cuda when available, else cpu")
    parser.add_argument("--model", default="mobilenet_v2", help="a name of lecture_utils.models.list_models()")
    parser.add_argument("--width", type=float, default=None, help="width_multiplier passed to the model")
    parser.add_argument("--resolution", type=int, default=96, help="input size of the speed test")
    parser.add_argument("--batch-size", type=int, default=192, help="the course's 192 by default")
    parser.add_argument("--images", type=int, default=2000, help="training JPEGs to draw (kept and reused)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps per pipeline first (allocator and kernel caches settle)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per pipeline (median reported)")
    parser.add_argument("--epochs-acc", type=int, default=3,
                        help="epochs of the accuracy run on the sample (3 x 47 steps of 64 images by default)")
    parser.add_argument("--acc-resolution", type=int, default=32, help="input size of the accuracy run")
    parser.add_argument("--acc-augment", choices=("course", "light", "none"), default="light",
                        help="training augmentation of the accuracy run (default: %(default)s; the course's "
                        "turns every image 30-70 degrees, so upright validation images stay near chance)")
    parser.add_argument("--acc-batch-size", type=int, default=64,
                        help="batch of the accuracy run (more, smaller steps learn more in the same time)")
    parser.add_argument("--acc-subset", type=_parse_pair, default=None,
                        help="images per class of the sample, N or TRAIN,VAL (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the JPEGs are made and kept (default: <data root>/bench/)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def run_bench(args: argparse.Namespace, out: Any = None) -> dict[str, float]:
    """Run the benchmark described by parsed `args`; print the report to `out` and return its numbers."""
    from tqdm import tqdm

    from lecture_utils import data
    from lecture_utils._util import positive_int, resolve_device
    from lecture_utils.models import create_model
    from lecture_utils.trainer import ModelTrainer

    out = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    positive_int(args.warmup, "--warmup", minimum=0)
    for name in ("resolution", "batch_size", "images", "steps", "repeats", "epochs_acc", "acc_resolution",
                 "acc_batch_size"):
        positive_int(getattr(args, name), f"--{name.replace('_', '-')}")
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    model_kwargs: dict[str, Any] = {"num_classes": 10}
    if args.width is not None:
        model_kwargs["width_multiplier"] = args.width

    torch.manual_seed(args.seed)
    initial = create_model(args.model, **model_kwargs)
    where = f"{device.type} ({torch.cuda.get_device_name(device)})" if cuda else \
        f"cpu ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''})"
    say(f"bench: {args.model}{'' if args.width is None else f' width {args.width}'} at {args.resolution} px, "
        f"batch {args.batch_size}, {where}, torch {torch.__version__}")
    if hasattr(os, "getloadavg"):  # other work on the machine slows both pipelines, unevenly
        say(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    # -- the synthetic JPEG set
    data_dir = args.data_dir or data.data_root() / "bench" / f"jpeg{args.images}_seed{args.seed}"
    t0 = time.perf_counter()
    make_jpeg_dataset(data_dir, images=args.images, seed=args.seed)
    say(f"data: {args.images} training JPEGs of about 300x225 px in 10 classes, ready in "
        f"{time.perf_counter() - t0:.1f} s ({data_dir})")
    say("course pipeline: ImageFolder + transforms.v2 (flip, colour jitter, affine, resize) + "
        f"DataLoader(batch {args.batch_size}, shuffle, num_workers=0), fp32, NCHW")
    say(f"fast pipeline: uint8 cache on {device.type} + per-image augmentation on {device.type} (kornia), "
        + ("channels_last, bf16 autocast, cudnn.benchmark" if cuda else "channels_last, fp32"))

    # the course's loaders and the cached ones: one builder, the same images, order and augmentation ranges
    options = dict(batch_size=args.batch_size, root=data_dir, seed=args.seed, device=device)
    loaders = {"course": data.make_loaders("animals10", [args.resolution], **options)}
    t0 = time.perf_counter()
    loaders["fast"] = data.make_loaders("animals10", [args.resolution], cached=True, **options)
    decode_seconds = time.perf_counter() - t0
    key = f"R{args.resolution}"
    n_train = len(loaders["fast"]["train"][key].dataset)
    n_decoded = n_train + len(loaders["fast"]["val"][key].dataset)
    say(f"fast cache: {n_decoded} images (train and val) decoded and resized once in {decode_seconds:.2f} s, "
        f"{loaders['fast']['train'][key].nbytes / 2**20:.0f} MiB (train) on the device")

    # ModelTrainer's own step for both; the flags are the fast path's (channels_last; bf16 on CUDA only)
    trainers = {"course": ModelTrainer(epoch_step=0, device=device, channels_last=False, amp=False),
                "fast": ModelTrainer(epoch_step=0, device=device, channels_last=True, amp=True)}
    models = {name: copy.deepcopy(initial) for name in trainers}
    optimizers = {name: torch.optim.Adam(models[name].parameters(), lr=1e-3) for name in trainers}
    total = 2 * (args.warmup + args.repeats * args.steps)
    results: dict[str, list[StepStats]] = {"course": [], "fast": []}

    def steps(name: str, count: int, bar: Any) -> StepStats:
        return train_steps(trainers[name], models[name], optimizers[name], loaders[name]["train"][key], count, bar)

    with tqdm(total=total, desc="timing", unit="step", disable=args.no_progress, leave=False) as bar:
        for name in trainers:
            if args.warmup:  # untimed: first-step setup, cudnn autotuning, the allocator's warm-up
                steps(name, args.warmup, bar)
        for _ in range(args.repeats):  # alternate, so that a busy machine slows both alike
            for name in trainers:
                results[name].append(steps(name, args.steps, bar))
    rates = {}
    for name in trainers:
        runs = results[name]
        per_run = [r.images / r.seconds for r in runs]
        rates[name] = statistics.median(per_run)
        fetch_share = sum(r.fetch_seconds for r in runs) / sum(r.seconds for r in runs)
        say(f"{name}: {rates[name]:.1f} images/s (median of {args.repeats} x {args.steps} steps: "
            f"{' '.join(f'{r:.1f}' for r in per_run)}; {100 * fetch_share:.0f}% of the time fetching batches)")
    epoch_images = AMORTISE_EPOCHS * n_train
    amortised = epoch_images / (epoch_images / rates["fast"] + decode_seconds)
    say(f"fast with the decode amortised over {AMORTISE_EPOCHS} epochs of {n_train} images: "
        f"{amortised:.1f} images/s")
    say(f"speedup, steady state: {rates['fast'] / rates['course']:.2f}")

    # -- accuracy on the embedded sample: the speed must not come from doing less
    acc_r, key = args.acc_resolution, f"R{args.acc_resolution}"
    options = dict(batch_size=args.acc_batch_size, subset=args.acc_subset, seed=args.seed, augment=args.acc_augment)
    acc_loaders = {"course": data.make_loaders("sample", [acc_r], **options),
                   "fast": data.make_loaders("sample", [acc_r], cached=True, device=device, **options)}
    # Validation on upright images and on the same images augmented as in training, one set for both
    # (with --acc-augment course the upright ones stay near chance: every training image was turned 30-70 degrees).
    val_augmented = acc_loaders["fast"]["val"][key].with_augment(args.acc_augment, seed=args.seed + 1)
    accuracy: dict[str, tuple[float, float, float]] = {}
    steps_total = args.epochs_acc * sum(len(acc_loaders[name]["train"][key]) for name in trainers)
    with tqdm(total=steps_total, desc="accuracy", unit="step", disable=args.no_progress, leave=False) as bar:
        for name, trainer in trainers.items():
            model = copy.deepcopy(initial)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            for _epoch in range(args.epochs_acc):  # each pass over a loader is its next epoch
                last = train_steps(trainer, model, optimizer, acc_loaders[name]["train"][key], progress=bar)
            accuracy[name] = (last.accuracy, trainer.model_evaluate(model, acc_loaders[name]["val"][key], None, 0)[1],
                              trainer.model_evaluate(model, val_augmented, None, 0)[1])
    n_acc_train = len(acc_loaders["fast"]["train"][key].dataset)
    n_acc_val = len(acc_loaders["fast"]["val"][key].dataset)
    epochs = f"{args.epochs_acc} epoch{'s' if args.epochs_acc != 1 else ''}"
    say(f"sample, {epochs} at {acc_r} px, batch {args.acc_batch_size} ({n_acc_train} train / {n_acc_val} val images), "
        f"augmentation {args.acc_augment}, accuracy train (last epoch) / val / val augmented as in training:")
    for name in trainers:
        say(f"{name} accuracy: " + " / ".join(f"{a:.3f}" for a in accuracy[name]))
    speedup = amortised / rates["course"]
    say(f"speedup: {speedup:.2f}")
    return {"course_images_per_s": rates["course"], "fast_images_per_s": rates["fast"],
            "fast_amortised_images_per_s": amortised, "decode_seconds": decode_seconds,
            "course_accuracy": accuracy["course"][1], "fast_accuracy": accuracy["fast"][1],
            "course_accuracy_augmented": accuracy["course"][2], "fast_accuracy_augmented": accuracy["fast"][2],
            "speedup": speedup}


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m lecture_utils.bench --help``."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        run_bench(args)
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
