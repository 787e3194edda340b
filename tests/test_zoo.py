"""The zoo table (lecture_utils.zoo) on made-up records of the zoo's plan: grouping, errors, verdicts."""

from __future__ import annotations

import math

import pytest

from lecture_utils import plans, zoo
from lecture_utils.store import append_record


def fake_records(test_acc=None):
    """One record per condition of the zoo's plan: test accuracy 0.80 + 0.02 * seed unless `test_acc` says."""
    out = []
    for _, c in plans.zoo_plan():
        acc = 0.80 + 0.02 * c.seed if test_acc is None else test_acc(c)
        out.append({**c.__dict__, "subset": list(c.subset), "val_acc": [0.5, acc + 0.01], "train_acc": [0.5, 0.95],
                    "test_acc": acc, "val_images": 5000, "test_images": 10000, "train_images": 10000,
                    "num_classes": 10, "params": 1000, "macs": 2000, "train_seconds": [10.0, 20.0, 30.0],
                    "wall_time_s": 60.0, "threads": 1})
    return out


def test_rows_average_the_seeds_with_their_standard_error_and_one_seed_has_the_binomial_error():
    rows = zoo.zoo_rows(fake_records())
    mnv1 = next(r for r in rows if r.model == "mobilenet_v1")
    assert mnv1.seeds == 3 and mnv1.test_acc == pytest.approx(0.82)
    assert mnv1.test_se == pytest.approx(0.02 / math.sqrt(3))  # std of 0.80, 0.82, 0.84 is 0.02
    assert mnv1.val_acc == pytest.approx(0.83) and mnv1.se_from_seeds
    resnet = next(r for r in rows if r.model == "resnet18")
    assert resnet.seeds == 1 and not resnet.se_from_seeds
    assert resnet.test_se == pytest.approx(math.sqrt(0.8 * 0.2 / 10000))  # 0.004
    assert resnet.images_per_s == pytest.approx(10000 / 20.0)  # the median epoch
    assert [r.lesson for r in rows] == [lesson for lesson, *_ in plans.ZOO]


def test_a_missing_condition_names_the_command_that_makes_it():
    records = fake_records()[1:]
    with pytest.raises(ValueError, match="make -j2 reference-zoo"):
        zoo.zoo_rows(records)


def test_the_ceiling_pairs_the_seeds_of_one_network_at_two_resolutions():
    rows = zoo.zoo_rows(fake_records(lambda c: 0.90 + 0.01 * c.seed if c.resolution == 64 else 0.80 + 0.02 * c.seed))
    high, low, diff = zoo.ceiling(rows, key="test_acc")
    assert (high.resolution, low.resolution) == (64, 32)
    # differences 0.10, 0.09, 0.08: mean 0.09, std 0.01
    assert diff.diff == pytest.approx(0.09) and diff.se == pytest.approx(0.01 / math.sqrt(3))
    assert diff.verdict == "above by more than 2 SE"


def test_verdicts_need_two_standard_errors():
    assert zoo.Difference("", 0.02, 0.009).verdict == "above by more than 2 SE"
    assert zoo.Difference("", 0.02, 0.011).verdict == "within 2 SE"
    assert zoo.Difference("", -0.03, 0.01).verdict == "below by more than 2 SE"


def test_lesson_report_compares_with_both_baselines_and_says_when_a_lesson_has_no_row():
    rows = zoo.zoo_rows(fake_records(lambda c: 0.90 if c.model == "resnet18" else 0.80 + 0.02 * c.seed))
    text = zoo.lesson_report("04", rows, baseline=0.85)
    # binomial errors: sqrt(0.91 * 0.09 / 5000) = 0.004 held out, sqrt(0.9 * 0.1 / 10000) = 0.003 tested
    assert "resnet18 at 32 px (1 seed: +- the binomial error only): held-out 0.910 +- 0.004, test 0.900 +- 0.003" in text
    assert "test - linear baseline, all 60,000 images (0.850): +5.0 +- 0.3 points, above by more than 2 SE" in text
    # the stored baseline on the zoo's own 10,000 training images (0.8276 on the test split): +7.2
    assert "test - linear baseline, the same 1,000 images per class (0.828): +7.2 +- 0.3 points" in text
    assert "test - two-convolution CNN, the same terms (0.820): +8.0 +- 1.2 points, above by more than 2 SE" in text
    assert "before, the course's recipe (validated on the test split): resnet18 at 32 px" in text
    vgg = zoo.lesson_report("02", rows, baseline=0.85)
    assert "lesson 02's network has no row of the CPU zoo" in vgg and "resnet18 at 32 px" in vgg
    with pytest.raises(ValueError, match="lessons with one: 01, 03"):
        zoo.lesson_zoo("02", rows)


def test_the_table_lists_every_row_the_baseline_and_the_published_numbers(tmp_path, capsys):
    text = zoo.zoo_table(zoo.zoo_rows(fake_records()), baseline=0.8465)
    assert text.count("\n") > len(plans.ZOO) + len(zoo.PUBLISHED)
    assert "linear baseline (softmax regression on raw pixels, all 60,000 training images): test 0.847" in text
    assert "0.925  2 conv layers, < 100 K parameters (preprocessing: none)" in text
    # the command: the stored file, or a clear error without it
    out = tmp_path / "zoo.jsonl"
    for record in fake_records():
        append_record(out, record)
    assert zoo.zoo_rows(folder=tmp_path)[0].model == plans.ZOO[0][1]
    assert zoo.main(["extra"]) == 2 and "no arguments" in capsys.readouterr().err
