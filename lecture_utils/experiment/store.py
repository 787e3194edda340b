"""The results file of a sweep: JSON Lines, one finished condition per line; its claims and locks.

Records are appended whole (one write on an O_APPEND descriptor, under a lock shared by the
workers; a write that fails, on a full disk, is cut back off, so no fragment stays); reading checks
each record (its format, its condition's fields, its measurements, the versions that wrote it) and
names the file and line of one it cannot use, skips a cut-off last line (saying once how to remove it:
``python -m lecture_utils.experiment.sweep repair FILE``) and keeps the first record of a condition written twice.
Merging refuses two different results of one condition unless told which to keep. Workers sharing a file
keep their checkpoints and claims in ``<out>.ckpt/``: a claim is an OS file lock (filelock), released by
the kernel when its holder dies. No torch here: reading and merging results needs none.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

from filelock import FileLock, Timeout

from lecture_utils import LectureWarning
from lecture_utils._util import atomic_write, check_writable_file, write_failure
from lecture_utils.experiment.conditions import Condition, condition_key, unique

__all__ = ["FORMAT_VERSION", "PartialLineWarning", "DuplicateRecordWarning", "ResultsError", "append_record",
           "load_results", "merge_results", "write_results", "repair_results", "check_out_writable", "checkpoint_dir",
           "condition_checkpoint", "legacy_checkpoint", "claim", "is_done", "append_lock", "remove_finished_checkpoints",
           "KEEP", "check_record"]

# 2: every field of conditions.LEGACY_FIELDS (augment by name); 3: and the recipe and validation split
# (4: and the batch size and data root; a record of format 3 or below without them has the course's batch of
# 192 or its own batch_size field, and the data set's own folder)
FORMAT_VERSION = 4
KEEP = ("first", "last")  # which of two different results of one condition merge keeps, when told


class PartialLineWarning(LectureWarning):
    """A results file held a line that was not a whole JSON object (an interrupted write)."""


class DuplicateRecordWarning(LectureWarning):
    """A results file held a condition more than once; only the first record of it is kept."""


class ResultsError(ValueError):
    """A results file holds a record that cannot be used; the message names the file, the line and the way out."""



def _decode(raw: bytes) -> Any:
    """One line of a results file as JSON, or None where it is not (a fragment, garbage, bad UTF-8)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None

def _repair_hint(path: Path) -> str:
    return (f"`python -m lecture_utils.experiment.sweep repair {path}` moves every such line to {path.name}.removed "
            "(the conditions they held are then trained again)")


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


def append_record(path: str | os.PathLike, record: dict, kept: str | None = None) -> None:
    """Append ``record`` to a JSON Lines file as one whole line (one write on an O_APPEND fd, then fsync).

    A write that fails (a full disk) is cut back off the file, which stays as it was, and raises one
    ``WriteFailed`` line naming the file and `kept` (what still holds the record's work).
    """
    path = Path(path)
    line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
    kept = kept or "nothing of the record was written"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failure(path, exc, kept) from None
    size = None
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
    except OSError as exc:
        if size is not None:
            with contextlib.suppress(OSError):  # a fragment would be read as a broken line by every later run
                os.ftruncate(fd, size)
        raise write_failure(path, exc, f"{path.name} is as it was; {kept}") from None
    finally:
        os.close(fd)


# fields a record of a finished condition holds besides its condition's: the per-epoch validation accuracy
MEASURED = ("val_acc",)
_warned: set[tuple] = set()  # (file, line, bytes, modified): each broken line is reported once per process


