"""The zoo table: lessons 01-08's networks on equal terms, with their baselines and published numbers.

Two zoos, one protocol (the recommended recipe, validated on the held-out split, tested once):
``zoo`` (``data/reference/zoo.jsonl``, ``make -j2 reference-zoo``: ``plans.ZOO``, 1,000 training
images per class, 5 epochs) and ``zoo-scale`` (``data/reference/zoo-scale.jsonl``, ``make -j2
reference-zoo-scale``: ``plans.SCALE_ZOO``, the whole training split less its held-out part, 3 epochs).
A row is one entry of the plan: its seeds averaged, with the standard error of the mean over the
seeds (std / sqrt(n), n - 1 degrees of freedom); a row of one seed takes the seed-to-seed spread
pooled over the seeded rows of its zoo (:func:`lecture_utils.experiment.stats.pooled_sd`), and is marked so.
Verdicts are 95 % ones (:mod:`lecture_utils.experiment.stats`). ``python -m lecture_utils.experiment.zoo [zoo-scale]``
prints the table.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_utils.experiment import stats
from lecture_utils.experiment.conditions import condition_key, has_width
from lecture_utils.experiment.plans import ZOO_PER_CLASS, ZOOS, zoo_plan
from lecture_utils.experiment.results import (describe, images_per_second, lesson_key, lesson_reference, load_linear_baseline,
                                   load_reference)

__all__ = ["PUBLISHED", "ZooRow", "zoo_rows", "missing_rows", "lesson_zoo", "zoo_table", "ceiling", "versus_baseline",
           "versus_small_cnn", "lesson_report", "plot_lesson", "LESSON_ZOO", "main"]

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


# the zoo lessons 01-08 read, and the entry of PUBLISHED for each architecture the table has
LESSON_ZOO = "zoo-scale"
PUBLISHED_FOR = {"small_cnn": 2, "alexnet": 3, "vgg16": 4, "vgg16_bn": 4, "googlenet": 5, "resnet18": 6,
                 "mobilenet_v1": 7}


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
    test_se: float  # over the seeds, or the pooled seed term for one seed
    test_df: float  # degrees of freedom of test_se
    train_acc: float  # last epoch
    params: int
    macs: int
    images_per_s: float  # training, one thread, median epoch
    equal_budget: bool  # the zoo's common budget (its table's images per class and epochs)
    records: tuple = ()

    @property
    def name(self) -> str:
        """``mobilenet_v2 x0.5`` or ``resnet18``."""
        return f"{self.model} x{self.width:g}" if has_width(self.model) else self.model

    @property
    def se_from_seeds(self) -> bool:
        """Whether the errors come from the row's own seeds (more than one) or the spread pooled over other rows."""
        return self.seeds > 1

    def tests(self) -> list[float]:
        """The test accuracy of each seed."""
        return [float(r["test_acc"]) for r in self.records]


