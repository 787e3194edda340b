"""lecture_utils.syllabus: the table of lessons, reading time, timed runs; and the pages that quote them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lecture_utils import syllabus

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, markdown: list[str], code: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(m) for m in markdown] + [nbformat.v4.new_code_cell(c) for c in code]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_reading_time_follows_the_stated_rule(tmp_path):
    # 300 words of prose (a code fence and a link target do not count) and two code cells
    words = " ".join(["word"] * 298)
    path = _notebook(tmp_path / "01_X.ipynb", [f"# A title\n\n{words}\n\n```\nnot counted\n```\n[link](http://x.y/z)"],
                     ["1", "2"])
    assert syllabus.size(path) == {"cells": 3, "code_cells": 2, "words": 301}
    assert syllabus.reading_minutes(path) == pytest.approx(301 / 150 + 2 * 0.5)
    assert syllabus.title(path) == "A title"


def test_run_times_a_notebook_saves_its_outputs_and_keeps_earlier_times(tmp_path):
    path = _notebook(tmp_path / "02_Y.ipynb", ["# Y"], ["print(6 * 7)"])
    times = tmp_path / "times.json"
    times.write_text(json.dumps({"machine": "old", "notebooks": {"01_X.ipynb": 12.5}}))
    syllabus.run([path], save=True, times_file=times)
    record = json.loads(times.read_text())
    assert record["notebooks"]["01_X.ipynb"] == 12.5 and record["notebooks"]["02_Y.ipynb"] > 0
    saved = json.loads(path.read_text())["cells"][1]
    assert saved["execution_count"] == 1 and "42" in "".join(saved["outputs"][0]["text"])


def test_a_missing_notebook_is_one_line_and_exit_2(tmp_path, capsys):
    assert syllabus.main(["run", str(tmp_path / "nope.ipynb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.ipynb: no such notebook" in err


def test_every_lesson_has_a_time_and_the_pages_show_the_current_table():
    names = [p.name for p in syllabus.lesson_notebooks()]
    # lessons 01-08, lesson 09 in two parts (09a_, 09b_), then the appendices
    assert names[:10] == sorted(names[:10]) and names[0] == "01_AlexNet.ipynb" and "A1_Course_recipe_runs.ipynb" in names
    assert [n[:3] for n in names[8:10]] == ["09a", "09b"]
    assert set(names) <= set(syllabus.load_times()["notebooks"]), "run python -m lecture_utils.syllabus run"
    assert syllabus.table() in (ROOT / "README.md").read_text()
    assert syllabus.table(link="") in (ROOT / "notebooks" / "README.md").read_text()


def test_the_readme_glossary_is_lesson_01s():
    nb = json.loads((ROOT / "notebooks" / "01_AlexNet.ipynb").read_text())
    cell = next("".join(c["source"]) for c in nb["cells"] if "".join(c["source"]).startswith("### Words this series uses"))
    rows = [line for line in cell.splitlines() if line.startswith("| **")]
    assert len(rows) >= 10
    readme = (ROOT / "README.md").read_text()
    assert all(row in readme for row in rows)
