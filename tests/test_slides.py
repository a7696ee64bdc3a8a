"""Slides from the lessons' source: boundaries written by the build, the HTML deck, the command,
and the JupyterLab extension that presents them live."""

import base64
import importlib.util
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course_utils import build, deck, slides

LESSONS = build.lesson_sources()
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")).decode()


def kinds(cells):
    return slides.slide_types(cells)


def test_headings_start_slides_and_short_cells_share_one():
    cells = [new_markdown_cell("# Lesson"), new_markdown_cell("Some words."),
             new_code_cell("x = 1"), new_markdown_cell("## 1. A section"),
             new_code_cell("y = 2"), new_code_cell("z = 3"), new_markdown_cell("### A part"),
             new_markdown_cell("More words.")]
    assert kinds(cells) == ["slide", "-", "-", "slide", "-", "-", "subslide", "-"]


def test_a_long_cell_is_a_sub_slide_of_its_own():
    long_code = "\n".join(f"line_{number} = {number}" for number in range(slides.SLIDE_LINES))
    cells = [new_markdown_cell("## Section"), new_code_cell("x = 1"), new_code_cell(long_code),
             new_code_cell("y = 2")]
    assert kinds(cells) == ["slide", "-", "subslide", "subslide"]


def test_a_heading_or_a_short_lead_in_is_never_left_alone_on_a_slide():
    long_list = "\n".join(f"* point {number}" for number in range(slides.SLIDE_LINES + 1))
    long_code = "\n".join(f"line_{number} = {number}" for number in range(slides.SLIDE_LINES))
    cells = [new_markdown_cell("## Summary"), new_markdown_cell(long_list),
             new_markdown_cell("### A part"), new_markdown_cell("The curve below shows it."),
             new_code_cell(long_code)]
    assert kinds(cells) == ["slide", "-", "subslide", "-", "-"]


def test_an_explanation_after_code_starts_a_sub_slide_with_the_code_it_explains():
    cells = [new_markdown_cell("## Section"), new_code_cell("x = 1"),
             new_markdown_cell("Now the same with two:"), new_code_cell("x = 2")]
    assert kinds(cells) == ["slide", "-", "subslide", "-"]


def test_a_cell_stays_with_the_sentence_that_introduces_it():
    long_code = "\n".join(f"line_{number} = {number}" for number in range(slides.SLIDE_LINES))
    cells = [new_markdown_cell("## Section"), new_code_cell("x = 1"),
             new_markdown_cell("Untrained, the logits are arbitrary:"), new_code_cell(long_code)]
    assert kinds(cells) == ["slide", "-", "subslide", "-"]


