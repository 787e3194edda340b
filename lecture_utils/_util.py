"""Small helpers the package shares: argument checks, device choice, seeding, safe writes, provenance.

Argument checks (:func:`positive_int`, :func:`positive_float`); the device (:func:`resolve_device`);
seeding (:func:`seed_everything`, and :func:`epoch_generator` for an epoch's shuffle and
augmentation draws); writes a reader never sees half of (:func:`atomic_write`, whose leftovers
:func:`atomic_leftovers` finds; :func:`atomic_copy`; :func:`local_dir` and :func:`same_file_system` for a
file written on the local disk first, then copied to a slow or remote folder) and :func:`check_writable_file`,
which tries out, before the first epoch, the place a checkpoint or a results file will be written (by
creating a file there: permission bits alone do not stop root, while a read-only file system or a path
through a regular file stops everyone); provenance (:func:`cpu_name`, :func:`git_commit`,
:func:`versions`). Nothing here imports torch at module level.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A checkpoint is written after an epoch once this many seconds have passed since the last one, and after
# the last epoch: an interruption loses at most about this much training plus one epoch, while short epochs
# (AlexNet's 0.68 GB and VGG16's 1.6 GB written every few seconds of GPU time) no longer cost more than they
# save. 0 writes after every epoch.
CHECKPOINT_INTERVAL_S = 120.0

__all__ = ["positive_int", "positive_float", "resolve_device", "seed_everything", "epoch_generator",
           "atomic_write", "atomic_leftovers", "check_writable_file", "cpu_name", "git_commit", "versions",
           "WriteFailed", "write_failure", "atomic_copy", "local_dir", "same_file_system"]


def positive_int(value: Any, what: str, minimum: int = 1) -> int:
    """`value` when it is an int >= `minimum` (not a bool); else a ValueError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def positive_float(value: Any, what: str) -> float:
    """`value` as a float when it is a finite number > 0; else a ValueError naming `what`."""
    try:
        number = float(value) if not isinstance(value, (bool, str)) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{what} must be a number > 0, got {value!r}")
    return number


