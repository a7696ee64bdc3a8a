"""Before class: `course.py prepare` runs the chosen lessons once, and what they cache stays."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils import prepare

LESSON = """import torch
from course_utils import setup
from course_utils.cache import train_once
cfg = setup(seed=0)
model, record = train_once("prepared-toy", recipe={{"steps": 3}}, build=lambda: torch.nn.Linear(2, 1),
                           train=lambda model: {{"loss": [1.0]}})
open({marker!r}, "a").write(str(record["cached"]) + "\\n")"""


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    marker = tmp_path / "cached.txt"
    for folder in ("solutions", "notebooks"):
        (tmp_path / folder).mkdir()
        for name in ("01_first.ipynb", "02_second.ipynb"):
            notebook = new_notebook(cells=[new_code_cell(LESSON.format(marker=str(marker)))])
            nbformat.write(notebook, tmp_path / folder / name)
    return tmp_path, marker


def test_lessons_are_chosen_by_number(course):
    root, _ = course
    assert [p.name for p in prepare.lesson_notebooks(["2"], root=root)] == ["02_second.ipynb"]
    both = prepare.lesson_notebooks(None, students=True, root=root)
    assert [f"{p.parent.name}/{p.name}" for p in both] == [
        "solutions/01_first.ipynb", "solutions/02_second.ipynb",
        "notebooks/01_first.ipynb", "notebooks/02_second.ipynb"]
    with pytest.raises(ValueError, match="no lesson 09; the lessons are 01, 02"):
        prepare.lesson_notebooks(["9"], root=root)


def test_a_prepared_lesson_loads_what_it_trained(course, capsys):
    root, marker = course
    paths = prepare.lesson_notebooks(["1"], root=root)
    seconds = prepare.prepare(paths)
    assert set(seconds) == set(paths) and all(value > 0 for value in seconds.values())
    prepare.prepare(paths)
    assert marker.read_text().split() == ["False", "True"]  # trained once, then loaded
    assert "solutions/01_first.ipynb:" in capsys.readouterr().out
    saved = list((root / "data" / "checkpoints").glob("prepared-toy-*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text())["recipe"] == {"steps": 3}


def test_the_profile_named_is_the_one_the_lessons_choose(monkeypatch, capsys):
    import torch

    from course_utils import config

    monkeypatch.setattr(prepare, "prepare", lambda paths: {})  # run nothing, only the message
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setattr(config, "choose_device", lambda: torch.device("cuda"))
    prepare.main(["01"])  # unset on a GPU: the kernels pick full
    assert "in the full profile (COURSE_PROFILE=quick prepares" in capsys.readouterr().out
    monkeypatch.setattr(config, "choose_device", lambda: torch.device("cpu"))
    prepare.main(["01"])
    assert "in the quick profile (COURSE_PROFILE=full prepares" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_PROFILE", "full")
    prepare.main(["01"])
    assert "in the full profile" in capsys.readouterr().out
