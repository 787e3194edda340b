"""``python -m lecture_utils.experiment.bench gpu-check``: measure each lesson's full profile on this machine's GPU.

For lessons 01-08 it trains the lesson's network as the lesson does (``ModelTrainer.fit`` with the
lesson's recipe: fused optimiser on CUDA, per-batch schedule, label smoothing, autocast, cuDNN
autotuning; the cached data path at the lesson's resolution and batch) for one warm-up epoch of
:data:`STEPS` steps and one timed epoch, then times an evaluation pass and one checkpoint. Per lesson
it prints images/second of training and evaluation, peak GPU memory (counters reset per lesson) and
host memory, the precision, the run's start, and the lesson's projected time (epochs, checkpoints,
start-up) beside the estimate of :mod:`lecture_utils.estimate`, for a T4 and for this card when the
estimate knows it, with the estimate's error. Lesson 09's plan is projected from six of its
conditions measured the same way (each model at width 1.0, at the largest and the smallest
resolution). On an H100-class GPU the whole check takes a few minutes. Everything goes to a JSON
file too. Without CUDA it says so and exits 0 (``--device cpu`` runs the same code on the CPU, to
test it).
"""

from __future__ import annotations

import argparse
import json
import os
import math
import platform
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["measure", "gpu_check", "main"]

LESSONS = ("01", "02", "03", "04", "05", "06", "07", "08")
# steps of the timed epoch (after as many of warm-up): 50 steps of 128 images make a T4's slowest lesson's
# timed epoch about 4 s (VGG16 at 64 px), long beside a step's jitter and the 16-step loss reads
STEPS = 50


def _peak_host_bytes() -> int:
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: Any, loader: Any, device: Any, aux: bool = False, recipe: Any = None,
            checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Train `model` as a lesson does and time it: :func:`lecture_utils.trainer.train`, the lessons' own call.

    The recipe's optimiser (fused on CUDA, built after the model is on the device), its per-batch
    schedule and label smoothing, autocast and cuDNN's autotuning, over `loader` for two epochs: the
    first warms up (autotuning, the allocator), the second is timed; each epoch's evaluation pass and
    checkpoint (in `checkpoint_dir`, default a temporary folder) are timed too. GPU memory counters
    are reset first, so the peaks are this model's.
    """
    import gc
    import tempfile

    import torch

    from lecture_utils.recipe import RECOMMENDED, fused_for
    from lecture_utils.trainer import train

    recipe = RECOMMENDED if recipe is None else recipe
    if device.type == "cuda":  # an earlier lesson's blocks are neither counted nor kept
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    with tempfile.TemporaryDirectory(dir=checkpoint_dir) as folder:
        started = time.perf_counter()
        history = train(model, recipe, loader, loader, 2, device=device, aux=aux, progress=False, epoch_step=0,
                        checkpoint=Path(folder) / "check.pt", checkpoint_interval=0)
        _synchronize(device)
        wall_s = time.perf_counter() - started
    seconds = history.seconds
    first_s, train_s = seconds["train"]
    images = len(loader.dataset)
    result = {"precision": history.precision, "images": images, "steps": len(loader),
              "fused_optimizer": bool(fused_for(model.parameters())),
              "train_images_per_s": images / train_s, "eval_images_per_s": images / seconds["val"][-1],
              # what the run spent outside its epochs and checkpoints: building, moving, the first autotuning
              "setup_seconds": max(wall_s - sum(sum(v) for v in seconds.values()), 0.0),
              "warmup_extra_seconds": max(first_s - train_s, 0.0),
              "checkpoint_seconds": seconds["checkpoint"][-1], "peak_host_bytes": _peak_host_bytes()}
    if device.type == "cuda":
        result["peak_gpu_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
        result["peak_gpu_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
    return result


def _loader(dataset: str, resolution: int, batch_size: int, steps: int, device: Any, data_root: str | None) -> Any:
    """The lesson's cached training loader over ``steps`` batches of its data set (synthetic if absent)."""
    import torch

    from lecture_utils.data import make_loaders

    per_class = math.ceil(steps * batch_size / 10)
    try:
        loaders = make_loaders(dataset, [resolution], batch_size=batch_size, subset=(per_class, 1), augment=False,
                               cached=True, device=device, root=data_root)
        return loaders["train"][f"R{resolution}"]
    except FileNotFoundError:  # the speed does not depend on what the pixels show
        from lecture_utils.cached import CachedLoader

        generator = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (steps * batch_size, 1, 28, 28), dtype=torch.uint8, generator=generator)
        labels = torch.arange(steps * batch_size) % 10
        return CachedLoader(images, labels, batch_size=batch_size, shuffle=True, device=device,
                            resolution=resolution)


