"""``python -m lecture_utils.bench gpu-check``: measure each lesson's full profile on this machine's GPU.

For lessons 01-08 it trains the lesson's network in its full-profile settings (resolution, batch,
precision chosen by the device, the cached data path) for a few dozen steps after a warm-up, and
prints images/second of training and evaluation, peak GPU and host memory, the precision, and the
lesson's projected time beside the estimate of :mod:`lecture_utils.estimate`. Lesson 09's plan is
projected from six of its conditions measured the same way (each model at width 1.0, at the largest
and the smallest resolution). On an H100-class GPU the whole check takes a few minutes. Everything goes to a JSON file too.
Without CUDA it says so and exits 0 (``--device cpu`` runs the same code on the CPU, to test it).
"""

from __future__ import annotations

import argparse
import json
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


def _peak_host_bytes() -> int:
    # ru_maxrss: kilobytes on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model: Any, loader: Any, device: Any, aux: bool = False) -> dict[str, Any]:
    """Images/s of one timed training pass and one evaluation pass over `loader`, after an untimed warm-up pass."""
    import torch

    from lecture_utils.trainer import ModelTrainer

    trainer = ModelTrainer(epoch_step=0, device=device, aux=aux)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    images = len(loader.dataset)
    trainer.model_train(model, loader, None, optimizer, 0)  # warm-up: cuDNN autotuning, allocator
    _synchronize(device)
    started = time.perf_counter()
    trainer.model_train(model, loader, None, optimizer, 1)
    _synchronize(device)
    train_s = time.perf_counter() - started
    started = time.perf_counter()
    trainer.model_evaluate(model, loader, None, 1)
    _synchronize(device)
    eval_s = time.perf_counter() - started
    result = {"precision": trainer.precision, "images": images, "train_images_per_s": images / train_s,
              "eval_images_per_s": images / eval_s, "peak_host_bytes": _peak_host_bytes()}
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


def _lesson_row(lesson: str, device: Any, steps: int, data_root: str | None) -> dict[str, Any]:
    from lecture_utils.models import create_model
    from lecture_utils.settings import dataset_sizes, lesson_settings

    cfg = lesson_settings(lesson, "full")
    loader = _loader(cfg.dataset, cfg.resolution, cfg.batch_size, steps, device, data_root)
    model = create_model(cfg.model, num_classes=10, **cfg.model_kwargs)
    row = {"lesson": lesson, "model": cfg.model, "model_kwargs": cfg.model_kwargs, "resolution": cfg.resolution,
           "batch_size": cfg.batch_size, "epochs": cfg.epochs}
    row.update(measure(model, loader, device, aux=cfg.model == "googlenet"))
    n_train, n_val = dataset_sizes(cfg.dataset, (cfg.train_subset, cfg.val_subset))
    row["projected_seconds"] = cfg.epochs * (n_train / row["train_images_per_s"] + n_val / row["eval_images_per_s"])
    row["estimated_seconds_t4"] = cfg.estimate_seconds("t4")
    row["estimated_seconds_h100"] = cfg.estimate_seconds("h100")
    return row


def _format(row: dict[str, Any]) -> str:
    from lecture_utils.estimate import format_minutes

    gpu = (f", GPU peak {row['peak_gpu_reserved_bytes'] / 2**30:.2f} GiB" if "peak_gpu_reserved_bytes" in row else "")
    return (f"lesson {row['lesson']} {row['model']} {row['resolution']} px, batch {row['batch_size']}, "
            f"{row['precision']}: train {row['train_images_per_s']:.0f} img/s, eval {row['eval_images_per_s']:.0f} "
            f"img/s{gpu}, host peak {row['peak_host_bytes'] / 2**30:.2f} GiB; projected {row['epochs']} epochs "
            f"{format_minutes(row['projected_seconds'])} (estimated: T4 {format_minutes(row['estimated_seconds_t4'])}, "
            f"H100-class {format_minutes(row['estimated_seconds_h100'])})")


