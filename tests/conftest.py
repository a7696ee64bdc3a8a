"""Fixtures shared by the unit tests."""

import pytest

from course_utils import checks


@pytest.fixture(autouse=True)
def unwrapped_verdicts(monkeypatch):
    """Verdicts print on one line per part, so tests can look for a whole hint in the output.

    Notebooks wrap them at ``checks.TEXT_WIDTH``; tests/test_checks.py checks the wrapping."""
    monkeypatch.setattr(checks, "TEXT_WIDTH", 10_000)
