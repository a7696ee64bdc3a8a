import pytest
import torch
import torchvision
from torch import nn

from course_utils.vit import (VIT_NAMES, PatchEmbedding, VisionTransformer, attention_rollout,
                              patchify, unpatchify, vit_config)


def small_vit(**kwargs):
    torch.manual_seed(0)
    options = dict(image_size=16, patch_size=4, in_channels=3, num_classes=5, dim=32, depth=2,
                   num_heads=4, mlp_ratio=2.0)
    return VisionTransformer(**{**options, **kwargs})


def test_logits_have_one_row_per_image():
    model = small_vit().eval()
    assert model.num_patches == 16
    assert model(torch.randn(3, 3, 16, 16)).shape == (3, 5)
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 5)


def test_patch_embedding_is_a_linear_map_of_the_flattened_patches():
    torch.manual_seed(0)
    embedding = PatchEmbedding(image_size=12, patch_size=4, in_channels=3, dim=10)
    images = torch.randn(2, 3, 12, 12)
    patches = nn.functional.unfold(images, kernel_size=4, stride=4).transpose(1, 2)  # (N, 9, 3*4*4)
    weight = embedding.projection.weight.reshape(10, -1)                            # (dim, 3*4*4)
    expected = patches @ weight.T + embedding.projection.bias                        # (N, 9, dim)
    with torch.no_grad():
        tokens = embedding(images)
        assert tokens.shape == (2, 9, 10)
        assert torch.allclose(tokens, expected, atol=1e-5)
        # patches are numbered row by row: token 1 is the top row's second patch
        second = images[:, :, 0:4, 4:8].reshape(2, -1) @ weight.T + embedding.projection.bias
        assert torch.allclose(tokens[:, 1], second, atol=1e-5)


def test_computes_what_torchvision_computes_with_the_same_weights():
    torch.manual_seed(0)
    theirs = torchvision.models.VisionTransformer(image_size=16, patch_size=4, num_layers=2,
                                                  num_heads=4, hidden_dim=32, mlp_dim=64,
                                                  num_classes=5).eval()
    with torch.no_grad():  # torchvision starts the class token and the head at 0
        for parameter in theirs.parameters():
            parameter.copy_(0.2 * torch.randn_like(parameter))
    ours = small_vit().eval()
    with torch.no_grad():
        ours.patch_embedding.projection.load_state_dict(theirs.conv_proj.state_dict())
        ours.class_token.copy_(theirs.class_token)
        ours.position_embedding.copy_(theirs.encoder.pos_embedding)
        for layer, their_layer in zip(ours.layers, theirs.encoder.layers):
            layer.norm1.load_state_dict(their_layer.ln_1.state_dict())
            layer.self_attention.load_from_torch(their_layer.self_attention)
            layer.norm2.load_state_dict(their_layer.ln_2.state_dict())
            layer.feed_forward[0].load_state_dict(their_layer.mlp[0].state_dict())
            layer.feed_forward[3].load_state_dict(their_layer.mlp[3].state_dict())
        ours.norm.load_state_dict(theirs.encoder.ln.state_dict())
        ours.head.load_state_dict(theirs.heads.head.state_dict())
    for module in ours.modules():
        if isinstance(module, nn.LayerNorm):
            module.eps = 1e-6  # torchvision's choice; the course keeps PyTorch's default
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(ours(images), theirs(images), atol=1e-4)


def test_attention_maps_have_one_map_per_layer():
    model = small_vit(depth=3).eval()
    images = torch.randn(2, 3, 16, 16)
    maps = model.attention_maps(images)
    assert len(maps) == 3
    for weights in maps:
        assert weights.shape == (2, 4, 17, 17) and not weights.requires_grad
        assert torch.allclose(weights.sum(-1), torch.ones(2, 4, 17), atol=1e-5)
    fused = small_vit(depth=3, fused=True).eval()
    fused.load_state_dict(model.state_dict())
    with torch.no_grad():  # the fused path gives the same logits, without the maps
        assert torch.allclose(fused(images), model(images), atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fused.attention_maps(images), maps))


def test_layers_are_pre_norm_with_a_gelu_feed_forward():
    model = small_vit()
    for layer in model.layers:
        assert layer.norm_first and isinstance(layer.feed_forward[1], nn.GELU)
        assert layer.feed_forward[0].out_features == 64  # dim 32 * mlp_ratio 2


