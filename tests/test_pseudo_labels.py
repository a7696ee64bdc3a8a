"""Tests of pseudo-labelling (course_utils.pseudo_labels): which rows are kept, and their labels."""

import math

import pytest
import torch

from course_utils.pseudo_labels import pseudo_label_accuracy, select_pseudo_labels

PROBABILITIES = torch.tensor([[0.75, 0.20, 0.05],    # exactly at 0.75: kept
                              [0.10, 0.30, 0.60],
                              [0.05, 0.05, 0.90],    # kept, class 2
                              [0.25, 0.75, 0.00]])   # exactly at 0.75: kept, class 1


def test_rows_at_the_threshold_are_kept_with_their_argmax():
    indices, labels = select_pseudo_labels(PROBABILITIES, 0.75)
    assert indices.tolist() == [0, 2, 3] and labels.tolist() == [0, 2, 1]
    assert indices.dtype == labels.dtype == torch.int64


def test_nothing_above_the_threshold_gives_empty_int64_tensors():
    indices, labels = select_pseudo_labels(PROBABILITIES, 0.95)
    assert indices.shape == labels.shape == (0,)
    assert indices.dtype == labels.dtype == torch.int64


def test_a_threshold_of_one_over_c_keeps_every_row():
    probabilities = torch.softmax(torch.randn(50, 4, generator=torch.Generator().manual_seed(0)), 1)
    indices, labels = select_pseudo_labels(probabilities, 1 / 4)
    assert indices.tolist() == list(range(50))
    assert torch.equal(labels, probabilities.argmax(dim=1))


def test_kept_rows_shrink_as_the_threshold_grows():
    logits = 3 * torch.randn(200, 5, generator=torch.Generator().manual_seed(1))
    probabilities = torch.softmax(logits, dim=1)
    kept = [len(select_pseudo_labels(probabilities, t)[0]) for t in (0.2, 0.5, 0.8, 0.99)]
    assert kept == sorted(kept, reverse=True) and kept[0] == 200 and kept[-1] < 200


def test_probabilities_that_are_not_a_matrix_are_refused_with_advice():
    with pytest.raises(ValueError, match="softmax"):
        select_pseudo_labels(torch.rand(5), 0.5)


def test_accuracy_of_pseudo_labels():
    assert pseudo_label_accuracy(torch.tensor([0, 2, 1, 1]), torch.tensor([0, 2, 2, 1])) == 0.75
    assert math.isnan(pseudo_label_accuracy(torch.tensor([], dtype=torch.long),
                                            torch.tensor([], dtype=torch.long)))
    with pytest.raises(ValueError, match=r"true_labels\[indices\]"):
        pseudo_label_accuracy(torch.tensor([0, 1]), torch.tensor([0, 1, 2]))
