"""lecture_utils.experiment.findings: lesson 09's answer, from records."""

from __future__ import annotations

import copy
import statistics

import pytest

from lecture_utils.experiment import findings, plans, results
from lecture_utils.experiment.conditions import condition_key


@pytest.fixture(scope="module")
def stored() -> list[dict]:
    return results.load_reference("lesson09")


def test_the_answer_reports_a_planted_difference_with_its_verdict(stored):
    # C_MobileNetV2 made exactly 10 points worse than MobileNetV2 at every grid condition, +-1 point alternately
    records = copy.deepcopy(stored)
    by_key = {condition_key(r): r for r in records}
    grid = [c for c in plans.lesson09_profile_plan("reference")["grid"]]
    v2 = {(c.width, c.resolution): by_key[c.key] for c in grid if c.model == "mobilenet_v2"}
    grid_c = [by_key[c.key] for c in grid if c.model == "c_mobilenet_v2"]
    assert len(grid_c) == len(v2) == 12
    for i, r in enumerate(grid_c):
        r["val_acc"] = list(r["val_acc"])
        r["val_acc"][-1] = v2[r["width"], r["resolution"]]["val_acc"][-1] - 0.10 + (0.01 if i % 2 else -0.01)
    first = next(line for line in findings.lesson09_answer(records).splitlines() if line.startswith("1. "))
    assert "-10.0 +- " in first and "over 12 pairs: costs accuracy" in first


def test_the_answer_names_every_claim_and_its_section(stored):
    text = findings.lesson09_answer(stored)
    for claim in ("C_MobileNetV2 - MobileNetV2", "LeakyReLU after the add", "on the branch", "projection shortcuts",
                  "'v1 is the most accurate'", "the budget"):
        assert claim in text
    assert text.count("95 %") >= 7


def test_a_missing_condition_is_one_clear_error(stored):
    without = [r for r in stored if not (r["model"] == "mobilenet_v2+proj" and r["seed"] == 4)]
    assert len(without) == len(stored) - 1
    with pytest.raises(ValueError, match=r"1 condition\(s\) of lesson 09's stored run are missing.*make -j2 reference-09"):
        findings.lesson09_answer(without)
    assert {condition_key(r) for r in without} < {condition_key(r) for r in stored}


def test_the_scale_slice_reads_a_planted_gap_with_the_pooled_seed_term():
    zoo = results.load_reference("zoo-scale")
    v2 = [r for r in zoo if r["model"] == "mobilenet_v2" and r["width"] == 0.5 and r["resolution"] == 64]
    assert len(v2) == 3
    mean = sum(r["val_acc"][-1] for r in v2) / 3
    c = copy.deepcopy(next(r for r in v2 if r["seed"] == 0))
    c["model"] = "c_mobilenet_v2"
    c["val_acc"] = list(c["val_acc"][:-1]) + [mean - 0.05]
    text = findings.scale_slice(zoo, [c])
    assert "4 of 36 conditions trained" in text
    line = next(l for l in text.splitlines() if l.startswith("  C_MobileNetV2 - MobileNetV2 at width 0.5, 64 px"))
    assert "-5.0 +- " in line and line.endswith("costs accuracy")
    # nothing of the grid trained beyond the zoo: no C_MobileNetV2 line at all
    assert "C_MobileNetV2" not in findings.scale_slice(zoo, [])


def _planted(zoo, model, width, resolution, held, test):
    """A one-seed record of a grid-scale condition, copied from a zoo record with its accuracies replaced."""
    base = next(r for r in zoo if r["model"] == "mobilenet_v2" and r["width"] == 0.5 and r["resolution"] == 64
                and r["seed"] == 0)
    record = copy.deepcopy(base)
    record.update(model=model, width=width, resolution=resolution, test_acc=test,
                  val_acc=list(base["val_acc"][:-1]) + [held])
    return record


