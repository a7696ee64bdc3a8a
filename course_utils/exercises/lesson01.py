"""Lesson 01 exercises: softmax, log-softmax, negative log-likelihood, cross-entropy, its gradient.

Each ``check_*`` function runs the learner's function next to the reference on several cases
(ordinary input, large logits, a batch of one, ...) and returns the function the notebook
should go on with (see :mod:`course_utils.checks`).

A wrong answer is diagnosed by the usual slips of each exercise (softmax without the max shift,
over the wrong axis, ...): the first whose output on the failing case is the learner's answer
names the mistake; when none does, the case's own hint is shown.
"""

import torch
import torch.nn.functional as F

from course_utils.checks import Case, Slip, check_function, compare, gradient_of, report, run_check


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
    picked = log_probs[torch.arange(len(targets), device=targets.device), targets]
    return -picked.mean()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy between one-hot targets and softmax(logits), from raw logits."""
    return nll_loss(log_softmax(logits), targets)


def cross_entropy_grad(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Gradient of the mean cross-entropy w.r.t. the logits: (softmax - one_hot) / N."""
    one_hot = F.one_hot(targets, logits.shape[-1]).to(logits.dtype)
    return (softmax(logits) - one_hot) / len(targets)


# ---- the usual slips -------------------------------------------------------------------------

def _softmax_shifted_by(z, maximum):
    exponentials = (z - maximum).exp()
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


def _naive_softmax(z):
    return _softmax_shifted_by(z, 0.0)


def _exponentials(z):
    """exp(z - m) with m each row's maximum: the numerators of the stable softmax."""
    return (z - z.max(dim=-1, keepdim=True).values).exp()


def _one_hot(targets, like):
    return F.one_hot(targets, like.shape[-1]).to(like.dtype)


def _sized(hint: str):
    """A hint quoting the failing case's batch size {n} and number of classes {k}."""
    return lambda first, targets: hint.format(n=first.shape[0], k=first.shape[-1])


_PER_ROW = "over the last axis (dim=-1), keeping it (keepdim=True)"

_MAX_WITHOUT_KEEPDIM = ("without keepdim=True the row maxima have shape (N,) and are subtracted "
                        "from the columns: use logits.max(dim=-1, keepdim=True).values, shape (N, 1).")

SOFTMAX_SLIPS = [
    Slip("log-probabilities",
         "these are log-probabilities (all <= 0): softmax returns the probabilities themselves, "
         "exp(z - m) / sum(exp(z - m)).", log_softmax),
    Slip("no max shift",
         "exp overflowed: exp(1000) is inf in float32 (and exp(-1000) is 0), so the division "
         "gave NaN. Subtract each row's maximum before exp; softmax(z - m) = softmax(z).",
         _naive_softmax),
    Slip("one maximum for the batch",
         "you subtracted the largest logit of the whole batch: a row far below it underflows to "
         "0/0 = NaN. Subtract each row's own maximum, " + _PER_ROW + ".",
         lambda z: _softmax_shifted_by(z, z.max())),
    Slip("max without keepdim", _MAX_WITHOUT_KEEPDIM,
         lambda z: _softmax_shifted_by(z, z.max(dim=-1).values)),
    Slip("sum without keepdim",
         "without keepdim=True the row sums have shape (N,) and divide the columns, not the "
         "rows: sum(dim=-1, keepdim=True) keeps the shape (N, 1).",
         lambda z: _exponentials(z) / _exponentials(z).sum(dim=-1)),
    Slip("normalised over the whole batch",
         "all the entries of the batch sum to 1 together; each row must sum to 1 on its own: "
         "sum " + _PER_ROW + ".", lambda z: softmax(z.flatten()).reshape(z.shape)),
    Slip("normalised over the first axis",
         "each column sums to 1, not each row: normalise over the last axis (dim=-1), which "
         "works for a single vector and for a batch.", lambda z: torch.softmax(z, dim=0)),
    Slip("sigmoid",
         "this is the sigmoid of each logit on its own; softmax divides each exponential by the "
         "sum of its row's exponentials, so that each row sums to 1.", torch.sigmoid),
]

_LOG_SUM_EXP = "logsumexp(z) = m + log(sum(exp(z - m))), with m each row's maximum"


def _log_softmax_shifted_by(z, maximum):
    return z - (maximum + (z - maximum).exp().sum(dim=-1, keepdim=True).log())


