"""The same seed prints the same metrics: run a lesson twice on the CPU and compare its text.

Only printed text is compared (figures may differ in rendering details); durations such as
"1.2 s" are masked because wall-clock time is not reproducible.
"""

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["solutions/01_softmax.ipynb"]
DURATION = re.compile(r"\d+(\.\d+)?\s?(ms|s|seconds)\b")


def _printed_text(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    texts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                texts.append(DURATION.sub("<time>", output["text"]))
            elif "text/plain" in output.get("data", {}):
                texts.append(DURATION.sub("<time>", output["data"]["text/plain"]))
    return [text for text in texts if not text.startswith("<Figure")]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_same_seed_same_printed_numbers(name, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "quick")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setenv("TQDM_DISABLE", "1")
    first, second = _printed_text(ROOT / name), _printed_text(ROOT / name)
    assert any("test accuracy" in text for text in first), "the notebook should print metrics"
    assert first == second
