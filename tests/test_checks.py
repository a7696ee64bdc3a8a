import random

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


# ---- slips: a wrong answer explained by the mistake that reproduces it ----------------------

def halve(x):
    return x / 2


HALVED = checks.Slip("halved", "you halved instead of doubling.", halve)
TRIPLED = checks.Slip("tripled", lambda x: f"you tripled the {x.numel()} values.", lambda x: x * 3)
SQUARED = checks.Slip("squared", "you squared.", lambda x: x ** 2)


def test_the_slip_that_reproduces_the_answer_gives_the_hint():
    case = CASES[1]  # torch.ones(2, 3)
    expected, args = reference(*case.args), case.args
    assert checks.diagnose_slips([HALVED, TRIPLED], case, expected, halve(*args)) == HALVED.hint
    assert checks.diagnose_slips([HALVED, TRIPLED], case, expected, args[0] * 3) == "you tripled the 6 values."
    assert checks.diagnose_slips([HALVED, TRIPLED], case, expected, args[0] * 5) is None
    # On ones, adding 1 gives the reference's answer: it cannot explain a failure there (an
    # answer equal to the reference's failed for another reason, such as an in-place edit).
    plus_one = checks.Slip("plus one", "you added 1.", lambda x: x + 1)
    assert checks.diagnose_slips([plus_one], case, expected, expected) is None


def test_slips_that_agree_on_the_case_are_all_named_unless_a_passed_case_rules_one_out():
    case = checks.Case("two", (torch.tensor([2.0]),))
    four = torch.tensor([4.0])  # x * 2 = x ** 2 = x + 2 at x = 2: here all agree
    doubled = checks.Slip("plus two", "you added 2.", lambda x: x + 2)
    assert checks.diagnose_slips([SQUARED, doubled], case, torch.tensor([3.0]), four) == (
        "one of these: you squared. Or: you added 2.")
    # A learner who got x = 1 right (1 ** 2 = 1) did not add 2 (1 + 2 = 3).
    passed = [(checks.Case("one", (torch.tensor([1.0]),)), torch.tensor([1.0]))]
    assert checks.diagnose_slips([SQUARED, doubled], case, torch.tensor([3.0]), four,
                                 passed=passed) == "you squared."


def test_a_slip_can_explain_one_part_of_the_answer():
    def reference_pair(x):
        return x * 2, x.sum()

    summed_twice = checks.Slip("sum doubled", "you doubled the sum.", lambda x: 2 * x.sum(), part=1)
    case = checks.Case("ones", (torch.ones(3),))
    expected = reference_pair(torch.ones(3))
    got = (torch.full((3,), 2.0), torch.tensor(6.0))
    assert checks.diagnose_slips([summed_twice], case, expected, got) == "you doubled the sum."
    assert checks.diagnose_slips([summed_twice], case, expected, torch.tensor(6.0)) is None


def test_run_check_diagnoses_by_hand_first_then_by_slips_then_with_the_case_hint():
    wrong = checks.run_check(halve, reference, CASES, exercise="E", slips=[HALVED, TRIPLED])
    assert wrong.status == "fail" and wrong.hint == HALVED.hint
    by_hand = checks.run_check(halve, reference, CASES, exercise="E", slips=[HALVED],
                               diagnose=lambda case, expected, got: "by hand")
    assert by_hand.hint == "by hand"
    unknown = checks.run_check(lambda x: x * 7, reference, CASES[1:], exercise="E", slips=[HALVED])
    assert unknown.hint == "mind the batch axis"


def test_an_exception_goes_to_the_diagnosis_and_is_matched_by_a_slip_raising_the_same():
    def wrong_axis(x):
        return x * torch.ones(5)  # raises: neither case has 5 values in its last axis

    raising = checks.Slip("ones of 5", "multiply by 2, not by a vector.", wrong_axis)
    seen = []
    result = checks.run_check(wrong_axis, reference, CASES, exercise="E", slips=[raising],
                              diagnose=lambda case, expected, got: seen.append(got))
    assert result.status == "error" and "RuntimeError" in result.message
    assert result.hint == "multiply by 2, not by a vector."
    assert isinstance(seen[0], RuntimeError)  # diagnose saw the exception itself


