"""The course's ``ModelTrainer`` (one epoch of training or evaluation) and a ``fit`` loop around it.

``ModelTrainer(epoch_step, device, BC_mode, aux)`` keeps the course's names and return values:
``model_train`` and ``model_evaluate`` return ``(mean loss, accuracy in [0, 1])`` for one epoch.
``fit`` adds what a lesson needs around them: a history, progress bars, checkpoints bounded in time
(and resuming from one), and a clear stop on a non-finite loss.

:func:`train` is the one way the series trains a network with a recipe: the lessons
(``LessonSettings.train``), the sweep's runner, ``bench gpu-check`` and the tests all call it, so a test
of it tests what the lessons run. :func:`evaluate` measures a network once on a loader.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lecture_utils._util import (CHECKPOINT_INTERVAL_S, check_writable_file, positive_int, resolve_device,
                                 seed_everything)
from lecture_utils.checkpoint import (checkpoint_exists, checkpoint_lock, load_checkpoint, run_description,
                                      save_checkpoint)
from lecture_utils.device import choose_precision

# seed_everything and resolve_device are re-exported: the lessons import them with ModelTrainer
__all__ = ["ModelTrainer", "History", "NonFiniteLossError", "train", "evaluate", "cudnn_autotune",
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
        # filled by fit: the wall seconds of each training phase, evaluation and checkpoint this call ran (an
        # epoch resumed from a checkpoint has none), and the precision it trained in
        self.seconds: dict[str, list[float]] = {"train": [], "val": [], "checkpoint": []}
        self.precision = "fp32"

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


@dataclass(frozen=True)
class _Plan:
    """What one ``fit`` call was asked to do, beside the model, loaders, criterion and optimizer."""

    epochs: int
    checkpoint: Path | None
    progress: bool
    resume: bool
    checkpoint_interval: float
    scheduler: Any
    scheduler_per: str
    eval_criterion: nn.Module | None


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
            checkpoint: str | Path | None = None, progress: bool = True,
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
        plan = _Plan(int(epochs), None if checkpoint is None else Path(checkpoint), bool(progress), bool(resume),
                     float(checkpoint_interval), scheduler, scheduler_per,
                     criterion if eval_criterion is None else eval_criterion)
        with cudnn_autotune(self.device), checkpoint_lock(plan.checkpoint):
            return self._fit(model, train_loader, val_loader, criterion, optimizer, plan)

    def _fit(self, model: nn.Module, train_loader: Iterable, val_loader: Iterable, criterion: nn.Module | None,
             optimizer: torch.optim.Optimizer, plan: _Plan) -> History:
        history, start = History(), 0
        run = run_description(plan.epochs, train_loader, val_loader)
        if plan.checkpoint is not None and plan.resume and checkpoint_exists(plan.checkpoint):
            self._prepare(model)  # the optimizer's state follows its parameters' device
            start, saved = load_checkpoint(plan.checkpoint, model, optimizer, plan.scheduler, scaler=self.scaler,
                                           run=run)
            history = History(saved)
            print(f"resuming from {plan.checkpoint.name}: {start} epoch(s) done")
        if plan.checkpoint is not None and start < plan.epochs:
            check_writable_file(plan.checkpoint, "checkpoint")  # before an epoch is spent, not after
        history.precision = self.precision
        saved_epochs, last_save = start, time.perf_counter()
        for epoch in range(start, plan.epochs):
            try:
                self._epoch(model, train_loader, val_loader, criterion, optimizer, epoch, plan, history)
            except NonFiniteLossError as exc:
                if plan.checkpoint is not None and checkpoint_exists(plan.checkpoint):
                    raise NonFiniteLossError(f"{exc} The last good checkpoint ({saved_epochs} epoch(s) done) "
                                             f"is kept in {plan.checkpoint}.") from None
                raise
            due = time.perf_counter() - last_save >= plan.checkpoint_interval or epoch + 1 == plan.epochs
            if plan.checkpoint is not None and due:
                started = time.perf_counter()
                save_checkpoint(plan.checkpoint, model, optimizer, plan.scheduler, history.epochs, history.to_dict(),
                                scaler=self.scaler, run=run)
                history.seconds["checkpoint"].append(time.perf_counter() - started)
                saved_epochs, last_save = history.epochs, time.perf_counter()
        return history

    def _epoch(self, model: nn.Module, train_loader: Iterable, val_loader: Iterable, criterion: nn.Module | None,
               optimizer: torch.optim.Optimizer, epoch: int, plan: _Plan, history: History) -> None:
        """One epoch of `plan`: train, evaluate, step an epoch scheduler, append to `history` with its times."""
        self._bar = _epoch_bar(epoch, plan.epochs, train_loader, val_loader) if plan.progress else None
        try:
            started = time.perf_counter()
            train_loss, train_acc = self.model_train(
                model, train_loader, criterion, optimizer, epoch,
                scheduler=plan.scheduler if plan.scheduler_per == "batch" else None)
            trained = time.perf_counter()
            val_loss, val_acc = self.model_evaluate(model, val_loader, plan.eval_criterion, epoch)
            history.seconds["train"].append(trained - started)
            history.seconds["val"].append(time.perf_counter() - trained)
        finally:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
        if plan.scheduler is not None and plan.scheduler_per == "epoch":
            plan.scheduler.step()
        history.append(train_loss, train_acc, val_loss, val_acc)

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


def train(model: nn.Module, recipe: Any, train_loader: Iterable, val_loader: Iterable, epochs: int, *,
          device: str | torch.device | None = None, aux: bool | None = None, checkpoint: str | Path | None = None,
          progress: bool = True, epoch_step: int = 1, checkpoint_interval: float = CHECKPOINT_INTERVAL_S,
          precision: str | None = None) -> History:
    """Train `model` with `recipe` (a :class:`lecture_utils.recipe.Recipe`) for `epochs` epochs; its History.

    The model moves to `device` first, so the optimiser is built where its parameters are (fused on CUDA);
    the recipe's schedule steps after every batch; the training loss is the recipe's (label smoothing), the
    validation loss plain cross-entropy. `aux` (default: the model's own ``aux_logits``) adds GoogLeNet's
    auxiliary losses. ``History.seconds`` and ``History.precision`` say how long each phase took and how it
    trained. `checkpoint`, `checkpoint_interval`, `progress` and `epoch_step` are ``fit``'s.
    """
    aux = bool(getattr(model, "aux_logits", False)) if aux is None else aux
    trainer = ModelTrainer(epoch_step=epoch_step, device=device, aux=aux, precision=precision)
    trainer._prepare(model)
    optimizer, scheduler = recipe.build(model, _length(train_loader) or 1, int(epochs))
    return trainer.fit(model, train_loader, val_loader, recipe.criterion(), optimizer, epochs, checkpoint=checkpoint,
                       progress=progress, scheduler=scheduler, scheduler_per="batch",
                       eval_criterion=nn.CrossEntropyLoss(), checkpoint_interval=checkpoint_interval)


def evaluate(model: nn.Module, loader: Iterable, device: str | torch.device | None = None, epoch: int = 0,
             precision: str | None = None) -> tuple[float, float]:
    """``(cross-entropy, accuracy)`` of `model` on `loader`, in eval mode, without gradients.

    `epoch` is told to a loader whose draws depend on it (an augmented validation), as ``fit`` would.
    """
    return ModelTrainer(epoch_step=0, device=device, precision=precision).model_evaluate(
        model, loader, nn.CrossEntropyLoss(), epoch)


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


# --- progress -------------------------------------------------------------------


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
