"""Tests of lecture_utils.trainer on tiny hand-made data and models."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from lecture_utils.data import EpochSampler
from lecture_utils.checkpoint import CheckpointError, read_checkpoint
from lecture_utils.trainer import (
    History,
    ModelTrainer,
    NonFiniteLossError,
    seed_everything,
)


class FixedLogits(nn.Module):
    """Ignores its input and returns the same logits for every sample."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(x.shape[0], -1)


class WithAux(nn.Module):
    """Returns (main, aux1, aux2) in training and main alone in evaluation, like GoogLeNet."""

    def __init__(self) -> None:
        super().__init__()
        self.main = nn.Parameter(torch.tensor([1.0, 0.0]))
        self.aux1 = nn.Parameter(torch.tensor([0.0, 0.0]))
        self.aux2 = nn.Parameter(torch.tensor([0.0, 2.0]))

    def forward(self, x: torch.Tensor):
        n = x.shape[0]
        main = self.main.expand(n, -1)
        if self.training:
            return main, self.aux1.expand(n, -1), self.aux2.expand(n, -1)
        return main


class SmallCNN(nn.Module):
    def __init__(self, num_classes: int = 3, dropout: float = 0.2) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(8, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def batches(labels: list[int], batch_size: int, size: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    y = torch.tensor(labels)
    x = torch.zeros(len(labels), 3, size, size)
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(labels), batch_size)]


def toy_loaders(seed: int = 0):
    """A learnable 3-class problem: the class sets the mean of the image."""
    g = torch.Generator().manual_seed(123)
    y = torch.arange(48) % 3
    x = torch.randn(48, 3, 6, 6, generator=g) * 0.5 + y.view(-1, 1, 1, 1).float()
    train = torch.utils.data.TensorDataset(x[:36], y[:36])
    val = torch.utils.data.TensorDataset(x[36:], y[36:])
    # shuffled by (seed, epoch): the trainer's set_epoch makes a resumed run see the same batches
    train_loader = torch.utils.data.DataLoader(train, batch_size=8, sampler=EpochSampler(len(train), seed))
    return train_loader, torch.utils.data.DataLoader(val, batch_size=8)


def run_fit(epochs: int, checkpoint=None, seed: int = 0, checkpoint_interval: float = 0.0) -> History:
    # checkpoint_interval 0: a checkpoint after every epoch, which the resume tests below rely on
    seed_everything(seed)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_loader, val_loader = toy_loaders(seed)
    trainer = ModelTrainer(epoch_step=100, device="cpu")
    return trainer.fit(model, train_loader, val_loader, nn.CrossEntropyLoss(), optimizer, epochs,
                       checkpoint=checkpoint, progress=False, checkpoint_interval=checkpoint_interval)


# --- one epoch: the course's API --------------------------------------------------------------


def test_model_train_returns_mean_loss_and_accuracy():
    # logits [1, 0]: loss log(1 + e^-1) = 0.3133 for label 0, log(1 + e) = 1.3133 for label 1;
    # 3 of 4 labels are 0 -> mean loss 0.5633, accuracy 0.75 (batches of 3 and 1: weighted by size)
    model = FixedLogits([1.0, 0.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, acc = ModelTrainer(device="cpu").model_train(model, batches([0, 1, 0, 0], 3), None, optimizer, 1)
    expected = (3 * math.log1p(math.exp(-1)) + math.log1p(math.e)) / 4
    assert loss == pytest.approx(expected, abs=1e-6)
    assert acc == 0.75


def test_model_evaluate_uses_eval_mode_and_leaves_weights_unchanged():
    model = SmallCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, acc = ModelTrainer(device="cpu").model_evaluate(model, batches([0, 1, 2, 1], 2), nn.CrossEntropyLoss(), 1)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():  # the same numbers computed directly, in eval mode, over the same batches
        pairs = list(batches([0, 1, 2, 1], 2))
        logits = torch.cat([model(x) for x, _ in pairs])
        labels = torch.cat([y for _, y in pairs])
    assert loss == pytest.approx(float(nn.functional.cross_entropy(logits, labels)), rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == labels).float().mean()))


def test_bc_mode_uses_one_logit_thresholded_at_zero():
    # one logit 0.5 for every sample: predicted 1; labels 1, 1, 0 -> accuracy 2/3
    # BCE with logit 0.5: -log(sigmoid(0.5)) = 0.4741 for label 1, -log(1 - sigmoid(0.5)) = 0.9741 for 0
    model = FixedLogits([0.5])
    trainer = ModelTrainer(device="cpu", BC_mode=True)
    loss, acc = trainer.model_evaluate(model, batches([1, 1, 0], 3), nn.BCEWithLogitsLoss(), 0)
    assert acc == pytest.approx(2 / 3)
    assert loss == pytest.approx((2 * 0.474077 + 0.974077) / 3, abs=1e-5)