def test_prose_is_counted_in_wrapped_lines_and_figures_take_room():
    paragraph = new_markdown_cell("word " * (slides.WRAP // 5 * 3))  # one line, wrapped in 3
    assert slides.cell_lines(paragraph) == 3
    assert slides.cell_lines(new_code_cell("plt.show()")) == 1 + slides.FIGURE_LINES
    assert slides.cell_lines(new_code_cell("print(1)")) == 1 + slides.OUTPUT_LINES


def test_markdown_is_cut_at_headings_and_between_paragraphs_of_a_long_cell():
    paragraph = "\n".join(["A line of prose."] * 7)
    source = "\n\n".join(["Intro.", "## 2. A section", paragraph, paragraph, paragraph,
                            "### A part", "Last."])
    parts = slides.split_markdown(source)
    assert parts == ["Intro.", "## 2. A section\n\n" + paragraph + "\n\n" + paragraph,
                     paragraph, "### A part\n\nLast."]
    assert slides.split_markdown("Short.\n\nStill short.") == ["Short.\n\nStill short."]


def test_markdown_is_not_cut_inside_code_or_math_nor_after_an_introduction():
    fence = "```python\n# a comment, not a heading\n\nx = 1\n```"
    math = "$$\na = b\n\nc = d\n$$"
    equation = "$$a = b\n\n   = c ,$$\n## A heading after it"
    long_list = "\n".join(f"- item {number}" for number in range(slides.SLIDE_LINES))
    assert slides.split_markdown(fence) == [fence]
    assert slides.split_markdown(math) == [math]
    assert slides.split_markdown(equation) == ["$$a = b\n\n   = c ,$$", "## A heading after it"]
    assert len(slides.split_markdown("It goes as follows:\n\n" + long_list)) == 1


@pytest.mark.parametrize("source", LESSONS, ids=[path.stem for path in LESSONS])
def test_the_build_splits_the_lessons_prose_without_losing_a_word(source):
    original = [cell.source for cell in build.jupytext.reads(source.read_text(encoding="utf-8"),
                                                              fmt="py:percent").cells
                if cell.cell_type == "markdown"]
    solution, _ = build.build_notebooks(source)
    built = [cell.source for cell in solution.cells if cell.cell_type == "markdown"]
    assert len(built) > len(original)
    assert " ".join(" ".join(built).split()) == " ".join(" ".join(original).split())
    for cell in solution.cells:
        if cell.cell_type == "markdown":
            assert not any(slides._HEADING.match(line) for line in cell.source.splitlines()[1:])


@pytest.mark.parametrize("source", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_notebook_carries_the_slides_of_its_structure(source):
    for path in build.targets(source):
        notebook = nbformat.read(path, as_version=4)
        stored = [cell.metadata.get("slideshow", {}).get("slide_type", "-")
                  for cell in notebook.cells]
        assert stored == slides.slide_types(notebook.cells)
        assert stored[0] == "slide"
        for cell, kind in zip(notebook.cells, stored):
            if cell.cell_type == "markdown" and cell.source.startswith("## "):
                assert kind == "slide", cell.source.splitlines()[0]
        assert notebook.metadata["rise"] == slides.RISE_OPTIONS
        sections = sum(kind == "slide" for kind in stored)
        assert sections >= 4 and stored.count("subslide") >= sections, \
            f"{path.name}: {sections} sections, {stored.count('subslide')} sub-slides"


@pytest.mark.parametrize("source", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_lesson_yields_an_offline_deck(source):
    for path in build.targets(source):
        notebook = nbformat.read(path, as_version=4)
        page = deck.deck_html(notebook)
        assert page == deck.deck_html(nbformat.read(path, as_version=4)), "not deterministic"
        starts = sum(cell.metadata.get("slideshow", {}).get("slide_type") in ("slide", "subslide")
                     for cell in notebook.cells)
        assert page.count('<section class="slide"') == starts
        # Nothing is fetched: no external script, style sheet, font or image.
        assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', page)
        assert "@import" not in page and "MATHPLACEHOLDER" not in page
        markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
        maths = sum(match["display"] is not None or match["inline"] is not None
                    for match in deck._MATH_OR_CODE.finditer(markdown))
        assert page.count("<math ") == maths > 0 and "math-error" not in page
        # Every formula became MathML: no dollar is left in the prose (code may keep its own).
        prose = re.sub(r"<(pre|code|math|script|style)\b.*?</\1>", "", page, flags=re.S)
        assert "$" not in prose, prose[prose.index("$") - 80:prose.index("$") + 80]


def test_markdown_math_becomes_mathml_but_code_keeps_its_dollars():
    page = deck.markdown_html("Scores $z_i$ and `cost = $5$` then\n\n$$\\sum_i p_i = 1$$")
    assert page.count("<math ") == 2 and 'display="block"' in page
    assert "<code>cost = $5$</code>" in page
    assert deck.markdown_html("~~~\n$x$\n~~~").count("<math") == 0
    assert deck.markdown_html("a formula $a +\nb$ over two lines").count("<math") == 1


def test_dollars_that_are_not_math_stay_dollars():
    assert deck.markdown_html("it costs $5 or $10") == "<p>it costs $5 or $10</p>\n"
    assert deck.markdown_html("escaped \\$5") == "<p>escaped $5</p>\n"
    broken = deck.markdown_html("unreadable $x^{$ here")
    assert 'class="math-error"' in broken and "x^{" in broken


def test_outputs_render_as_a_notebook_shows_them():
    widgets = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider", "IPY_MODEL_out"]}},
        "slider": {"model_name": "FloatSliderModel", "state": {"description": "T", "value": 1.5}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "display_data", "data": {"image/png": PNG}, "metadata": {}}]}},
    }
    outputs = [
        new_output("stream", name="stdout", text="epoch 1\r\x1b[1mepoch 2\x1b[0m\n<done>\r\n"),
        new_output("error", ename="ValueError", evalue="bad", traceback=["\x1b[31mValueError\x1b[0m: bad"]),
        new_output("display_data", data={"image/png": PNG}),
        new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1),
        new_output("display_data", data={deck.WIDGET_VIEW: {"model_id": "box"},
                                         "text/plain": "interactive(...)"}),
    ]
    page = "".join(deck.output_html(output, widgets) for output in outputs)
    assert "epoch 2\n&lt;done&gt;" in page and "epoch 1" not in page and "\x1b" not in page
    assert "ValueError: bad" in page and 'class="output error"' in page
    assert page.count(f"data:image/png;base64,{PNG}") == 2
    assert '<pre class="output result">0.5</pre>' in page
    assert "T <b>1.5</b>" in page and "live in JupyterLab" in page
    assert "interactive(...)" not in page
    lost = deck.output_html(new_output("display_data", data={deck.WIDGET_VIEW: {"model_id": "x"}}), {})
    assert "run the lesson in JupyterLab" in lost


