"""The full profile's plumbing, on the CPU: each lesson's full-profile settings, its data set read
from the local Fashion-MNIST raw files at the lesson's resolution, and one short training pass of
the lesson's model through the same calls the notebook makes (``cfg.loaders()``, ``cfg.create_model()``,
``cfg.train(...)``).

A real full-profile run needs a GPU and the whole data set; here each lesson trains one epoch on one image
per class so that the test shows the settings, loaders, model, recipe, trainer and checkpoint fit together at
full size. Skipped where the raw files are absent (`apt-get install dataset-fashion-mnist`).
"""

from __future__ import annotations

import math

from dataclasses import replace

import pytest
import torch

from lecture_utils.datasets import find_fashion_mnist_raw
from lecture_utils.settings import lesson_settings

pytestmark = pytest.mark.skipif(
    find_fashion_mnist_raw("train") is None or find_fashion_mnist_raw("val") is None,
    reason="Fashion-MNIST raw files not found (apt-get install dataset-fashion-mnist)")

@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("lesson", ["01", "02", "03", "04", "05", "06", "07", "08"])
def test_full_profile_lesson_trains_at_its_resolution(lesson, tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    cfg = lesson_settings(lesson, "full")
    assert (cfg.profile, cfg.dataset, cfg.device) == ("full", "fashion_mnist", "cpu")
    # one image per class and one epoch of batch 5 show the pieces fit (VGG16 is slow on a CPU)
    small = replace(cfg, train_subset=1, val_subset=1, batch_size=5, epochs=1)
    loaders = small.loaders()
    images, labels = next(iter(loaders[0]))
    assert images.shape == (5, 3, cfg.resolution, cfg.resolution) and labels.shape == (5,)
    history = small.train(small.create_model(), loaders, progress=False)
    assert history.epochs == 1
    assert math.isfinite(history["train_loss"][0]) and math.isfinite(history["val_loss"][0])
    assert small.checkpoint(cfg.model).is_file()  # kept where a rerun resumes from it


def test_full_profile_sweep_condition_runs_at_224(tmp_path):
    from lecture_utils.experiment import conditions, sweep

    cfg = lesson_settings("09", "full")
    assert max(cfg.resolutions) == 224 and cfg.epochs == 10
    grid = conditions.expand_grid(["c_mobilenet_v2"], [0.35], [max(cfg.resolutions)], 1, cfg.dataset,
                                   subset=(1, 1), batch_size=5)
    records = sweep.run_sweep(tmp_path / "full.jsonl", grid, device="cpu",
                              threads=1, progress=False, cache_dir=str(tmp_path / "cache"))
    assert len(records) == 1
    assert records[0]["resolution"] == 224 and records[0]["dataset"] == cfg.dataset
