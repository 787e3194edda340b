"""The results file of a sweep: JSON Lines, one finished condition per line; its claims and locks.

Records are appended whole (one write on an O_APPEND descriptor, under a lock shared by the
workers); reading skips a cut-off last line and keeps the first record of a condition written
twice. Workers sharing a file keep their checkpoints and claims in ``<out>.ckpt/``: a claim is an
OS file lock (filelock), released by the kernel when its holder dies. No torch here: reading and
merging results needs none.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

from filelock import FileLock, Timeout

from lecture_utils import LectureWarning
from lecture_utils._util import atomic_leftovers, atomic_write, check_writable_file
from lecture_utils.conditions import Condition, condition_key, unique

__all__ = ["FORMAT_VERSION", "PartialLineWarning", "DuplicateRecordWarning", "append_record", "load_results",
           "merge_results", "write_results", "check_out_writable", "checkpoint_dir", "condition_checkpoint",
           "claim", "is_done", "append_lock", "remove_finished_checkpoints"]

FORMAT_VERSION = 3  # 2: every field of conditions.LEGACY_FIELDS (augment by name); 3: and the recipe and validation split


class PartialLineWarning(LectureWarning):
    """A results file held a line that was not a whole JSON object (an interrupted write)."""


class DuplicateRecordWarning(LectureWarning):
    """A results file held a condition more than once; only the first record of it is kept."""


def checkpoint_dir(out: str | os.PathLike) -> Path:
    """Where the workers on results file `out` keep checkpoints and claims: ``<out>.ckpt/``."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def condition_checkpoint(ckpt_dir: Path, cond: Condition) -> Path:
    """The per-epoch checkpoint of `cond` in `ckpt_dir`."""
    return ckpt_dir / f"{cond.slug()}.pt"


def append_lock(ckpt_dir: Path) -> FileLock:
    """The lock the workers take to append a line: on NFS, O_APPEND writes of two machines can overwrite each other."""
    return FileLock(str(ckpt_dir / APPEND_LOCK), timeout=120)


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` to a JSON Lines file as one whole line (one write on an O_APPEND fd, then fsync)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            # An interrupted writer may have left a partial last line: start ours on a fresh one.
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = b"\n" + line
        view = memoryview(line)
        while view:  # a regular file takes the whole line in one write; loop only for safety
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_key(record: dict) -> Any:
    """``condition_key`` of a record; a record that names no condition is its own key (so kept)."""
    try:
        return condition_key(record)
    except ValueError:
        return id(record)


def load_results(path: str | os.PathLike) -> list[dict]:
    """Read a JSON Lines results file; a missing file is empty; broken lines are skipped with a warning.

    A condition written more than once is read once (its first record), with a ``DuplicateRecordWarning``.
    """
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise ValueError(f"the results file {path} is a directory; give a file path, e.g. {path / 'results.jsonl'}")
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict):
            # the last line has no newline after it: its writer may have been stopped
            what = "a partial last line" if number == len(lines) else f"unreadable line {number}"
            warnings.warn(f"{path.name}: ignoring {what} ({len(raw)} bytes); an interrupted run leaves one, "
                          "and a rerun redoes that condition", PartialLineWarning, stacklevel=2)
            continue
        records.append(rec)
    kept = unique(records, key=_record_key)
    if len(kept) < len(records):
        warnings.warn(f"{path.name}: dropped {len(records) - len(kept)} duplicate record(s) of conditions written "
                      "more than once (kept the first record of each); rewrite the file with "
                      "`python -m lecture_utils.sweep merge`", DuplicateRecordWarning, stacklevel=2)
    return kept


def merge_results(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Results of several files in one list, each condition once (the first file that has it wins)."""
    merged: dict[tuple, dict] = {}
    for p in paths:
        if not Path(p).exists():
            raise ValueError(f"results file not found: {p}")
        for rec in load_results(p):
            merged.setdefault(condition_key(rec), rec)
    return list(merged.values())


def write_results(records: Iterable[dict], path: str | os.PathLike) -> None:
    """Write records as a JSON Lines file, replacing it atomically (temp file, fsync, rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(rec, sort_keys=True) + "\n" for rec in records)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def check_out_writable(out: str | os.PathLike) -> Path:
    """Check, before any training, that ``out`` and its checkpoint folder ``<out>.ckpt/`` can be written.

    Raises ValueError naming what is wrong (a directory, a read-only folder, ...).
    """
    out = check_writable_file(out, "results file", append=True)
    ckpt_dir = checkpoint_dir(out)
    if ckpt_dir.exists() and not ckpt_dir.is_dir():
        raise ValueError(f"{ckpt_dir} (where the sweep keeps its checkpoints) is a file; remove it "
                         "or choose another --out")
    return out


APPEND_LOCK = "append.lock"


def remove_finished_checkpoints(ckpt_dir: Path, conditions: Sequence[Condition], done: set) -> None:
    """Delete what a kill between "line written" and "checkpoint deleted" may have left behind,
    and the claim files of finished conditions (a worker that claims one of those finds it done)."""
    if not ckpt_dir.is_dir():
        return
    for cond in conditions:
        if cond.key in done:
            checkpoint = condition_checkpoint(ckpt_dir, cond)
            # the lock fit held on the checkpoint: its condition is done, so no one trains into it again
            fit_lock = checkpoint.with_name(f".{checkpoint.name}.lock")
            for leftover in [checkpoint, fit_lock, *atomic_leftovers(checkpoint)]:
                leftover.unlink(missing_ok=True)
            _claim_path(ckpt_dir, cond).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another worker may have put a file there meanwhile
        left = [p.name for p in ckpt_dir.iterdir()]
        if left == [APPEND_LOCK]:  # no claim left, so no worker is about to append
            (ckpt_dir / APPEND_LOCK).unlink()
            left = []
        if not left:
            ckpt_dir.rmdir()


def _claim_path(ckpt_dir: Path, cond: Condition) -> Path:
    return ckpt_dir / f"{cond.slug()}.lock"


def claim(ckpt_dir: Path, cond: Condition) -> Any:
    """Take the condition's lock without waiting: the held ``filelock.FileLock``, or None if another worker holds it.

    An OS lock (flock): the kernel releases it when its holder dies, so a dead worker's claim expires by itself.
    """
    for _ in range(3):  # another worker may remove the empty folder between our mkdir and open
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(_claim_path(ckpt_dir, cond)), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None
        except FileNotFoundError:
            continue
        return lock
    raise OSError(f"cannot create the claim file {_claim_path(ckpt_dir, cond)}")


def is_done(out: Path, cond: Condition) -> bool:
    with warnings.catch_warnings():  # the first read of the file has already reported its broken lines
        warnings.simplefilter("ignore")
        return any(condition_key(r) == cond.key for r in load_results(out))