def _installed_major(package: str) -> int | None:
    try:
        return int(importlib.metadata.version(package).split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None


def check_record(record: Any) -> str | None:
    """Why `record` cannot be read as a finished condition (its format, fields, measurements, versions); None if
    it can."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    fmt = record.get("format", FORMAT_VERSION)
    if isinstance(fmt, bool) or not isinstance(fmt, int) or not 1 <= fmt <= FORMAT_VERSION:
        return (f"its format {fmt!r} is not one this code reads (1 to {FORMAT_VERSION}): a newer lecture_utils wrote "
                "it, or it was edited; update the code or remove the line")
    try:
        condition_key(record)
    except (ValueError, TypeError) as exc:
        return f"it names no condition ({exc})"
    for field in MEASURED:
        value = record.get(field)
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            return f"it has no {field} (a list of per-epoch numbers): it is not the record of a finished run"
    versions = record.get("versions", {})
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        return f"its versions {versions!r} are not a mapping of package to version"
    for package in ("torch", "torchvision"):
        if package in versions:
            try:
                major = int(versions[package].split(".")[0])
            except ValueError:
                return f"its {package} version {versions[package]!r} is not a version"
            installed = _installed_major(package)
            if installed is not None and major > installed + 1:
                return (f"it says {package} {versions[package]} made it, newer than any release this code knows "
                        f"(installed: {importlib.metadata.version(package)})")
    return None


def _read_lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of every readable record of `path`; a broken line is skipped and reported once,
    a record that cannot be used raises ResultsError naming file and line."""
    if path.is_dir():
        raise ValueError(f"the results file {path} is a directory; give a file path, e.g. {path / 'results.jsonl'}")
    data = path.read_bytes()
    stat = path.stat()
    lines = data.split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        rec = _decode(raw)
        if not isinstance(rec, dict):
            seen = (str(path.resolve()), number, len(raw), stat.st_mtime_ns)
            if seen not in _warned:
                _warned.add(seen)
                # the last line has no newline after it: its writer may have been stopped
                what = "a partial last line" if number == len(lines) else f"unreadable line {number}"
                warnings.warn(f"{path}: ignoring {what} ({len(raw)} bytes), which an interrupted or failed write "
                              f"leaves; a rerun redoes its condition. {_repair_hint(path)}",
                              PartialLineWarning, stacklevel=3)
            continue
        why = check_record(rec)
        if why is not None:
            raise ResultsError(f"{path} line {number}: cannot use this record: {why}. {_repair_hint(path)}")
        records.append((number, rec))
    return records


def _same_result(a: dict, b: dict) -> bool:
    """Whether two records of one condition hold the same measurements (a copy, not a second run)."""
    return all(a.get(f) == b.get(f) for f in ("val_acc", "val_loss", "train_loss", "test_acc"))


def load_results(path: str | os.PathLike) -> list[dict]:
    """Read a JSON Lines results file; a missing file is empty; broken lines are skipped with a warning.

    A record that cannot be used (format, fields, versions) raises ResultsError naming the file and line. A
    condition written more than once is read once (its first record), with a ``DuplicateRecordWarning``
    when the records differ.
    """
    path = Path(path)
    if not path.exists():
        return []
    kept: dict[tuple, tuple[int, dict]] = {}
    differing = []
    for number, rec in _read_lines(path):
        key = condition_key(rec)
        if key not in kept:
            kept[key] = (number, rec)
        elif not _same_result(kept[key][1], rec):
            differing.append((kept[key][0], number))
    if differing:
        lines = ", ".join(f"{a} and {b}" for a, b in differing[:3]) + (" ..." if len(differing) > 3 else "")
        warnings.warn(f"{path}: {len(differing)} condition(s) have two different results (lines {lines}); reading "
                      f"the first of each. `python -m lecture_utils.experiment.sweep merge {path} --keep first|last --out FILE` "
                      "writes the file with the one you choose", DuplicateRecordWarning, stacklevel=2)
    return [rec for _, rec in kept.values()]


def merge_results(paths: Iterable[str | os.PathLike], keep: str | None = None) -> list[dict]:
    """Results of several files in one list, each condition once.

    Copies of one result are merged silently; two different results of one condition raise ResultsError
    naming both, unless `keep` says which wins: "first" (the earlier file and line) or "last".
    """
    if keep is not None and keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    merged: dict[tuple, tuple[str, dict]] = {}
    for p in paths:
        if not Path(p).exists():
            raise ValueError(f"results file not found: {p}")
        for number, rec in _read_lines(Path(p)):
            key, where = condition_key(rec), f"{p} line {number}"
            if key not in merged:
                merged[key] = (where, rec)
            elif not _same_result(merged[key][1], rec):
                if keep is None:
                    first_where, first = merged[key]
                    raise ResultsError(
                        f"two different results of {Condition.from_record(rec).label()}: {first_where} (final val "
                        f"acc {_final(first)}) and {where} ({_final(rec)}); choose one with --keep first or --keep "
                        "last (merge_results(..., keep=...))")
                if keep == "last":
                    merged[key] = (where, rec)
    return [rec for _, rec in merged.values()]


def _final(record: dict) -> str:
    return f"{float(record['val_acc'][-1]):.3f}"


def repair_results(path: str | os.PathLike) -> tuple[int, int]:
    """Remove the lines of results file `path` that cannot be read (a write's fragment, a record that cannot
    be used), appending them to ``<path>.removed``; returns (records kept, lines removed).

    Taken under the workers' append lock, so no worker appends meanwhile.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no results file {path} to repair")
    ckpt_dir = checkpoint_dir(path)
    with append_lock(ckpt_dir) if ckpt_dir.is_dir() else contextlib.nullcontext():
        kept, removed = [], []
        for raw in path.read_bytes().split(b"\n"):
            if not raw.strip():
                continue
            rec = _decode(raw)
            (removed if check_record(rec) is not None else kept).append(raw)
        if removed:
            trash = path.with_name(path.name + ".removed")
            with open(trash, "ab") as f:  # what was removed stays readable, should it be wanted
                f.writelines(raw + b"\n" for raw in removed)
                f.flush()
                os.fsync(f.fileno())

            def write(tmp: Path) -> None:
                with open(tmp, "wb") as f:
                    f.writelines(raw + b"\n" for raw in kept)
                    f.flush()
                    os.fsync(f.fileno())

            atomic_write(path, write)
    return len(kept), len(removed)


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
    from lecture_utils.checkpoint import remove_checkpoint  # torch: only where a sweep has trained

    for cond in conditions:
        if cond.key in done:
            checkpoint = condition_checkpoint(ckpt_dir, cond)
            # the lock fit held on the checkpoint: its condition is done, so no one trains into it again
            fit_lock = checkpoint.with_name(f".{checkpoint.name}.lock")
            remove_checkpoint(checkpoint)  # with its local copy and what killed writers left
            fit_lock.unlink(missing_ok=True)
            _claim_path(ckpt_dir, cond).unlink(missing_ok=True)
            old = legacy_checkpoint(ckpt_dir, cond)
            if old is not None and old.exists():
                # under its old name it may be another batch size's run of a worker of the older code: only
                # when no one holds that name's claim is it a leftover
                with contextlib.suppress(OSError):
                    held = _take(ckpt_dir / f"{cond.legacy_slug()}.lock")
                    if held is not None:
                        old.unlink(missing_ok=True)
                        held.release()
            if old is None or not old.exists():  # the claim of its old name (taken with its new one)
                (ckpt_dir / f"{cond.legacy_slug()}.lock").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another worker may have put a file there meanwhile
        left = [p.name for p in ckpt_dir.iterdir()]
        if left == [APPEND_LOCK]:  # no claim left, so no worker is about to append
            (ckpt_dir / APPEND_LOCK).unlink()
            left = []
        if not left:
            ckpt_dir.rmdir()


def _claim_path(ckpt_dir: Path, cond: Condition) -> Path:
    return ckpt_dir / f"{cond.slug()}.lock"


class _Claims:
    """Several held locks released together."""

    def __init__(self, locks: Sequence[FileLock]) -> None:
        self.locks = list(locks)

    def release(self) -> None:
        for lock in reversed(self.locks):
            lock.release()


def _take(path: Path) -> FileLock | None:
    for _ in range(3):  # another worker may remove the empty folder between our mkdir and open
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None
        except FileNotFoundError:
            continue
        return lock
    raise OSError(f"cannot create the claim file {path}")


def claim(ckpt_dir: Path, cond: Condition) -> Any:
    """Take the condition's lock without waiting: an object with ``release()``, or None if another worker holds it.

    An OS lock (flock): the kernel releases it when its holder dies, so a dead worker's claim expires by itself.
    Where the condition's name has changed (a batch size or data root now in it), the lock of its old name is
    taken too, so a worker of the code before the change and one after it never train one condition together.
    """
    paths = unique([_claim_path(ckpt_dir, cond), ckpt_dir / f"{cond.legacy_slug()}.lock"])
    held = []
    for path in paths:
        lock = _take(path)
        if lock is None:
            _Claims(held).release()
            return None
        held.append(lock)
    return _Claims(held)


def legacy_checkpoint(ckpt_dir: Path, cond: Condition) -> Path | None:
    """The checkpoint of `cond` under its old name (before batch size and data root were in it), if it differs."""
    old = ckpt_dir / f"{cond.legacy_slug()}.pt"
    return None if old == condition_checkpoint(ckpt_dir, cond) or cond.data_root is not None else old


def is_done(out: Path, cond: Condition) -> bool:
    with warnings.catch_warnings():  # the first read of the file has already reported its broken lines
        warnings.simplefilter("ignore")
        return any(condition_key(r) == cond.key for r in load_results(out))