def test_aux_losses_are_weighted_0_3_in_training_and_ignored_in_evaluation():
    # main [1, 0], aux1 [0, 0], aux2 [0, 2], all labels 0:
    # main log(1 + e^-1) = 0.31326, aux1 log 2 = 0.69315, aux2 log(1 + e^2) = 2.12693
    main, aux1, aux2 = math.log1p(math.exp(-1)), math.log(2), math.log1p(math.exp(2))
    model = WithAux()
    trainer = ModelTrainer(device="cpu", aux=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss, acc = trainer.model_train(model, batches([0, 0], 2), nn.CrossEntropyLoss(), optimizer, 0)
    assert loss == pytest.approx(main + 0.3 * (aux1 + aux2), abs=1e-5)
    loss, acc = trainer.model_evaluate(model, batches([0, 0], 2), nn.CrossEntropyLoss(), 0)
    assert loss == pytest.approx(main, abs=1e-5) and acc == 1.0


def test_tuple_output_without_aux_is_an_error():
    model = WithAux()
    with pytest.raises(ValueError, match="aux=True"):
        ModelTrainer(device="cpu").model_train(model, batches([0], 1), None, torch.optim.SGD(model.parameters(), lr=0), 0)


def test_a_line_is_printed_for_the_first_epoch_and_every_epoch_step(capsys):
    model = FixedLogits([0.0, 0.0])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    trainer = ModelTrainer(epoch_step=2, device="cpu")
    for epoch in range(5):
        trainer.model_train(model, batches([0, 1], 2), None, optimizer, epoch)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch 001", "epoch 002", "epoch 004"]
    assert "train [loss: 0.693, acc: 50.00%]" in lines[0]  # log 2 = 0.693; ties go to class 0


def test_inputs_reach_the_model_in_channels_last():
    seen = []

    class Probe(FixedLogits):
        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last))
            return super().forward(x)

    model = Probe([0.0, 0.0])
    ModelTrainer(device="cpu").model_evaluate(model, batches([0, 1], 2, size=5), None, 0)
    ModelTrainer(device="cpu", channels_last=False).model_evaluate(model, batches([0, 1], 2, size=5), None, 0)
    assert seen == [True, False]


def test_amp_is_only_used_on_cuda():
    assert ModelTrainer(device="cpu", amp=True).amp is False


def test_bad_epoch_step_is_rejected():
    with pytest.raises(ValueError, match="epoch_step"):
        ModelTrainer(epoch_step=-1)
    with pytest.raises(ValueError, match="epoch_step"):
        ModelTrainer(epoch_step=1.5)


def test_skips_batches_that_are_none():
    model = FixedLogits([1.0, 0.0])
    data = [None] + batches([0, 1], 2)
    loss, acc = ModelTrainer(device="cpu").model_evaluate(model, data, None, 0)
    assert acc == 0.5


# --- fit --------------------------------------------------------------------------------------


def test_seed_everything_repeats_random_draws():
    seed_everything(7)
    a = torch.rand(3), torch.randn(2)
    seed_everything(7)
    b = torch.rand(3), torch.randn(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_fit_history_has_one_entry_per_epoch_and_learns():
    history = run_fit(4)
    assert isinstance(history, History) and history.epochs == 4
    assert set(history.to_dict()) == {"train_loss", "train_acc", "val_loss", "val_acc"}
    assert all(0.0 <= a <= 1.0 for a in history["train_acc"] + history["val_acc"])
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_same_seed_gives_the_same_history_on_cpu():
    assert run_fit(2, seed=3) == run_fit(2, seed=3)


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_history(tmp_path):
    full = run_fit(3)
    path = tmp_path / "run.ckpt"
    first = run_fit(1, checkpoint=path)
    assert first.epochs == 1
    resumed = run_fit(3, checkpoint=path)  # fresh model and optimizer; state comes from the file
    assert resumed == full


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "run.ckpt"
    run_fit(2, checkpoint=path)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 2
    assert set(state) >= {"model", "optimizer", "history", "rng", "epoch"}
    assert len(state["history"]["val_acc"]) == 2


class NaNAt(nn.Module):
    """Two logits of 0, but NaN on its `at`-th training forward pass."""

    def __init__(self, at: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2))
        self.calls, self.at = 0, at

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.w.expand(x.shape[0], -1)
        return out * float("nan") if self.training and self.calls == self.at else out


