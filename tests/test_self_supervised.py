"""Lesson 07's building blocks: NT-Xent equals the paper's formula, DINO's loss and teacher,
collapse diagnostics, MAE masking, jigsaw tiles and permutations, k-NN and linear probes."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import config
from course_utils import self_supervised as ssl


def nt_xent_by_the_formula(z1, z2, temperature):
    """The paper's algorithm, literally: views 2k-1 and 2k (here 2k and 2k+1) are a pair."""
    z = torch.stack([z1, z2], dim=1).reshape(2 * len(z1), -1).double()
    z = z / z.norm(dim=1, keepdim=True)
    s = z @ z.T

    def l(i, j):
        others = sum(math.exp(s[i, m] / temperature) for m in range(len(z)) if m != i)
        return -math.log(math.exp(s[i, j] / temperature) / others)

    return sum(l(2 * k, 2 * k + 1) + l(2 * k + 1, 2 * k) for k in range(len(z1))) / (2 * len(z1))


@pytest.mark.parametrize("n, dim, temperature", [(1, 4, 0.5), (3, 5, 0.5), (6, 8, 0.1), (4, 3, 2.0)])
def test_nt_xent_equals_the_papers_formula(n, dim, temperature):
    generator = torch.Generator().manual_seed(n)
    z1, z2 = torch.randn(n, dim, generator=generator), torch.randn(n, dim, generator=generator)
    assert ssl.nt_xent_loss(z1, z2, temperature).item() == pytest.approx(
        nt_xent_by_the_formula(z1, z2, temperature), rel=1e-5)


def test_nt_xent_is_symmetric_lowest_when_views_match_and_stable():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=generator), torch.randn(8, 16, generator=generator)
    assert ssl.nt_xent_loss(z1, z2).item() == pytest.approx(ssl.nt_xent_loss(z2, z1).item(), rel=1e-6)
    assert ssl.nt_xent_loss(z1, z1 * 3).item() < ssl.nt_xent_loss(z1, z2).item()
    tiny = ssl.nt_xent_loss(z1, z1, temperature=1e-3)  # similarities / t up to 1,000: no overflow
    assert torch.isfinite(tiny) and tiny.item() >= 0
    assert ssl.nt_xent_loss(z1[:1], z2[:1]).item() == pytest.approx(0.0, abs=1e-6)  # N = 1
    with pytest.raises(ValueError, match="same shape"):
        ssl.nt_xent_loss(z1, z2[:3])


def test_dino_loss_matches_the_formula_and_stops_the_teachers_gradient():
    generator = torch.Generator().manual_seed(1)
    s1, s2, t1, t2 = (torch.randn(5, 7, generator=generator) for _ in range(4))
    s1.requires_grad_(True)
    t1.requires_grad_(True)
    center = torch.randn(7, generator=generator)

    def h(t, s):
        teacher = torch.softmax((t.detach() - center) / 0.04, dim=1)
        return -(teacher * torch.log_softmax(s / 0.1, dim=1)).sum(dim=1).mean()

    loss = ssl.dino_loss(s1, s2, t1, t2, center)
    assert loss.item() == pytest.approx(((h(t1, s2) + h(t2, s1)) / 2).item(), rel=1e-6)
    loss.backward()
    assert s1.grad is not None and t1.grad is None


def test_center_is_a_running_mean_and_ema_moves_the_teacher():
    center = ssl.update_center(torch.zeros(3), torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), 0.9)
    assert torch.allclose(center, torch.tensor([0.2, 0.2, 0.2]))
    torch.manual_seed(0)
    teacher, student = nn.Linear(3, 2), nn.Linear(3, 2)
    before = teacher.weight.detach().clone()
    ssl.ema_update(teacher, student, momentum=1.0)
    assert torch.equal(teacher.weight, before)
    ssl.ema_update(teacher, student, momentum=0.5)
    assert torch.allclose(teacher.weight, (before + student.weight) / 2)
    ssl.ema_update(teacher, student, momentum=0.0)
    assert torch.equal(teacher.weight, student.weight)
    with pytest.raises(ValueError, match="momentum must be in"):
        ssl.ema_update(teacher, student, momentum=1.5)


def test_collapse_diagnostics():
    uniform = torch.full((4, 8), 1 / 8)
    assert ssl.mean_entropy(uniform) == pytest.approx(math.log(8), rel=1e-6)
    one_dimension = torch.zeros(4, 8)
    one_dimension[:, 3] = 1
    assert ssl.mean_entropy(one_dimension) == pytest.approx(0.0, abs=1e-6)
    assert ssl.dominant_share(one_dimension) == 1.0
    assert ssl.dominant_share(torch.eye(4)) == 0.25


