"""Lesson 09's answer in one place, computed from the stored records.

The lesson opens with these lines and then builds each of them section by section; the numbers come from the
same calls the sections make (:func:`lecture_utils.results.compare` over paired seeds, 95 % intervals), so
the answer at the top and the evidence below cannot drift apart.
"""

from __future__ import annotations

from typing import Sequence

from lecture_utils import results
from lecture_utils.conditions import MODELS, condition_key
from lecture_utils.plans import lesson09_profile_plan


def _rows(records: Sequence[dict], conditions: Sequence) -> list[dict]:
    by_key = {condition_key(r): r for r in records}
    missing = [c.label() for c in conditions if c.key not in by_key]
    if missing:
        raise ValueError(f"{len(missing)} condition(s) of lesson 09's stored run are missing (first: {missing[0]}); "
                         "make them with: make -j2 reference-09")
    return [by_key[c.key] for c in conditions]


def lesson09_answer(records: Sequence[dict] | None = None) -> str:
    """The answer of lesson 09's stored reference run: every claim with its number, 95 % interval and section.

    `records`: default ``data/reference/lesson09-*.jsonl``.
    """
    records = results.load_reference("lesson09") if records is None else records
    plan = lesson09_profile_plan("reference")
    grid = _rows(records, [c for c in plan["grid"] if c.model in MODELS])
    cnn = _rows(records, [c for c in plan["grid"] if c.model == "small_cnn"])
    ablation = _rows(records, plan["ablation"])

    def line(comparison: results.Comparison) -> str:
        return f"{comparison.points()} over {comparison.n} pairs: {comparison.verdict}"

    (c_grid,) = results.compare(grid, ["c_mobilenet_v2"])
    leaky, branch, proj, c_abl = results.compare(ablation, ["mobilenet_v2+leaky", "mobilenet_v2+branch",
                                                            "mobilenet_v2+proj", "c_mobilenet_v2"])
    (v1_train,) = results.compare(grid, ["mobilenet_v1"], key="train_acc")
    (v1_val,) = results.compare(grid, ["mobilenet_v1"])
    best = max(grid, key=results.final)  # chosen on the held-out split, reported on the test split
    cnn_test = sum(float(r["test_acc"]) for r in cnn) / len(cnn)
    baseline = results.load_linear_baseline(per_class=plan["grid"][0].subset[0])["val_acc"]
    width = f" x{best['width']:g}" if best["model"] in MODELS else ""
    return "\n".join([
        "lesson 09's answer (stored reference run; differences in accuracy points, held-out split, 95 % intervals)",
        f"1. C_MobileNetV2 - MobileNetV2 over the grid (sec. 9): {line(c_grid)}",
        f"   the same at the ablation's condition, 5 seeds (sec. 10): {line(c_abl)}",
        "2. which of its two changes (sec. 10):",
        f"   LeakyReLU after the add: {line(leaky)}",
        f"   the same LeakyReLU on the branch instead: {line(branch)}",
        f"   1x1 projection shortcuts: {line(proj)}",
        f"3. 'v1 is the most accurate' (sec. 9): training accuracy {line(v1_train)}",
        f"   held-out accuracy {line(v1_val)}",
        f"4. the budget (sec. 11, 14): the grid's best on the held-out split, {best['model']}{width} at "
        f"{best['resolution']} px, tests at {float(best['test_acc']):.3f}; on the same images the two-convolution "
        f"CNN tests at {cnn_test:.3f} and the linear baseline at {baseline:.3f}",
    ])
