"""Reading sweep results: the stored reference runs, paired comparisons and their verdicts.

A reference run is a set of JSON Lines files written by ``python -m lecture_utils.experiment.sweep`` (one
record per finished condition, see :mod:`lecture_utils.experiment.store`) and committed under
``data/reference/``. Lessons read them here, so that their analysis cells are deterministic.
``python -m lecture_utils.experiment.results NAME`` summarises how reference run NAME was made
(``python -m lecture_utils.experiment.zoo`` prints the zoo table).
"""

from __future__ import annotations

import math
import os
import statistics
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_utils.experiment import stats
from lecture_utils.experiment.conditions import KEY_FIELDS, Condition, condition_key, has_width
from lecture_utils.experiment.plans import lessons_reference_plan
from lecture_utils.experiment.store import DuplicateRecordWarning, ResultsError, load_results, merge_results

__all__ = [
    "REFERENCE_DIR",
    "reference_files",
    "load_reference",
    "final",
    "select",
    "provenance",
    "Comparison",
    "paired_differences",
    "compare",
    "load_linear_baseline",
    "lesson_reference",
    "lesson_key",
    "describe",
    "images_per_second",
    "best",
    "best_epoch",
]

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "data" / "reference"
# What a paired comparison matches on: the whole condition but the model (its seed and recipe too).
PAIR_FIELDS = tuple(f for f in KEY_FIELDS if f != "model")


def reference_files(name: str, folder: str | Path | None = None) -> list[Path]:
    """The files of reference run `name`: ``<name>.jsonl`` if it exists, else ``<name>-*.jsonl`` sorted.

    (``zoo`` is ``zoo.jsonl`` alone, not also ``zoo-scale.jsonl``; ``lesson09`` is its three part files.)
    """
    folder = Path(folder) if folder is not None else REFERENCE_DIR
    files = [folder / f"{name}.jsonl"] if (folder / f"{name}.jsonl").is_file() else sorted(folder.glob(f"{name}-*.jsonl"))
    if not files:
        raise FileNotFoundError(
            f"no reference results named {name!r} in {folder} (expected {name}-*.jsonl); "
            "data/reference/README.md gives the command that makes them")
    return files


def load_reference(name: str, folder: str | Path | None = None) -> list[dict]:
    """Every record of reference run `name`, each condition once (the first file that has it wins; two different
    results of one condition are read with a warning that names both)."""
    files = reference_files(name, folder)
    try:
        return merge_results(files)
    except ResultsError as exc:
        warnings.warn(f"{exc}; reading the first", DuplicateRecordWarning, stacklevel=2)
        return merge_results(files, keep="first")


def final(record: dict, key: str = "val_acc") -> float:
    """The last epoch's value of a per-epoch list (``val_acc``, ``train_acc``...), or a scalar field."""
    value = record[key]
    return float(value[-1]) if isinstance(value, (list, tuple)) else float(value)


def select(records: Iterable[dict], **fields: Any) -> list[dict]:
    """The records whose fields equal the given values (a tuple or list value means any of them)."""
    def wanted(rec: dict) -> bool:
        for name, value in fields.items():
            have = rec.get(name)
            if isinstance(value, (tuple, list, set)):
                if have not in value:
                    return False
            elif have != value:
                return False
        return True

    return [r for r in records if wanted(r)]


def provenance(records: Sequence[dict]) -> dict[str, Any]:
    """How a set of records was made: commands, commits, versions, CPU, threads and wall times."""
    if not records:
        raise ValueError("provenance needs at least one record")
    times = [float(r["wall_time_s"]) for r in records]

    def distinct(get: Any) -> list:
        return sorted({str(get(r)) for r in records})

    return {
        "conditions": len(records),
        "commands": len(distinct(lambda r: r.get("command"))),
        "commits": distinct(lambda r: r.get("commit")),
        "torch": distinct(lambda r: r.get("versions", {}).get("torch")),
        "cpu": distinct(lambda r: r.get("cpu")),
        "threads": distinct(lambda r: r.get("threads")),
        "wall_time_h": sum(times) / 3600,
        "median_condition_s": statistics.median(times),
        "longest_condition_s": max(times),
        "first_finished": min(r["finished_at"] for r in records),
        "last_finished": max(r["finished_at"] for r in records),
    }


@dataclass(frozen=True)
class Comparison:
    """A variant against a baseline over matched pairs: mean difference, its error, and what it says.

    `half` is the 95 % interval's half-width (Student's t on n - 1 df, :mod:`lecture_utils.experiment.stats`); the
    verdict names a direction only when that interval excludes zero.
    """

    variant: str
    baseline: str
    n: int
    mean: float
    se: float
    agree: int  # pairs whose difference has the sign of the mean
    verdict: str
    half: float = math.inf
    p: float = 1.0

    @classmethod
    def of(cls, variant: str, baseline: str, diffs: Sequence[float]) -> "Comparison":
        """The comparison of the paired differences `diffs` (variant - baseline)."""
        d = stats.versus(diffs, 0.0, f"{variant} - {baseline}")  # the mean paired difference, n - 1 df
        se = d.se if math.isfinite(d.se) else math.inf
        agree = sum((x > 0) == (d.mean > 0) and x != 0 for x in diffs)
        return cls(variant, baseline, d.n, d.mean, se, agree,
                   d.verdict(neither="no difference this run can resolve at 95 %"), d.half_width, d.p)

    def points(self) -> str:
        """``+5.5 +- 6.2 points (95 %, p = 0.03)``."""
        half = "inf" if math.isinf(self.half) else f"{100 * self.half:.1f}"
        return f"{100 * self.mean:+.1f} +- {half} points (95 %, p = {self.p:.2g})"


