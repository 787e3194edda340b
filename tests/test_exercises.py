"""The exercise notebooks, their check function, and the student and clean copies (lecture_utils.exercises)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from lecture_utils import exercises
from lecture_utils.exercises import check, clean_notebook, exercise_ids, student_notebook

ROOT = Path(__file__).resolve().parents[1]
# lessons 01-08 and lesson 09 in two parts (09a_, 09b_): one exercise notebook each
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
EXERCISE_NOTEBOOKS = sorted((ROOT / "notebooks" / "exercises").glob("[0-9][0-9]*_*_exercises.ipynb"))
HEADING = re.compile(r"^## \(([a-z])\) ", re.M)


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _exercises(nb: dict) -> dict[str, list[dict]]:
    """The cells of each exercise: from its ``## (x)`` heading to the next one."""
    found: dict[str, list[dict]] = {}
    current = None
    for cell in nb["cells"]:
        match = HEADING.match(_source(cell)) if cell["cell_type"] == "markdown" else None
        if match:
            current = match.group(1)
            found[current] = []
        if current is not None:
            found[current].append(cell)
    return found


# --------------------------------------------------------------------------- the check function
def test_check_accepts_fc6_parameters_worked_out_by_the_formula():
    verdict = check("01", "a", 256 * 6 * 6 * 4096 + 4096)
    assert verdict and str(verdict).startswith("right: 37,752,832")


def test_check_names_the_missing_biases_as_the_reason():
    verdict = check("01", "a", 256 * 6 * 6 * 4096)
    assert not verdict
    assert str(verdict) == "wrong: off by the bias terms: 4,096 x 9,216 weights plus 4,096 biases"


def test_check_says_how_far_off_an_unknown_wrong_value_is():
    verdict = check("01", "a", 40_000_000)
    assert not verdict and "6.0% too high" in str(verdict)
    assert "too low" in str(check("01", "a", 30_000_000))


def test_check_accepts_lesson_numbers_as_ints_and_strings():
    assert check(7, "a", 100) and check("7", "a", 100) and check("07", "a", 100)


def test_check_without_an_answer_says_what_to_give():
    verdict = check("04", "b", None)
    assert not verdict and str(verdict).startswith("no answer yet: set `answer` to how many of ResNet-18's")


def test_check_catches_a_fraction_given_for_points():
    from lecture_utils.experiment import results

    with_bn, without_bn = results.lesson_reference("02")
    points = 100 * (with_bn["val_acc"][-1] - without_bn["val_acc"][-1])
    assert check("02", "c", points)
    assert str(check("02", "c", points / 100)) == "wrong: that is a fraction; give the difference in points (x 100)"


def test_check_rejects_an_unknown_exercise_with_one_line_listing_the_allowed_ids():
    with pytest.raises(ValueError) as err:
        check("01", "z", 1)
    message = str(err.value)
    assert "\n" not in message and "allowed: 01a, 01b, 01c, 01d, 02a" in message and "09ba" in message
    with pytest.raises(ValueError, match="allowed: 01a"):
        check("10", "a", 1)


def test_check_rejects_an_answer_that_is_not_a_number():
    with pytest.raises(ValueError, match="must be a number"):
        check("01", "a", "37752832")
    with pytest.raises(ValueError, match="must be a number"):
        check("04", "b", True)


# Each checked answer against a value made without lecture_utils.exercises: a closed form worked out here,
# a paper's number, torchvision, or the stored records read directly.
def _zoo_test(model: str, resolution: int | None = None) -> float:
    from lecture_utils.experiment import zoo

    return next(r.test_acc for r in zoo.zoo_rows(name="zoo-scale", partial=True)
                if r.model == model and (resolution is None or r.resolution == resolution))


def _records(lesson: str) -> list[dict]:
    from lecture_utils.experiment import results

    return results.lesson_reference(lesson)


def _mobilenet_v2_macs_160() -> int:
    from lecture_utils import costs

    return costs.mobilenet_v2_macs(1.0, 160)


def _torchvision_rounding() -> int:
    import torchvision

    def count(net):
        return sum(p.numel() for p in net.parameters())

    return count(torchvision.models.mobilenet_v2(width_mult=0.35)) - \
        count(torchvision.models.mobilenet_v2(width_mult=0.35, round_nearest=1))


