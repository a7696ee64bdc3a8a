import pytest
import torch
from torch import nn
from torch.nn import functional as F

from course_utils import vit
from course_utils.exercises import lesson05, lesson05_patches, lesson05_tokens

from exercise_attempts import (assert_each_slip_named_alone,  # tests/exercise_attempts.py
                               assert_undone_wrong_and_right)


def patchify_without_permute(images, patch_size):
    n, c, h, w = images.shape
    return images.reshape(n, (h // patch_size) * (w // patch_size), c * patch_size ** 2)


def unpatchify_column_by_column(patches, patch_size):
    n, count, size = patches.shape
    side, c = int(count ** 0.5), size // patch_size ** 2
    grid = patches.reshape(n, side, side, c, patch_size, patch_size)   # (N, columns, rows, C, p, p)
    return grid.permute(0, 3, 2, 4, 1, 5).reshape(n, c, side * patch_size, side * patch_size)


def conv_with_stride_one(linear, patch_size, in_channels):
    return nn.Conv2d(in_channels, linear.out_features, kernel_size=patch_size)


def class_token_at_the_end(patch_tokens, class_token, position_embedding):
    class_tokens = class_token.expand(len(patch_tokens), -1, -1)
    return torch.cat([patch_tokens, class_tokens], dim=1) + position_embedding


def rollout_without_residual(maps):
    rollout = maps[0].mean(dim=1)
    for weights in maps[1:]:
        rollout = weights.mean(dim=1) @ rollout
    return rollout


CASES = [
    (lesson05.check_patchify, lesson05.patchify, patchify_without_permute, "strip of whole image rows"),
    (lesson05.check_unpatchify, lesson05.unpatchify, unpatchify_column_by_column,
     "placed column by column"),
    (lesson05.check_conv_from_linear, lesson05.conv_from_linear, conv_with_stride_one,
     "5 x 5 = 25 outputs instead of its 2 x 2 = 4 patches"),
    (lesson05.check_class_token_and_positions, lesson05.add_class_token_and_positions,
     class_token_at_the_end, "yours is at the end"),
    (lesson05.check_attention_rollout, lesson05.attention_rollout, rollout_without_residual,
     "residual connection is missing"),
]


@pytest.mark.parametrize("check, reference, wrong, hint", CASES, ids=[c[1].__name__ for c in CASES])
def test_undone_wrong_and_right(check, reference, wrong, hint, capsys):
    assert_undone_wrong_and_right(check, reference, wrong, hint, capsys)


# ---- one regression test per slip --------------------------------------------------------------

SLIP_LISTS = {
    "patchify": (lesson05.check_patchify, lesson05.PATCHIFY_SLIPS),
    "unpatchify": (lesson05.check_unpatchify, lesson05.UNPATCHIFY_SLIPS),
    "conv from linear": (lesson05.check_conv_from_linear, lesson05.CONV_SLIPS),
    "class token": (lesson05.check_class_token_and_positions, lesson05.TOKEN_SLIPS),
    "rollout": (lesson05.check_attention_rollout, lesson05.ROLLOUT_SLIPS),
}


@pytest.mark.parametrize("exercise", SLIP_LISTS)
def test_each_listed_slip_is_named_alone(exercise, capsys):
    assert_each_slip_named_alone(*SLIP_LISTS[exercise], capsys)


def test_unpatchify_size_slips_quote_the_case(capsys):
    lesson05.check_unpatchify(lambda patches, p: patches.reshape(
        len(patches), 2, 2, 3, p, p).permute(0, 3, 1, 4, 2, 5).reshape(len(patches), 3, 2, 2))
    assert "sqrt(4) * 4 = 8 pixels, not sqrt(P) = 2" in capsys.readouterr().out
    lesson05.check_unpatchify(lambda patches, p: patches.reshape(
        len(patches), 2, 2, patches.shape[2] // p, p, p))
    assert "C = 48 / (4 * 4) = 3; dividing by p once gives 12" in capsys.readouterr().out


def test_class_token_error_slips_quote_the_case(capsys):
    def positions_first(patch_tokens, class_token, position_embedding):
        patch_tokens = patch_tokens + position_embedding
        return torch.cat([class_token.expand(len(patch_tokens), -1, -1), patch_tokens], dim=1)

    def not_expanded(patch_tokens, class_token, position_embedding):
        return torch.cat([class_token, patch_tokens], dim=1) + position_embedding

    lesson05.check_class_token_and_positions(positions_first)
    out = capsys.readouterr().out
    assert "raised RuntimeError" in out and "1 + P = 5 rows" in out and "4 patch tokens alone" in out
    lesson05.check_class_token_and_positions(not_expanded)
    assert "expand it to (2, 1, D)" in capsys.readouterr().out


# ---- exercise 1: patchify ----------------------------------------------------------------------

def test_patchify_by_unfold_passes_and_without_its_transpose_is_named(capsys):
    def by_unfold(images, patch_size):
        return F.unfold(images, patch_size, stride=patch_size).transpose(1, 2)

    assert lesson05.check_patchify(by_unfold) is by_unfold
    assert lesson05.check_patchify(lambda x, p: F.unfold(x, p, stride=p)) is lesson05.patchify
    out = capsys.readouterr().out
    assert "the last two axes are swapped: yours is (N, C * p * p, P) = (2, 48, 4)" in out
    assert "keepdim" not in out  # the general shape advice is left out when a diagnosis explains it


def test_patchify_wrong_shape_is_told_with_the_numbers(capsys):
    def grid_kept(images, patch_size):  # (N, rows, columns, C * p * p): not flattened to P
        n, c, h, w = images.shape
        patches = images.reshape(n, c, h // patch_size, patch_size, w // patch_size, patch_size)
        return patches.permute(0, 2, 4, 1, 3, 5).reshape(n, h // patch_size, w // patch_size, -1)

    lesson05.check_patchify(grid_kept)
    out = capsys.readouterr().out
    assert ("the answer is (N, P, C * p * p) = (2, 4, 48): P = (8 / 4) * (8 / 4) = 4 patches per "
            "image, each of C * p * p = 3 * 4 * 4 = 48 values; yours is (2, 2, 2, 48)") in out


def test_patchify_reference_layout():
    images = lesson05_patches._numbered_images(1, 2, 4, 6)
    patches = lesson05.patchify(images, 2)
    assert patches.shape == (1, 6, 8)
    assert torch.equal(patches[0, 1], images[0, :, 0:2, 2:4].flatten())   # row by row
    assert torch.equal(patches[0, 3], images[0, :, 2:4, 0:2].flatten())


# ---- exercise 2: unpatchify --------------------------------------------------------------------

def test_unpatchify_undoes_patchify():
    images = torch.randn(3, 3, 12, 12)
    assert torch.equal(lesson05.unpatchify(lesson05.patchify(images, 4), 4), images)


def test_unpatchify_wrong_shape_is_told_with_the_numbers(capsys):
    lesson05.check_unpatchify(lambda patches, p: vit.unpatchify(patches, p).flatten(2))
    out = capsys.readouterr().out
    assert "the answer is (N, C, H, W) = (2, 3, 8, 8): 4 patches form a 2 x 2 grid" in out
    assert "yours is (2, 3, 64)" in out


# ---- exercise 3: the patch embedding as a convolution ------------------------------------------

def test_conv_from_linear_computes_patch_embedding():
    """A PatchEmbedding's convolution, read as a linear map of flattened patches, gives it back."""
    torch.manual_seed(0)
    embedding = vit.PatchEmbedding(image_size=8, patch_size=4, in_channels=3, dim=6)
    linear = nn.Linear(48, 6)
    with torch.no_grad():
        linear.weight.copy_(embedding.projection.weight.flatten(1))
        linear.bias.copy_(embedding.projection.bias)
    images = torch.randn(2, 3, 8, 8)
    conv = lesson05.conv_from_linear(linear, 4, 3)
    assert (conv.kernel_size, conv.stride) == ((4, 4), (4, 4))
    assert torch.equal(conv.weight, embedding.projection.weight)
    with torch.no_grad():
        tokens = embedding(images)
        assert torch.allclose(tokens, linear(lesson05.patchify(images, 4)), atol=1e-6)
        assert torch.allclose(tokens, conv(images).flatten(2).transpose(1, 2), atol=1e-6)


def _conv_with(linear, patch_size, in_channels, *, bias=True, copy_bias=True):
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size=patch_size, stride=patch_size,
                     bias=bias)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view_as(conv.weight))
        if bias and copy_bias:
            conv.bias.copy_(linear.bias)
    return conv


def test_conv_bias_mistakes_are_named_whatever_the_random_bias(capsys):
    def no_bias(linear, patch_size, in_channels):
        return _conv_with(linear, patch_size, in_channels, bias=False)

    def random_bias(linear, patch_size, in_channels):
        torch.rand(7)  # another draw first: a slip that re-creates the bias could not match it
        return _conv_with(linear, patch_size, in_channels, copy_bias=False)

    assert lesson05.check_conv_from_linear(no_bias) is lesson05.conv_from_linear
    assert lesson05_patches.NO_BIAS in capsys.readouterr().out
    assert lesson05.check_conv_from_linear(random_bias) is lesson05.conv_from_linear
    assert lesson05_patches.BIAS_NOT_COPIED in capsys.readouterr().out


@pytest.mark.parametrize("build, message, hint", [
    (lambda linear, p, c: None, "returned None, not an nn.Conv2d", "return statement missing"),
    (lambda linear, p, c: linear, "returned a Linear model, not an nn.Conv2d", "build an nn.Conv2d"),
    (lambda linear, p, c: nn.Conv2d(c, linear.in_features, p, stride=p),
     "maps 3 channel(s) to 48", "linear layer's 6 outputs"),
    (lambda linear, p, c: nn.Conv2d(c, linear.out_features, 3, stride=p),
     "kernel is 3 x 3", "a 4 x 4 kernel"),
    (lambda linear, p, c: nn.Conv2d(c, linear.out_features, p, stride=p, padding=1),
     "pads the images (padding=(1, 1))", "straddle the patches' borders"),
    (lambda linear, p, c: nn.Conv2d(c, linear.out_features, p, stride=1),
     "stride is (1, 1), so its 4 x 4 windows overlap", "the stride is the patch size"),
], ids=["None", "the linear layer", "channels", "kernel", "padding", "stride"])
def test_conv_that_is_not_a_patch_convolution_is_told_what_is_wrong(build, message, hint, capsys):
    assert lesson05.check_conv_from_linear(build) is lesson05.conv_from_linear
    out = capsys.readouterr().out
    assert "\N{CROSS MARK}" in out and message in out and hint in out


def test_conv_check_leaves_the_random_numbers_and_its_cases_alone(capsys):
    def edits_the_linear_layer(linear, patch_size, in_channels):
        conv = lesson05.conv_from_linear(linear, patch_size, in_channels)
        with torch.no_grad():
            linear.weight.zero_()
        return conv

    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    lesson05.check_conv_from_linear(lesson05.CONV_SLIPS[-1].fn)
    assert torch.equal(torch.rand(3), expected_next)
    assert lesson05.check_conv_from_linear(edits_the_linear_layer) is edits_the_linear_layer

    def mine(linear, patch_size, in_channels):  # run after the attempt above: the cases are intact
        return lesson05.conv_from_linear(linear, patch_size, in_channels)

    assert lesson05.check_conv_from_linear(mine) is mine
    assert capsys.readouterr().out.count("\N{WHITE HEAVY CHECK MARK}") == 2


# ---- exercise 4: the class token and the position embeddings -----------------------------------

def test_class_token_reference_matches_the_vision_transformer():
    torch.manual_seed(0)
    model = vit.VisionTransformer(image_size=8, patch_size=4, in_channels=3, num_classes=5, dim=8,
                                  depth=1, num_heads=2, dropout=0.0)
    images = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        ours = lesson05.add_class_token_and_positions(model.patch_embedding(images),
                                                      model.class_token, model.position_embedding)
        assert torch.equal(ours, model._tokens(images))


def test_class_token_added_instead_of_joined_is_named(capsys):
    def class_token_added(patch_tokens, class_token, position_embedding):
        return patch_tokens + class_token + position_embedding[:, 1:]

    lesson05.check_class_token_and_positions(class_token_added)
    out = capsys.readouterr().out
    assert "yours has 4 tokens per image, as many as there are patches" in out
    assert "1 + P = 5 tokens" in out and "keepdim" not in out


# ---- exercise 5: attention rollout -------------------------------------------------------------

def _rollout_inputs():
    return [lesson05_tokens._attention_maps(1, 2, 2, 5, 0), lesson05_tokens._attention_maps(3, 2, 2, 5, 1),
            lesson05_tokens._attention_maps(4, 1, 3, 4, 2)]


@pytest.mark.parametrize("slip", lesson05.ROLLOUT_SLIPS, ids=lambda slip: slip.name)
def test_each_rollout_slip_differs_from_the_reference_on_a_case(slip):
    differs = []
    for maps in _rollout_inputs():
        expected, slipped = lesson05.attention_rollout(maps), slip.fn(maps)
        differs.append(slipped.shape != expected.shape
                       or not torch.allclose(slipped, expected, atol=1e-5))
    assert any(differs)


def test_rollout_without_renormalising_or_with_a_plus_i_renormalised_passes(capsys):
    def not_renormalised(maps):
        rollout = torch.eye(maps[0].shape[-1], device=maps[0].device)
        for weights in maps:
            rollout = (0.5 * weights.mean(dim=1) + 0.5 * torch.eye(weights.shape[-1], device=weights.device)) @ rollout
        return rollout

    def a_plus_i_renormalised(maps):
        rollout = torch.eye(maps[0].shape[-1], device=maps[0].device)
        for weights in maps:
            mixed = weights.mean(dim=1) + torch.eye(weights.shape[-1], device=weights.device)
            rollout = mixed / mixed.sum(dim=-1, keepdim=True) @ rollout
        return rollout

    assert lesson05.check_attention_rollout(not_renormalised) is not_renormalised
    assert lesson05.check_attention_rollout(a_plus_i_renormalised) is a_plus_i_renormalised
    assert capsys.readouterr().out.count("\N{WHITE HEAVY CHECK MARK}") == 2


def test_rollout_with_the_heads_kept_is_named(capsys):
    def heads_kept(maps):
        rollout = None
        for weights in maps:
            mixed = 0.5 * weights + 0.5 * torch.eye(weights.shape[-1], device=weights.device)
            rollout = mixed if rollout is None else mixed @ rollout
        return rollout

    lesson05.check_attention_rollout(heads_kept)
    out = capsys.readouterr().out
    assert "the heads were not averaged: yours is (N, heads, T, T)" in out and "keepdim" not in out


def test_rollout_reference_on_a_vision_transformers_maps():
    torch.manual_seed(0)
    model = vit.VisionTransformer(image_size=8, patch_size=4, in_channels=1, num_classes=3, dim=8,
                                  depth=2, num_heads=2).eval()
    rollout = lesson05.attention_rollout(model.attention_maps(torch.randn(2, 1, 8, 8)))
    assert rollout.shape == (2, 5, 5)
    assert torch.allclose(rollout.sum(dim=-1), torch.ones(2, 5), atol=1e-5)


def test_an_identity_made_on_the_cpu_is_caught_as_on_a_gpu(capsys):
    def identity_on_the_cpu(maps):
        rollout = None
        for weights in maps:
            mixed = 0.5 * weights.mean(dim=1) + 0.5 * torch.eye(weights.shape[-1])
            rollout = mixed if rollout is None else mixed @ rollout
        return rollout

    assert lesson05.check_attention_rollout(identity_on_the_cpu) is lesson05.attention_rollout
    out = capsys.readouterr().out
    assert "WRONG" in out and "device=weights.device" in out and "PASSED" not in out


def test_a_weight_copied_without_reshaping_is_named(capsys):
    def unreshaped(linear, patch_size, in_channels):
        conv = nn.Conv2d(in_channels, linear.out_features, patch_size, stride=patch_size)
        with torch.no_grad():
            conv.weight.copy_(linear.weight)
            conv.bias.copy_(linear.bias)
        return conv

    lesson05.check_conv_from_linear(unreshaped)
    assert lesson05_patches.WEIGHT_NOT_RESHAPED in capsys.readouterr().out


def test_a_wrong_convolution_is_not_blamed_on_the_learners_code(capsys):
    def stride_one(linear, patch_size, in_channels):
        return nn.Conv2d(in_channels, linear.out_features, patch_size)

    lesson05.check_conv_from_linear(stride_one)
    out = capsys.readouterr().out
    assert "not the patch convolution" in out and "raised" not in out
