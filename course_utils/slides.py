"""Slides from the lessons' own source: where each slide starts, and the ``slides`` command.

A lesson is written to be read, and the same cells can be presented. No slide metadata is
written by hand: :func:`mark_slides`, called by the notebook build, gives each cell RISE's
``slideshow`` metadata from the lesson's structure, by these rules:

* the title cell and every ``##`` section heading start a new slide (reveal.js's horizontal
  axis: one "column" per section);
* a ``###`` heading, a Markdown cell after a code cell (the explanation of the code that
  follows it), and a cell that would overflow what a projected slide holds
  (:data:`SLIDE_LINES`), start a sub-slide (the vertical axis, within the section), except
  that a cell stays with the text that introduces it (ending with a colon);
* any other cell joins the slide before it.

Before that, :func:`split_markdown` cuts a Markdown cell at each heading inside it and, where
it is longer than a slide, between paragraphs, so that prose reads the same in the notebook and
fits the slides. A code cell is never cut: one longer than a slide is on a slide of its own,
which the deck shrinks a little to fit and lets scroll for the rest. The same metadata drives both ways of presenting:

* live, in JupyterLab, through the jupyterlab-rise extension (the "Render as slideshow" button
  of the notebook toolbar, or ``Alt+R``): the cells run in the presentation;
* as a self-contained HTML file, through ``python3 course.py slides [NN ...]``
  (:mod:`course_utils.deck`): the lesson is run once, in the presenter style, and its outputs
  go into one offline file per notebook under ``slides/``.
"""

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "slides"
SLIDE, SUBSLIDE, CONTINUE = "slide", "subslide", "-"
# What one projected slide holds at the deck's type size: lines of prose wrapped at WRAP
# characters, or lines of code. A code cell's output is counted as OUTPUT_LINES more (a printed
# line or two), or FIGURE_LINES if its code draws (a figure is shrunk to what is left).
SLIDE_LINES = 18
WRAP = 100
OUTPUT_LINES = 3
FIGURE_LINES = 10
LEAD_LINES = 4  # a slide holding no more than this (a heading, a lead-in) keeps the next cell
_DRAWS = re.compile(r"\b(plt|fig|plot_\w+|show_\w+|\w+_widget|\w+_figure)\b")
# The notebook-wide options jupyterlab-rise reads from the notebook's "rise" metadata.
# Long cells scroll instead of being cut off, and a slide starts at the top, as a page does.
RISE_OPTIONS = {"scroll": True, "center": False, "slideNumber": True, "transition": "none"}


_HEADING = re.compile(r"^#{1,3} ")


def prose_lines(lines: list[str]) -> int:
    """How many slide lines some lines of Markdown take, wrapped at :data:`WRAP`."""
    return sum(max(1, math.ceil(len(line) / WRAP)) for line in lines if line.strip())


def _blocks(source: str) -> list[list[str]]:
    """The Markdown's blocks: paragraphs, lists, tables, fenced code and $$ math, each a list of
    lines; a heading line starts a block of its own. Blank lines inside a fence or a $$ block
    do not end it."""
    blocks, current = [], []
    in_code = in_math = False
    for line in source.splitlines():
        stripped = line.strip()
        if not (in_code or in_math) and (_HEADING.match(line) or not stripped):
            if current:
                blocks.append(current)
            current = [line] if stripped else []
        else:
            current.append(line)
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
        elif not in_code and stripped.count("$$") % 2 == 1:  # "$$x$$" opens and closes
            in_math = not in_math
    if current:
        blocks.append(current)
    return blocks


def split_markdown(source: str) -> list[str]:
    """A Markdown cell's text cut into cells: before each heading that is not at its top, and
    between blocks where a slide (:data:`SLIDE_LINES`) would overflow, unless the block before
    ends with a colon (it introduces what follows)."""
    chunks, used = [], 0
    for block in _blocks(source):
        lines = prose_lines(block)
        introduced = bool(chunks) and chunks[-1][-1][-1].rstrip().endswith(":")
        if not chunks or _HEADING.match(block[0]) or (used + lines > SLIDE_LINES and not introduced):
            chunks.append([])
            used = 0
        chunks[-1].append(block)
        used += lines
    return ["\n\n".join("\n".join(block) for block in chunk) for chunk in chunks] or [source]


