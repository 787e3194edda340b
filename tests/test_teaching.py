"""`make slides` and `make handouts` (lecture_utils.teaching, .slideshow, .browser).

The slide rule on small made-up notebooks; one lesson's deck built and opened offline in headless
Chromium (the title slide shows, the deck has as many slides as the rule gives); a handout with its
outputs and no widget or progress text, its PDF, and the index of all nine lessons. The tests that
need Chromium skip without it (Debian: apt-get install chromium).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")

from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402

from lecture_utils import browser, slideshow, teaching  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "07_MobileNetV1.ipynb"  # a small lesson
needs_chromium = pytest.mark.skipif(browser.find_chromium() is None,
                                    reason="no headless Chromium here (Debian: apt-get install chromium)")
METER_LINE = "epoch 1/2:  40%|####      | 23/57 [00:03<00:05, 6.10batch/s, loss=1.2]"
COLAB = '# Colab: install\nimport sys\nif "google.colab" in sys.modules:\n    pass'


def stream(text: str) -> dict:
    return new_output("stream", name="stdout", text=text)


def kinds(nb) -> list[tuple[str, str]]:
    return [(c.metadata["slideshow"]["slide_type"], c.source.split("\n")[0][:20]) for c in nb.cells]


def small_lesson():
    return new_notebook(cells=[
        new_markdown_cell("# Lesson 99 · Tiny\n\n[![Open In Colab](https://colab.research.google.com/assets/"
                          "colab-badge.svg)](https://colab.research.google.com/x.ipynb)\n\nA tiny lesson."),
        new_code_cell(COLAB),
        new_code_cell("import torch\nfrom torch import nn"),
        new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(1)", outputs=[stream("1\n")]),
        new_markdown_cell("## 1. First idea\n\nShort text."),
        new_markdown_cell("A remark on it."),
        new_markdown_cell("### A detail"),
        new_code_cell("print(2)", outputs=[stream("2\n")], metadata={"tags": ["nbval-skip"]}),
        new_code_cell("train()", outputs=[
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                             "text/plain": "epoch 1/2:   0%|          | 0/57 [00:00<?, ?batch/s]"}),
            new_output("display_data", data={"text/plain": METER_LINE}),
            stream("epoch 001, train [loss: 2.062, acc: 25.87%]\n"),
            stream("epoch 001, val   [loss: 2.397, acc: 10.00%]\n")]),
    ], metadata={"widgets": {"state": {}}, "kernelspec": {"name": "python3", "display_name": "Python 3"}})


# ------------------------------------------------------------------ the slide rule
def test_headings_start_slides_and_the_rest_follows_them():
    nb = slideshow.slide_notebook(small_lesson())
    assert kinds(nb) == [
        ("slide", "# Lesson 99 · Tiny"),
        ("skip", "import torch"),  # imports only (the Colab cell is gone from the copy altogether)
        ("fragment", "print(1)"),  # the # NBVAL_IGNORE_OUTPUT line is gone
        ("slide", "## 1. First idea"),
        ("fragment", "A remark on it."),
        ("subslide", "### A detail"),
        ("skip", "print(2)"),  # tagged nbval-skip
        ("fragment", "train()"),
    ]
    assert slideshow.count_slides(nb) == 3
    assert "colab-badge" not in nb.cells[0].source and "A tiny lesson." in nb.cells[0].source


def test_the_lesson_itself_is_left_as_it_was():
    nb = small_lesson()
    before = nbformat.writes(nb)
    slideshow.slide_notebook(nb)
    assert nbformat.writes(nb) == before


def test_a_long_text_keeps_its_outline_on_the_slide_and_its_prose_in_the_notes():
    prose = "This paragraph explains at length. " * 12
    text = (f"## 2. An idea\n\nThe idea in one sentence. {prose}\n\nA second paragraph that only explains. {prose}"
            f"\n\n**Steps**\n\n- first step, short;\n- second step. {prose}\n\n$$a = b + c$$")
    shown, notes = slideshow.outline(text)
    assert shown.startswith("## 2. An idea\n\nThe idea in one sentence.")
    assert "A second paragraph" not in shown and "A second paragraph" in notes
    assert "**Steps**" in shown and "- first step, short;" in shown and "$$a = b + c$$" in shown
    assert "- second step." in shown and len(shown) < len(text) // 2  # the bullet cut to its first sentence
    nb = slideshow.slide_notebook(new_notebook(cells=[new_markdown_cell(text)]))
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == ["slide", "notes"]


def test_sentences_are_not_cut_after_initials_inside_math_or_emphasis():
    text = "A. Krizhevsky and G. E. Hinton wrote it. **The result.** It costs $O(n. m)$ here. Done."
    assert slideshow._sentences(text) == ["A. Krizhevsky and G. E. Hinton wrote it.", "**The result.**",
                                          "It costs $O(n. m)$ here.", "Done."]


def test_a_code_cell_taller_than_a_slide_shows_its_code_then_its_output():
    code = "\n".join(f"x{i} = {i}" for i in range(30))
    out = "\n".join(f"row {i}" for i in range(30))
    nb = slideshow.slide_notebook(new_notebook(cells=[new_markdown_cell("## Run"),
                                                      new_code_cell(code, outputs=[stream(out)])]))
    code_part, output_part = nb.cells[1:]
    assert code_part.metadata["slideshow"]["slide_type"] == "subslide" and code_part.outputs == []
    assert output_part.metadata["slideshow"]["slide_type"] == "subslide"
    assert output_part.metadata["transient"] == {"remove_source": True} and output_part.outputs
    assert slideshow.count_slides(nb) == 3


def test_the_clean_copy_has_no_widget_progress_text_or_colab_cell():
    nb = slideshow.clean_notebook(small_lesson(), colab_link=True)
    text = nbformat.writes(nb)
    assert "widget-view" not in text and "batch/s" not in text and "NBVAL" not in text
    assert "google.colab" not in text and "widgets" not in nb.metadata
    assert "[Open in Colab](https://colab.research.google.com/x.ipynb)" in nb.cells[0].source
    train = nb.cells[-1]
    assert [o.output_type for o in train.outputs] == ["stream"]  # the two epoch lines as one block
    assert train.outputs[0].text.count("epoch 001") == 2
    assert nb.metadata["title"] == "Lesson 99 · Tiny"


def test_progress_meters_are_told_from_results():
    assert slideshow._is_meter(METER_LINE)
    assert slideshow._is_meter("57batch [00:03, 15.20batch/s]")
    assert not slideshow._is_meter("epoch 001, train [loss: 2.062, acc: 25.87%]")
    assert not slideshow._is_meter("| 64 | 0.1267 | 7.89 |")


def test_every_lesson_gets_a_deck_of_its_own_structure():
    for path in teaching.lessons():
        nb = slideshow.slide_notebook(nbformat.read(path, as_version=4))
        types = [c.metadata["slideshow"]["slide_type"] for c in nb.cells]
        headings = sum(1 for c in nb.cells if c.cell_type == "markdown" and re.match(r"#{1,2} ", c.source))
        assert types[0] == "slide" and set(types) <= {"slide", "subslide", "fragment", "notes", "skip", "-"}
        assert types.count("slide") == headings, path.name
        assert slideshow.count_slides(nb) >= headings + 3, path.name
        assert slideshow.lesson_title(nb).startswith(f"Lesson {path.name[:2]}")


# ------------------------------------------------------------------ one lesson's deck
@pytest.fixture(scope="module")
def deck(tmp_path_factory):
    pytest.importorskip("sphinx_revealjs")
    pytest.importorskip("jupyter_server_mathjax")
    out = tmp_path_factory.mktemp("slides")
    counts = teaching.build_slides([LESSON], out)
    return out / f"{LESSON.stem}.slides.html", counts[LESSON.stem]


def test_the_deck_loads_no_script_style_or_font_from_the_web(deck):
    path, _ = deck
    page = path.read_text()
    refs = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]*)\"", page) + re.findall(r"<link\b[^>]*\bhref=\"([^\"]*)\"", page)
    refs += re.findall(r"@import\s+(?:url\()?[\"']?([^\"')\s;]+)", page) + re.findall(r"url\([\"']?(https?:[^\"')]*)", page)
    assert refs and not [r for r in refs if re.match(r"(https?:)?//", r)]
    for ref in refs:  # reveal.js and MathJax are copied beside the deck
        assert (path.parent / html.unescape(ref).split("?")[0]).is_file(), ref
    assert "reveal.js/dist/reveal.js" in page and "unpkg.com" not in page and "require.min.js" not in page


@needs_chromium
def test_the_deck_renders_offline_with_its_title_and_all_its_slides(deck):
    path, count = deck
    dom = browser.dump_dom(path.as_uri())  # offline: no host name resolves
    assert re.search(r'<div class="reveal [^"]*\bready\b', dom), "reveal.js did not start"
    sections = re.findall(r"<section\b[^>]*>", dom)
    stacks = [s for s in sections if re.search(r'class="[^"]*\bstack\b', s)]  # a slide holding sub-slides
    assert len(sections) - len(stacks) == count
    title = slideshow.lesson_title(nbformat.read(LESSON, as_version=4))
    shown = re.search(r'<section\b[^>]*class="[^"]*\bpresent\b[^"]*"[^>]*>(.*?)</section>', dom, re.S).group(1)
    assert html.escape(title, quote=False) in re.sub(r"<a class=\"anchor-link\".*?</a>", "", shown)
    assert 'class="MathJax' in dom  # the formulas were typeset by the local MathJax
    assert '<aside class="notes">' in dom


@needs_chromium
def test_the_offline_check_fails_a_deck_that_needs_a_cdn(tmp_path):
    from nbconvert import SlidesExporter

    body, _ = SlidesExporter().from_notebook_node(new_notebook(cells=[new_markdown_cell("# Title")]))
    page = tmp_path / "cdn.slides.html"
    page.write_text(body)
    assert not re.search(r'class="reveal [^"]*\bready\b', browser.dump_dom(page.as_uri(), 3000))


# ------------------------------------------------------------------ handouts
@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    pytest.importorskip("jupyter_server_mathjax")
    out = tmp_path_factory.mktemp("handouts")
    teaching.copy_assets(out, reveal=False)
    return teaching.build_handout(LESSON, out)


def test_the_handout_has_the_outputs_and_no_widget_or_progress_text(handout):
    page = handout.read_text()
    assert page.count('class="jp-OutputArea-child') >= 10 and "data:image/png;base64," in page
    assert "widget-view" not in page and "google.colab" not in page and "NBVAL_" not in page
    assert not slideshow.METER.search(html.unescape(re.sub(r"<[^>]+>", "", page)))
    assert not re.findall(r"<script\b[^>]*\bsrc=\"https?:", page)
    assert 'href="index.html"' in page


@needs_chromium
def test_the_handout_prints_to_pdf(handout):
    pdf = browser.pdf(handout, handout.with_suffix(".pdf"), budget_ms=8000)
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 50_000


def test_the_index_lists_all_nine_lessons(tmp_path):
    page = teaching.write_index(teaching.lessons(), tmp_path, "Handouts", lambda s: [(f"{s}.html", "HTML")])
    text = page.read_text()
    items = re.findall(r"<li>(.*?)</li>", text, re.S)
    assert len(items) == 10  # lessons 01-08 and lesson 09 in two parts
    for n, item in zip([1, 2, 3, 4, 5, 6, 7, 8, 9, 9], items):
        assert f"Lesson {n:02d}" in item and re.search(r'<p class="summary">\S', item)


def test_handouts_without_chromium_say_so_and_fail(tmp_path, monkeypatch, capsys):
    lesson = tmp_path / "99_Tiny.ipynb"
    nbformat.write(small_lesson(), lesson)
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    assert teaching.main(["handouts", str(lesson), "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    assert "no headless Chromium" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "out" / "99_Tiny.html").is_file() and not (tmp_path / "out" / "99_Tiny.pdf").exists()
    assert teaching.main(["handouts", str(lesson), "--out", str(tmp_path / "out"), "--no-pdf"]) == 0
