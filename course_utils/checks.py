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

A wrong answer (or an exception) is explained, when possible, by the exercise's slips: each
:class:`Slip` is the reference with one common mistake, run on the failing case; a slip whose
output is the learner's names the mistake (:func:`diagnose_slips`). A case of a random function
carries a seed, so that the learner's function and the reference draw the same numbers.

The verdict is shown as a coloured box (PASSED, NOT DONE or WRONG) in Jupyter, with the same
text as plain output for terminals and test runs.
"""

import html
import inspect
import textwrap
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from course_utils.comparison import SHAPE_ADVICE, compare, describe_value
from course_utils.config import seeded

__all__ = ["Case", "CheckResult", "Slip", "check_function", "check_module", "compare",
           "describe_value", "diagnose_slips", "gradient_of", "report", "run_check", "seeded"]

PASS = "\N{WHITE HEAVY CHECK MARK}"
FAIL = "\N{CROSS MARK}"
TODO = "\N{HOURGLASS}"
USING_REFERENCE = "The rest of the notebook uses the reference version."
UNSEEDED_HINT = ("run twice with the same seed, your function gave two different answers: draw "
                 "your random numbers from torch's global generator (torch.rand, torch.randint, "
                 "torch.randperm, ...), which the check seeds, not from a generator of your own.")
RANDOM_CASE_HINT = ("this case is random: the check seeds your function and the reference alike, "
                    "so yours must draw the same random numbers, in the same order, as the "
                    "instructions say.")


@dataclass
class Case:
    """One input on which the learner's function must agree with the reference.

    ``hint`` is shown when this case fails and no slip explains why: say what the case is
    testing and what usually goes wrong. ``seed``, for a function that draws random numbers:
    the reference and the learner's function each run with Python, NumPy and PyTorch seeded with
    it (see :func:`seeded`), so that both draw the same numbers.
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class Slip:
    """A common mistake in an exercise, recognised by running it.

    ``fn`` is the reference with that one mistake, called like the reference (for a module
    exercise, ``fn(module, *inputs)`` with the reference module whose weights the learner's got).
    ``hint`` says what to do about it: text, or a function of the case's inputs that returns it
    (to quote their sizes). ``part`` is the index or key of the one item of a tuple or dict
    answer that the slip explains; ``fn`` then returns that item only.
    """

    name: str
    hint: str | Callable[..., str]
    fn: Callable
    part: int | str | None = None

    def hint_on(self, case: Case) -> str:
        """The hint for the inputs of ``case``."""
        return self.hint(*case.args, **case.kwargs) if callable(self.hint) else self.hint


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


def gradient_of(function: Callable, x: torch.Tensor, *other_inputs) -> torch.Tensor:
    """d function(x, *other_inputs) / dx by autograd, where ``function`` returns a scalar tensor.

    The gradient is taken on a copy of ``x``, so the caller's tensor is left as it was.
    """
    x = x.detach().clone().requires_grad_(True)
    output = function(x, *other_inputs)
    if not isinstance(output, torch.Tensor) or output.grad_fn is None:
        raise ValueError("the result is not built from its input by torch operations (it has "
                         "no grad_fn), so autograd cannot differentiate it")
    gradient, = torch.autograd.grad(output, x, allow_unused=True)
    return torch.zeros_like(x) if gradient is None else gradient


def _output(fn: Callable, case: Case):
    """``fn`` run on copies of the case's inputs, seeded as the case says; or what it raised."""
    try:
        with seeded(case.seed):
            return fn(*_clone(case.args), **_clone(case.kwargs))
    except Exception as error:
        return error


def _same(answer, got, *, atol: float, rtol: float) -> bool:
    """Whether ``got`` is ``answer``: the same value, or an exception of the same type and text."""
    if isinstance(answer, Exception) or isinstance(got, Exception):
        return type(answer) is type(got) and str(answer) == str(got)
    return compare(answer, got, atol=atol, rtol=rtol) is None


def _part(answer, part):
    return answer if part is None else answer[part]


