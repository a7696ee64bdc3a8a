"""Lesson 01 exercises: softmax, log-softmax, negative log-likelihood, cross-entropy, its gradient.

Each ``check_*`` function runs the learner's function next to the reference on several cases
(ordinary input, large logits, a batch of one, ...) and returns the function the notebook
should go on with (see :mod:`course_utils.checks`).
"""

import torch

from course_utils.checks import Case, check_function, report, run_check


def _logits(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


# ---- reference solutions ---------------------------------------------------------------------

def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, shifted by the row maximum so exp never overflows."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    exponentials = shifted.exp()
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log(softmax(z)) computed as z - logsumexp(z), stable for large and very negative logits."""
    maximum = logits.max(dim=-1, keepdim=True).values
    log_sum_exp = maximum + (logits - maximum).exp().sum(dim=-1, keepdim=True).log()
    return logits - log_sum_exp


def nll_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -log p(true class): (N, K) log-probabilities, (N,) class indices."""
    picked = log_probs[torch.arange(len(targets)), targets]
    return -picked.mean()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy between one-hot targets and softmax(logits), from raw logits."""
    return nll_loss(log_softmax(logits), targets)


def cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy w.r.t. the logits: (softmax - one_hot) / N."""
    one_hot = torch.zeros_like(logits)
    one_hot[torch.arange(len(targets)), targets] = 1.0
    return (softmax(logits) - one_hot) / len(targets)


# ---- cases -----------------------------------------------------------------------------------

LARGE_LOGITS_HINT = ("exp(1000) overflows to inf in float32 and inf/inf is NaN. Subtract each "
                     "row's maximum before exponentiating: softmax(z) = softmax(z - max(z)).")
AXIS_HINT = ("work along the last axis (dim=-1, so that 1-D and 2-D inputs both work) and keep "
             "it (keepdim=True) so that row maxima and sums broadcast against the logits.")
MAX_HINT = ("use dim=-1 (the last axis) so that a single vector works too; "
            "logits.max(dim=-1, keepdim=True) returns a pair (values, indices): take .values, "
            "or use logits.amax(dim=-1, keepdim=True).")


def _probability_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(1)
    return [
        Case("three logits", (_logits(2.0, 1.0, 0.1),), hint=MAX_HINT),
        Case("a batch of 4 rows", (torch.randn(4, 5, generator=generator) * 3,), hint=AXIS_HINT),
        Case("a batch of one", (_logits([0.5, -1.0, 3.0]),), hint=AXIS_HINT),
        Case("large logits", (_logits([1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]),),
             hint=LARGE_LOGITS_HINT),
        Case("very negative logits", (_logits([-1000.0, -1001.0, -1002.0]),),
             hint="exp(-1000) underflows to 0 and 0/0 is NaN: shift by the maximum first."),
        Case("equal logits", (torch.zeros(2, 4),)),
    ]


PICK_HINT = ("pick log_probs[i, targets[i]] for each row i, e.g. log_probs[torch.arange(N), "
             "targets]; log_probs[:, targets] picks an N x N block instead.")
MEAN_HINT = "the loss is a mean over the batch; with one sample it is that sample's loss."


def _loss_inputs() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, logits (N, K), targets (N,)) for the loss exercises."""
    generator = torch.Generator().manual_seed(2)
    return [
        ("a batch of 6", torch.randn(6, 4, generator=generator) * 2, torch.tensor([0, 3, 1, 1, 2, 0])),
        ("a batch of one", _logits([0.2, 2.0, -1.0]), torch.tensor([1])),
        ("targets in every column", torch.randn(5, 5, generator=generator), torch.arange(5)),
        ("large logits", _logits([1000.0, 0.0, -1000.0], [3.0, 900.0, 2.0]), torch.tensor([1, 1])),
    ]


def diagnose_loss(case: Case, expected, got) -> str | None:
    """Recognise the usual slips in a mean loss: a float, a flipped sign, a sum instead of a mean."""
    if not isinstance(got, torch.Tensor):
        return ("return a 0-dimensional tensor built from torch operations (no .item() or "
                "float()), so that autograd can follow it.")
    if got.shape != expected.shape or got.dtype != expected.dtype:
        return None
    size = len(case.args[1])
    if torch.allclose(got, -expected, rtol=1e-4):
        return "the sign is flipped: the loss is MINUS the mean log-probability of the targets."
    if size > 1 and torch.allclose(got, expected * size, rtol=1e-4):
        return f"this is the sum over the {size} samples; the loss is their mean."
    return None


def _loss_cases() -> list[Case]:
    hints = {"a batch of one": MEAN_HINT,
             "large logits": "use the stable log-softmax (exercise 3), never log(softmax(z)) "
                             "with a naive softmax: exp(1000) overflows."}
    combine = ("cross_entropy(logits, targets) = nll_loss(log_softmax(logits), targets): "
               "nll_loss expects log-probabilities, so apply log_softmax once, not softmax.")
    return [Case(name, (logits, targets), hint=hints.get(name, combine))
            for name, logits, targets in _loss_inputs()]


# ---- checks ----------------------------------------------------------------------------------

def check_softmax(student_softmax):
    return check_function(student_softmax, softmax, _probability_cases(), exercise="Exercise 1 (softmax)")


def check_log_softmax(student_log_softmax):
    stable_hint = ("compute z - logsumexp(z), with logsumexp(z) = m + log(sum(exp(z - m))) and "
                   "m = max(z) over the last axis; log(softmax(z)) overflows or underflows.")
    cases = [Case(case.name, case.args, hint=stable_hint if "logits" in case.name else case.hint)
             for case in _probability_cases()]
    cases.append(Case("logits far apart", (_logits([0.0, -200.0, -400.0]),),
                      hint="exp(-200) underflows to 0 in float32, so log(softmax(z)) gives -inf; "
                           + stable_hint))
    return check_function(student_log_softmax, log_softmax, cases,
                          exercise="Exercise 3 (log-softmax)")


def check_nll_loss(student_nll_loss):
    hints = {"a batch of one": MEAN_HINT}
    cases = [Case(name, (log_softmax(logits), targets), hint=hints.get(name, PICK_HINT))
             for name, logits, targets in _loss_inputs()]
    return check_function(student_nll_loss, nll_loss, cases, diagnose=diagnose_loss,
                          exercise="Exercise 2 (negative log-likelihood)")


def _gradient_of(loss_fn):
    """d loss / d logits, as a function of (logits, targets)."""
    def gradient(logits, targets):
        logits = logits.clone().requires_grad_(True)
        return torch.autograd.grad(loss_fn(logits, targets), logits)[0]
    return gradient


def check_cross_entropy(student_cross_entropy):
    exercise = "Exercise 4 (cross-entropy)"
    cases = _loss_cases()
    result = run_check(student_cross_entropy, cross_entropy, cases, exercise=exercise,
                       diagnose=diagnose_loss)
    if result.passed:
        # The training loop back-propagates through this loss: the gradients must flow too.
        gradient_case = Case("gradients for a batch of 6", cases[0].args,
                             hint="build the loss from torch operations only (no .item(), NumPy "
                                  "or Python floats) so that autograd can differentiate it.")
        gradient_result = run_check(_gradient_of(student_cross_entropy),
                                    _gradient_of(cross_entropy), [gradient_case], exercise=exercise)
        if gradient_result.passed:
            result.message += " Its gradients match too."
        else:
            result = gradient_result
    report(result)
    return student_cross_entropy if result.passed else cross_entropy


def check_cross_entropy_grad(student_cross_entropy_grad):
    hint = ("d loss / d logits = (softmax(logits) - one_hot(targets)) / N, with N the batch "
            "size because the loss is a mean over the batch; build one_hot with zeros_like and "
            "index assignment, or F.one_hot(targets, K).float().")
    stable = "compute the probabilities with your stable softmax (exercise 1): exp(1000) overflows."
    cases = [Case(name, (logits, targets), hint=stable if name == "large logits" else hint)
             for name, logits, targets in _loss_inputs()]
    return check_function(student_cross_entropy_grad, cross_entropy_grad, cases,
                          exercise="Exercise 5 (gradient of the cross-entropy)")
