"""Self-supervised learning, as taught in lesson 07: the losses, the teacher, the pretext tasks
and the evaluation of frozen features.

* SimCLR [Chen et al., 2020]: :func:`nt_xent_loss`, written as the paper's algorithm.
* DINO [Caron et al., 2021]: :func:`dino_loss` (the teacher centred and sharpened, no gradient
  through it), :func:`update_center`, :func:`ema_update` (the teacher follows the student), and
  the two numbers that show a collapse: :func:`mean_entropy` and :func:`dominant_share`.
* Masked auto-encoders [He et al., 2022]: :func:`random_masking` of patch tokens.
* Jigsaw puzzles [Noroozi & Favaro, 2016]: :func:`cut_tiles`, :func:`join_tiles`,
  :func:`jigsaw_permutations` (a set far apart in Hamming distance) and :func:`shuffle_tiles`.
* Evaluation: :func:`knn_accuracy` and :func:`linear_probe_accuracy` on frozen features.
"""

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import config


def _check_pair(first: torch.Tensor, second: torch.Tensor, what: str) -> None:
    if first.ndim != 2 or first.shape != second.shape:
        raise ValueError(f"{what} must be two (N, D) tensors of the same shape, got "
                         f"{tuple(first.shape)} and {tuple(second.shape)}")


# ---- SimCLR ----------------------------------------------------------------------------------

def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's loss for N pairs of views: ``z1[k]`` and ``z2[k]`` come from the same image.

    As the paper's algorithm: the 2N projections are numbered so that views 2k-1 and 2k are a
    pair, s(i, j) is their cosine similarity, and
    l(i, j) = -log( exp(s(i, j) / t) / sum over m != i of exp(s(i, m) / t) );
    the loss is the mean of l(2k-1, 2k) and l(2k, 2k-1) over the N pairs. Each row is a
    classification over the 2N - 1 other views whose right answer is the other half of the
    pair, so it is one cross-entropy.
    """
    _check_pair(z1, z2, "the two views' projections")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = len(z1)
    z = F.normalize(torch.stack([z1, z2], dim=1).reshape(2 * n, -1).float(), dim=1)  # 1, 1', 2, 2'...
    logits = z @ z.T / temperature                                                     # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    partner = torch.arange(2 * n, device=z.device) ^ 1  # 0 <-> 1, 2 <-> 3, ...: the pair's other view
    return F.cross_entropy(logits, partner)


# ---- DINO ------------------------------------------------------------------------------------

def dino_cross_entropy(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                       center: torch.Tensor, *, teacher_temperature: float = 0.04,
                       student_temperature: float = 0.1) -> torch.Tensor:
    """H(t, s) averaged over the batch: the teacher's output, centred (``- center``) and sharpened
    (a low temperature), is the target distribution of the student's; no gradient reaches the
    teacher (its output is detached)."""
    _check_pair(teacher_logits, student_logits, "the teacher's and the student's outputs")
    teacher = F.softmax((teacher_logits.detach().float() - center) / teacher_temperature, dim=1)
    log_student = F.log_softmax(student_logits.float() / student_temperature, dim=1)
    return -(teacher * log_student).sum(dim=1).mean()


def dino_loss(student_1: torch.Tensor, student_2: torch.Tensor, teacher_1: torch.Tensor,
              teacher_2: torch.Tensor, center: torch.Tensor, *, teacher_temperature: float = 0.04,
              student_temperature: float = 0.1) -> torch.Tensor:
    """DINO's loss for two views: H(t1, s2) / 2 + H(t2, s1) / 2, each view's student output
    matched to the *other* view's teacher output (see :func:`dino_cross_entropy`)."""
    temperatures = {"teacher_temperature": teacher_temperature,
                    "student_temperature": student_temperature}
    return (dino_cross_entropy(teacher_1, student_2, center, **temperatures)
            + dino_cross_entropy(teacher_2, student_1, center, **temperatures)) / 2


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_logits: torch.Tensor,
                  momentum: float = 0.9) -> torch.Tensor:
    """The new center: ``momentum * center + (1 - momentum) * mean of the teacher's outputs``
    over the batch (a running mean that keeps any one dimension from dominating)."""
    return momentum * center + (1 - momentum) * teacher_logits.float().mean(dim=0)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """Move the teacher's weights towards the student's, in place:
    ``teacher = momentum * teacher + (1 - momentum) * student`` for every parameter; buffers
    (BatchNorm statistics) are copied. Momentum 1 leaves the teacher as it is."""
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    teacher_parameters = dict(teacher.named_parameters())
    student_parameters = dict(student.named_parameters())
    if teacher_parameters.keys() != student_parameters.keys():
        raise ValueError("the teacher and the student must have the same architecture")
    for name, parameter in teacher_parameters.items():
        parameter.mul_(momentum).add_(student_parameters[name].detach(), alpha=1 - momentum)
    student_buffers = dict(student.named_buffers())
    for name, buffer in teacher.named_buffers():
        buffer.copy_(student_buffers[name])