def zoo_rows(records: Sequence[dict] | None = None, folder: str | Path | None = None,
             name: str = "zoo", partial: bool = False) -> list[ZooRow]:
    """The rows of zoo `name` (zoo, zoo-scale) in its plan's order (records: default the stored file).

    A plan entry without all of its records raises ValueError with the command that makes them; with
    `partial`, such an entry is left out (:func:`missing_rows` names it) and only an empty zoo raises.
    """
    if name not in ZOOS:
        raise ValueError(f"unknown zoo {name!r}; allowed: {', '.join(ZOOS)}")
    table, epochs, file = ZOOS[name]
    if records is None:
        records = load_reference(file, folder)
    by_key = {condition_key(r): r for r in records}
    plan = zoo_plan(name)
    missing = [c.label() for _, c in plan if c.key not in by_key]
    make = f"make them with `make -j2 reference-{name}` (python -m lecture_utils.experiment.sweep plan {name})"
    if missing and not partial:
        raise ValueError(f"the {name} records lack {len(missing)} condition(s) ({', '.join(missing[:3])}...); {make}")
    entries, groups = [], []
    for entry in table:
        lesson, model, width, resolution, per_class, _ = entry
        wanted = [c for les, c in plan if les == lesson and c.model == model and c.width == width
                  and c.resolution == resolution and c.subset == (None if per_class is None else (per_class, None))]
        if all(c.key in by_key for c in wanted):
            entries.append(entry)
            groups.append([by_key[c.key] for c in wanted])
    if not entries:
        raise ValueError(f"the {name} records hold no whole row yet; {make}")
    table = tuple(entries)
    seeded = [g for g in groups if len(g) > 1]
    pooled = {key: stats.pooled_sd([[float(_value(r, key)) for r in g] for g in seeded]) if seeded else None
              for key in ("val_acc", "test_acc")}
    rows = []
    for (lesson, model, width, resolution, per_class, seeds), recs in zip(table, groups):
        errors = {}
        for key in ("val_acc", "test_acc"):
            mean, se = stats.mean_se([_value(r, key) for r in recs])
            df = len(recs) - 1.0
            if len(recs) == 1:
                se, df = pooled[key] if pooled[key] is not None else (math.nan, 0.0)
            errors[key] = (mean, se, df)
        rows.append(ZooRow(lesson, recs[0]["model"], float(width), int(resolution), per_class or 0,
                           int(recs[0]["epochs"]), len(recs), errors["val_acc"][0], errors["val_acc"][1],
                           errors["test_acc"][0], errors["test_acc"][1], errors["test_acc"][2],
                           statistics.fmean(float(r["train_acc"][-1]) for r in recs), int(recs[0]["params"]),
                           int(recs[0]["macs"]), statistics.median(images_per_second(r) for r in recs),
                           int(recs[0]["epochs"]) == epochs, tuple(recs)))
    return rows


def missing_rows(rows: Sequence[ZooRow], name: str = "zoo") -> list[str]:
    """The networks of zoo `name`'s plan that `rows` (read with ``partial=True``) lack, e.g. ``["vgg16_bn at 32 px"]``."""
    have = {(r.lesson, r.model, r.width, r.resolution) for r in rows}
    return [f"{model} x{width:g} at {resolution} px" if has_width(model) else f"{model} at {resolution} px"
            for lesson, model, width, resolution, *_ in ZOOS[name][0] if (lesson, model, width, resolution) not in have]


def _value(record: dict, key: str) -> float:
    """The record's test accuracy, or its last epoch's held-out accuracy."""
    return float(record["test_acc"]) if key == "test_acc" else float(record[key][-1])


def lesson_zoo(lesson: str, rows: Sequence[ZooRow] | None = None) -> list[ZooRow]:
    """The rows of lesson `lesson` (``"04"`` or 4), its own network first (default: the rows the CPU-scale zoo has)."""
    key = lesson_key(lesson)
    rows = zoo_rows(name=LESSON_ZOO, partial=True) if rows is None else rows
    found = [r for r in rows if r.lesson == key]
    if not found:
        raise ValueError(f"no zoo row for lesson {lesson!r}; lessons with one: "
                         f"{', '.join(sorted({r.lesson for r in rows if r.lesson != '--'}))}")
    return found


WORDS = ("above at 95 %", "below at 95 %", "not resolved at 95 %")


def versus_baseline(row: ZooRow, baseline: float) -> stats.Difference:
    """`row`'s test accuracy against the linear baseline's (a fixed number: its own error left out)."""
    what = f"{row.name} at {row.resolution} px - linear baseline"
    return stats.Difference(what, row.test_acc - baseline, row.test_se, row.seeds, row.test_df)


def versus_small_cnn(row: ZooRow, small: ZooRow) -> stats.Difference:
    """`row`'s test accuracy against the two-convolution CNN's on the same terms (Welch over their seeds)."""
    pooled = (row.test_se, row.test_df) if row.seeds == 1 else None
    return stats.unpaired(row.tests(), small.tests(), f"{row.name} - small CNN", pooled=pooled)


