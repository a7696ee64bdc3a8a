import collections
import json
import time
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
    from sklearn.datasets import load_digits

    first, second = data.load_dataset("digits", seed=1), data.load_dataset("digits", seed=1)
    assert torch.equal(first.test.images, second.test.images)
    assert not torch.equal(first.test.images, data.load_dataset("digits", seed=2).test.images)
    # Every (image, label) of the original data lands in exactly one split: same multiset.
    bunch = load_digits()
    original = collections.Counter(
        (bytes(np.round(image * (255 / 16)).astype(np.uint8)), int(label))
        for image, label in zip(bunch.images, bunch.target))
    splits = data.load_dataset("digits", val_fraction=0.2, test_fraction=0.1, seed=0)
    assert [len(part) for part in (splits.train, splits.val, splits.test)] == [1258, 359, 180]
    together = collections.Counter(
        (bytes(image.numpy()), int(label)) for part in (splits.train, splits.val, splits.test)
        for image, label in zip(part.images, part.labels))
    assert together == original


def test_loaders_shuffle_only_train_and_repeat_with_the_seed():
    splits = data.load_dataset("digits")
    first = next(iter(splits.loaders(32, seed=3)["train"]))[1]
    torch.manual_seed(123)  # the global generator has no say in the order
    again = next(iter(splits.loaders(32, seed=3)["train"]))[1]
    assert torch.equal(first, again)
    assert not torch.equal(first, next(iter(splits.loaders(32, seed=4)["train"]))[1])
    assert not torch.equal(first, splits.train.labels[:32])
    val_batch = next(iter(splits.loaders(32)["val"]))[1]
    assert torch.equal(val_batch, splits.val.labels[:32])
    with pytest.raises(ValueError, match="batch_size"):
        splits.loaders(0)


def test_train_transform_reaches_train_only_and_changes_no_split():
    splits = data.load_dataset("digits")
    stored = splits.train.images.clone()
    loaders = splits.loaders(64, train_transform=lambda image: image + 1)
    train_images, _ = next(iter(loaders["train"]))
    assert train_images.min() >= 1  # every training image went through the transform
    for name in ("val", "test"):
        images, _ = next(iter(loaders[name]))
        assert images.max() <= 1, f"{name} was transformed"
    assert torch.equal(splits.train.images, stored) and splits.train[0][0].max() <= 1
    with pytest.raises(TypeError, match="transform must be a function"):
        splits.loaders(64, train_transform="flip")


def test_in_place_transforms_change_neither_the_stored_images_nor_the_other_view():
    images = torch.rand(6, 1, 8, 8)
    stored = images.clone()
    dataset = torch.utils.data.TensorDataset(images, torch.arange(6))  # items are the stored tensors

    def cutout(image):  # in place, as a learner may well write it
        image[:, :4, :4] = 0.5
        return image

    image, label = data.Transformed(dataset, cutout)[3]
    assert torch.all(image[:, :4, :4] == 0.5) and label == 3
    assert torch.equal(images, stored) and len(data.Transformed(dataset, cutout)) == 6
    first, second, _ = data.TwoViews(dataset, lambda image: image.add_(1))[2]
    assert torch.equal(first, stored[2] + 1) and torch.equal(second, stored[2] + 1)
    assert torch.equal(images, stored)


def test_two_views_are_independent_augmentations_of_one_image(data_dir):
    import torchvision.transforms.v2 as T

    splits = data.load_dataset("glyphs", num_images=52, seed=0)
    augment = T.Compose([T.RandomResizedCrop(32, scale=(0.3, 1.0)), T.RandomHorizontalFlip()])
    views = data.TwoViews(splits.train, augment)
    assert len(views) == len(splits.train)
    torch.manual_seed(0)
    first, second, label = views[0]
    assert first.shape == second.shape == (3, 32, 32) and label == splits.train.labels[0]
    assert not torch.equal(first, second)
    view1, view2, labels = next(iter(data.make_loader(views, 8)))
    assert view1.shape == view2.shape == (8, 3, 32, 32)
    assert torch.equal(labels, splits.train.labels[:8])
    # Identity "augmentations" give back the image itself, twice.
    plain = data.TwoViews(splits.train, lambda image: image)[5]
    assert torch.equal(plain[0], splits.train[5][0]) and torch.equal(plain[1], plain[0])
    with pytest.raises(TypeError, match="transform must be a function"):
        data.TwoViews(splits.train, None)


