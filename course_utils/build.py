"""Build the student and solution notebooks from a lesson's single source.

The source of lesson NN is ``solutions/NN_topic.py``, a jupytext "percent" script holding the
complete lesson. Exercise solutions sit between two marker lines::

    def softmax(logits):
        ### BEGIN SOLUTION
        shifted = logits - logits.max(dim=-1, keepdim=True).values
        ...
        ### END SOLUTION

From it this module writes, without outputs:

* ``solutions/NN_topic.ipynb``: the complete lesson, markers removed;
* ``notebooks/NN_topic.ipynb``: the student version, each marked block replaced by
  ``raise NotImplementedError`` (so the check cell reports "not implemented yet" and the lesson
  continues with the reference). Cells tagged ``solution`` are left out of it entirely.

Both carry slide metadata for presenting them (:mod:`course_utils.slides`), derived from the
source, never edited by hand.

Run ``python -m course_utils.build`` to regenerate every lesson, ``--check`` to fail on drift.
"""

import argparse
import copy
import platform
import re
import sys
from pathlib import Path

import jupytext
import nbformat

from course_utils.slides import mark_slides, split_markdown

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTION_TAG = "solution"
STUDENT_STUB = "# YOUR CODE HERE (replace this line and the next)"
KERNELSPEC = {"name": "dl-course", "display_name": "Python 3 (dl-course)", "language": "python"}
# What the course's kernel (ipykernel) reports about its language. JupyterLab writes it into a
# notebook it opens; stored whole and equal, the notebook is not marked modified on opening.
# The version is that of the Python that built the notebooks: the course's venv.
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": platform.python_version()}
_MARKER = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>### (BEGIN|END) SOLUTION)[ \t]*$")


class SourceError(ValueError):
    """A lesson source file is malformed: unbalanced or nested solution markers, a cell header
    carrying text, or a line that Markdown would turn into a list item by accident."""


# What a cell header may carry after ``# %%``: an optional ``[markdown]`` and ``key=value``
# metadata (tags). Jupytext stores any other text after the header as cell metadata, so the
# rendered cell would silently start mid-sentence.
_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_HEADER_REST = re.compile(r"^(\s+\[markdown\])?(\s+[A-Za-z_]+=\S+)*\s*$")
# A Markdown list item that may interrupt a paragraph (CommonMark: a bullet, or an ordered
# list that starts at 1).
_LIST_ITEM = re.compile(r"^\s{0,3}([-*+]|1[.)])\s+\S")


def check_cell_headers(text: str, where: str) -> None:
    """Refuse a ``# %%`` header line with text after it (jupytext would hide it as metadata)."""
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        if match and not _HEADER_REST.match(match["rest"]):
            raise SourceError(f"{where}, line {number}: the cell header carries text "
                              f"({line.strip()!r}); start the text on the next line")


def check_markdown_cells(text: str, where: str) -> None:
    """Refuse a line of code inside a ``# %% [markdown]`` cell (a missing ``# %%`` before it):
    jupytext would show that code as text in the Markdown cell, and it would never run."""
    in_markdown = False
    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADER.match(line)
        if match:
            in_markdown = "[markdown]" in match["rest"]
        elif in_markdown and line.strip() and not line.startswith("#"):
            raise SourceError(f"{where}, line {number}: code inside a Markdown cell "
                              f"({line.strip()[:40]!r}); put a '# %%' line before it")


