"""Tests of the fine-tuning helpers (course_utils.finetune): freezing freezes exactly what it
says, new heads fit the old features, parameter groups cover every trainable parameter once."""

import pytest
import torch
import torchvision
from torch import nn

from course_utils import cnn
from course_utils.finetune import (count_trainable, freeze, freeze_batchnorm_statistics,
                                   head_name, parameter_groups, replace_head,
                                   trainable_parameters, unfreeze)
from course_utils.vit import VisionTransformer


def small_vit(num_classes=10):
    return VisionTransformer(image_size=32, patch_size=8, num_classes=num_classes, dim=32,
                             depth=1, num_heads=2)


def torchvision_vit(num_classes=10):
    return torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1,
                                                num_heads=2, hidden_dim=32, mlp_dim=64,
                                                num_classes=num_classes)


MODELS = {  # name: (build(num_classes), the head's attribute)
    "resnet": (lambda k: cnn.ResNet(num_classes=k), "head"),
    "vgg": (lambda k: cnn.VGGNet(num_classes=k), "head"),
    "vit": (small_vit, "head"),
    "torchvision-resnet18": (lambda k: torchvision.models.resnet18(weights=None, num_classes=k),
                             "fc"),
    "torchvision-vit": (torchvision_vit, "heads"),
    "torchvision-mobilenet": (
        lambda k: torchvision.models.mobilenet_v3_small(weights=None, num_classes=k),
        "classifier"),
}


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every parameter and buffer (BatchNorm's running statistics included)."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(images), labels).backward()
    optimizer.step()


@pytest.mark.parametrize("name", MODELS)
def test_head_name(name):
    build, expected = MODELS[name]
    assert head_name(build(10)) == expected


def test_freeze_leaves_exactly_the_head_trainable():
    model = cnn.ResNet(num_classes=10)
    trainable = freeze(model)
    assert trainable == trainable_parameters(model) == ["head.weight", "head.bias"]
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == name.startswith("head."), name
    assert count_trainable(model) == 64 * 10 + 10


def test_a_step_changes_only_the_head_but_batchnorm_statistics_move():
    torch.manual_seed(0)
    model = cnn.ResNet(num_classes=10)
    freeze(model)
    before = _weights(model)
    model.train()
    _train_step(model, torch.optim.AdamW(parameter_groups(model, lr=1e-2), weight_decay=0.1))
    after = _weights(model)
    parameters = dict(model.named_parameters())
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert {name for name in changed if name in parameters} == {"head.weight", "head.bias"}
    # requires_grad=False stops the optimiser, not BatchNorm: in train() mode it still updates
    # its running statistics from the batch.
    assert "stem.1.running_mean" in changed and "stages.0.bn1.running_var" in changed


def test_frozen_batchnorm_statistics_stay_put():
    torch.manual_seed(0)
    model = cnn.ResNet(num_classes=10)
    freeze(model)
    before = _weights(model)
    model.train()
    frozen = freeze_batchnorm_statistics(model)  # after train(), which would undo it
    assert "stem.1" in frozen and "stages.5.bn2" in frozen
    # Every parameter is frozen but the head: the optimiser may take all of them.
    _train_step(model, torch.optim.SGD(model.parameters(), lr=0.1))
    after = _weights(model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"head.weight", "head.bias"}
    frozen_parameters = [p for name, p in model.named_parameters() if not name.startswith("head")]
    assert all(parameter.grad is None for parameter in frozen_parameters)


def test_batchnorm_of_trainable_parts_keeps_learning_its_statistics():
    model = cnn.ResNet(num_classes=10)
    freeze(model, train=("head", "stages.5"))
    model.train()
    frozen = freeze_batchnorm_statistics(model)
    batchnorms = {name: module for name, module in model.named_modules()
                  if isinstance(module, nn.BatchNorm2d)}
    assert set(frozen) == {name for name in batchnorms if not name.startswith("stages.5")}
    assert all(batchnorms[name].training == name.startswith("stages.5") for name in batchnorms)
    model.train()  # undoes it, as documented
    assert all(module.training for module in batchnorms.values())


def test_train_prefixes_unfreeze_the_named_parts_too():
    model = cnn.ResNet(num_classes=10)  # depths (2, 2, 2): the last stage is blocks 4 and 5
    trainable = freeze(model, train=("head", "stages.4", "stages.5"))
    expected = [name for name, _ in model.named_parameters()
                if name.startswith(("head.", "stages.4.", "stages.5."))]
    assert trainable == expected and "stages.4.shortcut.0.weight" in trainable
    assert not any(name.startswith(("stem.", "stages.3.")) for name in trainable)
    assert freeze(model, train="stages.2") == [name for name, _ in model.named_parameters()
                                               if name.startswith("stages.2.")]


def test_a_prefix_is_a_whole_part_not_part_of_a_name():
    model = nn.Module()
    model.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(12)])
    model.head = nn.Linear(2, 3)
    assert freeze(model, train=("layers.1",)) == ["layers.1.weight", "layers.1.bias"]


