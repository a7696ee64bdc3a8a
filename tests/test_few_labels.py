"""Lesson 06's protocol: fixed disjoint splits, exactly k labels per class from the pool, methods
that freeze exactly what they say, cached runs equal to fresh ones, pseudo-label rounds."""

import pytest
import torch

from course_utils import augment, config, few_labels, finetune


@pytest.fixture(scope="module")
def digits():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    return few_labels.target_data("digits")


def test_the_network_input_is_16_pixel_rgb_in_0_1():
    grey = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    images = few_labels.to_network_input(grey)
    assert images.shape == (3, 3, 16, 16) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images[:, 0], images[:, 2])
    assert few_labels.to_network_input(torch.rand(2, 1, 25, 25)).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match=r"grey images \(N, 1, H, W\)"):
        few_labels.to_network_input(torch.rand(2, 3, 8, 8))


def test_held_out_parts_are_disjoint_and_balanced():
    labels = torch.arange(4).repeat_interleave(torch.tensor([30, 31, 29, 40]))
    parts = few_labels._held_out_split(labels, {"test": 10, "val": 5})
    test, val, pool = (set(parts[name].tolist()) for name in ("test", "val", "pool"))
    assert not (test & val) and not (test & pool) and not (val & pool)
    assert test | val | pool == set(range(len(labels)))
    assert torch.bincount(labels[parts["test"]]).tolist() == [10] * 4
    assert torch.bincount(labels[parts["val"]]).tolist() == [5] * 4


def test_digits_protocol_sizes_and_normalisation(digits):
    assert len(digits["test"][1]) == 500 and len(digits["val"][1]) == 200
    assert len(digits["pool"][1]) == 1_797 - 700
    assert torch.bincount(digits["test"][1]).tolist() == [50] * 10
    assert digits["pool"][0].mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert digits["raw"]["pool"].min() >= 0 and digits["raw"]["pool"].max() <= 1
    assert digits["source"]["num_classes"] == 10 and digits["class_names"][3] == "3"
    with pytest.raises(ValueError, match="choose one of letters, digits, faces"):
        few_labels.target_data("cats")


def test_labelled_subsets_hold_k_per_class_nested_and_differ_by_repeat(digits):
    five = few_labels.labelled_subset(digits, 5, repeat=0)
    twenty = few_labels.labelled_subset(digits, 20, repeat=0)
    assert torch.bincount(digits["pool"][1][five]).tolist() == [5] * 10
    assert set(five.tolist()) <= set(twenty.tolist())
    assert not torch.equal(five, few_labels.labelled_subset(digits, 5, repeat=1))


def test_glyph_letters_relabels_the_chosen_letters():
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    letters = few_labels.glyph_letters(3, "QAZ", seed=7)
    images, labels = letters["pool"]
    assert images.shape == (9, 3, 16, 16) and torch.bincount(labels).tolist() == [3, 3, 3]
    assert letters["class_names"] == ["Q", "A", "Z"] and letters["source"]["num_classes"] == 3
    with pytest.raises(ValueError, match="capital letters"):
        few_labels.glyph_letters(3, "a", seed=0)


@pytest.mark.parametrize("name, trainable", [
    ("linear probe", {"head"}), ("fine-tune top", {"stages.2", "head"}),
    ("fine-tune all, low lr", None)])
def test_each_method_freezes_exactly_what_it_says(name, trainable):
    model = few_labels.build_resnet(4)
    few_labels.prepare(model, few_labels.METHODS[name])
    names = finetune.trainable_parameters(model)
    if trainable is None:
        assert names == [name for name, _ in model.named_parameters()]
    else:
        assert {".".join(n.split(".")[:2]) if n.startswith("stages") else n.split(".")[0]
                for n in names} == trainable


