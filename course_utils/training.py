"""One training loop for every model of the course, ``fit(...) -> history``, and evaluation.

The loop is the one lesson 01 writes by hand, packaged: ``train()``, then per batch
``zero_grad``, forward and loss, ``backward``, ``step``; evaluation under ``torch.no_grad()``
in ``eval()`` mode. Like minGPT's trainer, it knows nothing about the model: a *step function*
``step(model, batch)`` turns a batch into the mean loss over the batch, or into
``(loss, metrics)`` with a dict of batch means. The default, :func:`classification_step`, is a
classifier's (cross-entropy and accuracy); a translator, a ViT or a self-supervised pair of
networks passes its own, and the loop stays the same.

Metrics are weighted by the number of samples in each batch (the leading size of the batch's
first tensor), so a short last batch counts for what it is: a mean of batch means would
over-weight it. The sums stay on the device during an epoch and are read once at its end,
because reading a number with ``.item()`` makes the host wait for the GPU.

Every helper runs on the lesson's device (``cfg.device``, from :func:`course_utils.config.setup`)
unless given another, and refuses a model whose parameters sit elsewhere: moving it silently
would hide a model left on the CPU of a GPU machine.
"""

import contextlib
import math
import time
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from course_utils import config


def resolve_device(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """The device to run on (``device``, else the lesson's ``cfg.device``), after checking that
    every parameter and buffer of ``model`` is already there."""
    device = torch.device(device) if device is not None else config.current().device
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if not _same_device(tensor.device, device):
            raise ValueError(f"{name} of the model is on {tensor.device} but this runs on {device}: "
                             f"move the model first, e.g. model = model.to(cfg.device)")
    return device


def _same_device(a: torch.device, b: torch.device) -> bool:
    """'cuda' and 'cuda:0' are the same device when 0 is the current one."""
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = torch.cuda.current_device() if a.type == "cuda" else 0
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index


def _amp_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """Mixed precision on CUDA only (on the CPU and MPS it would be slower or unsupported):
    bfloat16 where the GPU has it, else float16, which needs gradient scaling."""
    if not amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _to_device(batch, device: torch.device):
    """The batch with every tensor in it (inside tuples, lists and dicts) moved to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to_device(item, device) for key, item in batch.items()}
    return batch


def _first_tensor(batch) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    items = batch.values() if isinstance(batch, dict) else batch if isinstance(batch, (tuple, list)) else ()
    for item in items:
        tensor = _first_tensor(item)
        if tensor is not None:
            return tensor
    return None


def _num_samples(batch) -> int:
    """The leading size of the batch's first tensor: the weight of this batch's means."""
    tensor = _first_tensor(batch)
    if tensor is None or tensor.ndim == 0:
        raise ValueError("A batch must contain a tensor whose first dimension counts its samples, "
                         f"got {type(batch).__name__}")
    return len(tensor)


def classification_step(model: nn.Module, batch, loss_fn: Callable = F.cross_entropy):
    """The step of a classifier: ``batch = (inputs, targets)``, ``loss_fn(logits, targets)``
    the mean loss. Returns ``(loss, {"accuracy": fraction of the batch classified correctly})``."""
    inputs, targets = batch
    logits = model(inputs)
    loss = loss_fn(logits.float(), targets)
    return loss, {"accuracy": (logits.argmax(dim=1) == targets).float().mean()}


def _step_function(step: Callable | None, loss_fn: Callable) -> Callable:
    if step is None:
        return lambda model, batch: classification_step(model, batch, loss_fn)
    if loss_fn is not F.cross_entropy:
        raise ValueError("loss_fn is only used by the default classification step: "
                         "compute the loss inside your step function instead")
    return step


def _run_step(step: Callable, model: nn.Module, batch) -> tuple[torch.Tensor, dict]:
    """``(loss, metrics)`` from a step that returns either a loss or ``(loss, metrics)``."""
    output = step(model, batch)
    loss, metrics = output if isinstance(output, tuple) else (output, {})
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise ValueError("The step must return the mean loss over the batch as a scalar tensor, "
                         f"got {type(loss).__name__} of shape {getattr(loss, 'shape', None)}")
    return loss, metrics


def _add(sums: dict, values: dict, weight: int) -> None:
    """Add ``weight`` times each value to its running sum, on the device, without gradients."""
    for name, value in values.items():
        sums[name] = sums.get(name, 0) + value.detach().float() * weight


def _means(sums: dict, count: int) -> dict[str, float]:
    """The running sums divided by the sample count, read back to the host in one transfer."""
    return dict(zip(sums, (torch.stack(list(sums.values())) / count).tolist()))


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, step: Callable | None = None,
             loss_fn: Callable = F.cross_entropy, device: torch.device | str | None = None,
             amp: bool = True) -> dict[str, float]:
    """Mean loss and metrics of ``model`` on ``loader``, weighted by samples, in ``eval()`` mode.

    ``step`` and ``loss_fn`` are as for :func:`fit`; ``device`` defaults to the lesson's
    ``cfg.device``, where the model must already be.

    Returns:
        ``{"loss": ..., **metrics}``, e.g. ``{"loss": ..., "accuracy": ...}`` for a classifier.
    """
    device = resolve_device(model, device)
    step = _step_function(step, loss_fn)
    dtype = _amp_dtype(device, amp)
    was_training = model.training
    model.eval()
    sums, count = {}, 0
    for batch in loader:
        batch = _to_device(batch, device)
        with _autocast(device, dtype):
            loss, metrics = _run_step(step, model, batch)
        size = _num_samples(batch)
        _add(sums, {"loss": loss, **metrics}, size)
        count += size
    model.train(was_training)
    if count == 0:
        raise ValueError("The loader yielded no samples: check the dataset split is not empty.")
    return _means(sums, count)


@torch.no_grad()
def predict(model: nn.Module, loader: DataLoader, *,
            device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits (N, num_classes) and targets (N,) for a whole loader, returned on the CPU.

    ``device`` defaults to the lesson's ``cfg.device``; the model must already be there."""
    device = resolve_device(model, device)
    was_training = model.training
    model.eval()
    all_logits, all_targets = [], []
    for inputs, targets in loader:
        all_logits.append(model(inputs.to(device)).float().cpu())
        all_targets.append(targets.cpu())
    model.train(was_training)
    return torch.cat(all_logits), torch.cat(all_targets)


def fit(model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None = None, *,
        optimizer: torch.optim.Optimizer, epochs: int | None = None, steps: int | None = None,
        step: Callable | None = None, loss_fn: Callable = F.cross_entropy, scheduler=None,
        scheduler_interval: str = "epoch", clip_grad_norm: float | None = None, amp: bool = True,
        callbacks: Iterable[Callable] = (), progress: bool = True) -> dict[str, list]:
    """Train ``model`` on the lesson's device (``cfg.device``, where it must already be) and
    return its history.

    Args:
        epochs: passes over ``train_loader``. Give either this or ``steps``.
        steps: optimiser steps in all, cycling through ``train_loader`` (the last pass may be
            partial): the same budget for training sets of different sizes.
        step: ``step(model, batch)`` returns the mean loss over the batch (a scalar tensor) or
            ``(loss, metrics)``, a dict of scalar tensors (batch means). The batch arrives on the
            device. Defaults to :func:`classification_step` with ``loss_fn``.
        loss_fn: ``loss_fn(logits, targets)``, the mean loss; for the default step only.
        scheduler: optional learning-rate scheduler, stepped after every epoch, or after every
            batch with ``scheduler_interval="step"`` (e.g. ``OneCycleLR``).
        clip_grad_norm: if given, rescale the gradients to this norm at most before each step.
        amp: mixed precision on CUDA (bfloat16, or float16 with gradient scaling).
        callbacks: functions called as ``callback(epoch, history, model)`` after each epoch.
        progress: show a tqdm progress bar over epochs.

    Returns:
        ``history``, with one value per epoch for ``train_loss`` and ``train_<name>`` for each
        metric of the step, ``val_loss`` and ``val_<name>`` (when ``val_loader`` is given),
        ``lr`` (at the epoch's start), ``seconds`` and ``samples_per_second`` (of the training
        pass); and ``step_loss``, the loss of every optimiser step.
    """
    if (epochs is None) == (steps is None):
        raise ValueError(f"Give exactly one of epochs= (passes over the loader) and steps= "
                         f"(optimiser steps), got epochs={epochs!r}, steps={steps!r}")
    for name, value in (("epochs", epochs), ("steps", steps)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f'scheduler_interval must be "epoch" or "step", got {scheduler_interval!r}')
    if len(train_loader) == 0:
        raise ValueError("The training loader yields no batches: check the dataset split is not empty.")
    device = resolve_device(model)
    step = _step_function(step, loss_fn)
    dtype = _amp_dtype(device, amp)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    passes = epochs if epochs is not None else math.ceil(steps / len(train_loader))
    steps_done = 0
    history = {}
    bar = tqdm(range(passes), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        sums, count, step_losses = {}, 0, []
        for batch in train_loader:
            if steps is not None and steps_done == steps:
                break
            batch = _to_device(batch, device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, dtype):
                loss, metrics = _run_step(step, model, batch)
            scaler.scale(loss).backward()
            if clip_grad_norm is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            steps_done += 1
            size = _num_samples(batch)
            _add(sums, {"loss": loss, **metrics}, size)
            count += size
            step_losses.append(loss.detach().float())
        step_losses = torch.stack(step_losses).tolist()  # the epoch's one wait for the device
        train_seconds = time.perf_counter() - start
        not_finite = [index for index, value in enumerate(step_losses) if not math.isfinite(value)]
        if not_finite:
            raise FloatingPointError(
                f"The loss became {step_losses[not_finite[0]]} at step {not_finite[0] + 1} of epoch "
                f"{epoch + 1}: lower the learning rate or check the inputs.")
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        row = {f"train_{name}": value for name, value in _means(sums, count).items()}
        if val_loader is not None:
            metrics = evaluate(model, val_loader, step=step, device=device, amp=amp)
            row.update({f"val_{name}": value for name, value in metrics.items()})
        row.update(lr=lr, seconds=time.perf_counter() - start, samples_per_second=count / train_seconds)
        for key, value in row.items():
            history.setdefault(key, []).append(value)
        history.setdefault("step_loss", []).extend(step_losses)
        bar.set_postfix({key: f"{history[key][-1]:.3f}" for key in _metric_keys(history)})
        for callback in callbacks:
            callback(epoch, history, model)
    return history


def _metric_keys(history: dict[str, list]) -> list[str]:
    """The per-epoch losses and metrics of a history, training then validation."""
    return [key for key in history if key.startswith(("train_", "val_"))]


def format_epoch(history: dict[str, list], epoch: int = -1) -> str:
    """One line summarising an epoch of a history (every loss and metric), e.g. for printing
    after training."""
    parts = [f"epoch {len(history['train_loss']) if epoch == -1 else epoch + 1}"]
    parts += [f"{key} {history[key][epoch]:.4f}" for key in _metric_keys(history)]
    return " | ".join(parts)
