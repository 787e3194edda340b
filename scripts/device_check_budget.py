"""How long the prepared GPU check (``scripts/device_check.sh``) takes on a GPU, by lecture_utils.estimate.

``bench gpu-check`` trains each of lessons 01-08's networks at its full-profile resolution and batch for
two epochs of ``STEPS`` steps (a warm-up, then the timed one), evaluates on the same ``STEPS`` batches
after each epoch and once more, and writes a checkpoint after each epoch; lesson 09 is probed the same way
at six conditions (its three models at width 1.0, at its largest and smallest resolution). Per network:

    2 x STEPS x training step + 3 x STEPS x evaluation step + 2 checkpoints + the run's start
    (its build, the copy to the GPU, cuDNN's autotuning) + HOST_S per network (the data's decoding and
    cache, the estimate's own step count on the meta device, measured on a 2-core CPU)

plus the process's start once (PROCESS_START_S: CUDA's context, imports) and PLAN_S for lesson 09's plan
estimate (124 conditions counted on the meta device, which the projection rescales). Counted pessimistically: the
A100's rates stand for an H100 (``estimate.GPUS["h100"]``), every phase is counted where the check may
skip one, and the host's allowance is a slow CPU's. ``python scripts/device_check_budget.py`` prints the
table that docs/gpu.md quotes; ``check_seconds()`` is what tests/test_gpu_device_check.py holds under
:data:`LIMIT_S`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LIMIT_S = 8 * 60  # a lent GPU for a few minutes: the whole check, start-up included
HOST_S = 6.0      # per network, on the host: Fashion-MNIST's decoding and cache, the meta-device count (measured)
PLAN_S = 45.0     # lesson 09's plan estimate on the host (measured: 39 s on a 2-core CPU)
TRAIN_EPOCHS, EVAL_PASSES, CHECKPOINTS = 2, 3, 2


def _network_seconds(cost: Any, batch: int, steps: int, gpu: str) -> dict[str, float]:
    from lecture_utils.estimate import checkpoint_seconds, run_start_seconds, step_seconds

    train = step_seconds(cost, batch, gpu)
    evaluate = step_seconds(cost, batch, gpu, train=False)
    return {"train_step": train, "eval_step": evaluate,
            "steps": TRAIN_EPOCHS * steps * train + EVAL_PASSES * steps * evaluate,
            "checkpoints": CHECKPOINTS * checkpoint_seconds(cost, gpu),
            "start": run_start_seconds(cost, batch, gpu), "host": HOST_S}


def check_rows(steps: int | None = None, gpu: str = "h100") -> list[dict[str, Any]]:
    """One row per network the check trains: what it is and its seconds by part."""
    from lecture_utils.experiment import plans
    from lecture_utils.experiment.conditions import build_model, parse_model_name
    from lecture_utils.estimate import meta_model, training_cost
    from lecture_utils.experiment.gpucheck import LESSONS, STEPS
    from lecture_utils.models import create_model
    from lecture_utils.settings import lesson_settings

    steps = STEPS if steps is None else steps
    rows = []
    for lesson in LESSONS:
        cfg = lesson_settings(lesson, "full")
        cost = training_cost(meta_model(create_model, cfg.model, num_classes=10, **cfg.model_kwargs), cfg.resolution)
        rows.append({"what": f"{lesson} {cfg.model}", "resolution": cfg.resolution, "batch": cfg.batch_size,
                     **_network_seconds(cost, cfg.batch_size, steps, gpu)})
    cfg = lesson_settings("09", "full")
    models = dict.fromkeys(parse_model_name(c.model)[1] for c in plans.lesson09_conditions("full"))
    for model in models:
        for resolution in (max(cfg.resolutions), min(cfg.resolutions)):
            cost = training_cost(meta_model(build_model, model, 1.0, 10), resolution)
            rows.append({"what": f"09 {model} 1.0", "resolution": resolution, "batch": cfg.batch_size,
                         **_network_seconds(cost, cfg.batch_size, steps, gpu)})
    return rows


def check_seconds(steps: int | None = None, gpu: str = "h100") -> float:
    """The whole check's estimated wall time on `gpu`: every network's parts and the process's start."""
    from lecture_utils.estimate import PROCESS_START_S

    parts = ("steps", "checkpoints", "start", "host")
    return PROCESS_START_S + PLAN_S + sum(row[part] for row in check_rows(steps, gpu) for part in parts)


def main() -> int:
    from lecture_utils.estimate import PROCESS_START_S

    rows = check_rows()
    print("| network | px | batch | train step | eval step | 100 train + 150 eval steps | 2 checkpoints | run start "
          "| host | total |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        total = r["steps"] + r["checkpoints"] + r["start"] + r["host"]
        print(f"| {r['what']} | {r['resolution']} | {r['batch']} | {r['train_step'] * 1e3:.1f} ms "
              f"| {r['eval_step'] * 1e3:.1f} ms | {r['steps']:.1f} s | {r['checkpoints']:.1f} s | {r['start']:.1f} s "
              f"| {r['host']:.0f} s | {total:.1f} s |")
    total = check_seconds()
    print(f"\nprocess start {PROCESS_START_S:.0f} s, lesson 09's plan estimate {PLAN_S:.0f} s; whole check {total:.0f} s "
          f"= {total / 60:.1f} min "
          f"(limit {LIMIT_S / 60:.0f} min)")
    return 0 if total <= LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
