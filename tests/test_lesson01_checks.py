import re

import pytest
import torch

from course_utils.checks import Case, gradient_of
from course_utils.exercises import lesson01

from exercise_attempts import assert_undone_wrong_and_right  # tests/exercise_attempts.py


def _squeezed(text):
    """The text without any whitespace: the verdict may wrap long hints at any space or hyphen."""
    return re.sub(r"\s+", "", text)


def naive_softmax(logits):
    return logits.exp() / logits.exp().sum(dim=-1, keepdim=True)


def nll_picking_a_block(log_probs, targets):
    return -log_probs[:, targets].mean()


def log_of_naive_softmax(logits):
    return naive_softmax(logits).log()


def cross_entropy_from_probabilities(logits, targets):
    return lesson01.nll_loss(lesson01.softmax(logits), targets)


def gradient_of_the_sum(logits, targets):
    return lesson01.softmax(logits) - torch.nn.functional.one_hot(targets, logits.shape[-1])


CASES = [
    (lesson01.check_softmax, lesson01.softmax, naive_softmax, "overflowed"),
    (lesson01.check_nll_loss, lesson01.nll_loss, nll_picking_a_block, "N x N block"),
    (lesson01.check_log_softmax, lesson01.log_softmax, log_of_naive_softmax, "unshifted softmax"),
    (lesson01.check_cross_entropy, lesson01.cross_entropy, cross_entropy_from_probabilities,
     "gave it probabilities"),
    (lesson01.check_cross_entropy_grad, lesson01.cross_entropy_grad, gradient_of_the_sum,
     "summed loss"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


SLIP_TABLES = [
    (lesson01.check_softmax, lesson01.softmax, lesson01.SOFTMAX_SLIPS),
    (lesson01.check_log_softmax, lesson01.log_softmax, lesson01.LOG_SOFTMAX_SLIPS),
    (lesson01.check_nll_loss, lesson01.nll_loss, lesson01.NLL_SLIPS),
    (lesson01.check_cross_entropy, lesson01.cross_entropy, lesson01.CROSS_ENTROPY_SLIPS),
    (lesson01.check_cross_entropy_grad, lesson01.cross_entropy_grad, lesson01.GRADIENT_SLIPS),
]
SLIPS = [(check, reference, slip) for check, reference, table in SLIP_TABLES for slip in table]
# The loss slips with sizes in their hints all fail first on the batch of 6 with 4 classes.
BATCH_OF_6 = Case("a batch of 6", (torch.zeros(6, 4), torch.zeros(6, dtype=torch.long)))


@pytest.mark.parametrize("check, reference, slip", SLIPS,
                         ids=[f"{s[1].__name__}: {s[2].name}" for s in SLIPS])
def test_each_slip_is_named(check, reference, slip, capsys):
    """The learner's function is the slip's own variant: the check names that slip, no other."""
    assert check(slip.fn) is reference
    out = _squeezed(capsys.readouterr().out)
    hint = slip.hint_on(BATCH_OF_6)
    assert _squeezed(hint) in out
    others = {other.hint_on(BATCH_OF_6) for _, _, table in SLIP_TABLES for other in table} - {hint}
    assert not any(_squeezed(other) in out for other in others)


def test_an_error_reproduced_by_a_slip_is_named(capsys):
    def gradient_with_a_guessed_one_hot(logits, targets):
        one_hot = torch.nn.functional.one_hot(targets)  # too narrow for the batch of one
        return (lesson01.softmax(logits) - one_hot) / len(targets)

    assert lesson01.check_cross_entropy_grad(gradient_with_a_guessed_one_hot) is lesson01.cross_entropy_grad
    out = capsys.readouterr().out
    assert "raised RuntimeError" in out and "case 'a batch of one'" in out
    assert "pass num_classes=logits.shape[-1]" in out


def test_log_probabilities_from_softmax_are_named_not_blamed_on_max(capsys):
    lesson01.check_softmax(lesson01.log_softmax)
    out = capsys.readouterr().out
    assert "log-probabilities" in out and ".max(" not in out and ".values" not in out


def test_a_softmax_that_shifts_its_input_in_place_is_told_so(capsys):
    def softmax_in_place(logits):
        logits -= logits.max(dim=-1, keepdim=True).values
        return logits.exp() / logits.exp().sum(dim=-1, keepdim=True)

    assert lesson01.check_softmax(softmax_in_place) is lesson01.softmax
    assert _squeezed(lesson01.IN_PLACE_ADVICE) in _squeezed(capsys.readouterr().out)


@pytest.mark.parametrize("check, reference", [
    (lesson01.check_nll_loss, lesson01.nll_loss),
    (lesson01.check_cross_entropy, lesson01.cross_entropy),
])
def test_a_loss_returned_as_a_float_is_told_to_stay_a_tensor(check, reference, capsys):
    assert check(lambda first, targets: reference(first, targets).item()) is reference
    assert "no .item()" in capsys.readouterr().out


def test_a_loss_without_gradients_is_told_about_autograd(capsys):
    def detached(logits, targets):
        return torch.tensor(lesson01.cross_entropy(logits, targets).item())

    assert lesson01.check_cross_entropy(detached) is lesson01.cross_entropy
    assert "autograd" in capsys.readouterr().out


def test_an_unknown_mistake_gets_the_cases_recipe_and_no_slip(capsys):
    assert lesson01.check_softmax(lambda logits: torch.ones_like(logits) / 2) is lesson01.softmax
    out = _squeezed(capsys.readouterr().out)
    assert _squeezed(lesson01.SOFTMAX_RECIPE) in out
    assert not any(_squeezed(slip.hint) in out for slip in lesson01.SOFTMAX_SLIPS)


def test_references_match_torch():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 5, generator=generator) * 10
    targets = torch.randint(0, 5, (7,), generator=generator)
    assert torch.allclose(lesson01.softmax(logits), torch.softmax(logits, -1), atol=1e-6)
    assert torch.allclose(lesson01.log_softmax(logits), torch.log_softmax(logits, -1), atol=1e-5)
    assert torch.allclose(lesson01.cross_entropy(logits, targets),
                          torch.nn.functional.cross_entropy(logits, targets), atol=1e-5)
    grad = gradient_of(torch.nn.functional.cross_entropy, logits, targets)
    assert torch.allclose(lesson01.cross_entropy_grad(logits, targets), grad, atol=1e-6)
