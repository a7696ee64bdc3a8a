"""The presenter style: off by default, on by argument or environment, and in a kernel it
enlarges every displayed figure's text and trims long printed outputs, then undoes it all."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

from course_utils import presenter

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("1", True), ("on", True),
                                             ("false", False)])
def test_wanted_reads_the_environment_unless_told(value, expected, monkeypatch):
    monkeypatch.setenv(presenter.ENV_VAR, value)
    assert presenter.wanted() is expected
    assert presenter.wanted(True) is True and presenter.wanted(False) is False


def test_a_bad_value_is_refused(monkeypatch):
    monkeypatch.setenv(presenter.ENV_VAR, "big")
    with pytest.raises(ValueError, match="must be 1 or 0"):
        presenter.wanted()


def test_importing_the_course_switches_nothing_on():
    code = ("import matplotlib, course_utils, course_utils.presenter as p; "
            "from course_utils import plotting, widgets; "
            "print(p.is_on(), matplotlib.rcParams['font.size'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={"PATH": "", "COURSE_PRESENTER": "1"}, check=True).stdout
    assert out.split() == ["False", "10.0"]


def test_the_trimmed_stream_passes_the_first_lines_and_counts_the_rest():
    sink = io.StringIO()
    stream = presenter.TrimmedStream(sink, max_lines=3)
    stream.write("one\ntwo\n")
    stream.write("three\nfour\nfive")
    stream.write("\n")
    assert sink.getvalue() == "one\ntwo\nthree\n"
    assert stream.summary().startswith("... 2 more lines hidden by the presenter style")
    stream.reset()
    stream.write("again\n")
    assert sink.getvalue().endswith("again\n") and stream.summary() is None


def _run(cells: list[str]) -> list[str]:
    notebook = new_notebook(cells=[new_code_cell(source) for source in cells])
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT)}}).execute()
    return ["".join(output.get("text", "") for output in cell.outputs
                    if output.get("output_type") == "stream") for cell in notebook.cells]


FIGURE = """import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot([0, 1], [0, 1])
ax.set_title("title", fontsize=10)
fig.tight_layout(rect=(0, 0.1, 1, 1))
plt.show()
print(ax.title.get_fontsize(), ax.lines[0].get_linewidth() > 2)"""


def test_in_a_kernel_figures_grow_long_outputs_shrink_and_switching_off_restores():
    outputs = _run([
        "from course_utils import setup\ncfg = setup(presenter=True)",
        FIGURE,
        "for i in range(40):\n    print(i)",
        "cfg = setup(presenter=False)",
        FIGURE,
        "for i in range(40):\n    print(i)",
    ])
    assert "presenter style" in outputs[0]
    assert outputs[1].split() == [str(10 * presenter.TEXT_SCALE), "True"]
    shown = outputs[2].splitlines()
    assert shown[:presenter.MAX_LINES] == [str(i) for i in range(presenter.MAX_LINES)]
    assert len(shown) == presenter.MAX_LINES + 1 and shown[-1].startswith("... 15 more lines hidden")
    assert "presenter style" not in outputs[3]
    assert outputs[4].split() == ["10.0", "False"]
    assert outputs[5].splitlines() == [str(i) for i in range(40)]


WIDGET = """import matplotlib.pyplot as plt
from ipywidgets import IntSlider
from course_utils.widgets._core import _interactive
shown = []

def draw(value):
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title(f"value {value}", fontsize=10)
    shown.append(fig)
    plt.show()

widget = _interactive(draw, value=IntSlider(1, 0, 5))
print(shown[-1].axes[0].title.get_fontsize(), "image/png" in widget.out.outputs[0]["data"])"""


def test_figures_inside_widgets_grow_too():
    outputs = _run(["from course_utils import setup\ncfg = setup(presenter=True)", WIDGET])
    assert outputs[1].split() == [str(10 * presenter.TEXT_SCALE), "True"]


def test_off_by_default_in_a_kernel():
    outputs = _run(["from course_utils import setup\ncfg = setup()", FIGURE,
                    "for i in range(40):\n    print(i)"])
    assert "presenter" not in outputs[0] and outputs[1].split() == ["10.0", "False"]
    assert len(outputs[2].splitlines()) == 40