def test_a_linear_probe_changes_nothing_but_the_head(digits):
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    model = few_labels.build_resnet(10)
    method = few_labels.METHODS["linear probe"]
    few_labels.prepare(model, method)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    chosen = few_labels.labelled_subset(digits, 2, repeat=0)
    few_labels.train_network(model, digits["pool"][0][chosen], digits["pool"][1][chosen], method,
                             steps=4)
    for name, value in model.state_dict().items():
        if name.startswith("head."):
            assert not torch.equal(value, before[name]), name
        else:  # weights and BatchNorm running statistics alike
            assert torch.equal(value, before[name]), name


def test_a_cached_run_gives_the_numbers_of_a_fresh_one(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    before = torch.get_rng_state()
    _, fresh = few_labels.run_method("from scratch + augmentation", digits, 1, steps=4, cache=False)
    assert torch.equal(torch.get_rng_state(), before)
    _, trained = few_labels.run_method("from scratch + augmentation", digits, 1, steps=4)
    _, loaded = few_labels.run_method("from scratch + augmentation", digits, 1, steps=4)
    for run in (trained, loaded):
        assert run["step_loss"] == pytest.approx(fresh["step_loss"], rel=1e-5)
        assert run["test_accuracy"] == pytest.approx(fresh["test_accuracy"])
    assert not trained["cached"] and loaded["cached"]
    assert fresh["labelled"] == 10 and len(fresh["step_loss"]) == 4
    assert fresh["trainable"] == sum(p.numel() for p in few_labels.build_resnet(10).parameters())


def test_pseudo_label_rounds_add_confident_pool_images(digits, monkeypatch):
    monkeypatch.setattr(few_labels, "source_network",
                        lambda init, num_classes: few_labels.build_resnet(num_classes))
    records = few_labels.pseudo_label_rounds(digits, 2, threshold=0.0, rounds=1, steps=3,
                                             teacher="from scratch", cache=False)
    assert [record["round"] for record in records] == [0, 1]
    unlabelled = len(digits["pool"][1]) - 20
    assert records[1]["kept"] == unlabelled and records[1]["labelled"] == 20 + unlabelled
    assert 0 <= records[1]["pseudo_label_accuracy"] <= 1


def test_the_grid_runs_every_method_then_pseudo_labels(digits, monkeypatch):
    monkeypatch.setattr(few_labels, "target_data", lambda name: digits)
    monkeypatch.setattr(few_labels, "BUDGETS", {"digits": (1, 2)})
    monkeypatch.setattr(few_labels, "source_network",
                        lambda init, num_classes: few_labels.build_resnet(num_classes))
    settings = {"repeats": 1, "steps": 3, "targets": {"digits": ["from scratch", "linear probe"]},
                "pseudo_labels": {"target": "digits", "teacher": "from scratch", "threshold": 0.5,
                                  "rounds": 1, "sweep_k": 1, "thresholds": [0.9]}}
    runs = few_labels.run_grid(settings, progress=False)
    assert [(run["method"], run["k"]) for run in runs[:4]] == [
        ("from scratch", 1), ("linear probe", 1), ("from scratch", 2), ("linear probe", 2)]
    assert [run.get("series") for run in runs[4:]] == ["pseudo-labels"] * 2 + [
        "pseudo-labels (threshold sweep)"]
    assert len(few_labels.run_grid(settings, max_steps=2, progress=False)) == 1


def test_unknown_choices_are_refused():
    with pytest.raises(ValueError, match="unknown init 'imagenet'"):
        few_labels.source_network("imagenet", 3)
    with pytest.raises(ValueError, match="unknown train='some'"):
        few_labels.prepare(few_labels.build_resnet(3), few_labels.Method(train="some"))


def test_random_affine_draws_per_image_and_is_seeded():
    images = torch.rand(4, 3, 16, 16)
    with config.seeded(1):
        first = augment.random_affine(images)
    with config.seeded(1):
        again = augment.random_affine(images)
    assert torch.equal(first, again) and first.shape == images.shape
    copies = augment.random_affine(images[:1].repeat(3, 1, 1, 1))
    assert not torch.allclose(copies[0], copies[1])  # each image gets its own draw
    same = augment.random_affine(images, degrees=0, translate=0, scale=(1, 1))
    assert torch.allclose(same, images, atol=1e-5)
    with pytest.raises(ValueError, match=r"float batch \(N, C, H, W\)"):
        augment.random_affine(images[0])
    with pytest.raises(ValueError, match="0 < scale"):
        augment.random_affine(images, scale=(0, 1))


def test_half_turns_turn_some_images_upside_down():
    images = torch.rand(64, 1, 5, 5)
    with config.seeded(0):
        turned = augment.random_half_turns(images)
    upside_down = [torch.equal(t, torch.rot90(i, 2, dims=(-2, -1))) for t, i in zip(turned, images)]
    upright = [torch.equal(t, i) for t, i in zip(turned, images)]
    assert all(a or b for a, b in zip(upside_down, upright))
    assert 10 < sum(upside_down) < 54
    assert torch.equal(augment.random_half_turns(images, p=0.0), images)


def _fake_photos(per_class: int, seed: int):
    from course_utils.data import ImageDataset

    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (10 * per_class, 3, 32, 32), dtype=torch.uint8, generator=generator)
    return ImageDataset(images, torch.arange(10).repeat(per_class))


