"""pytest hooks shared by the unit tests and the notebook runs (nbval).

After the run, prints how long each notebook took to execute, and fails the run when one takes
more than twice its profile's budget: 90 s in the quick profile and its capped full-profile run
on a 2-core CPU (a sign that a lesson stopped fitting a laptop), 300 s in the full profile on a
GPU runner; COURSE_NOTEBOOK_LIMIT_S sets the limit instead. It also fails the run when a
notebook showed a figure whose text is too small for a projector (every kernel checks
each figure it displays: see tests/figure_legibility.py).
"""

import json
import os
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from course_utils.config import choose_capped, choose_profile

NOTEBOOK_BUDGET_S = 90  # what a lesson should take in the quick profile on a 2-core CPU
FULL_BUDGET_S = 300  # what a lesson should take in the full profile on one GPU


def _full_run() -> bool:
    """The full profile itself (a GPU runner), not its capped run on a CPU, read from the
    environment as the notebooks' kernels read it."""
    return choose_profile() == "full" and not choose_capped()


BUDGET_S = FULL_BUDGET_S if _full_run() else NOTEBOOK_BUDGET_S
HARD_LIMIT_S = float(os.environ.get("COURSE_NOTEBOOK_LIMIT_S", 2 * BUDGET_S))

_seconds = defaultdict(float)
_cells = defaultdict(int)
_failed = set()
_small_text = defaultdict(list)  # notebook: [(first line of the cell, problems)]
_figure_report = {"path": None, "read": 0}
_results_file = {"path": None, "read": 0}
_results = defaultdict(list)  # notebook: [recorded headline results]

STARTUP = """import sys
sys.path.insert(0, {tests!r})
import figure_legibility
figure_legibility.install(get_ipython(), {report!r})
"""


def pytest_configure(config):
    """Give the notebooks' kernels an IPython startup file that checks every displayed figure."""
    folder = Path(tempfile.mkdtemp(prefix="course-ipython-"))
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True)
    report = folder / "small-figures.jsonl"
    report.touch()
    tests = Path(__file__).resolve().parent / "tests"
    (startup / "00-course-figures.py").write_text(STARTUP.format(tests=str(tests), report=str(report)))
    os.environ["IPYTHONDIR"] = str(folder)
    _figure_report["path"] = report
    # Headline results (course_utils.results.record): checked against their expected ranges in
    # the kernels, and written here to be printed per notebook at the end.
    results = folder / "results.jsonl"
    results.touch()
    os.environ.setdefault("COURSE_CHECK_RESULTS", "1")
    os.environ["COURSE_RESULTS_FILE"] = str(results)
    _results_file["path"] = results


def pytest_unconfigure(config):
    report = _figure_report["path"]
    if report is not None:
        shutil.rmtree(report.parent, ignore_errors=True)


def _new_entries(report: dict) -> list[dict]:
    """The JSON lines the kernels appended to a report file since it was last read."""
    if report["path"] is None:
        return []
    with open(report["path"], encoding="utf-8") as lines:
        lines.seek(report["read"])
        entries = [json.loads(line) for line in lines]
        report["read"] = lines.tell()
    return entries


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if not path.endswith(".ipynb"):
        return
    # What the kernel reported since the last cell belongs to this notebook.
    _small_text[path] += [(entry["cell"], entry["problems"]) for entry in _new_entries(_figure_report)]
    _results[path] += _new_entries(_results_file)
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
        if _small_text[path]:
            status += f", small text in {len(_small_text[path])} figure(s)"
        if seconds > HARD_LIMIT_S:
            status += f", over the {HARD_LIMIT_S:.0f} s limit"
        elif seconds > BUDGET_S:
            status += f", over the {BUDGET_S} s budget"
        write(f"{path.ljust(width)}  {_cells[path]:5d}  {seconds:7.1f}  {status}")
    capped = " (capped)" if choose_capped() else ""
    write(f"profile: {choose_profile()}{capped}; "
          f"total {sum(_seconds.values()):.1f} s")
    _write_results(write)
    for path, figures in sorted(_small_text.items()):
        for cell, problems in figures:
            write(f"{path}: a figure of the cell starting {cell!r}: {'; '.join(problems)}")
    if any(_small_text.values()):
        write("Figures must stay legible on a projector: at most "
              "course_utils.plotting.NOTEBOOK_WIDTH_IN wide, text of at least MIN_FONT_PT.")


def _write_results(write) -> None:
    """The headline results each notebook recorded (checked in its kernel as it ran)."""
    if not any(_results.values()):
        return
    write("headline results, each checked against its profile's range in "
          "course_utils/expected_results.json:")
    for path, entries in sorted(_results.items()):
        write(f"  {path}:")
        for entry in entries:
            write(f"    {entry['name']} = {entry['value']:.4g} ({entry['profile']})")


def _save_results(exitstatus) -> None:
    """A passing run of every solution notebook saves its headline results for the README's
    table (course_utils/results_table.py); a partial or failing run saves nothing."""
    from course_utils import results_table

    ran = {path for path in _seconds if path.startswith("solutions/")}
    lessons = {f"solutions/{path.name}" for path in Path(__file__).parent.glob("solutions/[0-9][0-9]_*.ipynb")}
    if exitstatus != 0 or _failed or not lessons or not lessons <= ran:
        return
    by_profile = defaultdict(list)
    for path, entries in _results.items():
        for entry in entries:
            by_profile[entry["profile"]].append({"notebook": path, "lesson": entry["lesson"],
                                                 "name": entry["name"], "value": entry["value"]})
    for profile, entries in by_profile.items():
        results_table.save_run(entries, profile)


def pytest_sessionfinish(session, exitstatus):
    if any(_small_text.values()) and exitstatus == 0:
        session.exitstatus = 1
    too_slow = [path for path, seconds in _seconds.items() if seconds > HARD_LIMIT_S]
    if too_slow and exitstatus == 0:
        session.exitstatus = 1
    _save_results(session.exitstatus)
