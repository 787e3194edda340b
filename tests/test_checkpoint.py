"""lecture_utils.checkpoint: the random state travels between machines with different numbers of GPUs; a checkpoint
is written locally, then copied to a runs folder on another file system, and survives a copy that fails; a
checkpoint of another schedule is refused."""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import checkpoint
from lecture_utils._util import WriteFailed
from lecture_utils.checkpoint import CheckpointError


@pytest.fixture
def two_gpu_state(monkeypatch):
    """The random state as a machine with two visible GPUs records it (CUDA faked)."""
    saved = [torch.full((16,), 1, dtype=torch.uint8), torch.full((16,), 2, dtype=torch.uint8)]
    with monkeypatch.context() as m:
        m.setattr(torch.cuda, "is_available", lambda: True)
        m.setattr(torch.cuda, "get_rng_state_all", lambda: list(saved))
        state = checkpoint.rng_state()
    assert [int(s[0]) for s in state["cuda"]] == [1, 2]
    return state


def _machine(monkeypatch, gpus: int) -> list[tuple[int, int]]:
    """Fake a machine with `gpus` visible CUDA devices; returns the log of set_rng_state calls."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: calls.append((int(state[0]), device)))
    return calls


def test_a_two_gpu_checkpoint_resumes_on_one_gpu_with_the_first_devices_state(two_gpu_state, monkeypatch):
    calls = _machine(monkeypatch, 1)
    checkpoint.set_rng_state(two_gpu_state)
    assert calls == [(1, 0)]


def test_a_two_gpu_checkpoint_resumes_on_a_machine_without_cuda(two_gpu_state, monkeypatch):
    calls = _machine(monkeypatch, 0)
    checkpoint.set_rng_state(two_gpu_state)
    assert calls == []


def test_a_one_gpu_checkpoint_sets_only_the_first_of_two_gpus(monkeypatch):
    state = checkpoint.rng_state()
    state["cuda"] = [torch.full((16,), 7, dtype=torch.uint8)]
    calls = _machine(monkeypatch, 2)
    checkpoint.set_rng_state(state)
    assert calls == [(7, 0)]


def test_python_numpy_and_torch_draws_repeat_after_the_state_is_put_back():
    state = checkpoint.rng_state()
    first = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    checkpoint.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == first


# --- written on the local disk, then copied to the runs folder (Drive in Colab) -------------------


def _run(epochs_done: int, scheduler: bool = False):
    """A small model, optimizer and (optionally) a one-cycle schedule after `epochs_done` epochs of 2 steps."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=10) if scheduler else None
    for _ in range(2 * epochs_done):
        optimizer.zero_grad()
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        if sched is not None:
            sched.step()
    return model, optimizer, sched


def _save(path: Path, epochs_done: int, scheduler: bool = False) -> None:
    model, optimizer, sched = _run(epochs_done, scheduler)
    history = {"train_loss": [0.5] * epochs_done}
    checkpoint.save_checkpoint(path, model, optimizer, sched, epochs_done, history,
                               run={"epochs": 5, "batches": 2})


def _load(path: Path, scheduler: bool = False) -> int:
    model, optimizer, sched = _run(0, scheduler)
    return checkpoint.load_checkpoint(path, model, optimizer, sched, run={"epochs": 5, "batches": 2})[0]