def resolve_device(device: Any = None) -> Any:
    """`device` as a torch.device; None means CUDA when available, else the CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available; use 'cpu'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's (CPU and CUDA) random generators."""
    import numpy as np
    import torch

    if isinstance(seed, bool) or int(seed) != seed:
        raise ValueError(f"seed must be an integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # also seeds every CUDA device


def epoch_generator(seed: int, epoch: int) -> Any:
    """The torch.Generator of epoch `epoch`'s shuffle (and, cached, augmentation): a function of both only."""
    import torch

    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def _temp_name(path: Path, writer: str) -> Path:
    return path.with_name(f".{path.name}.{writer}.tmp")


class WriteFailed(OSError):
    """A file could not be written (a full disk, a read-only folder); the message names it and what was kept."""


# what torch.save's C++ writer says when the disk is full or the file cannot be opened: an OSError in all but name
_TORCH_WRITE_ERRORS = ("inline_container", "file write failed", "open file failed", "unexpected pos")


def write_failure(path: Path, exc: BaseException, kept: str | None = None) -> WriteFailed | None:
    """The one-line WriteFailed for `exc` raised while writing `path`, or None if `exc` is not a write failure.

    `kept` says what survives (default: the previous file, or that nothing was written).
    """
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc) or type(exc).__name__
    elif isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_WRITE_ERRORS):
        reason = "the write failed"
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(path.parent).free
            reason += f"; {free / 2**20:.0f} MB free on its device" + (" (full)" if free < 2**26 else "")
    else:
        return None
    if kept is None:
        kept = f"the previous {path.name} is kept" if path.exists() else "nothing was written"
    return WriteFailed(f"cannot write {path}: {reason}; {kept}. Free some space or choose a folder you can "
                       "write to, then run again")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any], kept: str | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file beside `path`, then rename it to `path`.

    The temp name is this process's own (host and pid), so two writers never rename each other's
    file, and a reader never sees half a file. A full disk or a read-only folder raises one
    :class:`WriteFailed` that names `path` and what was kept (`kept`, default: the previous file).
    """
    path = Path(path)
    tmp = _temp_name(path, f"{socket.gethostname()}-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        failure = None if isinstance(exc, WriteFailed) else write_failure(path, exc, kept)
        if failure is None:
            raise
        raise failure from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder refuses even the removal of a file it lacks
            tmp.unlink(missing_ok=True)
    return path


def atomic_leftovers(path: str | os.PathLike) -> list[Path]:
    """The temporary files that writers of `path` killed mid-write have left beside it (any host, any pid)."""
    path = Path(path)
    return sorted(path.parent.glob(_temp_name(path, "*").name))


def atomic_copy(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Copy `source` to `path` through a temporary file beside `path` (flushed to its disk, then renamed).

    A copy that fails part-way (a full disk, a network folder that went away) raises the OSError and leaves
    `path` as it was; the temporary file is removed where the folder still allows it.
    """
    source, path = Path(source), Path(path)
    tmp = _temp_name(path, f"{socket.gethostname()}-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 16 * 2**20)
            dst.flush()
            os.fsync(dst.fileno())  # the data on the disk before the name points at it
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def local_dir() -> Path:
    """Scratch folder on the local disk: ``$LECTURE_LOCAL_DIR`` when set, else ``lecture-local`` in the system's
    temporary folder. Checkpoints are written here first, then copied to the runs folder (Drive in Colab)."""
    env = os.environ.get("LECTURE_LOCAL_DIR", "").strip()
    return Path(env).expanduser() if env else Path(tempfile.gettempdir()) / "lecture-local"


def same_file_system(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether folders `a` and `b` (or their nearest existing ancestors) are on one file system (device)."""
    def device(path: Path) -> int | None:
        for folder in (path, *path.parents):
            with contextlib.suppress(OSError):
                return os.stat(folder).st_dev
        return None

    first, second = device(Path(a).absolute()), device(Path(b).absolute())
    return first is not None and first == second


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux) and core count, for a result's provenance."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def git_commit() -> str | None:
    """The checkout's commit (``+dirty`` when the package's code has local changes), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def versions() -> dict[str, str]:
    """Python's, this package's, torch's and torchvision's versions (those already imported)."""
    import lecture_utils

    out = {"python": platform.python_version(), "lecture_utils": lecture_utils.__version__}
    for mod in ("torch", "torchvision"):
        if mod in sys.modules:
            out[mod] = getattr(sys.modules[mod], "__version__", "?")
    return out


def _blocking_file(path: Path) -> Path | None:
    """The first ancestor of `path` that exists but is not a folder (so nothing can go below it)."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return None


def check_writable_file(path: str | os.PathLike, what: str = "file", append: bool = False) -> Path:
    """Check that `path` can be written as a file; raise ValueError naming the problem if not.

    Creates the file's folder (as the writer would) and a probe file in it, removed at once;
    with ``append``, an existing file must also open for appending. Returns `path` as a Path.
    """
    path = Path(path)
    if path.is_dir():
        example = path / ("results.jsonl" if "result" in what else "checkpoint.pt")
        raise ValueError(f"the {what} {path} is a directory; give a file path, e.g. {example}")
    blocker = _blocking_file(path)
    if blocker is not None:
        raise ValueError(f"cannot write the {what} {path}: {blocker} is a file, not a folder; "
                         "choose a path in a folder")
    if path.exists() and not path.is_file():
        raise ValueError(f"the {what} {path} exists but is not a regular file; choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
        if append and path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = exc.filename if exc.filename and not str(exc.filename).endswith(".probe") else path.parent
        raise ValueError(f"cannot write the {what} {path}: {reason} ({where}); "
                         "choose a folder you can write to") from None
    return path
