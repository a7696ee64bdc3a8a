"""Exercise feedback: run a learner's function on a few cases and say exactly what differs.

Every exercise cell in a lesson is followed by a check cell such as::

    softmax = check_softmax(softmax)

The check runs the learner's function next to a reference implementation on several cases
(ordinary input, large values, a batch of one, ...) and returns the function the rest of the
notebook should use:

* not done yet (``NotImplementedError``): says so and returns the reference, so the notebook
  still runs top to bottom;
* raises another exception: reports the exception and the line it came from, returns the reference;
* gives a wrong answer: names the case, the input, what was expected and what came back
  (shape, dtype, NaN, values), returns the reference;
* right on every case: a clear pass, and returns the learner's own function.

The verdict is shown as a coloured box (PASSED, NOT DONE or WRONG) in Jupyter, with the same
text as plain output for terminals and test runs.
"""

import html
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

PASS = "\N{WHITE HEAVY CHECK MARK}"
FAIL = "\N{CROSS MARK}"
TODO = "\N{HOURGLASS}"
USING_REFERENCE = "The rest of the notebook uses the reference version."


@dataclass
class Case:
    """One input on which the learner's function must agree with the reference.

    ``hint`` is shown when this case fails: say what the case is testing and what usually goes wrong.
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    hint: str = ""


@dataclass
class CheckResult:
    """What a check found: ``status`` is ``"pass"``, ``"todo"``, ``"error"`` or ``"fail"``.

    ``message`` says what was found in one sentence; ``hint`` what to do about it; ``case`` and
    ``inputs`` name the failing case and describe its input.
    """

    exercise: str
    status: str
    message: str
    hint: str = ""
    case: str = ""
    inputs: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _clone(value):
    """Deep-copy tensors and arrays inside ``value`` so in-place edits by the learner can be detected."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_clone(item) for item in value)
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    return value


