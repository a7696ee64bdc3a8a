"""Before class: run the lessons once, so that running them live trains nothing long.

``python3 course.py prepare [NN ...]`` executes each chosen lesson's notebooks in a kernel, in
the profile the lessons choose (``COURSE_PROFILE``, else full on a CUDA GPU and quick
otherwise), and throws the outputs away. What stays
is what the lessons cache: the glyph datasets under ``data/glyphs/``, every model trained
through :func:`course_utils.cache.train_once` under ``data/checkpoints/`` and lesson 07's live
pretrainings. A lesson run afterwards, in the same profile on the same kind of device, loads
them instead of training; what is left live are the runs a lesson makes on purpose (a few
seconds each in the quick profile).

By default the solution notebooks are run (what an instructor presents); ``--students`` runs
the student notebooks too (their unfinished exercises fall back on the references, so they
mostly load the same checkpoints). Each notebook's time is printed, and a table at the end:
run the command twice to see what a lesson costs once prepared.
"""

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lesson_notebooks(lessons: list[str] | None = None, *, students: bool = False,
                     root: Path = ROOT) -> list[Path]:
    """The solution notebooks (and, with ``students``, the student ones) of the ``lessons``
    given by number ("02", "7" ...), or of every lesson."""
    folders = ["solutions"] + (["notebooks"] if students else [])
    found = [path for folder in folders for path in sorted((root / folder).glob("[0-9][0-9]_*.ipynb"))]
    if not lessons:
        return found
    wanted = {lesson.zfill(2) for lesson in lessons}
    unknown = wanted - {path.name[:2] for path in found}
    if unknown:
        raise ValueError(f"no lesson {', '.join(sorted(unknown))}; the lessons are "
                         f"{', '.join(sorted({path.name[:2] for path in found}))}")
    return [path for path in found if path.name[:2] in wanted]


def execute(path: Path, *, timeout: int = 3600, env: dict | None = None, **options):
    """The notebook at ``path``, executed in a fresh kernel started in its folder, with the
    environment ``env`` (default: this process's); ``options`` go to nbclient's
    NotebookClient (e.g. ``store_widget_state``)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, **options)
    client.execute(**({} if env is None else {"env": env}))
    return notebook


def run_notebook(path: Path, *, timeout: int = 3600) -> float:
    """Execute the notebook at ``path`` in a fresh kernel (outputs discarded); its seconds."""
    start = time.perf_counter()
    execute(path, timeout=timeout)
    return time.perf_counter() - start


def prepare(paths: list[Path], *, run=run_notebook) -> dict[Path, float]:
    """Run every notebook of ``paths`` once, with a progress bar; their seconds."""
    from tqdm.auto import tqdm

    seconds = {}
    with tqdm(paths, unit="notebook", disable=False) as bar:
        for path in bar:
            bar.set_description(f"{path.parent.name}/{path.stem}")
            seconds[path] = run(path)
            bar.write(f"{path.parent.name}/{path.name}: {seconds[path]:.0f} s")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python3 course.py prepare",
        description="Run the lessons once so that their datasets and trained models are cached.")
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: every lesson)")
    parser.add_argument("--students", action="store_true",
                        help="run the student notebooks too")
    arguments = parser.parse_args(argv)
    try:
        paths = lesson_notebooks(arguments.lessons, students=arguments.students)
    except ValueError as error:
        parser.error(str(error))
    from course_utils.config import choose_profile

    profile = choose_profile()  # what the lessons' kernels pick: full on a CUDA GPU when unset
    other = "quick" if profile == "full" else "full"
    print(f"Preparing {len(paths)} notebook(s) in the {profile} profile "
          f"(COURSE_PROFILE={other} prepares the {other} one).", flush=True)
    seconds = prepare(paths)
    print(f"\n{'notebook':48}{'seconds':>9}")
    for path, value in seconds.items():
        print(f"{path.parent.name + '/' + path.name:48}{value:>9.0f}")
    print(f"{'total':48}{sum(seconds.values()):>9.0f}\nRun it again to see each lesson's time "
          f"once prepared; COURSE_RETRAIN=1 would train everything again.")


if __name__ == "__main__":
    main()