LOG_SOFTMAX_SLIPS = [
    Slip("probabilities",
         "these are probabilities; return their logarithm, computed as z - logsumexp(z).", softmax),
    Slip("log of the softmax",
         "this is the log of your softmax: a probability like exp(-200) underflows to 0 and "
         "log(0) = -inf. Stay in log space: z - logsumexp(z), " + _LOG_SUM_EXP + ".",
         lambda z: softmax(z).log()),
    Slip("log of a naive softmax",
         "this is log(softmax(z)) with an unshifted softmax: exp(1000) overflows and gives NaN. "
         "Return z - logsumexp(z), " + _LOG_SUM_EXP + ".", lambda z: _naive_softmax(z).log()),
    Slip("log-sum-exp without the shift",
         "log(sum(exp(z))) overflows for large logits: shift first, " + _LOG_SUM_EXP + ".",
         lambda z: z - z.exp().sum(dim=-1, keepdim=True).log()),
    Slip("m not added back",
         "you subtracted m inside the exponential but did not add it back outside: "
         + _LOG_SUM_EXP + ".", lambda z: z - _exponentials(z).sum(dim=-1, keepdim=True).log()),
    Slip("one maximum for the batch",
         "you subtracted the largest logit of the whole batch: a row far below it underflows to "
         "log(0) = -inf. Use each row's own maximum, " + _PER_ROW + ".",
         lambda z: _log_softmax_shifted_by(z, z.max())),
    Slip("max without keepdim", _MAX_WITHOUT_KEEPDIM,
         lambda z: _log_softmax_shifted_by(z, z.max(dim=-1).values)),
    Slip("sum without keepdim",
         "without keepdim=True the log-sum-exp of each row has shape (N,) and is subtracted from "
         "the columns: sum(dim=-1, keepdim=True) keeps the shape (N, 1).",
         lambda z: z - torch.logsumexp(z, dim=-1)),
    Slip("normalised over the whole batch",
         "you normalised over every entry of the batch together; each row on its own: reduce "
         + _PER_ROW + ".", lambda z: log_softmax(z.flatten()).reshape(z.shape)),
    Slip("normalised over the first axis",
         "you normalised each column, not each row: reduce over the last axis (dim=-1), which "
         "works for a single vector and for a batch.", lambda z: torch.log_softmax(z, dim=0)),
]


def _picked(log_probs, targets):
    return log_probs[torch.arange(len(targets), device=targets.device), targets]


NLL_SLIPS = [
    Slip("sign flipped",
         "the sign is flipped: the loss is MINUS the mean log-probability of the targets, so it "
         "is >= 0.", lambda log_probs, targets: -nll_loss(log_probs, targets)),
    Slip("sum", _sized("this is the sum over the {n} samples; the loss is their mean."),
         lambda log_probs, targets: nll_loss(log_probs, targets) * len(targets)),
    Slip("one loss per sample",
         "you returned one loss per sample; the loss is their mean, a single number (.mean()).",
         lambda log_probs, targets: -_picked(log_probs, targets)),
    Slip("an N x N block",
         "log_probs[:, targets] picks an N x N block (every row at every target); pick one entry "
         "per row: log_probs[torch.arange(N), targets].",
         lambda log_probs, targets: -log_probs[:, targets].mean()),
    Slip("every entry",
         "you averaged every entry of log_probs; average only each row's target entry, "
         "log_probs[torch.arange(N), targets].", lambda log_probs, targets: -log_probs.mean()),
    Slip("mean over N x K entries",
         _sized("the mean ran over all N x K entries of one_hot * log_probs, which makes the loss "
                "{k} times too small: sum over the classes, then average over the {n} samples."),
         lambda log_probs, targets: -(_one_hot(targets, log_probs) * log_probs).mean()),
    Slip("predicted class",
         "you used each row's largest log-probability, i.e. the predicted class; the loss uses "
         "the target class: log_probs[torch.arange(N), targets].",
         lambda log_probs, targets: -log_probs.max(dim=-1).values.mean()),
    Slip("log taken twice",
         "log_probs already holds logarithms (all <= 0), and the log of a negative number is "
         "NaN: take minus their mean directly, with no further log.",
         lambda log_probs, targets: -_picked(log_probs, targets).log().mean()),
]


def _from_logits(nll_slip: Slip) -> Slip:
    """The slip made in nll_loss, inside cross_entropy(logits, targets)."""
    fn = nll_slip.fn
    return Slip(nll_slip.name, nll_slip.hint,
                lambda logits, targets: fn(log_softmax(logits), targets))


CROSS_ENTROPY_SLIPS = [_from_logits(slip) for slip in NLL_SLIPS
                       if slip.name != "log taken twice"] + [
    Slip("log of a naive softmax",
         "log(softmax(z)) with an unshifted softmax overflows (exp(1000) = inf): use your "
         "log_softmax, nll_loss(log_softmax(logits), targets).",
         lambda logits, targets: nll_loss(_naive_softmax(logits).log(), targets)),
    Slip("log of the softmax",
         "log(softmax(z)) fails here: a target with probability exp(-1000) underflows to 0 and "
         "log(0) = -inf. Use your log_softmax: nll_loss(log_softmax(logits), targets).",
         lambda logits, targets: nll_loss(softmax(logits).log(), targets)),
    Slip("probabilities into nll_loss",
         "nll_loss expects log-probabilities and you gave it probabilities (softmax): use "
         "log_softmax instead.", lambda logits, targets: nll_loss(softmax(logits), targets)),
    Slip("raw logits into nll_loss",
         "you passed the raw logits to nll_loss; it expects log-probabilities: "
         "nll_loss(log_softmax(logits), targets).",
         lambda logits, targets: nll_loss(logits, targets)),
]


