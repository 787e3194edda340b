"""Lesson 09's full-profile branch, run top to bottom on a full-size results file.

The full sweep (60 conditions plus the ablation, 10 epochs each) needs a GPU and hours. What the
notebook does with its results does not: given a results file that already holds every condition of
the full grid and ablation, the notebook must train nothing and draw and judge all of it. The file
here is made by a stand-in runner with invented accuracies; the test checks the notebook's code
paths at full size, not any result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lecture_utils import sweep
from lecture_utils.settings import lesson_settings

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_MobileNetV2_vs_C_MobileNetV2.ipynb"
VARIANTS = ("mobilenet_v2", "mobilenet_v2+leaky", "mobilenet_v2+proj", "c_mobilenet_v2")


def _invented_runner(epochs: int):
    rng = np.random.default_rng(0)

    def run(cond: sweep.Condition, checkpoint: Path) -> dict:
        top = 0.6 + 0.3 * cond.width * cond.resolution / 224 + rng.normal(0, 0.01)
        curve = [float(top * (1 - 0.5 ** (e + 1))) for e in range(epochs)]
        return {"params": int(3e6 * cond.width ** 2) + 12_810, "macs": int(3e8 * cond.width ** 2 * (cond.resolution / 224) ** 2),
                "train_loss": [1 - a for a in curve], "train_acc": curve,
                "val_loss": [1.1 - a for a in curve], "val_acc": [a - 0.02 for a in curve],
                "num_classes": 10, "train_images": 60_000, "val_images": 10_000}

    return run


def test_full_profile_notebook_reads_a_full_results_file_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = lesson_settings("09", "full")
    conditions = sweep.expand_grid(sweep.MODELS, sweep.DEFAULT_WIDTHS, sweep.DEFAULT_RESOLUTIONS, cfg.epochs,
                                   cfg.dataset)
    for seed in (0, 1):  # the ablation of the full profile: two widths, two resolutions, two seeds
        conditions += sweep.expand_grid(VARIANTS, (1.0, 0.35), (224, 128), cfg.epochs, cfg.dataset, seed=seed)
    results = tmp_path / "09_sweep_full.jsonl"
    sweep.run_sweep(results, conditions, runner=_invented_runner(cfg.epochs), progress=False)
    before = results.read_text()
    n_records = len(before.splitlines())

    monkeypatch.setenv("LECTURE_PROFILE", "full")
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()

    text = {i: "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
            for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"}
    everything = "\n".join(text.values())
    assert "profile 'full'" in everything
    assert "profile full: 60 conditions, 10 epoch(s) each" in everything
    assert f"{n_records} conditions in 09_results_full.jsonl, 60 of them from this grid" in everything
    assert "seed 1: 16 conditions, 16 already done" in everything
    for variant in VARIANTS[1:]:
        assert f"{variant:<20} mean difference to mobilenet_v2:" in everything
    assert results.read_text() == before  # nothing was trained or appended
    merged = [json.loads(line) for line in (tmp_path / "09_results_full.jsonl").read_text().splitlines()]
    assert len(merged) == n_records
