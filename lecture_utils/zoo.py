"""The zoo table: lessons 01-08's networks on equal terms, with their baselines and published numbers.

The records are ``data/reference/zoo.jsonl`` (``make -j2 reference-zoo``: ``plans.ZOO``, the
recommended recipe, validated on the held-out split, tested once). A row is one entry of
``plans.ZOO``: its seeds averaged, with the standard error of the mean over the seeds (std /
sqrt(n)); a row of one seed has only the binomial error of its test images (sqrt(p (1 - p) / n)),
which leaves out the seed-to-seed spread and is marked so. ``python -m lecture_utils.zoo`` prints
the table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_utils.conditions import condition_key, has_width
from lecture_utils.plans import ZOO, ZOO_EPOCHS, ZOO_PER_CLASS, zoo_plan
from lecture_utils.results import (describe, images_per_second, lesson_key, lesson_reference, load_linear_baseline,
                                   load_reference)

__all__ = ["PUBLISHED", "ZooRow", "zoo_rows", "lesson_zoo", "zoo_table", "ceiling", "versus_baseline",
           "Difference", "lesson_report", "main"]

# Test accuracy on Fashion-MNIST from the data set's own benchmark table (the zalandoresearch/fashion-mnist
# README, "Benchmark"; numbers as submitted, not re-run there): (classifier, preprocessing and augmentation,
# test accuracy). The table gives no epochs or budgets but for one entry; these runs train to convergence
# on all 60,000 images at 28 px, most with augmentation.
PUBLISHED = (
    ("2 conv layers with max pooling (Keras)", "none", 0.876),
    ("2 conv layers with max pooling (TensorFlow), > 300 epochs", "none", 0.916),
    ("2 conv layers, < 100 K parameters", "none", 0.925),
    ("AlexNet with triplet loss", "none", 0.899),
    ("VGG16, 26 M parameters", "none", 0.935),
    ("GoogLeNet with cross-entropy loss", "none", 0.937),
    ("ResNet-18", "normalisation, flips, translation, rotation", 0.949),
    ("MobileNet", "horizontal flips", 0.950),
    ("WRN-40-4, 8.9 M parameters", "normalisation, crops, flips", 0.967),
    ("human performance (crowd, 1,000 test images)", "-", 0.835),
)


@dataclass(frozen=True)
class ZooRow:
    """One entry of ``plans.ZOO`` over its seeds: accuracies as means, each with its standard error."""

    lesson: str
    model: str
    width: float
    resolution: int
    per_class: int
    epochs: int
    seeds: int
    val_acc: float  # held-out split, last epoch
    val_se: float
    test_acc: float  # the official test split, once
    test_se: float
    train_acc: float  # last epoch
    params: int
    macs: int
    images_per_s: float  # training, one thread, median epoch
    equal_budget: bool  # the zoo's common budget (plans.ZOO_PER_CLASS images per class, plans.ZOO_EPOCHS)
    records: tuple = ()

    @property
    def name(self) -> str:
        """``mobilenet_v2 x0.5`` or ``resnet18``."""
        return f"{self.model} x{self.width:g}" if has_width(self.model) else self.model

    @property
    def se_from_seeds(self) -> bool:
        """Whether the errors come from the seeds' spread (more than one seed) or the binomial error alone."""
        return self.seeds > 1


def _mean_se(values: Sequence[float], images: int) -> tuple[float, float]:
    mean = statistics.fmean(values)
    if len(values) > 1:
        return mean, statistics.stdev(values) / math.sqrt(len(values))
    return mean, math.sqrt(mean * (1 - mean) / images)


