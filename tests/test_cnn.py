import pytest
import torch
import torchvision
from torch import nn

from course_utils import cnn
from course_utils.complexity import count_parameters


@pytest.mark.parametrize("model", [
    cnn.VGGNet(num_classes=26),
    cnn.ResNet(num_classes=26),
    cnn.ResNet(num_classes=26, squeeze_excite=True),
    cnn.ResNet(num_classes=26, block=cnn.Bottleneck, widths=(8, 16, 32)),
    cnn.ConvNeXt(num_classes=26),
], ids=["vgg", "resnet", "resnet-se", "resnet-bottleneck", "convnext"])
def test_models_map_images_to_logits_and_train(model):
    images = torch.randn(4, 3, 32, 32)
    logits = model(images)
    assert logits.shape == (4, 26)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert model(images[:1]).shape == (1, 26)  # a batch of one in eval mode


def test_basic_block_shortcuts():
    same = cnn.BasicBlock(16, 16)
    assert isinstance(same.shortcut, nn.Identity)
    down = cnn.BasicBlock(16, 32, stride=2)
    assert down(torch.randn(2, 16, 8, 8)).shape == (2, 32, 4, 4)
    plain = cnn.BasicBlock(16, 16, residual=False)
    assert count_parameters(plain) == count_parameters(same)


def test_bottleneck_matches_torchvision_parameter_count():
    ours = cnn.Bottleneck(256, 64)
    theirs = torchvision.models.resnet.Bottleneck(256, 64)
    assert count_parameters(ours) == count_parameters(theirs)
    assert ours(torch.randn(1, 256, 7, 7)).shape == (1, 256, 7, 7)


def test_squeeze_excite_gates_channels():
    block = cnn.SqueezeExcite(8, reduction=4)
    assert count_parameters(block) == 8 * 2 + 2 + 2 * 8 + 8
    x = torch.randn(2, 8, 5, 5)
    out = block(x)
    ratio = out / x
    # one gate per sample and channel, in (0, 1), shared by all positions
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert (ratio > 0).all() and (ratio < 1).all()


def test_convnext_block_matches_torchvision_parameter_count():
    ours = cnn.ConvNeXtBlock(96)
    theirs = torchvision.models.convnext.CNBlock(96, layer_scale=1e-6, stochastic_depth_prob=0.0)
    assert count_parameters(ours) == count_parameters(theirs)
    x = torch.randn(2, 96, 7, 7)
    assert torch.allclose(ours(x), x, atol=1e-3)  # layer scale 1e-6: starts near the identity


def test_layer_norm_2d_normalises_channels_per_position():
    x = torch.randn(2, 6, 3, 3) * 5 + 1
    out = cnn.LayerNorm2d(6)(x)
    assert torch.allclose(out.mean(dim=1), torch.zeros(2, 3, 3), atol=1e-5)


def test_plain_net_and_its_residual_twin():
    plain = cnn.PlainNet(num_classes=10, depth=9)
    residual = cnn.PlainNet(num_classes=10, depth=9, residual=True)
    assert count_parameters(plain) == count_parameters(residual)
    assert plain(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    with pytest.raises(ValueError, match="odd number"):
        cnn.PlainNet(num_classes=10, depth=8)


def test_plain_blocks_have_no_unused_projection():
    plain = cnn.BasicBlock(16, 32, stride=2, residual=False)
    assert isinstance(plain.shortcut, nn.Identity)
    assert isinstance(cnn.BasicBlock(16, 32, stride=2).shortcut, nn.Sequential)
