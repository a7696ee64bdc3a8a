"""Pseudo-labelling, as taught in lesson 06: a model labels the unlabelled images it is sure of.

Pseudo-labelling [Lee, 2013] turns a few labels into many: train a model on the labelled
images, predict the unlabelled ones, keep the predictions whose largest probability reaches a
threshold as if they were true labels, and train again on both sets. The threshold trades
quantity for quality: a high one keeps few images, mostly labelled right; a low one keeps many,
with more mistakes.

Those mistakes are the method's weak point, confirmation bias [Arazo et al., 2020]: a wrong
pseudo-label is learned as a fact, so the next model makes the same mistake with more
confidence, and nothing in the loop can correct it. Check the kept labels against the true ones
when you have them (:func:`pseudo_label_accuracy`), and keep the threshold high.

Note that with C classes the largest probability is always at least 1 / C, so a threshold of
1 / C or less keeps every image.
"""

import torch

__all__ = ["pseudo_label_accuracy", "select_pseudo_labels"]


def select_pseudo_labels(probabilities: torch.Tensor,
                         threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The confident predictions among ``probabilities``, as ``(indices, labels)``.

    Args:
        probabilities: (N, C), one row of class probabilities (a softmax) per unlabelled image.
        threshold: a row is kept when its largest probability is at least ``threshold``.

    Returns:
        ``indices``: int64 (K,), the rows kept, in increasing order; ``labels``: int64 (K,),
        their most probable classes (the argmax of each kept row). K may be 0.
    """
    if not isinstance(probabilities, torch.Tensor) or probabilities.ndim != 2:
        shape = tuple(probabilities.shape) if isinstance(probabilities, torch.Tensor) else None
        raise ValueError(f"probabilities must be a tensor (N, C), one row per image, got "
                         f"{type(probabilities).__name__} of shape {shape}; apply softmax to "
                         f"the model's logits first (logits.softmax(dim=1))")
    confidence, labels = probabilities.max(dim=1)                        # (N,), (N,)
    indices = torch.nonzero(confidence >= threshold).flatten()           # (K,) int64, sorted
    return indices, labels[indices]


def pseudo_label_accuracy(labels: torch.Tensor, true_labels: torch.Tensor) -> float:
    """The share of pseudo-labels that are right, in [0, 1]; NaN when there are none.

    Pass the true labels of the kept rows: ``pseudo_label_accuracy(labels, truth[indices])``.
    (Only a lesson can do this: in real use the unlabelled images have no true labels.)
    """
    labels, true_labels = torch.as_tensor(labels), torch.as_tensor(true_labels)
    if labels.shape != true_labels.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and true_labels "
                         f"{tuple(true_labels.shape)} must have the same shape: pass the true "
                         f"labels of the kept rows only, true_labels[indices]")
    if labels.numel() == 0:
        return float("nan")
    return (labels == true_labels).float().mean().item()
