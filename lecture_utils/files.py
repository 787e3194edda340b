"""Checks made before long work starts, so that a run never trains for nothing.

:func:`check_writable_file` tries out, before the first epoch, the place a checkpoint or a
results file will be written: by creating a file there, since permission bits alone do not
stop root, while a read-only file system or a path through a regular file stops everyone.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["check_writable_file"]


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
