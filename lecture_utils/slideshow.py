"""How a lesson becomes slides, at build time: the lessons carry no slide metadata of their own.

:func:`slide_notebook` gives a copy of a lesson a slide type on every cell from the lesson's own
structure (headings, paragraphs, code and the room its output takes; the rule is its docstring), and
:func:`count_slides` says how many slides that makes. :func:`clean_notebook` is the copy that both the
slides and the handouts (``lecture_utils.teaching``) show: no Colab install cell, no ``# NBVAL_*``
markers, no widget outputs or tqdm progress text.
"""

from __future__ import annotations

import base64
import copy
import re
import struct
from typing import Any

LONG = 450  # characters: a longer markdown cell keeps its outline on the slide, its prose in the notes
LEAD = 320  # characters of a first paragraph a slide shows (whole sentences); the notes get all of it
ITEM = 180  # characters of a bullet a slide shows (its first sentence when longer)
INTRO = 120  # a prose paragraph this short that introduces a list, formula or table stays with it
FIT = 740  # pixels of content a slide of 1280 x 800 holds; what would overflow starts a sub-slide instead
PART = 120  # pixels: a code cell overflowing a slide whose code and output are both this tall is cut in two
SKIP_TAGS = {"nbval-skip", "skip-slides", "remove-cell"}
WIDGET = "application/vnd.jupyter.widget-view+json"
# a tqdm meter: "epoch 1/2:  40%|####      | 23/57 [00:03<00:05, 6.1batch/s]" or "57batch [00:03, 15.2batch/s]"
METER = re.compile(r"\d+%\|[^|\n]*\|\s*[\d.]+[kMG]?(/[\d.?]+[kMG]?)?\s*\[[\d:?]+|\[\d+:\d+(<|, )[^\]\n]*/s\b")
BADGE = re.compile(r"\[!\[[^\]]*\]\([^)]*colab-badge[^)]*\)\]\(([^)]*)\)")
LIST = re.compile(r"^\s{0,3}([-*+]|\d+[.)])\s+")


# ------------------------------------------------------------------ cleaning (slides and handouts)
def is_colab_cell(cell: Any) -> bool:
    """The lesson's install cell for Colab (lecture_utils.notebook.colab_cell): nothing to show."""
    return cell.cell_type == "code" and ("google.colab" in cell.source or cell.source.startswith("# Colab"))


def _is_meter(text: str) -> bool:
    return bool(METER.search(text))


def _clean_output(out: Any) -> Any | None:
    """`out` without widgets or tqdm meters (None when nothing is left)."""
    if out.output_type == "stream":
        lines = [part for line in out.text.split("\n") for part in [line.rsplit("\r", 1)[-1]]
                 if not _is_meter(line)]
        text = "\n".join(lines)
        if not text.strip():
            return None
        out = copy.deepcopy(out)
        out.text = text
        return out
    data = out.get("data", {})
    if WIDGET in data or (set(data) <= {"text/plain"} and _is_meter(str(data.get("text/plain", "")))):
        return None
    return out