INDEPENDENT = {
    "01a": lambda: 9216 * 4096 + 4096,
    "01b": lambda: (9216 - 256) * 4096,
    "01d": lambda: 96 * 55 * 55,
    # VGG19 stage by stage: each 3x3 conv adds 2 x jump, each 2x2 pool adds the jump (1, 2, 4, 8, 16) and doubles it
    "02a": lambda: 1 + 2 * 2 + 1 + 2 * 4 + 2 + 4 * 8 + 4 + 4 * 16 + 8 + 4 * 32 + 16,
    "02b": lambda: 14_714_688 + 512 * 10 + 10,  # VGG16's convolutions (torchvision's features) + the new head
    "02c": lambda: 100 * (_records("02")[0]["val_acc"][-1] - _records("02")[1]["val_acc"][-1]),
    "02d": lambda: 138_357_544 - 8 * (256**2 + 2 * 512**2),  # VGG16 (torchvision) less the 1x1 convs' 8 of 9 taps
    "03a": lambda: 528 * (256 + 160 + 32 + 128) + 9 * 160 * 320 + 25 * 32 * 128,
    "03c": lambda: 100 * (max(_records("03")[0]["val_acc"]) - _records("03")[0]["val_acc"][-1]),
    "04a": lambda: 9 / (2 / 8 + 9 / 64),
    "04b": lambda: 5,  # 8 blocks, 3 of them with a projection shortcut
    "04c": lambda: 100 * (_zoo_test("resnet18") - _zoo_test("small_cnn")),
    "05a": lambda: (-512 * 16 + math.sqrt((512 * 16) ** 2 + 36 * 16 * 69_632)) / (18 * 16),
    "05c": lambda: 100 * (_records("05")[0]["val_acc"][-1] - _records("05")[1]["val_acc"][-1]),
    "06a": lambda: 2 * 9 * 256**2 + 2 * 2 * 256,
    "06c": lambda: 100 * (_records("06")[0]["train_acc"][-1] - _records("06")[0]["val_acc"][-1]),
    "07a": lambda: 100,
    "07c": lambda: 100 * (_zoo_test("mobilenet_v2", 64) - _zoo_test("mobilenet_v1", 64)),
    "08a": lambda: 36,
    "08b": _torchvision_rounding,
    "08c": lambda: 100 * (_zoo_test("mobilenet_v2", 64) - _zoo_test("mobilenet_v2", 32)),
    "09aa": _mobilenet_v2_macs_160,  # lesson 09, part 1, exercise (a)
    "09bb": lambda: 1 - 0.95**12,  # 12 (width, resolution) pairs: 4 widths x 3 resolutions
}


@pytest.mark.parametrize("exercise", sorted(INDEPENDENT))
def test_check_accepts_the_independent_answer_and_rejects_a_far_one(exercise):
    value = INDEPENDENT[exercise]()
    lesson, letter = exercise[:-1], exercise[-1]
    assert check(lesson, letter, value), str(check(lesson, letter, value))
    assert not check(lesson, letter, value * 1.5 + 1)


def test_answers_checked_against_papers_round_to_the_papers_numbers():
    from lecture_utils.exercises.answers import ANSWERS

    assert round(ANSWERS["02", "d"].expected() / 1e6) == 134  # VGG's Table 2, configuration C
    assert round(ANSWERS["07", "b"].expected() / 1e6, 1) == 2.9  # MobileNet's Table 5, the shallow network


def test_every_exercise_id_of_the_notebooks_is_checked_and_every_check_is_used():
    used = set()
    for path in EXERCISE_NOTEBOOKS:
        lesson = path.name.split("_")[0]  # "01" ... "08", "09a", "09b"
        text = "".join(_source(c) for c in _read(path)["cells"] if c["cell_type"] == "code")
        calls = re.findall(r'check\("(\d\d[a-z]?)", "([a-z])"', text)
        assert calls and all(les == lesson for les, _ in calls), path.name
        used |= {f"{les}{ex}" for les, ex in calls}
    assert used == set(exercise_ids())


