"""Tests of lecture_utils.settings: profiles and per-lesson settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from lecture_utils import settings
from lecture_utils.settings import LessonSettings, current_profile, lesson_settings

LESSONS = [f"{i:02d}" for i in range(1, 10)]


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "full")
    assert current_profile() == "full"
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    assert current_profile() == "quick"


def test_profile_defaults_to_full_with_cuda_and_quick_without(monkeypatch):
    monkeypatch.delenv("LECTURE_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert current_profile() == "full"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert current_profile() == "quick"


def test_bad_profile_lists_the_allowed_ones(monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick, full"):
        current_profile()
    with pytest.raises(ValueError, match="quick, full"):
        lesson_settings("01", "medium")


@pytest.mark.parametrize("lesson", LESSONS)
def test_quick_profile_is_a_short_run_on_the_sample_on_cpu(lesson):
    cfg = lesson_settings(lesson, "quick")
    assert (cfg.profile, cfg.lesson, cfg.dataset, cfg.device) == ("quick", lesson, "sample", "cpu")
    assert cfg.resolution in cfg.resolutions
    # what makes it quick: a few thousand image-epochs at most (minutes of a laptop CPU, data/lesson-times.json)
    train_images, _ = settings.dataset_sizes(cfg.dataset, (cfg.train_subset, cfg.val_subset))
    assert train_images * cfg.epochs <= 6000
    if cfg.model:  # the lesson's network gives ten logits at the quick resolution
        model = cfg.create_model().eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 3, cfg.resolution, cfg.resolution)).shape == (2, 10)


def test_quick_lesson_09_reruns_the_reference_runs_smallest_resolution():
    cfg = lesson_settings("09", "quick")
    assert cfg.resolutions == (28, 24, 20, 16, 12)  # 7:6:5:4:3, as the course's 224..96
    assert [r * 8 for r in cfg.resolutions] == [224, 192, 160, 128, 96]
    assert cfg.resolution == min(cfg.resolutions)


def test_full_profile_trains_all_of_fashion_mnist_on_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for lesson in LESSONS[:-1]:
        cfg = lesson_settings(lesson, "full")
        assert cfg.dataset == "fashion_mnist" and cfg.resolutions == (cfg.resolution,)
        assert (cfg.batch_size, cfg.device, cfg.train_subset, cfg.val_subset) == (128, "cuda", None, None)
        assert cfg.download and cfg.model


@pytest.mark.parametrize("lesson", LESSONS[:-1])
def test_full_profile_lesson_fits_ten_minutes_on_a_t4(lesson):
    # the budget of a lesson's full profile on Colab's T4; settings aim at half of it
    assert lesson_settings(lesson, "full").estimate_seconds("t4") <= 300


@pytest.mark.parametrize("lesson", LESSONS[:-1])
def test_full_profile_networks_keep_spatial_maps(lesson):
    # at 28-32 px the ImageNet networks end on 1 x 1 maps; the full profile's resolutions do not
    from lecture_utils.profile import pool_shapes

    cfg = lesson_settings(lesson, "full")
    model = cfg.create_model()
    before_pool, _ = pool_shapes(model, cfg.resolution)
    assert min(before_pool[-2:]) >= 2, before_pool


def test_checkpoints_only_in_the_full_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    assert lesson_settings("04", "quick").checkpoint("resnet18") is None
    path = lesson_settings("04", "full").checkpoint("resnet18")
    assert path.parent == tmp_path and path.name == "lesson04-resnet18-adamw-onecycle-fashion_mnist-96px-e10-b128-nall.pt"
    # a checkpoint of another recipe (an older run with the course's Adam) is not resumed into this one
    from dataclasses import replace

    from lecture_utils.recipe import COURSE
    course = replace(lesson_settings("04", "full"), recipe=COURSE).checkpoint("resnet18")
    assert course.name == "lesson04-resnet18-adam-constant-fashion_mnist-96px-e10-b128-nall.pt"
    with pytest.raises(ValueError, match="letters, digits"):
        lesson_settings("04", "full").checkpoint("../x")


def test_full_lesson_09_is_the_course_experiment(monkeypatch, tmp_path):
    # the course: resolutions 224..96, 10 epochs, batch 192, Animals-10
    monkeypatch.setenv("LECTURE_DATA_ROOT", str(tmp_path))
    cfg = lesson_settings("09", "full")
    assert cfg.resolutions == (224, 192, 160, 128, 96)
    assert (cfg.epochs, cfg.batch_size) == (10, 192)
    assert cfg.dataset == "fashion_mnist"  # no Animals-10 under tmp_path
    (tmp_path / "animals10" / "train").mkdir(parents=True)
    (tmp_path / "animals10" / "val").mkdir()
    assert lesson_settings("09", "full").dataset == "animals10"


def test_unknown_lesson_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="01, 02, 03, 04, 05, 06, 07, 08, 09"):
        lesson_settings("10", "quick")


def test_lesson_may_be_given_as_a_number():
    assert lesson_settings(3, "quick") == lesson_settings("03", "quick")


def test_settings_are_frozen():
    cfg = lesson_settings("01", "quick")
    assert isinstance(cfg, LessonSettings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 100  # type: ignore[misc]


def test_profile_is_read_when_not_given(monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    assert lesson_settings("07").profile == "quick"
    assert settings.PROFILES == ("quick", "full")


def test_runs_dir_is_the_checkouts_runs_unless_the_environment_names_one(monkeypatch, tmp_path):
    monkeypatch.delenv("LECTURE_RUNS_DIR", raising=False)
    assert settings.runs_dir() == Path(settings.__file__).resolve().parents[1] / "runs"
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path / "drive"))
    assert settings.runs_dir() == tmp_path / "drive"


def test_full_profile_can_be_shrunk_to_try_its_path_on_a_cpu(monkeypatch):
    monkeypatch.setenv("LECTURE_FULL_SHRINK", "20,1")
    cfg = lesson_settings("05", "full")
    assert (cfg.train_subset, cfg.val_subset, cfg.epochs, cfg.resolution) == (20, 20, 1, 64)
    assert (lesson_settings("09", "full").train_subset, lesson_settings("09", "full").epochs) == (20, 1)
    monkeypatch.setenv("LECTURE_FULL_SHRINK", "20")
    with pytest.raises(ValueError, match="IMAGES_PER_CLASS,EPOCHS"):
        lesson_settings("05", "full")
