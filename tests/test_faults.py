"""The fault pass: each test reproduces one fault (a reused result, lost work, a traceback where one line is
due) and checks the behaviour that replaced it. Numbered by the items of the pass that found them.

Full disks are an injected ``OSError(ENOSPC)``, read-only paths an injected ``OSError(EROFS)`` (tests may
run as root, where permission bits stop nothing); a download mirror is a function that serves bytes.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lecture_utils import checkpoint as checkpoint_module
from lecture_utils._util import WriteFailed, atomic_write
from lecture_utils.checkpoint import CheckpointError, CheckpointInUse
from lecture_utils.data import EpochSampler
from lecture_utils.trainer import ModelTrainer, seed_everything

REPO = Path(__file__).resolve().parent.parent


# --- tiny training runs -------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def loaders(n_train: int = 36, batch_size: int = 8):
    g = torch.Generator().manual_seed(1)
    y = torch.arange(n_train + 12) % 3
    x = torch.randn(len(y), 3, 6, 6, generator=g) + y.view(-1, 1, 1, 1).float()
    train = torch.utils.data.TensorDataset(x[:n_train], y[:n_train])
    val = torch.utils.data.TensorDataset(x[n_train:], y[n_train:])
    return (torch.utils.data.DataLoader(train, batch_size=batch_size, sampler=EpochSampler(n_train, 0)),
            torch.utils.data.DataLoader(val, batch_size=batch_size))


def fit(checkpoint, epochs: int = 1, n_train: int = 36, batch_size: int = 8, num_classes: int = 3,
        onecycle: bool = False):
    seed_everything(0)
    model = Tiny(num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    train_loader, val_loader = loaders(n_train, batch_size)
    scheduler = (torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=epochs * len(train_loader))
                 if onecycle else None)
    return ModelTrainer(epoch_step=0, device="cpu").fit(
        model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, epochs, checkpoint=checkpoint,
        progress=False, scheduler=scheduler, scheduler_per="batch")


def enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --- 1. a lesson's checkpoint holds its budget ---------------------------------------------------


def test_01_a_shrunk_lesson_run_and_the_real_one_have_different_checkpoints(monkeypatch, tmp_path):
    from lecture_utils.settings import lesson_settings

    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    names = set()
    for shrink in ("2,1", "20,1", "20,3", ""):
        monkeypatch.setenv("LECTURE_FULL_SHRINK", shrink)
        names.add(lesson_settings("04", "full").checkpoint("resnet18").name)
    assert len(names) == 4
    monkeypatch.setenv("LECTURE_FULL_SHRINK", "20,3")
    name = lesson_settings("04", "full").checkpoint("resnet18").name
    assert "e3" in name and "b128" in name and "n20." in name


@pytest.mark.parametrize("changed, why", [
    (dict(n_train=24), "train_images 36 there, 24 here"),
    (dict(epochs=3, onecycle=True), "a schedule of 5 steps there, 15 here"),  # a schedule spans its epochs
    (dict(batch_size=4), "batch_size 8 there, 4 here"),
])
def test_01_a_checkpoint_of_another_budget_is_refused_in_one_line(tmp_path, changed, why):
    path = tmp_path / "run.pt"
    fit(path, onecycle=changed.get("onecycle", False))
    with pytest.raises(CheckpointError, match=why) as exc:
        fit(path, **changed)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_01_a_checkpoint_written_before_runs_were_recorded_is_checked_on_its_optimizer_steps(tmp_path):
    path = tmp_path / "run.pt"
    fit(path)
    state = torch.load(path, weights_only=True)
    del state["run"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"5 optimizer steps in 1 epoch\(s\) there, 4 batches per epoch here"):
        fit(path, epochs=2, batch_size=9)  # 36 images: 5 batches of 8 there, 4 of 9 here
    assert fit(path, epochs=2).epochs == 2  # the same run resumes it


# --- 7. one process at a time on a lesson's checkpoint ------------------------------------------


def test_07_a_second_process_on_a_checkpoint_gets_one_line(tmp_path):
    from filelock import FileLock

    path = tmp_path / "run.pt"
    held = FileLock(str(tmp_path / ".run.pt.lock"))
    script = (f"from filelock import FileLock; import time; l = FileLock({str(held.lock_file)!r}); l.acquire(); "
              "print('held', flush=True); time.sleep(30)")
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointInUse, match="another process is training into the checkpoint"):
            fit(path)
        assert not path.exists()
    finally:
        other.kill()
        other.wait()
    assert fit(path).epochs == 1  # the lock died with its holder


# --- 12. a killed fit's temp file is removed by the next run ------------------------------------


def test_12_the_temp_file_of_a_killed_write_is_removed_by_the_next_fit(tmp_path):
    path = tmp_path / "run.pt"
    leftover = tmp_path / ".run.pt.otherhost-4242.tmp"
    leftover.write_bytes(b"x" * 1000)
    fit(path)
    assert not leftover.exists() and path.is_file()


# --- 17. a checkpoint of another shape -----------------------------------------------------------


def test_17_a_checkpoint_of_another_network_is_refused_in_one_line(tmp_path):
    path = tmp_path / "run.pt"
    fit(path)
    with pytest.raises(CheckpointError, match="another network's weights") as exc:
        fit(path, num_classes=5)
    assert "\n" not in str(exc.value)


# --- 9. a full disk during a checkpoint write ----------------------------------------------------


def test_09_a_full_disk_during_a_checkpoint_write_says_so_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    fit(path)
    before = path.read_bytes()

    def full(state, target):  # torch's own words when its zip writer meets a full disk
        Path(target).write_bytes(b"PK")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(checkpoint_module.torch, "save", full)
    with pytest.raises(WriteFailed, match=r"cannot write .*run.pt: .*previous checkpoint \(1 epoch\(s\) done\) is "
                                          r"kept; epoch 2 is lost") as exc:
        fit(path, epochs=2)
    assert "\n" not in str(exc.value)
    assert path.read_bytes() == before and list(tmp_path.glob(".run.pt.*.tmp")) == []


def test_16_a_write_in_a_read_only_folder_is_one_line_without_a_second_error(tmp_path, monkeypatch):
    def refuse(tmp):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp))

    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):  # a read-only folder refuses even removing a file it lacks
        if self.name.endswith(".tmp"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(WriteFailed, match=r"cannot write .*cache.pt: Read-only file system; nothing was written"):
        atomic_write(tmp_path / "cache.pt", refuse)


# --- the sweep's conditions: every setting that changes a result is in the key -----------------------


def sweep_cli(out, *extra):
    return ["--models", "mobilenet_v2", "--widths", "0.35", "--resolutions", "16", "--epochs", "1",
            "--dataset", "sample", "--device", "cpu", "--threads", "1", "--no-progress", "--out", str(out),
            "--recipe", "course", *extra]  # the records these tests write are the course recipe's


def dry_run(capsys, out, *extra) -> str:
    from lecture_utils.experiment import sweep

    assert sweep.main([*sweep_cli(out, *extra), "--dry-run"]) == 0
    return capsys.readouterr().out.splitlines()[-1]


def finished(cond, **fields) -> dict:
    from dataclasses import asdict

    return {**asdict(cond), "val_acc": [0.5], **fields}


def test_02_another_batch_size_is_another_condition(tmp_path, capsys):
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    out = tmp_path / "r.jsonl"
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample", batch_size=64)))
    assert dry_run(capsys, out, "--batch-size", "64") == f"1 of 1 done in {out}"
    assert dry_run(capsys, out, "--batch-size", "8") == f"0 of 1 done in {out}"
    a, b = (Condition("mobilenet_v2", 0.35, 16, 1, "sample", batch_size=n) for n in (64, 8))
    assert a.slug() != b.slug()  # nor is the checkpoint of one resumed by the other


def test_02_a_record_written_before_batch_and_root_were_in_the_key_keeps_its_own(tmp_path, capsys):
    from dataclasses import asdict

    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    out = tmp_path / "r.jsonl"
    old = finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample"), batch_size=64, format=3)
    del old["data_root"]
    append_record(out, old)
    assert dry_run(capsys, out, "--batch-size", "64") == f"1 of 1 done in {out}"
    plain = asdict(Condition("mobilenet_v2", 0.35, 16, 1, "sample"))
    del plain["batch_size"], plain["data_root"]
    assert Condition.from_record(plain).batch_size == 192  # the course's batch, what the sweep used then


def test_02_another_data_folder_is_another_condition(tmp_path, capsys):
    import shutil

    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    out = tmp_path / "r.jsonl"
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample")))
    copy = tmp_path / "copy"
    shutil.copytree(REPO / "data" / "sample", copy)
    assert dry_run(capsys, out) == f"1 of 1 done in {out}"
    assert dry_run(capsys, out, "--data-root", str(REPO / "data" / "sample")) == f"1 of 1 done in {out}"
    assert dry_run(capsys, out, "--data-root", str(copy)) == f"0 of 1 done in {out}"


def test_02_the_stored_reference_runs_are_still_done():
    from lecture_utils.experiment import plans
    from lecture_utils.experiment.conditions import condition_key
    from lecture_utils.experiment.results import load_reference

    for name, conditions in (("zoo", [c for _, c in plans.zoo_plan("zoo")]),
                             ("lesson09", plans.lesson09_conditions("reference"))):
        done = {condition_key(r) for r in load_reference(name)}
        assert all(c.key in done for c in conditions), name


def test_03_a_subset_larger_than_the_data_is_the_whole_data(tmp_path, capsys):
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    out = tmp_path / "r.jsonl"
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample")))  # all: 300 and 60 per class
    for subset in ("5000", "300,60", "300,5000"):
        assert dry_run(capsys, out, "--subset", subset) == f"1 of 1 done in {out}", subset
    assert dry_run(capsys, out, "--subset", "299,60") == f"0 of 1 done in {out}"


# --- 4, 5. the results store checks what it reads; merge refuses conflicts ------------------------


def test_04_merge_refuses_two_results_of_a_condition_unless_told_which(tmp_path, capsys):
    import json

    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    a, b, out = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "all.jsonl"
    cond = Condition("mobilenet_v2", 0.35, 16, 1, "sample")
    append_record(a, finished(cond, val_acc=[0.1]))
    append_record(b, finished(cond, val_acc=[0.99]))
    with pytest.raises(SystemExit) as exc:
        sweep.main(["merge", str(a), str(b), "--out", str(out)])
    assert exc.value.code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert f"{a} line 1 (final val acc 0.100) and {b} line 1 (0.990)" in err and "--keep" in err
    assert sweep.main(["merge", str(a), str(b), "--out", str(out), "--keep", "last"]) == 0
    assert [json.loads(line)["val_acc"] for line in out.read_text().splitlines()] == [[0.99]]
    append_record(a, finished(cond, val_acc=[0.99]))  # the same condition twice in one file
    with pytest.warns(Warning, match=r"two different results \(lines 1 and 2\).*--keep first\|last"):
        sweep.load_results(a)


@pytest.mark.parametrize("change, why", [
    (dict(format=99), "its format 99 is not one this code reads"),
    (dict(versions={"torch": "9.9.9"}), "it says torch 9.9.9 made it, newer than any release"),
    (dict(val_acc=None), "it has no val_acc"),
    (dict(model=None), "it names no condition"),
])
def test_05_a_record_that_cannot_be_used_stops_reading_naming_file_and_line(tmp_path, capsys, change, why):
    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record

    out = tmp_path / "r.jsonl"
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 32, 1, "sample")))
    record = finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample"), **change)
    append_record(out, {k: v for k, v in record.items() if k not in change or change[k] is not None})
    for command in (sweep_cli(out, "--dry-run"), ["merge", str(out), "--out", str(tmp_path / "m.jsonl")]):
        with pytest.raises(SystemExit) as exc:
            sweep.main(command)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and f"{out} line 2: cannot use this record: {why}" in err
        assert "Traceback" not in err and f"sweep repair {out}" in err


def test_05_repair_moves_the_records_that_cannot_be_used_aside(tmp_path, capsys):
    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import append_record, load_results

    out = tmp_path / "r.jsonl"
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 32, 1, "sample")))
    append_record(out, finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample"), format=99))
    assert sweep.main(["repair", str(out)]) == 0
    assert "kept 1 record(s), removed 1 line(s)" in capsys.readouterr().out
    assert len(load_results(out)) == 1 and '"format": 99' in (tmp_path / "r.jsonl.removed").read_text()


# --- 6. a data root given is the only place looked in ---------------------------------------------


def test_06_a_mistyped_data_root_is_not_replaced_by_the_system_copy(tmp_path):
    from lecture_utils import datasets

    with pytest.raises(FileNotFoundError) as exc:
        datasets.get_dataset("fashion_mnist", "train", root=tmp_path / "fashon-mnist")
    assert "/usr/share/datasets" not in str(exc.value).split(". Get them")[0]
    assert datasets.canonical_root("fashion_mnist", tmp_path / "elsewhere") == str((tmp_path / "elsewhere").resolve())
    assert datasets.canonical_root("sample", None) is None
    assert datasets.canonical_root("sample", REPO / "data" / "sample") is None


# --- 9. a full disk while a record is appended ------------------------------------------------------


def test_09_a_full_disk_during_an_append_leaves_no_fragment_and_names_what_was_kept(tmp_path, monkeypatch):
    from lecture_utils.experiment import store
    from lecture_utils.experiment.conditions import Condition

    out = tmp_path / "r.jsonl"
    store.append_record(out, finished(Condition("mobilenet_v2", 0.35, 32, 1, "sample")))
    before = out.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):  # the disk fills in the middle of the line
        if len(data) > 100:
            return real_write(fd, bytes(data[:100]))
        enospc()

    monkeypatch.setattr(store.os, "write", half_then_full)
    with pytest.raises(WriteFailed, match=r"cannot write .*r.jsonl: No space left on device; r.jsonl is as it was; "
                                          r"the checkpoint keeps it"):
        store.append_record(out, finished(Condition("mobilenet_v2", 0.35, 16, 1, "sample")),
                            kept="the checkpoint keeps it")
    assert out.read_bytes() == before


def test_09_a_fragment_is_reported_once_with_the_command_that_removes_it(tmp_path, capsys):
    import warnings

    from lecture_utils.experiment import store, sweep
    from lecture_utils.experiment.conditions import Condition

    out = tmp_path / "r.jsonl"
    store.append_record(out, finished(Condition("mobilenet_v2", 0.35, 32, 1, "sample")))
    with open(out, "ab") as f:
        f.write(b'{"model": "mobilenet_v2", "val_a')
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            store.load_results(out)
    assert len(seen) == 1 and f"python -m lecture_utils.experiment.sweep repair {out}" in str(seen[0].message)
    assert sweep.main(["repair", str(out)]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(store.load_results(out)) == 1
    assert (tmp_path / "r.jsonl.removed").read_bytes() == b'{"model": "mobilenet_v2", "val_a\n'


# --- 18, 19, 20. the sweep's run: a finished read-only file, Ctrl-C, a diverging condition ----------


def fake_runner(calls, diverge=()):
    from lecture_utils.trainer import NonFiniteLossError

    def run(cond, checkpoint):
        calls.append(cond)
        if cond.resolution in diverge:
            raise NonFiniteLossError("the training loss is nan at epoch 1, batch 3; training stopped before the "
                                     "update. Try a lower learning rate (e.g. 10x lower), check the inputs for NaN, "
                                     "or turn amp off.")
        return {"train_loss": [1.0], "train_acc": [0.5], "val_loss": [1.0], "val_acc": [0.5]}

    return run


def test_18_a_finished_results_file_is_read_without_being_written(tmp_path, monkeypatch):
    from lecture_utils.experiment import sweep, sweep_run
    from lecture_utils.experiment.conditions import expand_grid

    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [16, 24], 1, "sample")
    sweep.run_sweep(out, grid, runner=fake_runner([]), progress=False)

    def read_only(path):
        raise ValueError(f"cannot write the results file {path}: Read-only file system")

    monkeypatch.setattr(sweep_run, "check_out_writable", read_only)
    calls: list = []
    assert len(sweep.run_sweep(out, grid, runner=fake_runner(calls), progress=False)) == 2 and calls == []
    with pytest.raises(ValueError, match="Read-only"):  # with something left to train, it is checked first
        sweep.run_sweep(out, expand_grid(["mobilenet_v2"], [0.35], [32], 1, "sample"),
                        runner=fake_runner(calls), progress=False)
    assert calls == []


def test_19_ctrl_c_in_a_sweep_is_one_line_that_says_how_to_resume(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import sweep

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep, "run_sweep", interrupted)
    assert sweep.main(sweep_cli(tmp_path / "r.jsonl")) == 130
    err = capsys.readouterr().err
    assert "interrupted;" in err and "run the same command again to resume" in err and "Traceback" not in err


def test_20_a_diverging_condition_stops_itself_not_the_sweep(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import expand_grid
    from lecture_utils.experiment.store import load_results

    out = tmp_path / "r.jsonl"
    grid = expand_grid(["mobilenet_v2"], [0.35], [16, 24, 32], 1, "sample")
    calls: list = []
    with pytest.raises(sweep.DivergedError, match=r"1 condition\(s\) stopped on a non-finite loss") as exc:
        sweep.run_sweep(out, grid, runner=fake_runner(calls, diverge=(24,)), progress=False)
    assert len(calls) == 3 and sorted(r["resolution"] for r in load_results(out)) == [16, 32]
    assert "Try a lower --lr" in str(exc.value) and "amp" not in str(exc.value)

    monkeypatch.setattr(sweep, "run_sweep", lambda *a, **k: (_ for _ in ()).throw(exc.value))
    assert sweep.main(sweep_cli(out)) == 1
    err = capsys.readouterr().err
    assert "mobilenet_v2 w0.35 r24: the training loss is nan" in err and "Traceback" not in err


# --- 8. a broken Fashion-MNIST download recovers --------------------------------------------------


@pytest.fixture
def fmnist_mirror(tmp_path, monkeypatch):
    """A file:// mirror of tiny Fashion-MNIST files whose MD5 sums stand in for the published ones."""
    import gzip
    import hashlib
    import struct

    import numpy as np
    from torchvision import datasets as tv_datasets

    from lecture_utils import datasets

    served = tmp_path / "mirror"
    served.mkdir()
    resources = []
    for images, labels, n in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 20),
                              ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10)):
        for name, array in ((images, np.zeros((n, 28, 28))), (labels, np.arange(n) % 10)):
            code = {1: 0x801, 3: 0x803}[array.ndim]
            data = gzip.compress(struct.pack(f">I{array.ndim}I", code, *array.shape) + array.astype(np.uint8).tobytes())
            (served / f"{name}.gz").write_bytes(data)
            resources.append((f"{name}.gz", hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(tv_datasets.FashionMNIST, "resources", resources)
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    monkeypatch.setenv("LECTURE_FASHION_MNIST_MIRROR", served.as_uri())
    return served


def test_08_a_download_cut_short_is_fetched_again(fmnist_mirror, tmp_path):
    from lecture_utils import datasets

    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    whole = (fmnist_mirror / "train-images-idx3-ubyte.gz").read_bytes()
    (raw / "train-images-idx3-ubyte.gz").write_bytes(whole[: len(whole) // 2])  # a download killed mid-file
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"")  # an extraction cut short
    assert len(datasets.get_dataset("fashion_mnist", "train", root=tmp_path / "data", download=True)) == 20
    assert len(datasets.get_dataset("fashion_mnist", "val", root=tmp_path / "data", download=True)) == 10
    assert (raw / "train-images-idx3-ubyte.gz").read_bytes() == whole and not (raw / "t10k-labels-idx1-ubyte").exists()


def test_08_a_mirror_serving_a_bad_file_leaves_nothing_and_says_so(fmnist_mirror, tmp_path):
    from lecture_utils import datasets

    good = (fmnist_mirror / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (fmnist_mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-5])  # truncated on the server
    with pytest.raises(FileNotFoundError, match=r"download failed \(.*t10k-labels-idx1-ubyte.gz: MD5 .*expected"):
        datasets.get_dataset("fashion_mnist", "val", root=tmp_path / "data", download=True)
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert not (raw / "t10k-labels-idx1-ubyte.gz").exists() and not list(raw.glob(".*.tmp"))
    (fmnist_mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(good)  # the mirror is mended: the rerun recovers
    assert len(datasets.get_dataset("fashion_mnist", "val", root=tmp_path / "data", download=True)) == 10


def test_08_a_damaged_file_without_download_is_one_line_naming_it(fmnist_mirror, tmp_path):
    from lecture_utils import datasets

    folder = tmp_path / "fmnist"
    folder.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes((fmnist_mirror / name).read_bytes()[:40])
    with pytest.raises(FileNotFoundError, match=r"cannot read train-images-idx3-ubyte.gz .*delete the damaged file"):
        datasets.get_dataset("fashion_mnist", "train", root=folder)


def test_08_a_mirror_that_is_not_a_url_is_named(fmnist_mirror, tmp_path, monkeypatch):
    from lecture_utils import datasets

    monkeypatch.setenv("LECTURE_FASHION_MNIST_MIRROR", "not a url")
    with pytest.raises(ValueError, match="LECTURE_FASHION_MNIST_MIRROR must be a URL"):
        datasets.get_dataset("fashion_mnist", "val", root=tmp_path / "data", download=True)


# --- 10, 11. outputs checked before the work; the tracked reference never overwritten by default ----


def test_10_the_baseline_without_out_writes_to_the_runs_folder_not_the_stored_reference(tmp_path, monkeypatch):
    from lecture_utils.experiment import baseline

    stored = REPO / "data" / "reference" / "linear-baseline-500.json"
    before = stored.read_bytes()
    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(baseline, "linear_baseline", lambda root, per_class=None: {
        "train_acc": 0.5, "test_acc": 0.5, "wall_time_s": 1.0})
    assert baseline.main(["--per-class", "500"]) == 0
    assert stored.read_bytes() == before and (tmp_path / "linear-baseline-500.json").is_file()


def test_10_a_failed_baseline_write_keeps_the_previous_file(tmp_path, monkeypatch, capsys):
    from lecture_utils import _util
    from lecture_utils.experiment import baseline

    out = tmp_path / "b.json"
    out.write_text('{"val_acc": 0.8}\n')
    monkeypatch.setattr(baseline, "linear_baseline", lambda root, per_class=None: {
        "train_acc": 0.5, "test_acc": 0.5, "wall_time_s": 1.0})
    monkeypatch.setattr(_util.os, "replace", enospc)
    assert baseline.main(["--out", str(out)]) == 1
    assert out.read_text() == '{"val_acc": 0.8}\n'
    assert "No space left on device; the previous b.json is kept" in capsys.readouterr().err


def test_11_the_gpu_check_tries_its_report_path_before_measuring(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import gpucheck

    monkeypatch.setattr(gpucheck, "_lesson_row", lambda *a: pytest.fail("measured before checking --out"))
    with pytest.raises(SystemExit) as exc:
        gpucheck.main(["--device", "cpu", "--lessons", "04", "--no-plan", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "is a directory" in capsys.readouterr().err


def test_11_the_gpu_check_on_cuda_without_cuda_is_one_line(monkeypatch, capsys, tmp_path):
    from lecture_utils.experiment import gpucheck

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        gpucheck.main(["--device", "cuda", "--lessons", "04", "--no-plan", "--out", str(tmp_path / "g.json")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "CUDA is not available" in err and "NVIDIA driver" not in err


# --- 14. the results command ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::lecture_utils.experiment.store.PartialLineWarning")  # the garbage line's, as well
@pytest.mark.parametrize("content, message", [
    ("", "holds no records"),
    ("garbage\n", "holds no records"),
    (None, "has no 'wall_time_s' field"),
])
def test_14_the_results_command_on_a_bad_file_is_one_line(tmp_path, capsys, content, message):
    import json
    from dataclasses import asdict

    from lecture_utils.experiment import results
    from lecture_utils.experiment.conditions import Condition

    path = tmp_path / "r.jsonl"  # an absolute path, as a user gives it
    record = {**asdict(Condition("mobilenet_v2", 0.35, 16, 1, "sample")), "val_acc": [0.5]}  # no wall_time_s
    path.write_text(content if content is not None else json.dumps(record) + "\n")
    with pytest.raises(SystemExit) as exc:
        results.main([str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err


def test_14_the_results_help_names_recipe_choice(capsys):
    from lecture_utils.experiment import results

    with pytest.raises(SystemExit):
        results.main(["--help"])
    assert "recipe-choice" in capsys.readouterr().out


# --- 15, 16, 22. data folders, a read-only cache, the augmented validation's line --------------------


def tiny_folder(root: Path, classes=("dark", "bright"), empty=(), splits=("train", "val")) -> Path:
    import numpy as np
    from PIL import Image

    for split in splits:
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(0 if label in empty else 4):
                level = 40 if label == "dark" else 210
                Image.fromarray(np.full((16, 16, 3), level, np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("layout, message", [
    (dict(splits=("train",)), "data set 'sample' is incomplete (--data-root"),
    (dict(empty=("bright",)), "class folder(s) ['bright'] of"),
])
def test_15_a_folder_data_set_missing_a_part_is_one_line_that_says_what(tmp_path, capsys, layout, message):
    from lecture_utils.experiment import sweep

    root = tiny_folder(tmp_path / "data", **layout)
    with pytest.raises(SystemExit) as exc:
        sweep.main(sweep_cli(tmp_path / "r.jsonl", "--data-root", str(root), "--batch-size", "4"))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and "Traceback" not in err and "is not there" not in err


def test_16_a_cache_folder_that_cannot_be_written_is_refused_before_decoding(tmp_path, monkeypatch, capsys):
    from lecture_utils import _util
    from lecture_utils.experiment import sweep

    root = tiny_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    real_mkstemp = _util.tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # as root, only an injected error stops a write
        if dir is not None and Path(dir) == cache:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(_util.tempfile, "mkstemp", read_only)
    with pytest.raises(SystemExit) as exc:
        sweep.main(sweep_cli(tmp_path / "r.jsonl", "--data-root", str(root), "--batch-size", "4",
                             "--cache-dir", str(cache)))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "cannot write the --cache-dir file" in err and "Read-only file system" in err


def test_22_the_augmented_validation_after_one_epoch_is_not_numbered_as_a_second(tmp_path, capsys):
    from lecture_utils.experiment.conditions import expand_grid
    from lecture_utils.experiment.runner import TorchRunner

    root = tiny_folder(tmp_path / "data")
    runner = TorchRunner(dataset="sample", data_root=str(root), batch_size=4, device="cpu", threads=1, augment="light")
    (cond,) = expand_grid(["mobilenet_v2"], [0.35], [16], 1, "sample", augment="light", batch_size=4,
                          data_root=str(root.resolve()))
    with torch.random.fork_rng():
        record = runner(cond, tmp_path / "c.pt")
    out = capsys.readouterr().out
    assert record["val_acc_augmented"] is not None
    assert "epoch 002" not in out and "after epoch 001, augmented val [" in out


# --- 13. lesson 09's full plan on a CPU; what a dry run says; where its results go -----------------


def test_13_the_full_plan_on_a_cpu_stops_before_training_in_one_line(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import sweep

    monkeypatch.delenv("LECTURE_FULL_SHRINK", raising=False)
    monkeypatch.setattr(sweep, "run_plan", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(SystemExit) as exc:
        sweep.main(["plan", "lesson09", "--profile", "full", "--device", "cpu", "--out", str(tmp_path / "r.jsonl")])
    assert exc.value.code == 2 and "meant for a GPU" in capsys.readouterr().err


def test_13_a_dry_run_names_the_data_the_epochs_and_the_batch(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    dry_run(capsys, out)  # clears the output of earlier calls
    from lecture_utils.experiment import sweep

    assert sweep.main([*sweep_cli(out, "--subset", "100,20", "--batch-size", "32"), "--dry-run"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("data: sample, 100 / 20 images per class (train / validation), 1 epoch(s), batch 32, "
                     "validated on test")


def test_13_the_full_plans_results_default_to_the_runs_folder_lesson_09_reads(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import sweep

    monkeypatch.setenv("LECTURE_RUNS_DIR", str(tmp_path))
    assert sweep.main(["plan", "lesson09", "--profile", "full", "--part", "augment", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"done in {tmp_path / '09_sweep_full.jsonl'}")
    with pytest.raises(SystemExit):  # any other plan names its file
        sweep.main(["plan", "zoo", "--dry-run"])
    assert "--out is required" in capsys.readouterr().err


def test_02_a_checkpoint_under_its_old_name_is_resumed_and_its_old_claim_respected(tmp_path):
    from filelock import FileLock

    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import Condition
    from lecture_utils.experiment.store import checkpoint_dir, claim

    out = tmp_path / "r.jsonl"
    cond = Condition("mobilenet_v2", 0.35, 16, 1, "sample", batch_size=128)
    ckpt_dir = checkpoint_dir(out)
    ckpt_dir.mkdir()
    old_lock = FileLock(str(ckpt_dir / f"{cond.legacy_slug()}.lock"))
    old_lock.acquire()  # a worker of the code before batch sizes were in the name trains it now
    try:
        held = subprocess.run([sys.executable, "-c", (
            "from lecture_utils.experiment.conditions import Condition; from lecture_utils.experiment.store import claim; "
            f"from pathlib import Path; c = Condition('mobilenet_v2', 0.35, 16, 1, 'sample', batch_size=128); "
            f"print(claim(Path({str(ckpt_dir)!r}), c))")], capture_output=True, text=True, check=True)
        assert held.stdout.strip() == "None"
    finally:
        old_lock.release()
    (ckpt_dir / f"{cond.legacy_slug()}.pt").write_bytes(b"1 epoch done")  # what that worker left when it died
    seen = []

    def runner(c, checkpoint):
        seen.append(checkpoint.read_bytes())
        return {"train_loss": [1.0], "train_acc": [0.5], "val_loss": [1.0], "val_acc": [0.5]}

    sweep.run_sweep(out, [cond], runner=runner, progress=False)
    assert seen == [b"1 epoch done"] and cond.slug().endswith("_b128")
    assert not ckpt_dir.exists()  # the finished condition's checkpoint, claims and folder are cleaned up


def test_17_a_damaged_checkpoint_in_a_sweep_says_the_commands_way_out(tmp_path):
    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import expand_grid

    def runner(cond, checkpoint):
        checkpoint.write_bytes(b"PK\x03\x04 cut short")  # as a full disk or an interrupted copy leaves it
        fit(checkpoint)

    with pytest.raises(CheckpointError) as exc:
        sweep.run_sweep(tmp_path / "r.jsonl", expand_grid(["mobilenet_v2"], [0.35], [16], 1, "sample"),
                        runner=runner, progress=False)
    message = str(exc.value)
    assert "it is truncated" in message and "run the same command again" in message and "resume=False" not in message


def test_13_running_out_of_memory_is_one_line_that_says_what_to_change(tmp_path, monkeypatch, capsys):
    from lecture_utils.experiment import sweep
    from lecture_utils.experiment.conditions import expand_grid

    def runner(cond, checkpoint):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 7046430720 bytes. Error code 12 (Cannot allocate memory)")

    grid = expand_grid(["mobilenet_v2"], [0.35], [224], 1, "sample")
    with pytest.raises(sweep.OutOfMemory, match=r"r224 ran out of memory .* at 224 px in batches of 192; use a "
                                                 r"smaller --batch-size"):
        sweep.run_sweep(tmp_path / "r.jsonl", grid, runner=runner, progress=False)


def test_13_a_dry_run_says_how_long_what_is_left_takes(tmp_path, capsys):
    from lecture_utils.experiment import sweep

    out = tmp_path / "r.jsonl"
    assert sweep.main([*sweep_cli(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    estimate = next(line for line in lines if line.startswith("estimated time of the 1 to do on a GPU: "))
    assert "h on a Colab T4 (+-25%" in estimate and lines[-1] == f"0 of 1 done in {out}"


def test_11_gpu_check_records_and_says_a_shrunk_run(tmp_path, monkeypatch):
    import json

    from lecture_utils.experiment import gpucheck

    monkeypatch.setenv("LECTURE_FULL_SHRINK", "2,1")
    said = []
    report = gpucheck.gpu_check(["07"], steps=2, device="cpu", out=tmp_path / "g.json", with_plan=False,
                                say=said.append)
    assert report["full_shrink"] == "2,1" and json.loads((tmp_path / "g.json").read_text())["full_shrink"] == "2,1"
    assert any("LECTURE_FULL_SHRINK=2,1 is set" in line and "shrunk run" in line for line in said)
