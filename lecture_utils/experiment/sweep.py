"""The MobileNet width x resolution experiment (and any zoo network) as a resumable, shared sweep.

Each condition (:class:`lecture_utils.experiment.conditions.Condition`) is trained with the course's protocol
(:class:`lecture_utils.experiment.runner.TorchRunner`) and, once finished, appended to a JSON Lines file as one
line (:mod:`lecture_utils.experiment.store`). A rerun with the same ``--out`` skips what is done; the condition
in progress keeps a per-epoch checkpoint, so a kill loses at most one epoch. Several workers may
share one ``--out``: each claims a condition with an OS file lock before training it (``run_sweep``).

Command line (``run`` may be left out)::

    python -m lecture_utils.experiment.sweep [run] --models mobilenet_v1,mobilenet_v2,c_mobilenet_v2 \\
        --widths 1.0,0.75,0.5,0.35 --resolutions 224,192,160,128,96 --epochs 10 \\
        --dataset animals10 --out runs/sweep.jsonl [--shard 1/4 | --shard slurm]
    python -m lecture_utils.experiment.sweep merge runs/a.jsonl runs/b.jsonl --out runs/all.jsonl [--keep first|last]
    python -m lecture_utils.experiment.sweep repair runs/sweep.jsonl   # remove the fragment of a failed write
    python -m lecture_utils.experiment.sweep plan lesson09 --profile full [--part grid]   # $LECTURE_RUNS_DIR/09_sweep_full.jsonl
    python -m lecture_utils.experiment.sweep plan gpu-reference --out data/reference/gpu/gpu-reference.jsonl

``--recipe course|recommended`` and ``--optimizer --schedule --warmup --weight-decay --label-smoothing
--momentum`` set the training recipe (:mod:`lecture_utils.recipe`), ``--validation heldout`` validates on
the held-out part of the training split (:mod:`lecture_utils.holdout`); on ``plan`` they replace the plan's own
(a single flag, e.g. ``--schedule onecycle``, changes that field of each condition's recipe).

Faults end in one line: a bad argument or a record that cannot be used in argparse's usage error (exit 2), a
full disk or a diverging or out-of-memory condition in one error line (exit 1), Ctrl-C in how to resume (130).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lecture_utils import datasets
from lecture_utils._util import positive_int
from lecture_utils.augment import AUGMENTATIONS
from lecture_utils.experiment.conditions import (DEFAULT_BATCH, DEFAULT_LR, DEFAULT_RESOLUTIONS, DEFAULT_WIDTHS, MODELS, Condition,
                                      check_resolution, check_subset, check_width, condition_key, expand_grid,
                                      parse_model_name, unique)
from lecture_utils.datasets import canonical_root
from lecture_utils.estimate import format_minutes
from lecture_utils.experiment.gpu_reference import gpu_reference_conditions, no_cuda_message, plan_seconds
from lecture_utils.holdout import VALIDATIONS, heldout_count
from lecture_utils.experiment.plans import (PLAN_PARTS, grid_scale_plan, lesson09_conditions, lesson09_part,
                                   lessons_reference_plan, recipe_choice_plan, zoo_plan)
from lecture_utils.recipe import RECIPE_AUGMENT, add_recipe_arguments, recipe_changes
from lecture_utils.experiment.store import KEEP, check_out_writable, load_results, merge_results, repair_results, write_results

from lecture_utils.experiment.sweep_run import (DivergedError, OutOfMemory, parse_shard, run_plan, run_session_part, run_sweep,
                                     shard_grid, slurm_shard)

# the sweep's functions are re-exported: lessons and scripts import them from here
__all__ = ["run_sweep", "run_plan", "run_session_part", "parse_shard", "slurm_shard", "shard_grid", "DivergedError",
           "OutOfMemory", "load_results", "main"]


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
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.experiment.sweep", description=(
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
    run.add_argument("--augment", choices=tuple(AUGMENTATIONS), default=None,
                     help="training augmentation: course (the course's: turned 30-70 degrees, shrunk), light "
                     "(flips, mild jitter, small affine) or none (default: the recipe's own: none for recommended, "
                     "course for course)")
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
        _common_arguments(p, run=p is run)
    _file_commands(commands)
    return parser




def _file_commands(commands: Any) -> None:
    """``merge`` and ``repair``: commands on results files, not on conditions."""
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


def _common_arguments(p: argparse.ArgumentParser, run: bool) -> None:
    """The options ``run`` and ``plan`` share: the recipe, the validation split, the output, where and how to train."""
    add_recipe_arguments(p)
    p.set_defaults(recipe="recommended" if run else None)  # a run trains the recommended recipe by default
    p.add_argument("--validation", choices=VALIDATIONS, default=None, help="the split every epoch is validated "
                   "on: test (the official test split, the course's; the default for run) or heldout (1/12 of "
                   "each class of the training split; the test split is then evaluated once, at the end)")
    lesson09 = " (plan lesson09 --profile full: 09_sweep_full.jsonl in $LECTURE_RUNS_DIR, the file lesson 09 reads)"
    p.add_argument("--out", required=run, default=None, help="results file (JSON Lines); rerun with the same "
                   "file to resume" + ("" if run else lesson09))
    p.add_argument("--data-root", default=None, help="folder of the data set (default: the data set's own)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for training (default: torch's; 1 when several runs share a few cores)")
    p.add_argument("--dry-run", action="store_true", help="list the conditions and which are done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


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
            changes["subset"] = _whole_splits(c.subset, _class_sizes(c.dataset, args.data_root, c.validation))
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


def _class_sizes(name: str, root: str | os.PathLike | None = None,
                validation: str = "test") -> tuple[int, int] | None:
    """The largest class's image count in the training and validation split of `name` (held out: the rest and the
    held-out part); None where not counted cheaply (cifar10, or absent). A subset that large is the whole split."""
    datasets.check_dataset_name(name)
    base = Path(root).expanduser() if root is not None else datasets.default_root(name)
    try:
        if name in ("sample", "animals10"):
            counts = {split: [sum(1 for f in d.iterdir() if f.suffix.lower() in datasets.IMAGE_EXTENSIONS)
                              for d in (base / split).iterdir() if d.is_dir()] for split in datasets.SPLITS}
        elif name == "fashion_mnist":
            counts = {}
            for split in datasets.SPLITS:
                found = datasets.find_fashion_mnist_raw(split, base, include_system=root is None)
                if found is None:
                    return None
                counts[split] = np.bincount(datasets.read_idx(found[1])).tolist()
        else:
            return None
    except (OSError, ValueError, EOFError):
        return None
    train, val = counts["train"], counts["val"]
    if not train or not val:
        return None
    if validation == "heldout":
        train, val = [n - heldout_count(n) for n in train if n >= 2], [heldout_count(n) for n in train if n >= 2]
    return (max(train), max(val)) if train and val else None


def _named_conditions(args: argparse.Namespace) -> list[Condition]:
    if args.command == "run":
        grid = expand_grid(args.models, args.widths, args.resolutions, args.epochs, args.dataset,
                           subset=args.subset, seed=args.seed, augment=args.augment or RECIPE_AUGMENT[args.recipe],
                           batch_size=args.batch_size)
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
    todo = [c for c in conditions if c.key not in done]
    if todo:
        from lecture_utils.estimate import UNCERTAINTY
        from lecture_utils.experiment.plans import condition_seconds

        hours = sum(condition_seconds(c, "t4", c.batch_size) for c in todo) / 3600
        print(f"estimated time of the {len(todo)} to do on a GPU: {hours:.1f} h on a Colab T4 "
              f"(+-{UNCERTAINTY:.0%}, lecture_utils.estimate; a CPU takes many times longer)")
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
    command = " ".join(["python -m lecture_utils.experiment.sweep", *argv])  # as typed, for the records
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
    except (DivergedError, OutOfMemory, OSError) as exc:  # a full disk, a read-only folder: one line
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