def test_make_loader_is_seeded_and_keeps_whole_batches_when_asked():
    dataset = torch.utils.data.TensorDataset(torch.arange(10))
    orders = [torch.cat([batch for batch, in data.make_loader(dataset, 4, shuffle=True, seed=seed)])
              for seed in (0, 0, 1)]
    assert torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], orders[2])
    assert sorted(orders[0].tolist()) == list(range(10))
    in_order = [batch.tolist() for batch, in data.make_loader(dataset, 4)]
    assert in_order == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    whole = [len(batch) for batch, in data.make_loader(dataset, 4, shuffle=True, drop_last=True)]
    assert whole == [4, 4]
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            data.make_loader(dataset, bad)


def test_labels_per_class_picks_k_of_each_class_nested_and_seeded():
    labels = torch.arange(100) % 4  # 25 of each of 4 classes
    chosen = data.labels_per_class(labels, 3, seed=0)
    assert chosen.dtype == torch.int64 and torch.equal(chosen, chosen.sort().values)
    assert torch.bincount(labels[chosen]).tolist() == [3, 3, 3, 3]
    assert len(set(chosen.tolist())) == 12
    assert torch.equal(chosen, data.labels_per_class(labels.numpy(), np.int64(3), seed=0))
    assert not torch.equal(chosen, data.labels_per_class(labels, 3, seed=1))
    larger = data.labels_per_class(labels, 10, seed=0)
    assert set(chosen.tolist()) <= set(larger.tolist())  # budgets grow by adding examples
    everything = data.labels_per_class(labels, 25, seed=0)
    assert torch.equal(everything, torch.arange(100))


@pytest.mark.parametrize("labels, k, message", [
    ([0, 0, 1, 1, 1, 2], 2, r"fewer examples: 2 \(1\)\. Use k <= 1"),
    ([0, 0, 2, 2], 1, r"fewer examples: 1 \(0\)"),  # a class missing altogether
    ([0, 1], 0, "positive integer"),
    ([0, 1], 1.0, "positive integer"),
    ([0.0, 1.0], 1, "class indices"),
    ([], 1, "non-empty"),
    ([-1, 0], 1, ">= 0"),
])
def test_labels_per_class_refuses_what_it_cannot_do(labels, k, message):
    with pytest.raises(ValueError, match=message):
        data.labels_per_class(labels, k, seed=0)


def test_split_labelled_keeps_k_per_class_and_the_rest_as_a_pool():
    train = data.load_dataset("digits").train
    labelled, unlabelled = data.split_labelled(train, 5, seed=0)
    assert isinstance(labelled, data.ImageDataset) and isinstance(unlabelled, data.ImageDataset)
    assert torch.bincount(labelled.labels).tolist() == [5] * 10
    assert len(labelled) + len(unlabelled) == len(train)
    chosen = data.labels_per_class(train.labels, 5, seed=0)
    assert torch.equal(labelled.images, train.images[chosen])
    # Together the two are the training split, each image once.
    rows = lambda part: collections.Counter(map(bytes, part.images.numpy()))  # noqa: E731
    assert rows(labelled) + rows(unlabelled) == rows(train)
    with pytest.raises(TypeError, match="needs an ImageDataset"):
        data.split_labelled(torch.utils.data.TensorDataset(train.images), 5, seed=0)


def test_subset_copies_the_chosen_images():
    train = data.load_dataset("digits").train
    part = train.subset([4, 0, 4])
    assert torch.equal(part.images, train.images[[4, 0, 4]])
    assert part.labels.tolist() == train.labels[[4, 0, 4]].tolist()
    with pytest.raises(ValueError, match="1-D"):
        train.subset([[0, 1]])


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
        data.load_dataset("digits", val_fraction=0.0001)  # 0.18 of an image


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
    [path] = (data_dir / "glyphs").glob("*.npz")
    record = json.loads(path.with_name(path.name + ".sha256.json").read_text())
    assert record["sha256"] == storage.sha256_of(path.read_bytes())
    images = storage.load_arrays(path)["images"]
    assert images.shape == (260, 32, 32, 3) and images.dtype == np.uint8
    # Damage the cache: it is detected, reported, regenerated identically and replaced.
    payload = bytearray(path.read_bytes())
    payload[-50] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.warns(UserWarning, match="does not match its checksum.*Regenerating") as warned:
        repaired = data.load_dataset("glyphs", num_images=260, seed=4)
    assert warned[0].filename == __file__  # reported at the line that loaded the dataset
    assert torch.equal(repaired.train.images, splits.train.images)
    assert np.array_equal(storage.load_arrays(path)["images"], images)
    # A missing cache is simply regenerated.
    path.unlink()
    regenerated = data.load_dataset("glyphs", num_images=260, seed=4)
    assert torch.equal(regenerated.test.images, splits.test.images)


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
    data.load_dataset("glyphs", num_images=20_000, seed=0)  # generates and caches
    start = time.perf_counter()
    splits = data.load_dataset("glyphs", num_images=20_000, seed=0)
    seconds = time.perf_counter() - start
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20_000
    assert seconds < 2.0, f"loading 20,000 cached glyphs took {seconds:.2f} s"


