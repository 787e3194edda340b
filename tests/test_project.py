"""Facts about the project's layout and its two README commands."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [
    "01_AlexNet",
    "02_VGG16",
    "03_GoogLeNet",
    "04_ResNet",
    "05_ResNeXt",
    "06_WideResNet",
    "07_MobileNetV1",
    "08_MobileNetV2",
    "09a_MobileNets_width_and_resolution",  # lesson 09 in two parts
    "09b_MobileNetV2_vs_C_MobileNetV2",
]


def test_top_level_layout_matches_design():
    for name in ["notebooks", "lecture_utils", "data", "tests", "environment.yml", "pyproject.toml",
                 "Makefile", "README.md", ".ci/run"]:
        assert (ROOT / name).exists(), name


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in readme and "make lab" in readme
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_a_notebook_with_a_colab_badge(lesson):
    nb = ROOT / "notebooks" / f"{lesson}.ipynb"
    assert nb.exists(), nb
    text = nb.read_text()
    assert f"colab.research.google.com/github/cnn-lectures/cnn-lectures/blob/main/notebooks/{lesson}.ipynb" in text
    assert "google.colab" in text


@pytest.mark.parametrize("lesson", LESSONS)
def test_committed_notebooks_come_from_one_clean_run(lesson):
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{lesson}.ipynb", as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "execution counts must be 1..n in order"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


def test_readme_lists_every_lesson():
    readme = (ROOT / "README.md").read_text()
    for lesson in LESSONS:
        assert f"notebooks/{lesson}.ipynb" in readme, lesson


def test_import_is_light():
    code = "import sys, lecture_utils; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dependencies_do_not_pin_numpy_or_matplotlib():
    text = (ROOT / "pyproject.toml").read_text()
    assert not re.search(r'"(numpy|matplotlib)\s*==', text)
