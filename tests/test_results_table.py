"""The README's results table: rendered from saved test runs, and up to date with them."""

import json

import pytest

from course_utils import results_table


def _run(profile, values):
    return {"profile": profile, "machine": "x86_64, 2 CPU threads, no GPU", "date": "2026-12-01",
            "results": [{"notebook": notebook, "lesson": "01", "name": "test accuracy", "value": value}
                        for notebook, value in values]}


def test_the_table_shows_the_solutions_value_and_says_what_is_not_measured():
    run = _run("quick", [("solutions/01_softmax.ipynb", 0.937), ("notebooks/01_softmax.ipynb", 0.5)])
    table = results_table.render({"quick": run})
    assert "| 01 | test accuracy | 93.7% | not measured yet |" in table
    assert "- quick profile: measured by a test run on 2026-12-01 (x86_64, 2 CPU threads, no GPU)." in table
    assert "- full profile: not measured yet (it needs a GPU runner)." in table


def test_a_count_is_not_shown_as_a_percentage():
    run = {"profile": "quick", "machine": "m", "date": "d", "results": [
        {"notebook": "solutions/07_x.ipynb", "lesson": "07",
         "name": "ranking flips between evaluation protocols", "value": 3.0}]}
    assert "| 07 | ranking flips between evaluation protocols | 3 |" in results_table.render({"quick": run})


def test_a_run_is_saved_where_the_command_finds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    path = results_table.save_run(_run("quick", [("solutions/01_softmax.ipynb", 0.9)])["results"], "quick")
    assert path == tmp_path / "results" / "quick.json"
    assert json.loads(path.read_text())["results"][0]["value"] == 0.9
    assert results_table.save_run([], "full") is None


def test_the_readme_table_is_the_one_the_saved_runs_give():
    runs = results_table.measured_runs()
    assert "quick" in runs, "run `python3 course.py test`, then `python3 course.py results`"
    readme = results_table.README.read_text()
    assert results_table.readme_with_table(readme, results_table.render(runs)) == readme, (
        "README.md's results table is not the one results/ gives: run `python3 course.py results`")


def test_markers_are_required():
    with pytest.raises(ValueError, match="no results table markers"):
        results_table.readme_with_table("# no table here", "table")
