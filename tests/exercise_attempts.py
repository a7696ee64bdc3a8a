"""Shared by the tests of each lesson's exercise checks: try a check as a learner would."""


def _todo(*args, **kwargs):
    raise NotImplementedError


def assert_undone_wrong_and_right(check, reference, wrong, hint, capsys, not_done_class=None):
    """Undone -> ⌛ and the reference; wrong -> ❌ with ``hint`` and the reference; right -> ✅
    and the learner's own version. Module exercises pass ``not_done_class`` (a class whose
    __init__ raises NotImplementedError)."""
    undone = not_done_class if isinstance(reference, type) else _todo
    assert check(undone) is reference
    assert "not implemented yet" in capsys.readouterr().out
    assert check(wrong) is reference
    out = capsys.readouterr().out
    assert "\N{CROSS MARK}" in out and hint in out
    if isinstance(reference, type):
        right = type("Mine", (reference,), {})
    else:
        def right(*args, **kwargs):
            return reference(*args, **kwargs)
    assert check(right) is right
    assert "\N{WHITE HEAVY CHECK MARK}" in capsys.readouterr().out


def assert_each_slip_named_alone(check, slips, capsys):
    """Every slip of an exercise, tried as a learner's attempt, is ❌ and named by its own hint
    alone: no other slip's hint, no "one of these". Slips whose hint is a function (it quotes the
    case's numbers) are only checked for the ❌; their lesson tests them with those numbers."""
    texts = {slip.name: slip.hint for slip in slips if isinstance(slip.hint, str)}
    for slip in slips:
        assert check(slip.fn) is not slip.fn, slip.name
        out = capsys.readouterr().out
        assert "\N{CROSS MARK}" in out, slip.name
        if slip.name in texts:
            assert texts[slip.name] in out, slip.name
        assert not any(text in out for name, text in texts.items() if name != slip.name), slip.name
        assert "one of these" not in out, slip.name
