"""The CI workflow runs the README's commands: the quick profile on a CPU runner, the full
profile on a self-hosted GPU runner."""

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "course.yml"


def _commands(job):
    return [(step.get("run", ""), step.get("env", {})) for step in job["steps"]]


def test_the_quick_job_runs_the_readmes_test_command_on_a_cpu_runner():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py test" in readme and jobs["quick"]["runs-on"] == "ubuntu-latest"
    assert ("python3 course.py test", {}) in _commands(jobs["quick"])
    assert "python3 course.py test" in (ROOT / ".ci" / "run").read_text()


def test_the_full_job_runs_the_full_profile_on_a_self_hosted_gpu():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert jobs["full"]["runs-on"] == ["self-hosted", "gpu"]
    assert ("python3 course.py test", {"COURSE_PROFILE": "full"}) in _commands(jobs["full"])
    assert "COURSE_PROFILE=full python3 course.py test" in (ROOT / "README.md").read_text()