def _pair_key(record: dict) -> tuple:
    """The record's condition key without the model (``PAIR_FIELDS``)."""
    return tuple(v for f, v in zip(KEY_FIELDS, condition_key(record)) if f != "model")


def paired_differences(records: Sequence[dict], variant: str, baseline: str = "mobilenet_v2",
                       key: str = "val_acc") -> list[tuple[dict, float]]:
    """``(variant record, variant - baseline)`` for every condition and seed both were run at."""
    base = {_pair_key(r): r for r in records if r["model"] == baseline}
    return [(r, final(r, key) - final(base[_pair_key(r)], key))
            for r in records if r["model"] == variant and _pair_key(r) in base]


def compare(records: Sequence[dict], variants: Sequence[str], baseline: str = "mobilenet_v2",
            key: str = "val_acc") -> list[Comparison]:
    """One :class:`Comparison` per variant: mean paired difference to `baseline` and its verdict.

    The error is the pairs' spread (std / sqrt(n)); the verdict names a direction only when the 95 %
    interval (Student's t, n - 1 degrees of freedom) excludes zero.
    """
    out = []
    for variant in variants:
        pairs = paired_differences(records, variant, baseline, key)
        if not pairs:
            raise ValueError(f"no condition has both {variant!r} and {baseline!r}")
        out.append(Comparison.of(variant, baseline, [d for _, d in pairs]))
    return out


AUGMENT_WORDS = {"none": "no augmentation", "light": "light augmentation", "course": "the course's augmentation"}


def lesson_key(lesson: str | int) -> str:
    """A lesson's two-digit key: ``4``, ``"4"`` and ``"04"`` give ``"04"``; other text is kept as it is."""
    return f"{int(lesson):02d}" if str(lesson).isdigit() else str(lesson)


def lesson_reference(lesson: str, folder: str | Path | None = None) -> list[dict]:
    """Lesson `lesson`'s stored reference records (``data/reference/lessons.jsonl``), in plan order.

    The first is the lesson's reference run; the others are the runs measured beside it (see
    ``plans.LESSON_REFERENCE``). A condition missing from the file raises ValueError with the command.
    """
    plan = lessons_reference_plan()
    key = lesson_key(lesson)
    if key not in plan:
        raise ValueError(f"no reference run for lesson {lesson!r}; lessons with one: {', '.join(sorted(plan))}")
    by_key = {condition_key(r): r for r in load_reference("lessons", folder)}
    missing = [c.label() for c in plan[key] if c.key not in by_key]
    if missing:
        raise ValueError(f"lesson {key}'s reference run lacks {', '.join(missing)}; make it with "
                         "`make -j2 reference-lessons` (python -m lecture_utils.experiment.sweep plan lessons --profile reference)")
    return [by_key[c.key] for c in plan[key]]


def images_per_second(record: dict) -> float:
    """Training images per second of a record: training images / median seconds of a training phase."""
    seconds = record.get("train_seconds") or []
    if not seconds:
        raise ValueError(f"{record.get('model')}: the record has no train_seconds (it was resumed or is older)")
    return int(record["train_images"]) / statistics.median(seconds)


def describe(record: dict) -> str:
    """One line: what was trained, how (its recipe and validation split), and what it reached."""
    per_class = int(record["train_images"]) // int(record["num_classes"])
    width = f" x{record['width']:g}" if has_width(record["model"]) else ""
    condition = Condition.from_record(record)
    split = "held-out" if condition.validation == "heldout" else "test-split"
    test = f", test {float(record['test_acc']):.3f} once" if "test_acc" in record else ""
    return (f"{record['model']}{width} at {record['resolution']} px, {per_class:,} training images per class, "
            f"{record['epochs']} epochs, {condition.recipe.describe()}, "
            f"{AUGMENT_WORDS.get(record['augment'], record['augment'])}: {split} validation accuracy "
            f"{final(record):.3f} after the last epoch (best {best(record):.3f} after epoch {best_epoch(record)}){test}, "
            f"training {final(record, 'train_acc'):.3f}; {float(record['wall_time_s']) / 60:.1f} min on "
            f"{record['threads']} thread(s)")


def best(record: dict, key: str = "val_acc") -> float:
    """The best epoch's value of a per-epoch accuracy list."""
    return max(float(v) for v in record[key])


def best_epoch(record: dict, key: str = "val_acc") -> int:
    """The (1-based) epoch of the best value; the first of equals."""
    values = [float(v) for v in record[key]]
    return values.index(max(values)) + 1


