"""The full profile's plumbing, on the CPU: each lesson's full-profile settings, its data set read
from the local Fashion-MNIST raw files at the lesson's resolution, and one short training pass of
the lesson's model through the same calls the notebook makes.

A real full-profile run needs a GPU and the whole data set; here each lesson trains one step on two
images so that the test shows the settings, loaders, model and trainer fit together at full
size. Skipped where the raw files are absent (`apt-get install dataset-fashion-mnist`).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lecture_utils.data import make_loaders
from lecture_utils.datasets import find_fashion_mnist_raw
from lecture_utils.models import create_model
from lecture_utils.settings import lesson_settings
from lecture_utils.trainer import ModelTrainer, seed_everything

pytestmark = pytest.mark.skipif(
    find_fashion_mnist_raw("train") is None or find_fashion_mnist_raw("val") is None,
    reason="Fashion-MNIST raw files not found (apt-get install dataset-fashion-mnist)")

@pytest.fixture(autouse=True)
def _cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("lesson", ["01", "02", "03", "04", "05", "06", "07", "08"])
def test_full_profile_lesson_trains_at_its_resolution(lesson):
    cfg = lesson_settings(lesson, "full")
    assert (cfg.profile, cfg.dataset, cfg.device) == ("full", "fashion_mnist", "cpu")
    resolution = cfg.resolution
    seed_everything(0)
    loaders = make_loaders(cfg.dataset, [resolution], batch_size=2, subset=(1, 1), augment=False, seed=0)
    key = f"R{resolution}"
    # one batch of each split is enough to show the pieces fit (VGG16 at 224 px is slow on a CPU)
    train_batch, val_batch = next(iter(loaders["train"][key])), next(iter(loaders["val"][key]))
    assert train_batch[0].shape == (2, 3, resolution, resolution) and train_batch[1].shape == (2,)
    name = cfg.model
    model = create_model(name, num_classes=10, **cfg.model_kwargs)
    trainer = ModelTrainer(epoch_step=1, device=cfg.device, aux=(name == "googlenet"))
    history = trainer.fit(model, [train_batch], [val_batch], nn.CrossEntropyLoss(),
                          torch.optim.Adam(model.parameters(), lr=cfg.lr), epochs=1)
    assert history.epochs == 1
    assert math.isfinite(history["train_loss"][0]) and math.isfinite(history["val_loss"][0])


def test_full_profile_sweep_condition_runs_at_224(tmp_path):
    from lecture_utils import conditions, sweep

    cfg = lesson_settings("09", "full")
    assert max(cfg.resolutions) == 224 and cfg.epochs == 10
    grid = conditions.expand_grid(["c_mobilenet_v2"], [0.35], [max(cfg.resolutions)], 1, cfg.dataset,
                                   subset=(1, 1), batch_size=5)
    records = sweep.run_sweep(tmp_path / "full.jsonl", grid, device="cpu",
                              threads=1, progress=False, cache_dir=str(tmp_path / "cache"))
    assert len(records) == 1
    assert records[0]["resolution"] == 224 and records[0]["dataset"] == cfg.dataset
