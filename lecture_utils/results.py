"""Reading sweep results: the stored reference runs, paired comparisons and their verdicts.

A reference run is a set of JSON Lines files written by ``python -m lecture_utils.sweep`` (one
record per finished condition, see :mod:`lecture_utils.sweep`) and committed under
``data/reference/``. Lessons read them here, so that their analysis cells are deterministic.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lecture_utils import sweep
from lecture_utils._util import cpu_name, git_commit

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
    "linear_baseline",
    "softmax_regression_loss",
    "load_linear_baseline",
    "lesson_reference",
    "describe",
    "images_per_second",
    "zoo_rows",
    "zoo_table",
    "best",
    "best_epoch",
]

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "data" / "reference"
# What a paired comparison matches on besides the model: the same condition, seed and recipe.
PAIR_FIELDS = ("width", "resolution", "seed", "augment", "epochs", "dataset", "subset")


def reference_files(name: str, folder: str | Path | None = None) -> list[Path]:
    """The files of reference run `name` (``<name>-*.jsonl`` or ``<name>.jsonl``), sorted."""
    folder = Path(folder) if folder is not None else REFERENCE_DIR
    files = sorted(folder.glob(f"{name}-*.jsonl")) + sorted(folder.glob(f"{name}.jsonl"))
    if not files:
        raise FileNotFoundError(
            f"no reference results named {name!r} in {folder} (expected {name}-*.jsonl); "
            "data/reference/README.md gives the command that makes them")
    return files


def load_reference(name: str, folder: str | Path | None = None) -> list[dict]:
    """Every record of reference run `name`, each condition once (the first file that has it wins)."""
    return sweep.merge_results(reference_files(name, folder))


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
    """A variant against a baseline over matched pairs: mean difference, its error, and what it says."""

    variant: str
    baseline: str
    n: int
    mean: float
    se: float
    agree: int  # pairs whose difference has the sign of the mean
    verdict: str


def _pair_key(record: dict) -> tuple:
    return tuple(str(record.get(f)) for f in PAIR_FIELDS)


def paired_differences(records: Sequence[dict], variant: str, baseline: str = "mobilenet_v2",
                       key: str = "val_acc") -> list[tuple[dict, float]]:
    """``(variant record, variant - baseline)`` for every condition and seed both were run at."""
    base = {_pair_key(r): r for r in records if r["model"] == baseline}
    return [(r, final(r, key) - final(base[_pair_key(r)], key))
            for r in records if r["model"] == variant and _pair_key(r) in base]


def compare(records: Sequence[dict], variants: Sequence[str], baseline: str = "mobilenet_v2",
            key: str = "val_acc") -> list[Comparison]:
    """One :class:`Comparison` per variant: mean paired difference to `baseline` and its verdict.

    The standard error is the larger of the pairs' spread (std / sqrt(n)) and the binomial error of
    a difference of two accuracies measured on the validation images (sqrt(2 p (1 - p) / N) / sqrt(n)).
    The verdict needs the mean to be more than two standard errors away from zero.
    """
    out = []
    for variant in variants:
        pairs = paired_differences(records, variant, baseline, key)
        if not pairs:
            raise ValueError(f"no condition has both {variant!r} and {baseline!r}")
        diffs = [d for _, d in pairs]
        n = len(diffs)
        mean = sum(diffs) / n
        spread = statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
        p = sum(final(r, key) for r, _ in pairs) / n
        images = min(int(r.get("val_images") or 0) for r, _ in pairs) or 1
        binomial = math.sqrt(2 * p * (1 - p) / images) / math.sqrt(n)
        se = max(spread, binomial)
        agree = sum((d > 0) == (mean > 0) and d != 0 for d in diffs)
        if mean < -2 * se:
            verdict = "costs accuracy"
        elif mean > 2 * se:
            verdict = "adds accuracy"
        else:
            verdict = "no difference this run can resolve"
        out.append(Comparison(variant, baseline, n, mean, se, agree, verdict))
    return out


AUGMENT_WORDS = {"none": "no augmentation", "light": "light augmentation", "course": "the course's augmentation"}


def lesson_reference(lesson: str, folder: str | Path | None = None) -> list[dict]:
    """Lesson `lesson`'s stored reference records (``data/reference/lessons.jsonl``), in plan order.

    The first is the lesson's reference run; the others are the runs measured beside it (see
    ``sweep.LESSON_REFERENCE``). A condition missing from the file raises ValueError with the command.
    """
    plan = sweep.lessons_reference_plan()
    key = f"{int(lesson):02d}" if str(lesson).isdigit() else str(lesson)
    if key not in plan:
        raise ValueError(f"no reference run for lesson {lesson!r}; lessons with one: {', '.join(sorted(plan))}")
    by_key = {sweep.condition_key(r): r for r in load_reference("lessons", folder)}
    missing = [c.label() for c in plan[key] if c.key not in by_key]
    if missing:
        raise ValueError(f"lesson {key}'s reference run lacks {', '.join(missing)}; make it with "
                         "`make -j2 reference-lessons` (python -m lecture_utils.sweep plan lessons --profile reference)")
    return [by_key[c.key] for c in plan[key]]


def images_per_second(record: dict) -> float:
    """Training images per second of a record: training images / median seconds of a training phase."""
    seconds = record.get("train_seconds") or []
    if not seconds:
        raise ValueError(f"{record.get('model')}: the record has no train_seconds (it was resumed or is older)")
    return int(record["train_images"]) / statistics.median(seconds)


def describe(record: dict) -> str:
    """One line: what was trained, how, and what it reached."""
    per_class = int(record["train_images"]) // int(record["num_classes"])
    width = f" x{record['width']:g}" if record["model"].startswith(("mobilenet", "c_mobilenet")) else ""
    return (f"{record['model']}{width} at {record['resolution']} px, {per_class:,} training images per class, "
            f"{record['epochs']} epochs, Adam {record['lr']:g}, {AUGMENT_WORDS.get(record['augment'], record['augment'])}: "
            f"validation accuracy {final(record):.3f} after the last epoch (best {best(record):.3f} after epoch "
            f"{best_epoch(record)}), training {final(record, 'train_acc'):.3f}; "
            f"{float(record['wall_time_s']) / 60:.1f} min on {record['threads']} thread(s)")


def best(record: dict, key: str = "val_acc") -> float:
    """The best epoch's value of a per-epoch accuracy list."""
    return max(float(v) for v in record[key])


