"""The same seed prints the same metrics: run a lesson twice on the CPU and compare its text.

Only printed text is compared (figures may differ in rendering details); durations such as
"1.2 s" are masked because wall-clock time is not reproducible.
"""

import re
import time
from pathlib import Path
from queue import Empty

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["solutions/01_softmax.ipynb"]
DURATION = re.compile(r"\d+(\.\d+)?\s?(ms|s|seconds)\b")


class SlicedPollClient(NotebookClient):
    """nbclient, waiting for each execute_reply in short slices instead of one long poll.

    With nbclient 0.11 / jupyter_client 8 on this kind of machine, the asyncio poll on the shell
    socket sometimes misses the wake-up for a reply that has already arrived (seen after cells
    that open widgets) and only returns when its timeout ends: a 0.5 s cell then takes the whole
    600 s. Each slice ends with a non-blocking check, so a missed wake-up costs at most 0.5 s.
    """

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        channel = client.shell_channel
        single_poll = channel.get_msg

        async def get_msg(timeout=None):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                remaining = 0.5 if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    return await single_poll(timeout=min(0.5, remaining))
                except Empty:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise

        channel.get_msg = get_msg
        return client


def _printed_text(path: Path) -> list[str]:
    notebook = nbformat.read(path, as_version=4)
    client = SlicedPollClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    texts = []
    for cell in notebook.cells:
        # A cell's printed text may arrive as one stream output or as several (how the kernel
        # flushes varies from run to run): compare it joined, per cell.
        printed = "".join(output["text"] for output in cell.get("outputs", [])
                          if output.get("output_type") == "stream" and output.get("name") == "stdout")
        if printed:
            texts.append(DURATION.sub("<time>", printed))
        for output in cell.get("outputs", []):
            if "text/plain" in output.get("data", {}):
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
