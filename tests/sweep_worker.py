"""A sweep worker with a stand-in runner, started as a real process by the tests of shared results files.

    python tests/sweep_worker.py OUT CONDITIONS SECONDS [GO_FILE]

runs ``run_sweep(OUT, <the first CONDITIONS of a 6-condition grid>)`` with a runner that sleeps SECONDS
per condition instead of training. Each call appends ``<slug> <pid>`` to ``OUT.calls``; the runner
writes the condition's checkpoint before sleeping and reports whether it found one (a resume). With
GO_FILE, the worker writes ``GO_FILE.<pid>.ready`` and waits for GO_FILE, so that workers start together.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from lecture_utils.experiment.conditions import Condition, expand_grid
from lecture_utils.experiment.sweep import run_sweep

GRID = expand_grid(["mobilenet_v1", "mobilenet_v2"], [1.0], [32, 48, 64], epochs=1, dataset="sample")


def sleeping_runner(out: Path, seconds: float):
    """Runner that logs the call, leaves a checkpoint, sleeps, and returns a small record."""

    def run(cond: Condition, checkpoint: Path) -> dict:
        resumed = checkpoint.is_file()
        with open(f"{out}.calls", "a", encoding="utf-8") as log:
            log.write(f"{cond.slug()} {os.getpid()}\n")
        checkpoint.write_text("1 epoch done")  # what the trainer saves after an epoch
        time.sleep(seconds)
        return {"worker_pid": os.getpid(), "resumed": resumed, "val_acc": [0.5]}

    return run


def main(argv: list[str]) -> None:
    out, count, seconds = Path(argv[0]), int(argv[1]), float(argv[2])
    if len(argv) > 3:
        go = Path(argv[3])
        Path(f"{go}.{os.getpid()}.ready").touch()
        while not go.exists():
            time.sleep(0.01)
    run_sweep(out, GRID[:count], runner=sleeping_runner(out, seconds), progress=False)


if __name__ == "__main__":
    main(sys.argv[1:])