def check_markdown_lists(markdown: str, where: str) -> None:
    """Refuse a paragraph line followed by a line that Markdown reads as a new list item.

    "... summed over classes.\\n1. The loss is ..." renders as a paragraph cut short and a
    numbered list: re-wrap the text so the number or dash does not start a line, or leave a
    blank line before a real list.
    """
    previous, in_list, in_fence = "", False, False
    for number, line in enumerate(markdown.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or stripped.startswith(("$$", "|", "<", "#")):
            previous, in_list = ("" if stripped.startswith("#") else stripped), False
            continue
        if _LIST_ITEM.match(line):
            if previous and not in_list:
                raise SourceError(f"{where}, line {number}: {stripped[:40]!r} starts a list "
                                  f"in the middle of a paragraph; re-wrap the line before it, "
                                  f"or leave a blank line before a real list")
            in_list = True
        elif not stripped:
            in_list = False
        previous = stripped


def split_solution(source: str, where: str = "cell") -> tuple[str, str]:
    """Return (solution_code, student_code) for one code cell's source."""
    solution, student = [], []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        match = _MARKER.match(line)
        if match and match["marker"] == BEGIN:
            if inside:
                raise SourceError(f"{where}, line {number}: nested '{BEGIN}'")
            inside = True
            indent = match["indent"]
            student += [f"{indent}{STUDENT_STUB}", f"{indent}raise NotImplementedError"]
        elif match:
            if not inside:
                raise SourceError(f"{where}, line {number}: '{END}' without '{BEGIN}'")
            inside = False
        else:
            solution.append(line)
            if not inside:
                student.append(line)
    if inside:
        raise SourceError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(solution), "\n".join(student)


def solution_lines(source_path: Path) -> list[str]:
    """The code lines inside solution blocks of a lesson source (used by the leak test)."""
    lines, inside = [], False
    for line in source_path.read_text(encoding="utf-8").splitlines():
        match = _MARKER.match(line)
        if match:
            inside = match["marker"] == BEGIN
        elif inside:
            lines.append(line.strip())
    return lines


def build_notebooks(source_path: Path) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """Read a lesson source and return (solution_notebook, student_notebook)."""
    text = source_path.read_text(encoding="utf-8")
    check_cell_headers(text, source_path.name)
    check_markdown_cells(text, source_path.name)
    notebook = jupytext.reads(text, fmt="py:percent")
    solution_cells, student_cells = [], []
    for index, cell in enumerate(_split_for_slides(notebook.cells, source_path.name)):
        tags = cell.metadata.get("tags", [])
        solution_cell = nbformat.from_dict(dict(cell))
        student_cell = nbformat.from_dict(dict(cell))
        if cell.cell_type == "code":
            solution_cell.source, student_cell.source = split_solution(
                cell.source, where=f"{source_path.name}, cell {index + 1}")
            solution_cell.outputs = student_cell.outputs = []
            solution_cell.execution_count = student_cell.execution_count = None
        solution_cells.append(solution_cell)
        if SOLUTION_TAG not in tags:
            student_cells.append(student_cell)
    return _notebook(solution_cells, source_path.stem), _notebook(student_cells, source_path.stem)


def _split_for_slides(cells: list, where: str) -> list:
    """The cells, each Markdown cell cut at its headings and, if long, between paragraphs
    (:func:`course_utils.slides.split_markdown`): it reads the same and fits on slides."""
    split = []
    for index, cell in enumerate(cells):
        if cell.cell_type != "markdown":
            split.append(cell)
            continue
        check_markdown_lists(cell.source, f"{where}, cell {index + 1}")
        for source in split_markdown(cell.source):
            part = nbformat.from_dict(copy.deepcopy(dict(cell)))
            part.source = source
            split.append(part)
    return split


def _notebook(cells: list, stem: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    for index, cell in enumerate(cells):
        cell.id = f"{stem[:40]}-{index:03d}"  # stable ids: regenerating gives identical files
        cell.metadata.pop("lines_to_next_cell", None)
    notebook.cells = cells
    notebook.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": copy.deepcopy(LANGUAGE_INFO)}
    mark_slides(notebook)  # where slides start, from the lesson's headings and cell lengths
    return notebook


def lesson_sources(root: Path = ROOT) -> list[Path]:
    """Every lesson source: ``solutions/NN_topic.py``."""
    return sorted(path for path in (root / "solutions").glob("[0-9][0-9]_*.py"))


def targets(source_path: Path, root: Path = ROOT) -> tuple[Path, Path]:
    """Where the (solution, student) notebooks of a source are written."""
    name = source_path.with_suffix(".ipynb").name
    return root / "solutions" / name, root / "notebooks" / name


def render(notebook: nbformat.NotebookNode) -> str:
    return nbformat.writes(notebook, version=4) + "\n"


def _without_python_version(text: str) -> str:
    """A rendered notebook with its Python version blanked: built with another Python, it is
    still up to date."""
    notebook = nbformat.reads(text, as_version=4)
    notebook.metadata.get("language_info", {}).pop("version", None)
    return render(notebook)


def stale_notebooks(root: Path = ROOT) -> list[Path]:
    """Notebooks whose file differs from what their source generates (or that are missing)."""
    stale = []
    for source in lesson_sources(root):
        for notebook, path in zip(build_notebooks(source), targets(source, root)):
            if not path.exists() or (_without_python_version(path.read_text(encoding="utf-8"))
                                     != _without_python_version(render(notebook))):
                stale.append(path)
    return stale


def write_all(root: Path = ROOT) -> list[Path]:
    written = []
    for source in lesson_sources(root):
        for notebook, path in zip(build_notebooks(source), targets(source, root)):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(notebook), encoding="utf-8", newline="\n")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit with 1 if a notebook differs from its source")
    arguments = parser.parse_args(argv)
    if arguments.check:
        stale = stale_notebooks()
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}")
        if stale:
            print("Run `make notebooks` (python -m course_utils.build) and commit the result.")
        return 1 if stale else 0
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