def test_tensor_batches_cover_every_row_in_a_seeded_order():
    from course_utils.data import tensor_batches

    images, labels = torch.arange(10.0)[:, None], torch.arange(10)
    in_order = [batch_labels.tolist() for _, batch_labels in
                tensor_batches(images, labels, batch_size=4, shuffle=False)]
    assert in_order == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = [torch.cat([b for _, b in tensor_batches(images, labels, batch_size=4, shuffle=True,
                                                        seed=seed)]).tolist() for seed in (0, 0, 1)]
    assert shuffled[0] == shuffled[1] != shuffled[2]
    assert sorted(shuffled[0]) == list(range(10))
    for batch_images, batch_labels in tensor_batches(images, labels, batch_size=3, shuffle=True):
        assert torch.equal(batch_images[:, 0].long(), batch_labels)  # rows stay paired
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tensor_batches(images, labels, batch_size=0, shuffle=False)
    with pytest.raises(ValueError, match="equal length"):
        tensor_batches(images, labels[:5], batch_size=2, shuffle=False)


@pytest.mark.parametrize("batch_size", [1, 4, 5, 23, 50])
@pytest.mark.parametrize("shuffle", [True, False])
def test_tensor_batches_draw_what_a_data_loader_drew(batch_size, shuffle):
    """The batches (and what they leave of torch's global generator) are those of the
    DataLoader over a RandomSampler that tensor_batches used to be, also when a pass is cut
    short: results recorded with it replay unchanged."""
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler
    from torch.utils.data import TensorDataset

    from course_utils.data import tensor_batches

    def data_loader(*tensors, batch_size, shuffle, seed):
        dataset = TensorDataset(*tensors)
        order = (RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
                 if shuffle else SequentialSampler(dataset))
        return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False),
                          batch_size=None)

    def passes(make):
        torch.manual_seed(1)
        loader = make(torch.randn(23, 3), torch.arange(23), batch_size=batch_size,
                      shuffle=shuffle, seed=3)
        seen = []
        for number in range(3):
            for index, (_, labels) in enumerate(loader):
                seen.append(labels.tolist())
                if number == 1 and index == 1:
                    break  # a pass cut short, as fit(steps=...) does
        return seen, torch.rand(2).tolist(), len(loader)

    assert passes(tensor_batches) == passes(data_loader)


def test_tensor_batches_refuse_tensors_on_two_devices():
    from course_utils.data import tensor_batches

    images = torch.zeros(4, 2)
    labels = torch.zeros(4, device="meta")
    with pytest.raises(ValueError, match="one device"):
        tensor_batches(images, labels, batch_size=2, shuffle=False)


def test_the_download_command_says_what_failed_without_a_traceback(monkeypatch, capsys):
    from course_utils import few_labels

    def offline(name, *, download):
        raise data.DatasetNotAvailableError("There seems to be no network connection.")

    monkeypatch.setattr(data, "load_dataset", offline)
    with pytest.raises(SystemExit) as exit_:
        data.main(["download", "cifar10"])
    assert exit_.value.code == 1
    assert "cifar10: There seems to be no network connection." in capsys.readouterr().err
    monkeypatch.setattr(few_labels, "imagenet_resnet18_state", lambda: {"w": torch.zeros(3)})
    data.main(["download", few_labels.IMAGENET_WEIGHTS])
    assert "imagenet-resnet18: 3 weights in torch's cache" in capsys.readouterr().out
