import pytest
import torch
import torch.nn.functional as F

from course_utils.checks import compare
from course_utils.exercises import lesson07, lesson07_contrastive, lesson07_pretext, lesson07_teacher

from exercise_attempts import (assert_each_slip_named_alone,  # tests/exercise_attempts.py
                               assert_undone_wrong_and_right)

PASSED = "\N{WHITE HEAVY CHECK MARK}"
WRONG = "\N{CROSS MARK}"


# ---- right answers, written otherwise than the references ---------------------------------------

def shuffle_by_index_select(tiles, permutation):
    return tiles.index_select(1, torch.as_tensor(permutation))


def shuffle_by_stacking(tiles, permutation):
    return torch.stack([tiles[:, int(tile)] for tile in permutation], dim=1)


def masking_with_scatter(tokens, mask_ratio, *, generator):
    n, length, _ = tokens.shape
    keep = int(length * (1 - mask_ratio))
    noise = torch.rand(n, length, generator=generator)
    shuffle = torch.argsort(noise, dim=1)
    visible = torch.stack([tokens[row, shuffle[row, :keep]] for row in range(n)])
    mask = torch.ones(n, length).scatter(1, shuffle[:, :keep], 0.0)
    return visible, mask, torch.argsort(shuffle, dim=1)


def nt_xent_concatenated(z1, z2, temperature):
    n = len(z1)
    z = torch.cat([z1, z2])                                               # (2N, D)
    similarity = F.cosine_similarity(z[:, None], z[None, :], dim=2)       # (2N, 2N)
    logits = similarity / temperature - torch.eye(2 * n) * 1e9            # self left out
    partners = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(logits, partners)


def nt_xent_as_the_papers_loop(z1, z2, temperature):
    z = F.normalize(torch.stack([z1, z2], dim=1).reshape(2 * len(z1), -1), dim=1)  # interleaved
    s = z @ z.T

    def l(i, j):
        others = torch.cat([s[i, :i], s[i, i + 1:]]) / temperature
        return -(s[i, j] / temperature - torch.logsumexp(others, dim=0))

    return sum(l(2 * k, 2 * k + 1) + l(2 * k + 1, 2 * k) for k in range(len(z1))) / (2 * len(z1))


def nt_xent_with_a_naive_exp(z1, z2, temperature):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    similarity = (z @ z.T / temperature).exp() * (1 - torch.eye(2 * n))
    partners = (torch.arange(2 * n) + n) % (2 * n)
    positives = similarity[torch.arange(2 * n), partners]
    return -(positives / similarity.sum(dim=1)).log().mean()


def dino_with_soft_cross_entropy(student_1, student_2, teacher_1, teacher_2, center, *,
                                 teacher_temperature, student_temperature):
    with torch.no_grad():
        t1, t2 = (F.softmax((teacher - center) / teacher_temperature, dim=1)
                  for teacher in (teacher_1, teacher_2))
    return (F.cross_entropy(student_2 / student_temperature, t1)
            + F.cross_entropy(student_1 / student_temperature, t2)) / 2


def dino_with_a_naive_exp(student_1, student_2, teacher_1, teacher_2, center, *,
                          teacher_temperature, student_temperature):
    def h(teacher, student):
        t = ((teacher.detach() - center) / teacher_temperature).exp()
        s = (student / student_temperature).exp()
        targets, probabilities = t / t.sum(dim=1, keepdim=True), s / s.sum(dim=1, keepdim=True)
        return -(targets * probabilities.log()).sum(dim=1).mean()
    return (h(teacher_1, student_2) + h(teacher_2, student_1)) / 2


def ema_by_a_loop_over_data(teacher, student, momentum):
    for mine, theirs in zip(teacher.parameters(), student.parameters()):
        mine.data = momentum * mine.data + (1 - momentum) * theirs.data
    for mine, theirs in zip(teacher.buffers(), student.buffers()):
        mine.data.copy_(theirs.data)


@torch.no_grad()
def ema_by_lerp_returning_the_teacher(teacher, student, momentum):
    for mine, theirs in zip(teacher.parameters(), student.parameters()):
        mine.lerp_(theirs, 1 - momentum)
    teacher.load_state_dict({**teacher.state_dict(), **dict(student.named_buffers())})
    return teacher


