"""Loaded into every kernel of a notebook test run (through an IPython startup file written by
conftest.py): each figure a notebook displays is checked for text too small for a projector,
and what is found is appended to a report that conftest.py turns into a failure."""

import json


def install(shell, report_path: str) -> None:
    current_cell = {"source": ""}

    def remember(info):
        current_cell["source"] = info.raw_cell

    def check(fig):
        from course_utils.plotting import legibility_problems


        problems = legibility_problems(fig)
        if problems:
            cell = [line for line in current_cell["source"].splitlines()
                    if line.strip() and not line.startswith("#")]
            with open(report_path, "a", encoding="utf-8") as report:
                report.write(json.dumps({"cell": cell[0][:80] if cell else "",
                                         "problems": problems}) + "\n")
        return f"<Figure size {fig.get_figwidth():g}x{fig.get_figheight():g} in>"

    def register():
        # Runs whenever a figure is displayed: plt.show(), the end of a cell, inside widgets.
        shell.display_formatter.formatters["text/plain"].for_type_by_name(
            "matplotlib.figure", "Figure", lambda fig, printer, cycle: printer.text(check(fig)))

    # Activating matplotlib's inline backend (at the first pyplot import) removes every
    # formatter of figures, so register again before each cell and before its figures are shown
    # (this hook runs before the backend's, which was registered later).
    register()
    shell.events.register("pre_run_cell", remember)
    shell.events.register("pre_execute", register)
    shell.events.register("post_execute", register)
