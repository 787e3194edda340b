"""Slides and handouts made from the lessons at build time: ``make slides`` and ``make handouts``.

The lessons carry no slide metadata: ``lecture_utils.slideshow.slide_notebook`` gives a copy of a
lesson its slide types from the lesson's own structure (the rule is its docstring) when the deck is
built, and ``count_slides`` says how many slides that makes. The decks are reveal.js from the PyPI
package sphinx-revealjs (which ships reveal.js's ``dist/`` and ``plugin/`` files) and MathJax 2 from
jupyter-server-mathjax, both copied beside the decks, so a deck opens from a USB stick with no
network: no script, style sheet or font comes from a CDN.

Handouts are the lessons' stored outputs as read-only HTML (nothing is executed), an ``index.html``,
and a PDF per lesson printed by headless Chromium (``lecture_utils.browser``). Both leave out the
Colab install cell, the ``# NBVAL_*`` markers, widget outputs and tqdm progress text.

    python -m lecture_utils.teaching slides   [--out build/slides]   [NOTEBOOK ...]
    python -m lecture_utils.teaching handouts [--out build/handouts] [--no-pdf] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import html
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lecture_utils import browser
from lecture_utils.slideshow import clean_notebook, count_slides, lesson_summary, lesson_title, slide_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
MATHJAX_QUERY = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def lessons(paths: Sequence[str | Path] = ()) -> list[Path]:
    return [Path(p) for p in paths] or sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))  # 01_ ... 08_, 09a_, 09b_


def reveal_dir() -> Path:
    """reveal.js's folder (``dist/``, ``plugin/``) inside the sphinx-revealjs package (``make setup``)."""
    try:
        import sphinx_revealjs
    except ImportError as err:
        raise SystemExit("reveal.js comes from the PyPI package sphinx-revealjs: run `make setup`") from err
    found = sorted(Path(sphinx_revealjs.__file__).parent.rglob("dist/reveal.js"))
    if not found:
        raise SystemExit(f"no dist/reveal.js inside {Path(sphinx_revealjs.__file__).parent}")
    return found[0].parent.parent


def mathjax_dir() -> Path:
    """MathJax 2's folder inside the jupyter-server-mathjax package (``make setup``)."""
    try:
        import jupyter_server_mathjax
    except ImportError as err:
        raise SystemExit("MathJax comes from the PyPI package jupyter-server-mathjax: run `make setup`") from err
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def copy_assets(out: Path, reveal: bool) -> None:
    """MathJax (and reveal.js's dist/, plugin/ and licence) into `out`, where the pages find them."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(mathjax_dir(), out / "mathjax", dirs_exist_ok=True)
    if reveal:
        src = reveal_dir()
        for part in ("dist", "plugin"):
            shutil.copytree(src / part, out / "reveal.js" / part, dirs_exist_ok=True)
        for licence in src.glob("LICENSE*"):
            shutil.copy2(licence, out / "reveal.js" / licence.name)


NO_CDN = """{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
"""

SLIDES_TEMPLATE = """{%- extends 'index.html.j2' -%}
""" + NO_CDN + """{%- block html_head_css -%}
<style type="text/css">
.reveal .slides > section > section { height: 100%; overflow-y: auto; overflow-x: hidden; }
.reveal .slides section { text-align: left; }
.reveal .slides h1, .reveal .slides h2, .reveal .slides h3, .reveal .slides h4 { text-transform: none; }
.reveal .jp-RenderedHTMLCommon h1, .reveal .jp-RenderedHTMLCommon h2 { margin-top: 0.3em; }
.reveal .jp-OutputArea-output img { max-height: 600px; width: auto; }
.reveal .jp-InputArea-editor pre { white-space: pre-wrap; }
.reveal .jp-OutputArea-output pre { overflow-x: auto; }
.reveal .jp-RenderedHTMLCommon p, .reveal .jp-RenderedHTMLCommon li { line-height: 1.35; }
</style>
{%- endblock html_head_css -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({
  controls: true, progress: true, hash: true, center: false,
  transition: "{{ resources.reveal.transition }}", slideNumber: "{{ resources.reveal.number }}",
  width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }}, plugins: [RevealNotes]
});
function typeset(event) {  // MathJax measures hidden slides wrong: set the math of the slide shown again
  if (window.MathJax && MathJax.Hub && event.currentSlide) {
    MathJax.Hub.Queue(["Rerender", MathJax.Hub, event.currentSlide]);
  }
}
Reveal.on("ready", typeset);
Reveal.on("slidechanged", typeset);
</script>
{% endblock footer_js %}
"""

HANDOUT_TEMPLATE = """{%- extends 'index.html.j2' -%}
""" + NO_CDN + """{%- block html_head_css -%}
<style type="text/css">
body.jp-Notebook { max-width: 60rem; margin: 0 auto; padding: 1rem; }
nav.handout { font: 14px sans-serif; margin: 0 0 1rem; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  nav.handout { display: none; }
  body.jp-Notebook { max-width: none; padding: 0; }
  h1, h2, h3 { break-after: avoid-page; }
  .jp-OutputArea-child { break-inside: avoid-page; }
  :root { --jp-code-font-size: 9px; }
  .jp-OutputArea-output pre, .jp-InputArea-editor pre { white-space: pre-wrap; }
}
</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
<nav class="handout">{{ resources.handout_nav }}</nav>
{%- endblock body_header -%}
"""


def _exporter(kind: str) -> Any:
    common = {"mathjax_url": f"mathjax/{MATHJAX_QUERY}"}
    if kind == "slides":
        from nbconvert import SlidesExporter

        return SlidesExporter(raw_template=SLIDES_TEMPLATE, reveal_url_prefix="reveal.js", reveal_theme="white",
                              reveal_transition="slide", reveal_number="c/t", reveal_width="1280",
                              reveal_height="800", exclude_input_prompt=True, exclude_output_prompt=True, **common)
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", raw_template=HANDOUT_TEMPLATE, **common)


def _read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


def build_deck(notebook: Path, out: Path, exporter: Any = None) -> int:
    """Write `notebook`'s deck into `out` (``NN_name.slides.html``); its number of slides."""
    nb = slide_notebook(_read(notebook))
    body, _ = (exporter or _exporter("slides")).from_notebook_node(nb, resources={"metadata": {"name": notebook.stem}})
    (out / f"{notebook.stem}.slides.html").write_text(body, encoding="utf-8")
    return count_slides(nb)


