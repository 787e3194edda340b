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


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.results NAME``: how reference run NAME was made, per file and in all."""
    import argparse

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