def clean_notebook(nb: Any, colab_link: bool = False) -> Any:
    """A copy of `nb` without the Colab cell, ``# NBVAL_*`` lines, widgets and progress text.

    The Colab badge (an image from the web) goes, or becomes a plain "Open in Colab" link with `colab_link`.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        if is_colab_cell(cell):
            continue
        if cell.cell_type == "code":
            lines = cell.source.split("\n")
            cell.source = "\n".join(line for line in lines if not line.lstrip().startswith("# NBVAL_")).strip("\n")
            outputs: list[Any] = []
            for out in filter(None, map(_clean_output, cell.get("outputs", []))):
                if outputs and out.output_type == "stream" and outputs[-1].get("name", "") == out.name:
                    outputs[-1].text += out.text  # one block of text, as the notebook shows it
                else:
                    outputs.append(out)
            cell.outputs = outputs
        elif cell.cell_type == "markdown":
            cell.source = BADGE.sub(r"[Open in Colab](\1)" if colab_link else "", cell.source)
        cells.append(cell)
    nb.cells = cells
    title = lesson_title(nb)
    if title:
        nb.metadata["title"] = title
    return nb


# ------------------------------------------------------------------ markdown: blocks, sentences, outline
def _blocks(text: str) -> list[tuple[str, str]]:
    """(kind, text) of each block of a markdown cell: heading, list, math, table, fence, html or prose."""
    raw, cur, fence = [], [], False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        if not fence and (not line.strip() or line.startswith("#")):
            if cur:
                raw.append("\n".join(cur))
            cur = [line] if line.strip() else []
            if line.startswith("#"):
                raw.append(line)
                cur = []
            continue
        cur.append(line)
    if cur:
        raw.append("\n".join(cur))
    kinds = [("heading", "#"), ("fence", "```"), ("fence", "~~~"), ("math", "$$"), ("math", "\\begin"),
             ("table", "|"), ("html", "<"), ("html", "![")]
    out = []
    for block in raw:
        s = block.lstrip()
        kind = next((k for k, p in kinds if s.startswith(p)), "list" if LIST.match(block) else "prose")
        out.append((kind, block))
    return out


def _balanced(text: str) -> bool:
    return text.count("$") % 2 == 0 and text.count("*") % 2 == 0 and text.count("`") % 2 == 0


def _sentences(text: str) -> list[str]:
    """`text` cut after each sentence, never inside math, emphasis or code, nor after an initial."""
    parts, start = [], 0
    for m in re.finditer(r"[.!?](\*{1,2}|_|\))?\s+(?=[A-Z*_(\[$`])", text):
        word = text[start:m.start()].split()[-1] if text[start:m.start()].split() else ""
        if re.fullmatch(r"\(?[A-Z]|e\.g|i\.e|cf|vs|al|Fig|Eq|Sec|resp", word):
            continue
        piece = text[start:m.end()]
        if _balanced(piece):
            parts.append(piece.rstrip())
            start = m.end()
    if text[start:].strip():
        parts.append(text[start:].strip())
    return parts


def is_reference(paragraph: str) -> bool:
    """A credit or citation: "Source review: ...", or a first sentence ending in a venue's year or arXiv id."""
    first = _sentences(" ".join(paragraph.split()))[0] if paragraph.strip() else ""
    return bool(re.match(r"Sources?\b", first) or re.search(r"(\b(19|20)\d\d|arXiv:[\d.]+)\)?\.$", first))