def _gradient_with(probabilities, one_hot, divisor):
    return (probabilities - one_hot) / divisor


GRADIENT_SLIPS = [
    Slip("no division by N",
         _sized("this is the gradient of the summed loss; the loss is a mean over the {n} "
                "samples, so divide by N: (softmax(logits) - one_hot) / N."),
         lambda logits, targets: softmax(logits) - _one_hot(targets, logits)),
    Slip("divided by K",
         _sized("you divided by the number of classes K = {k}; divide by the batch size N = {n}."),
         lambda logits, targets: _gradient_with(softmax(logits), _one_hot(targets, logits),
                                                logits.shape[-1])),
    Slip("sign flipped",
         "the sign is flipped: the gradient is probabilities minus labels, "
         "(softmax(logits) - one_hot) / N.",
         lambda logits, targets: -cross_entropy_grad(logits, targets)),
    Slip("no one-hot",
         "you left out the labels: subtract the one-hot of the targets from the probabilities.",
         lambda logits, targets: softmax(logits) / len(targets)),
    Slip("one-hot of the predicted class",
         "the one-hot must mark each row's target class, not its predicted class (argmax).",
         lambda logits, targets: cross_entropy_grad(logits, logits.argmax(dim=-1))),
    Slip("log-probabilities", "use the probabilities softmax(logits), not the log-probabilities.",
         lambda logits, targets: _gradient_with(log_softmax(logits), _one_hot(targets, logits),
                                                len(targets))),
    Slip("naive softmax",
         "the probabilities overflowed (exp(1000) = inf): compute them with your stable softmax "
         "from exercise 1.",
         lambda logits, targets: _gradient_with(_naive_softmax(logits), _one_hot(targets, logits),
                                                len(targets))),
    Slip("one-hot without num_classes",  # raises where the batch lacks the last class
         "F.one_hot(targets) guesses the number of classes from the largest target, too few when "
         "no sample is of the last class: pass num_classes=logits.shape[-1].",
         lambda logits, targets: (softmax(logits) - F.one_hot(targets)) / len(targets)),
]

IN_PLACE_ADVICE = ("an in-place operation (`x -= ...`, `x.sub_(...)`, `x[...] = ...`) changed the "
                   "caller's tensor: build a new one instead, e.g. `shifted = logits - m`.")

_NOT_A_TENSOR = ("return a 0-dimensional tensor built from torch operations (no .item() or "
                 "float()), so that autograd can follow it.")


def _diagnose_in_place(case, expected, got):
    """A right answer that failed all the same changed its input in place."""
    if not isinstance(got, Exception) and compare(expected, got) is None:
        return IN_PLACE_ADVICE
    return None


def _diagnose_loss(case, expected, got):
    """As :func:`_diagnose_in_place`, after checking the loss is a tensor autograd can follow."""
    if not isinstance(got, (torch.Tensor, Exception)):
        return _NOT_A_TENSOR
    return _diagnose_in_place(case, expected, got)


# ---- cases -----------------------------------------------------------------------------------

SOFTMAX_RECIPE = ("softmax(z) = exp(z - m) / sum(exp(z - m)) over the last axis, with "
                  "m = logits.max(dim=-1, keepdim=True).values.")
BATCH_HINT = ("this case is a batch: reduce over the last axis (dim=-1) and keep it "
              "(keepdim=True), so that the row maxima and sums broadcast against the logits.")


def _probability_cases(recipe: str) -> list[Case]:
    generator = torch.Generator().manual_seed(1)
    return [
        Case("three logits", (_logits(2.0, 1.0, 0.1),), hint=recipe),
        Case("a batch of 3 rows of 3", (torch.randn(3, 3, generator=generator) * 3,),
             hint=BATCH_HINT),
        Case("a batch of 4 rows", (torch.randn(4, 5, generator=generator) * 3,), hint=BATCH_HINT),
        Case("a batch of one", (_logits([0.5, -1.0, 3.0]),), hint=BATCH_HINT),
        Case("large logits", (_logits([1000.0, 1001.0, 1002.0], [-5.0, 0.0, 5.0]),),
             hint="exp(1000) overflows to inf in float32: subtract each row's maximum before "
                  "exponentiating. " + recipe),
        Case("very negative logits", (_logits([-1000.0, -1001.0, -1002.0]),),
             hint="exp(-1000) underflows to 0: subtract each row's maximum first. " + recipe),
        Case("equal logits", (torch.zeros(2, 4),), hint=recipe),
    ]


