"""One plain training loop, ``fit(...) -> history``, and evaluation helpers.

The loop is the one lesson 01 writes by hand, packaged: ``train()``, then per batch
``zero_grad``, forward, loss, ``backward``, ``step``; evaluation under ``torch.no_grad()``
in ``eval()`` mode. Metrics are weighted by the number of samples in each batch, so a short
last batch counts for what it is (a mean of batch means would over-weight it).

Every helper runs on the lesson's device (``cfg.device``, from :func:`course_utils.config.setup`)
unless given another, and refuses a model whose parameters sit elsewhere: moving it silently
would hide a model left on the CPU of a GPU machine.
"""

import contextlib
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


def _autocast(device: torch.device, enabled: bool):
    """Mixed precision on CUDA only: on the CPU and MPS it would be slower or unsupported."""
    if enabled and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, *, device: torch.device | str | None = None,
             loss_fn: Callable = F.cross_entropy, amp: bool = True) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``loader``, weighted by samples.

    ``device`` defaults to the lesson's ``cfg.device``; the model must already be there.

    Returns:
        ``{"loss": ..., "accuracy": ...}``
    """
    device = resolve_device(model, device)
    was_training = model.training
    model.eval()
    total_loss, total_correct, total_count = 0.0, 0, 0
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        with _autocast(device, amp):
            logits = model(inputs)
        total_loss += loss_fn(logits.float(), targets).item() * len(targets)
        total_correct += (logits.argmax(dim=1) == targets).sum().item()
        total_count += len(targets)
    model.train(was_training)
    if total_count == 0:
        raise ValueError("The loader yielded no samples: check the dataset split is not empty.")
    return {"loss": total_loss / total_count, "accuracy": total_correct / total_count}


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
        epochs: int, optimizer: torch.optim.Optimizer, device: torch.device | str | None = None,
        loss_fn: Callable = F.cross_entropy, scheduler=None, amp: bool = True,
        callbacks: Iterable[Callable] = (), progress: bool = True) -> dict[str, list[float]]:
    """Train ``model`` for ``epochs`` epochs and return its history.

    Args:
        device: where to train; defaults to the lesson's ``cfg.device``. The model must already
            be there (``model.to(cfg.device)`` before creating its optimizer).
        loss_fn: called as ``loss_fn(logits, targets)``; must return the mean over the batch.
        scheduler: optional learning-rate scheduler, stepped once per epoch.
        amp: use mixed precision (float16 autocast with gradient scaling) when on CUDA.
        callbacks: functions called as ``callback(epoch, history, model)`` after each epoch.
        progress: show a tqdm progress bar over epochs.

    Returns:
        ``history`` with one value per epoch for ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (when ``val_loader`` is given), ``lr`` and ``seconds``.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    device = resolve_device(model, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
    history = {"train_loss": [], "train_accuracy": [], "lr": [], "seconds": []}
    if val_loader is not None:
        history.update(val_loss=[], val_accuracy=[])
    bar = tqdm(range(epochs), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        total_loss, total_correct, total_count = 0.0, 0, 0
        for inputs, targets in train_loader:
            inputs, targets = inputs.to(device), targets.to(device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                logits = model(inputs)
                loss = loss_fn(logits.float(), targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"The loss became {loss.item()} in epoch {epoch + 1}: "
                                         f"lower the learning rate or check the inputs.")
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total_loss += loss.item() * len(targets)
            total_correct += (logits.argmax(dim=1) == targets).sum().item()
            total_count += len(targets)
        history["lr"].append(optimizer.param_groups[0]["lr"])
        if scheduler is not None:
            scheduler.step()
        history["train_loss"].append(total_loss / total_count)
        history["train_accuracy"].append(total_correct / total_count)
        if val_loader is not None:
            metrics = evaluate(model, val_loader, device=device, loss_fn=loss_fn, amp=amp)
            history["val_loss"].append(metrics["loss"])
            history["val_accuracy"].append(metrics["accuracy"])
        history["seconds"].append(time.perf_counter() - start)
        bar.set_postfix({key: f"{values[-1]:.3f}" for key, values in history.items()
                         if key.endswith(("loss", "accuracy"))})
        for callback in callbacks:
            callback(epoch, history, model)
    return history


def format_epoch(history: dict[str, list[float]], epoch: int = -1) -> str:
    """One line summarising an epoch of a history, e.g. for printing after training."""
    parts = [f"epoch {len(history['train_loss']) if epoch == -1 else epoch + 1}"]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        if key in history:
            parts.append(f"{key} {history[key][epoch]:.4f}")
    return " | ".join(parts)
