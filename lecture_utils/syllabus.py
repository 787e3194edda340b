"""The series' lessons at a glance: title, size, reading time and the quick profile's run time.

``python -m lecture_utils.syllabus run [--save] NOTEBOOK...`` executes notebooks top to bottom in a fresh
kernel (each as a student's "Restart and run all" would), times each, and records the times in
``data/lesson-times.json`` with the machine they ran on; ``--save`` also writes the executed notebook back
(how the committed outputs are made). ``python -m lecture_utils.syllabus table`` prints the README's table
of lessons from the notebooks and that file.

Reading time is a rule, not a measurement of a reader: the prose at :data:`WORDS_PER_MINUTE` (a slow pace,
for technical text with formulas) plus :data:`MINUTES_PER_CODE_CELL` for each code cell and its output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMES_FILE = ROOT / "data" / "lesson-times.json"
WORDS_PER_MINUTE = 150
MINUTES_PER_CODE_CELL = 0.5


def lesson_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The lessons (``01_*.ipynb`` ..., a lesson in parts as ``09a_``, ``09b_``) and appendices (``A1_*.ipynb`` ...)
    of `folder`, in order."""
    return sorted(p for p in folder.glob("*.ipynb") if re.match(r"^(\d\d[a-z]?|A\d)_", p.name))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def title(path: Path) -> str:
    """The notebook's first heading, without the '#'."""
    for cell in _cells(path):
        if cell["cell_type"] == "markdown":
            for line in _text(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError(f"{path.name} has no '# ' title in its markdown")


def size(path: Path) -> dict[str, int]:
    """Cells, code cells and prose words (markdown outside code fences and links' targets) of a notebook."""
    cells = _cells(path)
    prose = " ".join(_text(c) for c in cells if c["cell_type"] == "markdown")
    prose = re.sub(r"```.*?```", " ", prose, flags=re.S)
    prose = re.sub(r"\]\([^)]*\)", "]", prose)
    words = len(re.findall(r"[\w'’-]+", prose))
    return {"cells": len(cells), "code_cells": sum(c["cell_type"] == "code" for c in cells), "words": words}


def reading_minutes(path: Path) -> float:
    """The reading-time rule of the module docstring."""
    s = size(path)
    return s["words"] / WORDS_PER_MINUTE + s["code_cells"] * MINUTES_PER_CODE_CELL


def load_times(path: Path = TIMES_FILE) -> dict:
    """The stored run times (``{"machine": ..., "notebooks": {name: seconds}}``), or an empty record."""
    if not path.is_file():
        return {"machine": None, "notebooks": {}}
    return json.loads(path.read_text())


def table(folder: Path = NOTEBOOKS, times: dict | None = None, link: str = "notebooks/") -> str:
    """The README's markdown table of lessons: notebook, cells, prose words, reading time, quick run time.

    `link`: the notebooks' folder as seen from the page the table is on ("" from notebooks/README.md).
    """
    times = load_times() if times is None else times
    rows = ["| lesson | cells | prose words | reading (min) | quick run, one CPU thread (min) |",
            "|---|---:|---:|---:|---:|"]
    for path in lesson_notebooks(folder):
        s = size(path)
        seconds = times["notebooks"].get(path.name)
        run = f"{seconds / 60:.1f}" if seconds is not None else "-"
        rows.append(f"| [{title(path)}]({link}{path.name}) | {s['cells']} | {s['words']:,} | "
                    f"{reading_minutes(path):.0f} | {run} |")
    return "\n".join(rows)


def run(paths: Sequence[Path], save: bool, timeout: int = 1500, times_file: Path = TIMES_FILE) -> dict:
    """Execute each notebook in a fresh kernel from its own folder, time it, record the time; ``save``: write it back."""
    import nbformat
    from nbclient import NotebookClient

    record = load_times(times_file)
    record["machine"] = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such notebook")
        nb = nbformat.read(path, as_version=4)
        started = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - started
        record["notebooks"][path.name] = round(seconds, 1)
        print(f"{path.name}: {seconds:.0f} s", flush=True)
        if save:
            nb.metadata.pop("widgets", None)
            nbformat.write(nb, path)
        # written after every notebook, so an interrupted run keeps what it measured
        tmp = times_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        tmp.replace(times_file)
    return record


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.syllabus", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    go = commands.add_parser("run", help="execute and time notebooks (a fresh kernel each)")
    go.add_argument("notebooks", nargs="+", type=Path)
    go.add_argument("--save", action="store_true", help="write the executed notebooks back")
    go.add_argument("--timeout", type=int, default=1500, help="seconds per cell (default: %(default)s)")
    shown = commands.add_parser("table", help="print the README's table of lessons")
    shown.add_argument("--link", default="notebooks/", help="the notebooks' folder as seen from the page")
    args = parser.parse_args(argv)
    if args.command == "table":
        print(table(link=args.link))
        return 0
    try:
        run(args.notebooks, save=args.save, timeout=args.timeout)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
