"""Benchmark: the course's training pipeline against the fast path, same model, same batches.

Command line::

    python -m lecture_utils.bench --device cpu --model mobilenet_v2 --resolution 96

1. Makes (once, then reuses) a folder of JPEGs shaped like Animals-10: about 300 x 225 pixels,
   10 classes told apart by the shape and fill of what is drawn on them.
2. Times training steps on it with (a) the course's pipeline: ImageFolder + transforms.v2
   (augment) + DataLoader(batch 192, shuffle, num_workers=0), fp32, NCHW; and (b) the fast path
   (:mod:`lecture_utils.fastdata`: decode once, augment per sample on the device, channels_last;
   bf16 autocast and cudnn.benchmark on CUDA). Both start from the same weights; each repeat runs
   a fixed number of steps after untimed warm-up steps; the two pipelines alternate repeats so that a
   busy machine slows both alike. The fast path's one-off decode is reported on its own and
   folded into an over-10-epochs figure.
3. Trains both for a few epochs on the embedded sample (Fashion-MNIST) with the ``light``
   augmentation (``--acc-augment``) and prints their accuracy: on the last training epoch, on the
   validation images, and on the validation images augmented as in training.

The last line is ``speedup: X.XX``: fast over course images/s, the fast path's decode cost
amortised over 10 epochs of the synthetic set.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

__all__ = ["make_jpeg_dataset", "StepStats", "train_steps", "evaluate", "run_bench", "main"]

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
# training steps, the same code for both pipelines


class _Run:
    """A model, its optimizer and how a pipeline feeds it (memory format, autocast, cudnn autotune)."""

    def __init__(self, model: torch.nn.Module, device: torch.device, *, channels_last: bool,
                 amp_dtype: torch.dtype | None, cudnn_benchmark: bool) -> None:
        self.device = device
        self.channels_last = channels_last
        self.amp_dtype = amp_dtype
        self.cudnn_benchmark = cudnn_benchmark
        self.model = model.to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)  # the course's optimizer
        self.criterion = torch.nn.CrossEntropyLoss()

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


@dataclass
class StepStats:
    """What a run of training steps did: images seen, correct predictions, wall and fetch seconds."""

    images: int
    correct: int
    seconds: float
    fetch_seconds: float


def train_steps(run: _Run, batches: Iterable, steps: int | None = None, progress: Any = None) -> StepStats:
    """Train on `steps` batches of `batches` (all of them when None) and time it."""
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = run.cudnn_benchmark
    run.model.train()
    images, fetch = 0, 0.0
    correct = torch.zeros((), dtype=torch.int64, device=run.device)  # summed on the device: no sync per step
    run._sync()
    start = time.perf_counter()
    iterator = iter(batches)
    step = 0
    while steps is None or step < steps:
        t0 = time.perf_counter()
        try:
            x, y = next(iterator)
        except StopIteration:
            break
        fetch += time.perf_counter() - t0
        x, y = run._inputs(x), y.to(run.device, non_blocking=True)
        with run._autocast():
            outputs = run.model(x)
            loss = run.criterion(outputs, y)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        correct += (outputs.detach().argmax(dim=1) == y).sum()
        images += len(y)
        step += 1
        if progress is not None:
            progress.update(1)
    run._sync()
    return StepStats(images, int(correct), time.perf_counter() - start, fetch)


@torch.no_grad()
def evaluate(run: _Run, batches: Iterable) -> float:
    """Top-1 accuracy of `run`'s model on `batches`, in [0, 1]."""
    run.model.eval()
    correct, total = 0, 0
    for x, y in batches:
        x, y = run._inputs(x), y.to(run.device, non_blocking=True)
        with run._autocast():
            correct += int((run.model(x).argmax(dim=1) == y).sum())
        total += len(y)
    return correct / max(total, 1)


# ---------------------------------------------------------------------------------------------
# the benchmark


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


def _median_rate(runs: Sequence[StepStats]) -> tuple[float, list[float], float]:
    rates = [r.images / r.seconds for r in runs]
    fetch_share = sum(r.fetch_seconds for r in runs) / sum(r.seconds for r in runs)
    return statistics.median(rates), rates, fetch_share


