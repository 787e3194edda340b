"""Facts about the sweep: grid and shards, the JSON Lines results file, resume, merge, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataclasses import asdict

from lecture_utils.experiment import plans, runner as runner_module, store, sweep
from lecture_utils.experiment.conditions import Condition, condition_key, expand_grid, parse_model_name
from lecture_utils.experiment.runner import TorchRunner, init_seed
from lecture_utils.experiment.store import PartialLineWarning, append_record, load_results, merge_results
from lecture_utils.experiment.sweep import parse_shard, run_sweep, shard_grid

ROOT = Path(__file__).resolve().parents[1]

FULL_GRID = dict(
    models=["mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2"],
    widths=[1.0, 0.75, 0.5, 0.35],
    resolutions=[224, 192, 160, 128, 96],
    epochs=10,
    dataset="animals10",
)


def fake_runner(calls: list):
    """A stand-in for training: records which conditions it was asked to run."""

    def run(cond: Condition, checkpoint: Path) -> dict:
        calls.append(cond)
        return {"params": 1, "macs": 2, "train_loss": [1.0], "train_acc": [0.5],
                "val_loss": [1.0], "val_acc": [0.5]}

    return run


# ----------------------------------------------------------------- grid and shards

def test_full_grid_is_3_models_by_4_widths_by_5_resolutions():
    grid = expand_grid(**FULL_GRID)
    assert len(grid) == 3 * 4 * 5
    assert len({c.key for c in grid}) == 60


def test_grid_keeps_a_models_resolutions_together_for_weight_reuse():
    grid = expand_grid(**FULL_GRID)
    assert [c.resolution for c in grid[:5]] == [224, 192, 160, 128, 96]
    assert {(c.model, c.width) for c in grid[:5]} == {("mobilenet_v1", 1.0)}


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 60, 61])
def test_shards_cover_the_grid_exactly_once(count):
    grid = expand_grid(**FULL_GRID)
    pieces = [shard_grid(grid, i, count) for i in range(1, count + 1)]
    keys = [c.key for piece in pieces for c in piece]
    assert sorted(keys, key=repr) == sorted((c.key for c in grid), key=repr)
    assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_shard_text_is_one_based():
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard("4/4") == (4, 4)


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "a/b", "2", "1/2/3", "-1/4"])
def test_bad_shard_is_refused_with_the_allowed_form(text):
    with pytest.raises(ValueError, match="i/N"):
        parse_shard(text)


def test_ablation_names_map_to_the_c_mobilenet_v2_switches():
    assert parse_model_name("mobilenet_v2+leaky") == (
        "mobilenet_v2+leaky", "c_mobilenet_v2",
        {"leaky_after_add": True, "projection_shortcut": False, "leaky_on_branch": False})
    assert parse_model_name("mobilenet_v2+proj") == (
        "mobilenet_v2+proj", "c_mobilenet_v2",
        {"leaky_after_add": False, "projection_shortcut": True, "leaky_on_branch": False})
    assert parse_model_name("mobilenet_v2+branch") == (
        "mobilenet_v2+branch", "c_mobilenet_v2",
        {"leaky_after_add": False, "projection_shortcut": False, "leaky_on_branch": True})
    # C_MobileNetV2's two switches on is C_MobileNetV2 itself, recorded under its own name
    assert parse_model_name("mobilenet_v2+proj+leaky")[0] == "c_mobilenet_v2"
    assert parse_model_name("mobilenet_v2+proj+leaky+branch")[0] == "mobilenet_v2+leaky+proj+branch"
    assert parse_model_name("mobilenet_v2") == ("mobilenet_v2", "mobilenet_v2", {})


@pytest.mark.parametrize("name", ["resnet51", "resnet50+leaky", "mobilenet_v1+leaky", "mobilenet_v2+relu",
                                  "mobilenet_v2+leaky+leaky", "wide_resnet17_4", "wide_resnet", ""])
def test_unknown_model_names_list_the_allowed_ones(name):
    with pytest.raises(ValueError, match="allowed: mobilenet_v1, mobilenet_v2, c_mobilenet_v2"):
        parse_model_name(name)


def test_every_network_of_the_zoo_is_a_sweep_model():
    from lecture_utils.models import create_model, list_models

    for name in list_models():
        if name == "wide_resnet":  # needs its depth and width in the name
            continue
        canonical, factory, kwargs = parse_model_name(name)
        assert (canonical, factory) == (name, name)
    assert parse_model_name("wide_resnet16_4") == ("wide_resnet16_4", "wide_resnet", {"depth": 16, "widen_factor": 4})
    # the WRN-16-4 of the sweep is the network create_model builds for those arguments
    params = sum(p.numel() for p in create_model("wide_resnet", depth=16, widen_factor=4, num_classes=10).parameters())
    assert round(params / 1e6, 1) == 2.7  # WRN-16-4 on CIFAR-10: 2.7M in the paper's Table 1


def test_networks_without_a_width_multiplier_train_at_width_1_only():
    with pytest.raises(ValueError, match="resnet18 has no width multiplier: give width 1"):
        expand_grid(["resnet18"], [0.5], [32], epochs=1, dataset="sample")
    (cond,) = expand_grid(["resnet18"], [1.0], [32], epochs=1, dataset="sample", lr=1e-4)
    assert cond.lr == 1e-4 and "lr0.0001" in cond.slug() and cond.label().endswith("lr0.0001")


def test_the_learning_rate_is_part_of_a_condition():
    a, b = (expand_grid(["mobilenet_v2"], [1.0], [32], epochs=1, dataset="sample", lr=lr)[0] for lr in (1e-3, 1e-4))
    assert a.key != b.key
    with pytest.raises(ValueError, match="learning rate must be a number > 0"):
        expand_grid(["mobilenet_v2"], [1.0], [32], epochs=1, dataset="sample", lr=0)


@pytest.mark.parametrize("widths, resolutions, match", [
    ([0.0], [96], "width"), ([-0.5], [96], "width"), (["wide"], [96], "width"),
    ([1.0], [0], "resolution"), ([1.0], [96.5], "resolution"), ([1.0], ["big"], "resolution"),
])
def test_bad_width_or_resolution_is_refused(widths, resolutions, match):
    with pytest.raises(ValueError, match=match):
        expand_grid(["mobilenet_v2"], widths, resolutions, epochs=1, dataset="sample")


def test_initial_weight_seed_is_shared_across_resolutions_and_v2_variants():
    seed = init_seed
    assert seed("mobilenet_v2", 0.5) == seed("mobilenet_v2+leaky", 0.5) == seed("c_mobilenet_v2", 0.5)
    assert seed("mobilenet_v2", 0.5) != seed("mobilenet_v2", 0.35)
    assert seed("mobilenet_v2", 0.5) != seed("mobilenet_v1", 0.5)
    assert seed("mobilenet_v2", 0.5, seed=1) != seed("mobilenet_v2", 0.5, seed=0)


# ----------------------------------------------------------------- results file

def _record(resolution: int, val_acc: list) -> dict:
    """A finished condition's record: its condition's fields and a per-epoch validation accuracy."""
    return {**asdict(Condition("mobilenet_v2", 0.5, resolution, 1, "sample")), "val_acc": val_acc}


def test_appended_records_read_back_one_per_line(tmp_path):
    out = tmp_path / "r.jsonl"
    append_record(out, _record(32, [0.5, 0.75]))
    append_record(out, _record(48, [0.25]))
    assert out.read_text().count("\n") == 2
    assert load_results(out) == [_record(32, [0.5, 0.75]), _record(48, [0.25])]


def test_a_partial_trailing_line_is_ignored_with_a_warning(tmp_path):
    out = tmp_path / "r.jsonl"
    append_record(out, _record(32, [0.5]))
    with open(out, "ab") as f:
        f.write(b'{"model": "b", "val_a')  # what a writer killed mid-line would leave
    with pytest.warns(PartialLineWarning, match="partial last line"):
        assert load_results(out) == [_record(32, [0.5])]


def test_appending_after_a_partial_line_starts_a_new_line(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_bytes(json.dumps(_record(32, [0.5])).encode() + b'\n{"model": "b", "val')
    append_record(out, _record(48, [0.5]))
    with pytest.warns(PartialLineWarning, match="unreadable line 2"):
        assert load_results(out) == [_record(32, [0.5]), _record(48, [0.5])]


def test_a_missing_results_file_reads_as_empty(tmp_path):
    assert load_results(tmp_path / "none.jsonl") == []


# ----------------------------------------------------------------- resume and merge

def test_rerun_skips_finished_conditions(tmp_path):
    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v1", "mobilenet_v2"], [1.0, 0.5], [64, 32], epochs=1, dataset="sample")
    first: list = []
    run_sweep(out, grid[:3], runner=fake_runner(first), progress=False)
    second: list = []
    records = run_sweep(out, grid, runner=fake_runner(second), progress=False)
    assert first == grid[:3]
    assert second == grid[3:]
    assert sorted((condition_key(r) for r in records), key=repr) == sorted((c.key for c in grid), key=repr)
    assert len(load_results(out)) == len(grid)


def test_checkpoint_of_the_condition_in_progress_is_passed_and_removed_once_written(tmp_path):
    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [32, 48], epochs=1, dataset="sample")
    seen = []

    def run(cond, checkpoint):
        checkpoint.write_bytes(b"epoch state")  # what trainer.fit saves after each epoch
        seen.append(checkpoint)
        return fake_runner([])(cond, checkpoint)

    run_sweep(out, grid, runner=run, progress=False)
    assert len(set(seen)) == 2 and all(p.parent == tmp_path / "r.jsonl.ckpt" for p in seen)
    assert not (tmp_path / "r.jsonl.ckpt").exists()


def test_rerun_removes_checkpoints_left_by_a_kill_after_the_line_was_written(tmp_path):
    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [32], epochs=1, dataset="sample")
    run_sweep(out, grid, runner=fake_runner([]), progress=False)
    stale = tmp_path / "r.jsonl.ckpt" / f"{grid[0].slug()}.pt"
    stale.parent.mkdir()
    stale.write_bytes(b"x")
    stale.with_name(f".{stale.name}.host-123.tmp").write_bytes(b"half")  # what atomic_write leaves when killed
    calls: list = []
    run_sweep(out, grid, runner=fake_runner(calls), progress=False)
    assert calls == [] and not stale.parent.exists()


def test_a_condition_differing_in_epochs_dataset_subset_seed_or_augment_is_not_skipped(tmp_path):
    out = tmp_path / "r.jsonl"
    base = dict(models=["mobilenet_v2"], widths=[0.35], resolutions=[32], epochs=1, dataset="sample")
    run_sweep(out, expand_grid(**base), runner=fake_runner([]), progress=False)
    for change in [dict(epochs=2), dict(dataset="cifar10"), dict(subset=5), dict(subset=(5, 2)), dict(seed=1),
                   dict(augment="light"), dict(augment="none")]:
        calls: list = []
        run_sweep(out, expand_grid(**{**base, **change}), runner=fake_runner(calls), progress=False)
        assert len(calls) == 1, change


def test_records_carry_the_condition_and_the_run_facts(tmp_path):
    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2+leaky"], [0.35], [32], epochs=1, dataset="sample", subset=3, seed=7)
    (rec,) = run_sweep(out, grid, runner=fake_runner([]), progress=False)
    for field in ["model", "width", "resolution", "epochs", "dataset", "subset", "seed", "params", "macs",
                  "train_loss", "train_acc", "val_loss", "val_acc", "wall_time_s", "versions", "finished_at"]:
        assert field in rec, field
    assert (rec["model"], rec["width"], rec["resolution"], rec["subset"], rec["seed"]) == (
        "mobilenet_v2+leaky", 0.35, 32, 3, 7)


def test_shards_run_into_separate_files_merge_to_the_whole_grid(tmp_path):
    grid = expand_grid(["mobilenet_v1", "c_mobilenet_v2"], [1.0, 0.35], [64, 48, 32], epochs=1, dataset="sample")
    files = []
    for i in (1, 2, 3):
        files.append(tmp_path / f"shard{i}.jsonl")
        run_sweep(files[-1], grid, runner=fake_runner([]), shard=(i, 3), progress=False)
    merged = merge_results(files + files[:1])  # a file given twice still counts once
    assert len(merged) == len(grid)
    assert {condition_key(r) for r in merged} == {c.key for c in grid}


def test_merge_keeps_the_first_or_last_of_two_results_of_a_condition_only_when_told(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    rec = asdict(Condition("mobilenet_v2", 0.5, 96, 10, "animals10"))
    append_record(a, {**rec, "val_acc": [0.6]})
    append_record(b, {**rec, "val_acc": [0.7]})
    append_record(b, {**rec, "resolution": 128, "val_acc": [0.8]})
    with pytest.raises(store.ResultsError, match=r"two different results of mobilenet_v2 w0.5 r96: .*a.jsonl line 1 "
                                                 r"\(final val acc 0.600\) and .*b.jsonl line 1 \(0.700\)"):
        merge_results([a, b])
    first, last = merge_results([a, b], keep="first"), merge_results([a, b], keep="last")
    assert [(r["resolution"], r["val_acc"]) for r in first] == [(96, [0.6]), (128, [0.8])]
    assert [(r["resolution"], r["val_acc"]) for r in last] == [(96, [0.7]), (128, [0.8])]


def test_merge_cli_writes_the_merged_file(tmp_path, capsys):
    a, b, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "all.jsonl"
    rec = {**asdict(Condition("mobilenet_v1", 1.0, 96, 1, "sample")), "val_acc": [0.5]}
    append_record(a, rec)
    append_record(b, rec)
    append_record(b, {**rec, "width": 0.5})
    assert sweep.main(["merge", str(a), str(b), "--out", str(out)]) == 0
    assert len(load_results(out)) == 2


# ----------------------------------------------------------------- command-line errors

@pytest.mark.parametrize("args, message", [
    (["--models", "mobilenet_v3"], "unknown model 'mobilenet_v3'; allowed: mobilenet_v1"),
    (["--widths", "1.0,0"], "width multiplier must be a number > 0"),
    (["--resolutions", "224,0"], "resolution must be an integer >= 1"),
    (["--resolutions", "96.5"], "resolution must be an integer >= 1"),
    (["--augment", "heavy"], "invalid choice: 'heavy'"),
    (["--shard", "0/2"], "shards are numbered from 1"),
    (["--shard", "3/2"], "1 <= i <= N"),
    (["--epochs", "0"], "epochs must be an integer >= 1"),
    (["--subset", "0"], "subset must be N or TRAIN,VAL images per class (integers >= 1), got '0'"),
    (["--subset", "5,2,1"], "subset must be N or TRAIN,VAL images per class"),
])
def test_bad_arguments_give_a_clear_message_not_a_traceback(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        sweep.main([*args, "--out", str(tmp_path / "r.jsonl")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_merge_of_a_missing_file_gives_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit):
        sweep.main(["merge", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "all.jsonl")])
    assert "results file not found" in capsys.readouterr().err


# ----------------------------------------------------------------- the real CLI, killed and resumed

def _tiny_image_folder(root: Path, per_class: int = 6) -> None:
    """Two classes of 32x32 PNGs (dark and bright squares) in train/ and val/."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for label, level in (("dark", 40), ("bright", 210)):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(level, 20, size=(32, 32, 3)), 0, 255).astype("uint8")
                Image.fromarray(pixels).save(folder / f"{i}.png")


