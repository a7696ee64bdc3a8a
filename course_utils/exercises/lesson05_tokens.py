"""Lesson 05 exercises 4-5: the class token and position embeddings, and attention rollout.

The rollout's reference is the package's (course_utils.vit); the class token, which the package
adds inside VisionTransformer, is written out here. A wrong answer is diagnosed by the
exercise's slips (see course_utils.checks.Slip) or by a property of the answer (a wrong shape).
"""

from functools import partial

import torch

from course_utils import vit
from course_utils.checks import Case, CheckResult, Slip, check_function, report, run_check

# ---- reference solutions ---------------------------------------------------------------------

attention_rollout = vit.attention_rollout


def add_class_token_and_positions(patch_tokens: torch.Tensor, class_token: torch.Tensor,
                                  position_embedding: torch.Tensor) -> torch.Tensor:
    """Patch tokens (N, P, D), a class token (1, 1, D) and position embeddings (1, 1 + P, D) ->
    the encoder's input (N, 1 + P, D): the class token first, then positions added to all."""
    class_tokens = class_token.expand(len(patch_tokens), -1, -1)        # (N, 1, D)
    tokens = torch.cat([class_tokens, patch_tokens], dim=1)            # (N, 1 + P, D)
    return tokens + position_embedding


# ---- exercise 4: the class token and the position embeddings ---------------------------------

def _token_inputs(batch, count, dim, seed):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, count, dim, generator=generator),       # patch tokens (N, P, D)
            torch.randn(1, 1, dim, generator=generator),               # class token (1, 1, D)
            torch.randn(1, 1 + count, dim, generator=generator))       # positions (1, 1 + P, D)


def check_class_token_and_positions(student):
    hint = ("token 0 of every image must be class_token + position_embedding[:, 0], and token "
            "1 + i patch token i + position_embedding[:, 1 + i]: compare yours with these.")
    cases = [Case("2 images, 4 patch tokens of 8", _token_inputs(2, 4, 8, 0), hint=hint),
             Case("one image, 9 patch tokens of 6", _token_inputs(1, 9, 6, 1), hint=hint),
             Case("3 images, 16 patch tokens of 4", _token_inputs(3, 16, 4, 2), hint=hint)]
    return check_function(student, add_class_token_and_positions, cases,
                          exercise="Exercise 4 (class token and positions)",
                          diagnose=_diagnose_tokens, slips=TOKEN_SLIPS)


def _tokens_variant(patch_tokens, class_token, position_embedding, *, first="class token",
                    expand=True, dim=1, positions="after"):
    """add_class_token_and_positions with one thing changed (the defaults give the reference)."""
    class_tokens = class_token.expand(len(patch_tokens), -1, -1) if expand else class_token
    if positions == "before":
        patch_tokens = patch_tokens + position_embedding
    elif positions == "patches only":
        patch_tokens = patch_tokens + position_embedding[:, 1:]
    pieces = [class_tokens, patch_tokens] if first == "class token" else [patch_tokens, class_tokens]
    tokens = torch.cat(pieces, dim=dim)
    return tokens + position_embedding if positions == "after" else tokens


def _positions_before_hint(patch_tokens, class_token, position_embedding):
    count = patch_tokens.shape[1]
    return (f"position_embedding has 1 + P = {count + 1} rows, one for the class token too, so "
            f"it cannot be added to the {count} patch tokens alone: add it once the class token "
            f"is in front.")


def _not_expanded_hint(patch_tokens, class_token, position_embedding):
    return (f"class_token is (1, 1, D), one for the whole batch, and torch.cat needs every axis "
            f"but dim 1 to match: expand it to ({len(patch_tokens)}, 1, D) first "
            f"(class_token.expand(N, -1, -1)).")