# ---- undone, wrong, right; every slip named alone -----------------------------------------------

CASES = [
    (lesson07.check_shuffle_tiles, lesson07.shuffle_tiles, lesson07.SHUFFLE_SLIPS[0].fn,
     "that is the inverse permutation"),
    (lesson07.check_random_masking, lesson07.random_masking, lesson07.MASKING_SLIPS[2].fn,
     "that is the mask in the shuffled order"),
    (lesson07.check_nt_xent_loss, lesson07.nt_xent_loss, lesson07.NT_XENT_SLIPS[1].fn,
     "the sum in the denominator runs over k != i"),
    (lesson07.check_dino_loss, lesson07.dino_loss, lesson07.DINO_SLIPS[3].fn,
     "no gradient may flow into it"),
    (lesson07.check_ema_update, lesson07.ema_update, lesson07.EMA_SLIPS[0].fn,
     "your teacher is almost the student"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[0].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


SLIP_LISTS = {
    "shuffle tiles": (lesson07.check_shuffle_tiles, lesson07.SHUFFLE_SLIPS),
    "random masking": (lesson07.check_random_masking, lesson07.MASKING_SLIPS),
    "NT-Xent": (lesson07.check_nt_xent_loss, lesson07.NT_XENT_SLIPS),
    "DINO": (lesson07.check_dino_loss, lesson07.DINO_SLIPS),
    "EMA": (lesson07.check_ema_update, lesson07.EMA_SLIPS),
}


@pytest.mark.parametrize("exercise", SLIP_LISTS)
def test_each_listed_slip_is_named_alone(exercise, capsys):
    assert_each_slip_named_alone(*SLIP_LISTS[exercise], capsys)


def _masking_outputs(fn):
    return lesson07_pretext._with_fresh_generator(fn)


VALUE_SLIPS = {  # exercise: (reference, slips, the check's cases), all called as the check does
    "shuffle tiles": (lesson07.shuffle_tiles, lesson07.SHUFFLE_SLIPS,
                      lesson07_pretext._shuffle_cases(), lambda fn: fn),
    "random masking": (lesson07.random_masking, lesson07.MASKING_SLIPS,
                       lesson07_pretext._masking_cases(), _masking_outputs),
    "NT-Xent": (lesson07.nt_xent_loss, lesson07.NT_XENT_SLIPS,
                lesson07_contrastive._nt_xent_cases(), lambda fn: fn),
}


@pytest.mark.parametrize("slip, reference, cases, calls", [
    pytest.param(slip, reference, cases, calls, id=f"{exercise}: {slip.name}")
    for exercise, (reference, slips, cases, calls) in VALUE_SLIPS.items() for slip in slips])
def test_each_slip_differs_from_the_reference_on_a_case(slip, reference, cases, calls):
    def output(fn, case):
        try:
            return calls(fn)(*[_copy(arg) for arg in case.args], **case.kwargs)
        except Exception as error:
            return error

    differs = []
    for case in cases:
        slipped = output(slip.fn, case)
        differs.append(isinstance(slipped, Exception)
                       or compare(output(reference, case), slipped) is not None)
    assert any(differs)


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else value


@pytest.mark.parametrize("check, attempt", [
    (lesson07.check_shuffle_tiles, lesson07.SHUFFLE_SLIPS[2].fn),
    (lesson07.check_random_masking, lesson07.MASKING_SLIPS[5].fn),
    (lesson07.check_random_masking,
     lambda tokens, mask_ratio, *, generator: lesson07.random_masking(tokens, mask_ratio)),
    (lesson07.check_nt_xent_loss, lesson07.NT_XENT_SLIPS[0].fn),
    (lesson07.check_dino_loss, lesson07.DINO_SLIPS[3].fn),
    (lesson07.check_ema_update, lesson07.EMA_SLIPS[1].fn),
    (lesson07.check_ema_update, ema_by_a_loop_over_data),
], ids=["shuffle", "masking", "masking, global generator", "NT-Xent", "DINO", "EMA, a slip",
        "EMA, right"])
def test_checks_leave_the_random_numbers_alone(check, attempt, capsys):
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    check(attempt)
    assert torch.equal(torch.rand(3), expected_next)


# ---- exercise 1: shuffling the tiles ------------------------------------------------------------

@pytest.mark.parametrize("attempt", [shuffle_by_index_select, shuffle_by_stacking],
                         ids=["index_select", "stacking"])
def test_shuffle_right_answers_pass(attempt, capsys):
    assert lesson07.check_shuffle_tiles(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def test_shuffle_in_place_is_told_so(capsys):
    def in_place(tiles, permutation):
        tiles.copy_(tiles[:, permutation])
        return tiles

    assert lesson07.check_shuffle_tiles(in_place) is lesson07.shuffle_tiles
    out = capsys.readouterr().out
    assert "changed its input in place" in out and lesson07_pretext.TILES_IN_PLACE in out


def test_shuffle_by_a_permutation_of_ones_own_is_told_which(capsys):
    def own_permutation(tiles, permutation):
        return tiles[:, torch.arange(tiles.shape[1]).flip(0)]

    assert lesson07.check_shuffle_tiles(own_permutation) is lesson07.shuffle_tiles
    out = capsys.readouterr().out
    assert "not in the order of the permutation you were given: [3, 2, 1, 0] instead of [1, 3, 0, 2]" in out


def test_shuffle_cases_tell_the_permutation_from_its_inverse_and_the_axes():
    first = lesson07_pretext._shuffle_cases()[0]
    tiles, permutation = first.args
    assert tiles.shape[0] == tiles.shape[1]            # tiles[permutation] runs, and is wrong
    permutation = torch.as_tensor(permutation)
    assert not torch.equal(permutation.argsort(), permutation)


# ---- exercise 2: random masking -----------------------------------------------------------------

def test_masking_with_scatter_passes(capsys):
    assert lesson07.check_random_masking(masking_with_scatter) is masking_with_scatter
    assert PASSED in capsys.readouterr().out


def test_masking_with_the_global_generator_is_named(capsys):
    def global_noise(tokens, mask_ratio, *, generator):
        return lesson07.random_masking(tokens, mask_ratio)   # generator forgotten

    assert lesson07.check_random_masking(global_noise) is lesson07.random_masking
    out = capsys.readouterr().out
    assert WRONG in out and lesson07_pretext.GLOBAL_NOISE in out


def test_masking_cases_cover_rounding_one_sequence_and_no_mask():
    keeps, batches, ratios = [], [], []
    for case in lesson07_pretext._masking_cases():
        tokens, mask_ratio = case.args
        keeps.append(tokens.shape[1] * (1 - mask_ratio))
        batches.append(len(tokens))
        ratios.append(mask_ratio)
    assert any(keep != int(keep) for keep in keeps)   # int() and round() differ
    assert 1 in batches and 0.0 in ratios
    for case in lesson07_pretext._masking_cases():
        masking = _masking_outputs(lesson07.random_masking)
        visible, mask, _ = masking(*case.args, **case.kwargs)
        assert mask.sum(dim=1).eq(case.args[0].shape[1] - visible.shape[1]).all()


# ---- exercise 3: NT-Xent ------------------------------------------------------------------------

@pytest.mark.parametrize("attempt", [nt_xent_concatenated, nt_xent_as_the_papers_loop],
                         ids=["concatenated, partner (i + N) % 2N", "the paper's loop"])
def test_nt_xent_right_answers_pass(attempt, capsys):
    """Concatenated views are as right as interleaved ones when the partners match."""
    assert lesson07.check_nt_xent_loss(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def test_nt_xent_with_a_naive_exp_overflows_on_the_large_case(capsys):
    assert lesson07.check_nt_xent_loss(nt_xent_with_a_naive_exp) is lesson07.nt_xent_loss
    out = capsys.readouterr().out
    assert "cosine similarity near 1" in out and "got NaN" in out and "exp(100) overflows" in out


def test_nt_xent_cases_cover_one_pair_and_large_logits():
    cases = lesson07_contrastive._nt_xent_cases()
    one_pair = next(case for case in cases if len(case.args[0]) == 1)
    assert lesson07.nt_xent_loss(*one_pair.args).item() == pytest.approx(0.0, abs=1e-6)
    z1, z2, temperature = cases[-1].args
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    assert (z @ z.T / temperature).min() > 89   # exp() of every logit overflows float32


# ---- exercise 4: DINO ---------------------------------------------------------------------------

def test_dino_with_soft_cross_entropy_passes(capsys):
    attempt = dino_with_soft_cross_entropy
    assert lesson07.check_dino_loss(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def test_dino_with_a_naive_exp_fails_on_the_large_case(capsys):
    lesson07.check_dino_loss(dino_with_a_naive_exp)
    out = capsys.readouterr().out
    assert "large outputs" in out and "use F.softmax and F.log_softmax" in out


def test_dino_loss_as_a_number_or_without_gradient_is_named(capsys):
    def as_a_number(*outputs, **temperatures):
        return lesson07.dino_loss(*outputs, **temperatures).item()

    def student_detached(student_1, student_2, *rest, **temperatures):
        return lesson07.dino_loss(student_1.detach(), student_2, *rest, **temperatures)

    lesson07.check_dino_loss(as_a_number)
    assert "expected a torch.Tensor but got float" in capsys.readouterr().out
    lesson07.check_dino_loss(student_detached)
    out = capsys.readouterr().out
    assert "no gradient reaches student_1" in out
    assert lesson07_contrastive.NO_STUDENT_GRADIENT in out and "raised WrongResult" not in out


def test_dino_large_case_overflows_a_naive_exp():
    case = lesson07_contrastive._dino_cases()[-1]
    _, _, teacher_1, _, center = case.args
    assert ((teacher_1 - center) / case.kwargs["teacher_temperature"]).max() > 89


# ---- exercise 5: the EMA teacher ----------------------------------------------------------------

@pytest.mark.parametrize("attempt", [ema_by_a_loop_over_data, ema_by_lerp_returning_the_teacher],
                         ids=["a loop over .data", "lerp_, the teacher returned"])
def test_ema_right_answers_pass(attempt, capsys):
    assert lesson07.check_ema_update(attempt) is attempt
    assert PASSED in capsys.readouterr().out


def test_ema_cases_differ_in_every_parameter_and_buffer():
    for case in lesson07_teacher._ema_cases():
        teacher_network, student_network, _ = case.args
        with torch.random.fork_rng():
            teacher, student = teacher_network.build(), student_network.build()
        for name, value in teacher.state_dict().items():
            assert not torch.equal(value, student.state_dict()[name]), name


def test_ema_without_no_grad_on_a_trainable_teacher_is_diagnosed():
    teacher_network, student_network, momentum = lesson07_teacher._ema_cases()[1].args
    with torch.random.fork_rng():
        teacher, student = teacher_network.build(), student_network.build()
    no_grad_slip = next(slip for slip in lesson07.EMA_SLIPS if slip.name == "no torch.no_grad()")
    with pytest.raises(RuntimeError) as error:
        no_grad_slip.fn(teacher, student, momentum)
    assert (lesson07_teacher._diagnose_ema(None, None, error.value)
            == lesson07_teacher.NO_GRAD)


def test_ema_that_freezes_the_teacher_is_named(capsys):
    def freezes(teacher, student, momentum):
        lesson07.ema_update(teacher, student, momentum)
        teacher.requires_grad_(False)

    assert lesson07.check_ema_update(freezes) is lesson07.ema_update
    out = capsys.readouterr().out
    assert "momentum 0.5" in out and lesson07_teacher.REQUIRES_GRAD in out


def center_by_lerp(center, teacher_logits, momentum=0.9):
    return torch.lerp(teacher_logits.mean(0, keepdim=True), center, momentum)


def test_update_center_undone_wrong_right_and_slips(capsys):
    assert_undone_wrong_and_right(lesson07.check_update_center, lesson07.update_center,
                                  lesson07.CENTER_SLIPS[0].fn, "your center jumps", capsys)
    assert_each_slip_named_alone(lesson07.check_update_center, lesson07.CENTER_SLIPS, capsys)
    for _ in range(2):
        assert lesson07.check_update_center(center_by_lerp) is center_by_lerp
        assert PASSED in capsys.readouterr().out
