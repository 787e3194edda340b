"""The MobileNet width x resolution experiment (and any zoo network) as a resumable, shared sweep.

Each condition (:class:`lecture_utils.conditions.Condition`) is trained with the course's protocol
(:class:`lecture_utils.runner.TorchRunner`) and, once finished, appended to a JSON Lines file as one
line (:mod:`lecture_utils.store`). A rerun with the same ``--out`` skips what is done; the condition
in progress keeps a per-epoch checkpoint, so a kill loses at most one epoch. Several workers may
share one ``--out``: each claims a condition with an OS file lock before training it (``run_sweep``).

Command line (``run`` may be left out)::

    python -m lecture_utils.sweep [run] --models mobilenet_v1,mobilenet_v2,c_mobilenet_v2 \\
        --widths 1.0,0.75,0.5,0.35 --resolutions 224,192,160,128,96 --epochs 10 \\
        --dataset animals10 --out runs/sweep.jsonl [--shard 1/4 | --shard slurm]
    python -m lecture_utils.sweep merge runs/a.jsonl runs/b.jsonl --out runs/all.jsonl [--keep first|last]
    python -m lecture_utils.sweep repair runs/sweep.jsonl   # remove the fragment of a failed write
    python -m lecture_utils.sweep plan lesson09 --profile full [--part grid]   # $LECTURE_RUNS_DIR/09_sweep_full.jsonl
    python -m lecture_utils.sweep plan gpu-reference --out data/reference/gpu/gpu-reference.jsonl

``--recipe course|recommended`` and ``--optimizer --schedule --warmup --weight-decay --label-smoothing
--momentum`` set the training recipe (:mod:`lecture_utils.recipe`), ``--validation heldout`` validates on
the held-out part of the training split (:mod:`lecture_utils.holdout`); on ``plan`` they replace the plan's own
(a single flag, e.g. ``--schedule onecycle``, changes that field of each condition's recipe).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm
from tqdm.contrib import DummyTqdmFile

from lecture_utils._util import positive_int, versions
from lecture_utils.augment import AUGMENTATIONS
from lecture_utils.checkpoint import CheckpointError, CheckpointInUse
from lecture_utils.conditions import (DEFAULT_BATCH, DEFAULT_LR, DEFAULT_RESOLUTIONS, DEFAULT_WIDTHS, MODELS, Condition,
                                      check_resolution, check_subset, check_width, condition_key, expand_grid,
                                      parse_model_name, unique)
from lecture_utils.datasets import canonical_root, class_sizes
from lecture_utils.estimate import format_minutes
from lecture_utils.gpu_reference import gpu_reference_conditions, no_cuda_message, plan_seconds
from lecture_utils.holdout import VALIDATIONS
from lecture_utils.plans import (PLAN_PARTS, SESSION_HOURS, grid_scale_plan, lesson09_conditions, lesson09_part,
                                   lessons_reference_plan, recipe_choice_plan, session_parts, zoo_plan)
from lecture_utils.recipe import add_recipe_arguments, recipe_changes
from lecture_utils.runner import Runner, TorchRunner
from lecture_utils.store import (FORMAT_VERSION, KEEP, append_lock, append_record, check_out_writable, checkpoint_dir,
                                 claim, condition_checkpoint, is_done, legacy_checkpoint, load_results, merge_results,
                                 remove_finished_checkpoints, repair_results, write_results)
from lecture_utils.trainer import NonFiniteLossError

__all__ = ["run_sweep", "run_plan", "parse_shard", "slurm_shard", "shard_grid", "main"]


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
    if runner is None:
        for name, default in (("seed", 0), ("subset", None), ("dataset", "sample"), ("augment", "course"),
                              ("validation", "test"), ("batch_size", DEFAULT_BATCH), ("data_root", None)):
            runner_kwargs.setdefault(name, getattr(conditions[0], name) if conditions else default)
        runner = TorchRunner(**runner_kwargs)
        if not_done:
            runner.prepare(not_done)
    elif runner_kwargs:
        raise ValueError(f"runner options {sorted(runner_kwargs)} only apply to the default runner")
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
                    if is_done(out, cond):  # another worker finished it since we read the file
                        bar.update(1)
                        continue
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
                        continue
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
                    checkpoint.unlink(missing_ok=True)
                    if progress and record.get("val_acc"):
                        bar.write(f"{cond.label()}: val acc {record['val_acc'][-1]:.3f} "
                                  f"({record['wall_time_s']:.1f} s, {record.get('precision', 'fp32')} on "
                                  f"{record.get('device', '?')})")
                    bar.update(1)
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


# --------------------------------------------------------------------------- command line


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    """An argparse type for a comma list; ArgumentTypeError, so that argparse shows the check's message."""

    def parse(text: str) -> list:
        try:
            items = [kind(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not items:
            raise argparse.ArgumentTypeError("give at least one value (comma-separated)")
        return items

    return parse


def _subset(text: str) -> int | tuple[int, int]:
    try:
        return check_subset([int(t) for t in text.split(",")] if "," in text else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"subset must be N or TRAIN,VAL images per class (integers >= 1), got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.sweep", description=(
        "Train conditions into a results file (JSON Lines); a rerun with the same --out resumes."))
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="a grid of models x widths x resolutions (the default command)",
                              description="Train the MobileNet width x resolution grid (or any zoo network).")
    run.add_argument("--models", type=_csv(lambda text: parse_model_name(text)[0]), default=list(MODELS),
                     help="comma list of " + ", ".join(MODELS) + ", or mobilenet_v2 with ablation switches +leaky "
                     "(LeakyReLU after the add) and/or +proj (projection shortcut), e.g. mobilenet_v2+leaky, or "
                     "another zoo network at width 1 (default: " + ",".join(MODELS) + ")")
    run.add_argument("--widths", type=_csv(check_width), default=list(DEFAULT_WIDTHS),
                     help="comma list of width multipliers > 0 (default: 1.0,0.75,0.5,0.35)")
    run.add_argument("--resolutions", type=_csv(check_resolution), default=list(DEFAULT_RESOLUTIONS),
                     help="comma list of input sizes in pixels, integers >= 1 (default: 224,192,160,128,96)")
    run.add_argument("--epochs", type=int, default=10, help="epochs per condition (default: %(default)s)")
    run.add_argument("--dataset", default="animals10",
                     help="sample, fashion_mnist, cifar10 or animals10 (default: %(default)s)")
    run.add_argument("--shard", default=None,
                     help="run shard i of N (1-based, e.g. 2/4): every N-th condition of the grid; 'slurm' takes "
                     "i/N from a SLURM array job (sbatch --array=0-3 gives 4 shards). Not needed for several "
                     "workers on one --out with working file locks")
    run.add_argument("--batch-size", type=_positive("batch size"), default=DEFAULT_BATCH,
                     help="images per optimiser step; part of the condition (default: %(default)s)")
    run.add_argument("--lr", type=float, default=None, help=f"peak learning rate (default: the recipe's; {DEFAULT_LR})")
    run.add_argument("--augment", choices=tuple(AUGMENTATIONS), default="course",
                     help="training augmentation: course (the course's: turned 30-70 degrees, shrunk), light "
                     "(flips, mild jitter, small affine) or none (default: %(default)s)")
    run.add_argument("--seed", type=int, default=0, help="seed of data order and initial weights (default: 0)")
    run.add_argument("--subset", type=_subset, default=None,
                     help="use N images per class of each split, or TRAIN,VAL per class (default: all)")
    run.add_argument("--num-workers", type=int, default=None, help="DataLoader workers with --no-cache")
    run.add_argument("--no-cache", action="store_true",
                     help="read every image every epoch (DataLoader) instead of the decoded cache on the device")
    run.add_argument("--cache-dir", default=None, help="keep the decoded images here between runs")
    plan = commands.add_parser("plan", help="every condition of a lesson's plan", description=(
        "Run every condition of lesson 09 (grid, ablation, augmentation comparison), or one --part of it, "
        "into one file, resumably: the file lesson 09 reads (09_sweep_full.jsonl in the runs folder for the full "
        "profile); "
        "or, with 'lessons --profile reference', the reference runs of lessons 01-08."))
    plan.add_argument("lesson", choices=["lesson09", "lessons", "zoo", "zoo-scale", "grid-scale", "gpu-reference",
                                               "recipe-choice"])
    plan.add_argument("--profile", choices=["full", "reference"], default="full",
                      help="full: the course's resolutions on the full data set (GPU); reference: the stored CPU "
                      "run of data/reference/ (default: %(default)s)")
    plan.add_argument("--part", choices=PLAN_PARTS, default=None,
                      help="lesson09 only: the conditions this part adds to the parts before it (default: all)")
    for p in (run, plan):
        add_recipe_arguments(p)
        p.add_argument("--validation", choices=VALIDATIONS, default=None, help="the split every epoch is validated "
                       "on: test (the official test split, the course's; the default for run) or heldout (1/12 of "
                       "each class of the training split; the test split is then evaluated once, at the end)")
        lesson09 = " (plan lesson09 --profile full: 09_sweep_full.jsonl in $LECTURE_RUNS_DIR, the file lesson 09 reads)"
        p.add_argument("--out", required=p is run, default=None, help="results file (JSON Lines); rerun with the same "
                       "file to resume" + ("" if p is run else lesson09))
        p.add_argument("--data-root", default=None, help="folder of the data set (default: the data set's own)")
        p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
        p.add_argument("--threads", type=int, default=None,
                       help="CPU threads for training (default: torch's; 1 when several runs share a few cores)")
        p.add_argument("--dry-run", action="store_true", help="list the conditions and which are done")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
    merge = commands.add_parser("merge", help="merge results files", description=(
        "Merge results files (e.g. one per shard) into one; each condition kept once."))
    merge.add_argument("inputs", nargs="+", help="results files (JSON Lines)")
    merge.add_argument("--out", required=True, help="merged results file (replaced atomically)")
    merge.add_argument("--keep", choices=KEEP, default=None,
                       help="which of two different results of one condition to keep: the first (earlier file, "
                       "earlier line) or the last; without it such a conflict stops the merge and names both")
    repair = commands.add_parser("repair", help="remove a results file's broken lines", description=(
        "Remove the lines of a results file that cannot be read (the fragment of an interrupted or failed write, "
        "a record that cannot be used); they are appended to FILE.removed, and their conditions train again on "
        "the next run."))
    repair.add_argument("file", help="results file (JSON Lines)")
    return parser


def _positive(what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return positive_int(int(text), what)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer >= 1, got {text!r}") from None

    return parse


def _conditions(args: argparse.Namespace) -> list[Condition]:
    """The conditions the command names, with the recipe, validation split and data root the flags set.

    A --data-root is recorded as the data set's own (None) where it holds what the default search finds; a
    --subset as large as a split's classes is that whole split (so ``--subset 5000`` on the sample, ``--subset
    300,60`` and no subset, the same images, are one condition).
    """
    held = {"validation": args.validation} if args.validation else {}
    out = []
    for c in _named_conditions(args):
        c = replace(c, **recipe_changes(args, c.recipe), **held)
        changes: dict[str, Any] = {"data_root": canonical_root(c.dataset, args.data_root)}
        if args.command == "run" and c.subset is not None:
            changes["subset"] = _whole_splits(c.subset, class_sizes(c.dataset, args.data_root, c.validation))
        out.append(replace(c, **changes))
    return unique(out, key=lambda c: c.key)


def _whole_splits(subset: int | tuple[int | None, int | None],
                  sizes: tuple[int, int] | None) -> int | tuple[int | None, int | None] | None:
    """`subset` with each half that covers its split's largest class replaced by None (all of it)."""
    if sizes is None:
        return subset
    halves = (subset, subset) if isinstance(subset, int) else subset
    train, val = (None if n is not None and n >= size else n for n, size in zip(halves, sizes))
    return check_subset(None if train is None and val is None else (train, val))


def _named_conditions(args: argparse.Namespace) -> list[Condition]:
    if args.command == "run":
        grid = expand_grid(args.models, args.widths, args.resolutions, args.epochs, args.dataset,
                           subset=args.subset, seed=args.seed, augment=args.augment, batch_size=args.batch_size)
        return shard_grid(grid, *parse_shard(args.shard)) if args.shard else grid
    named = {"gpu-reference": gpu_reference_conditions, "recipe-choice": recipe_choice_plan,
             "zoo": lambda: [c for _, c in zoo_plan()], "zoo-scale": lambda: [c for _, c in zoo_plan("zoo-scale")],
             "grid-scale": grid_scale_plan}
    if args.lesson in named:
        return named[args.lesson]()
    if args.lesson == "lessons":
        if args.profile != "reference" or args.part:
            raise ValueError("lessons 01-08 have a reference plan only (--profile reference, no --part); their "
                             "full profile is each notebook's own training cell")
        return [c for part in lessons_reference_plan().values() for c in part]
    if args.part:
        return lesson09_part(args.profile, args.part)
    return lesson09_conditions(args.profile)


def _dry_run(out: str, conditions: Sequence[Condition]) -> None:
    """Print what the conditions train on and for how long, each condition with done or todo, then how many are
    done."""
    done = {condition_key(r) for r in load_results(out)}
    for line in unique(_budget(c) for c in conditions):
        print(line)
    for c in conditions:
        print(f"{'done' if c.key in done else 'todo'}  {c.label()}")
    print(f"{sum(c.key in done for c in conditions)} of {len(conditions)} done in {out}")


def _budget(cond: Condition) -> str:
    """What a condition trains on, in one line: data set (its folder), images per class, epochs, batch, validation."""
    subset = (cond.subset, cond.subset) if cond.subset is None or isinstance(cond.subset, int) else cond.subset
    per_class = " / ".join("all" if n is None else str(n) for n in subset)
    root = f" in {cond.data_root}" if cond.data_root else ""
    return (f"data: {cond.dataset}{root}, {per_class} images per class (train / validation), {cond.epochs} epoch(s), "
            f"batch {cond.batch_size}, validated on {cond.validation}")


def _default_out(args: argparse.Namespace) -> str:
    """--out as given; for lesson 09's full plan, the file lesson 09 reads (under $LECTURE_RUNS_DIR)."""
    if args.out is not None:
        return args.out
    if args.command == "plan" and args.lesson == "lesson09" and args.profile == "full":
        from lecture_utils.settings import runs_dir

        return str(runs_dir() / "09_sweep_full.jsonl")
    raise ValueError("--out is required: the results file (JSON Lines) to write and resume from")


def _cpu_full_profile(args: argparse.Namespace) -> str | None:
    """Why lesson 09's full plan should not start on this CPU, or None: at 224 px, batch 192 it needs several GB of
    memory per condition and days of CPU time; LECTURE_FULL_SHRINK tries its path on a few images."""
    import torch

    if not (args.command == "plan" and args.lesson == "lesson09" and args.profile == "full"):
        return None
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") or os.environ.get("LECTURE_FULL_SHRINK", "").strip():
        return None
    return ("plan lesson09 --profile full trains 224-px images in batches of 192 (several GB of memory, days on a "
            "CPU) and is meant for a GPU; on this CPU run --profile reference, or set LECTURE_FULL_SHRINK=N,E "
            "(N images per class, E epochs) to try the full path")


def _merge(args: argparse.Namespace) -> None:
    check_out_writable(args.out)
    records = merge_results(args.inputs, keep=args.keep)
    write_results(records, args.out)
    print(f"merged {len(records)} conditions from {len(args.inputs)} file(s) into {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``[run] --models ... --out FILE``, ``merge FILES --out FILE`` or ``plan lesson09``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = " ".join(["python -m lecture_utils.sweep", *argv])  # as typed, for the records
    parser = _parser()
    args = parser.parse_args(argv if argv[:1] in (["run"], ["merge"], ["plan"], ["repair"], ["-h"], ["--help"])
                              else ["run", *argv])  # the grid is the default command
    try:
        if args.command == "merge":
            _merge(args)
            return 0
        if args.command == "repair":
            kept, removed = repair_results(args.file)
            print(f"{args.file}: kept {kept} record(s), removed {removed} line(s)"
                  + (f" (appended to {args.file}.removed)" if removed else ""))
            return 0
        args.out = _default_out(args)
        conditions = _conditions(args)
        gpu_reference = args.command == "plan" and args.lesson == "gpu-reference"
        if gpu_reference:
            print(f"GPU reference: {len(conditions)} conditions, about {format_minutes(plan_seconds(conditions))} on "
                  "one H100-class GPU (estimated)")
        if args.dry_run:
            _dry_run(args.out, conditions)
            return 0
        if (why := _cpu_full_profile(args)) is not None:  # before 7 GB are allocated, not after
            raise ValueError(why)
        # the data root and batch size are each condition's own (run_sweep hands them to the runner)
        options = dict(progress=not args.no_progress, device=args.device, threads=args.threads, command=command)
        if gpu_reference:
            if (why := no_cuda_message(args.device)) is not None:
                print(why)
                return 0
            options["download"] = True  # Fashion-MNIST, once, if it is not already there
        if args.command == "plan":
            records = run_plan(args.out, conditions, **options)
        else:
            records = run_sweep(args.out, conditions, cached=not args.no_cache, num_workers=args.num_workers,
                                cache_dir=args.cache_dir, **options)
    except ValueError as exc:
        parser.error(str(exc))
    except (DivergedError, OutOfMemory, OSError) as exc:  # a full disk, a read-only folder: one line, what was kept
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; {args.out if args.command != 'repair' else args.file} keeps every finished condition "
              "and the one in progress its last finished epoch: run the same command again to resume",
              file=sys.stderr)
        return 130
    print(f"{len(records)} of {len(conditions)} conditions in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