def mean_entropy(probabilities: torch.Tensor) -> float:
    """The mean entropy (in nats) of the rows of ``probabilities`` (N, K): log K when every row is
    uniform (the collapse without sharpening), 0 when every row is one-hot."""
    return -(probabilities * probabilities.clamp(min=1e-12).log()).sum(dim=1).mean().item()


def dominant_share(probabilities: torch.Tensor) -> float:
    """The share of the rows whose largest entry is the most frequent one: 1 when one dimension
    wins for every input (the collapse without centering), small when the winners are spread
    (at best 1/N for N rows, or 1/K for K dimensions, whichever is larger)."""
    winners = probabilities.argmax(dim=1)
    return torch.bincount(winners).max().item() / len(winners)


# ---- masked auto-encoders --------------------------------------------------------------------

def random_masking(tokens: torch.Tensor, mask_ratio: float, *,
                   generator: torch.Generator | None = None):
    """MAE's masking: keep a random ``1 - mask_ratio`` of each sequence's tokens.

    ``tokens`` (N, L, D) -> ``(visible, mask, restore)``: ``visible`` (N, L_keep, D) the kept
    tokens in their shuffled order, with L_keep = int(L * (1 - mask_ratio)); ``mask`` (N, L), 1
    where a token was removed, in the original order; ``restore`` (N, L), the indices that put
    a shuffled sequence back in the original order (``torch.gather`` along dimension 1).
    """
    if tokens.ndim != 3:
        raise ValueError(f"tokens must be (N, L, D), got shape {tuple(tokens.shape)}")
    if not 0 <= mask_ratio < 1:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    n, length, dim = tokens.shape
    keep = int(length * (1 - mask_ratio))
    # one draw per token, on the CPU's generator (the same numbers on every device)
    noise = torch.rand(n, length, generator=generator).to(tokens.device, non_blocking=True)
    shuffle = noise.argsort(dim=1)        # lowest noise first: those are kept
    restore = shuffle.argsort(dim=1)
    kept = shuffle[:, :keep]
    visible = torch.gather(tokens, 1, kept[:, :, None].expand(n, keep, dim))
    mask = torch.ones(n, length, device=tokens.device)
    mask[:, :keep] = 0
    return visible, torch.gather(mask, 1, restore), restore


# ---- jigsaw puzzles --------------------------------------------------------------------------

