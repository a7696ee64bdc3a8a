"""Plain `jupyter nbconvert --execute` (and papermill: both are nbclient) runs the course's widgets.

nbclient plays the front end of an Output widget that captures output (``with out:``, as
``ipywidgets.interactive`` does): it sends the captured outputs back on the shell channel while
it waits for the cell's reply. jupyter_client sends through a blocking shadow of its asyncio
socket, so when the reply has just arrived that send can consume the socket's wake-up: the reply
then sits unread, the kernel idle, until the cell's timeout ends and a last poll finds it
(jupyter/nbclient#312; seen with nbclient 0.11, jupyter_client 8.10, pyzmq 27). Lesson 02 stalled
this way at its convolution widget. course_utils.widgets fills its Output widgets from the
kernel instead, so nothing is sent back.

The first test runs every course widget several times with nbconvert's own preprocessor and a
short cell timeout, and times each cell: with ipywidgets' own capture, 4 of its 32 widget cells
waited for the whole timeout in the run tried before the fix. Set COURSE_NBCONVERT_LESSONS=1 to
also execute every lesson notebook this way (a minute or two each in the quick profile on an
idle 2-core machine).
"""

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbconvert.preprocessors import ExecutePreprocessor
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
LESSONS = [*sorted(ROOT.glob("notebooks/[0-9][0-9]_*.ipynb")),
           *sorted(ROOT.glob("solutions/[0-9][0-9]_*.ipynb"))]
REPEATS = 8  # cells per widget

SETUP = """\
import numpy as np
from course_utils import widgets

image = np.random.default_rng(0).integers(0, 256, size=(300, 450, 3), dtype=np.uint8)  # photo-sized
weights = np.full((1, 2, 3, 4), 0.25)  # (layers, heads, len("one"), len("un b"))

def translate(number):
    return "un b", "one", "one", weights
"""
WIDGETS = {
    "temperature": "widgets.temperature_widget([2.0, 1.0, 0.1, -1.0])",
    "convolution": 'widgets.convolution_widget({"noise": image})',
    "attention query": 'widgets.attention_query_widget([[1, 0], [0, 1], [-1, 0]], ["a", "b", "c"])',
    "translation": "widgets.translation_widget(translate, max_number=9, num_layers=1, value=1)",
}


def _execute(notebook, timeout: int, directory: Path = ROOT) -> dict[int, float]:
    """Execute ``notebook`` in place with the preprocessor of `jupyter nbconvert --execute`.

    Returns each code cell's seconds from sending it to receiving its reply. A lost reply is
    read when the cell's timeout ends, with no error, so only the time shows it.
    """
    started, seconds = {}, {}

    def on_cell_execute(cell, cell_index):
        started[cell_index] = time.monotonic()

    def on_cell_executed(cell, cell_index, execute_reply):
        seconds[cell_index] = time.monotonic() - started[cell_index]

    preprocessor = ExecutePreprocessor(timeout=timeout, kernel_name="python3",
                                       on_cell_execute=on_cell_execute,
                                       on_cell_executed=on_cell_executed)
    preprocessor.preprocess(notebook, {"metadata": {"path": str(directory)}})
    return seconds


def test_every_widget_runs_under_plain_nbconvert(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    cells = [new_code_cell(SETUP)]
    for _ in range(REPEATS):
        cells += [new_code_cell(code) for code in WIDGETS.values()]
    notebook = new_notebook(cells=cells)
    timeout = 30
    seconds = _execute(notebook, timeout)

    slow = {index: round(time_s, 1) for index, time_s in seconds.items()
            if index > 0 and time_s > timeout / 2}  # a widget cell takes about a second at most
    assert not slow, f"widget cells whose reply waited for the {timeout} s timeout: {slow}"
    for cell in notebook.cells[1:]:
        kinds = [output["output_type"] for output in cell.outputs]
        assert kinds == ["execute_result"], f"{cell.source!r} put {kinds} outside its widget"
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    widget_outputs = [model["state"]["outputs"] for model in state.values()
                      if model["model_name"] == "OutputModel"]
    assert len(widget_outputs) == REPEATS * len(WIDGETS)
    for outputs in widget_outputs:
        assert any("image/png" in output.get("data", {}) for output in outputs), outputs


@pytest.mark.skipif(os.environ.get("COURSE_NBCONVERT_LESSONS") != "1",
                    reason="set COURSE_NBCONVERT_LESSONS=1 to execute every lesson with nbconvert")
@pytest.mark.parametrize("path", LESSONS, ids=[f"{p.parent.name}/{p.stem}" for p in LESSONS])
def test_lesson_runs_under_plain_nbconvert(path, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", os.environ.get("COURSE_PROFILE", "quick"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    timeout = 600
    seconds = _execute(nbformat.read(path, as_version=4), timeout, directory=path.parent)
    stalled = {index: round(time_s) for index, time_s in seconds.items() if time_s > timeout - 5}
    assert not stalled, f"cells whose reply waited for the {timeout} s timeout: {stalled}"
    print(f"{path.name}: {sum(seconds.values()):.0f} s, slowest cell {max(seconds.values()):.0f} s")


def test_no_lesson_or_module_captures_widget_output_itself():
    """ipywidgets' capturing helpers are the trigger: widgets go through widgets._core._interactive."""
    capturing = ("ipywidgets.interactive(", "interact(", "interactive_output(", ".Output(")
    sources = [*ROOT.glob("solutions/[0-9][0-9]_*.py"), *ROOT.glob("course_utils/**/*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for path in sources
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if any(pattern in line for pattern in capturing)]
    assert not found, "use course_utils.widgets._core._interactive instead:\n" + "\n".join(found)