def describe_value(value, max_items: int = 6) -> str:
    """A short, readable description of a value for feedback messages."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(f"{x:.4g}" for x in flat[:max_items].tolist())
        more = ", ..." if flat.numel() > max_items else ""
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}: [{shown}{more}]"
    if isinstance(value, np.ndarray):
        return describe_value(torch.from_numpy(np.ascontiguousarray(value)), max_items)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, torch.nn.Module):  # its repr lists every layer: far too long here
        return f"a {type(value).__name__} model"
    text = repr(value)
    if isinstance(value, (tuple, list)) and len(text) > 100:
        # Several inputs: their shapes say what the case is; their values would not fit.
        items = [f"{'tensor' if isinstance(item, torch.Tensor) else 'array'} of shape "
                 f"{tuple(item.shape)}" if isinstance(item, (torch.Tensor, np.ndarray))
                 else describe_value(item) for item in value]
        return f"({', '.join(items)})"
    return text if len(text) <= 100 else text[:97] + "..."


# General advice on a wrong shape; left out when an exercise's own diagnosis explains it.
SHAPE_ADVICE = ("; check which axes you reduce over (keepdim=True keeps them) and any reshape you "
                "did not undo")


def compare(expected, got, *, atol: float = 1e-5, rtol: float = 1e-4,
            names: Sequence[str] = ()) -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying what differs.

    ``names`` labels the items of an expected tuple or list in messages (e.g. "parameters").
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor but got {type(got).__name__} ({describe_value(got)})"
        if got.shape != expected.shape:
            return (f"expected shape {tuple(expected.shape)} but got shape {tuple(got.shape)}"
                    f"{SHAPE_ADVICE}")
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype} but got dtype {got.dtype}"
        got, expected = got.detach().cpu(), expected.detach().cpu()
        if expected.dtype == torch.bool or not expected.is_floating_point():
            wrong = got != expected
            if wrong.any():
                index = tuple(torch.nonzero(wrong)[0].tolist())
                return (f"values differ at index {index}: expected {expected[index].item()} "
                        f"but got {got[index].item()}")
            return None
        bad_got = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad_got.any():
            index = tuple(torch.nonzero(bad_got)[0].tolist())
            kind = "NaN" if torch.isnan(got[index]) else ("-inf" if got[index] < 0 else "inf")
            return (f"got {kind} at index {index} where {expected[index].item():.6g} was expected "
                    f"({int(bad_got.sum())} non-finite value(s) in all); something overflowed "
                    f"or divided by zero")
        if not torch.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
            diff = (got - expected).abs().nan_to_num(nan=float("inf"))
            index = tuple(torch.nonzero(diff == diff.max())[0].tolist())
            return (f"values differ: largest difference {diff.max().item():.3g} at index {index} "
                    f"(expected {expected[index].item():.6g}, got {got[index].item():.6g})")
        return None
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"expected a NumPy array but got {type(got).__name__} ({describe_value(got)})"
        return compare(torch.from_numpy(np.ascontiguousarray(expected)),
                       torch.from_numpy(np.ascontiguousarray(got)), atol=atol, rtol=rtol)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a sequence of {len(expected)} items but got {describe_value(got)}"
        for position, (want, have) in enumerate(zip(expected, got)):
            problem = compare(want, have, atol=atol, rtol=rtol)
            if problem:
                label = names[position] if position < len(names) else f"item {position}"
                return f"{label}: {problem}"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return f"expected a dict with keys {sorted(expected)} but got {describe_value(got)}"
        for key in expected:
            problem = compare(expected[key], got[key], atol=atol, rtol=rtol)
            if problem:
                return f"{key!r}: {problem}"
        return None
    if isinstance(expected, bool) or isinstance(expected, str):
        return None if got == expected else f"expected {expected!r} but got {got!r}"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, (float, np.floating)):
            return (f"expected the integer {expected} but got the float {float(got)!r}: return an "
                    f"int (use // for division, or int(...) once the result is whole)")
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            return f"expected the integer {expected} but got {describe_value(got)}"
        return None if got == expected else f"expected {expected:,} but got {int(got):,}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, bool):
            return f"expected a number but got {type(got).__name__} ({describe_value(got)})"
        if not np.isfinite(got) and np.isfinite(expected):
            return f"expected {expected:.6g} but got {got}"
        if abs(got - expected) > atol + rtol * abs(expected):
            return f"expected {expected:.6g} but got {got:.6g}"
        return None
    try:
        equal = bool(got == expected)
    except (TypeError, ValueError, RuntimeError):  # e.g. an array compared with a number
        equal = False
    return None if equal else f"expected {expected!r} but got {describe_value(got)}"


def _describe_inputs(case: Case) -> str:
    parts = [describe_value(arg) for arg in case.args]
    parts += [f"{key}={describe_value(value)}" for key, value in case.kwargs.items()]
    return "; ".join(parts)


def _where_it_failed(error: BaseException) -> str:
    """The last line of the learner's own code in the traceback (notebook cells, not libraries)."""
    frames = traceback.extract_tb(error.__traceback__)
    own = [frame for frame in frames if "course_utils" not in frame.filename
           and "site-packages" not in frame.filename]
    if not own:
        return ""
    frame = own[-1]
    line = (frame.line or "").strip()
    return f" (in {frame.name}, line {frame.lineno}: `{line}`)" if line else ""


