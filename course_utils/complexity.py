"""What a network costs: parameters, multiply-adds and activation memory, layer by layer.

``layer_table(model, input_shape)`` runs one forward pass with hooks on every leaf module and
records, for each layer, its output shape, its own parameters, the multiply-accumulate
operations (MACs) it performs and the memory its output occupies.

About the units. One multiply-add (``a * b + c``) is one MAC. Lecture notes and torchinfo
report MACs ("mult-adds", often loosely called FLOPs); PyTorch's ``FlopCounterMode`` and most
papers since 2020 count 2 FLOPs per MAC. We count MACs of convolutions and linear layers, the
operations that dominate a CNN; normalisation, activation and pooling layers cost a few
operations per element and are listed with 0 MACs, as torchinfo does. Products computed inside
a module's ``forward`` (attention's scores ``q @ k.T``, for one) belong to no leaf layer and are
not counted here: ``torch.utils.flop_counter.FlopCounterMode`` counts every operation.
"""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerStats:
    """One row of a layer table."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's first parameter (or buffer) lives; the CPU for a model without any."""
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


def _macs(module: nn.Module, output: torch.Tensor, include_bias: bool) -> int:
    """Multiply-adds of one call of a leaf module; a bias adds one operation per output."""
    bias = output.numel() if include_bias and getattr(module, "bias", None) is not None else 0
    if isinstance(module, nn.modules.conv._ConvNd):
        kernel_volume = 1
        for size in module.kernel_size:
            kernel_volume *= size
        return output.numel() * (module.in_channels // module.groups) * kernel_volume + bias
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features + bias
    return 0


def layer_table(model: nn.Module, input_shape: tuple, *, include_bias: bool = False,
                dtype: torch.dtype = torch.float32,
                device: torch.device | str | None = None) -> list[LayerStats]:
    """Per-layer statistics of ``model`` for one input of ``input_shape`` (batch included).

    The input is created on ``device``, by default the device of the model's parameters (so a
    model on the GPU, or built on the "meta" device for its shapes only, works as it is).

    ``include_bias`` also counts the bias additions as MACs, as torchinfo does.
    Example: ``layer_table(torchvision.models.alexnet(), (1, 3, 224, 224))``.
    Layers called several times appear once per call, their parameters counted at the first.
    Parameters held directly by container modules (e.g. a layer-scale vector or a class token)
    get a row of their own, so the parameters of the table always add up to the model's.
    """
    if len(input_shape) < 2:
        raise ValueError(f"input_shape must include the batch axis, e.g. (1, 3, 224, 224); "
                         f"got {input_shape}")
    if device is None:
        device = _device_of(model)
    rows, handles, counted = [], [], set()
    names = {module: name for name, module in model.named_modules()}

    def own_parameters(module) -> int:
        if module in counted:
            return 0
        counted.add(module)
        return sum(p.numel() for p in module.parameters(recurse=False))

    def record(module, inputs, output):
        if not isinstance(output, torch.Tensor):
            output = output[0]
        own_params = own_parameters(module)
        rows.append(LayerStats(name=names.get(module, "?"), kind=type(module).__name__,
                               output_shape=tuple(output.shape), params=own_params,
                               macs=_macs(module, output, include_bias),
                               activation_bytes=output.numel() * output.element_size()))

    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(record))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape, dtype=dtype, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    for module in model.modules():  # parameters no hook saw: containers' own, unused layers
        params = own_parameters(module)
        if params:
            rows.append(LayerStats(name=names[module] or "(model)", kind="(parameters)",
                                   output_shape=(), params=params, macs=0, activation_bytes=0))
    return rows


def total_macs(model: nn.Module, input_shape: tuple, *, include_bias: bool = False) -> int:
    """Multiply-adds of one forward pass (sum of :func:`layer_table`)."""
    return sum(row.macs for row in layer_table(model, input_shape, include_bias=include_bias))


def format_table(rows: list[LayerStats], *, skip_empty: bool = True) -> str:
    """A text table: layer, output shape, memory (KB), parameters (k), MACs (M)."""
    lines = [f"{'layer':<22}{'kind':<18}{'output shape':<22}{'memory KB':>10}"
             f"{'params k':>11}{'MACs M':>10}"]
    for row in rows:
        if skip_empty and row.kind in ("ReLU", "Dropout", "Identity"):
            continue
        shape = "x".join(str(size) for size in row.output_shape[1:])
        lines.append(f"{row.name:<22}{row.kind:<18}{shape:<22}{row.activation_bytes / 1024:>10.0f}"
                     f"{row.params / 1e3:>11,.1f}{row.macs / 1e6:>10.1f}")
    total_params = sum(row.params for row in rows)
    lines.append(f"{'total':<62}{sum(r.activation_bytes for r in rows) / 1024:>10.0f}"
                 f"{total_params / 1e3:>11,.1f}{sum(r.macs for r in rows) / 1e6:>10.1f}")
    return "\n".join(lines)