def test_non_finite_loss_stops_with_epoch_batch_and_advice_and_keeps_the_checkpoint(tmp_path):
    model = NaNAt(5)  # epoch 2, batch 2 with 3 batches
    data = batches([0, 1, 0, 1, 0, 1], 2)
    path = tmp_path / "run.ckpt"
    trainer = ModelTrainer(device="cpu")
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 2.*lower learning rate.*1 epoch\(s\) done"):
        trainer.fit(model, data, data, None, torch.optim.SGD(model.parameters(), lr=0.1), 3,
                    checkpoint=path, progress=False, checkpoint_interval=0)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert torch.isfinite(model.w).all()


def test_fit_with_progress_bar_runs(capsys):
    model = FixedLogits([0.0, 0.0])
    history = ModelTrainer(device="cpu").fit(model, batches([0, 1], 1), batches([0], 1), None,
                                             torch.optim.SGD(model.parameters(), lr=0.1), 1, progress=True)
    assert history.epochs == 1
    assert "epoch 001" in capsys.readouterr().out


def test_notebook_progress_bar_ends_on_its_final_state(monkeypatch):
    # in a notebook the bar is one text output updated in place: what a saved notebook keeps is its last
    # state (every batch done), not the "0%" first frame that tqdm's widget leaves behind
    import IPython.display

    from lecture_utils import trainer as trainer_module

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    def display(obj, display_id=False):
        assert display_id
        shown.append(obj.data)
        return Handle()

    monkeypatch.setattr(trainer_module, "_in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    model = FixedLogits([0.0, 0.0])
    ModelTrainer(device="cpu", epoch_step=0).fit(model, batches([0, 1, 0], 1), batches([0], 1), None,
                                                 torch.optim.SGD(model.parameters(), lr=0.1), 2, progress=True)
    assert shown[0].startswith("epoch 1/2:") and "0/4" in shown[0]
    finals = [text for text in shown if "4/4" in text]
    assert [text.split(":")[0] for text in finals] == ["epoch 1/2", "epoch 2/2"]
    assert all("100%" in text for text in finals)


# --- a lesson-sized run -----------------------------------------------------------------------


def test_quick_profile_resnet18_learns_on_the_sample():
    # lesson 04's quick settings (sample, 32 px, batch 64, lr 1e-3), 50 images per class, 1 epoch
    import torchvision

    from lecture_utils.data import make_loaders
    from lecture_utils.recipe import COURSE
    from lecture_utils.settings import lesson_settings

    cfg = lesson_settings("04", "quick")
    seed_everything(0)
    loaders = make_loaders(cfg.dataset, [cfg.resolution], batch_size=cfg.batch_size, subset=(50, 20),
                           augment=False)
    key = f"R{cfg.resolution}"
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    trainer = ModelTrainer(device=cfg.device)
    _, before = trainer.model_evaluate(model, loaders["test"][key], None, 0)
    trainer.model_train(model, loaders["train"][key], None, torch.optim.Adam(model.parameters(), lr=COURSE.lr), 0)
    _, after = trainer.model_evaluate(model, loaders["test"][key], None, 0)
    assert after > 0.25  # chance is 0.10 with ten balanced classes
    assert after > before + 0.15


# --- damaged checkpoints and unwritable folders -------------------------------------------------


def damaged_checkpoint(tmp_path, kind: str):
    """A checkpoint file as an interrupted copy, a stray file or a failed write leaves it."""
    path = tmp_path / "run.ckpt"
    if kind == "truncated":
        run_fit(1, checkpoint=path)
        whole = path.read_bytes()
        path.write_bytes(whole[: len(whole) // 2])
    elif kind == "random":
        path.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8).numpy().tobytes())
    else:
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("kind, reason", [
    ("truncated", "it is truncated"),
    ("random", "it is not a torch checkpoint"),
    ("empty", "the file is empty"),
])
def test_damaged_checkpoint_error_names_the_file_and_the_ways_out(tmp_path, kind, reason):
    path = damaged_checkpoint(tmp_path, kind)
    for read in (lambda: run_fit(2, checkpoint=path), lambda: read_checkpoint(path, ("history",))):
        with pytest.raises(CheckpointError) as exc:
            read()
        message = str(exc.value)
        assert f"cannot read the checkpoint {path}: {reason}" in message
        assert "delete it" in message and "resume=False" in message
        assert "weights_only" not in message  # never the unsafe advice for an untrusted file


def test_a_state_dict_is_not_taken_for_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(SmallCNN().state_dict(), path)
    with pytest.raises(CheckpointError, match=r"not a checkpoint written by fit \(needs the keys"):
        run_fit(1, checkpoint=path)


def test_resume_false_trains_over_a_damaged_checkpoint(tmp_path):
    path = damaged_checkpoint(tmp_path, "empty")
    seed_everything(0)
    model = SmallCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train_loader, val_loader = toy_loaders(0)
    history = ModelTrainer(device="cpu").fit(model, train_loader, val_loader, None, optimizer, 1,
                                             checkpoint=path, progress=False, resume=False)
    assert history.epochs == 1 and History(read_checkpoint(path, ("history",))["history"]).epochs == 1


class NeverIterated:
    """A loader that fails the test if an epoch starts."""

    def __iter__(self):
        raise AssertionError("an epoch was started")


def fit_to(checkpoint) -> None:
    model = SmallCNN()
    ModelTrainer(device="cpu").fit(model, NeverIterated(), NeverIterated(), None,
                                   torch.optim.Adam(model.parameters()), 1, checkpoint=checkpoint,
                                   progress=False)


def test_checkpoint_below_a_regular_file_fails_before_the_first_epoch(tmp_path):
    (tmp_path / "runs").write_text("a file where a folder should be")
    with pytest.raises(ValueError, match=r"cannot write the checkpoint .*runs is a file, not a folder"):
        fit_to(tmp_path / "runs" / "run.ckpt")


def test_checkpoint_naming_a_directory_fails_before_the_first_epoch(tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint .* is a directory"):
        fit_to(tmp_path)


def test_checkpoint_in_a_read_only_folder_fails_before_the_first_epoch(readonly_dir):
    with pytest.raises(ValueError, match=r"cannot write the checkpoint .*Read-only file system"):
        fit_to(readonly_dir / "run.ckpt")


def test_a_finished_run_in_a_read_only_folder_is_read_back_without_writing(readonly_dir):
    import subprocess

    subprocess.run(["mount", "-o", "remount,rw", str(readonly_dir)], check=True)
    done = run_fit(2, checkpoint=readonly_dir / "run.ckpt")
    subprocess.run(["mount", "-o", "remount,ro", str(readonly_dir)], check=True)
    assert run_fit(2, checkpoint=readonly_dir / "run.ckpt") == done  # nothing left to train or save
def test_checkpoint_temp_file_is_named_after_this_process(tmp_path, monkeypatch):
    import os
    import socket

    renames = []
    real_replace = os.replace

    def recording_replace(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", recording_replace)
    run_fit(2, checkpoint=tmp_path / "run.ckpt")
    # two processes saving the same checkpoint must never rename each other's temp file
    expected = f".run.ckpt.{socket.gethostname()}-{os.getpid()}.tmp"
    assert renames == [(expected, "run.ckpt")] * 2
    # no temp file left; the lock fit held while it trained stays (removing a lock file races its next taker)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.ckpt.lock", "run.ckpt"]


def test_loss_checked_every_few_batches_still_stops_on_nan():
    # on a GPU the loss is read every `sync_every` batches: a NaN in between is still caught, at the next read
    model = NaNAt(2)
    trainer = ModelTrainer(device="cpu")
    trainer.sync_every = 3
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, one of batches 1-3"):
        trainer.model_train(model, batches([0, 1, 0, 1, 0, 1], 1), None,
                            torch.optim.SGD(model.parameters(), lr=0.1), 0)
    assert model.calls == 3  # stopped at the first read after the NaN


def test_deferred_reads_give_the_same_loss_and_accuracy():
    def run(sync_every):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        trainer = ModelTrainer(device="cpu")
        trainer.sync_every = sync_every
        data = [(torch.randn(5, 4, generator=torch.Generator().manual_seed(i)), torch.tensor([0, 1, 1, 0, 1]))
                for i in range(7)]
        return trainer.model_train(model, data, None, torch.optim.SGD(model.parameters(), lr=0.1), 0)

    assert run(1) == run(4)


def test_checkpoints_are_written_by_time_and_after_the_last_epoch(tmp_path, monkeypatch):
    from lecture_utils import trainer as trainer_module

    written = []
    real_save = trainer_module.save_checkpoint

    def counting_save(path, model, optimizer, scheduler, epochs, *args, **kwargs):
        written.append(epochs)
        return real_save(path, model, optimizer, scheduler, epochs, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_checkpoint", counting_save)
    run_fit(3, checkpoint=tmp_path / "every.ckpt", checkpoint_interval=0)
    assert written == [1, 2, 3]  # 0: after every epoch
    written.clear()
    run_fit(3, checkpoint=tmp_path / "seldom.ckpt", checkpoint_interval=3600)
    assert written == [3]  # epochs far shorter than the interval: only the last one is written
    assert torch.load(tmp_path / "seldom.ckpt", weights_only=True)["epoch"] == 3
    assert trainer_module.CHECKPOINT_INTERVAL_S > 0  # the lessons' default: bounded in time
    with pytest.raises(ValueError, match="checkpoint_interval must be >= 0 seconds"):
        run_fit(1, checkpoint=tmp_path / "bad.ckpt", checkpoint_interval=-1)
