"""Lesson 07's SimCLR and DINO training (course_utils.joint_embedding), on a few glyphs."""

import pytest
import torch

from course_utils import config, joint_embedding, ssl_protocol


@pytest.fixture(scope="module")
def tiny():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    unlabelled = ssl_protocol.unlabelled_glyphs(per_class=4, seed=5)
    data = ssl_protocol.evaluation_glyphs(unlabelled["mean"], unlabelled["std"])
    return unlabelled, data


def test_teacher_momentum_rises_from_its_start_to_one():
    assert joint_embedding.teacher_momentum(0, 100) == pytest.approx(0.99)
    assert joint_embedding.teacher_momentum(100, 100) == pytest.approx(1.0)
    values = [joint_embedding.teacher_momentum(step, 100) for step in range(101)]
    assert values == sorted(values)


@pytest.mark.parametrize("architecture, width", [("cnn", 80), ("vit", 64)])
def test_networks_project_and_expose_their_features(architecture, width):
    images = torch.rand(4, 3, 16, 16)
    simclr = joint_embedding.SimCLRNetwork(architecture, out=32)
    assert simclr(images).shape == (4, 32) and simclr.features(images).shape == (4, width)
    dino = joint_embedding.DINONetwork(architecture, prototypes=50)
    assert dino(images).shape == (4, 50) and dino.features(images).shape == (4, width)


def test_two_views_differ_and_are_normalised_like_the_protocol(tiny):
    unlabelled, _ = tiny
    raw = unlabelled["raw"][:8]
    first, second = joint_embedding.two_views(raw, unlabelled["mean"], unlabelled["std"])
    assert first.shape == raw.shape and not torch.allclose(first, second)


def test_simclr_trains_and_its_loss_falls_from_log_2n_minus_1(tiny):
    unlabelled, data = tiny
    settings = {"seed": 0, "steps": 4, "lr": 2e-3, "batch_size": 16, "temperature": 0.5}
    _, history, _ = joint_embedding.train_simclr(settings, unlabelled, data, max_steps=4)
    assert len(history["step_loss"]) == 4
    # at the start, with near-random projections, every view is about as similar as any other
    assert history["step_loss"][0] == pytest.approx(torch.log(torch.tensor(31.0)).item(), rel=0.3)


@pytest.mark.parametrize("centering", [True, False])
def test_dino_teacher_follows_the_student_without_gradients(tiny, centering):
    unlabelled, data = tiny
    settings = {"seed": 0, "steps": 3, "lr": 1e-3, "batch_size": 16, "teacher_temperature": 0.04,
                "architecture": "cnn", "prototypes": 32, "centering": centering}
    teacher, history, curve = joint_embedding.train_dino(settings, unlabelled, data, max_steps=3,
                                                         every=1)
    assert not any(parameter.requires_grad for parameter in teacher.parameters())
    assert [point["step"] for point in curve] == [1, 2, 3]
    for point in curve:
        assert 0 <= point["entropy"] <= torch.log(torch.tensor(32.0)).item() + 1e-4
        assert 0 < point["dominant_share"] <= 1


def _fake_photos(per_class: int, classes: int = 10, size: int = 16):
    """A DatasetSplits of coloured noise, one mean colour per class, like a tiny CIFAR-10."""
    from course_utils.data import DatasetSplits, ImageDataset

    generator = torch.Generator().manual_seed(0)
    class_colours = torch.rand(classes, 3, 1, 1, generator=generator)

    def part(count):
        labels = torch.arange(classes).repeat_interleave(count)
        colours = class_colours[labels]
        noise = torch.rand(len(labels), 3, size, size, generator=generator)
        return ImageDataset((255 * (0.6 * colours + 0.4 * noise)).to(torch.uint8), labels)
    return DatasetSplits("fake photos", part(per_class), part(2), part(5),
                         [f"class {index}" for index in range(classes)])


def test_photo_protocol_keeps_every_training_photo_and_normalises_alike():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    splits = _fake_photos(per_class=30)
    unlabelled, data = ssl_protocol.photo_protocol(splits, probe_per_class=20, test_per_class=5)
    assert unlabelled["raw"].shape == (300, 3, 16, 16) and 0 <= unlabelled["raw"].min()
    assert unlabelled["images"].mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert data["train"][0].shape == (200, 3, 16, 16) and data["test"][0].shape == (50, 3, 16, 16)
    assert torch.bincount(data["train"][1]).tolist() == [20] * 10
    grey = _fake_photos(per_class=3)
    grey.train.images = grey.train.images[:, :1]
    with pytest.raises(ValueError, match="RGB"):
        ssl_protocol.photo_protocol(grey, probe_per_class=2, test_per_class=2)


def test_simclr_on_photos_reports_scores_against_random_and_its_speed():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    settings = {"architecture": "cnn", "batch_size": 32, "temperature": 0.2, "steps": 3,
                "lr": 1e-3, "seed": 0, "probe_per_class": 100, "test_per_class": 5,
                "budgets": [10, 100]}
    result = joint_embedding.run_simclr_photos(_fake_photos(per_class=100), settings)
    assert len(result["step_loss"]) == 3 and result["pretraining_photos"] == 1000
    assert set(result["scores"]) == set(result["random_scores"]) == {"knn", "linear"}
    assert set(result["scores"]["knn"]) == {10, 100} and result["views_per_second"] > 0
    # the classes differ by their colour, which even random features keep: the test photos are
    # scored against the right labels
    assert result["random_scores"]["knn"][100] > 0.5 and result["scores"]["linear"][100] > 0.5
