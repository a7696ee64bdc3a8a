import numpy as np
import pytest
import torch

from course_utils import checks
from course_utils.exercises import lesson01


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
    assert error.status == "error" and "AttributeError" in error.message and "small" in error.message
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

def _not_done(*args):
    raise NotImplementedError


def naive_softmax(z):
    return z.exp() / z.exp().sum(dim=-1, keepdim=True)


def wrong_nll(log_probs, targets):
    return -log_probs[:, targets].mean()


def wrong_log_softmax(z):
    return torch.log(naive_softmax(z))


def item_cross_entropy(logits, targets):
    return torch.tensor(lesson01.cross_entropy(logits, targets).item())


def grad_without_mean(logits, targets):
    return lesson01.softmax(logits) - torch.nn.functional.one_hot(targets, logits.shape[-1])


EXERCISES = [
    (lesson01.check_softmax, lesson01.softmax, naive_softmax, "NaN"),
    (lesson01.check_nll_loss, lesson01.nll_loss, wrong_nll, "torch.arange(N)"),
    (lesson01.check_log_softmax, lesson01.log_softmax, wrong_log_softmax, "logsumexp"),
    (lesson01.check_cross_entropy, lesson01.cross_entropy, item_cross_entropy, "autograd"),
    (lesson01.check_cross_entropy_grad, lesson01.cross_entropy_grad, grad_without_mean, "/ N"),
]


@pytest.mark.parametrize("check, right, wrong, expected_hint", EXERCISES,
                         ids=[e[1].__name__ for e in EXERCISES])
def test_lesson01_exercise_feedback(check, right, wrong, expected_hint, capsys):
    assert check(_not_done) is right
    assert "not implemented yet" in capsys.readouterr().out
    assert check(wrong) is right
    out = capsys.readouterr().out
    assert "\N{CROSS MARK}" in out and expected_hint in out
    mine = lambda *args: right(*args)  # noqa: E731  a correct implementation of one's own
    assert check(mine) is mine
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def test_lesson01_references_match_torch():
    logits = torch.randn(7, 5) * 10
    targets = torch.randint(0, 5, (7,))
    assert torch.allclose(lesson01.softmax(logits), torch.softmax(logits, -1), atol=1e-6)
    assert torch.allclose(lesson01.log_softmax(logits), torch.log_softmax(logits, -1), atol=1e-5)
    assert torch.allclose(lesson01.cross_entropy(logits, targets),
                          torch.nn.functional.cross_entropy(logits, targets), atol=1e-5)
    logits.requires_grad_(True)
    grad, = torch.autograd.grad(torch.nn.functional.cross_entropy(logits, targets), logits)
    assert torch.allclose(lesson01.cross_entropy_grad(logits.detach(), targets), grad, atol=1e-6)


def test_rerunning_a_check_on_the_reference_is_not_a_pass(capsys):
    assert lesson01.check_softmax(lesson01.softmax) is lesson01.softmax
    out = capsys.readouterr().out
    assert "\N{WHITE HEAVY CHECK MARK}" not in out and "your own code was not checked" in out


@pytest.mark.parametrize("attempt, hint", [
    (lambda lp, t: lesson01.nll_loss(lp, t).item(), "no .item()"),
    (lambda lp, t: -lesson01.nll_loss(lp, t), "sign is flipped"),
    (lambda lp, t: lesson01.nll_loss(lp, t) * len(t), "sum over the 6 samples"),
])
def test_common_loss_mistakes_get_their_own_hint(attempt, hint, capsys):
    lesson01.check_nll_loss(attempt)
    assert hint in capsys.readouterr().out


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
