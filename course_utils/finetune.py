"""Fine-tuning helpers, as taught in lesson 06: freeze a pretrained network, give it a new head,
and train its parts with different learning rates.

The recipes of the lesson, from cheapest to most flexible:

* linear probe: ``freeze(model)`` (only the head learns) after ``replace_head``;
* fine-tune the top layers: ``freeze(model, train=("head", "stages.5"))`` trains the head and
  the last residual block of the course's ResNet (``stages`` holds all its blocks in a row, so
  with the default ``depths=(2, 2, 2)`` the last stage is ``stages.4`` and ``stages.5``);
* fine-tune everything with a low learning rate for the pretrained part:
  ``torch.optim.AdamW(parameter_groups(model, lr=1e-3, backbone_lr=1e-4))``.

"The head" is the model's final classifier, found by name (:data:`HEAD_NAMES`): ``head`` in the
course's ResNet, VGGNet and VisionTransformer, ``fc`` in torchvision's ResNets, ``heads`` in its
ViTs, ``classifier`` in its VGGs, ConvNeXts and MobileNets. Everything else is "the backbone".
Parameter names are those of ``model.named_parameters()``, e.g. ``stages.2.conv1.weight``.
"""

import numbers

from torch import nn

HEAD_NAMES = ("head", "heads", "fc", "classifier")


def head_name(model: nn.Module) -> str:
    """The name of the attribute that holds the model's final classifier, e.g. ``"head"``."""
    children = dict(model.named_children())
    for name in HEAD_NAMES:
        if name in children:
            return name
    raise ValueError(f"{type(model).__name__} has no classifier under any of the usual names "
                     f"{HEAD_NAMES}; its top-level parts are {list(children)}. Name the prefixes "
                     f"to train yourself: freeze(model, train=(...)).")


def _final_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """``(parent, name, layer)``: the last ``nn.Linear`` of the head, and where it hangs."""
    name = head_name(model)
    head = getattr(model, name)
    if isinstance(head, nn.Linear):
        return model, name, head
    for child_name, child in reversed(list(head.named_children())):
        if isinstance(child, nn.Linear):
            return head, child_name, child
    raise ValueError(f"model.{name} is a {type(head).__name__} with no nn.Linear layer among its "
                     f"parts, so there is no final layer to replace")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Replace the final linear layer by a new, freshly initialised one with ``num_classes``
    outputs and the same inputs (features). The old layer's outputs scored the old task's
    classes, which mean nothing for the new task. Returns ``model``, changed in place.

    The new layer is trainable and on the old one's device, even if the model was frozen.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    parent, name, old = _final_linear(model)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                    device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, name, new)
    return model


def _matches(name: str, prefix: str) -> bool:
    """``stages.2`` matches ``stages.2.conv1.weight`` but not ``stages.20.conv1.weight``."""
    return name == prefix or name.startswith(prefix + ".")


def freeze(model: nn.Module, *, train=None) -> list[str]:
    """Stop gradients (``requires_grad = False``) for every parameter except those whose name
    starts with one of the prefixes in ``train``: a whole part, like ``"head"`` or
    ``"stages.2"``, never a partial name. By default only the head trains (a linear probe).

    Frozen weights do not change, but BatchNorm's running statistics still follow the new data
    in ``train()`` mode: see :func:`freeze_batchnorm_statistics`.

    Returns:
        the names of the parameters that are still trainable.
    """
    if train is None:
        train = (head_name(model),)
    elif isinstance(train, str):
        train = (train,)
    names = [name for name, _ in model.named_parameters()]
    unused = [prefix for prefix in train if not any(_matches(name, prefix) for name in names)]
    if unused:
        parts = [name for name, _ in model.named_children()]
        raise ValueError(f"No parameter of the model is named {unused[0]!r} or starts with "
                         f"'{unused[0]}.'; its top-level parts are {parts} (see "
                         f"model.named_parameters() for the full names)")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(any(_matches(name, prefix) for prefix in train))
    return trainable_parameters(model)


def unfreeze(model: nn.Module) -> None:
    """Make every parameter trainable again (``requires_grad = True``)."""
    for parameter in model.parameters():
        parameter.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> list[str]:
    """The names of the parameters that receive gradients, in ``named_parameters()`` order."""
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def count_trainable(model: nn.Module) -> int:
    """How many numbers the optimiser can change: the sizes of the trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _check_lr(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def parameter_groups(model: nn.Module, *, lr: float, head_lr: float | None = None,
                     backbone_lr: float | None = None) -> list[dict]:
    """Optimiser parameter groups: the backbone's and the head's trainable parameters, each with
    its learning rate (``lr`` unless ``backbone_lr`` / ``head_lr`` is given). Pass them on as
    ``torch.optim.AdamW(parameter_groups(model, lr=1e-3, backbone_lr=1e-4))``.

    Frozen parameters are left out, each trainable one appears once, and a group with nothing to
    train is dropped; every group has a ``"name"``, ``"backbone"`` or ``"head"``.
    """
    lr = _check_lr("lr", lr)
    head_lr = lr if head_lr is None else _check_lr("head_lr", head_lr)
    backbone_lr = lr if backbone_lr is None else _check_lr("backbone_lr", backbone_lr)
    head = head_name(model)
    head_params, backbone_params = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (head_params if _matches(name, head) else backbone_params).append(parameter)
    groups = [{"name": "backbone", "params": backbone_params, "lr": backbone_lr},
              {"name": "head", "params": head_params, "lr": head_lr}]
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("Every parameter of the model is frozen, so there is nothing to "
                         "optimise: call unfreeze(model) or freeze(model, train=...) first")
    return groups


def freeze_batchnorm_statistics(model: nn.Module) -> list[str]:
    """Put in ``eval()`` mode every BatchNorm layer none of whose parameters is trainable, so
    that it normalises with the running statistics from pretraining and stops updating them.

    Why: ``requires_grad = False`` stops the optimiser, not BatchNorm. In ``train()`` mode a
    BatchNorm layer normalises with the batch's own statistics and moves its running mean and
    variance towards them at every forward pass, so a "frozen" backbone still changes.

    ``model.train()`` puts these layers back in training mode, and the course's ``fit`` calls it
    at the start of every epoch; so call this after it, for instance in the step function::

        def step(model, batch):
            freeze_batchnorm_statistics(model)
            return classification_step(model, batch)

    Returns:
        the names of the BatchNorm layers now in eval mode.
    """
    frozen = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            if not any(parameter.requires_grad for parameter in module.parameters()):
                module.eval()
                frozen.append(name)
    return frozen