def cell_lines(cell) -> int:
    """How many lines of a slide the cell takes, by the rule above."""
    lines = cell.source.splitlines()
    if cell.cell_type == "markdown":
        return prose_lines(lines)
    return len(lines) + (FIGURE_LINES if _DRAWS.search(cell.source) else OUTPUT_LINES)


def slide_types(cells) -> list[str]:
    """The slide type (:data:`SLIDE`, :data:`SUBSLIDE` or :data:`CONTINUE`) of each cell."""
    types, used = [], 0
    for index, cell in enumerate(cells):
        lines = cell_lines(cell)
        markdown = cell.cell_type == "markdown"
        heading = cell.source.lstrip() if markdown else ""
        previous = cells[index - 1] if index else None
        after_code = markdown and previous is not None and previous.cell_type == "code"
        introduced = (previous is not None and previous.cell_type == "markdown"
                      and previous.source.rstrip().endswith(":"))
        if index == 0 or heading.startswith(("# ", "## ")):
            kind = SLIDE
        elif heading.startswith("### ") or after_code or (
                used + lines > SLIDE_LINES and used > LEAD_LINES and not introduced):
            kind = SUBSLIDE
        else:
            kind = CONTINUE
        used = used + lines if kind == CONTINUE else lines
        types.append(kind)
    return types


def mark_slides(notebook) -> None:
    """Write each cell's ``slideshow`` metadata (left out where a cell continues a slide) and
    the notebook's RISE options."""
    for cell, kind in zip(notebook.cells, slide_types(notebook.cells)):
        cell.metadata.pop("slideshow", None)
        if kind != CONTINUE:
            cell.metadata["slideshow"] = {"slide_type": kind}
    notebook.metadata["rise"] = dict(RISE_OPTIONS)


def run_for_slides(path: Path, *, timeout: int = 3600):
    """Execute the notebook at ``path`` in a fresh kernel, in the presenter style unless
    COURSE_PRESENTER says otherwise, and return it with its outputs and widget state."""
    from course_utils.prepare import execute

    env = dict(os.environ, COURSE_PRESENTER=os.environ.get("COURSE_PRESENTER", "1"),
               TQDM_DISABLE="1")  # progress bars would print their every redraw
    return execute(path, timeout=timeout, env=env, store_widget_state=True)


def write_deck(path: Path, out: Path = OUT, *, run: bool = True) -> Path:
    """Write the HTML deck of the notebook at ``path`` (run first; unless ``run`` is False, then
    named ``...-text.html``)."""
    import nbformat

    from course_utils.deck import deck_html

    notebook = run_for_slides(path) if run else nbformat.read(path, as_version=4)
    suffix = ("-student" if path.parent.name == "notebooks" else "") + ("" if run else "-text")
    target = out / f"{path.stem}{suffix}.html"  # a text-only deck never replaces a run one
    out.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".html.partial")
    partial.write_text(deck_html(notebook), encoding="utf-8")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    from course_utils.config import choose_profile
    from course_utils.prepare import lesson_notebooks

    parser = argparse.ArgumentParser(
        prog="python3 course.py slides",
        description="Write each lesson as a self-contained HTML slide deck (works offline): "
                    "the lesson is run once in the presenter style and its outputs kept.")
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: every lesson)")
    parser.add_argument("--students", action="store_true",
                        help="the student notebooks instead of the solutions")
    parser.add_argument("--no-run", action="store_true",
                        help="do not run the lesson: a deck of its text and code only, "
                             "as NN_topic-text.html")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default {OUT})")
    arguments = parser.parse_args(argv)
    try:
        paths = lesson_notebooks(arguments.lessons, root=ROOT)
    except ValueError as error:
        parser.error(str(error))
    if arguments.students:
        paths = [ROOT / "notebooks" / path.name for path in paths]
    if not arguments.no_run:
        profile = choose_profile()  # what the kernels pick
        print(f"Running {len(paths)} notebook(s) in the {profile} profile, presenter style; "
              f"`python3 course.py prepare` beforehand makes this quicker.", flush=True)
    for path in paths:
        start = time.perf_counter()
        target = write_deck(path, arguments.out, run=not arguments.no_run)
        print(f"{target} ({target.stat().st_size / 1e6:.1f} MB, "
              f"{time.perf_counter() - start:.0f} s)", flush=True)
    print("Open a deck in a browser: arrow keys or space to move, F for full screen, "
          "Ctrl+P to print it to PDF.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