def ceiling(rows: Sequence[ZooRow] | None = None, model: str = "mobilenet_v2", width: float = 0.5,
            key: str = "val_acc") -> tuple[ZooRow, ZooRow, stats.Difference]:
    """The resolution ceiling: `model` at its larger and smaller resolution, and their paired difference.

    Pairs by seed; the error is the pairs' spread (std / sqrt(n), n - 1 df). `key`: ``val_acc`` (held-out,
    last epoch) or ``test_acc``.
    """
    rows = zoo_rows() if rows is None else rows
    budget = max(r.per_class for r in rows)
    pair = sorted((r for r in rows if r.model == model and r.width == width and r.per_class == budget),
                  key=lambda r: r.resolution)
    if len(pair) < 2:
        raise ValueError(f"the zoo has {model} x{width:g} at fewer than two resolutions")
    low, high = pair[0], pair[-1]
    lows = {int(r["seed"]): _value(r, key) for r in low.records}
    highs = [(lows[int(r["seed"])], _value(r, key)) for r in high.records if int(r["seed"]) in lows]
    diff = stats.paired([h for _, h in highs], [lo for lo, _ in highs],
                        f"{high.name}: {high.resolution} px - {low.resolution} px")
    return high, low, diff


def _row_line(r: ZooRow) -> str:
    errors = (f"{r.seeds} seeds: mean +- standard error" if r.se_from_seeds
              else f"1 seed: +- the seed spread pooled over the seeded rows, {r.test_df:.3g} df")
    return (f"{r.name} at {r.resolution} px ({errors}): held-out {r.val_acc:.3f} +- {r.val_se:.3f}, test "
            f"{r.test_acc:.3f} +- {r.test_se:.3f}; training {r.train_acc:.3f}")


def _same_images_baseline(per_class: int = ZOO_PER_CLASS) -> float | None:
    """The linear baseline fitted on `per_class` training images per class (test accuracy), or None if not stored."""
    try:
        return float(load_linear_baseline(per_class=per_class)["test_acc"])
    except FileNotFoundError:
        return None


def _budget(rows: Sequence[ZooRow]) -> str:
    first = rows[0].records[0]
    images = "the whole training split less its held-out part" if not rows[0].per_class else \
        f"{rows[0].per_class:,} training images per class"
    return (f"the recommended recipe, {images} ({int(first['train_images']):,} images), {first['epochs']} epochs, "
            f"validated on {int(first['val_images']):,} held-out images, tested once on "
            f"{int(first['test_images']):,} test images")


def _published(model: str) -> tuple[str, str, float] | None:
    """The entry of ``PUBLISHED`` for `model`'s architecture, if the benchmark table has one."""
    index = PUBLISHED_FOR.get(model.split("+")[0])
    return None if index is None else PUBLISHED[index]


def _lesson_inputs(rows: Sequence[ZooRow] | None, earlier: Sequence[ZooRow] | None,
                   baseline: float | None) -> tuple[Sequence[ZooRow], Sequence[ZooRow], float]:
    """A lesson's rows (default: the CPU-scale zoo's whole rows), the smaller zoo's and the linear baseline."""
    rows = zoo_rows(name=LESSON_ZOO, partial=True) if rows is None else rows
    earlier = zoo_rows(name="zoo") if earlier is None else earlier
    baseline = load_linear_baseline()["test_acc"] if baseline is None else baseline
    return rows, earlier, baseline