def diagnose_slips(slips: Sequence[Slip], case: Case, expected, got, *,
                   passed: Sequence[tuple[Case, object]] = (), atol: float = 1e-5,
                   rtol: float = 1e-4) -> str | None:
    """The hint of the slip that explains the learner's answer ``got`` on ``case``, else ``None``.

    A slip explains it when its output on the case is ``got`` (for a slip that raises: an
    exception of the same type and text) but not ``expected``, and when it gives the expected
    answer on each ``(case, expected)`` of ``passed``, the cases the learner got right before.
    When several slips explain it, the answer cannot tell them apart: all their hints are given
    (of slips that explain different parts, those of the part listed first).
    """
    found = []  # (part, hint)
    for slip in slips:
        try:  # an exception is the whole answer, whatever part the slip explains
            answer = got if isinstance(got, Exception) else _part(got, slip.part)
            reference = _part(expected, slip.part)
        except (TypeError, KeyError, IndexError):  # the answer lacks the part this slip explains
            continue
        slipped = _output(slip.fn, case)
        if not _same(slipped, answer, atol=atol, rtol=rtol) or _same(reference, slipped, atol=atol,
                                                                     rtol=rtol):
            continue
        if all(_same(_part(right, slip.part), _output(slip.fn, earlier), atol=atol, rtol=rtol)
               for earlier, right in passed):
            found.append((slip.part, slip.hint_on(case)))
    hints = list(dict.fromkeys(hint for part, hint in found if part == found[0][0]))
    if len(hints) > 1:
        return "one of these: " + " Or: ".join(hints)
    return hints[0] if hints else None


def _argument_names(fn: Callable, count: int) -> list[str | None]:
    """The names of ``fn``'s first ``count`` positional parameters (None where unknown)."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin or a class without a readable signature
        parameters = []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names = [parameter.name for parameter in parameters if parameter.kind in positional]
    return (names + [None] * count)[:count]


def _describe_inputs(case: Case, reference_fn: Callable | None = None) -> str:
    """The case's arguments, each named after the reference's parameter it goes to."""
    names = _argument_names(reference_fn, len(case.args)) if reference_fn else [None] * len(case.args)
    parts = [f"{name}={describe_value(arg)}" if name else describe_value(arg)
             for name, arg in zip(names, case.args)]
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
              diagnose: Callable | None = None, slips: Sequence[Slip] = (),
              output_names: Sequence[str] = ()) -> CheckResult:
    """Compare ``student_fn`` with ``reference_fn`` on every case and return what was found.

    A wrong answer, or an exception, is explained by ``diagnose(case, expected, got)`` when it
    returns a hint (``got`` is the learner's answer or the exception their code raised), else by
    the slip that reproduces it (:func:`diagnose_slips`), else by the case's own hint.
    ``output_names`` names the parts of a tuple answer in the feedback.
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

    def diagnosis(case, expected, got, passed):
        try:
            hint = diagnose(case, expected, got) if diagnose else None
        except Exception:  # a diagnosis is a bonus; never let it break the check
            hint = None
        return hint or diagnose_slips(slips, case, expected, got, passed=passed, atol=atol,
                                      rtol=rtol)

    passed = []
    for case in cases:
        with seeded(case.seed):
            expected = reference_fn(*_clone(case.args), **_clone(case.kwargs))
        args, kwargs = _clone(case.args), _clone(case.kwargs)
        try:
            with seeded(case.seed):
                got = student_fn(*args, **kwargs)
        except NotImplementedError:
            return CheckResult(exercise, "todo", "not implemented yet.",
                               hint="Fill in the TODO in the exercise cell above, then run it "
                                    "and this cell again.")
        except Exception as error:  # the learner's bug is reported, never propagated
            return CheckResult(exercise, "error",
                               f"your code raised {type(error).__name__}: {error}"
                               f"{_where_it_failed(error)}.",
                               hint=diagnosis(case, expected, error, passed) or case.hint,
                               case=case.name, inputs=_describe_inputs(case, reference_fn))
        problem = compare(expected, got, atol=atol, rtol=rtol, names=output_names)
        if problem is None:
            problem = compare(case.args, args) or compare(case.kwargs, kwargs)  # originals: only copies were passed
            if problem is not None:
                problem = "your function changed its input in place; work on a copy instead"
        if problem is None:
            passed.append((case, expected))
            continue
        hint = diagnosis(case, expected, got, passed)
        if hint:
            problem = problem.replace(SHAPE_ADVICE, "")
        elif case.seed is not None:
            follows_the_seed = _same(_output(student_fn, case), got, atol=atol, rtol=rtol)
            hint = (case.hint or RANDOM_CASE_HINT) if follows_the_seed else UNSEEDED_HINT
        return CheckResult(exercise, "fail", f"{problem}.", hint=hint or case.hint,
                           case=case.name, inputs=_describe_inputs(case, reference_fn))
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
                   diagnose: Callable | None = None, slips: Sequence[Slip] = (),
                   output_names: Sequence[str] = ()) -> Callable:
    """Check, print the verdict, and return the function the rest of the notebook should use."""
    result = run_check(student_fn, reference_fn, cases, exercise=exercise, atol=atol, rtol=rtol,
                       diagnose=diagnose, slips=slips, output_names=output_names)
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
                 slips: Sequence[Slip] = (), prepare: Callable | None = None) -> type:
    """Check an ``nn.Module`` class: each case is ``Case(name, (init_kwargs, input))``; a
    tuple input is passed as several arguments.

    Both classes are built with the same arguments; the reference's weights are loaded into the
    learner's module (so parameter names and shapes must match the instructions), then the
    outputs on the input are compared. ``prepare(reference_module)``, if given, edits the
    freshly built reference before its weights are copied (e.g. random norm weights, so that a
    layer that mixes up its norms cannot pass by luck). ``diagnose`` is as in :func:`run_check`;
    each slip's ``fn(module, *inputs)`` runs on the reference module with those same weights.
    Returns the class the notebook should use next: the learner's when it passes, else
    ``reference_cls`` itself, so that running the check cell again is recognised as the
    reference and never graded as the learner's work.
    """
    def built(init_kwargs, module_cls=None):
        """The prepared reference, and ``module_cls`` built with the same arguments."""
        with torch.random.fork_rng():  # do not disturb the notebook's random numbers
            torch.manual_seed(0)
            reference = reference_cls(**init_kwargs)
            if prepare is not None:
                prepare(reference)
            return reference, None if module_cls is None else module_cls(**init_kwargs)

    def output_of(module_cls):
        def run(init_kwargs, inputs):
            reference, module = built(init_kwargs, module_cls)
            state = reference.state_dict()
            _match_state(module, state)
            module.load_state_dict(state)
            return module(*inputs) if isinstance(inputs, tuple) else module(inputs)
        return run

    def on_reference(slip):
        def run(init_kwargs, inputs):
            reference, _ = built(init_kwargs)
            return slip.fn(reference, *(inputs if isinstance(inputs, tuple) else (inputs,)))
        return replace(slip, fn=run)

    if student_cls is reference_cls:
        result = run_check(student_cls, reference_cls, cases, exercise=exercise)
    else:
        result = run_check(output_of(student_cls), output_of(reference_cls), cases,
                           exercise=exercise, atol=atol, rtol=rtol, diagnose=diagnose,
                           slips=[on_reference(slip) for slip in slips])
    report(result)
    return student_cls if result.passed else reference_cls