def _sweep_cli(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "lecture_utils.experiment.sweep", "--models", "mobilenet_v1,mobilenet_v2",
            "--widths", "0.35", "--resolutions", "32,40", "--epochs", "1", "--dataset", "sample",
            "--data-root", str(data), "--batch-size", "4", "--device", "cpu", "--out", str(out),
            "--no-progress", "--threads", "1"]


def test_cli_killed_mid_grid_resumes_and_writes_each_condition_once(tmp_path):
    data, out = tmp_path / "data", tmp_path / "runs" / "sweep.jsonl"
    _tiny_image_folder(data)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_sweep_cli(data, out), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 40
    try:
        while not (out.exists() and out.read_bytes().count(b"\n") >= 1):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no condition finished in 40 s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    lines_at_kill = out.read_bytes().count(b"\n")
    assert 1 <= lines_at_kill < 4, "the kill must land mid-grid"

    done = subprocess.run(_sweep_cli(data, out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    records = load_results(out)
    conditions = [(r["model"], r["resolution"]) for r in records]
    assert sorted(conditions) == [("mobilenet_v1", 32), ("mobilenet_v1", 40), ("mobilenet_v2", 32), ("mobilenet_v2", 40)]
    for r in records:
        assert len(r["train_acc"]) == len(r["val_loss"]) == 1 and 0.0 <= r["val_acc"][0] <= 1.0
    assert not (out.parent / "sweep.jsonl.ckpt").exists(), "finished conditions leave no checkpoint behind"


def test_a_missing_data_set_is_named_with_its_expected_layout(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(_sweep_cli(tmp_path / "nowhere", tmp_path / "r.jsonl")[3:])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "data set 'sample' is not there" in err and "<root>/train/<class>/" in err
    assert "Traceback" not in err
    assert not (tmp_path / "r.jsonl").exists()


def test_initial_weights_are_reproducible_and_shared_by_the_v2_ablation_variants():
    import torch

    def runner():
        r = TorchRunner(dataset="sample", device="cpu")
        r.num_classes = 10
        return r

    a, b = runner(), runner()
    plain = a.initial_state("mobilenet_v2", 0.35)
    assert all(torch.equal(plain[k], v) for k, v in b.initial_state("mobilenet_v2", 0.35).items())
    leaky = a.initial_state("mobilenet_v2+leaky", 0.35)  # LeakyReLU has no weights: the same tensors
    assert leaky.keys() == plain.keys() and all(torch.equal(plain[k], leaky[k]) for k in plain)
    proj = a.initial_state("mobilenet_v2+proj", 0.35)  # extra shortcut convs; everything else shared
    extra = set(proj) - set(plain)
    assert extra and all(".shortcut." in k for k in extra)
    assert all(torch.equal(plain[k], proj[k]) for k in plain)
    stem = "features.0.0.weight"  # 16 channels at width 0.35 and at 0.5 (rounded to multiples of 8)
    other = a.initial_state("mobilenet_v2", 0.5)[stem]
    assert plain[stem].shape == other.shape and not torch.equal(plain[stem], other)


@pytest.mark.parametrize("cached", [True, False])
def test_a_condition_trains_the_same_whatever_ran_before_it(tmp_path, cached):
    import torch

    _tiny_image_folder(tmp_path / "data", per_class=4)
    runner = TorchRunner(dataset="sample", data_root=str(tmp_path / "data"), batch_size=4,
                               device="cpu", cached=cached, threads=1)
    first, other = expand_grid(["mobilenet_v1"], [0.35], [32, 40], epochs=2, dataset="sample", batch_size=4,
                               data_root=str((tmp_path / "data").resolve()))
    with torch.random.fork_rng():
        a = runner(first, tmp_path / "a.pt")
        runner(other, tmp_path / "b.pt")  # moves the shared loaders on
        again = runner(first, tmp_path / "c.pt")
    assert again["train_loss"] == a["train_loss"] and again["val_loss"] == a["val_loss"]


@pytest.mark.parametrize("cached", [True, False])
def test_a_condition_resumed_from_its_epoch_checkpoint_matches_an_uninterrupted_run(tmp_path, cached):
    import torch

    _tiny_image_folder(tmp_path / "data", per_class=4)

    def runner():
        return TorchRunner(dataset="sample", data_root=str(tmp_path / "data"), batch_size=4,
                                 device="cpu", cached=cached, threads=1)

    root = str((tmp_path / "data").resolve())
    (one,) = expand_grid(["mobilenet_v2"], [0.35], [32], epochs=1, dataset="sample", batch_size=4, data_root=root)
    (two,) = expand_grid(["mobilenet_v2"], [0.35], [32], epochs=2, dataset="sample", batch_size=4, data_root=root)
    with torch.random.fork_rng():
        clean = runner()(two, tmp_path / "clean.pt")
        runner()(one, tmp_path / "killed.pt")  # the state a kill during epoch 2 leaves behind
        resumed = runner()(two, tmp_path / "killed.pt")  # a new process picks it up
    for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
        assert resumed[key] == clean[key], key


def test_a_condition_listed_twice_is_trained_once(tmp_path):
    grid = expand_grid(["mobilenet_v2"], [0.35], [32, 48], 1, "sample")
    calls: list = []
    records = run_sweep(tmp_path / "r.jsonl", grid + grid[:1], runner=fake_runner(calls), progress=False)
    assert [c.key for c in calls] == [c.key for c in grid]
    assert len(records) == 2 and len((tmp_path / "r.jsonl").read_text().splitlines()) == 2


def test_a_condition_listed_twice_falls_in_one_shard_only(tmp_path):
    grid = expand_grid(["mobilenet_v2"], [0.35], [32, 48, 64], 1, "sample")
    calls: list = []
    for i in (1, 2):
        run_sweep(tmp_path / f"s{i}.jsonl", grid + grid[:1], runner=fake_runner(calls), shard=(i, 2), progress=False)
    assert sorted(c.key for c in calls) == sorted(c.key for c in grid)


def test_reading_and_merging_results_does_not_load_torch(tmp_path):
    out = tmp_path / "r.jsonl"
    append_record(out, {**asdict(Condition("mobilenet_v2", 0.5, 96, 1, "sample", augment="light")), "val_acc": [0.5]})
    code = ("import sys; from lecture_utils.experiment import results, store; "
            f"assert len(store.merge_results([{str(out)!r}])) == 1; "
            f"assert len(results.load_reference('r', {str(tmp_path)!r})) == 1; print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_unknown_augmentation_is_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match="course, light, none"):
        expand_grid(["mobilenet_v2"], [0.35], [32], 1, "sample", augment="heavy")


def test_a_resolution_the_model_cannot_take_fails_before_training(monkeypatch):
    from lecture_utils.models import create_model

    runner = TorchRunner(dataset="sample", device="cpu")
    runner.num_classes = 10
    runner._check_fits("mobilenet_v2", 12)  # padded stride-2 convs: 12 px still gives a 1x1 map
    monkeypatch.setattr(runner, "_build", lambda model, width: create_model("alexnet", num_classes=10))
    with pytest.raises(ValueError, match="no output at 32 px"):
        runner._check_fits("mobilenet_v2", 32)  # AlexNet needs >= 63 px


def test_runner_records_augmented_validation_accuracy_and_provenance(tmp_path, monkeypatch):
    import torch

    _tiny_image_folder(tmp_path / "data", per_class=4)
    monkeypatch.setattr(runner_module, "git_commit", lambda: "commit-when-the-code-was-imported")
    runner = TorchRunner(dataset="sample", data_root=str(tmp_path / "data"), batch_size=4,
                               device="cpu", threads=1, augment="light", command="python -m lecture_utils.experiment.sweep x")
    (cond,) = expand_grid(["mobilenet_v2"], [0.35], [16], 1, "sample", augment="light", batch_size=4,
                          data_root=str((tmp_path / "data").resolve()))
    # the checkout moves on while the run trains (a commit, an edit): the record keeps the code that ran
    monkeypatch.setattr(runner_module, "git_commit", lambda: "a-later-commit+dirty")
    with torch.random.fork_rng():
        rec = runner(cond, tmp_path / "a.pt")
    assert rec["commit"] == "commit-when-the-code-was-imported"
    assert len(rec["train_seconds"]) == 1 and rec["train_seconds"][0] > 0
    assert 0.0 <= rec["val_acc_augmented"] <= 1.0 and rec["val_acc_augmented"] * 8 == round(rec["val_acc_augmented"] * 8)
    assert rec["threads"] == 1 and rec["command"] == "python -m lecture_utils.experiment.sweep x" and "cores" in rec["cpu"]


# ----------------------------------------------------------------- where the results go


def test_out_naming_a_directory_is_a_one_line_cli_error(tmp_path, capsys):
    for extra in ([], ["--dry-run"]):
        with pytest.raises(SystemExit) as exc:
            sweep.main(["--models", "mobilenet_v1", "--widths", "0.35", "--resolutions", "32",
                        "--epochs", "1", "--dataset", "sample", "--out", str(tmp_path), *extra])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert f"error: the results file {tmp_path} is a directory; give a file path, e.g." in err
        assert "Traceback" not in err


def test_out_below_a_regular_file_fails_before_any_condition_runs(tmp_path):
    (tmp_path / "runs").write_text("a file where a folder should be")
    calls: list = []
    grid = expand_grid(["mobilenet_v1"], [0.35], [32], 1, "sample")
    with pytest.raises(ValueError, match=r"cannot write the results file .*runs is a file, not a folder"):
        run_sweep(tmp_path / "runs" / "r.jsonl", grid, runner=fake_runner(calls), progress=False)
    assert calls == []


def test_out_in_a_read_only_folder_is_a_one_line_cli_error(readonly_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--models", "mobilenet_v1", "--widths", "0.35", "--resolutions", "32", "--epochs", "1",
                    "--dataset", "sample", "--out", str(readonly_dir / "r.jsonl")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "cannot write the results file" in err and "Read-only file system" in err
    assert "Traceback" not in err


def test_a_damaged_condition_checkpoint_is_a_one_line_cli_error_naming_it(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "r.jsonl"
    _tiny_image_folder(data, per_class=2)
    cond = expand_grid(["mobilenet_v1"], [0.35], [32], 1, "sample", batch_size=4, data_root=str(data.resolve()))[0]
    checkpoint = tmp_path / "r.jsonl.ckpt" / f"{cond.slug()}.pt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")  # as a crash of the disk, not of the run, leaves it
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--models", "mobilenet_v1", "--widths", "0.35", "--resolutions", "32", "--epochs", "1",
                    "--dataset", "sample", "--data-root", str(data), "--batch-size", "4", "--device", "cpu",
                    "--out", str(out), "--no-progress", "--threads", "1", "--recipe", "course"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert (f"cannot use the checkpoint {checkpoint} of {cond.label()}: the file is empty (0 bytes). Delete it (that "
            "condition then trains from its first epoch) and run the same command again") in err
    assert "Traceback" not in err


def test_lesson09_plan_is_the_grid_the_ablation_and_the_augmentation_comparison():
    plan = plans.lesson09_plan((28, 24, 20, 16, 12), 10, "fashion_mnist", subset=1000)
    assert len(plan["grid"]) == 60 and {c.augment for c in plan["grid"]} == {"light"}
    assert len(plan["ablation"]) == 5 * 2 * 2 * 3 and {c.resolution for c in plan["ablation"]} == {20, 12}
    assert len(plan["augment"]) == 3 * 2 * 3 and {(c.width, c.resolution) for c in plan["augment"]} == {(0.35, 12)}
    shared = {c.key for c in plan["ablation"]} & {c.key for c in plan["grid"]}
    assert len(shared) == 2 * 2 * 2  # seed 0 of mobilenet_v2 and c_mobilenet_v2: trained once


def test_run_plan_trains_each_condition_once_across_seeds_and_augmentations(tmp_path):
    plan = plans.lesson09_plan((28, 24, 20), 1, "sample", seeds=(0, 1))
    everything = plan["grid"] + plan["ablation"] + plan["augment"]
    calls: list = []
    records = sweep.run_plan(tmp_path / "r.jsonl", everything, runner=fake_runner(calls), progress=False)
    unique = {c.key for c in everything}
    assert len(calls) == len(unique) == len(records)


def test_plan_dry_run_counts_lesson09s_reference_conditions(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    (first, *_rest) = plans.lesson09_conditions("reference")
    append_record(out, {**first.__dict__, "val_acc": [0.5]})
    assert sweep.main(["plan", "lesson09", "--profile", "reference", "--out", str(out), "--dry-run"]) == 0
    # 36 grid + 3 small_cnn + 25 ablation (5 variants at width 0.35, 20 px, 5 seeds) + 18 augmentation
    # conditions, each once: the ablation repeats 2 grid conditions (seed 0), the comparison 2 of the grid
    # (light, seed 0)
    assert capsys.readouterr().out.splitlines()[-1] == f"1 of {39 + 25 + 18 - 2 - 2} done in {out}"
# ----------------------------------------------------------------- several workers on one results file

WORKER = ROOT / "tests" / "sweep_worker.py"


def _worker(out: Path, conditions: int, seconds: float, go: Path | None = None) -> subprocess.Popen:
    """A real sweep process on `out` whose runner sleeps instead of training (tests/sweep_worker.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    args = [sys.executable, str(WORKER), str(out), str(conditions), str(seconds)] + ([str(go)] if go else [])
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 90) -> str:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr
    return stdout


def _wait_for(check, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.02)


def _calls(out: Path) -> list[tuple[str, int]]:
    path = Path(f"{out}.calls")
    lines = path.read_text().splitlines() if path.exists() else []
    return [(slug, int(pid)) for slug, pid in (line.split() for line in lines)]


def test_three_workers_on_one_file_train_each_of_six_conditions_once(tmp_path):
    out, go = tmp_path / "sweep.jsonl", tmp_path / "go"
    workers = [_worker(out, 6, 0.3, go) for _ in range(3)]
    try:
        _wait_for(lambda: len(list(tmp_path.glob("go.*.ready"))) == 3, "three workers ready", timeout=90)
        go.touch()  # all three start the same grid at the same moment
        for w in workers:
            _finish(w)
    finally:
        for w in workers:
            w.kill()
            w.wait()
    calls = _calls(out)
    slugs = [slug for slug, _ in calls]
    assert sorted(slugs) == sorted(c.slug() for c in expand_grid(
        ["mobilenet_v1", "mobilenet_v2"], [1.0], [32, 48, 64], epochs=1, dataset="sample"))
    assert len({pid for _, pid in calls}) >= 2, "the workers must have shared the grid"
    lines = out.read_text().splitlines()
    assert len(lines) == 6 and len({condition_key(json.loads(l)) for l in lines}) == 6
    assert not (tmp_path / "sweep.jsonl.ckpt").exists(), "claims and checkpoints of finished conditions are removed"


def test_a_condition_of_a_killed_worker_is_finished_by_a_later_worker(tmp_path):
    out = tmp_path / "sweep.jsonl"
    first, second = (c.slug() for c in expand_grid(["mobilenet_v1"], [1.0], [32, 48], 1, "sample"))
    stuck = _worker(out, 2, 120)  # claims the first condition and stays in it
    try:
        _wait_for(lambda: [s for s, _ in _calls(out)] == [first], "the first worker to start its condition", timeout=60)
        # while its holder lives, the claim holds: another worker does the other condition and leaves that one
        helper = _finish(_worker(out, 2, 0.1))
        assert [s for s, _ in _calls(out)] == [first, second]
        assert "1 condition(s) left to the workers training them now: mobilenet_v1 w1 r32" in helper
    finally:
        stuck.send_signal(signal.SIGKILL)
        stuck.wait()
        stuck.stdout.close()
        stuck.stderr.close()
    _finish(_worker(out, 2, 0.1))  # started after the kill: the dead worker's claim has expired
    assert [s for s, _ in _calls(out)] == [first, second, first]
    records = {r["resolution"]: r for r in load_results(out)}
    assert sorted(records) == [32, 48] and len(out.read_text().splitlines()) == 2
    assert records[32]["resumed"] is True, "the later worker picks up the killed worker's checkpoint"
    assert records[32]["worker_pid"] != stuck.pid


def test_a_worker_that_finds_its_claimed_condition_already_written_skips_it(tmp_path):
    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [32, 48], 1, "sample")
    calls: list = []

    def run(cond, checkpoint):  # while this worker trains the first, another one finishes the second
        if not calls:
            append_record(out, {**asdict(grid[1]), "val_acc": [0.9]})
        return fake_runner(calls)(cond, checkpoint)

    run_sweep(out, grid, runner=run, progress=False)
    assert calls == grid[:1]
    assert len(out.read_text().splitlines()) == 2


def test_a_condition_claimed_by_another_process_is_skipped(tmp_path):
    from filelock import FileLock

    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [32, 48], 1, "sample")
    held = tmp_path / "r.jsonl.ckpt" / f"{grid[0].slug()}.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time, filelock\n"
                               f"lock = filelock.FileLock({str(held)!r}); lock.acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        calls: list = []
        run_sweep(out, grid, runner=fake_runner(calls), progress=False)
        assert calls == grid[1:]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    assert FileLock(str(held), timeout=0).acquire(), "the kernel releases a dead holder's lock"


def test_duplicate_records_in_a_file_are_read_once_with_a_warning(tmp_path):
    out = tmp_path / "r.jsonl"
    rec = asdict(Condition("mobilenet_v2", 0.5, 96, 10, "animals10"))
    for acc, res in [(0.6, 96), (0.7, 96), (0.8, 128), (0.65, 96)]:
        append_record(out, {**rec, "resolution": res, "val_acc": [acc]})
    with pytest.warns(store.DuplicateRecordWarning, match=r"2 condition\(s\) have two different results \(lines 1 "
                                                           r"and 2, 1 and 4\)"):
        records = load_results(out)
    assert [(r["resolution"], r["val_acc"]) for r in records] == [(96, [0.6]), (128, [0.8])]


# ----------------------------------------------------------------- shards from a SLURM array job

@pytest.mark.parametrize("env, expected", [
    (dict(ID="0", MIN="0", MAX="3", COUNT="4", STEP="1"), (1, 4)),
    (dict(ID="3", MIN="0", MAX="3", COUNT="4", STEP="1"), (4, 4)),
    (dict(ID="5", MIN="1", MAX="8", COUNT="8"), (5, 8)),  # --array=1-8
    (dict(ID="8", MIN="0", MAX="12", COUNT="4", STEP="4"), (3, 4)),  # --array=0-12:4
    (dict(ID="5", MIN="1", MAX="7", COUNT="4"), (3, 4)),  # --array=1,3,5,7
    (dict(ID="7", MIN="7", MAX="7", COUNT="1"), (1, 1)),  # --array=7
])
def test_slurm_array_variables_give_this_tasks_shard(env, expected):
    assert sweep.slurm_shard({f"SLURM_ARRAY_TASK_{k}": v for k, v in env.items()}) == expected


def test_slurm_array_tasks_together_cover_the_grid_once():
    grid = expand_grid(**FULL_GRID)
    env = dict(SLURM_ARRAY_TASK_MIN="10", SLURM_ARRAY_TASK_MAX="16", SLURM_ARRAY_TASK_COUNT="7")
    keys = [c.key for task in range(10, 17)
            for c in shard_grid(grid, *sweep.slurm_shard({**env, "SLURM_ARRAY_TASK_ID": str(task)}))]
    assert sorted(keys, key=repr) == sorted((c.key for c in grid), key=repr)


@pytest.mark.parametrize("env, message", [
    ({}, "SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_MAX not set"),
    (dict(ID="2", MIN="0", MAX="5", COUNT="3"), "evenly spaced"),  # --array=0,2,5
    (dict(ID="x", MIN="0", MAX="3"), "must be integers"),
])
def test_slurm_shard_without_a_regular_array_job_says_what_to_do(env, message):
    with pytest.raises(ValueError, match=message):
        sweep.slurm_shard({f"SLURM_ARRAY_TASK_{k}": v for k, v in env.items()})


def test_cli_shard_slurm_runs_the_array_tasks_part(tmp_path, capsys, monkeypatch):
    for key, value in dict(ID="1", MIN="0", MAX="1", COUNT="2", STEP="1").items():
        monkeypatch.setenv(f"SLURM_ARRAY_TASK_{key}", value)
    args = ["--models", "mobilenet_v2", "--widths", "0.35", "--resolutions", "32,48,64,96", "--epochs", "1",
            "--dataset", "sample", "--out", str(tmp_path / "r.jsonl"), "--shard", "slurm", "--dry-run", "--recipe",
            "course"]
    assert sweep.main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    # after the data line: this task's half of the grid, the estimate of what is left, the count
    assert lines[1:3] == ["todo  mobilenet_v2 w0.35 r48", "todo  mobilenet_v2 w0.35 r96"]
    assert lines[3].startswith("estimated time of the 2 to do on a GPU: ")
    assert lines[4:] == [f"0 of 2 done in {tmp_path / 'r.jsonl'}"]


def test_cli_shard_slurm_outside_an_array_job_is_a_clear_error(tmp_path, capsys, monkeypatch):
    for key in ("ID", "MIN", "MAX", "COUNT", "STEP"):
        monkeypatch.delenv(f"SLURM_ARRAY_TASK_{key}", raising=False)
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--shard", "slurm", "--out", str(tmp_path / "r.jsonl"), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--shard slurm needs the variables of a SLURM array job" in err and "Traceback" not in err


def test_a_condition_read_back_from_its_json_record_is_the_same_condition():
    (cond,) = expand_grid(["resnet18"], [1.0], [32], 3, "sample", subset=(20, 10), seed=2, augment="none", lr=1e-4)
    record = json.loads(json.dumps(asdict(cond)))  # subset comes back as a list
    assert Condition.from_record(record) == cond
    assert Condition.from_record(record, epochs=1).key == cond.key[:3] + (1,) + cond.key[4:]


@pytest.mark.parametrize("changes, match", [
    (dict(model="resnet18", width=0.5), "resnet18 has no width multiplier"),
    (dict(augment="heavy"), "augment must be one of course, light, none"),
    (dict(lr=0), "learning rate must be a number > 0"),
    (dict(subset=(5, 2, 1)), "subset must be n or \\(train, val\\)"),
    (dict(seed=True), "seed must be an integer"),
    (dict(model="mobilenet_v1+leaky"), "switches"),
])
def test_a_condition_is_checked_when_it_is_made(changes, match):
    with pytest.raises(ValueError, match=match):
        Condition(**{**dict(model="mobilenet_v2", width=1.0, resolution=32, epochs=1, dataset="sample"), **changes})


def test_a_record_without_a_key_field_is_refused_with_the_fields_named():
    record = asdict(Condition("mobilenet_v2+proj+leaky", 0.5, 32, 1, "sample"))
    assert record["model"] == "c_mobilenet_v2"  # both switches: the canonical name
    del record["lr"]
    with pytest.raises(ValueError, match="missing lr"):
        condition_key(record)


def test_the_plan_command_runs_one_part_of_lesson09(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert sweep.main(["plan", "lesson09", "--profile", "reference", "--part", "augment", "--out", str(out),
                       "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the course's and no augmentation, 2 models, 3 seeds, and light with seeds 1 and 2: light seed 0 is in
    # the grid (the ablation is at 20 px, the comparison at 12)
    assert lines[-1] == f"0 of 16 done in {out}"
    assert sum(" light " in ln for ln in lines) == 4 and all(" light s0 " not in ln for ln in lines)


def test_a_run_trains_the_recommended_recipe_with_its_own_augmentation_by_default():
    from lecture_utils.recipe import COURSE, RECOMMENDED

    def named(*flags):
        args = sweep._parser().parse_args(["run", "--models", "resnet18", "--widths", "1", "--resolutions", "32",
                                           "--epochs", "1", "--dataset", "sample", "--out", "r.jsonl", *flags])
        (cond,) = sweep._conditions(args)
        return cond.recipe, cond.augment

    assert named() == (RECOMMENDED, "none")  # not the recommended recipe on the course's turned, shrunk images
    assert named("--recipe", "course") == (COURSE, "course")
    assert named("--recipe", "course", "--augment", "light") == (COURSE, "light")
    assert named("--weight-decay", "0.1")[0].weight_decay == 0.1  # a flag changes the recommended recipe