def _loss_inputs() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, logits (N, K), targets (N,)) for the loss exercises."""
    generator = torch.Generator().manual_seed(2)
    return [
        ("a batch of 6", torch.randn(6, 4, generator=generator) * 2, torch.tensor([0, 3, 1, 1, 2, 0])),
        ("a batch of one", _logits([0.2, 2.0, -1.0]), torch.tensor([1])),
        ("targets in every column", torch.randn(5, 5, generator=generator), torch.arange(5)),
        ("large logits", _logits([1000.0, 0.0, -1000.0], [3.0, 900.0, 2.0]), torch.tensor([1, 1])),
    ]


ONE_SAMPLE_HINT = ("a batch of one is still a batch: the answer is a 0-dimensional tensor, "
                   "minus the log-probability of its one target.")


# ---- checks ----------------------------------------------------------------------------------

def check_softmax(student_softmax):
    return check_function(student_softmax, softmax, _probability_cases(SOFTMAX_RECIPE),
                          diagnose=_diagnose_in_place, slips=SOFTMAX_SLIPS,
                          exercise="Exercise 1 (softmax)")


def check_log_softmax(student_log_softmax):
    recipe = "log_softmax(z) = z - logsumexp(z), with " + _LOG_SUM_EXP + "."
    cases = _probability_cases(recipe)
    cases.append(Case("logits far apart", (_logits([0.0, -200.0, -400.0]),),
                      hint="exp(-200) underflows to 0 in float32, so log(softmax(z)) gives -inf. "
                           + recipe))
    return check_function(student_log_softmax, log_softmax, cases, diagnose=_diagnose_in_place,
                          slips=LOG_SOFTMAX_SLIPS, exercise="Exercise 3 (log-softmax)")


def check_nll_loss(student_nll_loss):
    recipe = ("pick log_probs[i, targets[i]] for every row i at once, "
              "log_probs[torch.arange(N), targets], and return minus their mean.")
    cases = [Case(name, (log_softmax(logits), targets),
                  hint=ONE_SAMPLE_HINT if name == "a batch of one" else recipe)
             for name, logits, targets in _loss_inputs()]
    return check_function(student_nll_loss, nll_loss, cases, diagnose=_diagnose_loss,
                          slips=NLL_SLIPS, exercise="Exercise 2 (negative log-likelihood)")


def check_cross_entropy(student_cross_entropy):
    exercise = "Exercise 4 (cross-entropy)"
    recipe = "cross_entropy(logits, targets) = nll_loss(log_softmax(logits), targets)."
    hints = {"a batch of one": ONE_SAMPLE_HINT,
             "large logits": "logits 1000 apart need the stable log_softmax of exercise 3. "
                             + recipe}
    cases = [Case(name, (logits, targets), hint=hints.get(name, recipe))
             for name, logits, targets in _loss_inputs()]
    result = run_check(student_cross_entropy, cross_entropy, cases, exercise=exercise,
                       diagnose=_diagnose_loss, slips=CROSS_ENTROPY_SLIPS)
    if result.passed:
        # The training loop back-propagates through this loss: the gradients must flow too.
        gradient_case = Case("gradients for a batch of 6", cases[0].args,
                             hint="build the loss from torch operations only (no .item(), NumPy "
                                  "or Python floats) so that autograd can differentiate it.")
        gradient_result = run_check(lambda *args: gradient_of(student_cross_entropy, *args),
                                    lambda *args: gradient_of(cross_entropy, *args),
                                    [gradient_case], exercise=exercise)
        if gradient_result.passed:
            result.message += " Its gradients match too."
        else:
            result = gradient_result
    report(result)
    return student_cross_entropy if result.passed else cross_entropy


def check_cross_entropy_grad(student_cross_entropy_grad):
    recipe = ("d loss / d logits = (softmax(logits) - one_hot(targets)) / N, with N the batch "
              "size because the loss is a mean over the batch.")
    hints = {"a batch of one": "with one sample the gradient still has shape (1, K); if you build "
                               "the one-hot with F.one_hot, give it num_classes=K (otherwise it "
                               "guesses K from the largest target). " + recipe,
             "large logits": "compute the probabilities with your stable softmax (exercise 1): "
                             "exp(1000) overflows."}
    cases = [Case(name, (logits, targets), hint=hints.get(name, recipe))
             for name, logits, targets in _loss_inputs()]
    return check_function(student_cross_entropy_grad, cross_entropy_grad, cases,
                          diagnose=_diagnose_in_place, slips=GRADIENT_SLIPS,
                          exercise="Exercise 5 (gradient of the cross-entropy)")
