"""Lesson 07, part 1's generative exercises: MAE's masked loss and a VAE's KL term."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from course_utils.exercises import lesson07

from exercise_attempts import (assert_each_slip_named_alone,  # tests/exercise_attempts.py
                               assert_undone_wrong_and_right)

PASSED = "\N{WHITE HEAVY CHECK MARK}"


def masked_mse_by_selecting(prediction, target, mask):
    chosen = mask.bool()
    return (prediction[chosen] - target[chosen]).square().mean()


def kl_from_torch_distributions(mean, log_variance):
    posterior = Normal(mean, (0.5 * log_variance).exp())
    prior = Normal(torch.zeros_like(mean), torch.ones_like(mean))
    return kl_divergence(posterior, prior).sum(dim=1).mean()


def kl_with_the_standard_deviation(mean, log_variance):
    std = torch.exp(log_variance / 2)
    return (-0.5 * (1 + 2 * std.log() - mean ** 2 - std ** 2)).sum(1).mean()


CASES = [
    (lesson07.check_masked_mse, lesson07.masked_mse, lesson07.MASKED_MSE_SLIPS[0].fn,
     "the visible ones too"),
    (lesson07.check_gaussian_kl, lesson07.gaussian_kl, lesson07.KL_SLIPS[0].fn,
     "as if it were the variance"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[0].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


@pytest.mark.parametrize("check, slips", [(lesson07.check_masked_mse, lesson07.MASKED_MSE_SLIPS),
                                          (lesson07.check_gaussian_kl, lesson07.KL_SLIPS)])
def test_each_slip_is_named_alone(check, slips, capsys):
    assert_each_slip_named_alone(check, slips, capsys)


@pytest.mark.parametrize("check, answer", [
    (lesson07.check_masked_mse, masked_mse_by_selecting),
    (lesson07.check_gaussian_kl, kl_from_torch_distributions),
    (lesson07.check_gaussian_kl, kl_with_the_standard_deviation)])
def test_right_answers_written_otherwise_pass_twice(check, answer, capsys):
    for _ in range(2):
        assert check(answer) is answer
        assert PASSED in capsys.readouterr().out


def test_the_reference_kl_matches_torch():
    mean, log_variance = torch.randn(5, 3), torch.randn(5, 3)
    assert torch.allclose(lesson07.gaussian_kl(mean, log_variance),
                          kl_from_torch_distributions(mean, log_variance), atol=1e-5)
