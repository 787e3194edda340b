"""Exercises with worked solutions: the checks a student calls, and the copies made for students.

``check("01", "a", value)`` says whether `value` answers exercise (a) of lesson 01 and why: a known
mistake is named ("off by the bias terms ..."), any other wrong value gets its direction and size. The
expected answers (:mod:`lecture_utils.exercises.answers`) are measured on the package's models and real
layers, taken from torchvision, or read from the stored reference records; none is typed in.

``python -m lecture_utils.exercises student-copies [--out build/exercises]`` writes the exercise notebooks
(``notebooks/exercises/``) without their ``solution`` cells and without outputs; ``clean-copies [--out
build/clean]`` writes the lessons (lesson 09 in its two parts) without outputs and without prose
(:func:`lecture_utils.exercises.copies.clean_notebook` states the rule).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from lecture_utils.exercises.answers import ANSWERS, Answer, fmt, forward_time_ratio
from lecture_utils.exercises.copies import (EXERCISE_DIR, LESSON_DIR, SOLUTION_TAG, clean_notebook, student_notebook,
                                            write_copies)

__all__ = ["Verdict", "check", "exercise_ids", "forward_time_ratio", "student_notebook", "clean_notebook",
           "write_copies", "main", "SOLUTION_TAG", "EXERCISE_DIR", "LESSON_DIR"]


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` found: truthy when right; printed as its one-line message."""

    right: bool
    message: str

    def __bool__(self) -> bool:
        return self.right

    def __str__(self) -> str:
        return self.message

    __repr__ = __str__


def exercise_ids(lesson: str | None = None) -> list[str]:
    """The checked exercises as ``"01a"``... (of one lesson if given)."""
    return [f"{les}{ex}" for les, ex in ANSWERS if lesson is None or les == lesson]


def _key(lesson: str | int, exercise: str) -> tuple[str, str]:
    les = f"{int(lesson):02d}" if str(lesson).isdigit() else str(lesson)
    if (les, str(exercise)) not in ANSWERS:
        raise ValueError(f"no checked exercise {lesson!r}, {exercise!r}; allowed: {', '.join(exercise_ids())}")
    return les, str(exercise)


def _close(value: float, target: float, answer: Answer) -> bool:
    if answer.rel_tol == 0 and answer.abs_tol == 0:
        return value == target
    return abs(value - target) <= max(answer.abs_tol, answer.rel_tol * abs(target))


def check(lesson: str | int, exercise: str, value: float | None) -> Verdict:
    """Whether `value` answers `exercise` ("a", "b"...) of `lesson` ("01".."08", "09a", "09b"), and why: a one-line verdict.

    ``None`` (the scaffold's placeholder) is "no answer yet"; an unknown exercise raises ValueError listing them.
    """
    answer = ANSWERS[_key(lesson, exercise)]
    if value is None:
        return Verdict(False, f"no answer yet: set `answer` to {answer.question}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise ValueError(f"the answer must be a number (int or float), got {value!r}")
    value = float(value)
    expected = float(answer.expected())
    if _close(value, expected, answer):
        return Verdict(True, f"right: {fmt(expected)}; {answer.why(expected)}")
    mistakes = answer.mistakes(expected)
    if answer.points:
        mistakes = mistakes + [(expected / 100, "that is a fraction; give the difference in points (x 100)")]
    for wrong, reason in mistakes:
        if _close(value, float(wrong), answer):
            return Verdict(False, f"wrong: {reason}")
    off = (value - expected) / abs(expected) if expected else math.inf
    size = f"{abs(off):.1%}" if abs(off) < 10 else f"{abs(value / expected) if expected else math.inf:.3g} times"
    return Verdict(False, f"wrong: {fmt(value)} is {size} too {'high' if value > expected else 'low'}; "
                          f"the question: {answer.question}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lecture_utils.exercises {student-copies,clean-copies} [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.exercises",
                                     description="Copies of the notebooks for students.")
    parser.add_argument("command", choices=["student-copies", "clean-copies"],
                        help="student-copies: exercises without solutions or outputs (default out: build/exercises); "
                             "clean-copies: lessons without prose or outputs (default out: build/clean)")
    parser.add_argument("--out", default=None, help="folder to write the notebooks into")
    args = parser.parse_args(argv)
    try:
        written = write_copies("student" if args.command == "student-copies" else "clean", args.out)
    except (OSError, ValueError) as exc:
        print(f"python -m lecture_utils.exercises: error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(written)} notebooks written to {written[0].parent}")
    return 0

