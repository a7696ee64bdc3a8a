"""Headline results: each lesson records its key numbers, and test runs guard them.

A lesson calls :func:`record` on the numbers it is about (a test accuracy, an exact-match
rate, ...)::

    record("02", "ResNet test accuracy", test_accuracy)

In a learner's notebook this only returns the value. In a test run (``COURSE_CHECK_RESULTS=1``,
set by the tests) it also checks the value against the range that lesson's profile should
reach, listed in ``expected_results.json`` next to this file, and raises
:class:`HeadlineResultError` when it falls outside: a lesson whose translator silently drops
from 95% to 40% fails its run instead of passing with a worse story. With
``COURSE_RESULTS_FILE`` set, every recorded value is also appended there (one JSON object per
line), so that the test run can print a table of them per notebook.
"""

import json
import math
import os
from pathlib import Path

from course_utils import config

EXPECTED_FILE = Path(__file__).with_name("expected_results.json")
CHECK_ENV_VAR = "COURSE_CHECK_RESULTS"
RESULTS_FILE_ENV_VAR = "COURSE_RESULTS_FILE"


class HeadlineResultError(AssertionError):
    """A lesson's headline number fell outside the range its profile should reach."""


def profile_key(cfg: config.CourseConfig | None = None) -> str:
    """``quick``, ``full`` or ``capped`` (the full profile's code with capped amounts)."""
    cfg = cfg or config.current()
    return "capped" if cfg.capped else cfg.profile


def expected_range(lesson: str, name: str, profile: str) -> tuple[float, float] | None:
    """The (low, high) range of a result for a profile, or None if none is listed."""
    table = json.loads(EXPECTED_FILE.read_text())
    bounds = table.get(lesson, {}).get(name, {}).get(profile)
    return None if bounds is None else (float(bounds[0]), float(bounds[1]))


class Recorded(float):
    """The float :func:`record` returns: a cell that ends with ``record(...)`` shows what was
    recorded, by name, instead of a bare number."""

    def __new__(cls, value: float, name: str):
        recorded = super().__new__(cls, value)
        recorded.name = name
        return recorded

    def __repr__(self) -> str:
        return f"headline result recorded: {self.name} = {float(self):.4g}"


def record(lesson: str, name: str, value) -> float:
    """Record a headline result of ``lesson`` (e.g. ``"02"``) and return it as a float (one
    that shows its name when a cell displays it).

    In a test run, raises :class:`HeadlineResultError` when the value is not finite, falls
    outside its expected range, or has no range listed for this profile.
    """
    value = float(value)
    profile = profile_key()
    results_file = os.environ.get(RESULTS_FILE_ENV_VAR)
    if results_file:
        with open(results_file, "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"lesson": lesson, "name": name, "value": value,
                                     "profile": profile}) + "\n")
    if os.environ.get(CHECK_ENV_VAR, "").strip() in ("", "0"):
        return Recorded(value, name)
    bounds = expected_range(lesson, name, profile)
    if bounds is None:
        raise HeadlineResultError(f"lesson {lesson} recorded {name!r} = {value:.4g}, but "
                                  f"{EXPECTED_FILE.name} lists no range for it in the {profile} "
                                  f"profile: add one, measured on a real run.")
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise HeadlineResultError(f"lesson {lesson}: {name} = {value:.4g}, outside the range "
                                  f"[{low:g}, {high:g}] the {profile} profile should reach. "
                                  f"Something in the lesson or the package changed its result.")
    return Recorded(value, name)