def test_imagenet_transfer_runs_each_method_on_a_torchvision_style_dataset():
    """Offline stand-in for CIFAR-10 and ImageNet weights: the same code path, random values."""
    import torchvision

    from course_utils.data import DatasetSplits

    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    splits = DatasetSplits(name="cifar10", train=_fake_photos(3, 0), val=_fake_photos(1, 1),
                           test=_fake_photos(1, 2), class_names=[str(c) for c in range(10)])
    with config.seeded(0):
        state = torchvision.models.resnet18(num_classes=1000).state_dict()
    results = few_labels.imagenet_transfer(splits, state, [1], steps=3, test_size=4,
                                           image_size=32)
    assert [(r["k"], r["method"]) for r in results] == [
        (1, name) for name in few_labels.IMAGENET_METHODS]
    assert all(0 <= r["test_accuracy"] <= 1 for r in results)


def test_imagenet_weights_offline_say_what_to_do(monkeypatch):
    import urllib.error

    from torchvision.models._api import WeightsEnum

    from course_utils.data import DatasetNotAvailableError

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    with pytest.raises(DatasetNotAvailableError, match="could not be downloaded.*cached in"):
        few_labels.imagenet_resnet18_state()


def test_cifar10_offline_says_what_to_do(monkeypatch):
    import socket

    from course_utils.data import DatasetNotAvailableError

    timeouts = []

    def offline(name, *, download):
        timeouts.append(socket.getdefaulttimeout())
        raise DatasetNotAvailableError(f"Downloading {name} failed")

    monkeypatch.setattr(few_labels, "load_dataset", offline)
    with pytest.raises(DatasetNotAvailableError, match="Downloading cifar10 failed"):
        few_labels.load_cifar10(timeout=5)
    assert timeouts == [5] and socket.getdefaulttimeout() is None


def test_without_download_only_weights_on_disk_are_used(tmp_path, monkeypatch):
    """The full profile's CIFAR-10 section runs on what is on disk and never downloads."""
    from torchvision.models._api import WeightsEnum

    from course_utils.data import DatasetNotAvailableError

    def no_download(self, *args, **kwargs):
        raise AssertionError("downloaded without being asked")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(WeightsEnum, "get_state_dict", no_download)
    with pytest.raises(DatasetNotAvailableError,
                       match="not in .*download imagenet-resnet18` where there is a network"):
        few_labels.imagenet_resnet18_state(download=False)
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "resnet18-f37072fd.pth").touch()  # IMAGENET1K_V1's file name
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: {"loaded": 1})
    assert few_labels.imagenet_resnet18_state(download=False) == {"loaded": 1}


def test_cifar10_without_download_does_not_download(monkeypatch):
    asked = []
    monkeypatch.setattr(few_labels, "load_dataset", lambda name, *, download: asked.append(download))
    few_labels.load_cifar10(download=False)
    assert asked == [False]
