r"""The lessons' markdown text: no control characters, and math that renders.

A LaTeX command written in a normal (non-raw) Python string loses its backslash to an escape
sequence: ``"\frac"`` in a normal string literal becomes a form feed + "rac", ``"\right"`` a carriage
return + "ight", ``"\beta"`` a backspace + "eta". Such text renders as garbage and is invisible in
most editors, so the first test fails on any control character (other than newline and tab) in a
markdown cell.

The second test parses every math span (``$...$`` and ``$$...$$``, outside code) with matplotlib's
mathtext, which covers most of the LaTeX the lessons use. mathtext is not LaTeX, so before parsing
the test rewrites a few constructs it lacks into ones it has and that mean the same for parsing:
``\tfrac`` and ``\dfrac`` -> ``\frac``; the size commands ``\big``, ``\Big``, ``\bigl``,
``\Bigr`` ... are dropped (the delimiter after them stays); ``\iff`` -> ``\Leftrightarrow``; ``\ge``, ``\le`` -> ``\geq``, ``\leq``;
``\lVert``/``\rVert`` -> ``\Vert``; a one-letter ``\mathcal X`` gets braces; ``\underbrace`` and
``\overbrace`` are dropped (their argument and its label stay, as a group with a sub- or superscript);
the braceless arguments LaTeX allows (``\frac34``, ``\frac hs``, ``\sqrt2``) get braces;
``\xrightarrow{X}`` -> ``\overset{X}{\rightarrow}``. Spans that use an
environment (``\begin{aligned}`` ...) are not parsed at all: for them, and for every cell, the
test only checks that the ``$`` and ``$$`` delimiters are balanced.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from matplotlib.mathtext import MathTextParser

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
ALLOWED_CONTROL = {"\n", "\t"}

_FENCED = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<![\\$])\$(?!\$)", re.DOTALL)
_REWRITES = [
    (re.compile(r"\\[td]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[Bb]igg?[lrm]?(?![a-zA-Z])"), ""),
    (re.compile(r"\\iff(?![a-zA-Z])"), r"\\Leftrightarrow"),
    (re.compile(r"\\([gl])e(?![a-zA-Z])"), r"\\\1eq"),
    (re.compile(r"\\[lr]Vert(?![a-zA-Z])"), r"\\Vert"),
    (re.compile(r"\\mathcal\s+([A-Za-z])"), r"\\mathcal{\1}"),
    (re.compile(r"\\(under|over)brace(?![a-zA-Z])"), ""),
]
_ARGUMENTS = {"\\frac": 2, "\\sqrt": 1, "\\xrightarrow": 1}


def _brace_arguments(text: str) -> str:
    """Put braces around the single-token arguments of \\frac and \\sqrt (``\\frac34`` -> ``\\frac{3}{4}``)."""
    out, i = [], 0
    while i < len(text):
        command = next((c for c in _ARGUMENTS if text.startswith(c, i)
                        and not text[i + len(c):i + len(c) + 1].isalpha()), None)
        if command is None:
            out.append(text[i])
            i += 1
            continue
        out.append("\\overset" if command == "\\xrightarrow" else command)
        i += len(command)
        for _ in range(_ARGUMENTS[command]):
            while i < len(text) and text[i] == " ":
                i += 1
            if i >= len(text):
                break
            if text[i] == "{":  # a braced argument: copy up to its matching brace
                depth, start = 0, i
                while i < len(text):
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    i += 1
                    if depth == 0:
                        break
                out.append(_brace_arguments(text[start:i]))
            elif text[i] == "\\":  # a command as the argument
                end = i + 1
                while end < len(text) and text[end].isalpha():
                    end += 1
                out.append("{" + text[i:max(end, i + 2)] + "}")
                i = max(end, i + 2)
            else:
                out.append("{" + text[i] + "}")
                i += 1
        if command == "\\xrightarrow":
            out.append("{\\rightarrow}")
    return "".join(out)


def markdown_cells() -> list[tuple[str, int, str]]:
    """(notebook name, cell index, source) of every markdown cell of notebooks/*.ipynb."""
    cells = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
            if cell["cell_type"] == "markdown":
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                cells.append((path.name, index, source))
    return cells


def prose(source: str) -> str:
    """The markdown without fenced code blocks and inline code spans (they may hold a literal $)."""
    return _INLINE_CODE.sub("", _FENCED.sub("", source))


def math_spans(source: str) -> list[str]:
    """The contents of the $$...$$ and $...$ spans of a markdown text, outside code."""
    text = prose(source)
    spans = [m.group(1) for m in _DISPLAY.finditer(text)]
    spans += [m.group(1) for m in _INLINE.finditer(_DISPLAY.sub(" ", text))]
    return spans


def for_mathtext(span: str) -> str | None:
    """The span rewritten for mathtext (see the module docstring), or None if it uses an environment."""
    if "\\begin{" in span:
        return None
    text = " ".join(span.split())
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return _brace_arguments(text)


CELLS = markdown_cells()
IDS = [f"{name}[{index}]" for name, index, _ in CELLS]


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 9 and len(CELLS) > 9 * 5


@pytest.mark.parametrize(("name", "index", "source"), CELLS, ids=IDS)
def test_markdown_cell_has_no_control_characters(name, index, source):
    bad = sorted({f"{unicodedata.name(ch, 'control')} {ch!r}" for ch in source
                  if unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROL})
    assert not bad, f"{name} cell {index} holds control characters {bad} (a lost backslash?)"


@pytest.mark.parametrize(("name", "index", "source"), CELLS, ids=IDS)
def test_markdown_cell_math_is_balanced_and_renders(name, index, source):
    text = prose(source)
    assert text.count("$$") % 2 == 0, f"{name} cell {index}: unbalanced $$"
    singles = _DISPLAY.sub(" ", text).replace(r"\$", "").count("$")
    assert singles % 2 == 0, f"{name} cell {index}: unbalanced $"
    parser = MathTextParser("path")
    for span in math_spans(source):
        rewritten = for_mathtext(span)
        if rewritten is None:
            continue
        try:
            parser.parse(f"${rewritten}$")
        except ValueError as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            pytest.fail(f"{name} cell {index}: mathtext cannot parse ${span}$ ({first_line})")


def test_the_check_catches_a_lost_backslash_and_bad_math():
    lost = "$$\\left\\lfloor \frac{I}{4} \right\\rfloor$$"  # \f and \r: what the lesson had
    assert any(unicodedata.category(ch) == "Cc" and ch not in ALLOWED_CONTROL for ch in lost)
    with pytest.raises(ValueError):
        MathTextParser("path").parse(f"${for_mathtext(math_spans(lost)[0])}$")
    assert math_spans("a `$x$` b $y$ c $$z$$") == ["z", "y"]
    assert for_mathtext(r"\tfrac34 \Big( x \Bigr) \iff \mathcal N \ge \left") == (
        r"\frac{3}{4} ( x ) \Leftrightarrow \mathcal{N} \geq \left")
    assert for_mathtext(r"\frac hs + \frac{a}{\frac1N} + \sqrt2") == r"\frac{h}{s} + \frac{a}{\frac{1}{N}} + \sqrt{2}"
    assert for_mathtext(r"a \xrightarrow{\;C\;} b") == r"a \overset{\;C\;}{\rightarrow} b"