def run_bench(args: argparse.Namespace, out: Any = None) -> dict[str, float]:
    """Run the benchmark described by parsed `args`; print the report to `out` and return its numbers."""
    from tqdm import tqdm

    from lecture_utils import data, fastdata
    from lecture_utils.models import create_model

    out = out or sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    if args.warmup < 0:
        raise ValueError(f"--warmup must be >= 0, got {args.warmup}")
    for name in ("resolution", "batch_size", "images", "steps", "repeats", "epochs_acc", "acc_resolution",
                 "acc_batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    amp_dtype = torch.bfloat16 if cuda else None
    disable = args.no_progress
    model_kwargs: dict[str, Any] = {"num_classes": 10}
    if args.width is not None:
        model_kwargs["width_multiplier"] = args.width

    torch.manual_seed(args.seed)
    initial = create_model(args.model, **model_kwargs)
    initial_state = copy.deepcopy(initial.state_dict())
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
    say(f"fast pipeline: uint8 cache on {device.type} + per-sample augmentation on {device.type}, channels_last, "
        + ("bf16 autocast, cudnn.benchmark" if cuda else "fp32"))

    course_loader = data.make_loaders("animals10", [args.resolution], batch_size=args.batch_size, root=data_dir,
                                      seed=args.seed, num_workers=0)["train"][f"R{args.resolution}"]
    train_set = data.get_dataset("animals10", "train", root=data_dir)
    cache = fastdata.build_cache(train_set, [args.resolution])
    decode_seconds = cache.seconds
    stats = data.ANIMALS10_STATS
    fast_loader = fastdata.FastLoader(
        cache.images[args.resolution], cache.labels, sizes=cache.sizes, batch_size=args.batch_size, shuffle=True,
        augment=True, mean=stats["mean"], std=stats["std"], device=device, seed=args.seed)
    where_cache = "the device" if fast_loader.resident else "host memory (streamed)"
    say(f"fast cache: {cache.decoded} images decoded and resized once in {decode_seconds:.2f} s, "
        f"{fast_loader.nbytes / 2**20:.0f} MiB on {where_cache}")

    course = _Run(copy.deepcopy(initial), device, channels_last=False, amp_dtype=None, cudnn_benchmark=False)
    fast = _Run(copy.deepcopy(initial), device, channels_last=True, amp_dtype=amp_dtype, cudnn_benchmark=cuda)
    total = 2 * (args.warmup + args.repeats * args.steps)
    results: dict[str, list[StepStats]] = {"course": [], "fast": []}
    with tqdm(total=total, desc="timing", unit="step", disable=disable, leave=False) as bar:
        for run, loader in ((course, course_loader), (fast, fast_loader)):
            if args.warmup:  # untimed: first-step setup, cudnn autotuning, the allocator's warm-up
                train_steps(run, loader, steps=args.warmup, progress=bar)
        for _ in range(args.repeats):  # alternate, so that a busy machine slows both alike
            for name, run, loader in (("course", course, course_loader), ("fast", fast, fast_loader)):
                results[name].append(train_steps(run, loader, steps=args.steps, progress=bar))
    course_rate, course_rates, course_fetch = _median_rate(results["course"])
    fast_rate, fast_rates, fast_fetch = _median_rate(results["fast"])
    runs = f"{args.repeats} x {args.steps} steps"
    say(f"course: {course_rate:.1f} images/s (median of {runs}: "
        f"{' '.join(f'{r:.1f}' for r in course_rates)}; {100 * course_fetch:.0f}% of the time fetching batches)")
    say(f"fast: {fast_rate:.1f} images/s (median of {runs}: "
        f"{' '.join(f'{r:.1f}' for r in fast_rates)}; {100 * fast_fetch:.0f}% of the time fetching batches)")
    n_train = len(cache)
    epoch_images = AMORTISE_EPOCHS * n_train
    amortised = epoch_images / (epoch_images / fast_rate + decode_seconds)
    say(f"fast with the decode amortised over {AMORTISE_EPOCHS} epochs of {n_train} images: "
        f"{amortised:.1f} images/s")
    say(f"speedup, steady state: {fast_rate / course_rate:.2f}")

    # -- accuracy on the embedded sample: the speed must not come from doing less
    acc_r, key = args.acc_resolution, f"R{args.acc_resolution}"
    course_loaders = data.make_loaders("sample", [acc_r], batch_size=args.acc_batch_size, subset=args.acc_subset,
                                       seed=args.seed, num_workers=0, augment=args.acc_augment)
    fast_loaders = fastdata.make_fast_loaders("sample", [acc_r], batch_size=args.acc_batch_size, subset=args.acc_subset,
                                              seed=args.seed, device=device, augment=args.acc_augment)
    # Validation on upright images and on images augmented as in training (with --acc-augment
    # course the upright ones stay near chance: every training image was turned 30-70 degrees).
    val_aug = _augmented_val_loaders(args, acc_r, fast_loaders["val"][key])
    accuracy: dict[str, tuple[float, float, float]] = {}
    steps_total = args.epochs_acc * (len(course_loaders["train"][key]) + len(fast_loaders["train"][key]))
    with tqdm(total=steps_total, desc="accuracy", unit="step", disable=disable, leave=False) as bar:
        for name, loaders, flags in (
                ("course", course_loaders, dict(channels_last=False, amp_dtype=None, cudnn_benchmark=False)),
                ("fast", fast_loaders, dict(channels_last=True, amp_dtype=amp_dtype, cudnn_benchmark=cuda))):
            model = create_model(args.model, **model_kwargs)
            model.load_state_dict(initial_state)
            run = _Run(model, device, **flags)
            for _epoch in range(args.epochs_acc):
                last = train_steps(run, loaders["train"][key], progress=bar)
            accuracy[name] = (last.correct / last.images, evaluate(run, loaders["val"][key]),
                              evaluate(run, val_aug[name]))
    n_acc_train = len(fast_loaders["train"][key].dataset)
    n_acc_val = len(fast_loaders["val"][key].dataset)
    epochs = f"{args.epochs_acc} epoch{'s' if args.epochs_acc != 1 else ''}"
    say(f"sample, {epochs} at {acc_r} px, batch {args.acc_batch_size} ({n_acc_train} train / {n_acc_val} val images), "
        f"augmentation {args.acc_augment}, accuracy "
        "train (last epoch) / val / val augmented as in training:")
    for name in ("course", "fast"):
        say(f"{name} accuracy: " + " / ".join(f"{a:.3f}" for a in accuracy[name]))
    speedup = amortised / course_rate
    say(f"speedup: {speedup:.2f}")
    return {"course_images_per_s": course_rate, "fast_images_per_s": fast_rate,
            "fast_amortised_images_per_s": amortised, "decode_seconds": decode_seconds,
            "course_accuracy": accuracy["course"][1], "fast_accuracy": accuracy["fast"][1],
            "course_accuracy_augmented": accuracy["course"][2], "fast_accuracy_augmented": accuracy["fast"][2],
            "speedup": speedup}


def _augmented_val_loaders(args: argparse.Namespace, resolution: int, fast_val: Any) -> dict[str, Any]:
    """The sample's validation images with the accuracy run's training augmentation, through each pipeline."""
    from torch.utils.data import DataLoader, Subset

    from lecture_utils import data

    transform = data.define_transform(resolution, data.SAMPLE_STATS, augment=args.acc_augment)
    course_set = data.get_dataset("sample", "val", transform=transform)
    if args.acc_subset is not None:
        indices = data.balanced_indices(data.dataset_targets(course_set), args.acc_subset[1], args.seed)
        course_set = Subset(course_set, indices)
    torch.manual_seed(args.seed + 1)
    course = DataLoader(course_set, batch_size=args.acc_batch_size, shuffle=False, num_workers=0,
                        collate_fn=data.collate_skip_none)
    return {"course": course, "fast": fast_val.with_augment(args.acc_augment, seed=args.seed + 1)}


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
