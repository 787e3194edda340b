"""The first cell every lesson runs: `setup` and `show_source`."""

from __future__ import annotations

import pytest
import torch

from lecture_utils.notebook import setup, show_source


def test_setup_prints_profile_and_how_to_change_it(capsys, monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    cfg = setup("04")
    out = capsys.readouterr().out
    assert cfg.profile == "quick"
    assert "profile 'quick'" in out and "LECTURE_PROFILE=full" in out


def test_setup_seeds_torch(monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    setup("01", seed=3)
    a = torch.rand(3)
    setup("01", seed=3)
    assert torch.equal(a, torch.rand(3))


def test_setup_rejects_unknown_profile(monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick"):
        setup("01")


def test_show_source_prints_code_outside_ipython(capsys):
    show_source(setup)
    assert "def setup(lesson: str" in capsys.readouterr().out


def test_show_source_rejects_builtins():
    with pytest.raises(ValueError, match="classes and functions"):
        show_source(len)


def test_setup_hides_other_libraries_warnings_but_shows_the_packages_own(monkeypatch):
    import warnings

    from lecture_utils.datasets import MissingClassWarning

    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    with warnings.catch_warnings(record=True) as caught:
        setup("01")
        warnings.warn("a library's deprecation", DeprecationWarning)
        warnings.warn("a library's note", UserWarning)
        warnings.warn("val/ has no coat images", MissingClassWarning)
    assert [str(w.message) for w in caught] == ["val/ has no coat images"]


def test_a_bad_full_shrink_does_not_stop_a_quick_lesson(capsys, monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    monkeypatch.setenv("LECTURE_FULL_SHRINK", "abc")
    cfg = setup("04")
    assert cfg.profile == "quick"
    out = capsys.readouterr().out
    assert "Full profile: not estimated: LECTURE_FULL_SHRINK must be 'IMAGES_PER_CLASS,EPOCHS'" in out
    assert "it only applies to the full profile" in out


def test_lesson_09s_quick_line_names_the_stored_run_it_reads(capsys, monkeypatch):
    monkeypatch.setenv("LECTURE_PROFILE", "quick")
    setup("09")
    out = capsys.readouterr().out
    # the stored reference run's plan: 28, 20 and 12 px, 4 epochs, batch 64 (data/reference/README.md)
    assert "reads the stored reference run ('fashion_mnist', {28, 20, 12} px, 4 epoch(s), batch 64)" in out