def run_check(student_fn: Callable, reference_fn: Callable, cases: Sequence[Case], *,
              exercise: str, atol: float = 1e-5, rtol: float = 1e-4,
              diagnose: Callable | None = None, output_names: Sequence[str] = ()) -> CheckResult:
    """Compare ``student_fn`` with ``reference_fn`` on every case and return what was found.

    ``diagnose(case, expected, got)`` may recognise a common mistake in a wrong answer and
    return a hint for it; otherwise the case's own hint is shown. ``output_names`` names the
    parts of a tuple answer in the feedback.
    """
    if not callable(student_fn):
        return CheckResult(exercise, "error", f"expected a function but got "
                           f"{type(student_fn).__name__}.", hint="Run the exercise cell above first.")
    if student_fn is reference_fn:
        # An earlier run of the check cell swapped in the reference: do not grade it as theirs.
        return CheckResult(exercise, "todo", "this is the reference version, left by an earlier "
                           "run of this cell; your own code was not checked.",
                           hint="Run the exercise cell above (it defines your version), then "
                                "this cell again.")
    for case in cases:
        expected = reference_fn(*_clone(case.args), **_clone(case.kwargs))
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        try:
            got = student_fn(*args, **kwargs)
        except NotImplementedError:
            return CheckResult(exercise, "todo", "not implemented yet.",
                               hint="Fill in the TODO in the exercise cell above, then run it "
                                    "and this cell again.")
        except Exception as error:  # the learner's bug is reported, never propagated
            return CheckResult(exercise, "error",
                               f"your code raised {type(error).__name__}: {error}"
                               f"{_where_it_failed(error)}.", hint=case.hint, case=case.name,
                               inputs=_describe_inputs(case))
        problem = compare(expected, got, atol=atol, rtol=rtol, names=output_names)
        if problem is None:
            problem = compare(case.args, args) or compare(case.kwargs, kwargs)  # originals: only copies were passed
            if problem is not None:
                problem = "your function changed its input in place; work on a copy instead"
        if problem is not None:
            try:
                diagnosis = diagnose(case, expected, got) if diagnose else None
            except Exception:  # a diagnosis is a bonus; never let it break the check
                diagnosis = None
            if diagnosis:
                problem = problem.replace(SHAPE_ADVICE, "")
            return CheckResult(exercise, "fail", f"{problem}.", hint=diagnosis or case.hint,
                               case=case.name, inputs=_describe_inputs(case))
    names = "; ".join(case.name for case in cases)
    count = f"all {len(cases)} cases" if len(cases) > 1 else "the one case"
    return CheckResult(exercise, "pass", f"correct on {count} ({names}).")


VERDICTS = {  # status: (word, plain-text mark, colour of the box's edge, its background)
    "pass": ("PASSED", PASS, "#1a7f37", "#e9f7ee"),
    "todo": ("NOT DONE", TODO, "#9a6700", "#fff8e1"),
    "fail": ("WRONG", FAIL, "#cf222e", "#fdecee"),
    "error": ("WRONG", FAIL, "#cf222e", "#fdecee"),
}
TEXT_WIDTH = 100


class Verdict:
    """A check's result as Jupyter shows it: a coloured box in HTML, plain text elsewhere."""

    def __init__(self, result: CheckResult):
        self.result = result

    def _lines(self) -> list[tuple[str, str]]:
        """(label, text) pairs: what is wrong, what to do, then the details."""
        result = self.result
        where = f" on the case '{result.case}'" if result.case else ""
        lines = [("", f"{result.exercise}{where}: {result.message}")]
        if result.hint:
            lines.append(("Hint", result.hint))
        if result.inputs:
            lines.append(("Input", result.inputs))
        if result.status in ("fail", "error"):
            lines.append(("", f"{USING_REFERENCE} Fix the exercise cell, run it, then this cell."))
        elif result.status == "todo":
            lines.append(("", USING_REFERENCE))
        return lines

    def __str__(self) -> str:
        word, mark, _, _ = VERDICTS[self.result.status]
        text = []
        for number, (label, line) in enumerate(self._lines()):
            first = f"{mark} {word}: " if number == 0 else "   " + (f"{label}: " if label else "")
            text.append(textwrap.fill(line, TEXT_WIDTH, initial_indent=first,
                                      subsequent_indent="   ", break_long_words=False,
                                      break_on_hyphens=False))
        return "\n".join(text)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        word, _, edge, background = VERDICTS[self.result.status]
        rows = []
        for number, (label, line) in enumerate(self._lines()):
            text = html.escape(line)
            if number == 0:
                rows.append(f'<div><span style="background:{edge};color:white;font-weight:bold;'
                            f'padding:1px 8px;border-radius:3px;margin-right:8px">{word}</span>'
                            f'{text}</div>')
            else:
                label = f"<b>{html.escape(label)}:</b> " if label else ""
                rows.append(f'<div style="margin-top:4px">{label}{text}</div>')
        return (f'<div style="border-left:6px solid {edge};background:{background};color:#1f2328;'
                f'padding:8px 12px;margin:4px 0;font-family:sans-serif;font-size:14px;'
                f'line-height:1.45;overflow-wrap:break-word">{"".join(rows)}</div>')


