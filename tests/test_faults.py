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
    (dict(epochs=3, onecycle=True), "epochs 1 there, 3 here"),  # a schedule spans its epochs
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