def _lead(text: str, limit: int) -> tuple[str, bool]:
    """The whole sentences of `text` that fit in `limit` characters (at least one), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    head = ""
    for sentence in _sentences(" ".join(text.split())):
        if head and len(head) + len(sentence) + 1 > limit:
            break
        head = f"{head} {sentence}".strip()
    return head, head != " ".join(text.split())


def _short_list(block: str) -> tuple[str, bool]:
    items: list[list[str]] = []
    for line in block.split("\n"):
        if LIST.match(line) or not items:
            items.append([line])
        else:
            items[-1].append(line)
    shown, cut = [], False
    for item in items:
        text, was_cut = _lead(" ".join(line.strip() for line in item), ITEM)
        cut |= was_cut
        shown.append(text if was_cut else "\n".join(item))
    return "\n".join(shown), cut


def outline(text: str) -> tuple[str, str]:
    """(what a slide shows, the speaker notes) of a markdown cell.

    A cell of up to LONG characters is shown whole. A longer one shows its headings, its first paragraph
    (up to LEAD characters of whole sentences), its bullets (each cut to its first sentence past ITEM
    characters), formulas, tables and code, and a short paragraph that introduces one of these; the
    rest of its prose, and every paragraph or list the slide shortened, go to the notes.
    """
    text = BADGE.sub("", text).strip()
    if len(text) <= LONG:
        return text, ""
    blocks = _blocks(text)
    shown, notes, lead_done = [], [], False
    for i, (kind, block) in enumerate(blocks):
        following = blocks[i + 1][0] if i + 1 < len(blocks) else None
        if kind == "prose" and not lead_done and is_reference(block):
            shown.append(block)  # the paper or source under the title
        elif kind == "prose" and not lead_done:
            lead_done = True
            head, cut = _lead(block, LEAD)
            shown.append(head)
            notes += [block] if cut else []
        elif kind == "prose" and len(block) <= INTRO and following in {"list", "math", "table", "fence"}:
            shown.append(block)
        elif kind == "prose":
            notes.append(block)
        elif kind == "list":
            short, cut = _short_list(block)
            shown.append(short)
            notes += [block] if cut else []
        else:
            shown.append(block)
    return "\n\n".join(shown), "\n\n".join(notes)


# ------------------------------------------------------------------ slide types
def _png_size(b64: str) -> tuple[int, int]:
    head = base64.b64decode(b64[:64] + "=" * (-len(b64[:64]) % 4))
    return struct.unpack(">II", head[16:24]) if head[:8] == b"\x89PNG\r\n\x1a\n" else (800, 400)


def _lines(text: str, chars: int) -> int:
    return sum(1 + len(line) // chars for line in text.rstrip("\n").split("\n"))


def _output_height(cell: Any) -> int:
    """Pixels the outputs of `cell` take on a slide (measured on the decks: a code line is 23 px)."""
    height = 0
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        if "image/png" in data:
            width, tall = _png_size(str(data["image/png"]).replace("\n", ""))
            height += min(tall * min(1.0, 1200 / max(width, 1)), 600) + 10
        else:
            text = out.get("text") or str(data.get("text/markdown", data.get("text/plain", "")))
            height += 23 * _lines(text, 110) + 10
    return int(height)


def _code_height(cell: Any) -> tuple[int, int]:
    """Pixels of the code of `cell` and of its outputs on a slide."""
    return 23 * _lines(cell.source, 100) + 25, _output_height(cell)


def _markdown_height(text: str) -> int:
    """Pixels a markdown text takes on a slide (headings, paragraphs of ~105 characters a line, bullets)."""
    height = 0
    for kind, block in _blocks(text):
        if kind == "heading":
            level = _heading_level(block)
            height += (60 * (1 + len(block) // 45) if level == 1 else 45 * (1 + len(block) // 60)) + 20
        elif kind == "list":
            height += 28 * _lines(re.sub(r"\n\s+(?![-*+]|\d+[.)])", " ", block), 100) + 18
        elif kind == "math":
            height += 60 * (1 + block.count("\\\\"))
        elif kind in {"fence", "table"}:
            height += 25 * _lines(block, 100) + 20
        else:
            height += 27 * _lines(" ".join(block.split()), 105) + 18
    return height


def _heading_level(text: str) -> int:
    m = re.match(r"(#{1,6})\s", text.lstrip())
    return len(m.group(1)) if m else 0


def _with(cell: Any, slide_type: str, part: str = "", **changes: Any) -> Any:
    """A copy of `cell` with `changes` and the slide type; `part` tells the id of a piece cut from a cell."""
    from nbformat import from_dict

    cell = copy.deepcopy(cell)
    for key, value in changes.items():
        cell[key] = from_dict(value)
    if part and "id" in cell:
        cell["id"] = f"{cell['id']}-{part}"
    cell.metadata["slideshow"] = from_dict({"slide_type": slide_type})
    return cell


def _skipped(cell: Any) -> bool:
    if cell.cell_type == "raw" or not cell.source.strip() or is_colab_cell(cell):
        return True
    if SKIP_TAGS & set(cell.metadata.get("tags", [])) or "# NBVAL_SKIP" in cell.source:
        return True
    code = [ln for ln in cell.source.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    return cell.cell_type == "code" and all(re.match(r"(import|from)\s", ln) for ln in code)


def slide_notebook(nb: Any) -> Any:
    """A copy of the lesson `nb` (cleaned by :func:`clean_notebook`) with a slide type on every cell.

    - a markdown cell opening with a ``#`` or ``##`` heading starts a slide, one with ``###`` or deeper
      a sub-slide (below it);
    - a long markdown cell is cut in two by :func:`outline`: its outline in place, its prose as notes;
    - any other cell is a fragment of the slide before it when it fits there (FIT pixels, estimated
      from its text, code lines and image sizes), else it starts a sub-slide; a text that fits there
      only without the code cell after it starts a sub-slide with that code (which may overflow it:
      then the slide scrolls); a code cell whose input and output together overflow a slide is cut in
      two: the code (placed as any cell), then its output on a sub-slide of its own;
    - skipped: the Colab install cell, cells of imports only, empty cells, cells tagged
      ``nbval-skip``, ``skip-slides`` or ``remove-cell`` (or marked ``# NBVAL_SKIP``);
    - the first cell shown is a slide whatever it is (reveal.js's rule too).
    """
    nb = clean_notebook(nb)
    cells: list[Any] = []
    used, joined = 0, False  # pixels on the current slide so far; a text waits for its code

    def add(cell: Any, kind: str, px: int, then: int = 0) -> None:
        """Put `cell` on the slide so far if it fits, else on a sub-slide; a text (`then` > 0 pixels
        of code after it) that fits there only without its code starts a sub-slide that the code joins."""
        nonlocal used, joined
        if kind == "fragment" and not joined and (used + px > FIT or (then and used + px + then > FIT)):
            kind = "subslide"
        joined = bool(then) and kind == "subslide"
        used = (0 if kind in {"slide", "subslide"} else used) + px
        cells.append(_with(cell, kind))

    def code_px(cell: Any) -> int:  # the pixels that stay with the code: not its output when cut
        n_in, n_out = _code_height(cell)
        return n_in if n_in + n_out > FIT and min(n_in, n_out) >= PART else n_in + n_out

    for i, cell in enumerate(nb.cells):
        if _skipped(cell):
            cells.append(_with(cell, "skip"))
        elif cell.cell_type == "markdown":
            level = _heading_level(cell.source)
            shown, notes = outline(cell.source)
            after = next((c for c in nb.cells[i + 1:] if not _skipped(c)), None)
            then = code_px(after) if after is not None and after.cell_type == "code" and not level else 0
            add(_with(cell, "-", source=shown), "slide" if 0 < level <= 2 else "subslide" if level else "fragment",
                _markdown_height(shown), then)
            if notes:
                cells.append(_with(cell, "notes", "notes", source=notes))
        else:
            n_in = _code_height(cell)[0]
            if code_px(cell) == n_in and cell.outputs:  # the code, then its output below it
                add(_with(cell, "-", outputs=[]), "fragment", n_in)
                add(_with(cell, "-", "output", metadata={**cell.metadata, "transient": {"remove_source": True}}),
                    "subslide", _output_height(cell))
            else:
                add(cell, "fragment", code_px(cell))
    first = next((c for c in cells if c.metadata["slideshow"]["slide_type"] not in {"skip", "notes"}), None)
    if first is not None:
        first.metadata["slideshow"]["slide_type"] = "slide"
    nb.cells = cells
    return nb


def count_slides(nb: Any) -> int:
    """How many slides (slides and sub-slides: reveal.js's leaf ``<section>``\\ s) `nb`'s deck has."""
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in {"slide", "subslide"} for c in nb.cells)


# ------------------------------------------------------------------ titles, assets, exporters
def lesson_title(nb: Any) -> str:
    """The text of the lesson's first heading ("Lesson 07 · MobileNet v1: ...")."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for kind, block in _blocks(cell.source):
                if kind == "heading":
                    return block.lstrip("#").strip()
    return ""


def lesson_summary(nb: Any, limit: int = 200) -> str:
    """One line on the lesson: the first sentence of the first paragraph under its title (markdown)."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    prose = [b for k, b in _blocks(BADGE.sub("", first.source)) if k == "prose"] if first else []
    if not prose:
        return ""
    about = [p for p in prose if not is_reference(p) and not re.fullmatch(r"\*\*[^*]+\*\*:?", p.strip())]
    sentence = _sentences(" ".join((about or prose)[0].split()))[0]
    if len(sentence) <= limit:
        return sentence
    clause = max(sentence.rfind(": ", 0, limit), sentence.rfind("; ", 0, limit))  # up to a colon if one is near
    if clause > limit // 3 and _balanced(sentence[:clause]):
        return sentence[:clause] + " …"
    return sentence[:limit].rsplit(" ", 1)[0] + " …"
