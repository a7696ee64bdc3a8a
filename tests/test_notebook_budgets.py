"""The notebook time budgets of conftest.py follow the profile the kernels run in."""

import importlib.util
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent.parent / "conftest.py"


def budgets(monkeypatch, **environment):
    """(budget, hard limit) of conftest.py loaded afresh under ``environment``."""
    for name in ("COURSE_PROFILE", "COURSE_CAPPED", "COURSE_NOTEBOOK_LIMIT_S", "COURSE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("conftest_under_test", CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.BUDGET_S, module.HARD_LIMIT_S


@pytest.mark.parametrize("environment, expected", [
    ({"COURSE_PROFILE": "quick"}, (90, 180)),
    ({"COURSE_PROFILE": "full"}, (300, 600)),
    ({"COURSE_PROFILE": " Full "}, (300, 600)),  # spelt as the kernels accept it
    ({"COURSE_PROFILE": "full", "COURSE_CAPPED": "1"}, (90, 180)),
    ({"COURSE_PROFILE": "full", "COURSE_CAPPED": "true"}, (90, 180)),
    ({"COURSE_PROFILE": "full", "COURSE_NOTEBOOK_LIMIT_S": "1000"}, (300, 1000)),
    ({"COURSE_DEVICE": "cpu"}, (90, 180)),  # unset profile on a CPU: quick
])
def test_budget_and_limit(monkeypatch, environment, expected):
    assert budgets(monkeypatch, **environment) == expected
