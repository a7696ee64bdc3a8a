"""Compare a learner's answer with the expected one and say, in one sentence, what differs.

:func:`compare` knows tensors (shape, dtype, NaN and inf, the largest difference), NumPy
arrays, tuples, lists and dicts of them, and plain numbers (an integer must be an integer).
:func:`describe_value` writes a short description of any value for the feedback.
"""

from collections.abc import Sequence

import numpy as np
import torch


def describe_value(value, max_items: int = 6) -> str:
    """A short, readable description of a value for feedback messages."""
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        shown = ", ".join(f"{x:.4g}" for x in flat[:max_items].tolist())
        more = ", ..." if flat.numel() > max_items else ""
        return f"tensor of shape {tuple(value.shape)}, dtype {value.dtype}: [{shown}{more}]"
    if isinstance(value, np.ndarray):
        return describe_value(torch.from_numpy(np.ascontiguousarray(value)), max_items)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, torch.nn.Module):  # its repr lists every layer: far too long here
        return f"a {type(value).__name__} model"
    text = repr(value)
    if isinstance(value, (tuple, list)) and len(text) > 100:
        # Several inputs: their shapes say what the case is; their values would not fit.
        items = [f"{'tensor' if isinstance(item, torch.Tensor) else 'array'} of shape "
                 f"{tuple(item.shape)}" if isinstance(item, (torch.Tensor, np.ndarray))
                 else describe_value(item) for item in value]
        return f"({', '.join(items)})"
    return text if len(text) <= 100 else text[:97] + "..."


# General advice on a wrong shape; left out when an exercise's own diagnosis explains it.
SHAPE_ADVICE = ("; check which axes you reduce over (keepdim=True keeps them) and any reshape you "
                "did not undo")


def compare(expected, got, *, atol: float = 1e-5, rtol: float = 1e-4,
            names: Sequence[str] = ()) -> str | None:
    """Return ``None`` when ``got`` matches ``expected``, else one sentence saying what differs.

    ``names`` labels the items of an expected tuple or list in messages (e.g. "parameters").
    """
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch.Tensor but got {type(got).__name__} ({describe_value(got)})"
        if got.shape != expected.shape:
            return (f"expected shape {tuple(expected.shape)} but got shape {tuple(got.shape)}"
                    f"{SHAPE_ADVICE}")
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype} but got dtype {got.dtype}"
        got, expected = got.detach().cpu(), expected.detach().cpu()
        if expected.dtype == torch.bool or not expected.is_floating_point():
            wrong = got != expected
            if wrong.any():
                index = tuple(torch.nonzero(wrong)[0].tolist())
                return (f"values differ at index {index}: expected {expected[index].item()} "
                        f"but got {got[index].item()}")
            return None
        bad_got = ~torch.isfinite(got) & torch.isfinite(expected)
        if bad_got.any():
            index = tuple(torch.nonzero(bad_got)[0].tolist())
            kind = "NaN" if torch.isnan(got[index]) else ("-inf" if got[index] < 0 else "inf")
            return (f"got {kind} at index {index} where {expected[index].item():.6g} was expected "
                    f"({int(bad_got.sum())} non-finite value(s) in all); something overflowed "
                    f"or divided by zero")
        if not torch.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
            diff = (got - expected).abs().nan_to_num(nan=float("inf"))
            index = tuple(torch.nonzero(diff == diff.max())[0].tolist())
            return (f"values differ: largest difference {diff.max().item():.3g} at index {index} "
                    f"(expected {expected[index].item():.6g}, got {got[index].item():.6g})")
        return None
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"expected a NumPy array but got {type(got).__name__} ({describe_value(got)})"
        return compare(torch.from_numpy(np.ascontiguousarray(expected)),
                       torch.from_numpy(np.ascontiguousarray(got)), atol=atol, rtol=rtol)
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a sequence of {len(expected)} items but got {describe_value(got)}"
        for position, (want, have) in enumerate(zip(expected, got)):
            problem = compare(want, have, atol=atol, rtol=rtol)
            if problem:
                label = names[position] if position < len(names) else f"item {position}"
                return f"{label}: {problem}"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or got.keys() != expected.keys():
            return f"expected a dict with keys {sorted(expected)} but got {describe_value(got)}"
        for key in expected:
            problem = compare(expected[key], got[key], atol=atol, rtol=rtol)
            if problem:
                return f"{key!r}: {problem}"
        return None
    if isinstance(expected, bool) or isinstance(expected, str):
        return None if got == expected else f"expected {expected!r} but got {got!r}"
    if isinstance(expected, int):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, (float, np.floating)):
            return (f"expected the integer {expected} but got the float {float(got)!r}: return an "
                    f"int (use // for division, or int(...) once the result is whole)")
        if isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            return f"expected the integer {expected} but got {describe_value(got)}"
        return None if got == expected else f"expected {expected:,} but got {int(got):,}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float, np.integer, np.floating)) or isinstance(got, bool):
            return f"expected a number but got {type(got).__name__} ({describe_value(got)})"
        if not np.isfinite(got) and np.isfinite(expected):
            return f"expected {expected:.6g} but got {got}"
        if abs(got - expected) > atol + rtol * abs(expected):
            return f"expected {expected:.6g} but got {got:.6g}"
        return None
    try:
        equal = bool(got == expected)
    except (TypeError, ValueError, RuntimeError):  # e.g. an array compared with a number
        equal = False
    return None if equal else f"expected {expected!r} but got {describe_value(got)}"
