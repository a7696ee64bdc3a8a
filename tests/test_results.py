"""Headline results: recorded at run time, guarded against their profile's expected range."""

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import config, results
from course_utils.training import evaluate, fit

ROOT = Path(__file__).resolve().parent.parent
RECORD_CALL = re.compile(r"""record\(\s*"(\d\d)",""")


@pytest.fixture(autouse=True)
def checking(monkeypatch, tmp_path):
    monkeypatch.setenv(results.CHECK_ENV_VAR, "1")
    monkeypatch.setenv(results.RESULTS_FILE_ENV_VAR, str(tmp_path / "results.jsonl"))
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    return tmp_path / "results.jsonl"


@pytest.fixture
def expected(monkeypatch, tmp_path):
    table = tmp_path / "expected.json"
    table.write_text(json.dumps({"99": {"accuracy": {"quick": [0.9, 1.0], "capped": [0.5, 1.0]}}}))
    monkeypatch.setattr(results, "EXPECTED_FILE", table)


def test_a_value_in_range_is_returned_and_written(expected, checking):
    assert results.record("99", "accuracy", torch.tensor(0.95)) == pytest.approx(0.95)
    entry = json.loads(checking.read_text())
    assert entry == {"lesson": "99", "name": "accuracy", "value": pytest.approx(0.95), "profile": "quick"}


def test_a_recorded_value_is_a_float_that_shows_its_name(expected, checking):
    value = results.record("99", "accuracy", 0.9512)
    assert isinstance(value, float) and value + 1 == pytest.approx(1.9512)
    assert f"{value:.1%}" == "95.1%" and json.dumps(value) == "0.9512"
    assert repr(value) == "headline result recorded: accuracy = 0.9512"


@pytest.mark.parametrize("value", [0.5, 1.5, float("nan")])
def test_a_value_out_of_range_fails_the_run(expected, value):
    with pytest.raises(results.HeadlineResultError, match=r"outside the range \[0.9, 1\]"):
        results.record("99", "accuracy", value)


def test_the_capped_run_has_its_own_range(expected, monkeypatch):
    monkeypatch.setenv("COURSE_CAPPED", "1")
    config.setup(seed=0, profile="full", device="cpu", verbose=False)
    assert results.record("99", "accuracy", 0.6) == 0.6


def test_a_result_without_a_range_is_refused(expected):
    with pytest.raises(results.HeadlineResultError, match="lists no range"):
        results.record("99", "loss", 0.1)
    config.setup(seed=0, profile="full", device="cpu", verbose=False)
    with pytest.raises(results.HeadlineResultError, match="full profile"):
        results.record("99", "accuracy", 0.95)


def test_outside_a_test_run_nothing_is_checked(expected, monkeypatch):
    monkeypatch.setenv(results.CHECK_ENV_VAR, "0")
    assert results.record("99", "accuracy", 0.1) == pytest.approx(0.1)


def test_the_guard_catches_a_deliberately_broken_training_run(expected):
    """A classifier that trains normally passes; the same run broken (learning rate 0) fails."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(256, 2, generator=generator)
    targets = (inputs[:, 0] > 0).long()
    loader = DataLoader(TensorDataset(inputs, targets), batch_size=32)

    def run(learning_rate):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        with torch.no_grad():
            model.weight.copy_(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))  # starts wrong
        fit(model, loader, epochs=20, optimizer=torch.optim.SGD(model.parameters(), lr=learning_rate),
            progress=False)
        return evaluate(model, loader)["accuracy"]

    assert results.record("99", "accuracy", run(0.5)) >= 0.9
    with pytest.raises(results.HeadlineResultError):
        results.record("99", "accuracy", run(0.0))


def test_every_lesson_records_results_and_every_range_is_sound():
    """Names are often f-strings, so the sources only tell which lessons record; a recorded name
    without a range fails in the notebook run itself (test_a_result_without_a_range_is_refused)."""
    table = json.loads(results.EXPECTED_FILE.read_text())
    table.pop("_about")
    recording = set()
    for source in sorted(ROOT.glob("solutions/[0-9][0-9]_*.py")):
        lessons = set(RECORD_CALL.findall(source.read_text()))
        assert lessons, f"{source.name} records no headline result"
        assert lessons == {source.name[:2]}, f"{source.name} records under lessons {lessons}"
        recording |= lessons
    assert set(table) == recording
    for lesson, names in table.items():
        for name, profiles in names.items():
            assert set(profiles) == {"quick", "full", "capped"}, (lesson, name)
            for profile, (low, high) in profiles.items():
                assert low < high, (lesson, name, profile)
            # The quick ranges are measured: each excludes a collapse to 0.
            assert profiles["quick"][0] > 0, (lesson, name)