def test_module_slips_run_on_the_reference_with_the_learners_weights(capsys):
    class Scale(torch.nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(dim))

        def forward(self, x):
            return x * self.weight

    squared_weight = checks.Slip("weight squared", "use the weight once.",
                                 lambda module, x: x * module.weight ** 2)

    class Mine(Scale):
        def forward(self, x):
            return x * self.weight * self.weight

    cases = [checks.Case("dim 3", ({"dim": 3}, torch.ones(2, 3)))]
    assert checks.check_module(Mine, Scale, cases, exercise="E", slips=[squared_weight]) is Scale
    assert "use the weight once." in capsys.readouterr().out


# ---- random functions: each case seeded alike for the learner and the reference -------------

def random_crop(image, size):
    """A random size x size crop of a (C, H, W) image: the top row first, then the left column."""
    top = int(torch.randint(0, image.shape[1] - size + 1, ()))
    left = int(torch.randint(0, image.shape[2] - size + 1, ()))
    return image[:, top:top + size, left:left + size]


def crop_left_first(image, size):
    left = int(torch.randint(0, image.shape[2] - size + 1, ()))
    top = int(torch.randint(0, image.shape[1] - size + 1, ()))
    return image[:, top:top + size, left:left + size]


def crop_with_its_own_generator(image, size):
    generator = torch.Generator()
    generator.seed()  # from the clock: not the generator the check seeds
    top = int(torch.randint(0, image.shape[1] - size + 1, (), generator=generator))
    left = int(torch.randint(0, image.shape[2] - size + 1, (), generator=generator))
    return image[:, top:top + size, left:left + size]


def crop_drawn_with_numpy(image, size):
    top, left = np.random.randint(0, image.shape[1] - size + 1, size=2)
    return image[:, top:top + size, left:left + size]


IMAGE = torch.arange(3 * 16 * 16, dtype=torch.float32).reshape(3, 16, 16)
CROP_CASES = [checks.Case(f"seed {seed}", (IMAGE, 5), seed=seed) for seed in (0, 1, 2)]


def random_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_states(first, second):
    return (torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1])
            and first[2] == second[2])


def test_a_seeded_random_function_passes_and_leaves_the_notebooks_random_numbers_alone():
    torch.manual_seed(123), np.random.seed(123), random.seed(123)
    before = random_states()
    result = checks.run_check(lambda image, size: random_crop(image, size), random_crop,
                              CROP_CASES, exercise="E")
    assert result.passed
    assert same_states(before, random_states())


@pytest.mark.parametrize("attempt, hint", [
    (crop_left_first, checks.RANDOM_CASE_HINT),
    (crop_drawn_with_numpy, checks.RANDOM_CASE_HINT),
    (crop_with_its_own_generator, checks.UNSEEDED_HINT),
], ids=["another order", "numpy", "own generator"])
def test_random_numbers_drawn_otherwise_fail_with_a_clear_hint(attempt, hint):
    before = random_states()
    result = checks.run_check(attempt, random_crop, CROP_CASES, exercise="E")
    assert result.status == "fail" and result.hint == hint
    assert same_states(before, random_states())


def test_seeded_runs_repeat_and_restore_every_generator():
    before = random_states()
    with checks.seeded(7):
        first = (torch.rand(2), np.random.rand(2), random.random())
    with checks.seeded(7):
        again = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert first[2] == again[2]
    assert same_states(before, random_states())
    with checks.seeded(None):  # no seed: the block draws from the caller's streams
        torch.rand(1)
    assert not same_states(before, random_states())


# ---- gradients by autograd --------------------------------------------------------------------

def test_gradient_of_differentiates_a_copy_of_one_input():
    x, weights = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([2.0, 0.5, 1.0])
    gradient = checks.gradient_of(lambda x, w: (w * x ** 2).sum(), x, weights)
    assert torch.equal(gradient, 2 * weights * x)
    assert x.grad is None and not x.requires_grad
    # A result that does not depend on x (only on another tensor autograd follows) has gradient 0.
    assert torch.equal(checks.gradient_of(lambda x, w: (w ** 2).sum(), x,
                                          weights.clone().requires_grad_()), torch.zeros(3))
    with pytest.raises(ValueError, match="autograd cannot differentiate"):
        checks.gradient_of(lambda x: torch.tensor(x.detach().sum().item()), x)
