"""Running a sweep: each condition not yet in a results file trained and appended, resumably, by one or more workers.

``run_sweep`` trains the conditions of one runner (:class:`lecture_utils.experiment.runner.TorchRunner` by default), each
claimed with an OS file lock and checkpointed every epoch, so several workers may share one file and a kill
loses at most an epoch; ``run_plan`` groups a plan's conditions by what a runner serves; ``run_session_part``
trains a long plan in parts that fit a session; shards split a grid between machines. A condition that diverges
is reported and the others still train; one that runs out of memory stops the sweep in one line.
The command line is :mod:`lecture_utils.experiment.sweep`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm
from tqdm.contrib import DummyTqdmFile

from lecture_utils._util import versions
from lecture_utils.checkpoint import CheckpointError, CheckpointInUse, remove_checkpoint
from lecture_utils.experiment.conditions import DEFAULT_BATCH, Condition, condition_key, unique
from lecture_utils.estimate import format_minutes
from lecture_utils.experiment.plans import SESSION_HOURS, session_parts
from lecture_utils.experiment.runner import Runner, TorchRunner
from lecture_utils.experiment.store import (FORMAT_VERSION, append_lock, append_record, check_out_writable, checkpoint_dir, claim,
                                 condition_checkpoint, is_done, legacy_checkpoint, load_results,
                                 remove_finished_checkpoints)
from lecture_utils.trainer import NonFiniteLossError

__all__ = ["run_sweep", "run_plan", "run_session_part", "parse_shard", "slurm_shard", "shard_grid", "DivergedError",
           "OutOfMemory"]


def run_sweep(out: str | os.PathLike, conditions: Sequence[Condition], runner: Runner | None = None,
              shard: tuple[int, int] | str | None = None, progress: bool = True, **runner_kwargs: Any) -> list[dict]:
    """Run every condition not yet in ``out`` (after sharding), appending one line per finished condition.

    ``runner(condition, checkpoint_path) -> dict`` trains one condition (default: ``TorchRunner``
    built from ``runner_kwargs``). Returns the records in ``out`` that belong to ``conditions``.
    Workers sharing ``out`` each claim a condition (a lock file in ``<out>.ckpt/``) before training it
    and skip those another worker holds; a dead worker's claim expires and a later worker resumes it.
    """
    out = Path(out)
    if isinstance(shard, str):
        shard = parse_shard(shard)
    # each condition once, even where the list names it twice (before sharding, so no two shards share one)
    everything = unique(conditions, key=lambda c: c.key)
    mine = shard_grid(everything, *shard) if shard else everything
    done = {condition_key(r) for r in load_results(out)}
    not_done = [c for c in mine if c.key not in done]
    if not_done:  # a finished file is read, not written: it may be read-only
        out = check_out_writable(out)
    ckpt_dir = checkpoint_dir(out)
    runner = _runner(runner, conditions, not_done, runner_kwargs)
    bar = tqdm(total=len(mine), initial=len(mine) - len(not_done), desc="sweep", unit="cond",
               disable=not progress, dynamic_ncols=True)
    left = not_done
    diverged: list[str] = []
    try:
        while left:
            held_elsewhere = []
            for cond in left:
                held = claim(ckpt_dir, cond)
                if held is None:  # another worker is training it
                    held_elsewhere.append(cond)
                    continue
                try:
                    _run_claimed(runner, cond, out, ckpt_dir, bar, progress, diverged)
                finally:
                    held.release()
            if len(held_elsewhere) == len(left):
                break  # every one left is being trained by a live worker
            left = held_elsewhere  # try those once more: a holder that died meanwhile has released its claim
    finally:
        bar.close()
    if left:
        print(f"{len(left)} condition(s) left to the workers training them now: "
              + ", ".join(c.label() for c in left))
    with contextlib.suppress(OSError):  # a finished, read-only results folder has nothing to clean
        remove_finished_checkpoints(ckpt_dir, mine, {condition_key(r) for r in load_results(out)})
    if diverged:
        raise DivergedError(diverged)
    wanted = {c.key for c in conditions}
    return [r for r in load_results(out) if condition_key(r) in wanted]


def _runner(runner: Runner | None, conditions: Sequence[Condition], not_done: Sequence[Condition],
            runner_kwargs: dict[str, Any]) -> Runner:
    """`runner`, or the default TorchRunner serving the conditions' data set, seed, split and batch size."""
    if runner is not None:
        if runner_kwargs:
            raise ValueError(f"runner options {sorted(runner_kwargs)} only apply to the default runner")
        return runner
    for name, default in (("seed", 0), ("subset", None), ("dataset", "sample"), ("augment", "course"),
                          ("validation", "test"), ("batch_size", DEFAULT_BATCH), ("data_root", None)):
        runner_kwargs.setdefault(name, getattr(conditions[0], name) if conditions else default)
    torch_runner = TorchRunner(**runner_kwargs)
    if not_done:
        torch_runner.prepare(not_done)
    return torch_runner


