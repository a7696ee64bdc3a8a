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