def test_random_masking_keeps_the_right_share_and_restores_the_order():
    tokens = torch.arange(2 * 10 * 3, dtype=torch.float).reshape(2, 10, 3)
    visible, mask, restore = ssl.random_masking(tokens, 0.75, generator=torch.Generator().manual_seed(0))
    assert visible.shape == (2, 2, 3) and mask.sum(dim=1).tolist() == [8, 8]
    for row in range(2):  # the visible tokens are exactly the unmasked ones
        kept = tokens[row][mask[row] == 0]
        assert sorted(kept[:, 0].tolist()) == sorted(visible[row, :, 0].tolist())
    again = ssl.random_masking(tokens, 0.75, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], visible) and torch.equal(again[2], restore)
    full = ssl.random_masking(tokens, 0.0)[0]  # nothing masked: all tokens, shuffled
    assert sorted(full[0, :, 0].tolist()) == tokens[0, :, 0].tolist()
    with pytest.raises(ValueError, match="mask_ratio"):
        ssl.random_masking(tokens, 1.0)


def test_jigsaw_tiles_round_trip_and_shuffle():
    images = torch.rand(2, 3, 12, 12)
    tiles = ssl.cut_tiles(images, 3)
    assert tiles.shape == (2, 9, 3, 4, 4) and torch.equal(tiles[:, 1], images[:, :, :4, 4:8])
    assert torch.equal(ssl.join_tiles(tiles), images)
    permutation = [2, 0, 1, 5, 3, 4, 8, 6, 7]
    shuffled = ssl.shuffle_tiles(tiles, permutation)
    assert torch.equal(shuffled[:, 0], tiles[:, 2])
    assert torch.equal(ssl.shuffle_tiles(shuffled, np.argsort(permutation)), tiles)
    with pytest.raises(ValueError, match="not a permutation"):
        ssl.shuffle_tiles(tiles, [0, 0, 1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(ValueError, match="equal tiles"):
        ssl.cut_tiles(torch.rand(1, 3, 10, 10), 3)


def test_jigsaw_permutations_are_distinct_far_apart_and_seeded():
    chosen = ssl.jigsaw_permutations(6, tiles=4, seed=0)
    assert chosen.shape == (6, 4) and len({tuple(p) for p in chosen}) == 6
    assert np.array_equal(chosen, ssl.jigsaw_permutations(6, tiles=4, seed=0))
    nine = ssl.jigsaw_permutations(10, seed=1)
    rng = np.random.default_rng(1)
    random_set = np.array([rng.permutation(9) for _ in range(10)])
    assert ssl.min_hamming_distance(nine) >= ssl.min_hamming_distance(random_set)
    assert ssl.min_hamming_distance(nine) >= 8


def test_knn_and_linear_probe_on_two_clusters():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]])
    labels = torch.arange(3).repeat(20)
    features = centres[labels] + torch.randn(60, 3, generator=generator)
    test_labels = torch.arange(3).repeat(5)
    test = centres[test_labels] + torch.randn(15, 3, generator=generator)
    assert ssl.knn_accuracy(features, labels, test, test_labels, k=5) == 1.0
    assert ssl.linear_probe_accuracy(features, labels, test, test_labels, steps=200) == 1.0
    shuffled = labels[torch.randperm(60, generator=generator)]  # no information in the labels
    assert ssl.knn_accuracy(features, shuffled, test, test_labels, k=5) < 0.8
    with pytest.raises(ValueError, match="k must be between"):
        ssl.knn_accuracy(features, labels, test, test_labels, k=100)


def test_simclr_views_are_per_image_seeded_and_stay_in_range():
    from course_utils import augment

    images = torch.rand(6, 3, 16, 16)
    with config.seeded(3):
        first = augment.simclr_views(images)
    with config.seeded(3):
        again = augment.simclr_views(images)
    assert torch.equal(first, again) and first.shape == images.shape
    assert first.min() >= 0 and first.max() <= 1
    copies = augment.simclr_views(images[:1].repeat(4, 1, 1, 1))
    assert not torch.allclose(copies[0], copies[1])  # a draw per image
    whole = augment.random_resized_crop(images, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(whole, images, atol=1e-5)  # the whole image, unchanged
    same = augment.random_brightness_contrast(images, brightness=0.0, contrast=0.0)
    assert torch.allclose(same, images, atol=1e-6)
    shuffled = augment.random_channel_shuffle(images, p=1.0)
    assert torch.allclose(shuffled.sort(dim=1).values, images.sort(dim=1).values)
    assert torch.equal(augment.random_channel_shuffle(images, p=0.0), images)
    grey = augment.random_grey(images, p=1.0)
    assert torch.allclose(grey[:, 0], grey[:, 2])
    with pytest.raises(ValueError, match="scale"):
        augment.random_resized_crop(images, scale=(0.0, 1.0))