# ---- answers that are not what was asked, found by a check ----------------------------------

class WrongResult(Exception):
    """Raised by a check (not by the learner's code) when an answer is not what the exercise
    asks for; ``hint`` says what to change. Pass :func:`diagnose_wrong_result` as the check's
    ``diagnose`` and tell the result with :func:`told_as_check`."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


def diagnose_wrong_result(case, expected, got):
    """The hint of a WrongResult the check raised, else None (for ``diagnose=``)."""
    return got.hint if isinstance(got, WrongResult) else None


def told_as_check(result: "CheckResult", what: str) -> "CheckResult":
    """The result, with a WrongResult raised by the check told as the check's finding, ``what:
    ...``, rather than as an exception of the learner's code."""
    raised = f"your code raised {WrongResult.__name__}: "
    if result.message.startswith(raised):
        return replace(result, message=f"{what}: " + result.message.removeprefix(raised))
    return result


def first_names(names: list[str], shown: int = 3) -> str:
    """The first few names, and how many more there are: "a, b, c and 4 more"."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_outcome(student_fn: Callable, reference_fn: Callable, outcome: Callable,
                  cases: Sequence[Case], *, exercise: str, what: str,
                  diagnose: Callable = diagnose_wrong_result, slips: Sequence[Slip] = (),
                  passed: str = "") -> Callable:
    """Check an exercise whose answer is judged by what it does rather than by its value:
    ``outcome(fn)`` wraps a function so that it returns what is compared (and raises a
    WrongResult for a property that is wrong, told as ``what: ...``). The slips are wrapped
    the same way; ``passed`` is added to a pass's message. Reports, and returns the learner's
    function if it passed, the reference otherwise (an unfinished exercise is NOT DONE)."""
    if student_fn is reference_fn or not callable(student_fn):
        result = run_check(student_fn, reference_fn, cases, exercise=exercise)
    else:
        wrapped = [replace(slip, fn=outcome(slip.fn)) for slip in slips]
        result = run_check(outcome(student_fn), outcome(reference_fn), cases, exercise=exercise,
                           diagnose=diagnose, slips=wrapped)
        result = told_as_check(result, what)
        if result.passed:
            result.message += passed
    report(result)
    return student_fn if result.passed else reference_fn
