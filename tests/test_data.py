import json
import urllib.error

import numpy as np
import pytest
import torch
import torchvision

from course_utils import data, storage


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.DATA_DIR_ENV_VAR, str(tmp_path))
    return tmp_path


def test_digits_splits_and_items():
    splits = data.load_dataset("digits", seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (1257, 270, 270)
    assert splits.num_classes == 10 and splits.image_shape == (1, 8, 8)
    image, label = splits.train[0]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1
    assert label.dtype == torch.int64
    train_ids = {tuple(x.flatten().tolist()) for x in splits.train.images[:50]}
    assert "1257 train / 270 val / 270 test" in splits.summary()
    assert len(train_ids) > 40


def test_splits_are_fixed_by_the_seed_disjoint_and_complete():
    first, second = data.load_dataset("digits", seed=1), data.load_dataset("digits", seed=1)
    assert torch.equal(first.test.images, second.test.images)
    assert not torch.equal(first.test.images, data.load_dataset("digits", seed=2).test.images)
    # Tag every image with its index in the last pixel row to follow it through the split.
    images = torch.zeros(300, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = torch.arange(300) // 256, torch.arange(300) % 256
    splits = data._split("tagged", images, torch.zeros(300), ["a"], val_fraction=0.2,
                         test_fraction=0.1, seed=0)
    ids = [set((part.images[:, 0, 0, 0].int() * 256 + part.images[:, 0, 0, 1].int()).tolist())
           for part in (splits.train, splits.val, splits.test)]
    assert [len(part) for part in ids] == [210, 60, 30]
    assert set.union(*ids) == set(range(300)) and sum(map(len, ids)) == 300


def test_loaders_shuffle_only_train_and_repeat_with_the_seed():
    splits = data.load_dataset("digits")
    first = next(iter(splits.loaders(32, seed=3)["train"]))[1]
    again = next(iter(splits.loaders(32, seed=3)["train"]))[1]
    assert torch.equal(first, again)
    val_batch = next(iter(splits.loaders(32)["val"]))[1]
    assert torch.equal(val_batch, splits.val.labels[:32])
    with pytest.raises(ValueError, match="batch_size"):
        splits.loaders(0)


def test_unknown_dataset_names_the_alternatives():
    with pytest.raises(ValueError, match="Unknown dataset 'digit'.*digits, glyphs"):
        data.load_dataset("digit")


@pytest.mark.parametrize("val, test, message", [
    (0.6, 0.5, "nothing to train on"),
    (-0.1, 0.1, r"val_fraction must be in \[0, 1\)"),
    (0.1, 1.0, r"test_fraction must be in \[0, 1\)"),
])
def test_impossible_split_fractions(val, test, message):
    with pytest.raises(ValueError, match=message):
        data.load_dataset("digits", val_fraction=val, test_fraction=test)


def test_too_few_items_for_the_splits():
    with pytest.raises(ValueError, match="a split would be empty"):
        data.split_sizes(3, 0.1, 0.1)


def test_num_images_only_and_always_for_glyphs():
    with pytest.raises(ValueError, match="only applies to 'glyphs'"):
        data.load_dataset("digits", num_images=100)
    with pytest.raises(ValueError, match="Say how many glyphs"):
        data.load_dataset("glyphs")
    with pytest.raises(ValueError, match="official test split"):
        data.load_dataset("cifar10", test_fraction=0.2)


def test_faces():
    splits = data.load_dataset("faces")
    assert splits.class_names == ["non-face", "face"] and splits.image_shape == (1, 25, 25)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 200


def test_glyph_cache_is_written_reused_and_repaired(data_dir):
    splits = data.load_dataset("glyphs", num_images=260, seed=4)
    assert splits.image_shape == (3, 32, 32) and splits.num_classes == 26
    path = data.glyphs_cache_path(260, 4)
    record = json.loads(path.with_name(path.name + ".sha256.json").read_text())
    assert record["sha256"] == storage.sha256_of(path.read_bytes())
    images, labels = data.load_glyph_arrays(260, seed=4)
    assert images.shape == (260, 32, 32, 3) and images.dtype == np.uint8
    # Damage the cache: it is detected, reported, regenerated identically and replaced.
    payload = bytearray(path.read_bytes())
    payload[-50] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.warns(UserWarning, match="does not match its checksum.*Regenerating"):
        repaired, _ = data.load_glyph_arrays(260, seed=4)
    assert np.array_equal(repaired, images)
    assert storage.load_arrays(path)["images"].shape == images.shape
    # A missing cache is simply regenerated.
    path.unlink()
    regenerated, _ = data.load_glyph_arrays(260, seed=4)
    assert np.array_equal(regenerated, images)


def test_offline_dataset_not_downloaded_says_what_to_run(data_dir):
    with pytest.raises(data.DatasetNotAvailableError,
                       match=r"python -m course_utils.data download cifar10"):
        data.load_dataset("cifar10")


def test_download_without_network_says_so(data_dir, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", no_network)
    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", no_network)
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_network)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    for name in ("mnist", "cifar10"):
        with pytest.raises(data.DatasetNotAvailableError, match="no network connection"):
            data.load_dataset(name, download=True)


def test_torchvision_dataset_from_disk(data_dir, monkeypatch):
    """A dataset already on disk is split into train/val and keeps its official test split."""

    class FakeMNIST:
        def __init__(self, root, train, download):
            count = 100 if train else 30
            self.data = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8)
            self.targets = torch.arange(count) % 10

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    splits = data.load_dataset("mnist", val_fraction=0.2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 30)
    assert splits.image_shape == (1, 28, 28)


def test_twenty_thousand_glyphs_load_from_cache_in_under_two_seconds(data_dir):
    import time

    data.load_glyph_arrays(20_000, seed=0)  # generates and caches
    start = time.perf_counter()
    splits = data.load_dataset("glyphs", num_images=20_000, seed=0)
    seconds = time.perf_counter() - start
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20_000
    assert seconds < 2.0, f"loading 20,000 cached glyphs took {seconds:.2f} s"