def lesson_report(lesson: str, rows: Sequence[ZooRow] | None = None, baseline: float | None = None,
                  earlier: Sequence[ZooRow] | None = None) -> str:
    """What the zoo says about lesson `lesson`'s network: its rows against the linear baseline, the small CNN
    and the published number, and what the smaller zoo (1,000 images per class) gave it.

    `rows`: default the CPU-scale zoo (``zoo-scale``, the rows it has); `earlier`: default the 1,000-per-class
    zoo. Every difference is printed with its 95 % interval (Student's t) and a word only where that interval
    excludes zero. A lesson whose network has no row yet says so and shows ResNet-18's.
    """
    rows, earlier, baseline = _lesson_inputs(rows, earlier, baseline)
    key = lesson_key(lesson)
    small = next(r for r in rows if r.model == "small_cnn")
    lines = [f"the zoo: {_budget(rows)}"]
    own = [r for r in rows if r.lesson == key]
    if not own:
        planned = [f"{m} at {res} px" for les, m, _, res, *_ in ZOOS[LESSON_ZOO][0] if les == key]
        lines.append(f"lesson {key}'s network has no row of this zoo yet ({', '.join(planned) or 'not planned'}: "
                     f"make -j2 reference-{LESSON_ZOO}); ResNet-18 on these terms:")
        own = [r for r in rows if r.model == "resnet18"]
    same = _same_images_baseline(rows[0].per_class) if rows[0].per_class else None
    for r in own:
        lines.append("  " + _row_line(r))
        vs = versus_baseline(r, baseline)
        lines.append(f"    test - linear baseline, all 60,000 images ({baseline:.3f}): {vs.points()}, {vs.verdict(*WORDS)}")
        if same is not None:
            vs_same = versus_baseline(r, same)
            lines.append(f"    test - linear baseline, the same {r.per_class:,} images per class ({same:.3f}): "
                         f"{vs_same.points()}, {vs_same.verdict(*WORDS)}")
        if r is not small:
            cnn = versus_small_cnn(r, small)
            lines.append(f"    test - two-convolution CNN, the same terms ({small.test_acc:.3f}): {cnn.points()}, "
                         f"{cnn.verdict(*WORDS)}")
        published = _published(r.model)
        if published is not None:
            name, prep, acc = published
            lines.append(f"    published, trained to convergence on all 60,000 images: {acc:.3f} ({name}; "
                         f"augmentation: {prep}), {100 * (r.test_acc - acc):+.1f} points from this row")
        before = [e for e in earlier if (e.model, e.width, e.resolution) == (r.model, r.width, r.resolution)]
        if before:
            e = before[0]
            pooled = (r.test_se, r.test_df) if r.seeds == 1 else (e.test_se, e.test_df)
            gain = stats.unpaired(r.tests(), e.tests(), pooled=pooled)
            lines.append(f"    the smaller zoo ({e.per_class:,} images per class, {e.epochs} epochs): test "
                         f"{e.test_acc:.3f}; this budget instead: {gain.points()}, {gain.verdict(*WORDS)}")
    return "\n".join(lines)