def estimate_kind(device_name: str) -> str | None:
    """Which of :data:`lecture_utils.estimate.GPUS` the device is (by its name), or None."""
    name = device_name.upper()
    for marker, kind in (("T4", "t4"), ("A100", "a100"), ("H100", "h100"), ("H200", "h100")):
        if marker in name:
            return kind
    return None


def project(row: dict[str, Any], epochs: int, train_images: int, val_images: int) -> float:
    """A lesson's wall time from its measured rates: epochs, a checkpoint each, the run's start, the process's.

    The run's start is measured (the model's build, the optimiser's, the first epoch's extra time:
    autotuning); the process's start (CUDA's context, the data's download) is the estimate's allowance.
    """
    from lecture_utils.estimate import PROCESS_START_S

    return (epochs * (train_images / row["train_images_per_s"] + val_images / row["eval_images_per_s"]
                      + row["checkpoint_seconds"])
            + row["build_seconds"] + row["setup_seconds"] + row["warmup_extra_seconds"] + PROCESS_START_S)


def _lesson_row(lesson: str, device: Any, steps: int, data_root: str | None, kind: str | None,
                checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    from lecture_utils import estimate
    from lecture_utils.models import create_model
    from lecture_utils.settings import dataset_sizes, lesson_settings

    cfg = lesson_settings(lesson, "full")
    loader = _loader(cfg.dataset, cfg.resolution, cfg.batch_size, steps, device, data_root)
    started = time.perf_counter()
    model = cfg.create_model()
    row = {"lesson": lesson, "model": cfg.model, "model_kwargs": cfg.model_kwargs, "resolution": cfg.resolution,
           "batch_size": cfg.batch_size, "epochs": cfg.epochs, "build_seconds": time.perf_counter() - started}
    row.update(measure(model, loader, device, aux=cfg.model == "googlenet", recipe=cfg.recipe,
                       checkpoint_dir=checkpoint_dir))
    n_train, n_val = dataset_sizes(cfg.dataset, (cfg.train_subset, cfg.val_subset))
    row["projected_seconds"] = project(row, cfg.epochs, n_train, n_val)
    cost = estimate.training_cost(estimate.meta_model(create_model, cfg.model, num_classes=10, **cfg.model_kwargs),
                                  cfg.resolution)
    for gpu in dict.fromkeys(["t4", kind or "t4"]):
        row[f"estimated_seconds_{gpu}"] = estimate.lesson_seconds(cfg, gpu)
        row[f"estimated_train_images_per_s_{gpu}"] = cfg.batch_size / estimate.step_seconds(cost, cfg.batch_size, gpu)
    if kind is not None:
        row["estimate_kind"] = kind
        row["estimate_error"] = row[f"estimated_seconds_{kind}"] / row["projected_seconds"] - 1
    return row


def _format(row: dict[str, Any]) -> str:
    from lecture_utils.estimate import format_minutes

    gpu = (f", GPU peak {row['peak_gpu_allocated_bytes'] / 2**30:.2f} GiB allocated "
           f"({row['peak_gpu_reserved_bytes'] / 2**30:.2f} reserved)" if "peak_gpu_reserved_bytes" in row else "")
    kind = row.get("estimate_kind")
    versus = (f"; estimated here ({kind}) {format_minutes(row[f'estimated_seconds_{kind}'])}, "
              f"{row[f'estimated_train_images_per_s_{kind}']:.0f} img/s: error {row['estimate_error']:+.0%}"
              if kind else "")
    start = row["build_seconds"] + row["setup_seconds"] + row["warmup_extra_seconds"]  # the run's, measured
    return (f"lesson {row['lesson']} {row['model']} {row['resolution']} px, batch {row['batch_size']}, "
            f"{row['precision']}{', fused optimiser' * row['fused_optimizer']}: train {row['train_images_per_s']:.0f} "
            f"img/s, eval {row['eval_images_per_s']:.0f} img/s{gpu}, host peak {row['peak_host_bytes'] / 2**30:.2f} GiB; "
            f"checkpoint {row['checkpoint_seconds']:.1f} s, start {start:.1f} s; "
            f"projected {row['epochs']} epochs {format_minutes(row['projected_seconds'])} (estimated on a T4 "
            f"{format_minutes(row['estimated_seconds_t4'])}){versus}")


def gpu_check(lessons: Sequence[str] = LESSONS, steps: int = STEPS, device: str | None = None,
              out: str | Path | None = None, data_root: str | None = None, say: Any = print,
              with_plan: bool = True) -> dict[str, Any] | None:
    """Measure `lessons` (and project lesson 09's plan) on `device` (default CUDA); None without CUDA.

    Returns the report and writes it to `out` as JSON.
    """
    import torch

    from lecture_utils._util import atomic_write, check_writable_file, positive_int, resolve_device, versions

    positive_int(steps, "steps")
    if out is not None:  # before the measurement, which a report that cannot be written would lose
        check_writable_file(out, "report file")
    if device is None:
        if not torch.cuda.is_available():
            say(f"gpu-check: no CUDA device here (torch {torch.__version__}); nothing to measure. "
                "Run it on a machine with a GPU (or pass --device cpu to try the check itself).")
            return None
        device = "cuda"
    device = resolve_device(device)  # --device cuda without CUDA: one line, not the driver's error
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        say(f"gpu-check on {name} (compute capability {major}.{minor}), torch {torch.__version__}")
    else:
        name = platform.processor() or platform.machine()
        say(f"gpu-check on the CPU ({name}): a test of the check, not a GPU measurement")
    shrink = os.environ.get("LECTURE_FULL_SHRINK", "").strip() or None
    if shrink:  # the projection is then of the shrunk run (N images per class, E epochs), not of the lesson
        say(f"gpu-check: LECTURE_FULL_SHRINK={shrink} is set: the projected minutes are those of the shrunk run, "
            "not of the lessons' full profile; unset it to project the lessons")
    report: dict[str, Any] = {"device": name, "device_type": device.type, "versions": versions(), "steps": steps,
                              "full_shrink": shrink, "lessons": []}
    kind = estimate_kind(name) if device.type == "cuda" else None  # the estimate's row for this card
    checkpoint_dir = Path(out).parent if out is not None else None  # checkpoints timed on the report's disk
    started = time.perf_counter()
    for lesson in lessons:
        row = _lesson_row(lesson, device, steps, data_root, kind, checkpoint_dir)
        report["lessons"].append(row)
        say(_format(row))
    if with_plan:
        report["lesson09"] = _plan_projection(device, steps, data_root, say, checkpoint_dir)
    report["seconds"] = time.perf_counter() - started
    if out is not None:
        text = json.dumps(report, indent=1) + "\n"
        atomic_write(out, lambda tmp: tmp.write_text(text))
        say(f"written to {out}")
    return report


def _plan_projection(device: Any, steps: int, data_root: str | None, say: Any,
                     checkpoint_dir: str | Path | None = None) -> dict[str, Any]:
    """Lesson 09's full plan projected from measured conditions: each model at width 1.0, largest and smallest px.

    Each measured condition gives its model a factor: the T4 estimate's training rate over the rate
    measured here (the median over the measured resolutions); every condition's T4 estimate times its
    model's factor is its projection, so the projection keeps the estimate's shape and takes this GPU's level.
    """
    import statistics

    from lecture_utils.experiment import plans
    from lecture_utils.experiment.conditions import build_model, parse_model_name
    from lecture_utils.estimate import format_minutes, meta_model, step_seconds, training_cost
    from lecture_utils.settings import dataset_sizes, lesson_settings

    cfg = lesson_settings("09", "full")
    conditions = plans.lesson09_conditions("full")
    ratios: dict[str, list[float]] = {}
    measured = []
    for model in dict.fromkeys(parse_model_name(c.model)[1] for c in conditions):
        for resolution in (max(cfg.resolutions), min(cfg.resolutions)):
            probe = next(c for c in conditions if c.resolution == resolution and c.width == 1.0
                         and parse_model_name(c.model)[1] == model)
            loader = _loader(cfg.dataset, resolution, cfg.batch_size, steps, device, data_root)
            started = time.perf_counter()
            network = build_model(model, 1.0, 10)
            row = {"build_seconds": time.perf_counter() - started,
                   **measure(network, loader, device, recipe=probe.recipe, checkpoint_dir=checkpoint_dir)}
            estimated_rate = cfg.batch_size / step_seconds(
                training_cost(meta_model(build_model, model, 1.0, 10), resolution), cfg.batch_size, "t4")
            n_train, n_val = dataset_sizes(probe.dataset, probe.subset)
            real = project(row, probe.epochs, n_train, n_val)
            estimated = plans.condition_seconds(probe, "t4", cfg.batch_size)
            ratios.setdefault(model, []).append(estimated_rate / row["train_images_per_s"])
            measured.append({"model": model, "resolution": resolution, **row, "projected_seconds": real,
                             "estimated_seconds_t4": estimated, "estimated_train_images_per_s_t4": estimated_rate})
            say(f"lesson 09 {model} 1.0 at {resolution} px: train {row['train_images_per_s']:.0f} img/s "
                f"(T4 estimate {estimated_rate:.0f}), eval {row['eval_images_per_s']:.0f} img/s, {row['precision']}: "
                f"a condition {format_minutes(real)} (T4 estimate {format_minutes(estimated)})")
    factor = {model: statistics.median(r) for model, r in ratios.items()}
    parts = []
    for i, (part, seconds) in enumerate(plans.session_parts(conditions), 1):
        projected = sum(plans.condition_seconds(c, "t4", cfg.batch_size) * factor[parse_model_name(c.model)[1]]
                        for c in part)
        parts.append({"part": i, "conditions": len(part), "estimated_seconds_t4": seconds,
                      "projected_seconds": projected})
        say(f"lesson 09 part {i}: {len(part)} conditions, projected {format_minutes(projected)} here "
            f"(T4 estimate {format_minutes(seconds)})")
    return {"measured": measured, "factor_over_t4_estimate": factor, "parts": parts}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.experiment.bench gpu-check [--out F] [--steps N] [--lessons 01,02] [--device cpu]``."""
    from lecture_utils.settings import runs_dir

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.experiment.bench gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=runs_dir() / "gpu-check.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per epoch of the check: one epoch "
                        "warms up, the next is timed (default: %(default)s)")
    parser.add_argument("--lessons", default=",".join(LESSONS), help="comma-separated lessons (default: all of 01-08)")
    parser.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda; without it the check says so and stops")
    parser.add_argument("--no-plan", action="store_true", help="skip lesson 09's plan projection")
    parser.add_argument("--data-root", help="Fashion-MNIST's folder (default: found as the lessons find it; else "
                                            "synthetic images)")
    args = parser.parse_args(argv)
    lessons = [part.strip() for part in args.lessons.split(",") if part.strip()]
    unknown = [lesson for lesson in lessons if lesson not in LESSONS]
    if unknown or not lessons:
        parser.error(f"--lessons must name lessons among {', '.join(LESSONS)}, got {args.lessons!r}")
    try:
        gpu_check(lessons, args.steps, args.device, args.out, args.data_root, with_plan=not args.no_plan)
    except ValueError as exc:  # a report path that cannot be written, --device cuda without CUDA: one line, no usage
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:  # the report's write failed (a full disk): one line, naming the file
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
