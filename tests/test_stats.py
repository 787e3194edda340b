"""lecture_utils.experiment.stats: Student's t intervals and the 95 % verdict rule."""

import math

import pytest

from lecture_utils.experiment import stats


def test_t_critical_matches_the_printed_table():
    # two-sided 95 % values from any table of Student's t
    assert stats.t_critical(2) == pytest.approx(4.303, abs=1e-3)
    assert stats.t_critical(4) == pytest.approx(2.776, abs=1e-3)
    assert stats.t_critical(1000) == pytest.approx(1.962, abs=1e-3)


def test_three_seeds_at_two_and_a_half_se_are_not_resolved():
    # lesson 09's +proj over 3 seeds before the two extra seeds: +6.9, +1.6, +8.0 points (t = 2.77, p about 0.11)
    d = stats.paired([0.069, 0.016, 0.080], [0.0, 0.0, 0.0], "proj")
    assert d.n == 3 and d.df == 2
    assert d.t == pytest.approx(2.77, abs=0.02)
    assert d.p == pytest.approx(0.11, abs=0.01)
    assert not d.resolved and d.verdict() == "not resolved at 95 %"
    assert d.mean > 2 * d.se  # the old two-SE rule would have called it


def test_a_clear_difference_gets_its_word_on_the_right_side():
    worse = stats.paired([0.50, 0.52, 0.49], [0.80, 0.83, 0.81])
    assert worse.resolved and worse.verdict() == "costs accuracy"
    assert worse.interval[1] < 0
    assert stats.paired([0.80, 0.83, 0.81], [0.50, 0.52, 0.49]).verdict("above", "below") == "above"


def test_versus_a_fixed_baseline_uses_the_seeds_and_n_minus_one_df():
    d = stats.versus([0.88, 0.89, 0.90], 0.85)
    assert d.mean == pytest.approx(0.04) and d.df == 2
    assert d.se == pytest.approx(0.01 / math.sqrt(3))


def test_a_single_run_borrows_the_pooled_seed_spread():
    sd, df = stats.pooled_sd([[0.1, 0.3], [0.5, 0.5, 0.8], [0.9]])
    # by hand: group means 0.2 and 0.6, squared deviations 0.02 and 0.06, on 1 + 2 df; [0.9] has no spread
    assert df == 3 and sd == pytest.approx(math.sqrt(0.08 / 3))
    d = stats.versus([0.9], 0.85, pooled=(sd, df))
    assert d.se == sd and d.df == 3
    lone = stats.versus([0.9], 0.85)
    assert not lone.resolved and math.isinf(lone.half_width)


def test_bad_input_says_what_is_allowed():
    with pytest.raises(ValueError, match="as many values"):
        stats.paired([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="two or more"):
        stats.pooled_sd([[0.1], [0.2]])
    with pytest.raises(ValueError, match="degrees of freedom"):
        stats.t_critical(0)


def test_welch_difference_of_two_independent_groups():
    # equal variances and sizes: Welch's df is 2 (n - 1) and the error the root of the summed squared errors
    d = stats.unpaired([0.90, 0.92, 0.94], [0.80, 0.82, 0.84])
    assert d.mean == pytest.approx(0.10) and d.df == pytest.approx(4.0)
    assert d.se == pytest.approx(math.sqrt(2) * 0.02 / math.sqrt(3))
    assert d.verdict("above", "below") == "above"
    single = stats.unpaired([0.86], [0.80, 0.82, 0.84], pooled=(0.02, 10))
    assert single.se == pytest.approx(math.sqrt(0.02 ** 2 + 0.02 ** 2 / 3))
    assert stats.unpaired([0.86], [0.80, 0.82, 0.84]).resolved is False


def test_points_prints_a_mean_that_rounds_to_zero_without_a_minus_sign():
    assert stats.Difference("", -0.00003, 0.002, 12, 11).points().startswith("+0.0 +- ")
    assert stats.Difference("", -0.0004, 0.002, 12, 11).points().startswith("+0.0 +- ")
    assert stats.Difference("", -0.0006, 0.002, 12, 11).points().startswith("-0.1 +- ")
