"""Lesson 09's answer in one place, computed from the stored records.

The lesson opens with these lines and then builds each of them section by section; the numbers come from the
same calls the sections make (:func:`lecture_utils.experiment.results.compare` over paired seeds, 95 % intervals), so
the answer at the top and the evidence below cannot drift apart.
"""

from __future__ import annotations

import statistics
from typing import Sequence

from lecture_utils.experiment import results, stats
from lecture_utils.experiment.conditions import MODELS, condition_key
from lecture_utils.experiment.plans import lesson09_profile_plan


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
    baseline = results.load_linear_baseline(per_class=plan["grid"][0].subset[0])["test_acc"]
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
        "5. the same models on the zoo's larger budget (sec. 11):",
        *[f"   {line}" for line in scale_summary()],
    ])


NAMES = {"mobilenet_v1": "MobileNet v1", "mobilenet_v2": "MobileNetV2", "c_mobilenet_v2": "C_MobileNetV2"}


def _scale_groups(zoo_records: Sequence[dict] | None, grid_records: Sequence[dict] | None
                  ) -> tuple[dict[tuple, list[dict]], int]:
    """The runs of each (model, width, resolution) of ``plans.grid_scale_conditions`` found in the two files,
    and how many conditions the plan has."""
    from lecture_utils.experiment.plans import grid_scale_conditions

    zoo_records = results.load_reference("zoo-scale") if zoo_records is None else zoo_records
    if grid_records is None:
        try:
            grid_records = results.load_reference("grid-scale")
        except FileNotFoundError:
            grid_records = []
    wanted = {c.key: c for c in grid_scale_conditions()}
    seeds: dict[tuple, list[dict]] = {}
    for record in list(zoo_records) + list(grid_records):
        # keyed as seed 0: the zoo's extra seeds of a grid condition count as more runs of it
        c = wanted.get(condition_key({**record, "seed": 0}))
        if c is not None:
            group = seeds.setdefault((c.model, c.width, c.resolution), [])
            if all(r.get("seed") != record.get("seed") for r in group):
                group.append(record)
    return seeds, len(wanted)


def _order(key: tuple) -> tuple:
    model, width, res = key
    return -res, -width, model


def _means(seeds: dict[tuple, list[dict]], key: str = "val_acc") -> dict[tuple[str, float, int], float]:
    return {k: statistics.fmean(results.final(r, key) for r in seeds[k]) for k in sorted(seeds, key=_order)}


def scale_accuracies(zoo_records: Sequence[dict] | None = None, grid_records: Sequence[dict] | None = None,
                     key: str = "val_acc") -> dict[tuple[str, float, int], float]:
    """``{(model, width, px): accuracy}`` of lesson 09's grid on the zoo's terms, as far as it is trained: the
    mean over a condition's seeds of `key`'s last value (``val_acc``: held out; ``test_acc``)."""
    return _means(_scale_groups(zoo_records, grid_records)[0], key)


def _differences(seeds: dict[tuple, list[dict]]) -> tuple[list[tuple[str, float, int, stats.Difference]],
                                                          tuple[float, float]]:
    """:func:`scale_differences` of the grouped runs, and the pooled seed spread ``(sd, df)`` it used."""
    held = {k: [results.final(r) for r in v] for k, v in seeds.items()}
    pooled = stats.pooled_sd(held.values())
    out = []
    for (model, width, res) in sorted(seeds, key=_order):
        if model == "mobilenet_v2" or ("mobilenet_v2", width, res) not in seeds:
            continue
        d = stats.unpaired(held[model, width, res], held["mobilenet_v2", width, res],
                           f"{NAMES[model]} - MobileNetV2 at width {width:g}, {res} px", pooled=pooled)
        out.append((model, width, res, d))
    return out, pooled


def scale_seed_spread(zoo_records: Sequence[dict] | None = None, grid_records: Sequence[dict] | None = None
                      ) -> tuple[float, float]:
    """``(sd, df)``: the seed-to-seed spread of held-out accuracy pooled over the grid's conditions with several
    seeds, the term a one-seed condition borrows (:func:`stats.pooled_sd`)."""
    seeds, _ = _scale_groups(zoo_records, grid_records)
    return _differences(seeds)[1]


def scale_differences(zoo_records: Sequence[dict] | None = None, grid_records: Sequence[dict] | None = None
                      ) -> list[tuple[str, float, int, stats.Difference]]:
    """``(model, width, px, difference)``: MobileNet v1 and C_MobileNetV2 against MobileNetV2 in held-out
    accuracy at each (width, resolution) both are trained at, largest first. A side trained with one seed
    borrows the seed-to-seed spread pooled over the conditions that have several (:func:`stats.pooled_sd`)."""
    seeds, _ = _scale_groups(zoo_records, grid_records)
    return _differences(seeds)[0] if seeds else []


