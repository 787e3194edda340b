"""A training run's checkpoint: save it, load it (tensors and plain values only), say why one is unreadable.

A checkpoint holds ``epoch`` (epochs done), the ``model``'s, ``optimizer``'s and (or None)
``scheduler``'s state dicts, the ``history`` (plain lists) and the ``rng`` state of Python,
NumPy, torch and every visible CUDA device, so that a resumed run draws what the uninterrupted
one would have, and (``run``) what makes it resumable: the run's epochs, batches per epoch, batch size and
image counts, so that a run of another budget refuses it instead of resuming from it. ``ModelTrainer.fit``
writes one after an epoch (at most every ``CHECKPOINT_INTERVAL_S`` seconds, and after the last).

Where the checkpoint's folder is on another file system than the local scratch folder (``_util.local_dir``:
``$LECTURE_LOCAL_DIR``, else the system's temporary folder), as Google Drive is in Colab, the checkpoint is
written there first and then copied to its folder (through a temporary name, then renamed): a slow or failing
remote folder costs a copy, not the state. A copy that fails says so in one line and keeps the local copy,
and training goes on; loading takes the newest readable copy of the two (:func:`local_copy`).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import sys
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout
from torch import nn

from lecture_utils._util import (WriteFailed, atomic_copy, atomic_leftovers, atomic_write, local_dir,
                                 same_file_system)

__all__ = ["CheckpointError", "CheckpointInUse", "save_checkpoint", "load_checkpoint", "read_checkpoint", "rng_state",
           "set_rng_state", "run_description", "checkpoint_lock", "local_copy", "checkpoint_exists",
           "remove_checkpoint"]

KEYS = ("epoch", "model", "optimizer", "history", "rng")


class CheckpointError(ValueError):
    """A checkpoint file could not be used (damaged, empty, not written by ``fit``, or by another run).

    ``path`` and ``reason`` let a caller (the sweep) say the way out in its own words.
    """

    def __init__(self, message: str, path: Path | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


class CheckpointInUse(CheckpointError):
    """Another process holds the checkpoint's lock: it is training into that file now."""


def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    epoch: int, history: Mapping[str, list[float]], scaler: Any = None,
                    run: Mapping[str, int | None] | None = None) -> None:
    """Write the run's state after `epoch` epochs to `path` atomically (a reader never sees half a file).

    `scaler`: fp16 training's ``torch.amp.GradScaler``, whose loss scale is part of the state. `run`: what
    makes the checkpoint resumable (epochs, batches per epoch, ...), checked by :func:`load_checkpoint`.
    On another file system than the local disk it is written locally, then copied (the module's docstring);
    a failed copy is one line and keeps the local copy. A write that fails everywhere (a full disk) raises one
    ``WriteFailed`` line; the previous checkpoint stays as it was.
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
    if run is not None:
        state["run"] = dict(run)
    path = Path(path)
    local = local_copy(path)
    kept = (f"the previous checkpoint ({_epochs_in(path)} epoch(s) done) is kept" if path.is_file()
            else "no checkpoint was written")
    kept = f"{kept}; epoch {epoch} is lost"

    def write(tmp: Path) -> None:
        torch.save(state, tmp)

    if not same_file_system(local.parent, path.parent):
        try:
            atomic_write(local, write, kept=f"it is written straight to {path.parent} instead")
        except WriteFailed as exc:  # the local disk is full: straight to the destination, as on one disk
            print(str(exc).partition(". Free some space")[0], file=sys.stderr)
        else:
            try:
                atomic_copy(local, path)
            except OSError as exc:
                reason = exc.strerror or str(exc) or type(exc).__name__
                print(f"could not copy the checkpoint of epoch {epoch} to {path} ({reason}); it is kept at {local} "
                      "and training goes on (the next checkpoint tries the copy again)", file=sys.stderr)
                return
            _discard(local)  # the destination is now the newest copy: one copy's disk space, not two
            return
    atomic_write(path, write, kept=kept)
    _discard(local)  # an older local copy left by a failed copy would otherwise compete with this one


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def local_copy(path: str | Path) -> Path:
    """Where the local copy of checkpoint `path` is written before it is copied to `path` (one per destination)."""
    path = Path(path)
    try:
        where = str(path.resolve())
    except OSError:  # a folder that went away (Drive unmounted)
        where = str(path.absolute())
    digest = hashlib.sha1(where.encode()).hexdigest()[:12]
    return local_dir() / "checkpoints" / f"{digest}-{path.name}"


def checkpoint_exists(path: str | Path) -> bool:
    """Whether checkpoint `path` or its local copy (left by a copy that failed) is there to resume from."""
    return Path(path).is_file() or local_copy(path).is_file()


def remove_checkpoint(path: str | Path) -> None:
    """Delete checkpoint `path`, its local copy and what killed writers of either left (a finished run's)."""
    path = Path(path)
    local = local_copy(path)
    for leftover in (path, local, *atomic_leftovers(path), *atomic_leftovers(local)):
        _discard(leftover)


def _epochs_in(path: Path) -> str:
    try:  # mapped, not read: the count costs a few kilobytes of a 1.6 GB checkpoint on a slow folder
        return str(int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"]))
    except Exception:  # the count is only for the message
        return "?"


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any = None, scaler: Any = None,
                    run: Mapping[str, int | None] | None = None) -> tuple[int, dict[str, list[float]]]:
    """Restore model, optimizer, scheduler and random state from `path`; returns (epochs done, history).

    Of `path` and its local copy, the newest one that can be read (and, with `run`, that this run may resume)
    is used. Move the model to its device first: the optimizer's state follows its parameters' device. With
    `run` (what this run is: epochs, batches per epoch, ...), a checkpoint written by another run is refused
    (CheckpointError) before anything is changed.
    """
    path, state = _newest(Path(path), KEYS, run, scheduler)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:  # torch lists every mismatched tensor; its first line says enough
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        reason = f"it holds another network's weights ({first})"
        raise CheckpointError(_unreadable_message(path, reason, "use"), path, reason) from None
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler") is not None:
        scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return int(state["epoch"]), state["history"]


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = KEYS) -> dict[str, Any]:
    """``torch.load`` (tensors and plain values only) of a checkpoint that must hold `keys`: the newest
    readable of `path` and its local copy.

    Whatever goes wrong becomes one CheckpointError that names the file and the ways out.
    """
    return _newest(Path(path), keys)[1]