def test_the_scale_summary_picks_each_models_best_on_the_held_out_split_not_the_test_split():
    zoo = results.load_reference("zoo-scale")
    grid = [_planted(zoo, "mobilenet_v1", 1.0, 64, held=0.93, test=0.86),  # best held out, worse test
            _planted(zoo, "mobilenet_v1", 0.75, 64, held=0.91, test=0.95)]
    lines = findings.scale_summary(zoo, grid)
    best = next(l for l in lines if l.startswith("best MobileNet v1"))
    assert "width 1 at 64 px (held-out 0.930), test 0.860" in best
    baseline = results.load_linear_baseline()["test_acc"]
    assert f"{100 * (0.86 - baseline):+.1f} +- " in best and best.endswith(": above")
    # MobileNet v1 1.0 and 0.75 at 64 px, 0.5 from the zoo: 3 pairs with MobileNetV2 where it has one
    v1 = next(l for l in lines if l.startswith("MobileNet v1 - MobileNetV2"))
    assert v1.startswith("MobileNet v1 - MobileNetV2 held out, paired over 1 (width, resolution) pairs")


def test_the_scale_summary_counts_resolved_gaps_in_each_direction():
    zoo = results.load_reference("zoo-scale")
    v2 = statistics.fmean(r["val_acc"][-1] for r in zoo
                          if r["model"] == "mobilenet_v2" and r["width"] == 0.5 and r["resolution"] == 64)
    grid = [_planted(zoo, "mobilenet_v2", 1.0, 64, held=0.90, test=0.90),
            _planted(zoo, "c_mobilenet_v2", 1.0, 64, held=0.95, test=0.90),  # +5 points: above
            _planted(zoo, "c_mobilenet_v2", 0.5, 64, held=v2 - 0.05, test=0.85),  # -5 points: below
            _planted(zoo, "c_mobilenet_v2", 0.5, 32, held=0.864, test=0.85)]  # within the noise of V2's 3 seeds
    c = next(l for l in findings.scale_summary(zoo, grid) if l.startswith("C_MobileNetV2 - MobileNetV2"))
    assert c.endswith("per pair -5.0 to +5.0 points, below at 95 % in 1, above in 1, not resolved in 1")
    # over the three pairs, +5, about 0 and -5 points average to about 0: no verdict
    assert c.startswith("C_MobileNetV2 - MobileNetV2 held out, paired over 3 (width, resolution) pairs: ")
    assert ": not resolved at 95 %; per pair" in c


def test_scale_accuracies_average_a_conditions_seeds():
    zoo = results.load_reference("zoo-scale")
    v2 = [r for r in zoo if r["model"] == "mobilenet_v2" and r["width"] == 0.5 and r["resolution"] == 64]
    acc = findings.scale_accuracies(zoo, [_planted(zoo, "c_mobilenet_v2", 1.0, 64, held=0.9, test=0.8)])
    assert acc["c_mobilenet_v2", 1.0, 64] == pytest.approx(0.9)
    assert acc["mobilenet_v2", 0.5, 64] == pytest.approx(statistics.fmean(r["val_acc"][-1] for r in v2))
    assert findings.scale_accuracies(zoo, [], key="test_acc")["mobilenet_v2", 0.5, 64] == pytest.approx(
        statistics.fmean(r["test_acc"] for r in v2))
    assert ("small_cnn", 1.0, 28) not in acc  # the zoo's other networks are not grid conditions


def test_the_scale_seed_spread_pools_the_conditions_with_several_seeds_only():
    zoo = results.load_reference("zoo-scale")
    groups = [[r["val_acc"][-1] for r in zoo if r["model"] == m and r["width"] == 0.5 and r["resolution"] == res]
              for m, res in (("mobilenet_v1", 64), ("mobilenet_v2", 64), ("mobilenet_v2", 32))]
    assert [len(g) for g in groups] == [3, 3, 3]
    squares = sum((v - statistics.fmean(g)) ** 2 for g in groups for v in g)
    one_seed = [_planted(zoo, "c_mobilenet_v2", 1.0, 64, held=0.5, test=0.5)]  # far off, but alone: no spread
    sd, df = findings.scale_seed_spread(zoo, one_seed)
    assert df == 6 and sd == pytest.approx((squares / 6) ** 0.5)