def test_class_token_and_positions_start_small_and_learn():
    model = small_vit()
    for parameter in (model.class_token, model.position_embedding):
        assert parameter.abs().max() <= 0.04 and 0.01 < parameter.std() < 0.025
    model(torch.randn(2, 3, 16, 16)).logsumexp(-1).sum().backward()
    assert model.class_token.grad.abs().sum() > 0
    assert (model.position_embedding.grad.abs().sum(-1) > 0).all()  # every position gets a gradient


@pytest.mark.parametrize("name, builder", [("ViT-B/16", "vit_b_16"), ("ViT-B/32", "vit_b_32"),
                                           ("ViT-L/16", "vit_l_16"), ("ViT-L/32", "vit_l_32")])
def test_paper_sizes_have_torchvisions_parameter_counts(name, builder):
    with torch.device("meta"):  # shapes only: no memory, no time
        ours = VisionTransformer(**vit_config(name))
        theirs = getattr(torchvision.models, builder)()
    count = sum(parameter.numel() for parameter in ours.parameters())
    assert count == sum(parameter.numel() for parameter in theirs.parameters())
    if name == "ViT-B/16":
        assert count == 86_567_656 and ours.num_patches == 196
        assert ours.layers[0].feed_forward[0].out_features == 3072


def test_bad_sizes_and_names_get_clear_errors():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        PatchEmbedding(image_size=30, patch_size=16, in_channels=3, dim=8)
    model = small_vit()
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 16, 16\)"):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match="expected images"):
        model(torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match="ViT-B/16"):
        vit_config("B/16")
    assert len(VIT_NAMES) == 4


@pytest.mark.parametrize("channels, height, width, patch_size", [(3, 8, 8, 4), (1, 6, 6, 2),
                                                                 (3, 8, 12, 4), (2, 32, 32, 8)])
def test_patchify_matches_unfold_and_unpatchify_inverts_it(channels, height, width, patch_size):
    images = torch.randn(2, channels, height, width)
    patches = patchify(images, patch_size)
    unfolded = nn.functional.unfold(images, kernel_size=patch_size, stride=patch_size).transpose(1, 2)
    assert patches.shape == (2, (height // patch_size) * (width // patch_size),
                             channels * patch_size ** 2)
    assert torch.equal(patches, unfolded)
    if height == width:
        assert torch.equal(unpatchify(patches, patch_size), images)
        assert torch.equal(unpatchify(patchify(images[:1], patch_size), patch_size), images[:1])


def test_patchify_feeds_the_patch_embedding_as_a_linear_map():
    embedding = PatchEmbedding(image_size=16, patch_size=4, in_channels=3, dim=8)
    images = torch.randn(1, 3, 16, 16)
    weight = embedding.projection.weight.reshape(8, -1)
    with torch.no_grad():
        assert torch.allclose(patchify(images, 4) @ weight.T + embedding.projection.bias,
                              embedding(images), atol=1e-5)


def test_patchify_and_unpatchify_refuse_what_does_not_tile():
    with pytest.raises(ValueError, match="divisible"):
        patchify(torch.zeros(1, 3, 10, 10), 4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        patchify(torch.zeros(3, 8, 8), 4)
    with pytest.raises(ValueError, match="square grid"):
        unpatchify(torch.zeros(1, 6, 48), 4)


def test_rollout_of_one_layer_is_the_mixed_head_mean_and_rows_sum_to_one():
    model = small_vit(depth=3).eval()
    maps = model.attention_maps(torch.randn(2, 3, 16, 16))
    one = attention_rollout(maps[:1])
    expected = 0.5 * maps[0].mean(dim=1) + 0.5 * torch.eye(17)
    assert torch.allclose(one, expected, atol=1e-6)
    rollout = attention_rollout(maps)
    assert rollout.shape == (2, 17, 17)
    assert torch.allclose(rollout.sum(dim=-1), torch.ones(2, 17), atol=1e-5)
    top_on_the_left = attention_rollout(maps[1:2]) @ attention_rollout(maps[:1])
    assert torch.allclose(attention_rollout(maps[:2]), top_on_the_left, atol=1e-6)
    with pytest.raises(ValueError, match="at least one layer"):
        attention_rollout([])
