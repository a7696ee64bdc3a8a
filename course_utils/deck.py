"""A lesson notebook as one self-contained HTML slide deck: no network, no server, no library.

Cells are grouped into slides by their ``slideshow`` metadata (written by the build, see
:mod:`course_utils.slides`). Everything the deck needs is inside the file:

* Markdown is rendered by mistune (which nbconvert uses), math is turned into MathML by
  latex2mathml (browsers draw MathML themselves), code is coloured by Pygments;
* figures are PNG data URIs, exactly as the notebook stored them;
* a widget shows what it showed when the lesson ran (its output and its controls' values, from
  the widget state the notebook runner stored), with a note that it is live in JupyterLab;
* the style sheet and the few lines of navigation script in ``deck_assets/`` are inlined;
* a long code cell shows its first lines and folds the rest (:data:`FOLD_AFTER`), so that its
  figure stays on the slide.
"""

import html
import json
import re
from pathlib import Path

import mistune
from latex2mathml.converter import convert as latex_to_mathml
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from course_utils.slides import CONTINUE, SLIDE, SUBSLIDE, slide_types

ASSETS = Path(__file__).with_name("deck_assets")
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Fenced blocks, code spans and escaped dollars are matched first, and kept as they are, so
# that a "$" there stays a dollar. Inline math may run onto the next line (not across a blank
# one); as in pandoc, it starts with a non-space after "$" and ends with a non-space before a
# "$" not followed by a digit, so "costs $5 or $10" stays prose.
_MATH_OR_CODE = re.compile(
    r"(?P<fence>^[ \t]*(?P<mark>```|~~~).*?^[ \t]*(?P=mark))|(?P<code>`[^`\n]+`)|(?P<escaped>\\\$)"
    r"|\$\$(?P<display>.+?)\$\$"
    r"|\$(?P<inline>(?=\S)(?:[^$\n]|\n(?![ \t]*\n))+?(?<=\S))\$(?!\d)", re.S | re.M)
_PLACEHOLDER = "MATHPLACEHOLDER{}X"
_MARKDOWN = mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])
_FORMATTER = HtmlFormatter(nowrap=True)


def markdown_html(source: str) -> str:
    """A Markdown cell as HTML, its ``$...$`` and ``$$...$$`` math as MathML."""
    maths = []

    def protect(match):
        if match["display"] is None and match["inline"] is None:
            return match[0]  # code, or an escaped dollar
        display = match["display"] is not None
        maths.append(math_html((match["display"] if display else match["inline"]).strip(), display))
        return _PLACEHOLDER.format(len(maths) - 1)

    rendered = _MARKDOWN(_MATH_OR_CODE.sub(protect, source))
    for index, math in enumerate(maths):
        rendered = rendered.replace(_PLACEHOLDER.format(index), math)
    return rendered


# A code cell longer than FOLD_AFTER lines shows its first SHOWN lines and folds the rest (a
# click, or C for every fold of the slide, opens it), so that its output, usually what the
# room looks at, stays on the slide; on a slide that still does not fit beside a figure, the
# deck folds those first lines away too.
FOLD_AFTER, SHOWN = 18, 12


def math_html(latex: str, display: bool) -> str:
    """LaTeX as MathML; what latex2mathml cannot read is shown as its source, marked."""
    try:
        return latex_to_mathml(latex, display="block" if display else "inline")
    except Exception:  # latex2mathml raises several kinds of error on malformed input
        return f'<code class="math-error" title="math the deck could not convert">{html.escape(latex)}</code>'


def code_html(source: str) -> str:
    lines = source.splitlines()
    if len(lines) <= FOLD_AFTER:
        return f'<pre class="code">{_highlighted(source)}</pre>'
    head, rest = "\n".join(lines[:SHOWN]), "\n".join(lines[SHOWN:])
    return (f'<pre class="code folded-head">{_highlighted(head)}</pre><details class="fold">'
            f'<summary><span class="more">{len(lines) - SHOWN} more lines of code</span>'
            f'<span class="all">the code ({len(lines)} lines)</span> (click, or C)</summary>'
            f'<pre class="code">{_highlighted(rest)}</pre></details>')


def _highlighted(source: str) -> str:
    return highlight(source, PythonLexer(), _FORMATTER).rstrip("\n")


