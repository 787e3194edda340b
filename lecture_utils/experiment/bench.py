"""Benchmark: the course's training pipeline against the cached path, same model, same batches.

``python -m lecture_utils.experiment.bench --device cpu`` draws (once) a folder of Animals-10-sized JPEGs, then times
``ModelTrainer``'s own training step fed by the course's pipeline (ImageFolder + transforms.v2 + DataLoader, batch
192, num_workers=0) and by the cached one, ``data.make_loaders(..., cached=True)`` (decode once, augment
per image on the device with kornia). Both train in the precision the device gets (``lecture_utils.device``:
fp32 on a CPU, bf16 or fp16 on a GPU) and in the trainer's channels_last, so the speedup is the data path's. Both start from the same weights;
after untimed warm-up steps they alternate timed repeats, so that a busy machine slows both alike. Then both train
for a few epochs on the embedded sample (Fashion-MNIST), to show that the speed does not come from learning less.
The last line, ``speedup: X.XX``, is cached over course images/s with the one-off decode amortised over 10 epochs.
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

from lecture_utils.recipe import RECOMMENDED

__all__ = ["make_jpeg_dataset", "StepStats", "train_steps", "run_bench", "main"]

JPEG_SIZES = ((300, 225), (300, 200), (225, 300), (300, 240), (280, 210))  # (width, height)
SHAPES = ("circle", "square", "triangle", "cross", "ring")
AMORTISE_EPOCHS = 10


# the synthetic data set: every random draw below is in a fixed order, so a seed always gives the same files
def _make_image(label: int, rng: np.random.Generator) -> Image.Image:
    # a smooth two-colour gradient with sensor-like noise, under 1-3 objects of the label's shape and fill
    width, height = JPEG_SIZES[int(rng.integers(len(JPEG_SIZES)))]
    a, b, angle = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:height, 0:width]
    t = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    background = a + (b - a) * t[..., None] + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw, shape = ImageDraw.Draw(image), SHAPES[label % len(SHAPES)]
    for _ in range(int(rng.integers(1, 4))):
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
        elif shape == "cross":  # a wide bar and a tall one
            for dx, dy in ((r, r / 3), (r / 3, r)):
                draw.rectangle([cx - dx, cy - dy, cx + dx, cy + dy], fill=fill)
        else:  # ring
            draw.ellipse(box, outline=fill, width=max(2, int(r / 4)))
        if label >= len(SHAPES):  # the striped classes: dark stripes across the object's box
            step = max(4, int(r / 3))
            for y in range(int(cy - r), int(cy + r), step):
                draw.line([(cx - r, y), (cx + r, y)], fill=(0, 0, 0), width=max(1, step // 3))
    return image


def make_jpeg_dataset(root: str | Path, images: int = 2000, val_fraction: float = 0.1, seed: int = 0,
                      num_classes: int = 10) -> Path:
    """A folder ``root/{train,val}/class_XX/*.jpg`` of Animals-10-sized JPEGs, reused when complete: classes differ
    by the drawn shape and fill (plain or striped); colours, sizes and positions are random."""
    if int(images) != images or images < num_classes:
        raise ValueError(f"images must be an integer >= num_classes ({num_classes}), got {images!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if not 2 <= num_classes <= 2 * len(SHAPES):
        raise ValueError(f"num_classes must be in [2, {2 * len(SHAPES)}], got {num_classes!r}")
    root, marker = Path(root), Path(root) / "complete.json"
    spec = {"images": int(images), "val_fraction": val_fraction, "seed": int(seed),
            "num_classes": int(num_classes), "format": 1}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return root
    for split in ("train", "val"):  # a different or unfinished set: start again
        if (root / split).is_dir():
            shutil.rmtree(root / split)
    rng = np.random.default_rng(seed)
    for split, count in (("train", int(images)), ("val", int(round(images * val_fraction)))):
        for k in range(count):
            folder = root / split / f"class_{k % num_classes:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            _make_image(k % num_classes, rng).save(folder / f"{k:05d}.jpg", quality=90)
    marker.write_text(json.dumps(spec))
    return root


# timing ModelTrainer's own training step
@dataclass
class StepStats:
    """What a run of training steps did: images seen, training accuracy, wall and fetch seconds."""
    images: int
    accuracy: float
    seconds: float
    fetch_seconds: float


def train_steps(trainer: Any, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable,
                steps: int | None = None, progress: Any = None, criterion: Any = None,
                scheduler: Any = None) -> StepStats:
    """One ``trainer.model_train`` pass over `steps` batches of `batches` (all when None), timed.

    `criterion` (default cross-entropy) and `scheduler` (stepped per batch) as ``model_train`` takes them.
    """
    stats = StepStats(0, 0.0, 0.0, 0.0)

    def timed() -> Iterator:  # counts the images and the time spent waiting for each batch
        iterator = iter(batches)
        for _ in itertools.count() if steps is None else range(steps):
            t0 = time.perf_counter()
            batch = next(iterator, None)
            stats.fetch_seconds += time.perf_counter() - t0
            if batch is None:
                return
            stats.images += len(batch[1])
            yield batch
            if progress is not None:
                progress.update(1)

    def clock() -> float:  # CUDA runs asynchronously: wait for it before reading the clock
        if trainer.device.type == "cuda":
            torch.cuda.synchronize(trainer.device)
        return time.perf_counter()

    start = clock()
    _, stats.accuracy = trainer.model_train(model, timed(), criterion, optimizer, epoch=1, scheduler=scheduler)
    stats.seconds = clock() - start
    return stats


def _parse_pair(text: str) -> tuple[int, int] | None:
    if text in ("", "none", "all"):
        return None
    try:
        values = [int(p) for p in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected N or TRAIN,VAL images per class (or 'all'), got {text!r}")
    return (values[0], values[-1])


def _parser() -> argparse.ArgumentParser:
    from lecture_utils.augment import AUGMENTATIONS

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.experiment.bench", description=(
        "Train the same model with the course's data pipeline and with the cached path; "
        "print images/s of each, their accuracy on the sample, and the speedup."))
    add = parser.add_argument
    add("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    add("--model", default="mobilenet_v2", help="a name of lecture_utils.models.list_models()")
    add("--width", type=float, help="width_multiplier passed to the model")
    add("--resolution", type=int, default=96, help="input size of the speed test")
    add("--batch-size", type=int, default=192, help="the course's 192 by default")
    add("--images", type=int, default=2000, help="training JPEGs to draw (kept and reused)")
    add("--warmup", type=int, default=3, help="untimed steps per pipeline first (allocator and kernel caches settle)")
    add("--steps", type=int, default=3, help="timed training steps per repeat")
    add("--repeats", type=int, default=3, help="timed repeats per pipeline (median reported)")
    add("--epochs-acc", type=int, default=3, help="epochs of the accuracy run (by default 3 x 47 steps of 64 images)")
    add("--acc-resolution", type=int, default=32, help="input size of the accuracy run")
    add("--acc-augment", choices=tuple(AUGMENTATIONS), default="light",
        help="training augmentation of the accuracy run (default: %(default)s; the course's turns every image "
             "30-70 degrees, so upright validation images stay near chance)")
    add("--acc-batch-size", type=int, default=64,
        help="batch of the accuracy run (more, smaller steps learn more in the same time)")
    add("--acc-subset", type=_parse_pair, help="images per class of the sample, N or TRAIN,VAL (default: all)")
    add("--seed", type=int, default=0)
    add("--data-dir", type=Path, help="where the JPEGs are made and kept (default: <data root>/bench/)")
    add("--threads", type=int, help="torch CPU threads (default: torch's)")
    add("--no-progress", action="store_true", help="no progress bars")
    return parser


def run_bench(args: argparse.Namespace, out: Any = None) -> dict[str, float]:
    """Run the benchmark described by parsed `args`; print the report to `out` and return its numbers.

    On CUDA both pipelines run with ``cudnn.benchmark`` on (their batches keep one shape).
    """
    from lecture_utils._util import resolve_device
    from lecture_utils.trainer import cudnn_autotune

    device = resolve_device(args.device)
    with cudnn_autotune(device):
        return _run_bench(args, device, out)


def _run_bench(args: argparse.Namespace, device: torch.device, out: Any) -> dict[str, float]:
    from lecture_utils._util import positive_int
    from lecture_utils.models import create_model
    from lecture_utils.trainer import ModelTrainer

    def say(line: str) -> None:
        print(line, file=out or sys.stdout, flush=True)

    for name in "warmup resolution batch_size images steps repeats epochs_acc acc_resolution acc_batch_size".split():
        positive_int(getattr(args, name), f"--{name.replace('_', '-')}", minimum=0 if name == "warmup" else 1)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cuda, threads = device.type == "cuda", torch.get_num_threads()
    torch.manual_seed(args.seed)
    width = {} if args.width is None else {"width_multiplier": args.width}
    initial = create_model(args.model, num_classes=10, **width)
    where = f"cuda ({torch.cuda.get_device_name(device)})" if cuda else f"cpu ({threads} thread{'s' * (threads != 1)})"
    say(f"bench: {args.model}{'' if args.width is None else f' width {args.width}'} at {args.resolution} px, "
        f"batch {args.batch_size}, {where}, torch {torch.__version__}")
    if hasattr(os, "getloadavg"):  # other work on the machine slows both pipelines, unevenly
        say(f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    loaders, decode_seconds, n_train = _bench_loaders(args, device, say)
    # ModelTrainer's own step for both, in the same precision and memory format (the lessons' channels_last):
    # a difference in speed is the data path's, not the layout's
    trainers = {"course": ModelTrainer(epoch_step=0, device=device, channels_last=True),
                "cached": ModelTrainer(epoch_step=0, device=device, channels_last=True)}
    rates = _time_pipelines(args, trainers, initial, loaders, say)
    epoch_images = AMORTISE_EPOCHS * n_train
    amortised = epoch_images / (epoch_images / rates["cached"] + decode_seconds)
    say(f"cached with the decode amortised over {AMORTISE_EPOCHS} epochs of {n_train} images: {amortised:.1f} images/s")
    say(f"speedup, steady state: {rates['cached'] / rates['course']:.2f}")
    accuracy = _compare_accuracy(args, trainers, initial, device, say)
    speedup = amortised / rates["course"]
    say(f"speedup: {speedup:.2f}")
    return {"course_images_per_s": rates["course"], "cached_images_per_s": rates["cached"],
            "cached_amortised_images_per_s": amortised, "decode_seconds": decode_seconds,
            "course_accuracy": accuracy["course"][1], "cached_accuracy": accuracy["cached"][1],
            "course_accuracy_augmented": accuracy["course"][2], "cached_accuracy_augmented": accuracy["cached"][2],
            "speedup": speedup}




def _bench_loaders(args: argparse.Namespace, device: torch.device, say: Any) -> tuple[dict, float, int]:
    """The course's loaders and the cached ones over the bench's JPEGs: one builder, the same images, order and
    augmentation ranges; with the cache's decode time and the training images."""
    from lecture_utils import data, datasets
    from lecture_utils.device import choose_precision

    precision, cuda = choose_precision(device), device.type == "cuda"
    data_dir = args.data_dir or datasets.data_root() / "bench" / f"jpeg{args.images}_seed{args.seed}"
    t0 = time.perf_counter()
    make_jpeg_dataset(data_dir, images=args.images, seed=args.seed)
    say(f"data: {args.images} training JPEGs of about 300x225 px in 10 classes, ready in "
        f"{time.perf_counter() - t0:.1f} s ({data_dir})")
    say("course pipeline: ImageFolder + transforms.v2 (flip, colour jitter, affine, resize) + "
        f"DataLoader(batch {args.batch_size}, shuffle, num_workers=0), channels_last, {precision}")
    say(f"cached pipeline: uint8 cache on {device.type} + per-image augmentation on {device.type} (kornia), "
        + f"channels_last, {precision}" + (", cudnn.benchmark" if cuda else ""))

    key, options = f"R{args.resolution}", dict(batch_size=args.batch_size, root=data_dir, seed=args.seed, device=device)
    loaders = {"course": data.make_loaders("animals10", [args.resolution], **options)}
    t0 = time.perf_counter()
    loaders["cached"] = data.make_loaders("animals10", [args.resolution], cached=True, **options)
    decode_seconds = time.perf_counter() - t0
    n_train = len(loaders["cached"]["train"][key].dataset)
    say(f"cached path: {n_train + len(loaders['cached']['test'][key].dataset)} images (train and val) decoded and resized "
        f"once in {decode_seconds:.2f} s, {loaders['cached']['train'][key].nbytes / 2**20:.0f} MiB (train) on the device")

    return loaders, decode_seconds, n_train


def _time_pipelines(args: argparse.Namespace, trainers: dict, initial: Any, loaders: dict, say: Any) -> dict[str, float]:
    """Median training images per second of each pipeline, alternating timed runs of ``--steps`` steps."""
    from tqdm import tqdm

    key = f"R{args.resolution}"
    runs = {}  # train_steps' first four arguments, per pipeline
    for name, trainer in trainers.items():
        model = copy.deepcopy(initial)
        runs[name] = (trainer, model, torch.optim.Adam(model.parameters(), lr=1e-3), loaders[name]["train"][key])
    results: dict[str, list[StepStats]] = {name: [] for name in trainers}
    total = 2 * (args.warmup + args.repeats * args.steps)
    with tqdm(total=total, desc="timing", unit="step", disable=args.no_progress, leave=False) as bar:
        for name in trainers:
            if args.warmup:  # untimed: first-step setup, cudnn autotuning, the allocator's warm-up
                train_steps(*runs[name], args.warmup, bar)
        for _ in range(args.repeats):  # alternate, so that a busy machine slows both alike
            for name in trainers:
                results[name].append(train_steps(*runs[name], args.steps, bar))
    rates = {}
    for name, timed in results.items():
        per_run = [r.images / r.seconds for r in timed]
        rates[name] = statistics.median(per_run)
        fetch_share = sum(r.fetch_seconds for r in timed) / sum(r.seconds for r in timed)
        say(f"{name}: {rates[name]:.1f} images/s (median of {args.repeats} x {args.steps} steps: "
            f"{' '.join(f'{r:.1f}' for r in per_run)}; {100 * fetch_share:.0f}% of the time fetching batches)")
    return rates


def _compare_accuracy(args: argparse.Namespace, trainers: dict, initial: Any, device: torch.device,
                      say: Any) -> dict[str, tuple[float, float, float]]:
    """Both pipelines trained on the embedded sample: the speed must not come from doing less."""
    from tqdm import tqdm

    from lecture_utils import data

    acc_r, key = args.acc_resolution, f"R{args.acc_resolution}"
    options = dict(batch_size=args.acc_batch_size, subset=args.acc_subset, seed=args.seed, augment=args.acc_augment)
    acc_loaders = {"course": data.make_loaders("sample", [acc_r], **options),
                   "cached": data.make_loaders("sample", [acc_r], cached=True, device=device, **options)}
    # one augmented validation set for both (with --acc-augment course, upright images stay near chance)
    val_augmented = acc_loaders["cached"]["test"][key].with_augment(args.acc_augment, seed=args.seed + 1)
    accuracy: dict[str, tuple[float, float, float]] = {}
    total = args.epochs_acc * sum(len(acc_loaders[name]["train"][key]) for name in trainers)
    with tqdm(total=total, desc="accuracy", unit="step", disable=args.no_progress, leave=False) as bar:
        for name, trainer in trainers.items():
            model = copy.deepcopy(initial)
            train_loader = acc_loaders[name]["train"][key]  # the lessons' recipe (lecture_utils.recipe)
            optimizer, scheduler = RECOMMENDED.build(model, len(train_loader), args.epochs_acc)
            for _epoch in range(args.epochs_acc):  # each pass over a loader is its next epoch
                last = train_steps(trainer, model, optimizer, train_loader, progress=bar,
                                   criterion=RECOMMENDED.criterion(), scheduler=scheduler)
            accuracy[name] = (last.accuracy, trainer.model_evaluate(model, acc_loaders[name]["test"][key], None, 0)[1],
                              trainer.model_evaluate(model, val_augmented, None, 0)[1])
    cached_sets = acc_loaders["cached"]
    say(f"sample, {args.epochs_acc} epoch{'s' * (args.epochs_acc != 1)} at {acc_r} px, batch {args.acc_batch_size} "
        f"({len(cached_sets['train'][key].dataset)} train / {len(cached_sets['test'][key].dataset)} val images), "
        f"augmentation {args.acc_augment}, recipe {RECOMMENDED.describe()}, accuracy train (last epoch) / val / val augmented as in training:")
    for name in trainers:
        say(f"{name} accuracy: " + " / ".join(f"{a:.3f}" for a in accuracy[name]))
    return accuracy


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m lecture_utils.experiment.bench --help``; ``... bench gpu-check --help``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["gpu-check"]:
        from lecture_utils.experiment.gpucheck import main as gpu_check_main

        return gpu_check_main(argv[1:])
    parser = _parser()
    try:
        run_bench(parser.parse_args(argv))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