def build_slides(notebooks: Sequence[Path], out: Path) -> dict[str, int]:
    """The decks of `notebooks` in `out`, reveal.js and MathJax beside them, and an index; slides per deck."""
    copy_assets(out, reveal=True)
    exporter, counts = _exporter("slides"), {}
    for path in notebooks:
        counts[path.stem] = build_deck(path, out, exporter)
    write_index(notebooks, out, "Slides", lambda stem: [(f"{stem}.slides.html", "slides")])
    return counts


# ------------------------------------------------------------------ handouts, index, Chromium
def build_handout(notebook: Path, out: Path, exporter: Any = None, pdf: bool = False) -> Path:
    nb = clean_notebook(_read(notebook), colab_link=True)
    links = [("index.html", "All lessons")] + ([(f"{notebook.stem}.pdf", "PDF")] if pdf else [])
    deck = out.parent / "slides" / f"{notebook.stem}.slides.html"
    links += [(f"../slides/{deck.name}", "Slides")] if deck.exists() else []
    nav = " · ".join(f'<a href="{html.escape(href)}">{text}</a>' for href, text in links)
    resources = {"metadata": {"name": notebook.stem}, "handout_nav": nav}
    body, _ = (exporter or _exporter("handout")).from_notebook_node(nb, resources=resources)
    page = out / f"{notebook.stem}.html"
    page.write_text(body, encoding="utf-8")
    return page


def write_index(notebooks: Sequence[Path], out: Path, what: str, links: Any) -> Path:
    """``index.html`` in `out`: each lesson's title, one-line summary and `links(stem)` [(href, text)]."""
    from nbconvert.filters import markdown2html

    rows = []
    for path in notebooks:
        nb = _read(path)
        summary = markdown2html(lesson_summary(nb)).strip().removeprefix("<p>").removesuffix("</p>")
        refs = " · ".join(f'<a href="{html.escape(h)}">{t}</a>' for h, t in links(path.stem))
        rows.append(f'<li><a class="title" href="{html.escape(links(path.stem)[0][0])}">'
                    f"{html.escape(lesson_title(nb))}</a> <span class=\"links\">({refs})</span>"
                    f'<p class="summary">{summary}</p></li>')
    page = out / "index.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cnn-lectures: {what.lower()}</title>
<script src="mathjax/{MATHJAX_QUERY}"></script>
<style>body {{ font: 17px/1.45 sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }}
li {{ margin: 0 0 1rem; }} .title {{ font-weight: bold; }} .links, .summary {{ color: #444; }}
.summary {{ margin: 0.2rem 0 0; }}</style></head>
<body><h1>cnn-lectures: {what.lower()}</h1>
<p>Nine lessons on classic convolutional networks, read from their stored outputs.</p>
<ol>
{chr(10).join(rows)}
</ol></body></html>
""", encoding="utf-8")
    return page


def build_handouts(notebooks: Sequence[Path], out: Path, pdf: bool = True) -> list[Path]:
    """The handouts of `notebooks` in `out`: one HTML page each, their PDFs with `pdf`, and an index."""
    copy_assets(out, reveal=False)
    exporter = _exporter("handout")
    pages = [build_handout(path, out, exporter, pdf=pdf) for path in notebooks]
    pdfs = [browser.pdf(page, page.with_suffix(".pdf")) for page in pages] if pdf else []
    write_index(notebooks, out, "Handouts",
                lambda stem: [(f"{stem}.html", "HTML")] + ([(f"{stem}.pdf", "PDF")] if pdf else []))
    return pages + pdfs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.teaching", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["slides", "handouts"])
    parser.add_argument("notebooks", nargs="*", help="lesson notebooks (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, help="output folder (default: build/slides or build/handouts)")
    parser.add_argument("--no-pdf", action="store_true", help="handouts: HTML only, no PDF (no Chromium needed)")
    args = parser.parse_args(argv)
    notebooks, out = lessons(args.notebooks), args.out or ROOT / "build" / args.what
    if args.what == "slides":
        counts = build_slides(notebooks, out)
        for stem, n in counts.items():
            print(f"{stem}: {n} slides -> {out / stem}.slides.html")
        print(f"{sum(counts.values())} slides in {len(counts)} decks; open {out / 'index.html'}")
        return 0
    pdf = not args.no_pdf and browser.find_chromium() is not None
    written = build_handouts(notebooks, out, pdf=pdf)
    print(f"{len(written)} files in {out}; open {out / 'index.html'}")
    if not args.no_pdf and not pdf:
        print("make handouts: no headless Chromium found (Debian: apt-get install chromium fonts-noto-cjk, "
              "or set CHROMIUM=...): wrote the HTML handouts, not the PDFs (`make handouts PDF=no` skips them)",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
