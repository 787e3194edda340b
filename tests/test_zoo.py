"""The zoo table (lecture_utils.experiment.zoo) on made-up records of the zoo's plan: grouping, errors, verdicts."""

from __future__ import annotations

import math

import pytest

from lecture_utils.experiment import plans, zoo
from lecture_utils.experiment.store import append_record


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


def test_rows_average_the_seeds_with_their_standard_error_and_one_seed_borrows_the_pooled_seed_spread():
    rows = zoo.zoo_rows(fake_records())
    mnv1 = next(r for r in rows if r.model == "mobilenet_v1")
    assert mnv1.seeds == 3 and mnv1.test_acc == pytest.approx(0.82)
    assert mnv1.test_se == pytest.approx(0.02 / math.sqrt(3))  # std of 0.80, 0.82, 0.84 is 0.02
    assert mnv1.val_acc == pytest.approx(0.83) and mnv1.se_from_seeds
    resnet = next(r for r in rows if r.model == "resnet18")
    assert resnet.seeds == 1 and not resnet.se_from_seeds
    # every seeded row of the fake zoo has a spread of 0.02 over 3 seeds: pooled, 0.02 on 4 rows x 2 = 8 df
    assert resnet.test_se == pytest.approx(0.02) and resnet.test_df == 8
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
    assert diff.mean == pytest.approx(0.09) and diff.se == pytest.approx(0.01 / math.sqrt(3)) and diff.df == 2
    assert diff.verdict(*zoo.WORDS) == "above at 95 %"  # t = 15.6 against 4.30


def test_a_one_seed_row_two_pooled_errors_above_the_baseline_is_not_called_above():
    rows = zoo.zoo_rows(fake_records(lambda c: 0.89 if c.model == "resnet18" else 0.80 + 0.02 * c.seed))
    resnet = next(r for r in rows if r.model == "resnet18")
    d = zoo.versus_baseline(resnet, 0.85)  # +0.04 = 2 pooled SDs of 0.02; t(0.975, 8 df) = 2.31
    assert d.mean == pytest.approx(0.04) and d.verdict(*zoo.WORDS) == "not resolved at 95 %"


def test_lesson_report_compares_with_both_baselines_and_says_when_a_lesson_has_no_row():
    rows = zoo.zoo_rows(fake_records(lambda c: 0.90 if c.model == "resnet18" else 0.80 + 0.02 * c.seed))
    text = zoo.lesson_report("04", rows, baseline=0.85)
    # one seed: the fake zoo's pooled seed spread, 0.02 on 8 df; t(0.975, 8) = 2.306, so +- 4.6 points
    assert "resnet18 at 32 px (1 seed: +- the seed spread pooled over the seeded rows, 8 df): held-out 0.910 +- " \
           "0.020, test 0.900 +- 0.020" in text
    assert "test - linear baseline, all 60,000 images (0.850): +5.0 +- 4.6 points (95 %, 8 df), above at 95 %" in text
    # the stored baseline on the zoo's own 10,000 training images (0.8276 on the test split): +7.2
    assert "test - linear baseline, the same 1,000 images per class (0.828): +7.2 +- 4.6 points" in text
    # Welch: the pooled 0.02 on 8 df beside the small CNN's 0.02 / sqrt(3) on 2 df: SE 0.0231, df
    # 0.000533^2 / (0.0004^2 / 8 + 0.000133^2 / 2) = 9.85, t 2.23: +8.0 +- 5.2, above
    assert "test - two-convolution CNN, the same terms (0.820): +8.0 +- 5.2 points (95 %, 9.85 df)" in text
    assert "above at 95 %" in [line for line in text.splitlines() if "two-convolution CNN" in line][0]
    # the published number for the architecture, and the stored smaller zoo's row (test 0.879) beside it
    assert "published, trained to convergence on all 60,000 images: 0.949 (ResNet-18;" in text
    assert "the smaller zoo (1,000 images per class, 5 epochs): test 0.879" in text
    vgg = zoo.lesson_report("02", rows, baseline=0.85)
    assert "lesson 02's network has no row of this zoo yet (vgg16_bn at 32 px" in vgg and "resnet18 at 32 px" in vgg
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
    assert zoo.main(["extra"]) == 2 and "zoo|zoo-scale" in capsys.readouterr().err


def test_the_scale_zoo_reads_its_own_file_and_names_its_command(tmp_path):
    (tmp_path / "zoo.jsonl").write_text("")
    with pytest.raises(ValueError, match="make -j2 reference-zoo-scale"):
        zoo.zoo_rows([], name="zoo-scale")
    out = tmp_path / "zoo-scale.jsonl"
    for _, c in plans.zoo_plan("zoo-scale"):
        append_record(out, {**c.__dict__, "subset": None, "val_acc": [0.9], "train_acc": [0.9], "test_acc": 0.9,
                            "val_images": 5000, "test_images": 10000, "train_images": 55000, "num_classes": 10,
                            "params": 1, "macs": 1, "train_seconds": [1.0], "wall_time_s": 1.0, "threads": 1})
    rows = zoo.zoo_rows(folder=tmp_path, name="zoo-scale")
    assert [r.model for r in rows] == [entry[1] for entry in plans.SCALE_ZOO] and rows[0].per_class == 0
    assert "the whole training split less its held-out part (55,000 images)" in zoo.lesson_report("04", rows, 0.85)


def test_plot_lesson_draws_the_network_the_small_cnn_and_the_published_numbers():
    rows = zoo.zoo_rows(fake_records())
    fig = zoo.plot_lesson("04", rows, baseline=0.85, earlier=rows)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["resnet18 32 px: whole split, 3 epochs", "small_cnn 28 px: whole split, 3 epochs",
                      "resnet18 32 px: 1,000 per class, 5 epochs", "small_cnn 28 px: 1,000 per class, 5 epochs",
                      "published: ResNet-18", "published: 2 conv layers, < 100 K parameters"]
    assert "linear baseline 0.850" in [t.get_text() for t in fig.axes[0].texts]
