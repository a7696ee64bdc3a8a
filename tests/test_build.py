import json

import pytest

from course_utils import build

LESSONS = build.lesson_sources()


def test_there_are_lessons():
    assert [path.name for path in LESSONS][:1] == ["01_softmax.py"]


def test_split_solution():
    source = "def f(x):\n    # TODO: double it\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    solution, student = build.split_solution(source)
    assert "return 2 * x" in solution and "BEGIN" not in solution
    assert "return 2 * x" not in student
    assert "    raise NotImplementedError" in student and "# TODO: double it" in student


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
])
def test_malformed_markers_are_reported(source, problem):
    with pytest.raises(build.SourceError, match=problem):
        build.split_solution(source)


def test_notebooks_are_up_to_date():
    stale = build.stale_notebooks()
    assert not stale, f"regenerate with `python3 course.py notebooks`: {stale}"


@pytest.mark.parametrize("source", LESSONS, ids=[path.stem for path in LESSONS])
def test_no_solution_leaks_into_the_student_notebook(source):
    _, student_path = build.targets(source)
    student = json.loads(student_path.read_text(encoding="utf-8"))
    student_code = "\n".join("".join(cell["source"]) for cell in student["cells"]
                             if cell["cell_type"] == "code")
    solution = [line for line in build.solution_lines(source) if len(line) >= 12]
    assert solution, "a lesson needs exercises"
    leaked = [line for line in solution if line in student_code]
    assert not leaked, f"solution lines found in {student_path.name}: {leaked}"
    assert "### BEGIN SOLUTION" not in student_code and "### END SOLUTION" not in student_code
    exercises = build.solution_lines(source)
    assert student_code.count("raise NotImplementedError") >= 4, "each lesson has 4+ exercises"
    assert exercises


@pytest.mark.parametrize("source", LESSONS, ids=[path.stem for path in LESSONS])
def test_generated_notebooks_have_no_outputs_and_the_course_kernel(source):
    for path in build.targets(source):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        assert notebook["metadata"]["kernelspec"]["name"] == "dl-course"
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.mark.parametrize("header", ["# %% [markdown] Without any norm the sum grows:",
                                    "# %% The next cell"])
def test_a_cell_header_carrying_text_is_refused(header):
    with pytest.raises(build.SourceError, match="header carries text"):
        build.check_cell_headers(f"# %%\nx = 1\n\n{header}\n# more\n", "lesson.py")
    build.check_cell_headers('# %% [markdown]\n# text\n# %% tags=["solution"]\nx = 1\n', "lesson.py")


def test_code_left_inside_a_markdown_cell_is_refused():
    source = "# %% [markdown]\n# The attention maps:\n\n\ndef attention(x):\n    return x\n"
    with pytest.raises(build.SourceError, match="line 5: code inside a Markdown cell"):
        build.check_markdown_cells(source, "lesson.py")
    build.check_markdown_cells("# %% [markdown]\n# text\n\n# %%\ndef f():\n    pass\n", "lesson.py")


@pytest.mark.parametrize("markdown", [
    "the probabilities no longer sum to\n1. The loss is the binary cross-entropy",
    "a sentence that ends with a dash\n- and goes on",
    "one line\n* two",
])
def test_a_list_item_that_interrupts_a_paragraph_is_refused(markdown):
    with pytest.raises(build.SourceError, match="starts a list"):
        build.check_markdown_lists(markdown, "cell 3")


@pytest.mark.parametrize("markdown", [
    "A real list:\n\n1. first\n2. second, which\n   wraps\n3. third",
    "Bullets:\n\n* one that\nwraps lazily\n* two",
    "## A heading\n1. right after a heading",
    "A year is fine:\n2019. was a year",
    "```\ncode\n- not a list\n```",
])
def test_real_lists_and_lookalikes_pass(markdown):
    build.check_markdown_lists(markdown, "cell 3")


def test_notebooks_store_the_whole_language_info_so_opening_them_changes_nothing():
    """JupyterLab marks a notebook modified on opening unless its language_info equals what
    the kernel reports (checked in JupyterLab in headless Chromium)."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3")
    try:
        reported = client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reported == build.LANGUAGE_INFO
    for source in LESSONS:
        for path in build.targets(source):
            stored = json.loads(path.read_text(encoding="utf-8"))["metadata"]["language_info"]
            assert {**stored, "version": None} == {**reported, "version": None}
