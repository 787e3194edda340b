"""What a lesson's setup says about its full profile before it trains: the estimate of every lesson,
lesson 09's plan included, what "Run all" starts on a GPU, and how to keep runs on Drive."""

from __future__ import annotations

import pytest

from lecture_utils import notebook
from lecture_utils.experiment import plans
from lecture_utils.experiment.conditions import Condition
from lecture_utils.settings import lesson_settings


@pytest.fixture
def small_plan(monkeypatch):
    """Lesson 09's plan cut to three conditions in two parts, so that its estimate takes no time here."""
    conditions = [Condition("mobilenet_v2", 0.35, r, 1, "fashion_mnist", subset=(10, 10)) for r in (96, 128, 160)]
    monkeypatch.setattr(plans, "lesson09_conditions", lambda profile: conditions)
    monkeypatch.setattr(plans, "session_parts", lambda c: [(conditions[:2], 7200.0), (conditions[2:], 3600.0)])
    monkeypatch.delenv("LECTURE_FULL_SHRINK", raising=False)
    return conditions


@pytest.mark.parametrize("lesson", ["01", "04", "08"])
def test_a_lessons_setup_gives_its_full_profiles_time_with_its_uncertainty(lesson, monkeypatch):
    monkeypatch.delenv("LECTURE_FULL_SHRINK", raising=False)
    (line,) = notebook._full_profile_lines(lesson_settings(lesson, "quick"))
    assert line.startswith(f"Full profile: {lesson_settings(lesson, 'full').model} on all of fashion_mnist")
    assert "min on a Colab T4" in line and "+-25%, with a checkpoint per epoch and the start-up" in line


def test_lesson09s_setup_gives_its_plans_time(small_plan):
    (line,) = notebook._full_profile_lines(lesson_settings("09", "quick"))
    assert line.startswith("Full profile: lesson 09's plan, 3 conditions on fashion_mnist at {224, 192, 160, 128, 96} px")
    assert "about 3.0 h on a Colab T4 in 2 parts of at most 11 h" in line


def test_lesson09_says_first_what_run_all_starts_on_a_gpu(small_plan, monkeypatch):
    monkeypatch.setattr(notebook, "in_colab", lambda: False)
    lines = notebook._full_profile_lines(lesson_settings("09", "full"))
    assert lines[0].startswith("'Run all' on this GPU trains part 1 of lesson 09's plan: 2 conditions, about 2.0 h on "
                               "a Colab T4, before the lesson's results appear")
    assert lines[1].startswith("Full profile: lesson 09's plan")


def test_colab_without_drive_is_told_the_switch_that_mounts_it(monkeypatch, tmp_path):
    monkeypatch.setattr(notebook, "in_colab", lambda: True)
    monkeypatch.delenv("LECTURE_RUNS_DIR", raising=False)
    monkeypatch.delenv("LECTURE_FULL_SHRINK", raising=False)
    lines = notebook._full_profile_lines(lesson_settings("07", "full"))
    assert "set KEEP_RUNS_ON_DRIVE = True in the first cell" in lines[-1]
    assert "drive.mount('/content/drive')" in lines[-1]
    assert "KEEP_RUNS_ON_DRIVE = False" in notebook.colab_cell()  # the switch the line names
