"""Lesson 07, exercise 2 of part 2: DINO's teacher, a moving average of the student's weights.

The reference is the package's own (course_utils.self_supervised.ema_update). A wrong answer is
diagnosed by the exercise's slips (see course_utils.checks.Slip) or by what the update leaves of
the teacher and of the student: the teacher updated in place, the student untouched, no autograd
history.
"""

import copy
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from course_utils import self_supervised
from course_utils.checks import (Case, Slip, WrongResult, check_outcome, diagnose_wrong_result,
                                 first_names)

ema_update = self_supervised.ema_update


# ---- exercise 2 of part 2: the teacher, a moving average of the student ---------------------

@dataclass(frozen=True)
class _TinyNetwork:
    """A small network of a case, rebuilt with the same weights at every call: a linear layer
    then a BatchNorm whose weights and running statistics are random too (not 1 and 0), so that
    every parameter and buffer differs between two networks. ``frozen``: requires_grad False on
    every parameter, as DINO's teacher."""

    seed: int
    frozen: bool = False

    def build(self) -> nn.Module:
        torch.manual_seed(self.seed)  # the caller forks the random numbers
        network = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        norm = network[1]
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
            norm.running_mean.uniform_(-1.0, 1.0)
            norm.running_var.uniform_(0.5, 2.0)
            norm.num_batches_tracked.fill_(10 + self.seed)
        network.requires_grad_(not self.frozen)
        return network

    def __repr__(self) -> str:
        frozen = ", frozen (requires_grad False)" if self.frozen else ""
        return f"Linear(4, 3) + BatchNorm1d(3), seed {self.seed}{frozen}"


def _state(network: nn.Module) -> dict:
    return {name: value.detach().clone() for name, value in network.state_dict().items()}


STUDENT_CHANGED = ("the update moves the teacher towards the student and leaves the student as "
                   "it is (only the optimiser trains it): check which model you write into, "
                   "teacher's parameter = momentum * teacher's + (1 - momentum) * student's.")
NEW_MODEL = ("the training loop keeps using the teacher it gave you, which then never moves: "
             "update that teacher's parameters in place (parameter.mul_(momentum).add_(...), or "
             "parameter.copy_(...)) under torch.no_grad(), and return nothing.")
NO_GRAD = ("do the update under torch.no_grad() (a `with torch.no_grad():` block around the "
           "loop): the average is a plain change of numbers, not something to differentiate. "
           "Without it, an in-place change of a parameter that requires grad is refused, and one "
           "of a frozen parameter records autograd history that drags the student's graph along.")
REQUIRES_GRAD = ("leave requires_grad of the teacher's parameters as it was: the update changes "
                 "their values, not whether they train.")


def _ema_outcome(update):
    """The teacher's state after ``update`` (called like ema_update) on a case's two networks,
    once checked to be the teacher given, updated in place, with no autograd history and the
    student left as it was."""
    def run(teacher: _TinyNetwork, student: _TinyNetwork, momentum: float):
        with torch.random.fork_rng():  # the notebook's random numbers go on as they were
            teacher_network, student_network = teacher.build(), student.build()
            teacher_before, student_before = _state(teacher_network), _state(student_network)
            trains = {name: p.requires_grad for name, p in teacher_network.named_parameters()}
            answer = update(teacher_network, student_network, momentum)
        student_changed = [name for name, value in student_network.state_dict().items()
                           if not torch.equal(value, student_before[name])]
        if student_changed:
            raise WrongResult(f"the student changed: {first_names(student_changed)}", STUDENT_CHANGED)
        teacher_after = _state(teacher_network)
        unchanged = all(torch.equal(value, teacher_before[name])
                        for name, value in teacher_after.items())
        if isinstance(answer, nn.Module) and answer is not teacher_network and unchanged:
            raise WrongResult("it returned another model and left the teacher it was given "
                              "unchanged", NEW_MODEL)
        with_history = [f"{name} ({type(p.grad_fn).__name__})"
                        for name, p in teacher_network.named_parameters() if p.grad_fn is not None]
        if with_history:
            raise WrongResult(f"the teacher's parameters now carry autograd history, grad_fn: "
                              f"{first_names(with_history)}", NO_GRAD)
        flipped = [name for name, p in teacher_network.named_parameters()
                   if p.requires_grad != trains[name]]
        if flipped:
            raise WrongResult(f"requires_grad of the teacher's {first_names(flipped)} changed",
                              REQUIRES_GRAD)
        return teacher_after
    return run


