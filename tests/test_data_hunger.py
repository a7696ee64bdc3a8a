"""Lesson 05's data-hunger experiment: balanced nested training sets, comparable models, the same
numbers whether a run is trained afresh or loaded from the train-once cache."""

import pytest
import torch

from course_utils import config, data_hunger
from course_utils.complexity import count_parameters


@pytest.fixture(scope="module")
def data():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    return data_hunger.glyph_data(6, 2, seed=0)


def test_glyph_data_is_16_pixels_normalised_and_balanced(data):
    images, labels = data["train"]
    assert images.shape == (6 * 26, 3, 16, 16) and data["test"][0].shape == (2 * 26, 3, 16, 16)
    assert torch.bincount(labels).tolist() == [6] * 26
    assert images.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (images.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    assert not torch.equal(images[:52], data["test"][0])  # different generator seeds


def test_the_two_models_are_of_comparable_size():
    vit, resnet = data_hunger.build_model("ViT"), data_hunger.build_model("ResNet")
    assert 0.7 < count_parameters(resnet) / count_parameters(vit) < 1.3
    assert vit(torch.zeros(2, 3, 16, 16)).shape == resnet(torch.zeros(2, 3, 16, 16)).shape == (2, 26)
    assert data_hunger.build_model("ViT", patch_size=8).num_patches == 4
    with pytest.raises(ValueError, match="choose one of ViT, ResNet"):
        data_hunger.build_model("MLP")


def test_a_cached_run_gives_the_numbers_of_a_fresh_one(data, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    before = torch.get_rng_state()
    _, fresh = data_hunger.train_and_test("ViT", data, 4, steps=6, repeat=1)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's random numbers are untouched
    _, trained = data_hunger.train_and_test("ViT", data, 4, steps=6, repeat=1, cache=True)
    _, loaded = data_hunger.train_and_test("ViT", data, 4, steps=6, repeat=1, cache=True)
    for run in (trained, loaded):
        assert run["step_loss"] == pytest.approx(fresh["step_loss"], rel=1e-5)
        assert run["test_accuracy"] == pytest.approx(fresh["test_accuracy"])
    assert not fresh["cached"] and not trained["cached"] and loaded["cached"]
    assert fresh["train_size"] == 4 * 26 and len(fresh["step_loss"]) == 6
    assert 0 <= fresh["test_accuracy"] <= 1 and fresh["samples_per_second"] > 0


def test_repeats_draw_other_training_sets_and_starts(data):
    _, first = data_hunger.train_and_test("ResNet", data, 3, steps=3, repeat=0)
    _, second = data_hunger.train_and_test("ResNet", data, 3, steps=3, repeat=1)
    assert first["step_loss"][0] != second["step_loss"][0]


def test_the_grid_runs_every_model_size_and_repeat_then_the_patch_sizes(data, monkeypatch):
    monkeypatch.setattr(data_hunger, "glyph_data", lambda *args, **kwargs: data)
    settings = {"seed": 0, "per_class": [2, 4], "test_per_class": 2, "repeats": 2, "steps": 3,
                "batch_size": 16, "lr": 1e-3, "weight_decay": 0.0, "patch_sizes": [8],
                "patch_per_class": [4]}
    runs = data_hunger.run_grid(settings, progress=False)
    assert [(r["model"], r["per_class"], r["repeat"], r["patch_size"]) for r in runs] == [
        ("ViT", 2, 0, 4), ("ResNet", 2, 0, None), ("ViT", 4, 0, 4), ("ResNet", 4, 0, None),
        ("ViT", 2, 1, 4), ("ResNet", 2, 1, None), ("ViT", 4, 1, 4), ("ResNet", 4, 1, None),
        ("ViT", 4, 0, 8)]
    assert len(data_hunger.run_grid(settings, max_steps=2, progress=False)) == 1


def test_cifar10_data_draws_k_per_class_from_each_official_split(monkeypatch):
    """Offline stand-in for CIFAR-10: the same code path with small random uint8 photos."""
    from course_utils.data import DatasetSplits, ImageDataset

    config.setup(seed=0, profile="quick", device="cpu", verbose=False)

    def fake_split(per_class, seed):
        generator = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (10 * per_class, 3, 32, 32), dtype=torch.uint8, generator=generator)
        return ImageDataset(images, torch.arange(10).repeat(per_class))

    splits = DatasetSplits(name="cifar10", train=fake_split(5, 0), val=fake_split(1, 1),
                           test=fake_split(3, 2), class_names=[str(c) for c in range(10)])
    monkeypatch.setattr("course_utils.data.load_dataset", lambda *args, **kwargs: splits)
    data = data_hunger.cifar10_data(4, 2)
    assert data["train"][0].shape == (40, 3, 32, 32) and data["test"][0].shape == (20, 3, 32, 32)
    assert torch.bincount(data["train"][1]).tolist() == [4] * 10
    assert data["source"]["image_size"] == 32 and data["source"]["num_classes"] == 10
    _, run = data_hunger.train_and_test("ViT", data, 2, steps=3, repeat=0, batch_size=8)
    assert run["train_size"] == 20 and 0 <= run["test_accuracy"] <= 1


def test_cifar10_data_says_what_to_do_offline(tmp_path, monkeypatch):
    from course_utils.data import DatasetNotAvailableError

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    with pytest.raises(DatasetNotAvailableError, match="download cifar10"):
        data_hunger.cifar10_data(4, 2)