def _newest(path: Path, keys: tuple[str, ...], run: Mapping[str, int | None] | None = None,
            scheduler: Any = None) -> tuple[Path, dict[str, Any]]:
    """The newest (most epochs, then latest written) copy of checkpoint `path` that can be read and, with `run`,
    resumed; if none can, the error of `path` itself (of its local copy when `path` is missing)."""
    local = local_copy(path)
    copies = [path, local] if local.is_file() else [path]  # usually one: a local copy outlives only a failed copy
    found, errors = [], []
    for copy in copies:
        if copy is local and path.is_file() and found and local.stat().st_mtime <= path.stat().st_mtime:
            break  # older than a good destination: not worth reading a second checkpoint
        if copy is path and not path.is_file() and len(copies) > 1:
            continue
        try:
            state = _read_one(copy, keys)
            if run is not None:
                _check_run(copy, state, run, scheduler)
        except CheckpointError as exc:
            errors.append(exc)
            continue
        found.append((int(state.get("epoch", -1)), _mtime(copy), copy, state))
    if not found:
        raise errors[0]
    _, _, chosen, state = max(found, key=lambda item: item[:2])
    if chosen == local:
        other = f"{path} is older" if path.is_file() else f"{path} is missing"
        if errors:
            other = f"{path} cannot be used: {errors[0].reason}"
        print(f"using the local copy {local} of the checkpoint ({other})", file=sys.stderr)
    return chosen, state


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _read_one(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, KeyError...
        reason = _unreadable_reason(path, exc)
        raise CheckpointError(_unreadable_message(path, reason), path, reason) from None
    if not isinstance(state, dict) or any(k not in state for k in keys):
        found = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        reason = f"it is not a checkpoint written by fit (needs the keys {list(keys)}, found {found})"
        raise CheckpointError(_unreadable_message(path, reason), path, reason)
    return state


# the state a learning-rate schedule keeps of its length (OneCycleLR, CosineAnnealingLR, LinearLR and kin)
_SCHEDULE_LENGTH = ("total_steps", "T_max", "total_iters")


def _check_run(path: Path, state: Mapping[str, Any], run: Mapping[str, int | None], scheduler: Any = None) -> None:
    """Refuse a checkpoint that another run wrote: other batches per epoch, batch size, image counts, schedule
    length or a schedule on one side only, or more epochs done than this run has.

    Fewer epochs asked than the schedule spans is a run stopped early, and more epochs without a schedule continue
    it, so the epochs are compared only through the schedule. A checkpoint written before ``run`` was stored is
    checked on what it holds: its optimizer's step count against its epochs x this run's batches per epoch.
    """
    saved = state.get("run")
    done, epochs, batches = int(state["epoch"]), run.get("epochs"), run.get("batches")
    differ = []
    if epochs is not None and done > epochs:
        differ.append(f"{done} epochs done there, {epochs} planned here")
    if isinstance(saved, Mapping):
        differ += [f"{k} {saved[k]} there, {run[k]} here" for k in run if k != "epochs"
                   and saved.get(k) is not None and run[k] is not None and saved[k] != run[k]]
    else:
        steps = _optimizer_steps(state["optimizer"])
        if batches and steps is not None and steps != done * batches:
            differ.append(f"{steps} optimizer steps in {done} epoch(s) there, {batches} batches per epoch here")
    theirs, mine = state.get("scheduler") or {}, scheduler.state_dict() if scheduler is not None else {}
    differ += [f"a schedule of {theirs[k]} steps there, {mine[k]} here" for k in _SCHEDULE_LENGTH
               if k in theirs and k in mine and theirs[k] != mine[k]]
    if scheduler is not None and not theirs:  # its schedule would start again at step 0 at the resumed epoch
        differ.append("no learning-rate schedule there, one here")
    elif scheduler is None and theirs:  # its learning rate would stay wherever the schedule had left it
        differ.append("a learning-rate schedule there, none here")
    if differ:
        reason = "another run wrote it (" + "; ".join(differ) + ")"
        raise CheckpointError(_unreadable_message(path, reason, "use"), path, reason)


def _optimizer_steps(optimizer_state: Mapping[str, Any]) -> int | None:
    """The step count an Adam-like optimizer keeps per parameter (None if it keeps none)."""
    for param_state in (optimizer_state.get("state") or {}).values():
        step = param_state.get("step") if isinstance(param_state, Mapping) else None
        if step is not None:
            return int(step)
    return None


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


def _unreadable_message(path: Path, reason: str, verb: str = "read") -> str:
    return (f"cannot {verb} the checkpoint {path}: {reason}. Either delete it (training then starts "
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


# --- what makes a checkpoint resumable, and one writer at a time -------------------------------


def run_description(epochs: int, train_loader: Iterable, val_loader: Iterable) -> dict[str, int | None]:
    """What makes a checkpoint resumable by this run: its epochs, batches per epoch, batch size, image counts."""
    def images(loader: Iterable) -> int | None:
        try:
            return len(loader.dataset)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            return None

    batch = getattr(train_loader, "batch_size", None)
    try:
        batches = len(train_loader)  # type: ignore[arg-type]
    except TypeError:  # a generator of batches: not checked
        batches = None
    return {"epochs": int(epochs), "batches": batches,
            "batch_size": batch if isinstance(batch, int) else None,
            "train_images": images(train_loader), "val_images": images(val_loader)}


@contextlib.contextmanager
def checkpoint_lock(checkpoint: Path | None) -> Iterator[None]:
    """Hold an OS lock on `checkpoint` while fit trains into it (the kernel drops it if the process dies).

    Under the lock no other writer of the checkpoint is alive, so the temp files of killed writers are removed
    (beside the checkpoint and beside its local copy).
    """
    if checkpoint is None:
        yield
        return
    lock_path = checkpoint.with_name(f".{checkpoint.name}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=0)
        lock.acquire()
    except Timeout:
        raise CheckpointInUse(f"another process is training into the checkpoint {checkpoint} now (it holds "
                              f"{lock_path}); wait for it to finish, or give this run another checkpoint",
                              checkpoint, "another process is training into it now") from None
    except OSError:  # a folder that cannot be written: check_writable_file says so in one line, if it matters
        lock = None
    try:
        if lock is not None:
            for leftover in (*atomic_leftovers(checkpoint), *atomic_leftovers(local_copy(checkpoint))):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        yield
    finally:
        if lock is not None:
            lock.release()
