"""`python -m lecture_utils.experiment.bench`: a tiny run prints its report and ends in the speedup line."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from lecture_utils.experiment import bench


def test_tiny_bench_prints_both_pipelines_accuracy_and_ends_in_speedup(tmp_path, capsys):
    bench.main(["--device", "cpu", "--images", "100", "--resolution", "32", "--batch-size", "5",
                "--warmup", "1", "--steps", "1", "--repeats", "1", "--epochs-acc", "1", "--acc-subset", "1",
                "--acc-batch-size", "4",
                "--data-dir", str(tmp_path / "jpegs"), "--threads", "1", "--no-progress"])
    lines = capsys.readouterr().out.strip().splitlines()
    number = r"\d+\.\d+"
    assert lines[0].startswith("bench: mobilenet_v2 at 32 px, batch 5, cpu")
    assert any(re.fullmatch(rf"course: {number} images/s \(median of 1 x 1 steps: .*\)", ln) for ln in lines)
    assert any(re.fullmatch(rf"cached: {number} images/s \(median of 1 x 1 steps: .*\)", ln) for ln in lines)
    assert any(re.fullmatch(rf"cached with the decode amortised over 10 epochs of 100 images: {number} images/s", ln)
               for ln in lines)
    assert "sample, 1 epoch at 32 px, batch 4 (10 train / 10 val images), augmentation light, recipe adamw 0.002 " \
           "onecycle wd0.05 ls0.1, accuracy train (last epoch) / val / val augmented as in training:" in lines
    for name in ("course", "cached"):
        assert any(re.fullmatch(rf"{name} accuracy: {number} / {number} / {number}", ln) for ln in lines)
    assert re.fullmatch(rf"speedup: {number}", lines[-1])


def test_synthetic_jpegs_look_like_animals10_and_are_reused(tmp_path):
    root = bench.make_jpeg_dataset(tmp_path, images=30, val_fraction=0.2, seed=1)
    train = sorted((root / "train").rglob("*.jpg"))
    assert len(train) == 30 and len(list((root / "val").rglob("*.jpg"))) == 6
    assert len({p.parent.name for p in train}) == 10
    with Image.open(train[0]) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert sorted(image.size) in ([200, 300], [210, 280], [225, 300], [240, 300])
    mtime = train[0].stat().st_mtime_ns
    bench.make_jpeg_dataset(tmp_path, images=30, val_fraction=0.2, seed=1)
    assert train[0].stat().st_mtime_ns == mtime  # complete and unchanged: not written again


def test_synthetic_classes_differ_in_what_is_drawn(tmp_path):
    # the same seed draws a striped and a plain version of each shape: labels 0-4 vs 5-9 differ in
    # how much fine horizontal structure the objects carry, so the classes are learnable
    rng = np.random.default_rng(0)
    plain = [np.asarray(bench._make_image(0, rng).convert("L"), dtype=float) for _ in range(6)]
    rng = np.random.default_rng(0)
    striped = [np.asarray(bench._make_image(5, rng).convert("L"), dtype=float) for _ in range(6)]
    vertical_detail = [np.abs(np.diff(a, axis=0)).mean() for a in plain]
    striped_detail = [np.abs(np.diff(a, axis=0)).mean() for a in striped]
    assert np.mean(striped_detail) > np.mean(vertical_detail)


@pytest.mark.parametrize("argv", [["--images", "0"], ["--steps", "0"], ["--acc-subset", "x"],
                                  ["--device", "tpu"]])
def test_bad_arguments_exit_with_a_usage_error(argv, tmp_path):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv + ["--data-dir", str(tmp_path), "--no-progress"])
    assert exc.value.code == 2


def test_gpu_check_without_cuda_says_so_and_exits_0(monkeypatch, capsys, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["gpu-check", "--out", str(tmp_path / "g.json")]) == 0
    assert "no CUDA device here" in capsys.readouterr().out
    assert not (tmp_path / "g.json").exists()


def test_gpu_check_measures_a_lesson_and_writes_its_report(capsys, tmp_path):
    import json

    from lecture_utils.estimate import PROCESS_START_S

    out = tmp_path / "g.json"
    assert bench.main(["gpu-check", "--device", "cpu", "--lessons", "08", "--steps", "1", "--out", str(out),
                       "--no-plan"]) == 0
    report = json.loads(out.read_text())
    (row,) = report["lessons"]
    assert (row["lesson"], row["model"], row["resolution"], row["precision"]) == ("08", "mobilenet_v2", 96, "fp32")
    assert row["train_images_per_s"] > 0 and row["peak_host_bytes"] > 0 and row["checkpoint_seconds"] > 0
    assert not row["fused_optimizer"]  # the CPU keeps torch's default optimiser
    # the projection: the lesson's images over the measured rates, a checkpoint per epoch, the run's measured
    # start and the process's allowance
    start = row["build_seconds"] + row["setup_seconds"] + row["warmup_extra_seconds"] + PROCESS_START_S
    assert row["projected_seconds"] == pytest.approx(row["epochs"] * (
        60000 / row["train_images_per_s"] + 10000 / row["eval_images_per_s"] + row["checkpoint_seconds"]) + start)
    assert row["estimated_seconds_t4"] > 0 and "estimate_error" not in row  # no card to compare with on the CPU
    assert "lesson 08 mobilenet_v2 96 px" in capsys.readouterr().out


def test_gpu_check_trains_through_the_lessons_fit_with_their_recipe(monkeypatch):
    import torch

    from lecture_utils.experiment import gpucheck
    from lecture_utils.recipe import RECOMMENDED
    from lecture_utils.trainer import ModelTrainer

    calls = []
    real_fit = ModelTrainer.fit

    def fit(self, model, train_loader, val_loader, criterion, optimizer, epochs, *args, **kwargs):
        calls.append((type(optimizer).__name__, kwargs.get("scheduler_per"), criterion.label_smoothing, epochs))
        return real_fit(self, model, train_loader, val_loader, criterion, optimizer, epochs, *args, **kwargs)

    monkeypatch.setattr(ModelTrainer, "fit", fit)
    loader = gpucheck._loader("sample", 16, 8, 2, torch.device("cpu"), None)
    row = gpucheck.measure(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10)), loader,
                           torch.device("cpu"), recipe=RECOMMENDED)
    assert calls == [("AdamW", "batch", 0.1, 2)]  # one warm-up epoch, one timed
    assert row["steps"] == len(loader) and row["warmup_extra_seconds"] >= 0


def test_gpu_check_resets_the_gpus_memory_counters_before_each_measurement(monkeypatch):
    import torch

    from lecture_utils.experiment import gpucheck

    events = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: events.append("empty_cache"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: events.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: events.append("read") or 1)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda device=None: 2)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    cpu = torch.device("cpu")
    fake_cuda = type("Device", (), {"type": "cuda"})()  # only measure's own branches see it

    from lecture_utils.trainer import History

    def train(model, recipe, train_loader, val_loader, epochs, **kwargs):
        events.append("train")
        history = History()
        history.precision = "fp16"
        history.seconds = {"train": [2.0, 1.0], "val": [0.5, 0.5], "checkpoint": [0.1, 0.1]}
        return history

    monkeypatch.setattr("lecture_utils.trainer.train", train)
    model = torch.nn.Linear(2, 2)
    loader = gpucheck._loader("sample", 16, 8, 1, cpu, None)
    row = gpucheck.measure(model, loader, fake_cuda)
    assert events == ["empty_cache", "reset", "train", "read"]
    assert row["peak_gpu_allocated_bytes"] == 1 and row["peak_gpu_reserved_bytes"] == 2


@pytest.mark.parametrize("name, kind", [("Tesla T4", "t4"), ("NVIDIA A100-SXM4-80GB", "a100"),
                                        ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H200", "h100"),
                                        ("NVIDIA GeForce RTX 4090", None)])
def test_gpu_check_compares_with_the_estimate_of_its_own_card(name, kind):
    from lecture_utils.experiment import gpucheck

    assert gpucheck.estimate_kind(name) == kind


def test_gpu_check_refuses_an_unknown_lesson(capsys):
    with pytest.raises(SystemExit):
        bench.main(["gpu-check", "--lessons", "10"])
    assert "--lessons must name lessons among 01" in capsys.readouterr().err


def test_gpu_check_projects_lesson09s_plan_from_measured_conditions(monkeypatch, tmp_path):
    from lecture_utils.experiment import gpucheck
    from lecture_utils.estimate import PROCESS_START_S

    rates = iter([100.0, 400.0, 50.0, 200.0, 80.0, 320.0, 40.0, 160.0, 90.0, 360.0, 45.0, 180.0])

    def fake_measure(model, loader, device, aux=False, recipe=None, checkpoint_dir=None):  # rates in call order
        return {"precision": "fp32", "images": 1, "train_images_per_s": next(rates), "eval_images_per_s": next(rates),
                "peak_host_bytes": 1, "checkpoint_seconds": 0.5, "setup_seconds": 1.0, "warmup_extra_seconds": 2.0}

    monkeypatch.setattr(gpucheck, "measure", fake_measure)
    monkeypatch.setattr(gpucheck, "_loader", lambda *args: None)
    lines = []
    report = gpucheck._plan_projection(__import__("torch").device("cpu"), 1, None, lines.append)
    first = report["measured"][0]
    start = first["build_seconds"] + 1.0 + 2.0 + PROCESS_START_S
    assert first["projected_seconds"] == pytest.approx(10 * (60000 / 100.0 + 10000 / 400.0 + 0.5) + start)
    assert len(report["measured"]) == 6 and set(report["factor_over_t4_estimate"]) == {
        "mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2"}
    # each model's factor: the T4 estimate's training rate over the measured one (median of its two resolutions)
    v1 = [m for m in report["measured"] if m["model"] == "mobilenet_v1"]
    assert report["factor_over_t4_estimate"]["mobilenet_v1"] == pytest.approx(
        (v1[0]["estimated_train_images_per_s_t4"] / 100.0 + v1[1]["estimated_train_images_per_s_t4"] / 50.0) / 2)
    (part,) = report["parts"]
    assert part["conditions"] == 124 and part["projected_seconds"] > part["estimated_seconds_t4"]
    assert lines[-1].startswith("lesson 09 part 1: 124 conditions, projected")


def test_both_pipelines_train_in_the_same_memory_format(monkeypatch, tmp_path):
    # the speedup must be the data path's: a channels_last model beside an NCHW one would add the layout's
    from lecture_utils.trainer import ModelTrainer

    formats = []
    real_init = ModelTrainer.__init__

    def init(self, *args, **kwargs):
        formats.append(kwargs.get("channels_last", True))
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(ModelTrainer, "__init__", init)
    bench.main(["--device", "cpu", "--images", "100", "--resolution", "32", "--batch-size", "5", "--warmup", "1",
                "--steps", "1", "--repeats", "1", "--epochs-acc", "1", "--acc-subset", "1", "--acc-batch-size", "4",
                "--data-dir", str(tmp_path / "jpegs"), "--threads", "1", "--no-progress"])
    assert len(formats) >= 2 and len(set(formats)) == 1