def _ema_cases():
    return [Case("momentum 0.996, a frozen teacher (as in DINO)",
                 (_TinyNetwork(0, frozen=True), _TinyNetwork(1), 0.996),
                 hint="each parameter of the teacher becomes 0.996 * its value + 0.004 * the "
                      "student's, so the teacher barely moves; each buffer (BatchNorm's "
                      "running_mean, running_var, num_batches_tracked) becomes the student's."),
            Case("momentum 0.5, a teacher that requires grad",
                 (_TinyNetwork(2), _TinyNetwork(3), 0.5),
                 hint="momentum 0.5: each teacher parameter becomes the mean of its value and "
                      "the student's; change it in place under torch.no_grad()."),
            Case("momentum 1: the teacher's parameters stay as they are",
                 (_TinyNetwork(4, frozen=True), _TinyNetwork(5), 1.0),
                 hint="momentum 1 keeps every parameter of the teacher; its buffers are still "
                      "copied from the student.")]


EMA_PASSED = (" The teacher averages the student over many steps, so its targets change slowly; "
              "DINO found it better than the student throughout training.")


def check_ema_update(student):
    """Exercise 2 of part 2: ``ema_update(teacher, student, momentum)`` updates the teacher in
    place, under torch.no_grad(): every parameter becomes ``momentum * teacher's + (1 - momentum) *
    student's``, every buffer (BatchNorm's statistics) the student's; the student is left as
    it was, and requires_grad of the teacher's parameters too. What it returns is not used.
    Returns the function the notebook should use next."""
    return check_outcome(student, ema_update, _ema_outcome, _ema_cases(),
                         exercise="Exercise 2 of part 2 (EMA teacher)",
                         what="the teacher is not updated as asked", diagnose=_diagnose_ema,
                         slips=EMA_SLIPS, passed=EMA_PASSED)


def _diagnose_ema(case, expected, got):
    """A WrongResult found by the check, or PyTorch refusing to change a parameter that
    requires grad in place outside torch.no_grad()."""
    if isinstance(got, RuntimeError) and "leaf Variable that requires grad" in str(got):
        return NO_GRAD
    return diagnose_wrong_result(case, expected, got)


def _ema_variant(teacher, student, momentum, *, weights="moving average", target="teacher",
                 buffers="copied", no_grad=True):
    """ema_update with one thing changed (the defaults give the reference)."""
    if target == "new model":
        teacher = copy.deepcopy(teacher)
    elif target == "student":  # the roles mixed up: the student moves towards the teacher
        teacher, student = student, teacher
    student_parameters = dict(student.named_parameters())
    student_buffers = dict(student.named_buffers())
    with torch.set_grad_enabled(not no_grad):
        for name, parameter in teacher.named_parameters():
            other = student_parameters[name]
            if weights == "moving average":
                parameter.mul_(momentum).add_(other, alpha=1 - momentum)
            elif weights == "momentum on the student":
                parameter.mul_(1 - momentum).add_(other, alpha=momentum)
            else:  # the student copied
                parameter.copy_(other)
        for name, buffer in teacher.named_buffers():
            if buffers == "copied":
                buffer.copy_(student_buffers[name])
            elif buffers == "averaged" and buffer.is_floating_point():
                buffer.mul_(momentum).add_(student_buffers[name], alpha=1 - momentum)
            elif buffers == "averaged":  # num_batches_tracked, an integer, is copied
                buffer.copy_(student_buffers[name])
    return teacher if target == "new model" else None


EMA_SLIPS = [
    Slip("momentum on the student",
         "your teacher is almost the student: momentum weighs the teacher's own value, teacher "
         "= momentum * teacher + (1 - momentum) * student, so that at 0.996 the teacher moves "
         "only 0.4% of the way towards the student at each step.",
         partial(_ema_variant, weights="momentum on the student")),
    Slip("student copied",
         "you copied the student into the teacher: the teacher is a moving average, teacher = "
         "momentum * teacher + (1 - momentum) * student, which keeps most of its own value "
         "(a copy is momentum 0, and a teacher that is the student gives no steadier targets).",
         partial(_ema_variant, weights="student copied")),
    Slip("a new model", NEW_MODEL, partial(_ema_variant, target="new model")),
    Slip("student updated", STUDENT_CHANGED, partial(_ema_variant, target="student")),
    Slip("no torch.no_grad()", NO_GRAD, partial(_ema_variant, no_grad=False)),
    Slip("buffers forgotten",
         "the parameters are right, but the buffers (BatchNorm's running_mean, running_var and "
         "num_batches_tracked) are still the teacher's old ones: copy them from the student, "
         "for name, buffer in teacher.named_buffers(). A mild slip, as they are statistics rather "
         "than learned weights, but they then no longer follow the student at all.",
         partial(_ema_variant, buffers="kept")),
    Slip("buffers averaged",
         "you averaged the buffers as well (BatchNorm's running statistics): the instructions "
         "copy them from the student, buffer.copy_(student's buffer), and average the "
         "parameters only.", partial(_ema_variant, buffers="averaged")),
]