def zoo_rows(records: Sequence[dict] | None = None, folder: str | Path | None = None) -> list[ZooRow]:
    """The zoo's rows in ``plans.ZOO``'s order (records: default the stored ``zoo.jsonl``).

    A plan entry without all of its records raises ValueError with the command that makes them.
    """
    if records is None:
        records = load_reference("zoo", folder)
    by_key = {condition_key(r): r for r in records}
    plan = zoo_plan()
    missing = [c.label() for _, c in plan if c.key not in by_key]
    if missing:
        raise ValueError(f"the zoo's records lack {len(missing)} condition(s) ({', '.join(missing[:3])}...); make "
                         "them with `make -j2 reference-zoo` (python -m lecture_utils.sweep plan zoo)")
    rows = []
    for lesson, model, width, resolution, per_class, seeds in ZOO:
        recs = [by_key[c.key] for les, c in plan if les == lesson and c.model == model and c.width == width
                and c.resolution == resolution and c.subset[0] == per_class]
        val, val_se = _mean_se([float(r["val_acc"][-1]) for r in recs], int(recs[0]["val_images"]))
        test, test_se = _mean_se([float(r["test_acc"]) for r in recs], int(recs[0]["test_images"]))
        rows.append(ZooRow(lesson, recs[0]["model"], float(width), int(resolution), int(per_class),
                           int(recs[0]["epochs"]), len(recs), val, val_se, test, test_se,
                           statistics.fmean(float(r["train_acc"][-1]) for r in recs), int(recs[0]["params"]),
                           int(recs[0]["macs"]), statistics.median(images_per_second(r) for r in recs),
                           per_class == ZOO_PER_CLASS and int(recs[0]["epochs"]) == ZOO_EPOCHS, tuple(recs)))
    return rows


def lesson_zoo(lesson: str, rows: Sequence[ZooRow] | None = None) -> list[ZooRow]:
    """The rows of lesson `lesson` (``"04"`` or 4), its own network first."""
    key = lesson_key(lesson)
    rows = zoo_rows() if rows is None else rows
    found = [r for r in rows if r.lesson == key]
    if not found:
        raise ValueError(f"no zoo row for lesson {lesson!r}; lessons with one: "
                         f"{', '.join(sorted({r.lesson for r in rows if r.lesson != '--'}))}")
    return found


@dataclass(frozen=True)
class Difference:
    """a - b in accuracy, its standard error, and whether it exceeds two of them."""

    what: str
    diff: float
    se: float

    @property
    def verdict(self) -> str:
        if self.diff > 2 * self.se:
            return "above by more than 2 SE"
        if self.diff < -2 * self.se:
            return "below by more than 2 SE"
        return "within 2 SE"


def versus_baseline(row: ZooRow, baseline: float) -> Difference:
    """`row`'s test accuracy against the linear baseline's (a fixed number: its own error left out)."""
    return Difference(f"{row.name} at {row.resolution} px - linear baseline", row.test_acc - baseline, row.test_se)


def ceiling(rows: Sequence[ZooRow] | None = None, model: str = "mobilenet_v2", width: float = 0.5,
            key: str = "val_acc") -> tuple[ZooRow, ZooRow, Difference]:
    """The resolution ceiling: `model` at its larger and smaller resolution, and their paired difference.

    Pairs by seed; the error is the pairs' spread (std / sqrt(n)). `key`: ``val_acc`` (held-out, last
    epoch) or ``test_acc``.
    """
    rows = zoo_rows() if rows is None else rows
    budget = max(r.per_class for r in rows)
    pair = sorted((r for r in rows if r.model == model and r.width == width and r.per_class == budget),
                  key=lambda r: r.resolution)
    if len(pair) < 2:
        raise ValueError(f"the zoo has {model} x{width:g} at fewer than two resolutions")
    low, high = pair[0], pair[-1]
    value = (lambda r: float(r["val_acc"][-1])) if key == "val_acc" else (lambda r: float(r["test_acc"]))
    lows = {int(r["seed"]): value(r) for r in low.records}
    diffs = [value(r) - lows[int(r["seed"])] for r in high.records if int(r["seed"]) in lows]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("inf")
    return high, low, Difference(f"{high.name}: {high.resolution} px - {low.resolution} px", statistics.fmean(diffs), se)


def _row_line(r: ZooRow) -> str:
    errors = f"{r.seeds} seeds: mean +- standard error" if r.se_from_seeds else "1 seed: +- the binomial error only"
    return (f"{r.name} at {r.resolution} px ({errors}): held-out {r.val_acc:.3f} +- {r.val_se:.3f}, test "
            f"{r.test_acc:.3f} +- {r.test_se:.3f}; training {r.train_acc:.3f}")


def _same_images_baseline() -> float | None:
    """The linear baseline fitted on the zoo's own training images (test accuracy), or None if not stored."""
    try:
        return float(load_linear_baseline(per_class=ZOO_PER_CLASS)["val_acc"])
    except FileNotFoundError:
        return None


