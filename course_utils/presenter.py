"""The presenter style: larger text in every figure and shorter printed outputs, for a projector.

Off by default, and never switched on by importing anything. Switch it on for a class with
``setup(presenter=True)`` in a lesson's first cell, or for every lesson at once with the
environment variable ``COURSE_PRESENTER=1`` (``python3 course.py lab --presenter`` sets it).

What changes, only in a Jupyter kernel and only while the style is on:

* every figure a cell displays has its text (titles, labels, tick labels, legends,
  annotations) enlarged by :data:`TEXT_SCALE` and lines thickened, and is laid out again if the
  lesson laid it out with ``tight_layout``: a lesson's figures stay the same code;
* a cell prints at most :data:`MAX_LINES` lines; the rest is counted, and one line at the
  end of the cell says how many were hidden.

``apply(False)`` (or ``setup()`` without it) puts everything back as it was.
"""

import os
import sys

ENV_VAR = "COURSE_PRESENTER"
TEXT_SCALE = 1.4
LINE_SCALE = 1.5
MAX_LINES = 25

_state = {"on": False, "shell": None, "stream": None, "tight_layout": None, "hooks": []}


def wanted(presenter: bool | None = None) -> bool:
    """``presenter`` if given, else whether ``COURSE_PRESENTER`` is set to something other
    than 0 (off when unset)."""
    if presenter is not None:
        return bool(presenter)
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value not in ("", "0", "1", "false", "true", "no", "yes", "off", "on"):
        raise ValueError(f"{ENV_VAR} must be 1 or 0 (on or off), got {value!r}")
    return value in ("1", "true", "yes", "on")


def is_on() -> bool:
    return _state["on"]


def apply(on: bool) -> None:
    """Switch the presenter style on or off in the running kernel (nothing happens outside one,
    except the flag)."""
    if on == _state["on"]:
        return
    shell = _ipython()
    if on and shell is not None:
        _remember_tight_layout()
        _install(shell)
    else:
        _uninstall()
    _state["on"] = on


# ---- figures ------------------------------------------------------------------------------------

def enlarge(fig) -> None:
    """Scale the text of ``fig`` by TEXT_SCALE and its lines by LINE_SCALE, once, then lay it out
    again as the lesson did (``tight_layout`` with the same arguments), if it did."""
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    if getattr(fig, "_presenter_enlarged", False):
        return
    fig._presenter_enlarged = True
    tick_labels = set()
    for ax in fig.axes:
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            labels = axis.get_ticklabels() + axis.get_ticklabels(minor=True)
            tick_labels.update(labels)
            if labels:
                ax.tick_params(axis=name, which="both", labelsize=labels[0].get_fontsize() * TEXT_SCALE)
    for text in fig.findobj(Text):
        if text not in tick_labels and text.get_text():
            text.set_fontsize(text.get_fontsize() * TEXT_SCALE)
    for line in fig.findobj(Line2D):
        line.set_linewidth(line.get_linewidth() * LINE_SCALE)
    layout = getattr(fig, "_presenter_tight_layout", None)
    if layout is not None and _state["tight_layout"] is not None:
        _state["tight_layout"](fig, **layout)


def _remember_tight_layout() -> None:
    """Make ``Figure.tight_layout`` note its arguments on the figure, so that an enlarged figure
    can be laid out again the same way (a bottom legend's ``rect`` kept, for example)."""
    from matplotlib.figure import Figure

    original = Figure.tight_layout

    def tight_layout(self, **kwargs):
        self._presenter_tight_layout = kwargs
        return original(self, **kwargs)

    _state["tight_layout"] = original
    Figure.tight_layout = tight_layout


def _png_printer(shell):
    """``(formatter, printer)``: IPython's PNG formatter and the function it uses for figures
    now (None when none is registered yet)."""
    from matplotlib.figure import Figure

    formatter = shell.display_formatter.formatters["image/png"]
    try:
        return formatter, formatter.lookup_by_type(Figure)
    except KeyError:
        return formatter, None


def _figure_formatter(shell):
    """Wrap the PNG formatter of figures that is registered now (matplotlib's inline backend
    registers its own when it starts, and again when its settings change)."""
    from matplotlib.figure import Figure

    formatter, current = _png_printer(shell)
    if current is None or getattr(current, "_presenter", False):
        return

    def enlarged_png(fig, *args, **kwargs):
        enlarge(fig)
        return current(fig, *args, **kwargs)

    enlarged_png._presenter = True
    enlarged_png._original = current
    formatter.for_type(Figure, enlarged_png)


def _restore_figure_formatter(shell) -> None:
    from matplotlib.figure import Figure

    formatter, current = _png_printer(shell)
    if getattr(current, "_presenter", False):
        formatter.for_type(Figure, current._original)


# ---- printed output ----------------------------------------------------------------------------

class TrimmedStream:
    """A stream that passes on the first ``max_lines`` lines written since :meth:`reset`, and
    counts the rest; every other attribute is the wrapped stream's."""

    def __init__(self, stream, max_lines: int = MAX_LINES):
        self.stream = stream
        self.max_lines = max_lines
        self.reset()

    def reset(self) -> None:
        self.lines, self.hidden = 0, 0

    def write(self, text: str) -> int:
        shown = []
        for piece in text.splitlines(keepends=True):
            if self.lines < self.max_lines:
                shown.append(piece)
            elif piece.endswith("\n"):
                self.hidden += 1
            if piece.endswith("\n"):
                self.lines += 1
        if shown:
            self.stream.write("".join(shown))
        return len(text)

    def summary(self) -> str | None:
        """The line that says what was hidden, or None."""
        if not self.hidden:
            return None
        return (f"... {self.hidden} more line{'s' if self.hidden != 1 else ''} hidden by the "
                f"presenter style ({ENV_VAR}=0, or setup(presenter=False), shows everything)\n")

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _install(shell) -> None:
    stream = TrimmedStream(sys.stdout)
    sys.stdout = stream
    _state.update(shell=shell, stream=stream)

    def before_cell(*_):
        stream.reset()

    def after_cell(*_):
        summary = stream.summary()
        if summary:
            stream.stream.write(summary)
            stream.stream.flush()
        stream.reset()

    hooks = [("pre_run_cell", before_cell), ("post_run_cell", after_cell),
             ("pre_execute", lambda: _figure_formatter(shell)),
             ("post_execute", lambda: _figure_formatter(shell))]
    for event, hook in hooks:
        shell.events.register(event, hook)
    _state["hooks"] = hooks
    import matplotlib

    if "inline" in str(matplotlib.rcParams._get("backend")):
        # Loading the inline backend registers its figure formatter, which is then wrapped
        # (otherwise it loads with the first figure, after the hooks of this cell).
        import importlib

        importlib.import_module("matplotlib_inline.backend_inline")
    _figure_formatter(shell)


def _uninstall() -> None:
    shell, stream = _state["shell"], _state["stream"]
    if shell is not None:
        for event, hook in _state["hooks"]:
            shell.events.unregister(event, hook)
        _restore_figure_formatter(shell)
    if stream is not None and sys.stdout is stream:
        sys.stdout = stream.stream
    if _state["tight_layout"] is not None:
        from matplotlib.figure import Figure

        Figure.tight_layout = _state["tight_layout"]
    _state.update(shell=None, stream=None, tight_layout=None, hooks=[])


def _ipython():
    """The running IPython kernel's shell, or None (a plain Python process, or a terminal)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and hasattr(shell, "kernel") else None
