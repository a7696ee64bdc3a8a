"""environment.yml (for conda users) must list exactly the dependencies of pyproject.toml."""

from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    listed = [entry for entry in pip_section if entry != "-e ."]
    assert sorted(listed) == sorted(project["dependencies"])
    assert "-e ." in pip_section
    python = next(item for item in environment["dependencies"]
                  if isinstance(item, str) and item.startswith("python="))
    version = tuple(int(part) for part in python.split("=")[1].split("."))
    assert version >= tuple(int(part) for part in project["requires-python"][2:].split("."))


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 course.py test" in readme.split("\n## ")[0]
    assert "python3 course.py lab" in readme.split("\n## ")[0]
    assert "python3 course.py test" in ci