LINEAR_BASELINE_FILE = "linear-baseline.json"


def load_linear_baseline(folder: str | Path | None = None, per_class: int | None = None) -> dict[str, Any]:
    """The stored linear baseline (``data/reference/linear-baseline.json``; fitted on `per_class` images per
    class: ``linear-baseline-<per_class>.json``): ``test_acc`` on the official test split, ``heldout_acc`` on the
    held-out images where it was fitted without them, ``train_acc``."""
    import json

    name = LINEAR_BASELINE_FILE if per_class is None else f"linear-baseline-{per_class}.json"
    path = (Path(folder) if folder is not None else REFERENCE_DIR) / name
    if not path.is_file():
        more = "" if per_class is None else f" --per-class {per_class}"
        raise FileNotFoundError(f"{path} not found; make it with: python -m lecture_utils.experiment.baseline "
                                f"--data-root /usr/share/datasets/fashion-mnist{more}")
    result = json.loads(path.read_text())
    # the official test split is "test" (a file written before the splits were named so calls it "val")
    for field in ("acc", "images"):
        if f"val_{field}" in result:
            result.setdefault(f"test_{field}", result.pop(f"val_{field}"))
    return result


def recipe_choice(records: Sequence[dict], baseline: str = "course", variant: str = "recommended",
                  key: str = "val_acc") -> dict[str, Comparison]:
    """`variant`'s recipe against `baseline`'s on the same network, seed and data: per network and over all pairs.

    `key` is ``val_acc`` (the held-out split's, last epoch: what the choice reads) or ``test_acc`` (reported).
    The error is the pairs' spread (std / sqrt(n)); the verdict needs the 95 % interval (Student's t) to exclude zero.
    """
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.recipe import RECIPES

    def recipe_of(record: dict) -> str | None:
        recipe = Condition.from_record(record).recipe
        return next((name for name, r in RECIPES.items() if r == recipe), None)

    cells: dict[tuple, dict[str, float]] = {}
    for record in records:
        cell = (record["model"], float(record["width"]), int(record["seed"]))
        value = record[key] if key == "test_acc" else final(record, key)
        cells.setdefault(cell, {})[recipe_of(record) or "other"] = float(value)
    diffs: dict[str, list[float]] = {}
    for (model, width, _seed), values in sorted(cells.items()):
        if baseline in values and variant in values:
            diffs.setdefault(f"{model} {width:g}", []).append(values[variant] - values[baseline])
    if not diffs:
        raise ValueError(f"no network has runs with both the {baseline!r} and the {variant!r} recipe")
    diffs["all"] = [d for name in list(diffs) for d in diffs[name]]
    out = {}
    for name, ds in diffs.items():
        out[name] = Comparison.of(variant, baseline, ds)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.experiment.results NAME``: how reference run NAME was made, per file and in all."""
    import argparse
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["recipe-choice"]:
        records = load_reference("recipe-choice")
        for key, what in (("val_acc", "held-out validation, last epoch (the choice)"), ("test_acc", "test (reported)")):
            print(f"recommended - course, {what}:")
            for name, c in recipe_choice(records, key=key).items():
                print(f"  {name:<16} {100 * c.mean:+.2f} points, SE {100 * c.se:.2f}, 95 % interval +- "
                      f"{100 * c.half:.2f} over {c.n} seed(s), p = {c.p:.2g}: {c.verdict}")
        return 0

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.experiment.results", description=(
        "Summarise the provenance of a stored reference run (or of any results file); "
        "'python -m lecture_utils.experiment.results recipe-choice' prints the recipe choice's verdicts instead."))
    parser.add_argument("name", help="reference run name, e.g. lesson09 (files data/reference/NAME-*.jsonl), a results "
                        "file's path (runs/sweep.jsonl), or recipe-choice (the recipe choice's verdicts)")
    parser.add_argument("--folder", default=None, help="folder of the files (default: data/reference)")
    args = parser.parse_args(argv)
    where = args.name
    try:
        if args.name.endswith(".jsonl") or os.sep in args.name:  # a file's path, absolute or not
            path = Path(args.name).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"no results file {path}")
            files = [path]
        else:
            files = reference_files(args.name, args.folder)
        for path in files + [None]:
            where = str(path) if path else f"reference run {args.name}"
            records = load_results(path) if path else merge_results(files)
            if not records:
                raise ValueError(f"{where} holds no records")
            p = provenance(records)
            print(f"{path.name if path else 'all files'}: {p['conditions']} conditions, {p['wall_time_h']:.2f} h "
                  f"of training (median {p['median_condition_s']:.0f} s, longest {p['longest_condition_s']:.0f} s per "
                  f"condition), finished {p['first_finished']} .. {p['last_finished']}")
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    except KeyError as exc:  # a record written by hand, or by something other than the sweep
        parser.error(f"{where}: a record has no {exc.args[0]!r} field, which every record the sweep writes has")
    print(f"commits: {', '.join(p['commits'])}; torch {', '.join(p['torch'])}; CPU {', '.join(p['cpu'])}; "
          f"threads {', '.join(p['threads'])}; {p['commands']} distinct command lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