def _pair_lines(seeds: dict[tuple, list[dict]], diffs: list[tuple[str, float, int, stats.Difference]]) -> list[str]:
    """C_MobileNetV2 and MobileNet v1 against MobileNetV2: paired over the (width, resolution) pairs, and the
    per-pair verdicts counted."""
    held = _means(seeds)
    lines = []
    for model in ("c_mobilenet_v2", "mobilenet_v1"):
        pairs = [(w, res, d) for m, w, res, d in diffs if m == model]
        if not pairs:
            continue
        means = sorted(100 * d.mean for _, _, d in pairs)
        above = sum(d.resolved and d.mean > 0 for _, _, d in pairs)
        below = sum(d.resolved and d.mean < 0 for _, _, d in pairs)
        # the same comparison over the grid: one pair per (width, resolution), as lesson 09's sec. 9 pairs its grid
        overall = stats.paired([held[model, w, res] for w, res, _ in pairs],
                               [held["mobilenet_v2", w, res] for w, res, _ in pairs])
        lines.append(f"{NAMES[model]} - MobileNetV2 held out, paired over {len(pairs)} (width, resolution) pairs: "
                     f"{overall.points()}: {overall.verdict('adds accuracy', 'costs accuracy')}; per pair "
                     f"{means[0]:+.1f} to {means[-1]:+.1f} points, below at 95 % in {below}, above in {above}, "
                     f"not resolved in {len(pairs) - below - above}")
    return lines


def _best_lines(seeds: dict[tuple, list[dict]], planned: int) -> list[str]:
    """The median held-out accuracy, and each model's best condition on the held-out split against the linear
    baseline on the test split."""
    held = _means(seeds)
    lines = [f"held-out accuracy over the {len(seeds)} of {planned} conditions trained: median "
             f"{statistics.median(held.values()):.3f}, lowest {min(held.values()):.3f}, "
             f"highest {max(held.values()):.3f}"]
    tests = {k: [float(r["test_acc"]) for r in v] for k, v in seeds.items()}
    try:
        pooled = stats.pooled_sd(tests.values())
    except ValueError:  # no condition with several seeds: one-seed rows get no interval
        pooled = None
    baseline = results.load_linear_baseline()["test_acc"]
    for model in MODELS:
        mine = [k for k in seeds if k[0] == model]
        if not mine:
            continue
        best = max(mine, key=lambda k: (held[k], k[2], k[1]))  # chosen on the held-out split
        d = stats.versus(tests[best], baseline, pooled=pooled)
        lines.append(f"best {NAMES[model]} on the held-out split: width {best[1]:g} at {best[2]} px (held-out "
                     f"{held[best]:.3f}), test {statistics.fmean(tests[best]):.3f}; against the linear baseline "
                     f"({baseline:.3f}): {d.points()}: {d.verdict('above', 'below')}")
    return lines


def scale_summary(zoo_records: Sequence[dict] | None = None, grid_records: Sequence[dict] | None = None
                  ) -> list[str]:
    """Lesson 09's models on the zoo's terms in a few lines: each comparison with MobileNetV2 paired over the
    (width, resolution) pairs and its per-pair verdicts counted; the median held-out accuracy; each model's best
    condition chosen on the held-out split, its test accuracy against the linear baseline fitted on all 60,000
    training images (95 %, one-seed rows with the pooled seed term of the test accuracies)."""
    seeds, planned = _scale_groups(zoo_records, grid_records)
    if not seeds:
        return ["no condition of lesson 09's CPU-scale grid is trained yet: make -j2 reference-grid-scale"]
    return _pair_lines(seeds, _differences(seeds)[0]) + _best_lines(seeds, planned)


def scale_slice(zoo_records: Sequence[dict] | None = None, grid_records: Sequence[dict] | None = None) -> str:
    """The three MobileNets on the zoo's terms (``plans.grid_scale_conditions``), as far as they are trained.

    Held-out accuracy (last epoch) and test accuracy per condition; then C_MobileNetV2 and MobileNet v1
    against MobileNetV2 at each (width, resolution) both have, with a 95 % interval
    (:func:`scale_differences`); then :func:`scale_summary`.
    `zoo_records`, `grid_records`: default ``data/reference/zoo-scale.jsonl`` and ``grid-scale.jsonl``.
    """
    seeds, planned = _scale_groups(zoo_records, grid_records)
    if not seeds:
        return "no condition of lesson 09's CPU-scale grid is trained yet: make -j2 reference-grid-scale"
    diffs, pooled = _differences(seeds)
    lines = [f"lesson 09's models on the zoo's terms (55,000 images, 3 epochs, no augmentation): {len(seeds)} of "
             f"{planned} conditions trained",
             f"{'model':<15} {'width':>5} {'px':>3} {'seeds':>5} {'held-out':>9} {'test':>6}"]
    tests = _means(seeds, "test_acc")
    for (model, width, res), held_out in _means(seeds).items():
        lines.append(f"{model:<15} {width:>5g} {res:>3} {len(seeds[model, width, res]):>5} {held_out:>9.3f} "
                     f"{tests[model, width, res]:>6.3f}")
    lines.append(f"differences in held-out accuracy (95 %; one-seed sides take the pooled seed spread, "
                 f"{pooled[0] * 100:.2f} points on {pooled[1]:.0f} df):")
    for _, _, _, d in diffs:
        lines.append(f"  {d.what}: {d.points()}: {d.verdict('adds accuracy', 'costs accuracy')}")
    lines.append("in short:")
    lines.extend(f"  {line}" for line in _pair_lines(seeds, diffs) + _best_lines(seeds, planned))
    return "\n".join(lines)
