"""Every exercise check of every lesson, run twice as a learner does: a re-run never passes.

A notebook writes ``softmax = check_softmax(softmax)``: when the learner's version is undone or
wrong, the check returns the reference, so running the same check cell again hands the check
its own reference. It must say the learner's code was not checked, never "PASSED".
"""

import importlib
import inspect
import pkgutil

import pytest

from course_utils import exercises


def _all_checks():
    """Every check_* function of the exercise modules, once each (a lesson may re-export the
    checks of its topic modules, lesson02_layers for lesson02): ids are lessonNN.check_name."""
    found = {}
    for module_info in pkgutil.iter_modules(exercises.__path__):
        module = importlib.import_module(f"course_utils.exercises.{module_info.name}")
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("check_") and function.__module__.startswith("course_utils.exercises."):
                lesson = function.__module__.rsplit(".", 1)[1].split("_")[0]
                found[function] = pytest.param(function, id=f"{lesson}.{name}")
    return list(found.values())


CHECKS = _all_checks()


def undone(*args, **kwargs):
    """An exercise left as the student notebook ships it (also stands in for a module class)."""
    raise NotImplementedError


def wrong(*args, **kwargs):
    """A wrong attempt: returns nothing (as a module class, builds no module)."""
    return None


def test_every_lesson_has_its_checks_here():
    lessons = {param.id.split(".")[0] for param in CHECKS}
    assert {"lesson01", "lesson02", "lesson03", "lesson04"} <= lessons
    assert len(CHECKS) >= 16


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("attempt", [undone, wrong], ids=["undone", "wrong"])
def test_running_a_check_cell_twice_never_passes(check, attempt, capsys):
    first = check(attempt)
    out = capsys.readouterr().out
    assert first is not attempt and "PASSED" not in out
    assert ("NOT DONE" if attempt is undone else "WRONG") in out
    second = check(first)  # the same check cell run again: it now holds the reference
    out = capsys.readouterr().out
    assert "PASSED" not in out and "NOT DONE" in out and "not checked" in out
    assert second is first