@pytest.fixture
def drive(tmp_path, monkeypatch):
    """A runs folder on another file system than the local scratch folder (as Drive is in Colab)."""
    monkeypatch.setenv("LECTURE_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setattr(checkpoint, "same_file_system", lambda a, b: False)
    return tmp_path / "drive"


def _copy_fails(monkeypatch, err: int = errno.ENOTCONN) -> None:
    def unmounted(source, path):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(checkpoint, "atomic_copy", unmounted)


def test_a_checkpoint_for_another_file_system_arrives_there_and_leaves_no_local_copy(drive):
    path = drive / "run.pt"
    _save(path, 2)
    assert _load(path) == 2
    assert not checkpoint.local_copy(path).exists()
    assert [p.name for p in drive.iterdir()] == ["run.pt"]  # no temporary file left beside it


def test_on_one_file_system_the_checkpoint_is_written_in_place_without_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_LOCAL_DIR", str(tmp_path / "local"))
    path = tmp_path / "runs" / "run.pt"
    _save(path, 1)
    assert _load(path) == 1 and not (tmp_path / "local").exists()


def test_a_failed_copy_says_one_line_keeps_the_local_copy_and_does_not_raise(drive, monkeypatch, capsys):
    path = drive / "run.pt"
    _save(path, 1)
    before = path.read_bytes()
    _copy_fails(monkeypatch)
    _save(path, 2)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "could not copy the checkpoint of epoch 2" in err
    assert str(checkpoint.local_copy(path)) in err and "training goes on" in err
    assert path.read_bytes() == before  # the runs folder keeps its last good checkpoint
    assert checkpoint.local_copy(path).is_file()


def test_loading_prefers_the_newer_local_copy_left_by_a_failed_copy(drive, monkeypatch, capsys):
    path = drive / "run.pt"
    _save(path, 1)
    _copy_fails(monkeypatch)
    _save(path, 3)
    capsys.readouterr()
    assert _load(path) == 3
    assert checkpoint.read_checkpoint(path)["epoch"] == 3
    assert "using the local copy" in capsys.readouterr().err


def test_a_local_copy_is_found_when_no_copy_ever_reached_the_runs_folder(drive, monkeypatch):
    path = drive / "run.pt"
    _copy_fails(monkeypatch)
    _save(path, 1)
    assert not path.exists() and checkpoint.checkpoint_exists(path)
    assert _load(path) == 1


def test_the_next_successful_copy_brings_the_runs_folder_up_to_date(drive, monkeypatch):
    path = drive / "run.pt"
    with monkeypatch.context() as m:
        _copy_fails(m)
        _save(path, 1)
    _save(path, 2)
    assert not checkpoint.local_copy(path).exists()
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_a_damaged_runs_folder_copy_gives_way_to_a_readable_local_one(drive, monkeypatch):
    path = drive / "run.pt"
    _copy_fails(monkeypatch)
    _save(path, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"PK\x03\x04 cut short")  # as an interrupted upload leaves it
    assert _load(path) == 2


def test_a_damaged_checkpoint_without_a_local_copy_is_still_one_error_naming_it(drive):
    path = drive / "run.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match="truncated") as exc:
        _load(path)
    assert exc.value.path == path and "\n" not in str(exc.value)


def test_a_copy_cut_off_part_way_leaves_the_previous_checkpoint_and_no_fragment(drive, monkeypatch, capsys):
    path = drive / "run.pt"
    _save(path, 1)
    before = path.read_bytes()

    def half_then_gone(src, dst, length=0):
        dst.write(src.read(100))
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(shutil, "copyfileobj", half_then_gone)
    _save(path, 2)
    assert "could not copy" in capsys.readouterr().err
    assert path.read_bytes() == before and [p.name for p in drive.iterdir()] == ["run.pt"]
    assert _load(path) == 2  # the local copy holds the epoch the copy lost


def test_a_full_local_disk_writes_straight_to_the_runs_folder(drive, monkeypatch, capsys):
    path = drive / "run.pt"
    real_save = torch.save

    def local_disk_full(state, target):
        if Path(target).parent != path.parent:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(state, target)

    monkeypatch.setattr(checkpoint.torch, "save", local_disk_full)
    _save(path, 2)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"it is written straight to {drive} instead" in err
    assert torch.load(path, weights_only=True)["epoch"] == 2


def test_a_write_that_fails_everywhere_is_one_line_and_keeps_the_previous_checkpoint(drive, monkeypatch):
    path = drive / "run.pt"
    _save(path, 1)
    before = path.read_bytes()

    def full(state, target):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.torch, "save", full)
    with pytest.raises(WriteFailed, match=r"previous checkpoint \(1 epoch\(s\) done\) is kept; epoch 2 is lost"):
        _save(path, 2)
    assert path.read_bytes() == before


def test_remove_checkpoint_deletes_both_copies(drive, monkeypatch):
    path = drive / "run.pt"
    _save(path, 1)
    _copy_fails(monkeypatch)
    _save(path, 2)
    checkpoint.remove_checkpoint(path)
    assert not checkpoint.checkpoint_exists(path)


def test_fit_keeps_training_when_the_runs_folder_goes_away_and_resumes_from_the_local_copy(drive, monkeypatch,
                                                                                            capsys):
    from lecture_utils.trainer import ModelTrainer

    data = torch.utils.data.TensorDataset(torch.randn(16, 3), torch.arange(16) % 2)
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    path = drive / "run.pt"

    def fit(epochs):
        torch.manual_seed(0)
        model = nn.Linear(3, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        return ModelTrainer(epoch_step=0, device="cpu").fit(
            model, loader, loader, nn.CrossEntropyLoss(), optimizer, epochs, checkpoint=path, progress=False,
            checkpoint_interval=0)

    fit(1)
    _copy_fails(monkeypatch)
    assert fit(3).epochs == 3  # epochs 2 and 3 reach the local copy only
    assert capsys.readouterr().err.count("could not copy") == 2
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert fit(3).epochs == 3  # resumed from the local copy: nothing left to train
    assert "resuming from run.pt: 3 epoch(s) done" in capsys.readouterr().out


# --- a checkpoint of another schedule ----------------------------------------------------------


@pytest.mark.parametrize("saved, here, why", [
    (False, True, "no learning-rate schedule there, one here"),
    (True, False, "a learning-rate schedule there, none here"),
])
def test_a_checkpoint_with_a_schedule_on_one_side_only_is_refused_in_one_line(tmp_path, saved, here, why):
    path = tmp_path / "run.pt"
    _save(path, 1, scheduler=saved)
    with pytest.raises(CheckpointError, match=why) as exc:
        _load(path, scheduler=here)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_the_same_schedule_resumes(tmp_path):
    path = tmp_path / "run.pt"
    _save(path, 1, scheduler=True)
    assert _load(path, scheduler=True) == 1


def test_the_lock_removes_what_killed_writers_left_beside_both_copies(drive):
    path = drive / "run.pt"
    local = checkpoint.local_copy(path)
    leftovers = [path.with_name(".run.pt.otherhost-4242.tmp"), local.with_name(f".{local.name}.otherhost-4242.tmp")]
    for leftover in leftovers:
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"x" * 100)
    with checkpoint.checkpoint_lock(path):
        assert not any(leftover.exists() for leftover in leftovers)