def _run_claimed(runner: Runner, cond: Condition, out: Path, ckpt_dir: Path, bar: Any, progress: bool,
                 diverged: list[str]) -> None:
    """Train `cond`, which this worker has claimed, and append its record (unless another worker did)."""
    if is_done(out, cond):  # another worker finished it since we read the file
        bar.update(1)
        return
    bar.set_postfix_str(cond.label())
    checkpoint = condition_checkpoint(ckpt_dir, cond)
    old = legacy_checkpoint(ckpt_dir, cond)
    if old is not None and old.is_file() and not checkpoint.exists():
        # its name before the batch size was in it; fit refuses it if another batch size wrote it
        os.replace(old, checkpoint)
    try:
        record = _train(runner, cond, checkpoint, progress)
    except NonFiniteLossError as exc:  # this condition's learning rate; the others may be fine
        # the trainer's advice names Python arguments; the sweep's way is its --lr flag
        why = str(exc).split(" Try a lower")[0]
        diverged.append(f"{cond.label()}: {why} Try a lower --lr (e.g. 10x lower).")
        bar.write(f"{cond.label()}: stopped: {why}")
        return
    except (MemoryError, RuntimeError) as exc:
        if not isinstance(exc, MemoryError) and not any(
                s in str(exc) for s in ("out of memory", "can't allocate memory")):
            raise
        # the allocator's own error is a page of C++ frames: say what ran out and what to change
        raise OutOfMemory(
            f"{cond.label()} ran out of memory on {getattr(runner, 'device', 'its device')} at "
            f"{cond.resolution} px in batches of {cond.batch_size}; use a smaller --batch-size or "
            "resolution, or a device with more memory (finished conditions are in the results "
            f"file, this one's finished epochs in {checkpoint})") from None
    except CheckpointInUse:
        raise
    except CheckpointError as exc:  # the trainer's advice names fit's arguments: say the CLI's way
        raise CheckpointError(
            f"cannot use the checkpoint {exc.path} of {cond.label()}: {exc.reason}. Delete it (that "
            "condition then trains from its first epoch) and run the same command again",
            exc.path, exc.reason) from None
    with append_lock(ckpt_dir):
        append_record(out, record, kept=f"{cond.label()} stays trained in its checkpoint {checkpoint}; "
                      "a rerun records it without training it again")
    remove_checkpoint(checkpoint)  # and its local copy
    if progress and record.get("val_acc"):
        bar.write(f"{cond.label()}: val acc {record['val_acc'][-1]:.3f} "
                  f"({record['wall_time_s']:.1f} s, {record.get('precision', 'fp32')} on "
                  f"{record.get('device', '?')})")
    bar.update(1)


class OutOfMemory(RuntimeError):
    """A condition needed more memory than its device has."""