TOKEN_SLIPS = [
    Slip("class token last",
         "the class token must be token 0, in front of the patch tokens (the head reads x[:, 0]); "
         "yours is at the end.", partial(_tokens_variant, first="patches")),
    Slip("positions before the class token", _positions_before_hint,
         partial(_tokens_variant, positions="before")),
    Slip("class token without its position",
         "the class token got no position embedding: position_embedding[:, 0] is its own, so "
         "add the whole position_embedding to all 1 + P tokens.",
         partial(_tokens_variant, positions="patches only")),
    Slip("no positions",
         "the position embeddings were not added: without them the encoder cannot tell where "
         "each patch was (self-attention ignores the tokens' order).",
         partial(_tokens_variant, positions="none")),
    Slip("class token not expanded", _not_expanded_hint, partial(_tokens_variant, expand=False)),
    Slip("joined along dim 0",
         "torch.cat joined the class token and the patch tokens along dim 0, the batch axis; "
         "the class token is one more token of each image: join along dim=1.",
         partial(_tokens_variant, dim=0)),
    Slip("joined along dim 2",
         "torch.cat joined the class token and the patch tokens along the features (dim 2 or "
         "-1); the class token is one more token of each image: join along dim=1.",
         partial(_tokens_variant, dim=2)),
]


def _diagnose_tokens(case, expected, got):
    """The class token added to the patch tokens (or left out): P tokens instead of 1 + P."""
    patch_tokens = case.args[0]
    if isinstance(got, torch.Tensor) and got.shape == patch_tokens.shape:
        return (f"yours has {patch_tokens.shape[1]} tokens per image, as many as there are "
                f"patches: the class token is an extra token in front (1 + P = "
                f"{patch_tokens.shape[1] + 1} tokens), joined with torch.cat, not added to the "
                f"patch tokens.")
    return None


# ---- exercise 5: attention rollout -----------------------------------------------------------