# ---- exercise 4 of part 2: the teacher's center ---------------------------------------------

update_center = self_supervised.update_center


def _center_cases():
    generator = torch.Generator().manual_seed(3)
    return [Case("a center of 5 dimensions, a batch of 4 teacher outputs, momentum 0.9",
                 (torch.randn(1, 5, generator=generator), torch.randn(4, 5, generator=generator)),
                 {"momentum": 0.9},
                 hint="new = momentum * center + (1 - momentum) * teacher_logits.mean(dim=0): the "
                      "mean over the batch, one number per dimension."),
            Case("momentum 0.5, a batch of 3 outputs of 6 dimensions",
                 (torch.randn(1, 6, generator=generator), torch.randn(3, 6, generator=generator)),
                 {"momentum": 0.5},
                 hint="with momentum 0.5, the new center is halfway between the old one and the "
                      "batch's mean output."),
            Case("a batch of one output, momentum 0.99",
                 (torch.zeros(1, 4), torch.tensor([[1.0, 2.0, 3.0, 4.0]])), {"momentum": 0.99},
                 hint="from a zero center, one step of momentum 0.99 moves it 1% of the way: "
                      "0.01, 0.02, 0.03, 0.04.")]


def _center_variant(center, teacher_logits, momentum=0.9, *, weight="center", axis=0,
                    reduce="mean"):
    """update_center with one thing changed (the defaults give the reference)."""
    if axis == "per image":  # each image's mean over its dimensions, (B, 1), broadcast
        batch = teacher_logits.mean(dim=1, keepdim=True)
    else:
        batch = teacher_logits.mean(dim=axis) if reduce == "mean" else teacher_logits.sum(dim=axis)
    if axis == 1:
        batch = batch.mean()  # one number for the batch, spread over the dimensions
    if weight == "center":
        return momentum * center + (1 - momentum) * batch
    if weight == "batch":
        return (1 - momentum) * center + momentum * batch
    return batch + 0 * center


CENTER_SLIPS = [
    Slip("momentum on the batch",
         "your center jumps to the latest batch: momentum weighs the old center, new = momentum "
         "* center + (1 - momentum) * batch mean, so that at 0.9 each batch moves it a tenth of "
         "the way.", partial(_center_variant, weight="batch")),
    Slip("no running mean",
         "your center is the latest batch's mean alone: DINO keeps a running mean over batches, "
         "new = momentum * center + (1 - momentum) * batch mean, so that the center is steady "
         "and one batch does not decide it.", partial(_center_variant, weight="none")),
    Slip("mean over the dimensions",
         "you averaged each output over its dimensions (dim=1), or everything at once: the center "
         "has one value per output dimension, the mean over the batch, teacher_logits.mean(dim=0).",
         partial(_center_variant, axis=1)),
    Slip("a mean per image",
         "you took each image's mean over its dimensions, teacher_logits.mean(dim=1, keepdim="
         "True), shape (B, 1), so the center became one row per image (B, K) by broadcasting. "
         "keepdim was right, the axis not: the center averages over the batch, one value per "
         "dimension, teacher_logits.mean(dim=0, keepdim=True), shape (1, K).",
         partial(_center_variant, axis="per image")),
    Slip("sum over the batch",
         "you summed the teacher's outputs over the batch: take their mean, .mean(dim=0), so that "
         "the center does not grow with the batch size.", partial(_center_variant, reduce="sum")),
]

CENTER_PASSED = (" Subtracting this running mean from the teacher's outputs keeps any one dimension "
                 "from winning for every image: centering fights the first collapse.")


def check_update_center(student):
    """Exercise 4 of part 2: ``update_center(center, teacher_logits, momentum=0.9)`` -> the new
    center (1, K): ``momentum * center + (1 - momentum) * teacher_logits.mean(dim=0)``."""
    from course_utils.checks import report, run_check

    result = run_check(student, update_center, _center_cases(),
                       exercise="Exercise 4 of part 2 (the teacher's center)", slips=CENTER_SLIPS)
    if result.passed:
        result.message += CENTER_PASSED
    report(result)
    return student if result.passed else update_center
