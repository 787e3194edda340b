"""Lesson 09's full-profile branch, run top to bottom on a full-size results file.

The full experiment (the 60-condition grid, the ablation and the augmentation comparison at 224 to 96
px, 10 epochs each) needs a GPU and hours. What the notebook does with its results does not: given a
results file that already holds every condition of the full plan, the notebook must train nothing and
draw and judge all of it. The file here is made by a stand-in runner with invented accuracies; the test
checks the notebook's code paths at full size, not any result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lecture_utils.experiment import plans, sweep
from lecture_utils.experiment.conditions import ABLATION_VARIANTS, Condition

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

# lesson 09 in two parts: part 1 (costs, the plan) trains nothing in any profile; part 2 reads the results
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK = NOTEBOOKS / "09b_MobileNetV2_vs_C_MobileNetV2.ipynb"
PART_1 = NOTEBOOKS / "09a_MobileNets_width_and_resolution.ipynb"


def _invented_runner():
    rng = np.random.default_rng(0)

    def run(cond: Condition, checkpoint: Path) -> dict:
        top = 0.6 + 0.3 * cond.width * cond.resolution / 224 + rng.normal(0, 0.01)
        curve = [float(top * (1 - 0.5 ** (e + 1))) for e in range(cond.epochs)]
        return {"params": int(3e6 * cond.width ** 2) + 12_810,
                "macs": int(3e8 * cond.width ** 2 * (cond.resolution / 224) ** 2),
                "train_loss": [1 - a for a in curve], "train_acc": curve,
                "val_loss": [1.1 - a for a in curve], "val_acc": [a - 0.02 for a in curve],
                "val_acc_augmented": None if cond.augment == "none" else curve[-1] - 0.05,
                "num_classes": 10, "train_images": 60_000, "val_images": 10_000, "batch_size": 192,
                "lr": 1e-3, "optimizer": "Adam", "cpu": "invented", "threads": 1, "commit": None,
                "command": "invented"}

    return run


def _run(path: Path) -> str:
    """Execute a notebook top to bottom in a fresh kernel; the text it printed."""
    notebook = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    return "\n".join("".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
                     for cell in notebook.cells if cell.cell_type == "code")


def test_full_profile_notebook_reads_a_full_results_file_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    planned = plans.lesson09_conditions("full")
    results = tmp_path / "09_sweep_full.jsonl"
    sweep.run_plan(results, planned, runner=_invented_runner(), progress=False)
    before = results.read_text()
    assert len(before.splitlines()) == len(planned)

    monkeypatch.setenv("LECTURE_PROFILE", "full")
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    everything = _run(NOTEBOOK)
    assert "profile 'full'" in everything
    assert "grid       60 of 60 conditions in the results" in everything
    assert "ablation   60 of 60 conditions in the results" in everything
    assert "augment    18 of 18 conditions in the results" in everything
    for variant in ABLATION_VARIANTS[1:]:
        assert f"  {variant} - mobilenet_v2, held-out:" in everything
    assert "retraining" not in everything  # the live rerun belongs to the quick profile
    assert results.read_text() == before  # nothing was trained or appended


def test_full_profile_part_1_prints_the_plan_and_trains_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LECTURE_PROFILE", "full")
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    everything = _run(PART_1)
    assert "profile 'full'" in everything
    assert f"{len(plans.lesson09_conditions('full'))} conditions: grid 60" in everything
    assert not list(tmp_path.iterdir())  # no results file, no checkpoint