def test_a_deck_is_grouped_and_numbered_by_section():
    notebook = new_notebook(cells=[new_markdown_cell("# Title"), new_markdown_cell("## 1. First"),
                                   new_markdown_cell("### Part"), new_markdown_cell("## 2. Second")])
    slides.mark_slides(notebook)
    page = deck.deck_html(notebook)
    found = re.findall(r'data-column="(\d)" data-row="(\d)" data-section="([^"]+)"', page)
    assert found == [("1", "1", "Title"), ("2", "1", "1. First"), ("2", "2", "1. First"),
                     ("3", "1", "2. Second")]
    assert "<title>Title</title>" in page


def test_the_command_runs_a_lesson_and_writes_its_deck(tmp_path, monkeypatch):
    """A toy notebook, run for real in a kernel: its figure is in the deck, in the presenter
    style, and the environment is as it was afterwards."""
    monkeypatch.delenv("COURSE_PRESENTER", raising=False)
    notebook = new_notebook(cells=[
        new_markdown_cell("# Toy lesson"),
        new_code_cell("import os\nprint('presenter', os.environ.get('COURSE_PRESENTER'))"),
        new_code_cell("import base64\nfrom IPython.display import Image, display\n"
                      f"display(Image(data=base64.b64decode('{PNG}')))")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "solutions").mkdir()
    path = tmp_path / "solutions" / "01_toy.ipynb"
    nbformat.write(notebook, path)
    target = slides.write_deck(path, tmp_path / "out")
    page = target.read_text(encoding="utf-8")
    assert target.name == "01_toy.html" and "presenter 1" in page
    assert f"data:image/png;base64,{PNG}" in page
    assert "COURSE_PRESENTER" not in os.environ
    assert not list((tmp_path / "out").glob("*.partial"))


def test_the_command_refuses_an_unknown_lesson_and_writes_decks_without_running(tmp_path, capsys):
    with pytest.raises(SystemExit):
        slides.main(["99", "--no-run", "--out", str(tmp_path)])
    assert "no lesson 99" in capsys.readouterr().err
    assert slides.main(["01", "--students", "--no-run", "--out", str(tmp_path)]) == 0
    assert [path.name for path in tmp_path.iterdir()] == ["01_softmax-student-text.html"]


def test_jupyterlab_presents_the_slides_live():
    """jupyterlab-rise is installed with the course and registered with JupyterLab."""
    assert importlib.util.find_spec("jupyterlab_rise") is not None
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-rise"
    assert (extension / "package.json").exists()


def test_a_long_code_cell_folds_after_its_first_lines_so_its_output_stays_on_the_slide():
    short = "\n".join(f"x{number} = {number}" for number in range(deck.FOLD_AFTER))
    assert "<details" not in deck.code_html(short)
    long = "\n".join(f"x{number} = {number}" for number in range(30))
    page = deck.code_html(long)
    head, rest = page.split("<details", 1)
    assert "x11" in head and "x12" not in head and "x29" in rest
    assert f"{30 - deck.SHOWN} more lines of code" in rest and "the code (30 lines)" in rest