def lesson_report(lesson: str, rows: Sequence[ZooRow] | None = None, baseline: float | None = None) -> str:
    """What the zoo says about lesson `lesson`'s network: its rows, the linear baseline, the small CNN, before.

    "Before" is the lesson's stored run with the course's recipe (``results.lesson_reference``), validated
    on the test split. Lesson 02 (VGG16) has no row: the text says so and shows ResNet-18's.
    """
    rows = zoo_rows() if rows is None else rows
    baseline = load_linear_baseline()["val_acc"] if baseline is None else baseline
    key = lesson_key(lesson)
    small = next(r for r in rows if r.model == "small_cnn")
    lines = [f"the zoo: the recommended recipe, {ZOO_PER_CLASS:,} training images per class, {ZOO_EPOCHS} epochs, "
             f"validated on {small.records[0]['val_images']:,} held-out images, tested once on "
             f"{small.records[0]['test_images']:,} test images"]
    own = [r for r in rows if r.lesson == key]
    if not own:
        lines.append(f"lesson {key}'s network has no row of the CPU zoo (plans.ZOO says why); ResNet-18 on these terms:")
        own = [r for r in rows if r.model == "resnet18"]
    same = _same_images_baseline()
    for r in own:
        lines.append("  " + _row_line(r))
        vs = versus_baseline(r, baseline)
        cnn = Difference("", r.test_acc - small.test_acc, math.hypot(r.test_se, small.test_se))
        lines.append(f"    test - linear baseline, all 60,000 images ({baseline:.3f}): {100 * vs.diff:+.1f} +- "
                     f"{100 * vs.se:.1f} points, {vs.verdict}")
        if same is not None:
            vs_same = versus_baseline(r, same)
            lines.append(f"    test - linear baseline, the same {ZOO_PER_CLASS:,} images per class ({same:.3f}): "
                         f"{100 * vs_same.diff:+.1f} +- {100 * vs_same.se:.1f} points, {vs_same.verdict}")
        lines.append(f"    test - two-convolution CNN, the same terms ({small.test_acc:.3f}): {100 * cnn.diff:+.1f} +- "
                     f"{100 * cnn.se:.1f} points, {cnn.verdict}")
    with_record = [r for r in rows if r.lesson == key]
    if with_record:
        before = lesson_reference(key)[0]
        lines.append(f"before, the course's recipe (validated on the test split): {describe(before)}")
    return "\n".join(lines)


def zoo_table(rows: Sequence[ZooRow] | None = None, baseline: float | None = None) -> str:
    """The rows as a text table, the baseline and the published numbers under them."""
    rows = zoo_rows() if rows is None else rows
    lines = [f"{'lesson':<6} {'network':<20} {'px':>3} {'params':>7} {'MACs':>7} {'img/cls':>7} {'ep':>2} "
             f"{'seeds':>5} {'held-out val':>14} {'test':>14} {'train':>5} {'img/s':>5}"]
    for r in rows:
        star = "" if r.se_from_seeds else "*"
        lines.append(f"{r.lesson:<6} {r.name:<20} {r.resolution:>3} {r.params / 1e6:>6.2f}M {r.macs / 1e6:>6.1f}M "
                     f"{r.per_class:>7,} {r.epochs:>2} {r.seeds:>5} {r.val_acc:>7.3f} +-{r.val_se:.3f}{star:1} "
                     f"{r.test_acc:>6.3f} +-{r.test_se:.3f}{star:1} {r.train_acc:>5.3f} {r.images_per_s:>5.0f}"
                     + ("" if r.equal_budget else "  (not the zoo's common budget)"))
    lines.append("+-: standard error of the mean over the seeds; * one seed: the binomial error of the split only")
    if baseline is not None:
        lines.append(f"linear baseline (softmax regression on raw pixels, all 60,000 training images): test {baseline:.3f}")
        same = _same_images_baseline()
        if same is not None:
            lines.append(f"linear baseline fitted on the zoo's own 1,000 training images per class: test {same:.3f}")
    lines.append("published (Fashion-MNIST benchmark table, test accuracy, full training split, trained to convergence):")
    lines += [f"  {acc:.3f}  {name} (preprocessing: {prep})" for name, prep, acc in PUBLISHED]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.zoo``: the zoo table of the stored records."""
    import sys

    if list(sys.argv[1:] if argv is None else argv):
        print("usage: python -m lecture_utils.zoo (no arguments): the zoo table of data/reference/zoo.jsonl",
              file=sys.stderr)
        return 2
    try:
        print(zoo_table(baseline=load_linear_baseline()["val_acc"]))
    except (ValueError, FileNotFoundError) as exc:
        print(f"python -m lecture_utils.zoo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