def test_freeze_everything_then_unfreeze():
    model = cnn.VGGNet(num_classes=10)
    assert freeze(model, train=()) == [] and count_trainable(model) == 0
    unfreeze(model)
    assert all(parameter.requires_grad for parameter in model.parameters())
    assert count_trainable(model) == sum(parameter.numel() for parameter in model.parameters())


@pytest.mark.parametrize("name", MODELS)
def test_replace_head_keeps_the_features_and_changes_the_classes(name):
    build, attribute = MODELS[name]
    model = build(10)
    freeze(model)
    old = [module for module in model.modules() if isinstance(module, nn.Linear)][-1]
    assert replace_head(model, 3) is model
    new = [module for module in getattr(model, attribute).modules()
           if isinstance(module, nn.Linear)][-1]
    assert new is not old and (new.in_features, new.out_features) == (old.in_features, 3)
    assert all(parameter.requires_grad for parameter in new.parameters())
    model.eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_replace_head_starts_afresh_on_the_old_device_and_dtype():
    model = cnn.ResNet(num_classes=10).double()
    old = model.head
    replace_head(model, 10)
    assert model.head is not old and not torch.equal(model.head.weight, old.weight.double())
    assert model.head.weight.dtype == torch.float64


def test_parameter_groups_cover_every_trainable_parameter_once():
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    freeze(model, train=("fc", "layer4"))
    groups = parameter_groups(model, lr=1e-3, backbone_lr=1e-5)
    assert [(group["name"], group["lr"]) for group in groups] == [("backbone", 1e-5),
                                                                  ("head", 1e-3)]
    ids = [id(parameter) for group in groups for parameter in group["params"]]
    trainable = [id(parameter) for parameter in model.parameters() if parameter.requires_grad]
    assert len(ids) == len(set(ids)) and set(ids) == set(trainable)
    assert {id(parameter) for parameter in groups[1]["params"]} == {id(model.fc.weight),
                                                                    id(model.fc.bias)}
    optimizer = torch.optim.AdamW(groups)
    assert [group["lr"] for group in optimizer.param_groups] == [1e-5, 1e-3]


def test_parameter_groups_default_learning_rates_and_empty_groups():
    model = cnn.ResNet(num_classes=10)
    assert [group["lr"] for group in parameter_groups(model, lr=0.01)] == [0.01, 0.01]
    assert [group["lr"] for group in parameter_groups(model, lr=0.01, head_lr=0.1)] == [0.01, 0.1]
    freeze(model)  # a linear probe: no backbone group
    assert [group["name"] for group in parameter_groups(model, lr=0.01)] == ["head"]


def test_clear_errors():
    with pytest.raises(ValueError, match=r"no classifier .*'0', '1'"):
        head_name(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    model = cnn.ResNet(num_classes=10)
    with pytest.raises(ValueError, match="'stage.2'.*'stem', 'stages', 'head'"):
        freeze(model, train=("head", "stage.2"))
    assert count_trainable(model) == sum(p.numel() for p in model.parameters())  # untouched
    with pytest.raises(ValueError, match="num_classes must be a positive integer"):
        replace_head(model, 0)
    for kwargs in (dict(lr=0), dict(lr=-1e-3), dict(lr=1e-3, backbone_lr="small")):
        with pytest.raises(ValueError, match="must be a positive number"):
            parameter_groups(model, **kwargs)
    freeze(model, train=())
    with pytest.raises(ValueError, match="Every parameter of the model is frozen"):
        parameter_groups(model, lr=1e-3)
    model.head = nn.Identity()
    with pytest.raises(ValueError, match="no nn.Linear layer"):
        replace_head(model, 10)