def _text(text) -> str:
    text = "".join(text) if isinstance(text, list) else text
    # A progress line redrawn with "\r" shows its last state, as a terminal would.
    lines = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    return html.escape(_strip_ansi("\n".join(lines)))


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def output_html(output: dict, widgets: dict) -> str:
    """One output of a code cell (stream, result, figure, error or widget) as HTML."""
    kind = output.get("output_type")
    if kind == "stream":
        return f'<pre class="output {output.get("name", "stdout")}">{_text(output["text"])}</pre>'
    if kind == "error":
        traceback = "\n".join(output.get("traceback", []))
        return f'<pre class="output error">{_text(traceback)}</pre>'
    data = output.get("data", {})
    if WIDGET_VIEW in data:
        return widget_html(data[WIDGET_VIEW]["model_id"], widgets)
    for image in ("image/png", "image/jpeg"):
        if image in data:
            return (f'<img class="figure" alt="figure" '
                    f'src="data:{image};base64,{_joined(data[image]).strip()}">')
    if "image/svg+xml" in data:
        return f'<div class="figure">{_joined(data["image/svg+xml"])}</div>'
    if "text/html" in data:
        return f'<div class="output html">{_joined(data["text/html"])}</div>'
    if "text/markdown" in data:
        return markdown_html(_joined(data["text/markdown"]))
    if "text/latex" in data:
        return markdown_html(_joined(data["text/latex"]))
    if "text/plain" in data:
        return f'<pre class="output result">{_text(data["text/plain"])}</pre>'
    return ""


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def widget_html(model_id: str, widgets: dict) -> str:
    """A widget as it was when the lesson ran: its controls' values and its output."""
    parts = _widget_parts(model_id, widgets)
    if not parts:
        return '<p class="widget-note">An interactive widget: run the lesson in JupyterLab to use it.</p>'
    return ('<div class="widget">' + "".join(parts) + '<p class="widget-note">As it was when '
            'the lesson ran; live in JupyterLab.</p></div>')


def _widget_parts(model_id: str, widgets: dict) -> list[str]:
    model = widgets.get(model_id)
    if model is None:
        return []
    state = model.get("state", {})
    if model.get("model_name") == "OutputModel":
        return [output_html(output, widgets) for output in state.get("outputs", [])]
    if "children" in state:
        return [part for child in state["children"]
                for part in _widget_parts(child.removeprefix("IPY_MODEL_"), widgets)]
    if "value" in state and state.get("description") is not None:
        value = state["value"]
        labels = state.get("_options_labels")
        if labels and isinstance(state.get("index"), int):
            value = labels[state["index"]]
        return [f'<span class="control">{html.escape(str(state["description"]))} '
                f'<b>{html.escape(str(value))}</b></span>']
    return []


def cell_html(cell, widgets: dict) -> str:
    if cell.cell_type == "markdown":
        return f'<div class="markdown">{markdown_html(cell.source)}</div>'
    if cell.cell_type != "code":
        return ""
    outputs = "".join(output_html(output, widgets) for output in cell.get("outputs", []))
    return f'<div class="cell">{code_html(cell.source)}{outputs}</div>'


def grouped_slides(notebook) -> list[tuple[str, list]]:
    """The notebook's cells grouped into slides: (slide type, cells) per slide, in order.

    The stored ``slideshow`` metadata decides where a slide starts; a notebook without any
    (not built by the course) is grouped by :func:`course_utils.slides.slide_types`."""
    cells = notebook.cells
    stored = [cell.metadata.get("slideshow", {}).get("slide_type", CONTINUE) for cell in cells]
    kinds = stored if any(kind != CONTINUE for kind in stored) else slide_types(cells)
    groups = []
    for cell, kind in zip(cells, kinds):
        if kind in ("skip", "notes"):  # RISE's hidden cells and speaker notes
            continue
        if not groups or kind in (SLIDE, SUBSLIDE):
            groups.append((kind if groups else SLIDE, []))
        groups[-1][1].append(cell)
    return groups


def _title(cells) -> str:
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "Slides"


def deck_html(notebook) -> str:
    """The whole deck, one HTML document."""
    widgets = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    title = _title(notebook.cells)
    sections, section_title, column, row = [], title, 0, 0
    for kind, cells in grouped_slides(notebook):
        if kind == SLIDE:
            column, row = column + 1, 1
            section_title = _title(cells) if cells[0].cell_type == "markdown" else section_title
        else:
            row += 1
        body = "".join(cell_html(cell, widgets) for cell in cells)
        sections.append(f'<section class="slide" data-column="{column}" data-row="{row}" '
                        f'data-section="{html.escape(section_title)}"><div class="content">'
                        f'{body}</div></section>')
    style = (ASSETS / "deck.css").read_text(encoding="utf-8") + _FORMATTER.get_style_defs(".code")
    script = (ASSETS / "deck.js").read_text(encoding="utf-8")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{html.escape(title)}</title>\n<style>\n{style}\n</style>\n</head>\n<body>\n'
            f'<main class="deck">\n' + "\n".join(sections) + '\n</main>\n'
            f'<footer><div class="progress"><div class="bar"></div></div>'
            f'<span class="where"></span><span class="number"></span></footer>\n'
            f'<script>\nconst DECK_TITLE = {json.dumps(title)};\n{script}\n</script>\n'
            f'</body>\n</html>\n')