def report(result: CheckResult) -> None:
    """Show a check's verdict: a coloured box in Jupyter, plain text in a terminal or a test."""
    from IPython.display import display  # outside an IPython shell, display() prints the text

    display(Verdict(result))


def check_function(student_fn: Callable, reference_fn: Callable, cases: Sequence[Case], *,
                   exercise: str, atol: float = 1e-5, rtol: float = 1e-4,
                   diagnose: Callable | None = None, output_names: Sequence[str] = ()) -> Callable:
    """Check, print the verdict, and return the function the rest of the notebook should use."""
    result = run_check(student_fn, reference_fn, cases, exercise=exercise, atol=atol, rtol=rtol,
                       diagnose=diagnose, output_names=output_names)
    report(result)
    return student_fn if result.passed else reference_fn


def _match_state(module, expected_state: dict) -> None:
    """Explain, in plain words, how the learner's parameters differ from the expected ones."""
    state = module.state_dict()
    missing = [name for name in expected_state if name not in state]
    extra = [name for name in state if name not in expected_state]
    problems = []
    if missing:
        problems.append(f"it lacks {', '.join(missing)} (check the layer names and that every "
                        f"layer the instructions ask for is created in __init__)")
    if extra:
        problems.append(f"it has {', '.join(extra)}, which the instructions do not ask for"
                        + (" (bias=False?)" if any(name.endswith(".bias") for name in extra) else ""))
    for name, value in expected_state.items():
        if name in state and state[name].shape != value.shape:
            problems.append(f"{name} has shape {tuple(state[name].shape)} instead of "
                            f"{tuple(value.shape)}")
    if problems:
        raise ValueError("your module's parameters do not match: " + "; ".join(problems))


def check_module(student_cls, reference_cls, cases: Sequence[Case], *, exercise: str,
                 atol: float = 1e-5, rtol: float = 1e-4, diagnose: Callable | None = None,
                 prepare: Callable | None = None) -> type:
    """Check an ``nn.Module`` class: each case is ``Case(name, (init_kwargs, input))``; a
    tuple input is passed as several arguments.

    Both classes are built with the same arguments; the reference's weights are loaded into the
    learner's module (so parameter names and shapes must match the instructions), then the
    outputs on the input are compared. ``prepare(reference_module)``, if given, edits the
    freshly built reference before its weights are copied (e.g. random norm weights, so that a
    layer that mixes up its norms cannot pass by luck). ``diagnose`` is as in :func:`run_check`.
    Returns the class the notebook should use next: the learner's when it passes, else
    ``reference_cls`` itself, so that running the check cell again is recognised as the
    reference and never graded as the learner's work.
    """
    def output_of(module_cls):
        def run(init_kwargs, inputs):
            with torch.random.fork_rng():  # do not disturb the notebook's random numbers
                torch.manual_seed(0)
                reference = reference_cls(**init_kwargs)
                if prepare is not None:
                    prepare(reference)
                module = module_cls(**init_kwargs)
            state = reference.state_dict()
            _match_state(module, state)
            module.load_state_dict(state)
            return module(*inputs) if isinstance(inputs, tuple) else module(inputs)
        return run

    if student_cls is reference_cls:
        result = run_check(student_cls, reference_cls, cases, exercise=exercise)
    else:
        result = run_check(output_of(student_cls), output_of(reference_cls), cases,
                           exercise=exercise, atol=atol, rtol=rtol, diagnose=diagnose)
    report(result)
    return student_cls if result.passed else reference_cls
