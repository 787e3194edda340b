"""The held-out validation split: fixed, stratified, apart from training; and the runs that validate on it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lecture_utils import data
from lecture_utils.experiment import gpu_reference, plans
from lecture_utils.experiment.conditions import Condition
from lecture_utils.datasets import dataset_targets, get_dataset
from lecture_utils.holdout import heldout_split
from lecture_utils.recipe import RECOMMENDED
from lecture_utils.experiment.runner import TorchRunner

ROOT = Path(__file__).resolve().parents[1]
FASHION_MNIST_TARGETS = [i % 10 for i in range(60_000)]  # 6,000 images per class, as in Fashion-MNIST


def test_fashion_mnist_holds_out_500_images_of_each_class():
    rest, held = heldout_split(FASHION_MNIST_TARGETS)
    assert len(held) == 5_000 and len(rest) == 55_000
    assert all(sum(FASHION_MNIST_TARGETS[i] == c for i in held) == 500 for c in range(10))
    assert not set(rest) & set(held) and sorted(rest + held) == list(range(60_000))


def test_the_held_out_images_are_the_same_on_every_call():
    assert heldout_split(FASHION_MNIST_TARGETS) == heldout_split(list(FASHION_MNIST_TARGETS))
    assert heldout_split(FASHION_MNIST_TARGETS)[1][:3] != [0, 10, 20]  # drawn, not the first of each class


@pytest.mark.parametrize("cached", [True, False])
def test_held_out_loaders_train_on_the_rest_and_test_on_the_official_split(cached):
    loaders = data.make_loaders("sample", [16], holdout=True, cached=cached, device="cpu", subset=(20, 10))
    assert sorted(loaders) == ["heldout", "test", "train"]
    assert [len(loaders[s]["R16"].dataset) for s in ("train", "heldout", "test")] == [200, 100, 100]
    whole = data.make_loaders("sample", [16], holdout=True, cached=cached, device="cpu")
    # the sample: 300 training images per class, 25 held out; its test split has 600 images
    assert [len(whole[s]["R16"].dataset) for s in ("train", "heldout", "test")] == [2750, 250, 600]


def test_held_out_loader_reads_exactly_the_held_out_images():
    loaders = data.make_loaders("sample", [16], holdout=True, cached=True, device="cpu")
    targets = dataset_targets(get_dataset("sample", "train"))
    rest, held = heldout_split(targets)
    assert loaders["heldout"]["R16"].labels.tolist() == [targets[i] for i in held]
    assert loaders["train"]["R16"].labels.tolist() == [targets[i] for i in rest]


def test_a_held_out_run_records_validation_on_the_held_out_split_and_the_test_split_once(tmp_path):
    cond = Condition("mobilenet_v2", 0.35, 16, 1, "sample", subset=(3, 2), validation="heldout",
                     optimizer="adamw", lr=2e-3, schedule="onecycle", weight_decay=0.05, label_smoothing=0.1)
    runner = TorchRunner("sample", subset=(3, 2), augment="course", device="cpu", threads=1, validation="heldout")
    with torch.random.fork_rng():
        record = runner(cond, tmp_path / "c.pt")
    assert (record["validation"], record["heldout"], record["optimizer"], record["schedule"]) == (
        "heldout", True, "adamw", "onecycle")
    assert (record["weight_decay"], record["label_smoothing"], record["lr"]) == (0.05, 0.1, 2e-3)
    assert (record["train_images"], record["val_images"], record["test_images"]) == (30, 20, 20)
    assert len(record["val_acc"]) == 1 and 0 <= record["test_acc"] <= 1 and record["test_loss"] > 0


def test_a_runner_refuses_a_condition_of_another_validation_split(tmp_path):
    runner = TorchRunner("sample", device="cpu", validation="test")
    with pytest.raises(ValueError, match="validation"):
        runner(Condition("mobilenet_v2", 0.35, 16, 1, "sample", validation="heldout"), tmp_path / "c.pt")


def test_the_estimate_of_a_held_out_run_counts_the_rest_the_held_out_part_and_one_test_pass():
    test = Condition("resnet18", 1.0, 32, 10, "fashion_mnist")
    held = Condition("resnet18", 1.0, 32, 10, "fashion_mnist", validation="heldout")
    # 55,000 training images instead of 60,000 and 5,000 validation ones instead of 10,000, plus one test pass
    seconds = plans.condition_seconds(held)
    assert seconds < plans.condition_seconds(test)
    assert seconds > plans.condition_seconds(Condition("resnet18", 1.0, 32, 10, "fashion_mnist", subset=(5500, 500)))


# ----------------------------------------------------------------- make gpu-reference


def test_the_gpu_reference_fits_ten_minutes_on_an_h100_by_the_estimate():
    conditions = gpu_reference.gpu_reference_conditions()
    assert gpu_reference.plan_seconds(conditions, "h100") <= 600
    assert sum(plans.condition_seconds(c, "h100") for c in conditions) < gpu_reference.plan_seconds(conditions)


def test_the_gpu_reference_trains_the_zoo_at_spatial_resolutions_and_the_grid_at_the_courses():
    plan = gpu_reference.gpu_reference_plan()
    assert {c.model for c in plan["zoo"]} == {m for m, _ in gpu_reference.GPU_ZOO.values()}
    assert all(c.resolution >= 64 or c.model == "wide_resnet16_4" for c in plan["zoo"])
    assert all(c.subset is None and c.epochs == plan["zoo"][0].epochs for c in plan["zoo"])  # equal budgets
    seeds = {m: sorted(c.seed for c in plan["zoo"] if c.model == m) for m in ("mobilenet_v1", "mobilenet_v2")}
    assert seeds == {"mobilenet_v1": [0, 1, 2], "mobilenet_v2": [0, 1, 2]}
    assert len(plan["grid"]) == 60 and {c.resolution for c in plan["grid"]} == {224, 192, 160, 128, 96}
    everything = plan["zoo"] + plan["grid"]
    from lecture_utils.recipe import recipe_for
    assert all(c.recipe == recipe_for(c.model) and c.validation == "heldout" for c in everything)
    assert next(c for c in everything if c.model == "alexnet").recipe.lr == RECOMMENDED.lr / 10  # no batch norm


def test_gpu_reference_without_cuda_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu" / "gpu-reference.jsonl"
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "lecture_utils.experiment.sweep", "plan", "gpu-reference", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "needs a CUDA GPU" in done.stdout and "nothing was trained" in done.stdout
    assert not out.parent.exists()


def test_make_gpu_reference_calls_the_gpu_reference_plan():
    makefile = (ROOT / "Makefile").read_text()
    assert "gpu-reference: setup\n\t$(SWEEP) plan gpu-reference --out $(GPU_REF)" in makefile
    assert "GPU_REF ?= $(REF)/gpu/" in makefile
