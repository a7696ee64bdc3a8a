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


def test_the_full_job_links_the_downloads_kept_on_the_runner(tmp_path):
    """The step's shell script, run as the runner would: datasets downloaded once into the
    tool cache appear under data/, and torch finds its cached weights there."""
    import subprocess

    from course_utils.data import ONLINE_DATASETS

    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    script = next(step["run"] for step in jobs["full"]["steps"]
                  if step.get("name") == "Use the downloads kept on this runner")
    downloads = tmp_path / "tool-cache" / "course-downloads"
    (downloads / "cifar10").mkdir(parents=True)
    checkout, github_env = tmp_path / "checkout", tmp_path / "github-env"
    checkout.mkdir()
    subprocess.run(["bash", "-e", "-c", script], cwd=checkout, check=True, env={
        "RUNNER_TOOL_CACHE": str(tmp_path / "tool-cache"), "GITHUB_ENV": str(github_env),
        "PATH": "/usr/bin:/bin"})
    assert (checkout / "data" / "cifar10").resolve() == downloads / "cifar10"
    assert not (checkout / "data" / "mnist").exists()  # never downloaded: not linked
    assert github_env.read_text() == f"TORCH_HOME={downloads / 'torch'}\n"
    assert all(name in script for name in ONLINE_DATASETS)
