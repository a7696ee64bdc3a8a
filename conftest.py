"""pytest hooks shared by the unit tests and the notebook runs (nbval).

After the run, prints how long each notebook took to execute, and fails the run when one takes
far longer than the quick profile's budget (a sign that a lesson stopped fitting a laptop).
"""

import os
from collections import defaultdict
from pathlib import Path

NOTEBOOK_BUDGET_S = 90  # what a lesson should take in the quick profile on a 2-core CPU
HARD_LIMIT_S = float(os.environ.get("COURSE_NOTEBOOK_LIMIT_S", 2 * NOTEBOOK_BUDGET_S))

_seconds = defaultdict(float)
_cells = defaultdict(int)
_failed = set()


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    _seconds[path] += report.duration
    if report.when == "call":
        _cells[path] += 1
    if report.failed:
        _failed.add(path)


def pytest_terminal_summary(terminalreporter):
    if not _seconds:
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook run times")
    width = max(len(path) for path in _seconds)
    write(f"{'notebook'.ljust(width)}  cells  seconds  status")
    for path in sorted(_seconds):
        seconds = _seconds[path]
        status = "FAILED" if path in _failed else "ok"
        if seconds > HARD_LIMIT_S:
            status += f", over the {HARD_LIMIT_S:.0f} s limit"
        elif seconds > NOTEBOOK_BUDGET_S:
            status += f", over the {NOTEBOOK_BUDGET_S} s budget"
        write(f"{path.ljust(width)}  {_cells[path]:5d}  {seconds:7.1f}  {status}")
    write(f"profile: {os.environ.get('COURSE_PROFILE', 'default')}; "
          f"total {sum(_seconds.values()):.1f} s")


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("COURSE_PROFILE", "quick") != "quick":
        return  # the time limit is the quick profile's promise; the full one may take longer
    too_slow = [path for path, seconds in _seconds.items() if seconds > HARD_LIMIT_S]
    if too_slow and exitstatus == 0:
        session.exitstatus = 1