def cut_tiles(images: torch.Tensor, grid: int = 3) -> torch.Tensor:
    """Images (N, C, H, W) -> tiles (N, grid * grid, C, H / grid, W / grid), row by row."""
    n, c, h, w = images.shape
    if h % grid or w % grid:
        raise ValueError(f"a {h}x{w} image does not cut into {grid}x{grid} equal tiles")
    tiles = images.reshape(n, c, grid, h // grid, grid, w // grid).permute(0, 2, 4, 1, 3, 5)
    return tiles.reshape(n, grid * grid, c, h // grid, w // grid)


def join_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`cut_tiles`: tiles (N, G * G, C, h, w) -> images (N, C, G h, G w)."""
    n, count, c, h, w = tiles.shape
    grid = math.isqrt(count)
    if grid * grid != count:
        raise ValueError(f"{count} tiles do not make a square grid")
    images = tiles.reshape(n, grid, grid, c, h, w).permute(0, 3, 1, 4, 2, 5)
    return images.reshape(n, c, grid * h, grid * w)


def shuffle_tiles(tiles: torch.Tensor, permutation) -> torch.Tensor:
    """Place ``tiles[:, permutation[i]]`` at position i: the puzzle a jigsaw network solves."""
    permutation = torch.as_tensor(permutation, dtype=torch.long, device=tiles.device)
    if sorted(permutation.tolist()) != list(range(tiles.shape[1])):
        raise ValueError(f"{permutation.tolist()} is not a permutation of the {tiles.shape[1]} tiles")
    return tiles[:, permutation]


def jigsaw_permutations(count: int, tiles: int = 9, *, seed: int = 0) -> np.ndarray:
    """``count`` permutations of ``tiles`` tiles far apart from each other (int64, (count, tiles)).

    Greedily, each new permutation is the one whose Hamming distance (the number of places where
    two permutations differ) to the closest already chosen is largest, ties broken at random: a
    variant of Noroozi & Favaro's algorithm, which maximises the *average* distance to those
    chosen; this one guarantees a minimum distance. Far-apart permutations make the task about the image, not about
    telling two nearly identical shuffles apart. Deterministic for a seed.
    """
    if tiles > 9:
        raise ValueError("tiles > 9 would enumerate more than 9! permutations; use 9 or fewer")
    everything = np.array(list(itertools.permutations(range(tiles))), dtype=np.int64)
    if not 1 <= count <= len(everything):
        raise ValueError(f"count must be between 1 and {len(everything)}, got {count}")
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(everything)))]
    closest = (everything != everything[chosen[0]]).sum(axis=1)  # distance to the nearest chosen
    for _ in range(count - 1):
        best = np.flatnonzero(closest == closest.max())
        pick = int(rng.choice(best))
        chosen.append(pick)
        closest = np.minimum(closest, (everything != everything[pick]).sum(axis=1))
    return everything[chosen]


def min_hamming_distance(permutations: np.ndarray) -> int:
    """The smallest Hamming distance between two different permutations of the set."""
    permutations = np.asarray(permutations)
    distances = (permutations[:, None, :] != permutations[None, :, :]).sum(axis=2)
    np.fill_diagonal(distances, permutations.shape[1] + 1)
    return int(distances.min())


# ---- evaluation of frozen features -----------------------------------------------------------

@torch.no_grad()
def knn_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                 test_features: torch.Tensor, test_labels: torch.Tensor, *, k: int = 20,
                 temperature: float = 0.07) -> float:
    """Accuracy of a weighted k-nearest-neighbour vote on frozen features (as in DINO's
    evaluation [Wu et al., 2018]): each test image takes its ``k`` most similar training images
    (cosine similarity s), and each votes for its label with weight exp(s / temperature)."""
    if not 1 <= k <= len(train_labels):
        raise ValueError(f"k must be between 1 and the {len(train_labels)} training examples, "
                         f"got {k}")
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    right = 0
    for start in range(0, len(test), 1024):
        similarity = test[start:start + 1024] @ train.T                 # (B, N_train)
        top, neighbours = similarity.topk(k, dim=1)
        votes = torch.zeros(len(top), num_classes, device=top.device)
        votes.scatter_add_(1, train_labels[neighbours], (top / temperature).exp())
        right += (votes.argmax(dim=1) == test_labels[start:start + 1024]).sum().item()
    return right / len(test_labels)


def linear_probe_accuracy(train_features: torch.Tensor, train_labels: torch.Tensor,
                          test_features: torch.Tensor, test_labels: torch.Tensor, *,
                          steps: int = 300, lr: float = 0.01, weight_decay: float = 1e-4,
                          seed: int = 0) -> float:
    """Accuracy of a linear classifier trained on frozen features (full batch, AdamW, ``steps``
    steps), the features standardised with the training set's mean and standard deviation.
    Runs on its own seeded random numbers."""
    mean, std = train_features.mean(dim=0), train_features.std(dim=0).clamp(min=1e-6)
    train, test = (train_features - mean) / std, (test_features - mean) / std
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    with config.seeded(seed):
        probe = nn.Linear(train.shape[1], num_classes).to(train.device)
        optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            loss = F.cross_entropy(probe(train.float()), train_labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return (probe(test.float()).argmax(dim=1) == test_labels).float().mean().item()