def gpu_check(lessons: Sequence[str] = LESSONS, steps: int = 30, device: str | None = None,
              out: str | Path | None = None, data_root: str | None = None, say: Any = print,
              with_plan: bool = True) -> dict[str, Any] | None:
    """Measure `lessons` (and project lesson 09's plan) on `device` (default CUDA); None without CUDA.

    Returns the report and writes it to `out` as JSON.
    """
    import torch

    from lecture_utils._util import positive_int, versions

    positive_int(steps, "steps")
    if device is None:
        if not torch.cuda.is_available():
            say(f"gpu-check: no CUDA device here (torch {torch.__version__}); nothing to measure. "
                "Run it on a machine with a GPU (or pass --device cpu to try the check itself).")
            return None
        device = "cuda"
    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        major, minor = torch.cuda.get_device_capability(device)
        say(f"gpu-check on {name} (compute capability {major}.{minor}), torch {torch.__version__}")
    else:
        name = platform.processor() or platform.machine()
        say(f"gpu-check on the CPU ({name}): a test of the check, not a GPU measurement")
    report: dict[str, Any] = {"device": name, "device_type": device.type, "versions": versions(), "steps": steps,
                              "lessons": []}
    started = time.perf_counter()
    for lesson in lessons:
        row = _lesson_row(lesson, device, steps, data_root)
        report["lessons"].append(row)
        say(_format(row))
    if with_plan:
        report["lesson09"] = _plan_projection(device, steps, data_root, say)
    report["seconds"] = time.perf_counter() - started
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1) + "\n")
        say(f"written to {out}")
    return report


def _plan_projection(device: Any, steps: int, data_root: str | None, say: Any) -> dict[str, Any]:
    """Lesson 09's full plan projected from measured conditions: each model at width 1.0, largest and smallest px.

    Every condition's estimate is scaled by its model's measured/estimated ratio (the median over the
    measured resolutions), so the projection keeps the estimate's shape and takes this GPU's level.
    """
    import statistics

    from lecture_utils import plans
    from lecture_utils.conditions import build_model, parse_model_name
    from lecture_utils.estimate import format_minutes
    from lecture_utils.settings import dataset_sizes, lesson_settings

    cfg = lesson_settings("09", "full")
    conditions = plans.lesson09_conditions("full")
    ratios: dict[str, list[float]] = {}
    measured = []
    for model in dict.fromkeys(parse_model_name(c.model)[1] for c in conditions):
        for resolution in (max(cfg.resolutions), min(cfg.resolutions)):
            loader = _loader(cfg.dataset, resolution, cfg.batch_size, steps, device, data_root)
            row = measure(build_model(model, 1.0, 10), loader, device)
            probe = next(c for c in conditions if c.resolution == resolution and c.width == 1.0
                         and parse_model_name(c.model)[1] == model)
            n_train, n_val = dataset_sizes(probe.dataset, probe.subset)
            real = probe.epochs * (n_train / row["train_images_per_s"] + n_val / row["eval_images_per_s"])
            estimated = plans.condition_seconds(probe, "t4", cfg.batch_size)
            ratios.setdefault(model, []).append(real / estimated)
            measured.append({"model": model, "resolution": resolution, **row, "projected_seconds": real,
                             "estimated_seconds_t4": estimated})
            say(f"lesson 09 {model} 1.0 at {resolution} px: train {row['train_images_per_s']:.0f} img/s, "
                f"eval {row['eval_images_per_s']:.0f} img/s, {row['precision']}: a condition "
                f"{format_minutes(real)} (T4 estimate {format_minutes(estimated)})")
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
    """``python -m lecture_utils.bench gpu-check [--out F] [--steps N] [--lessons 01,02] [--device cpu]``."""
    from lecture_utils.settings import runs_dir

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.bench gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=runs_dir() / "gpu-check.json", help="JSON report (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per lesson (default: %(default)s)")
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
    except ValueError as exc:
        parser.error(str(exc))
    return 0
