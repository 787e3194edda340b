"""A training run's checkpoint: save it, load it (tensors and plain values only), say why one is unreadable.

A checkpoint holds ``epoch`` (epochs done), the ``model``'s, ``optimizer``'s and (or None)
``scheduler``'s state dicts, the ``history`` (plain lists) and the ``rng`` state of Python,
NumPy, torch and every visible CUDA device, so that a resumed run draws what the uninterrupted
one would have. ``ModelTrainer.fit`` writes one after every epoch.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lecture_utils._util import atomic_write

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint", "rng_state",
           "set_rng_state"]

KEYS = ("epoch", "model", "optimizer", "history", "rng")


class CheckpointError(ValueError):
    """A checkpoint file could not be read (damaged, empty, or not written by ``fit``)."""


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    epoch: int, history: Mapping[str, list[float]], scaler: Any = None) -> None:
    """Write the run's state after `epoch` epochs to `path` atomically (a reader never sees half a file).

    `scaler`: fp16 training's ``torch.amp.GradScaler``, whose loss scale is part of the state.
    """
    state = {
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": {k: list(v) for k, v in history.items()},
        "rng": rng_state(),
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any = None, scaler: Any = None) -> tuple[int, dict[str, list[float]]]:
    """Restore model, optimizer, scheduler and random state from `path`; returns (epochs done, history).

    Move the model to its device first: the optimizer's state follows its parameters' device.
    """
    state = read_checkpoint(path, KEYS)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), state["history"]


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """``torch.load`` (tensors and plain values only) of a checkpoint that must hold `keys`.

    Whatever goes wrong becomes one CheckpointError that names the file and the ways out.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, KeyError...
        raise CheckpointError(_unreadable_message(path, _unreadable_reason(path, exc))) from None
    if not isinstance(state, dict) or any(k not in state for k in keys):
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        reason = f"it is not a checkpoint written by fit (needs the keys {list(keys)}, found {found})"
        raise CheckpointError(_unreadable_message(path, reason))
    return state


def _unreadable_reason(path: Path, exc: Exception) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        return f"it cannot be opened ({err.strerror})"
    if not head:
        return "the file is empty (0 bytes)"
    if head == b"PK\x03\x04":
        if zipfile.is_zipfile(path):
            return "it holds objects other than tensors and plain values, which are not loaded (unsafe)"
        return "it is truncated (a torch zip archive cut short, e.g. by an interrupted copy or a full disk)"
    return "it is not a torch checkpoint (unrecognised contents)"


def _unreadable_message(path: Path, reason: str) -> str:
    return (f"cannot read the checkpoint {path}: {reason}. Either delete it (training then starts "
            "again from epoch 1), or call fit(..., resume=False) to train from scratch and overwrite it.")


# --- random state (kept to tensors and plain types so that weights_only loading works) --------


def rng_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's generators, and of each visible CUDA device's."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Put back a state from :func:`rng_state`.

    The CUDA states go to the devices that both the saving and this machine have (device i gets
    state i); a run saved with two GPUs resumes on one (its first state) or on the CPU (none).
    """
    random.setstate((3, tuple(state["python"]), None))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        for device in range(min(len(cuda), torch.cuda.device_count())):
            torch.cuda.set_rng_state(cuda[device], device)