# --------------------------------------------------------------------------- the exercise notebooks
def test_every_lesson_has_an_exercise_notebook_of_the_same_number_and_name():
    assert len(LESSONS) == 10  # lessons 01-08 and lesson 09's two parts
    assert [p.name[:3] for p in LESSONS[-2:]] == ["09a", "09b"]
    expected = {p.stem + "_exercises.ipynb" for p in LESSONS}
    assert {p.name for p in EXERCISE_NOTEBOOKS} == expected


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name.split("_")[0])
def test_each_notebook_has_three_to_five_exercises_each_with_a_scaffold_and_a_hidden_solution(path):
    found = _exercises(_read(path))
    # a lesson in parts shares its three to five exercises out: each part has one or more, from (a)
    parts = [p for p in EXERCISE_NOTEBOOKS if p.name[:2] == path.name[:2]]
    total = sum(len(_exercises(_read(p))) for p in parts)
    assert 3 <= total <= 5 and len(found) >= 1 and list(found) == sorted(found) and list(found)[0] == "a"
    for letter, cells in found.items():
        student = [c for c in cells if c["cell_type"] == "code" and "solution" not in _tags(c)]
        solution = [c for c in cells if "solution" in _tags(c)]
        assert any("# your answer here" in _source(c) for c in student), letter
        assert any(c["cell_type"] == "markdown" for c in solution), letter
        assert any(c["cell_type"] == "code" for c in solution), letter
        assert all(c["metadata"].get("jupyter", {}).get("source_hidden") is True for c in solution), letter


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda p: p.name.split("_")[0])
def test_each_notebook_is_stored_executed_without_errors_and_its_timings_unchecked(path):
    nb = _read(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "run it top to bottom and store the outputs"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    timed = [c for c in code if "forward_time_ratio(" in _source(c) and "print(" in _source(c)]
    assert all("nbval-ignore-output" in _tags(c) for c in timed)
    assert not [c for c in code if "NBVAL" in _source(c)], "nbval markers are cell tags here, not comments"
    first = _source(code[0])
    assert "from lecture_utils.notebook import setup" in first and f'setup("{path.name[:2]}")' in first


# --------------------------------------------------------------------------- student and clean copies
def test_student_copies_have_no_solution_cell_and_no_output(tmp_path):
    assert exercises.main(["student-copies", "--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in EXERCISE_NOTEBOOKS]
    for path in written:
        nb, original = _read(path), _read(EXERCISE_NOTEBOOKS[0].parent / path.name)
        assert not [c for c in nb["cells"] if "solution" in _tags(c)]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in nb["cells"] if c["cell_type"] == "code")
        assert list(_exercises(nb)) == list(_exercises(original))  # every statement and scaffold stays
        assert sum("# your answer here" in _source(c) for c in nb["cells"]) == len(_exercises(original))


def test_student_notebook_keeps_cells_that_are_not_solutions():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": ["x = 1"], "outputs": [{"output_type": "stream"}],
                     "execution_count": 3},
                    {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": ["x = 2"], "outputs": [],
                     "execution_count": 4}]}
    assert student_notebook(nb)["cells"] == [{"cell_type": "code", "metadata": {}, "source": ["x = 1"], "outputs": [],
                                              "execution_count": None}]


def test_clean_notebook_keeps_headings_code_and_exercise_statements_only():
    md = lambda text: {"cell_type": "markdown", "metadata": {}, "source": text.splitlines(keepends=True)}  # noqa: E731
    nb = {"cells": [md("# Lesson 99 · Title\n\nWhat the lesson is about."),
                    md("The answer is 42.\n\n## 1 · A section\n\nMore prose.\n```\n# a comment in code\n```"),
                    md("Prose only, no heading."),
                    {"cell_type": "code", "metadata": {}, "source": ["print(42)"], "outputs": [{"output_type": "stream"}],
                     "execution_count": 1},
                    md("## Recap\n\n- a result\n\n## Exercises\n\n1. Compute this.\n2. Train that."),
                    md("## Next\n\nprose again")]}
    cleaned = clean_notebook(nb)
    assert [_source(c) for c in cleaned["cells"]] == ["# Lesson 99 · Title", "## 1 · A section", "print(42)",
                                                       "## Recap\n## Exercises\n\n1. Compute this.\n2. Train that.",
                                                       "## Next"]
    assert cleaned["cells"][2]["outputs"] == [] and cleaned["cells"][2]["execution_count"] is None


def test_clean_copies_of_the_lessons_have_no_outputs_no_prose_and_all_their_code(tmp_path):
    assert exercises.main(["clean-copies", "--out", str(tmp_path)]) == 0
    written = sorted(tmp_path.glob("*.ipynb"))
    assert [p.name for p in written] == [p.name for p in LESSONS]
    for path, lesson in zip(written, LESSONS):
        nb, original = _read(path), _read(lesson)
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
        assert [_source(c) for c in code] == [_source(c) for c in original["cells"] if c["cell_type"] == "code"]
        text = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
        assert text.startswith(f"# Lesson {lesson.name[:2]}")
        assert "## Exercises" in text or "## Exercises" not in json.dumps(original)
    alexnet = "\n".join(_source(c) for c in _read(written[0])["cells"] if c["cell_type"] == "markdown")
    assert "weight sharing" not in alexnet.lower() and "floor" not in alexnet  # prose and formulas are gone


def test_copies_refuse_an_unknown_kind_with_the_allowed_ones():
    with pytest.raises(ValueError, match="kind must be 'student' or 'clean'"):
        exercises.write_copies("solutions")
