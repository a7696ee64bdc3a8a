"""Lesson 07 exercises on learning from two views: SimCLR's NT-Xent loss (exercise 1 of
part 2) and DINO's loss (exercise 3 of part 2); the teacher's moving average (exercise 2 of
part 2) is in lesson07_teacher.

The references are the package's own (course_utils.self_supervised), which the lesson trains
with. A wrong answer is diagnosed by the exercise's slips, each the reference with one common
mistake (see course_utils.checks.Slip), or by a property the check measures: the gradients the
DINO loss sends (none into the teacher's outputs, some into the student's).
"""

from functools import partial

import torch
import torch.nn.functional as F

from course_utils import self_supervised
from course_utils.checks import Case, Slip, WrongResult, check_outcome, report, run_check

# ---- reference solutions ---------------------------------------------------------------------

nt_xent_loss = self_supervised.nt_xent_loss
dino_loss = self_supervised.dino_loss


# ---- exercise 1 of part 2: SimCLR's NT-Xent loss -------------------------------------------------

def _views(n, dim, seed, *, noise=0.5):
    """Two views' projections (N, D): z2 is z1 plus noise, so that the pairs are alike."""
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(n, dim, generator=generator)
    return z1, z1 + noise * torch.randn(n, dim, generator=generator)


def _close_views(n, dim, seed):
    """Projections of norm about 100, all near one direction: every cosine similarity is near 1,
    so that at temperature 0.01 every logit is near 100, past where exp() overflows in float32."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(1, dim, generator=generator)
    z1 = direction + 0.1 * torch.randn(n, dim, generator=generator)
    z2 = z1 + 0.05 * torch.randn(n, dim, generator=generator)
    scale = 100 / direction.norm()
    return scale * z1, scale * z2


def _nt_xent_cases():
    return [Case("4 pairs of 8-dimensional projections, temperature 0.5", (*_views(4, 8, 0), 0.5),
                 hint="number the 2N = 8 views, s(i, j) their cosine similarity; row i's logits "
                      "are s(i, j) / temperature for every j != i, its right answer the other "
                      "view of its image; the loss is the mean of the 8 rows' cross-entropies."),
            Case("3 pairs of 5-dimensional projections, temperature 0.1",
                 (*_views(3, 5, 1, noise=1.0), 0.1),
                 hint="divide the cosine similarities by the temperature, 0.1 here, before the "
                      "softmax: the lower the temperature, the more the hardest negatives count."),
            Case("one pair (N = 1): the loss is 0", (*_views(1, 6, 2), 0.5),
                 hint="with one pair each view's only other view is its partner, so each row's "
                      "softmax has one entry, probability 1, and the loss is -log 1 = 0 (if yours "
                      "is not, the view itself is among the candidates: set the diagonal of the "
                      "logits to -inf)."),
            Case("5 pairs with every cosine similarity near 1, temperature 0.01",
                 (*_close_views(5, 6, 3), 0.01),
                 hint="here every logit is about 1 / 0.01 = 100, and exp(100) overflows float32 "
                      "(its largest number is about exp(88.7)), so exp(...) / sum(exp(...)) gives "
                      "inf / inf = NaN. Let the cross-entropy do it, F.cross_entropy(logits, "
                      "partners) (or torch.logsumexp), which subtracts each row's largest logit "
                      "before exp().")]


NT_XENT_PASSED = (" Each view must pick out its partner among the 2N - 1 others: a larger batch "
                  "brings more negatives, the batch-size effect the lesson measures.")


def check_nt_xent_loss(student):
    """Exercise 1 of part 2: ``nt_xent_loss(z1, z2, temperature)`` -> SimCLR's loss, a scalar tensor, for
    N pairs of projections (N, D), ``z1[k]`` and ``z2[k]`` two views of image k: the cosine
    similarities of the 2N views divided by the temperature, each view's own similarity left
    out, and each view's cross-entropy whose right answer is the other view of its image,
    averaged over the 2N views. The views may be numbered in pairs (interleaved) or z1's then
    z2's (concatenated), as long as the partners match. Returns the function the notebook
    should use next."""
    result = run_check(student, nt_xent_loss, _nt_xent_cases(),
                       exercise="Exercise 1 of part 2 (NT-Xent loss)", atol=1e-4, slips=NT_XENT_SLIPS)
    if result.passed:
        result.message += NT_XENT_PASSED
    report(result)
    return student if result.passed else nt_xent_loss


def _nt_xent_variant(z1, z2, temperature, *, similarity="cosine", temperature_as="divided",
                     diagonal="excluded", partner="other view", rows="both views",
                     divide_by="2N", negatives="all views"):
    """nt_xent_loss with one thing changed (the defaults give the reference), the views
    concatenated: view k + N is z2[k], the partner of view k."""
    n = len(z1)
    if similarity == "cosine":
        z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    scale = {"divided": 1 / temperature, "multiplied": temperature, "none": 1.0}[temperature_as]
    if negatives in ("other view only", "other view only, one way"):  # CLIP's loss: z1 against z2
        logits = z1 @ z2.T * scale                                         # (N, N)
        targets = torch.arange(n)
        if negatives == "other view only, one way":
            return F.cross_entropy(logits, targets)
        return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    z = torch.cat([z1, z2])                                                # (2N, D)
    logits = z @ z.T * scale                                               # (2N, 2N)
    if diagonal == "excluded":
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    elif diagonal == "zero":
        logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), 0.0)
    index = torch.arange(2 * n)
    targets = {"other view": (index + n) % (2 * n), "same index": index,
               "as if interleaved": index ^ 1}[partner]
    losses = F.cross_entropy(logits, targets, reduction="none")            # (2N,)
    if rows == "first views only":  # l(2k-1, 2k) only: the rows of z1
        losses = losses[:n]
    return losses.sum() / n if divide_by == "N" else losses.mean()


NT_XENT_SLIPS = [
    Slip("dot product",
         "you compared the projections by their dot product: SimCLR uses the cosine similarity, "
         "the dot product of unit vectors, so normalise them first (F.normalize(z, dim=1)). "
         "Without it the loss rewards long vectors instead of vectors that point the same way.",
         partial(_nt_xent_variant, similarity="dot")),
    Slip("diagonal kept",
         "each view's similarity with itself (always 1 / temperature, the largest) is still among "
         "its candidates: the sum in the denominator runs over k != i. Set the diagonal of the "
         "logits to -inf before the cross-entropy: logits.masked_fill(torch.eye(2 * N, "
         "dtype=torch.bool), float('-inf')).", partial(_nt_xent_variant, diagonal="kept")),
    Slip("no temperature",
         "the temperature is missing: divide every similarity by it, s(i, j) / temperature, "
         "before the softmax. Cosine similarities lie in [-1, 1], too close together for a "
         "sharp softmax without it.", partial(_nt_xent_variant, temperature_as="none")),
    Slip("multiplied by the temperature",
         "you multiplied the similarities by the temperature: divide by it, s(i, j) / "
         "temperature, so that a low temperature (0.1) makes the softmax sharper, not flatter.",
         partial(_nt_xent_variant, temperature_as="multiplied")),
    Slip("one direction only",
         "only the first view of each pair was a row, l(2k-1, 2k): the loss also has l(2k, "
         "2k-1), the second view picking out the first among its own candidates (another "
         "denominator). Average over all 2N rows.",
         partial(_nt_xent_variant, rows="first views only")),
    Slip("divided by N",
         "your loss is twice the reference: it sums 2N terms, l(2k-1, 2k) and l(2k, 2k-1) for "
         "each of the N pairs, and divides by N. Take their mean, over the 2N rows (the paper's "
         "1 / 2N).", partial(_nt_xent_variant, divide_by="N")),
    Slip("the view itself as its positive",
         "your loss is inf: the right answer of row i is view i itself, whose logit is -inf once "
         "the diagonal is excluded. Row i's positive is the other view of the same image: with "
         "z = torch.cat([z1, z2]), view i's partner is (i + N) % (2 * N).",
         partial(_nt_xent_variant, partner="same index")),
    Slip("concatenated but paired as if interleaved",
         "you stacked the views as torch.cat([z1, z2]) (z1's N views, then z2's) but paired "
         "view i with i ^ 1 (0 with 1, 2 with 3), which is the pairing of interleaved views "
         "(z1[0], z2[0], z1[1], ...). With torch.cat([z1, z2]) the partner of view i is "
         "(i + N) % (2 * N); or interleave them, torch.stack([z1, z2], dim=1).reshape(2 * N, -1).",
         partial(_nt_xent_variant, partner="as if interleaved")),
    Slip("negatives from the other view only",
         "your negatives are only the other view's (z1 @ z2.T, N candidates per row, CLIP's "
         "loss): SimCLR's candidates are all 2N - 1 other views, the other images' views on the "
         "same side included. Put the 2N views together, z = torch.cat([z1, z2]), and compare "
         "each with every other, z @ z.T.", partial(_nt_xent_variant, negatives="other view only")),
    Slip("the other view only, one way",
         "your rows are z1's views against z2's only (z1 @ z2.T, N candidates each, one "
         "cross-entropy): SimCLR compares each of the 2N views with all 2N - 1 others, both sides "
         "together. Put the views together, z = torch.cat([z1, z2]), take z @ z.T, leave the "
         "diagonal out and average over all 2N rows.",
         partial(_nt_xent_variant, negatives="other view only, one way")),
    Slip("diagonal set to 0",
         "you set each view's similarity with itself to 0: a logit of 0 still counts in the "
         "softmax (e^0 = 1 in the denominator). The sum runs over k != i, so the diagonal must "
         "vanish from it: set it to -inf (e^-inf = 0), logits.masked_fill(torch.eye(2 * N, "
         "dtype=torch.bool), float('-inf')).", partial(_nt_xent_variant, diagonal="zero")),
]


# ---- exercise 3 of part 2: DINO's loss -----------------------------------------------------------

def _dino_outputs(batch, dim, seed, *, teacher_scale=1.0, student_scale=1.0):
    """The student's and the teacher's outputs for two views (B, K) each, and a center (K,)."""
    generator = torch.Generator().manual_seed(seed)
    student_1, student_2 = (student_scale * torch.randn(batch, dim, generator=generator)
                            for _ in range(2))
    teacher_1, teacher_2 = (teacher_scale * torch.randn(batch, dim, generator=generator)
                            for _ in range(2))
    center = 0.5 * teacher_scale * torch.randn(dim, generator=generator)
    return student_1, student_2, teacher_1, teacher_2, center


def _dino_cases():
    return [Case("a batch of 4 outputs of 6 dimensions", _dino_outputs(4, 6, 0),
                 {"teacher_temperature": 0.04, "student_temperature": 0.1},
                 hint="t = softmax((teacher - center) / teacher_temperature) and log s = "
                      "log_softmax(student / student_temperature), row by row; H(t, s) = -sum(t * "
                      "log s) over the dimensions, averaged over the batch; the loss is "
                      "H(t1, s2) / 2 + H(t2, s1) / 2."),
            Case("one output of 5 dimensions, temperatures 0.07 and 0.2", _dino_outputs(1, 5, 1),
                 {"teacher_temperature": 0.07, "student_temperature": 0.2},
                 hint="a batch of one: each H is that one row's cross-entropy, and the answer "
                      "is still a scalar tensor; use the temperatures given, not 0.04 and 0.1."),
            Case("a batch of 3 with large outputs (teacher x 100, student x 50)",
                 _dino_outputs(3, 8, 2, teacher_scale=100.0, student_scale=50.0),
                 {"teacher_temperature": 0.04, "student_temperature": 0.1},
                 hint="the teacher's logits divided by 0.04 reach thousands, and exp() of them "
                      "overflows: use F.softmax and F.log_softmax, which subtract each row's "
                      "largest value first (not exp(x) / exp(x).sum(), nor softmax(x).log()).")]


DINO_PASSED = (" Centering keeps one dimension from winning for every image, sharpening keeps "
               "the target from going uniform, and no gradient through the teacher makes it a "
               "target, not something the loss can move.")
TEACHER_GRADIENT = ("the teacher's output is a target, and no gradient may flow into it: detach "
                    "it, (teacher - center).detach() or F.softmax(...).detach() (or compute the "
                    "targets under torch.no_grad()). Otherwise the loss also moves the teacher's "
                    "outputs towards the student's, and the two can meet on a collapsed answer.")
NO_STUDENT_GRADIENT = ("the student learns from this loss: it must be built from student_1 and "
                       "student_2 by torch operations (no .item(), .detach(), .numpy() or "
                       "torch.no_grad() on the student's side), so that loss.backward() reaches "
                       "both.")


def _dino_outcome(loss_fn):
    """The value of ``loss_fn`` (called like dino_loss) on a case, once its gradients are checked:
    none into the teacher's outputs, some into both of the student's."""
    def run(student_1, student_2, teacher_1, teacher_2, center, **temperatures):
        outputs = [x.detach().clone().requires_grad_(True)
                   for x in (student_1, student_2, teacher_1, teacher_2)]
        loss = loss_fn(*outputs, center, **temperatures)
        if not isinstance(loss, torch.Tensor) or loss.shape != ():
            return loss  # compared with the reference's scalar, which says what differs
        if loss.grad_fn is None:
            raise WrongResult("no gradient reaches the student's outputs (the loss has no "
                              "grad_fn)", NO_STUDENT_GRADIENT)
        loss.backward()
        names = ("student_1", "student_2", "teacher_1", "teacher_2")
        to_teacher = [name for name, x in zip(names[2:], outputs[2:]) if x.grad is not None]
        if to_teacher:
            raise WrongResult(f"the gradient flows into the teacher's outputs "
                              f"({', '.join(to_teacher)} get a .grad)", TEACHER_GRADIENT)
        not_to_student = [name for name, x in zip(names[:2], outputs[:2]) if x.grad is None]
        if not_to_student:
            raise WrongResult(f"no gradient reaches {', '.join(not_to_student)}",
                              NO_STUDENT_GRADIENT)
        return loss.detach()
    return run


def check_dino_loss(student):
    """Exercise 3 of part 2: ``dino_loss(student_1, student_2, teacher_1, teacher_2, center, *,
    teacher_temperature, student_temperature)`` -> DINO's loss for two views, a scalar tensor:
    H(t1, s2) / 2 + H(t2, s1) / 2, where t = softmax((teacher - center) / teacher_temperature),
    detached, s = log_softmax(student / student_temperature), row by row, and H(t, s) =
    -sum(t * s) over the dimensions, averaged over the batch. Outputs are (B, K), the center
    (K,). No gradient may reach the teacher's outputs; both of the student's get one. Returns
    the function the notebook should use next."""
    return check_outcome(student, dino_loss, _dino_outcome, _dino_cases(),
                         exercise="Exercise 3 of part 2 (DINO loss)",
                         what="the loss is not the one asked for", slips=DINO_SLIPS,
                         passed=DINO_PASSED)


def _dino_variant(student_1, student_2, teacher_1, teacher_2, center, *, teacher_temperature,
                  student_temperature, centered="teacher", sharpened=True, detached=True,
                  pairs="crossed", student_as="log_softmax", reduce="mean", axis=1,
                  averaged=True):
    """dino_loss with one thing changed (the defaults give the reference)."""
    def cross_entropy(teacher, student):                      # (B, K) each -> a scalar
        if detached:
            teacher = teacher.detach()
        if centered == "teacher":
            teacher = teacher - center
        elif centered == "student":
            student = student - center
        elif centered == "both":
            teacher, student = teacher - center, student - center
        temperatures = (teacher_temperature, student_temperature)
        if sharpened == "swapped":
            temperatures = temperatures[::-1]
        targets = F.softmax(teacher / (temperatures[0] if sharpened else 1.0), dim=axis)
        scores = student / temperatures[1]
        scores = F.log_softmax(scores, dim=axis) if student_as == "log_softmax" else F.softmax(
            scores, dim=axis)
        per_image = -(targets * scores).sum(dim=1)            # (B,)
        return per_image.mean() if reduce == "mean" else per_image.sum()

    if pairs == "crossed":
        total = cross_entropy(teacher_1, student_2) + cross_entropy(teacher_2, student_1)
        return total / 2 if averaged else total
    return (cross_entropy(teacher_1, student_1) + cross_entropy(teacher_2, student_2)) / 2


DINO_SLIPS = [
    Slip("no centering",
         "the teacher's outputs were not centred: subtract the center before the softmax, "
         "softmax((teacher - center) / teacher_temperature). The center is the running mean of "
         "the teacher's outputs; without it one dimension can win for every image, the first "
         "of the two collapses.", partial(_dino_variant, centered="nothing")),
    Slip("student centred",
         "you subtracted the center from the student's outputs: it belongs to the teacher's, "
         "softmax((teacher - center) / teacher_temperature), whose running mean it is; the "
         "student's are used as they are, log_softmax(student / student_temperature).",
         partial(_dino_variant, centered="student")),
    Slip("no sharpening",
         "the teacher's softmax has no temperature: divide by teacher_temperature (0.04, lower "
         "than the student's), softmax((teacher - center) / teacher_temperature). That "
         "sharpening keeps the targets from going uniform, the second collapse.",
         partial(_dino_variant, sharpened=False)),
    Slip("teacher not detached", TEACHER_GRADIENT, partial(_dino_variant, detached=False)),
    Slip("same views paired",
         "you matched each view's student output with the same view's teacher output, H(t1, "
         "s1): DINO crosses them, H(t1, s2) / 2 + H(t2, s1) / 2, so that the student learns to "
         "give for one view what the teacher gives for the other (the invariance it is after).",
         partial(_dino_variant, pairs="same")),
    Slip("softmax for the student",
         "the cross-entropy takes the log of the student's probabilities: -sum(t * "
         "log_softmax(student / student_temperature)). With softmax instead, the loss is "
         "negative and no longer a cross-entropy.",
         partial(_dino_variant, student_as="softmax")),
    Slip("summed over the batch",
         "you summed over the batch: average the images' cross-entropies, .mean() over the "
         "batch, so that the loss does not grow with the batch size.",
         partial(_dino_variant, reduce="sum")),
    Slip("both centred",
         "you subtracted the center from the student's outputs as well as the teacher's: it is "
         "the running mean of the teacher's outputs and belongs to the teacher only; the "
         "student's are used as they are, log_softmax(student / student_temperature).",
         partial(_dino_variant, centered="both")),
    Slip("temperatures swapped",
         "you divided the teacher by the student's temperature and the student by the "
         "teacher's: the teacher is the one sharpened, softmax((teacher - center) / "
         "teacher_temperature) with the lower temperature (0.04), the student "
         "log_softmax(student / student_temperature) with 0.1.",
         partial(_dino_variant, sharpened="swapped")),
    Slip("softmax over the batch",
         "your softmax runs down the batch (dim=0), so each of the K output dimensions becomes a "
         "distribution over the images. Each image's output is a distribution over the K "
         "dimensions: softmax and log_softmax over dim=1.", partial(_dino_variant, axis=0)),
    Slip("the two halves added",
         "your loss is twice the reference: the two crossed terms are averaged, H(t1, s2) / 2 + "
         "H(t2, s1) / 2, not added.", partial(_dino_variant, averaged=False)),
]
