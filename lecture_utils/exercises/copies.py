"""Copies of the notebooks for students: exercises without solutions, lessons without prose.

Both drop every output. Notebooks are read and written as plain JSON (nbformat 4), so making the copies
needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["student_notebook", "clean_notebook", "write_copies", "SOLUTION_TAG", "EXERCISE_DIR", "LESSON_DIR"]

ROOT = Path(__file__).resolve().parents[2]
LESSON_DIR = ROOT / "notebooks"
EXERCISE_DIR = LESSON_DIR / "exercises"
SOLUTION_TAG = "solution"


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _write(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _no_output(cell: dict) -> dict:
    cell = dict(cell)
    if cell["cell_type"] == "code":
        cell["outputs"], cell["execution_count"] = [], None
    return cell


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def student_notebook(nb: dict) -> dict:
    """An exercise notebook without its cells tagged ``solution`` and without outputs."""
    cells = [_no_output(c) for c in nb["cells"] if SOLUTION_TAG not in c.get("metadata", {}).get("tags", [])]
    return {**nb, "cells": cells}


def clean_notebook(nb: dict) -> dict:
    """A lesson for self-testing (fast.ai's ``clean`` idea): the code without outputs, the prose gone.

    The rule: every code cell stays, without outputs. Of the markdown, only heading lines stay (a cell
    without one goes), except the exercise statements: from a ``## Exercises`` heading to the next heading
    of the same or a higher level, the text stays whole.
    """
    cells, in_exercises = [], False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            cells.append(_no_output(cell))
            continue
        kept, fenced = [], False
        for line in _source(cell).splitlines():
            fenced ^= line.startswith("```")  # a '#' inside a fenced code block is a comment, not a heading
            level = len(line) - len(line.lstrip("#")) if line.startswith("#") and not fenced else 0
            if level == 2 and line[2:].strip().lower().startswith("exercises"):
                in_exercises = True
            elif 0 < level <= 2:
                in_exercises = False
            if level or in_exercises:
                kept.append(line)
        if kept:
            text = "\n".join(kept)
            cells.append({**cell, "source": text.splitlines(keepends=True)})
    return {**nb, "cells": cells}


def write_copies(kind: str, out: str | Path | None = None) -> list[Path]:
    """Write the student copies (``student``) or the clean lessons (``clean``) into `out`; return the files."""
    if kind not in ("student", "clean"):
        raise ValueError(f"kind must be 'student' or 'clean', got {kind!r}")
    source, make = (EXERCISE_DIR, student_notebook) if kind == "student" else (LESSON_DIR, clean_notebook)
    out = Path(out) if out is not None else ROOT / "build" / ("exercises" if kind == "student" else "clean")
    notebooks = sorted(source.glob("[0-9][0-9]*_*.ipynb"))  # 01_ ... 08_, 09a_, 09b_
    if not notebooks:
        raise FileNotFoundError(f"no notebooks NN_*.ipynb in {source}")
    written = []
    for path in notebooks:
        _write(make(_read(path)), out / path.name)
        written.append(out / path.name)
    return written


