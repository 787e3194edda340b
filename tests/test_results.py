"""lecture_utils.experiment.results: reading reference runs, paired differences and their verdicts."""

from __future__ import annotations

import pytest

from lecture_utils.experiment import baseline, results
from lecture_utils.experiment.store import DuplicateRecordWarning, append_record


def _rec(model, width, resolution, seed, acc, **extra):
    return {"model": model, "width": width, "resolution": resolution, "seed": seed, "augment": "light",
            "epochs": 10, "dataset": "fashion_mnist", "subset": 1000, "lr": 1e-3, "val_acc": [0.1, acc],
            "val_images": 10000, **extra}


def test_paired_differences_match_condition_and_seed_only():
    recs = [_rec("mobilenet_v2", 1.0, 20, 0, 0.80), _rec("mobilenet_v2", 1.0, 20, 1, 0.70),
            _rec("c_mobilenet_v2", 1.0, 20, 0, 0.75), _rec("c_mobilenet_v2", 1.0, 20, 1, 0.60),
            _rec("c_mobilenet_v2", 0.35, 20, 0, 0.50)]  # no baseline at width 0.35: left out
    diffs = sorted(d for _, d in results.paired_differences(recs, "c_mobilenet_v2"))
    assert diffs == pytest.approx([-0.10, -0.05])


def test_a_consistent_large_drop_costs_accuracy_and_noise_does_not():
    base = [_rec("mobilenet_v2", w, r, s, 0.80) for w in (1.0, 0.35) for r in (20, 12) for s in (0, 1, 2)]
    drop = [_rec("mobilenet_v2+leaky", w, r, s, 0.70 + 0.002 * s) for w in (1.0, 0.35) for r in (20, 12) for s in (0, 1, 2)]
    noise = [_rec("mobilenet_v2+proj", w, r, s, 0.80 + (0.004 if (s + r) % 2 else -0.004)) for w in (1.0, 0.35)
             for r in (20, 12) for s in (0, 1, 2)]
    worse, same = results.compare(base + drop + noise, ["mobilenet_v2+leaky", "mobilenet_v2+proj"])
    assert worse.n == 12 and worse.mean == pytest.approx(-0.098) and worse.agree == 12
    assert worse.verdict == "costs accuracy"
    assert abs(same.mean) < 0.002 and same.verdict == "no difference this run can resolve at 95 %"


def test_three_pairs_two_standard_errors_apart_are_not_a_verdict():
    # +6.9, +1.6, +8.0 points: mean 5.5, SE 2.0, t = 2.77 < t(0.975, 2 df) = 4.30
    base = [_rec("mobilenet_v2", 0.35, 20, s, 0.50) for s in (0, 1, 2)]
    proj = [_rec("mobilenet_v2+proj", 0.35, 20, s, 0.50 + d) for s, d in zip((0, 1, 2), (0.069, 0.016, 0.080))]
    (c,) = results.compare(base + proj, ["mobilenet_v2+proj"])
    assert c.mean > 2 * c.se and c.verdict == "no difference this run can resolve at 95 %"
    assert c.half == pytest.approx(4.303 * c.se, rel=1e-3) and c.p == pytest.approx(0.11, abs=0.01)


def test_pairs_match_on_the_learning_rate_too():
    recs = [_rec("mobilenet_v2", 1.0, 20, 0, 0.80), _rec("mobilenet_v2", 1.0, 20, 0, 0.50, lr=1e-4),
            _rec("c_mobilenet_v2", 1.0, 20, 0, 0.55, lr=1e-4)]
    (pair,) = results.paired_differences(recs, "c_mobilenet_v2")
    assert pair[1] == pytest.approx(0.05)  # against the baseline at lr 1e-4, not the one at 1e-3


def test_compare_names_a_variant_without_pairs():
    with pytest.raises(ValueError, match="no condition has both 'mobilenet_v2\\+leaky' and 'mobilenet_v2'"):
        results.compare([_rec("mobilenet_v2", 1.0, 20, 0, 0.8)], ["mobilenet_v2+leaky"])


def test_missing_reference_names_the_folder_and_the_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match="lesson42-\\*.jsonl"):
        results.load_reference("lesson42", folder=tmp_path)


def test_reference_files_are_merged_with_each_condition_once(tmp_path):
    a = _rec("mobilenet_v2", 1.0, 20, 0, 0.8)
    append_record(tmp_path / "lesson09-a.jsonl", a)
    append_record(tmp_path / "lesson09-b.jsonl", {**a, "val_acc": [0.5]})  # the same condition again
    append_record(tmp_path / "lesson09-b.jsonl", _rec("mobilenet_v2", 0.35, 20, 0, 0.7))
    with pytest.warns(DuplicateRecordWarning, match=r"two different results of .*lesson09-a.jsonl line 1 .*"
                                                    r"lesson09-b.jsonl line 1 .*reading the first"):
        merged = results.load_reference("lesson09", folder=tmp_path)
    assert len(merged) == 2 and results.final(merged[0]) == 0.8


def test_select_and_final():
    recs = [_rec("mobilenet_v2", 1.0, 20, 0, 0.8), _rec("mobilenet_v1", 1.0, 12, 0, 0.6)]
    assert results.select(recs, model="mobilenet_v1") == recs[1:]
    assert results.select(recs, resolution=(12, 20), width=1.0) == recs
    assert results.final(recs[0]) == 0.8 and results.final({"x": 3}, "x") == 3.0


def test_the_linear_baselines_closed_form_gradient_is_autograds():
    import torch

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(50, 12, generator=g, dtype=torch.float64), torch.randint(0, 4, (50,), generator=g)
    w = torch.randn(12, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True)
    loss, (grad_w, grad_b) = baseline.softmax_regression_loss(x, y, w, b, weight_decay=0.01)
    expected_w, expected_b = torch.autograd.grad(loss, (w, b))
    assert torch.allclose(grad_w, expected_w, atol=1e-12) and torch.allclose(grad_b, expected_b, atol=1e-12)


def test_recipe_choice_pairs_each_network_and_seed_across_the_two_recipes():
    from dataclasses import asdict

    from lecture_utils.experiment.plans import recipe_choice_plan

    # held-out accuracy of the last epoch: recommended beats course by 2, 3, 4 points on ResNet-18's seeds,
    # and loses 1 point on each of MobileNetV2's
    gain = {"resnet18": {0: 0.02, 1: 0.03, 2: 0.04}, "mobilenet_v2": {0: -0.01, 1: -0.01, 2: -0.01}}
    records = []
    for c in recipe_choice_plan():
        base = 0.80 + c.seed / 100
        value = base + (gain[c.model][c.seed] if c.optimizer == "adamw" else 0.0)
        records.append({**asdict(c), "val_acc": [0.5, value], "test_acc": value - 0.01})
    out = results.recipe_choice(records)
    assert out["resnet18 1"].mean == pytest.approx(0.03) and out["resnet18 1"].n == 3
    assert out["resnet18 1"].se == pytest.approx(0.01 / 3 ** 0.5)
    assert out["resnet18 1"].verdict == "adds accuracy" and out["resnet18 1"].agree == 3
    assert out["mobilenet_v2 0.5"].mean == pytest.approx(-0.01)
    assert out["all"].n == 6 and out["all"].mean == pytest.approx(0.01)
    assert results.recipe_choice(records, key="test_acc")["resnet18 1"].mean == pytest.approx(0.03)


def test_recipe_choice_without_pairs_says_so():
    with pytest.raises(ValueError, match="both the 'course' and the 'recommended' recipe"):
        results.recipe_choice([])
