#!/usr/bin/env python3
"""Set up the course and run it, with nothing but Python 3.10+ (standard library only).

    python3 course.py lab        create the environment if needed, then open JupyterLab
                                 (--presenter: the presenter style, for a projector)
    python3 course.py test       create the environment if needed, then run every test (the
                                 notebooks in the quick profile, then the solutions in the
                                 full profile with capped amounts)
    python3 course.py notebooks  regenerate notebooks/ and solutions/*.ipynb from solutions/*.py
    python3 course.py pretrain [NAME ...]
                                 run ahead-of-time recipes (minutes each) and write their
                                 outputs with provenance under data/pretrained/ (--list: list them)
    python3 course.py prepare [NN ...]
                                 before class: run the lessons once (solution notebooks;
                                 --students: those too) so that their datasets and trained
                                 models are cached and a live run trains nothing long
    python3 course.py slides [NN ...]
                                 write each lesson as an offline HTML slide deck under slides/
                                 (--students: the student notebooks; --no-run: text and code
                                 only, without running the lesson)
    python3 course.py results    copy the last test runs' headline results to results/ and
                                 rewrite README.md's results table from them
    python3 course.py setup      only create or update the environment (.venv/)

The environment is a virtual environment in .venv/ with the packages of pyproject.toml and a
Jupyter kernel named "dl-course". When pyproject.toml changes, the next command installs what
it now asks for into it; delete .venv/ to build it again from nothing.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 10):
    sys.exit(f"Python 3.10 or newer is needed (3.11 recommended); this is {sys.version.split()[0]}.")

import hashlib
import os
import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".course-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
KERNEL = ["--name", "dl-course", "--display-name", "Python 3 (dl-course)"]


def run(*command: str | os.PathLike, **kwargs) -> None:
    printable = " ".join(str(part) for part in command)
    print(f"$ {printable}", flush=True)
    result = subprocess.run([str(part) for part in command], cwd=ROOT, **kwargs)
    if result.returncode != 0:
        sys.exit(f"Command failed with exit code {result.returncode}: {printable}")


def requirements_hash() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def setup() -> None:
    """Create .venv, install the course package with its dependencies, register the kernel."""
    if STAMP.exists() and STAMP.read_text().strip() == requirements_hash():
        return
    has_pip = PYTHON.exists() and subprocess.run(
        [str(PYTHON), "-m", "pip", "--version"], capture_output=True).returncode == 0
    if not has_pip:  # missing, or left half-built by an earlier failed attempt
        shutil.rmtree(VENV, ignore_errors=True)
        print(f"Creating the virtual environment {VENV} ...", flush=True)
        try:
            venv.create(VENV, with_pip=True)
        except Exception as error:
            shutil.rmtree(VENV, ignore_errors=True)
            sys.exit(f"Could not create a virtual environment ({error}). On Debian or Ubuntu, "
                     f"install it first: sudo apt install python3-venv")
    # The first install brings PyTorch and Jupyter: a few minutes and a few GB.
    run(PYTHON, "-m", "pip", "install", "--progress-bar", "off", "-e", ".")
    run(PYTHON, "-m", "ipykernel", "install", "--sys-prefix", *KERNEL)
    STAMP.write_text(requirements_hash())
    print("Environment ready.", flush=True)


def lab() -> None:
    """JupyterLab on the course; ``--presenter`` sets COURSE_PRESENTER=1 for its kernels (larger
    figure text, long outputs trimmed: course_utils/presenter.py)."""
    setup()
    arguments = [argument for argument in sys.argv[2:] if argument != "--presenter"]
    env = dict(os.environ)
    if "--presenter" in sys.argv[2:]:
        env["COURSE_PRESENTER"] = "1"
        print("Presenter style on for every lesson opened in this JupyterLab.", flush=True)
    # Jupyter refuses to run as root unless told (containers and cloud machines often are root).
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    run(PYTHON, "-m", "jupyter", "lab", *as_root, "--notebook-dir", ROOT,
        ROOT / "notebooks" / "01_softmax.ipynb", *arguments, env=env)


def test(extra: list[str]) -> None:
    """The unit tests and every notebook in the chosen profile (quick by default); then, in the
    quick profile, the solution notebooks again in the full profile with capped amounts, so that
    every full-profile code path runs here too (the student notebooks share those paths)."""
    setup()
    profile = os.environ.get("COURSE_PROFILE", "quick")
    env = dict(os.environ, COURSE_PROFILE=profile, TQDM_DISABLE="1",
               PYDEVD_DISABLE_FILE_VALIDATION="1")
    nbval = ["--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600"]
    run(PYTHON, "-m", "pytest", "tests", "notebooks", "solutions", *nbval, *extra, env=env)
    if profile == "quick" and os.environ.get("COURSE_CAPPED", "") != "0":
        print("\nThe full profile's code paths, with capped amounts (COURSE_CAPPED=1):", flush=True)
        capped = dict(env, COURSE_PROFILE="full", COURSE_CAPPED="1")
        run(PYTHON, "-m", "pytest", *sorted(ROOT.glob("solutions/[0-9][0-9]_*.ipynb")), *nbval,
            *extra, env=capped)


def notebooks() -> None:
    setup()
    run(PYTHON, "-m", "course_utils.build")


def pretrain(names: list[str]) -> None:
    setup()
    run(PYTHON, "-m", "course_utils.pretrained", *names)


def prepare(arguments: list[str]) -> None:
    setup()
    run(PYTHON, "-m", "course_utils.prepare", *arguments)


def slides(arguments: list[str]) -> None:
    setup()
    run(PYTHON, "-m", "course_utils.slides", *arguments)


def results() -> None:
    setup()
    run(PYTHON, "-m", "course_utils.results_table")


def main() -> None:
    commands = {"setup": setup, "lab": lab, "notebooks": notebooks, "results": results}
    with_arguments = {"pretrain": pretrain, "prepare": prepare, "slides": slides}
    if len(sys.argv) >= 2 and sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return
    if len(sys.argv) < 2 or sys.argv[1] not in (*commands, "test", *with_arguments):
        sys.exit(__doc__)
    if sys.argv[1] == "test":
        test(sys.argv[2:])
    elif sys.argv[1] in with_arguments:
        with_arguments[sys.argv[1]](sys.argv[2:])
    else:
        commands[sys.argv[1]]()


if __name__ == "__main__":
    main()