def plot_lesson(lesson: str, rows: Sequence[ZooRow] | None = None, baseline: float | None = None,
                earlier: Sequence[ZooRow] | None = None) -> Any:
    """One picture of lesson `lesson`'s network against its baselines: test accuracy with 95 % intervals.

    The network in the CPU-scale zoo and in the smaller zoo, the two-convolution CNN in both, the published
    number for the architecture, and the linear baseline as a vertical line. Returns the figure.
    """
    import matplotlib.pyplot as plt

    rows, earlier, baseline = _lesson_inputs(rows, earlier, baseline)
    key = lesson_key(lesson)
    own = [r for r in rows if r.lesson == key]
    models = {(r.model, r.width, r.resolution) for r in own}
    points: list[tuple[str, float, float, str]] = []  # (label, accuracy, 95 % half-width, colour)
    for zoo_rows_, what in ((rows, "whole split, 3 epochs"), (earlier, "1,000 per class, 5 epochs")):
        for r in zoo_rows_:
            if (r.model, r.width, r.resolution) in models or r.model == "small_cnn":
                label = f"{r.name} {r.resolution} px: {what}"
                half = versus_baseline(r, 0.0).half_width
                points.append((label, r.test_acc, half, "C1" if r.model == "small_cnn" else "C0"))
    for model in sorted({r.model for r in own}) + ["small_cnn"]:
        published = _published(model)
        if published is not None:
            points.append((f"published: {published[0]}", published[2], 0.0, "0.4"))
    fig, ax = plt.subplots(figsize=(10.5, 0.55 * len(points) + 1.8))
    for k, (label, acc, half, colour) in enumerate(points):
        ax.errorbar(acc, k, xerr=None if not math.isfinite(half) or half == 0 else half, fmt="o", color=colour,
                    capsize=4, markersize=7)
        ax.annotate(f"{acc:.3f}", (acc, k), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=11)
    ax.axvline(baseline, color="black", linestyle=":", linewidth=1.2)
    ax.text(baseline, 1.01, f"linear baseline {baseline:.3f}", transform=ax.get_xaxis_transform(), ha="center",
            va="bottom", fontsize=11)
    ax.set_yticks(range(len(points)), [p[0] for p in points], fontsize=11)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (95 % interval over the seeds)", fontsize=12)
    name = own[0].name if own else f"lesson {key}'s network (no row yet)"
    ax.set_title(f"{name} on Fashion-MNIST, against its baselines", fontsize=13, pad=22)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def zoo_table(rows: Sequence[ZooRow] | None = None, baseline: float | None = None) -> str:
    """The rows as a text table, the baseline and the published numbers under them."""
    rows = zoo_rows() if rows is None else rows
    lines = [f"{'lesson':<6} {'network':<20} {'px':>3} {'params':>7} {'MACs':>7} {'img/cls':>7} {'ep':>2} "
             f"{'seeds':>5} {'held-out val':>14} {'test':>14} {'train':>5} {'img/s':>5}"]
    for r in rows:
        star = "" if r.se_from_seeds else "*"
        per_class = f"{r.per_class:>7,}" if r.per_class else f"{'all':>7}"
        lines.append(f"{r.lesson:<6} {r.name:<20} {r.resolution:>3} {r.params / 1e6:>6.2f}M {r.macs / 1e6:>6.1f}M "
                     f"{per_class} {r.epochs:>2} {r.seeds:>5} {r.val_acc:>7.3f} +-{r.val_se:.3f}{star:1} "
                     f"{r.test_acc:>6.3f} +-{r.test_se:.3f}{star:1} {r.train_acc:>5.3f} {r.images_per_s:>5.0f}"
                     + ("" if r.equal_budget else "  (not the zoo's common budget)"))
    lines.append("+-: standard error of the mean over the seeds; * one seed: the seed-to-seed spread pooled over the "
                 "seeded rows")
    if baseline is not None:
        lines.append(f"linear baseline (softmax regression on raw pixels, all 60,000 training images): test {baseline:.3f}")
        same = _same_images_baseline(rows[0].per_class) if rows[0].per_class else None
        if same is not None:
            lines.append(f"linear baseline fitted on the zoo's own {rows[0].per_class:,} training images per class: "
                         f"test {same:.3f}")
    lines.append("published (Fashion-MNIST benchmark table, test accuracy, full training split, trained to convergence):")
    lines += [f"  {acc:.3f}  {name} (preprocessing: {prep})" for name, prep, acc in PUBLISHED]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.experiment.zoo [zoo|zoo-scale]``: the zoo table of the stored records."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) > 1 or (args and args[0] not in ZOOS):
        print(f"usage: python -m lecture_utils.experiment.zoo [{'|'.join(ZOOS)}]: the table of data/reference/<zoo>.jsonl "
              "(default: zoo)", file=sys.stderr)
        return 2
    name = args[0] if args else "zoo"
    try:
        rows = zoo_rows(name=name, partial=True)
        print(zoo_table(rows, baseline=load_linear_baseline()["test_acc"]))
        for missing in missing_rows(rows, name):
            print(f"not yet trained: {missing} (make -j2 reference-{name} resumes it)")
    except (ValueError, FileNotFoundError) as exc:
        print(f"python -m lecture_utils.experiment.zoo: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