def best_epoch(record: dict, key: str = "val_acc") -> int:
    """The (1-based) epoch of the best value; the first of equals."""
    values = [float(v) for v in record[key]]
    return values.index(max(values)) + 1


def zoo_rows(folder: str | Path | None = None) -> list[dict[str, Any]]:
    """One row per lesson's reference run: lesson, model, resolution, params, MACs, accuracies, images/s."""
    rows = []
    for lesson in sorted(sweep.lessons_reference_plan()):
        rec = lesson_reference(lesson, folder)[0]
        rows.append({"lesson": lesson, "model": rec["model"], "resolution": rec["resolution"],
                     "params": rec["params"], "macs": rec["macs"], "val_acc": final(rec), "best_val_acc": best(rec),
                     "train_acc": final(rec, "train_acc"), "epochs": rec["epochs"],
                     "train_images": rec["train_images"], "num_classes": rec["num_classes"],
                     "images_per_s": images_per_second(rec)})
    return rows


ZOO_COMMON_RESOLUTION = 64  # the smallest that every network of the series accepts (AlexNet needs >= 63 px)


def _macs_at(record: dict, resolution: int) -> int:
    from lecture_utils.models import create_model
    from lecture_utils.profile import conv_linear_macs

    _, factory, kwargs = sweep.parse_model_name(record["model"])
    if factory in sweep.WIDTH_MODELS:
        kwargs = {**kwargs, "width_multiplier": record["width"]}
    return conv_linear_macs(create_model(factory, num_classes=int(record["num_classes"]), **kwargs), resolution)


def zoo_table(folder: str | Path | None = None, common: int = ZOO_COMMON_RESOLUTION) -> tuple[list[dict], str]:
    """``zoo_rows`` with multiply-adds at one `common` resolution added, and the rows as a text table."""
    rows = zoo_rows(folder)
    for row, rec in zip(rows, (lesson_reference(r["lesson"], folder)[0] for r in rows)):
        row["macs_common"] = _macs_at(rec, common)
    lines = [f"{'lesson':<6} {'network':<16} {'px':>3} {'params':>7} {'MACs':>7} {f'MACs@{common}':>8} "
             f"{'img/cls':>7} {'ep':>2} {'val acc':>7} {'best':>5} {'train':>5} {'img/s':>5}"]
    for r in rows:
        lines.append(f"{r['lesson']:<6} {r['model']:<16} {r['resolution']:>3} {r['params'] / 1e6:>6.2f}M "
                     f"{r['macs'] / 1e6:>6.1f}M {r['macs_common'] / 1e6:>7.1f}M {r['train_images'] // r['num_classes']:>7,} "
                     f"{r['epochs']:>2} {r['val_acc']:>7.3f} {r['best_val_acc']:>5.3f} {r['train_acc']:>5.3f} "
                     f"{r['images_per_s']:>5.0f}")
    return rows, "\n".join(lines)


LINEAR_BASELINE_FILE = "linear-baseline.json"


def softmax_regression_loss(x: Any, y: Any, w: Any, b: Any, weight_decay: float) -> tuple[Any, tuple[Any, Any]]:
    """Mean cross-entropy of the logits ``x @ w + b`` plus ``weight_decay * |w|^2``, and its gradient.

    The gradient in closed form: with p = softmax(x w + b) and Y the one-hot labels,
    dL/dw = x^T (p - Y) / n + 2 weight_decay w and dL/db = sum over the images of (p - Y) / n.
    """
    import torch

    logits = x @ w + b
    loss = torch.nn.functional.cross_entropy(logits, y) + weight_decay * (w * w).sum()
    residual = (logits.softmax(dim=1) - torch.nn.functional.one_hot(y, w.shape[1]).to(w.dtype)) / len(y)
    return loss, (x.T @ residual + 2 * weight_decay * w, residual.sum(dim=0))


