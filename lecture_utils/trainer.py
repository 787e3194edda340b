"""The course's ``ModelTrainer`` (one epoch of training or evaluation) and a ``fit`` loop around it.

``ModelTrainer(epoch_step, device, BC_mode, aux)`` keeps the course's names and return values:
``model_train`` and ``model_evaluate`` return ``(mean loss, accuracy in [0, 1])`` for one epoch.
``fit`` adds what a lesson needs around them: a history, progress bars, an optional live plot,
a checkpoint after every epoch (and resuming from it), and a clear stop on a non-finite loss.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lecture_utils._util import (CHECKPOINT_INTERVAL_S, check_writable_file, positive_int, resolve_device,
                                 seed_everything)
from lecture_utils.checkpoint import checkpoint_lock, load_checkpoint, read_checkpoint, run_description, save_checkpoint
from lecture_utils.device import choose_precision

# seed_everything and resolve_device are re-exported: the lessons import them with ModelTrainer
__all__ = ["ModelTrainer", "History", "NonFiniteLossError", "load_checkpoint_history", "cudnn_autotune",
           "seed_everything", "resolve_device", "set_epoch"]

HISTORY_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")
AUX_WEIGHT = 0.3  # GoogLeNet: auxiliary losses are added with weight 0.3 during training
SYNC_EVERY = 16  # on CUDA, how many batches run between two reads of the loss (each read waits for the GPU)


class History(dict):
    """Per-epoch ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` lists (accuracy in [0, 1])."""

    def __init__(self, data: dict[str, list[float]] | None = None) -> None:
        super().__init__({k: [] for k in HISTORY_KEYS})
        for key, values in (data or {}).items():
            self[key] = [float(v) for v in values]

    @property
    def epochs(self) -> int:
        """Number of completed epochs."""
        return len(self["train_loss"])

    def append(self, train_loss: float, train_acc: float, val_loss: float, val_acc: float) -> None:
        """Record one epoch."""
        for key, value in zip(HISTORY_KEYS, (train_loss, train_acc, val_loss, val_acc)):
            self[key].append(float(value))

    def to_dict(self) -> dict[str, list[float]]:
        """A plain ``dict`` of lists (for JSON or ``torch.save``)."""
        return {k: list(v) for k, v in self.items()}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class ModelTrainer:
    """Train and evaluate one epoch at a time, as in the course.

    ``epoch_step`` (the course's name): print a line of loss and accuracy after the first epoch and
    after every ``epoch_step``-th one (2: epochs 1, 2, 4, 6, ...; 0: no lines).
    ``BC_mode``: binary classification with one logit (BCEWithLogitsLoss, threshold at 0).
    ``aux``: the model returns ``(main, aux1, aux2, ...)`` in training; loss = main + 0.3 * sum(aux).
    ``channels_last`` and ``amp`` (mixed precision where the device has it: bf16 from compute capability
    8.0, fp16 with a GradScaler below, see :mod:`lecture_utils.device`; ``precision`` forces one) are the
    training step's speed settings.
    """

    def __init__(self, epoch_step: int = 2, device: str | torch.device | None = None,
                 BC_mode: bool = False, aux: bool = False, channels_last: bool = True,
                 amp: bool = True, precision: str | None = None) -> None:
        self.epoch_step = positive_int(epoch_step, "epoch_step (0: no per-epoch lines)", minimum=0)
        self.device = resolve_device(device)
        self.BC_mode = bool(BC_mode)
        self.aux = bool(aux)
        self.train_seconds: list[float] = []  # filled by fit
        self.channels_last = bool(channels_last)
        # bf16 or fp16 autocast by the GPU's compute capability, fp32 on the CPU (lecture_utils.device);
        # amp=False or precision="fp32" trains in float32 everywhere
        self.precision = choose_precision(self.device, precision if amp else "fp32")
        self.amp = self.precision != "fp32"
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        # fp16's range is narrow: scale the loss so that small gradients do not underflow
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.sync_every = SYNC_EVERY if self.device.type == "cuda" else 1  # batches between two reads of the loss
        self._bar: Any = None  # fit's per-epoch progress bar, shared by train and val

    # --- the course's API ------------------------------------------------------------------

    def model_train(self, model: nn.Module, loader: Iterable, criterion: nn.Module | None,
                    optimizer: torch.optim.Optimizer, epoch: int, *, progress: bool = False,
                    scheduler: Any = None) -> tuple[float, float]:
        """Train `model` for one epoch; returns (mean loss, accuracy). `epoch` counts from 0.

        A loader with ``set_epoch`` (or a sampler with one) is told `epoch` first, so that epoch's
        order and augmentation depend on the epoch only (and a resumed run sees the same batches).
        `scheduler` (e.g. OneCycleLR) steps after every optimizer step.
        """
        set_epoch(loader, epoch)
        model.train()
        loss, acc = self._run_epoch(model, loader, criterion, optimizer, epoch, progress, scheduler)
        self._report(epoch, "train", loss, acc)
        return loss, acc

    def model_evaluate(self, model: nn.Module, loader: Iterable, criterion: nn.Module | None,
                       epoch: int, *, progress: bool = False) -> tuple[float, float]:
        """Evaluate `model` (eval mode, no gradients); returns (mean loss, accuracy)."""
        set_epoch(loader, epoch)
        model.eval()
        with torch.no_grad():
            loss, acc = self._run_epoch(model, loader, criterion, None, epoch, progress)
        self._report(epoch, "val", loss, acc)
        return loss, acc

    # --- fit --------------------------------------------------------------------------------

    def fit(self, model: nn.Module, train_loader: Iterable, val_loader: Iterable,
            criterion: nn.Module | None, optimizer: torch.optim.Optimizer, epochs: int,
            checkpoint: str | Path | None = None, live_plot: bool = False, progress: bool = True,
            *, scheduler: Any = None, scheduler_per: str = "epoch", eval_criterion: nn.Module | None = None,
            resume: bool = True, checkpoint_interval: float = CHECKPOINT_INTERVAL_S) -> History:
        """Train for `epochs` epochs, evaluating after each; returns the History.

        With `checkpoint`, state is saved there after an epoch when `checkpoint_interval` seconds have passed
        since the last save (0: after every epoch) and always after the last epoch, and, if the file already exists
        (and ``resume``), training continues from it; a checkpoint of another run (other epochs, batches
        per epoch, batch size or image counts) is refused with a CheckpointError, and while fit runs it
        holds a lock on the checkpoint (a second process gets CheckpointInUse). A non-finite loss raises
        NonFiniteLossError.
        `scheduler` steps after every epoch (``scheduler_per="epoch"``) or after every batch ("batch").
        `eval_criterion` (default: `criterion`) measures the validation loss, e.g. without label smoothing.
        On CUDA, ``cudnn.benchmark`` is on while fit runs (see :func:`cudnn_autotune`).
        """
        if int(epochs) != epochs or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if scheduler_per not in ("epoch", "batch"):
            raise ValueError(f"scheduler_per must be 'epoch' or 'batch', got {scheduler_per!r}")
        if not checkpoint_interval >= 0:
            raise ValueError(f"checkpoint_interval must be >= 0 seconds, got {checkpoint_interval!r}")
        checkpoint = None if checkpoint is None else Path(checkpoint)
        self.checkpoint_interval = float(checkpoint_interval)
        with cudnn_autotune(self.device), checkpoint_lock(checkpoint):
            return self._fit(model, train_loader, val_loader, criterion, optimizer, int(epochs),
                             checkpoint, live_plot, progress, scheduler,
                             scheduler_per, criterion if eval_criterion is None else eval_criterion, resume)

    def _fit(self, model: nn.Module, train_loader: Iterable, val_loader: Iterable, criterion: nn.Module | None,
             optimizer: torch.optim.Optimizer, epochs: int, checkpoint: Path | None, live_plot: bool,
             progress: bool, scheduler: Any, scheduler_per: str, eval_criterion: nn.Module | None,
             resume: bool) -> History:
        history = History()
        start = 0
        run = run_description(epochs, train_loader, val_loader)
        if checkpoint is not None and resume and checkpoint.is_file():
            self._prepare(model)  # the optimizer's state follows its parameters' device
            start, saved = load_checkpoint(checkpoint, model, optimizer, scheduler, scaler=self.scaler, run=run)
            history = History(saved)
            print(f"resuming from {checkpoint.name}: {start} epoch(s) done")
        if checkpoint is not None and start < int(epochs):
            check_writable_file(checkpoint, "checkpoint")  # before an epoch is spent, not after
        plot = _LivePlot() if live_plot else None
        saved_epochs, last_save = start, time.perf_counter()
        self.train_seconds = []  # wall time of each training phase this call ran (not of resumed epochs)
        for epoch in range(start, int(epochs)):
            self._bar = _epoch_bar(epoch, int(epochs), train_loader, val_loader) if progress else None
            try:
                try:
                    started = time.perf_counter()
                    train_loss, train_acc = self.model_train(
                        model, train_loader, criterion, optimizer, epoch,
                        scheduler=scheduler if scheduler_per == "batch" else None)
                    self.train_seconds.append(time.perf_counter() - started)
                except NonFiniteLossError as exc:
                    if checkpoint is not None and checkpoint.is_file():
                        raise NonFiniteLossError(
                            f"{exc} The last good checkpoint ({saved_epochs} epoch(s) done) is kept in "
                            f"{checkpoint}.") from None
                    raise
                val_loss, val_acc = self.model_evaluate(model, val_loader, eval_criterion, epoch)
            finally:
                if self._bar is not None:
                    self._bar.close()
                self._bar = None
            if scheduler is not None and scheduler_per == "epoch":
                scheduler.step()
            history.append(train_loss, train_acc, val_loss, val_acc)
            due = time.perf_counter() - last_save >= self.checkpoint_interval or epoch + 1 == int(epochs)
            if checkpoint is not None and due:
                save_checkpoint(checkpoint, model, optimizer, scheduler, history.epochs, history.to_dict(),
                                scaler=self.scaler, run=run)
                saved_epochs, last_save = history.epochs, time.perf_counter()
            if plot is not None:
                plot.update(history)
        return history

    # --- internals --------------------------------------------------------------------------

    def _report(self, epoch: int, phase: str, loss: float, acc: float) -> None:
        if self.epoch_step and (epoch == 0 or (epoch + 1) % self.epoch_step == 0):
            line = f"epoch {epoch + 1:03d}, {phase:<5} [loss: {loss:.3f}, acc: {acc * 100:.2f}%]"
            if self._bar is not None:
                self._bar.write(line)  # keeps the progress bar intact in a terminal
            else:
                print(line)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is not None:
            return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _prepare(self, model: nn.Module) -> None:
        # Idempotent: parameters keep their identity, so an optimizer built earlier still works.
        if self.channels_last:
            model.to(self.device, memory_format=torch.channels_last)
        else:
            model.to(self.device)

    def _to_device(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.device, non_blocking=True)

    def _loss_and_correct(self, outputs: Any, y: torch.Tensor, criterion: nn.Module,
                          training: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(outputs, (tuple, list)):
            if not self.aux:
                raise ValueError("the model returned several outputs; use ModelTrainer(aux=True) "
                                 "for a model with auxiliary classifiers")
            main, extra = outputs[0], list(outputs[1:])
        else:
            main, extra = outputs, []
        if self.BC_mode:
            target = y.float().view_as(main)
            main_loss = criterion(main.float(), target)
            aux_losses = [criterion(a.float(), y.float().view_as(a)) for a in extra]
            correct = ((main > 0).long() == target.long()).sum()
        else:
            main_loss = criterion(main.float(), y)
            aux_losses = [criterion(a.float(), y) for a in extra]
            correct = (main.argmax(dim=1) == y).sum()
        loss = main_loss
        if training and aux_losses:
            loss = main_loss + AUX_WEIGHT * sum(aux_losses)
        return loss, correct

    def _run_epoch(self, model: nn.Module, loader: Iterable, criterion: nn.Module | None,
                   optimizer: torch.optim.Optimizer | None, epoch: int, progress: bool,
                   scheduler: Any = None) -> tuple[float, float]:
        if criterion is None:
            criterion = nn.BCEWithLogitsLoss() if self.BC_mode else nn.CrossEntropyLoss()
        training = optimizer is not None
        self._prepare(model)
        own_bar = _batch_bar(loader, epoch, "train" if training else "val") if progress and self._bar is None else None
        bar = own_bar if own_bar is not None else self._bar
        # Sums stay on the device: reading a CUDA value (.item()) waits for the GPU, so on CUDA the loss
        # is read every `sync_every` batches (and at the end) instead of every batch.
        sync_every = self.sync_every
        total_loss = torch.zeros((), dtype=torch.float64, device=self.device)
        total_correct = torch.zeros((), dtype=torch.int64, device=self.device)
        total_seen, unchecked = 0, 0
        try:
            for batch_index, batch in enumerate(loader):
                if batch is None:  # every image of the batch was unreadable
                    continue
                x, y = self._to_device(*batch)
                if x.shape[0] == 0:
                    continue
                with self._autocast():
                    outputs = model(x)
                loss, correct = self._loss_and_correct(outputs, y, criterion, training)
                unchecked += 1
                if unchecked >= sync_every:
                    if training:  # any NaN so far makes the sum NaN
                        self._check_finite(total_loss + loss.detach(), epoch, batch_index, unchecked)
                    unchecked = 0
                if training:
                    optimizer.zero_grad(set_to_none=True)
                    if self.scaler is not None:
                        self.scaler.scale(loss).backward()
                        self.scaler.step(optimizer)
                        self.scaler.update()
                    else:
                        loss.backward()
                        optimizer.step()
                    if scheduler is not None:
                        self._step_scheduler(scheduler)
                n = x.shape[0]
                total_loss += loss.detach().double() * n
                total_correct += correct
                total_seen += n
                if bar is not None:
                    bar.update(1)
                    if unchecked == 0:  # the postfix reads the sums: only at a batch where they are read anyway
                        bar.set_postfix(phase="train" if training else "val",
                                        loss=f"{total_loss.item() / total_seen:.3f}",
                                        acc=f"{total_correct.item() / total_seen:.3f}", refresh=False)
            if training and unchecked:
                self._check_finite(total_loss, epoch, batch_index, unchecked)
        finally:
            if own_bar is not None:
                own_bar.close()
        if total_seen == 0:
            raise ValueError("the loader produced no samples")
        return total_loss.item() / total_seen, total_correct.item() / total_seen

    def _step_scheduler(self, scheduler: Any) -> None:
        """Step a per-batch scheduler after the optimizer step.

        With fp16's loss scaling, the scaler skips the optimizer step of a batch with inf gradients (often
        the first); the schedule still moves on one step, and torch's warning about that order is not shown.
        """
        if self.scaler is None:
            scheduler.step()
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            scheduler.step()

    @staticmethod
    def _check_finite(value: torch.Tensor, epoch: int, batch_index: int, batches: int) -> None:
        """Stop on a NaN or infinite loss (`value` covers the last `batches` batches up to `batch_index`)."""
        number = float(value.item())
        if not math.isfinite(number):
            where = (f"batch {batch_index + 1}" if batches == 1
                     else f"one of batches {batch_index + 2 - batches}-{batch_index + 1}")
            stopped = "before the update" if batches == 1 else "(checked every few batches on a GPU)"
            raise NonFiniteLossError(
                f"the training loss is {number} at epoch {epoch + 1}, {where}; training stopped {stopped}. "
                "Try a lower learning rate (e.g. 10x lower), check the inputs for NaN, or turn amp off.")


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell `loader` (or its sampler, as for ``DistributedSampler``) which epoch comes next, if it asks."""
    for owner in (loader, getattr(loader, "sampler", None)):
        if callable(getattr(owner, "set_epoch", None)):
            owner.set_epoch(epoch)
            return


def load_checkpoint_history(path: str | Path) -> History:
    """The History stored in a checkpoint written by ``fit``; CheckpointError if it cannot be read."""
    return History(read_checkpoint(path, ("history",))["history"])


@contextlib.contextmanager
def cudnn_autotune(device: torch.device) -> Iterator[None]:
    """``cudnn.benchmark`` on while a run on CUDA lasts (its batches keep one shape), then as before.

    The flag is process-wide: the run that owns the process sets it (``fit``, the bench), no loader does.
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = before or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


# --- progress and live plot -------------------------------------------------------------------


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _epoch_bar(epoch: int, epochs: int, train_loader: Iterable, val_loader: Iterable) -> Any:
    n_train, n_val = _length(train_loader), _length(val_loader)
    total = n_train + n_val if n_train is not None and n_val is not None else None
    return _progress(total, f"epoch {epoch + 1}/{epochs}")


def _batch_bar(loader: Iterable, epoch: int, phase: str) -> Any:
    return _progress(_length(loader), f"epoch {epoch + 1} {phase}")


def _progress(total: int | None, desc: str) -> Any:
    """A progress bar: in a notebook one text line redrawn in place (its last state is what a saved
    notebook shows), elsewhere tqdm's terminal bar, cleared when done."""
    if _in_notebook():
        return _NotebookBar(total, desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False)


class _NotebookBar:
    """The few calls the trainer makes on a tqdm bar, drawn as plain text in one updatable output.

    tqdm's notebook widget stores only its first state ("0%") in a saved notebook, so a reader who does
    not run the lesson sees training that never started; this line ends showing what happened.
    """

    interval = 0.5  # seconds between redraws

    def __init__(self, total: int | None, desc: str) -> None:
        from IPython.display import display

        self.total, self.desc, self.n = total, desc, 0
        self.postfix: dict[str, str] = {}
        self.started = self.drawn = time.perf_counter()
        self.handle = display(self._text(), display_id=True)

    def _text(self) -> Any:
        from IPython.display import Pretty
        from tqdm import tqdm

        postfix = ", ".join(f"{k}={v}" for k, v in self.postfix.items()) or None
        return Pretty(tqdm.format_meter(self.n, self.total, time.perf_counter() - self.started,
                                        ncols=100, prefix=self.desc, unit="batch", postfix=postfix))

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.drawn >= self.interval:
            self.drawn = now
            self.handle.update(self._text())

    def set_postfix(self, refresh: bool = True, **values: Any) -> None:
        self.postfix = {k: str(v) for k, v in values.items()}

    def write(self, line: str) -> None:
        print(line)

    def close(self) -> None:
        self.handle.update(self._text())


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class _LivePlot:
    """Redraws the training curves in place in a notebook; does nothing elsewhere."""

    def __init__(self) -> None:
        self.handle = None
        self.enabled = _in_notebook()

    def update(self, history: History) -> None:
        if not self.enabled:
            return
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        from lecture_utils.plots import figure_png, plot_history

        fig = plot_history(history)
        image = Image(data=figure_png(fig))
        plt.close(fig)  # the image is the only copy shown
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
