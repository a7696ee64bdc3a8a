import numpy as np
import pytest
import torch

from course_utils import checks


def reference(x):
    return x * 2


CASES = [checks.Case("small", (torch.tensor([1.0, 2.0]),)),
         checks.Case("batch", (torch.ones(2, 3),), hint="mind the batch axis")]


def test_compare_names_the_difference():
    assert checks.compare(torch.ones(2), torch.ones(2)) is None
    assert "shape (2,)" in checks.compare(torch.ones(2), torch.ones(3))
    assert "dtype" in checks.compare(torch.ones(2), torch.ones(2, dtype=torch.float64))
    assert "NaN" in checks.compare(torch.ones(2), torch.tensor([1.0, float("nan")]))
    assert "-inf" in checks.compare(torch.ones(2), torch.tensor([1.0, -float("inf")]))
    assert "largest difference" in checks.compare(torch.ones(2), torch.tensor([1.0, 1.5]))
    assert "torch.Tensor" in checks.compare(torch.ones(2), [1.0, 1.0])
    assert checks.compare(1.0, torch.tensor(1.0)) is None
    assert "expected 1" in checks.compare(1.0, 2.0)
    assert checks.compare(np.ones(3), np.ones(3)) is None
    assert "item 1" in checks.compare((1, 2.0), (1, 3.0))
    assert "index (1,)" in checks.compare(torch.tensor([1, 2]), torch.tensor([1, 3]))


def test_statuses():
    def todo(x):
        raise NotImplementedError

    def crash(x):
        return x.no_such_method()

    assert checks.run_check(todo, reference, CASES, exercise="E").status == "todo"
    error = checks.run_check(crash, reference, CASES, exercise="E")
    assert error.status == "error" and "AttributeError" in error.message and error.case == "small"
    wrong = checks.run_check(lambda x: x.sum() * 2, reference, CASES, exercise="E")
    assert wrong.status == "fail" and "shape" in wrong.message
    assert checks.run_check(lambda x: x * 2, reference, CASES, exercise="E").passed
    assert checks.run_check(reference, reference, CASES, exercise="E").status == "todo"
    assert checks.run_check(None, reference, CASES, exercise="E").status == "error"


def test_in_place_modification_is_caught():
    def doubles_in_place(x):
        return x.mul_(2)

    result = checks.run_check(doubles_in_place, reference, CASES, exercise="E")
    assert result.status == "fail" and "in place" in result.message


def test_check_function_returns_what_to_use(capsys):
    def todo(x):
        raise NotImplementedError

    assert checks.check_function(todo, reference, CASES, exercise="E") is reference
    assert "reference version" in capsys.readouterr().out
    mine = lambda x: x + x  # noqa: E731
    assert checks.check_function(mine, reference, CASES, exercise="E") is mine
    assert "correct on all 2 cases" in capsys.readouterr().out


# ---- lesson 01: each exercise left undone, filled wrongly, filled rightly ---------------------

def test_integers_must_match_exactly_and_odd_types_do_not_crash():
    assert "72,855,552" in checks.compare(72_855_552, 72_855_000)
    assert checks.compare(5, np.int64(5)) is None
    assert "integer" in checks.compare(5, 5.0)
    assert checks.compare(None, np.ones(3)) is not None


def test_a_failing_diagnosis_never_breaks_the_check(capsys):
    result = checks.run_check(lambda x: (x * 2).double(), reference, CASES, exercise="E",
                              diagnose=lambda case, expected, got: 1 / 0)
    assert result.status == "fail" and "dtype" in result.message


def test_keyword_tensors_are_compared_and_in_place_edits_caught():
    cases = [checks.Case("keyword input", (), {"x": torch.ones(3)})]
    assert checks.run_check(lambda x: x * 2, lambda x: x * 2, cases, exercise="E").passed
    result = checks.run_check(lambda x: x.mul_(2), lambda x: x * 2, cases, exercise="E")
    assert result.status == "fail" and "in place" in result.message
    assert "'x'" in checks.compare({"x": torch.ones(2)}, {"x": torch.zeros(2)})


def test_verdict_box_says_the_verdict_in_words_and_colour():
    wrong = checks.run_check(lambda x: x * 3, reference, CASES, exercise="Exercise 9 (double)")
    box = checks.Verdict(wrong)._repr_html_()
    assert "WRONG" in box and "#cf222e" in box and "Exercise 9 (double)" in box
    assert "&#x27;small&#x27;" in box  # the learner's text is escaped, not read as HTML
    text = str(checks.Verdict(wrong))
    first, second = text.splitlines()[:2]
    assert first.startswith("\N{CROSS MARK} WRONG: Exercise 9 (double) on the case 'small'")
    assert "largest difference" in first
    assert "PASSED" in checks.Verdict(checks.run_check(reference, lambda x: x * 2, CASES,
                                                       exercise="E"))._repr_html_()
    def undone(x):
        raise NotImplementedError

    todo = checks.run_check(undone, reference, CASES, exercise="E")
    assert str(checks.Verdict(todo)).startswith("\N{HOURGLASS} NOT DONE: E: not implemented yet.")


def test_plain_verdicts_wrap_between_words_within_the_width(monkeypatch):
    monkeypatch.setattr(checks, "TEXT_WIDTH", 100)
    hint = "a long hint " * 30
    result = checks.CheckResult("Exercise 1 (softmax)", "fail", "values differ.", hint=hint.strip(),
                                case="batch", inputs="tensor of shape (2, 3)")
    lines = str(checks.Verdict(result)).splitlines()
    assert len(lines) > 4 and all(len(line) <= 100 for line in lines)
    assert all(not line.endswith(("lo", "hi")) for line in lines)  # never cut inside a word


def test_an_integer_answer_given_as_a_float_is_named():
    problem = checks.compare(56, 56.0)
    assert "float 56.0" in problem and "//" in problem
    assert checks.compare(56, np.float64(56.0)).startswith("expected the integer 56 but got the float")
    assert checks.compare(56, 56) is None and "57" in checks.compare(56, 57)


def test_module_check_prepares_the_reference_without_a_subclass(capsys):
    class Scale(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(dim))

        def forward(self, x):
            return x * self.weight

    class IgnoresWeight(Scale):
        def forward(self, x):
            return x

    def randomise(module):
        with torch.no_grad():
            module.weight.normal_()

    cases = [checks.Case("dim 3", ({"dim": 3}, torch.ones(2, 3)))]
    # With weights of 1 a module that ignores them would pass; prepared weights catch it.
    assert checks.check_module(IgnoresWeight, Scale, cases, exercise="E") is IgnoresWeight
    assert checks.check_module(IgnoresWeight, Scale, cases, exercise="E", prepare=randomise) is Scale
    # The reference that a failed check returned is never graded as the learner's on a re-run.
    capsys.readouterr()
    assert checks.check_module(Scale, Scale, cases, exercise="E", prepare=randomise) is Scale
    assert "NOT DONE" in capsys.readouterr().out
