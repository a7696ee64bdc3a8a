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
