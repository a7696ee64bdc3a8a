import pytest
import torch
import torchvision
from torch import nn

from course_utils import complexity


def test_alexnet_matches_the_published_numbers():
    alexnet = torchvision.models.alexnet()
    assert complexity.count_parameters(alexnet) == 61_100_840
    # torchinfo reports 714.68 M mult-adds at 224x224; it counts bias additions too.
    macs = complexity.total_macs(alexnet, (1, 3, 224, 224), include_bias=True)
    assert round(macs / 1e6, 2) == 714.68


def test_alexnet_227_layer_table_reproduces_the_lecture_table():
    rows = {row.name: row for row in complexity.layer_table(torchvision.models.alexnet(),
                                                            (1, 3, 227, 227))}
    conv1 = rows["features.0"]
    assert conv1.output_shape == (1, 64, 56, 56)
    assert conv1.activation_bytes // 1024 == 784
    assert round(conv1.params / 1e3) == 23 and round(conv1.macs / 1e6) == 73
    fc6 = rows["classifier.1"]
    assert round((fc6.params - 4096) / 1e3) == 37_749  # the lecture table ignores biases
    assert "total" in complexity.format_table(list(rows.values()))


@pytest.mark.parametrize("build", [torchvision.models.resnet18, torchvision.models.vgg11,
                                   torchvision.models.mobilenet_v3_small])
def test_macs_agree_with_torch_flop_counter(build):
    from torch.utils.flop_counter import FlopCounterMode

    model = build().eval()
    shape = (1, 3, 96, 96)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(shape))
    assert complexity.total_macs(model, shape) == counter.get_total_flops() // 2


def test_grouped_convolution_and_linear_on_sequences():
    depthwise = nn.Conv2d(8, 8, kernel_size=3, padding=1, groups=8, bias=False)
    assert complexity.total_macs(depthwise, (1, 8, 10, 10)) == 8 * 10 * 10 * 9
    linear = nn.Linear(16, 4)
    assert complexity.total_macs(linear, (2, 5, 16)) == 2 * 5 * 4 * 16
    assert complexity.total_macs(linear, (2, 5, 16), include_bias=True) == 2 * 5 * 4 * 17


def test_table_restores_mode_and_rejects_unbatched_shapes():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout())
    model.train()
    complexity.layer_table(model, (1, 4))
    assert model.training
    with pytest.raises(ValueError, match="batch axis"):
        complexity.layer_table(model, (4,))
    assert complexity.count_parameters(model) == 20
    model[0].bias.requires_grad_(False)
    assert complexity.count_parameters(model, trainable_only=True) == 16


def test_parameters_outside_leaf_layers_are_counted_once():
    from course_utils.cnn import ConvNeXtBlock

    block = ConvNeXtBlock(8)
    rows = complexity.layer_table(block, (1, 8, 7, 7))
    assert sum(row.params for row in rows) == complexity.count_parameters(block)
    shared = nn.Linear(4, 4)
    twice = nn.Sequential(shared, nn.ReLU(), shared)
    rows = complexity.layer_table(twice, (1, 4))
    assert sum(row.params for row in rows) == 20 and sum(row.macs for row in rows) == 32