def linear_baseline(root: str | Path | None = None, max_iter: int = 300, weight_decay: float = 1e-4) -> dict[str, Any]:
    """Softmax regression on Fashion-MNIST's raw pixels: the line every network should clear.

    784 pixel values in [0, 1] (plus a bias) -> 10 logits, fitted on all 60,000 training images by
    full-batch L-BFGS in float64 with an L2 penalty of `weight_decay` on the weights, and scored on
    the 10,000 test images. No convolution, no hidden layer: a straight line per class.
    """
    import platform
    import time

    import torch

    from lecture_utils.datasets import get_dataset

    def arrays(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        ds = get_dataset("fashion_mnist", split, root=root)
        x = torch.tensor(ds.images, dtype=torch.float64).reshape(len(ds), -1) / 255.0  # a copy: the file is read-only
        return x, torch.as_tensor(ds.targets, dtype=torch.long)

    started, commit = time.time(), git_commit()
    (x, y), (xv, yv) = arrays("train"), arrays("val")
    w = torch.zeros(x.shape[1], 10, dtype=torch.float64)
    b = torch.zeros(10, dtype=torch.float64)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        loss, (w.grad, b.grad) = softmax_regression_loss(x, y, w, b, weight_decay)
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_acc = float(((x @ w + b).argmax(1) == y).double().mean())
        val_acc = float(((xv @ w + b).argmax(1) == yv).double().mean())
    return {
        "model": "softmax regression on raw pixels (784 -> 10)",
        "train_images": len(y), "val_images": len(yv), "train_acc": train_acc, "val_acc": val_acc,
        "weight_decay": weight_decay, "max_iter": max_iter, "optimizer": "L-BFGS (strong Wolfe), float64",
        "wall_time_s": round(time.time() - started, 1), "torch": torch.__version__,
        "cpu": cpu_name(), "threads": torch.get_num_threads(), "commit": commit,
        "python": platform.python_version(),
    }


def load_linear_baseline(folder: str | Path | None = None) -> dict[str, Any]:
    """The stored linear baseline (``data/reference/linear-baseline.json``)."""
    import json

    path = (Path(folder) if folder is not None else REFERENCE_DIR) / LINEAR_BASELINE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; make it with: python -m lecture_utils.results linear-baseline")
    return json.loads(path.read_text())


def _linear_main(argv: Sequence[str]) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.results linear-baseline",
                                     description="Fit softmax regression on Fashion-MNIST's raw pixels and store "
                                     "its accuracy (the baseline every lesson's network is compared with).")
    parser.add_argument("--data-root", default=None, help="folder of the raw files (default: the data set's own)")
    parser.add_argument("--out", default=str(REFERENCE_DIR / LINEAR_BASELINE_FILE), help="(default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        result = linear_baseline(args.data_root)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    result["command"] = " ".join(["python -m lecture_utils.results linear-baseline", *argv])
    Path(args.out).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"softmax regression on raw pixels: train {result['train_acc']:.4f}, test {result['val_acc']:.4f} "
          f"({result['wall_time_s']:.0f} s) -> {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.results NAME``: how reference run NAME was made, per file and in all."""
    import argparse
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["linear-baseline"]:
        return _linear_main(argv[1:])
    if argv[:1] == ["zoo"]:
        try:
            table = zoo_table()[1]
            baseline = load_linear_baseline()["val_acc"]
        except (ValueError, FileNotFoundError) as exc:
            print(f"python -m lecture_utils.results zoo: error: {exc}", file=sys.stderr)
            return 2
        print(table)
        print(f"linear baseline (softmax regression on raw pixels): {baseline:.3f}")
        return 0

    parser = argparse.ArgumentParser(prog="python -m lecture_utils.results",
                                     description="Summarise the provenance of a stored reference run.")
    parser.add_argument("name", help="reference run name, e.g. lesson09 (files data/reference/NAME-*.jsonl)")
    parser.add_argument("--folder", default=None, help="folder of the files (default: data/reference)")
    args = parser.parse_args(argv)
    try:
        files = reference_files(args.name, args.folder)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    for path in files + [None]:
        records = sweep.load_results(path) if path else load_reference(args.name, args.folder)
        p = provenance(records)
        print(f"{path.name if path else 'all files'}: {p['conditions']} conditions, {p['wall_time_h']:.2f} h "
              f"of training (median {p['median_condition_s']:.0f} s, longest {p['longest_condition_s']:.0f} s per "
              f"condition), finished {p['first_finished']} .. {p['last_finished']}")
    print(f"commits: {', '.join(p['commits'])}; torch {', '.join(p['torch'])}; CPU {', '.join(p['cpu'])}; "
          f"threads {', '.join(p['threads'])}; {p['commands']} distinct command lines")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