class DivergedError(RuntimeError):
    """Conditions whose training loss became NaN or infinite; the sweep trained every other one first."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__(f"{len(lines)} condition(s) stopped on a non-finite loss (the others are recorded):\n"
                         + "\n".join(lines))
        self.lines = list(lines)


def _train(runner: Runner, cond: Condition, checkpoint: Path, progress: bool) -> dict:
    """The record of `cond`: what the runner measured, the condition, and when and with what it ran."""
    started = time.time()
    # with a progress bar, the trainer's prints go above it instead of through it
    with contextlib.redirect_stdout(DummyTqdmFile(sys.stdout) if progress else sys.stdout):
        result = runner(cond, checkpoint)
    return {**result, **asdict(cond), "wall_time_s": round(time.time() - started, 3),
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": versions(), "format": FORMAT_VERSION}


def run_plan(out: str | os.PathLike, conditions: Sequence[Condition], progress: bool = True,
             **runner_kwargs: Any) -> list[dict]:
    """``run_sweep`` over conditions that differ in seed, augmentation, data set, subset or validation split
    (one runner each)."""
    groups: dict[tuple, list[Condition]] = {}
    for cond in unique(conditions, key=lambda c: c.key):
        groups.setdefault((cond.dataset, cond.subset, cond.seed, cond.augment, cond.validation, cond.batch_size,
                           cond.data_root), []).append(cond)
    diverged: list[str] = []
    for group in groups.values():
        try:
            run_sweep(out, group, progress=progress, **runner_kwargs)
        except DivergedError as exc:  # the other groups still train
            diverged += exc.lines
    if diverged:
        raise DivergedError(diverged)
    wanted = {c.key for c in conditions}
    return [r for r in load_results(out) if condition_key(r) in wanted]


def run_session_part(out: str | os.PathLike, conditions: Sequence[Condition], hours: float = SESSION_HOURS,
                     gpu: str = "t4", say: Callable[[str], None] = print,
                     **runner_kwargs: Any) -> tuple[list[dict], bool]:
    """Train the first part of `conditions` (``plans.session_parts``, `hours` each on `gpu`) not yet in `out`.

    Prints every part with its estimated time and what is done. Returns (records of `conditions` in `out`,
    whether all are there): when parts remain, run it again, in a new session if need be.
    """
    parts = session_parts(unique(conditions, key=lambda c: c.key), hours, gpu)
    done = {condition_key(r) for r in load_results(out)} if Path(out).is_file() else set()
    todo = next((i for i, (part, _) in enumerate(parts) if any(c.key not in done for c in part)), None)
    for i, (part, seconds) in enumerate(parts):
        finished = sum(c.key in done for c in part)
        say(f"part {i + 1} of {len(parts)}: {len(part)} conditions, about {format_minutes(seconds)} on a {gpu.upper()}"
            f" (estimated); {finished} done" + (" <- this run" if i == todo else ""))
    if todo is not None:
        run_plan(out, parts[todo][0], **runner_kwargs)
    records = [r for r in load_results(out) if condition_key(r) in {c.key for c in conditions}]
    complete = len({condition_key(r) for r in records}) == len({c.key for c in conditions})
    if not complete:
        say(f"part {todo + 1 if todo is not None else '?'} done; {out} keeps it. Run again (a new session is fine) "
            "for the next part.")
    return records, complete


# --------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/N"`` (1-based: ``1/4`` .. ``4/4``) into ``(i, N)``; ``"slurm"`` reads it from a SLURM array job."""
    if str(text).strip().lower() == "slurm":
        return slurm_shard()
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/N with 1 <= i <= N (e.g. 1/4), or slurm, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        hint = " (shards are numbered from 1)" if i == 0 else ""
        raise ValueError(f"shard must be i/N with 1 <= i <= N, got {text!r}{hint}")
    return i, n


def slurm_shard(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """This task's ``(i, N)`` in a SLURM array job (``sbatch --array=0-3`` gives 1/4 .. 4/4).

    Read from SLURM_ARRAY_TASK_ID, _MIN, _MAX and, where set, _STEP and _COUNT; the array's ids
    must be evenly spaced (``0-3``, ``1-8``, ``0-15:4``), so that every task maps to one shard.
    """
    env = os.environ if environ is None else environ
    names = [f"SLURM_ARRAY_TASK_{k}" for k in ("ID", "MIN", "MAX", "STEP", "COUNT")]
    missing = [n for n in names[:3] if not env.get(n, "").strip()]
    if missing:
        raise ValueError(
            f"--shard slurm needs the variables of a SLURM array job ({', '.join(missing)} not set): "
            "submit with sbatch --array=0-N (e.g. --array=0-3 for 4 shards), or give --shard i/N")
    try:
        task, low, high, step, count = (int(env.get(n) or 0) for n in names)  # 0: step or count not set
    except ValueError:
        shown = {n: env.get(n) for n in names}
        raise ValueError(f"--shard slurm: SLURM_ARRAY_TASK_* must be integers, got {shown}") from None
    if step < 1:  # no step given: the ids are evenly spaced from min to max
        step = (high - low) // (count - 1) if count > 1 and (high - low) % (count - 1) == 0 else 1
    if count < 1:
        count = (high - low) // step + 1
    if not (high >= low and high == low + (count - 1) * step and (task - low) % step == 0 and low <= task <= high):
        raise ValueError(
            f"--shard slurm needs evenly spaced array ids (e.g. --array=0-3, 1-8 or 0-15:4); this task has "
            f"id {task} of {count} between {low} and {high} (step {step}); use --shard i/N instead")
    return (task - low) // step + 1, count


def shard_grid(conditions: Sequence[Condition], index: int, count: int) -> list[Condition]:
    """Shard ``index`` of ``count`` (1-based): every count-th condition, starting at index - 1.

    Round robin mixes cheap and expensive resolutions, so the shards take about the same time;
    together the shards hold every condition exactly once.
    """
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard must satisfy 1 <= index <= count, got {index}/{count}")
    return list(conditions[index - 1 :: count])