def _attention_maps(layers, batch, heads, tokens, seed):
    """Random attention maps, bottom layer first: each row a softmax, as attention weights are."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.softmax(2 * torch.randn(batch, heads, tokens, tokens, generator=generator), dim=-1)
            for _ in range(layers)]


def check_attention_rollout(student):
    cases = [Case("one layer, 2 images, 2 heads, 5 tokens", (_attention_maps(1, 2, 2, 5, 0),),
                  hint="with one layer the rollout is that layer's map averaged over the heads, "
                       "with the residual mixed in: its diagonal is at least 0.5 and every row "
                       "sums to 1; check yours."),
             Case("three layers, 2 images, 2 heads, 5 tokens", (_attention_maps(3, 2, 2, 5, 1),),
                  hint="maps[0] is the bottom layer, which acts first: the rollout of three "
                       "layers is R3 @ R2 @ R1, R1 from maps[0]."),
             Case("four layers, one image, 3 heads, 4 tokens", (_attention_maps(4, 1, 3, 4, 2),),
                  hint="one image, 3 heads: the heads are axis 1 of (N, heads, T, T); avoid "
                       "squeeze(), which drops the batch axis.")]
    exercise = "Exercise 5 (attention rollout)"
    result = run_check(student, attention_rollout, cases, exercise=exercise,
                       diagnose=_diagnose_rollout, slips=ROLLOUT_SLIPS)
    if result.passed:
        result = _check_device(student, exercise) or result
    report(result)
    return student if result.passed else attention_rollout


ON_ANOTHER_DEVICE = ("make every tensor you create on the maps' device, e.g. "
                     "torch.eye(T, device=weights.device): on a GPU, maps live there, and an "
                     "identity made on the CPU cannot be added to them.")


def _check_device(student, exercise: str) -> CheckResult | None:
    """Run the learner's rollout on maps of PyTorch's "meta" device (shapes only, no values):
    a tensor made without ``device=`` lands on the CPU and cannot meet them, as on a GPU."""
    maps = [weights.to("meta") for weights in _attention_maps(2, 2, 2, 5, 3)]
    try:
        rollout = student(maps)
    except Exception as error:  # the learner's bug is reported, never propagated
        message = f"on maps that are not on the CPU, your code raised {type(error).__name__}: {error}"
        return CheckResult(exercise, "error", message.rstrip(".!") + ".", hint=ON_ANOTHER_DEVICE,
                           case="two layers on another device (meta)")
    if not isinstance(rollout, torch.Tensor) or rollout.device.type != "meta":
        where = rollout.device if isinstance(rollout, torch.Tensor) else type(rollout).__name__
        return CheckResult(exercise, "fail", f"for maps on another device (meta) your rollout came "
                           f"back on {where}.", hint=ON_ANOTHER_DEVICE,
                           case="two layers on another device (meta)")
    return None


def _rollout_variant(maps, *, heads="mean", residual="half", top="on the left", layers="all"):
    """attention_rollout with one thing changed (the defaults give the reference)."""
    maps = {"all": maps, "last": maps[-1:], "first": maps[:1]}[layers]
    rollout = None
    for weights in maps:
        mixed = {"mean": weights.mean(dim=1), "max": weights.amax(dim=1),
                 "sum": weights.sum(dim=1), "batch": weights.mean(dim=0)}[heads]   # (N, T, T)
        identity = torch.eye(mixed.shape[-1], device=mixed.device)
        if residual == "half":
            mixed = 0.5 * mixed + 0.5 * identity
        elif residual == "A + I":
            mixed = mixed + identity
        if residual != "A + I":  # the reference renormalises; A + I, renormalised, would be right
            mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        if rollout is None:
            rollout = mixed
        else:
            rollout = mixed @ rollout if top == "on the left" else rollout @ mixed
    return rollout


# Dropping the rows' renormalisation is no slip: attention rows sum to 1, and so do those of
# 0.5 A + 0.5 I, so an answer without it is right on every real attention map.
ROLLOUT_SLIPS = [
    Slip("no residual",
         "the residual connection is missing: each layer adds its input to the attention's "
         "output, so each layer's matrix is 0.5 A + 0.5 I, half of the weight on the token "
         "itself.", partial(_rollout_variant, residual="none")),
    Slip("A + I, not renormalised",
         "each row of your matrices sums to 2 (A + I): weigh the two halves, 0.5 A + 0.5 I, so "
         "that every row of the rollout sums to 1.", partial(_rollout_variant, residual="A + I")),
    Slip("top layer on the right",
         "the layers are multiplied in the wrong order: the bottom layer (maps[0]) acts first, "
         "so each higher layer's matrix goes on the left, rollout = mixed @ rollout.",
         partial(_rollout_variant, top="on the right")),
    Slip("max over heads",
         "the heads are combined by their maximum; average them (mean over dim 1).",
         partial(_rollout_variant, heads="max")),
    Slip("sum over heads",
         "the heads are summed, which weighs the attention num_heads times more than the "
         "residual; average them (mean over dim 1).", partial(_rollout_variant, heads="sum")),
    Slip("mean over the batch",
         "the mean runs over dim 0, the images; the heads are dim 1 of (N, heads, T, T).",
         partial(_rollout_variant, heads="batch")),
    Slip("top layer only",
         "only the top layer is in your rollout: every layer's matrix is multiplied in, from "
         "maps[0] (the bottom) up.", partial(_rollout_variant, layers="last")),
    Slip("bottom layer only",
         "only the bottom layer (maps[0]) is in your rollout: is there a return inside the "
         "loop? Every layer's matrix is multiplied in.", partial(_rollout_variant, layers="first")),
]


def _diagnose_rollout(case, expected, got):
    """A wrong shape: the heads kept, or something else."""
    if not isinstance(got, torch.Tensor) or got.shape == expected.shape:
        return None
    n, heads, tokens, _ = case.args[0][0].shape
    if tuple(got.shape) == (n, heads, tokens, tokens):
        return ("the heads were not averaged: yours is (N, heads, T, T); average each layer's "
                "map over dim 1 first, so that the rollout is one (T, T) matrix per image.")
    return (f"the rollout is one (T, T) matrix per image, (N, T, T) = {tuple(expected.shape)}; "
            f"yours is {tuple(got.shape)}.")
