"""Datasets behind one API: ``load_dataset(name) -> DatasetSplits`` with train/val/test splits.

Offline datasets (the default path of every notebook):

* ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits, 1 channel, 10 classes.
* ``glyphs``: the course's synthetic letters A-Z, 32x32 RGB, 26 classes, generated from a seed
  and cached under ``data/glyphs/`` with a checksum.
* ``faces``: scikit-image's bundled LFW subset, 25x25 grey, face vs. non-face.

Downloaded on request (``download=True``) into ``data/``: ``mnist``, ``fashion_mnist``,
``cifar10``. Their official test split is kept as ``test``; ``val`` is carved from the training set.

Images are stored as uint8 and turned into float tensors in [0, 1] of shape (C, H, W) when a
sample is read, so a 50,000-image dataset takes 150 MB, not 600 MB.

For augmentation and few labels (lessons 05-07): :class:`Transformed` applies a transform to
every image it reads (``DatasetSplits.loaders(train_transform=...)`` does so for ``train`` only),
:class:`TwoViews` reads two independent augmentations of each image (SimCLR, DINO),
:func:`labels_per_class` and :func:`split_labelled` keep k labelled images per class.
:func:`make_loader` builds every DataLoader here: seeded, without worker processes by default::

    labelled, unlabelled = split_labelled(splits.train, 10, seed=cfg.seed)
    train_loader = make_loader(Transformed(labelled, augment), 64, shuffle=True, seed=cfg.seed)
    pairs = make_loader(TwoViews(unlabelled, augment), 256, shuffle=True, drop_last=True)
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from course_utils import glyphs
from course_utils.storage import CorruptCacheError, data_dir, load_arrays, save_arrays

OFFLINE_DATASETS = ("digits", "glyphs", "faces")
ONLINE_DATASETS = ("mnist", "fashion_mnist", "cifar10")
_GLYPHS_FORMAT_VERSION = 1  # bump when the generator changes, so old caches are not reused

_TORCHVISION = {  # name -> (torchvision class name, class names)
    "mnist": ("MNIST", [str(digit) for digit in range(10)]),
    "fashion_mnist": ("FashionMNIST", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]),
    "cifar10": ("CIFAR10", ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                            "horse", "ship", "truck"]),
}


class DatasetNotAvailableError(RuntimeError):
    """A dataset that has to be downloaded is not on disk (and could not be downloaded)."""


class ImageDataset(Dataset):
    """uint8 images of shape (N, C, H, W) and int64 labels; items are (float (C, H, W) in [0, 1],
    label). To augment the images, wrap the dataset in :class:`Transformed` or :class:`TwoViews`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be a uint8 tensor of shape (N, C, H, W), got "
                             f"{images.dtype} of shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"need one label per image: {images.shape[0]} images but labels of "
                             f"shape {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index].float().div_(255), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images as one float tensor (N, C, H, W) in [0, 1] and the labels."""
        return self.images.float() / 255, self.labels

    def subset(self, indices) -> "ImageDataset":
        """A new dataset of the images and labels at ``indices`` (1-D, copied)."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        if indices.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {tuple(indices.shape)}")
        return ImageDataset(self.images[indices], self.labels[indices])


def _check_transform(transform) -> None:
    if not callable(transform):
        raise TypeError(f"transform must be a function of a float (C, H, W) image, e.g. "
                        f"torchvision.transforms.v2.RandomHorizontalFlip(); got {transform!r}")


class Transformed(Dataset):
    """``dataset`` with ``transform`` applied to each image it reads: items (transform(image),
    label). A random transform (an augmentation) draws anew at every read.

    ``dataset`` itself is left as it is, so the same split can be read with and without the
    transform. Random transforms draw from torch's global generator (seeded by ``setup``), or in a
    DataLoader's worker from the worker's seed.
    """

    def __init__(self, dataset: Dataset, transform: Callable):
        _check_transform(transform)
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.dataset[index]
        # A copy: an in-place transform (x[:, :8, :8] = 0) must not reach the stored image.
        return self.transform(image.clone()), label


class TwoViews(Transformed):
    """Two independent random augmentations of each image, as SimCLR and DINO compare them.

    Items are (view1, view2, label), both views ``transform(image)`` drawn separately; a
    DataLoader batches them as (N, C, H, W), (N, C, H, W), (N,).
    """

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, label = self.dataset[index]
        # Copies: an in-place transform must reach neither the stored image nor the other view.
        return self.transform(image.clone()), self.transform(image.clone()), label


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                drop_last: bool = False, num_workers: int = 0) -> DataLoader:
    """A DataLoader whose order depends only on ``seed``: shuffled (if ``shuffle``) by a generator
    of its own, not by torch's global one. Workers (``num_workers``) are seeded from it too; the
    default of none suits a small CPU. ``drop_last`` drops a short last batch (contrastive losses
    want equal batches; batch norm cannot train on a batch of one).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      generator=torch.Generator().manual_seed(seed), num_workers=num_workers)


def tensor_batches(*tensors: torch.Tensor, batch_size: int, shuffle: bool,
                   seed: int = 0) -> "TensorBatches":
    """Batches of tensors that already sit on a device (e.g. ``cfg.device``), each gathered in one
    indexing step (no per-sample collation), so on a GPU the data never goes back to the host.
    Items are tuples with one batch per tensor; a shuffled order depends only on ``seed``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not tensors or any(len(tensor) != len(tensors[0]) for tensor in tensors):
        raise ValueError(f"tensors of equal length are needed, got lengths "
                         f"{[len(tensor) for tensor in tensors]}")
    if len({tensor.device for tensor in tensors}) > 1:
        raise ValueError(f"the tensors must sit on one device, got "
                         f"{', '.join(str(tensor.device) for tensor in tensors)}: move them "
                         f"all, e.g. tensor.to(cfg.device)")
    return TensorBatches(tensors, batch_size, shuffle, seed)


class TensorBatches:
    """What :func:`tensor_batches` returns: an iterable of batches, one pass per ``iter``.

    Each pass's order is one permutation, moved to the tensors' device once and sliced there,
    so that gathering a batch never waits for the GPU (indexing a GPU tensor with a Python list
    copies the list to the GPU and waits, at every step). The numbers drawn are those of a
    DataLoader over a RandomSampler with the same seed, so results recorded with one replay with
    the other: the same permutations, and the one number a DataLoader takes from torch's global
    generator at every pass."""

    def __init__(self, tensors: tuple, batch_size: int, shuffle: bool, seed: int):
        self.tensors, self.batch_size, self.shuffle = tensors, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self):
        torch.empty((), dtype=torch.int64).random_()  # the DataLoader's base seed for workers
        count = len(self.tensors[0])
        order = torch.randperm(count, generator=self.generator) if self.shuffle else torch.arange(count)
        return self._batches(order.to(self.tensors[0].device, non_blocking=True))

    def _batches(self, order: torch.Tensor):
        full = len(order) // self.batch_size * self.batch_size
        for start in range(0, full, self.batch_size):
            yield tuple(tensor[order[start:start + self.batch_size]] for tensor in self.tensors)
        if self.shuffle:  # a RandomSampler draws a permutation more as it runs out
            torch.randperm(len(order), generator=self.generator)
        if full < len(order):
            yield tuple(tensor[order[full:]] for tensor in self.tensors)


@dataclass
class DatasetSplits:
    """The three splits of a dataset and its class names."""

    name: str
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])

    def loaders(self, batch_size: int, *, seed: int = 0, train_transform: Callable | None = None,
                num_workers: int = 0) -> dict[str, DataLoader]:
        """DataLoaders for the three splits (see :func:`make_loader`); only ``train`` is shuffled,
        and only ``train`` is read through ``train_transform`` (an augmentation): val and test
        always show the images as they are."""
        train = self.train if train_transform is None else Transformed(self.train, train_transform)
        return {
            "train": make_loader(train, batch_size, shuffle=True, seed=seed,
                                 num_workers=num_workers),
            "val": make_loader(self.val, batch_size, num_workers=num_workers),
            "test": make_loader(self.test, batch_size, num_workers=num_workers),
        }

    def summary(self) -> str:
        channels, height, width = self.image_shape
        return (f"{self.name}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} "
                f"test images of {channels}x{height}x{width}, {self.num_classes} classes")


def _split_sizes(total: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """Sizes of train/val/test for ``total`` items; every split must get at least one item."""
    for label, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise ValueError(f"{label} must be in [0, 1), got {fraction}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction = {val_fraction + test_fraction:g} leaves "
                         f"nothing to train on: keep their sum below 1 (e.g. 0.15 and 0.15).")
    num_val = round(total * val_fraction)
    num_test = round(total * test_fraction)
    num_train = total - num_val - num_test
    if min(num_train, num_val if val_fraction else 1, num_test if test_fraction else 1) < 1:
        raise ValueError(f"{total} items cannot be split into train/val/test with val_fraction="
                         f"{val_fraction} and test_fraction={test_fraction}: a split would be "
                         f"empty. Use more data or larger fractions.")
    return num_train, num_val, num_test


def _split(name: str, images: torch.Tensor, labels: torch.Tensor, class_names: list[str], *,
           val_fraction: float, test_fraction: float, seed: int) -> DatasetSplits:
    """Shuffle with ``seed`` and cut into train/val/test."""
    num_train, num_val, _ = _split_sizes(len(labels), val_fraction, test_fraction)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    parts = order[:num_train], order[num_train:num_train + num_val], order[num_train + num_val:]
    everything = ImageDataset(images, labels)
    train, val, test = (everything.subset(part) for part in parts)
    return DatasetSplits(name, train, val, test, class_names)


def labels_per_class(labels, k: int, *, seed: int) -> torch.Tensor:
    """Indices of ``k`` examples of every class 0..max(labels), drawn at random with ``seed``.

    Returns a sorted int64 tensor of ``k * num_classes`` indices into ``labels``. The draws are
    nested: with the same seed, the examples chosen for a smaller ``k`` are among those for a
    larger one, so label budgets compared side by side differ only by the added examples.
    """
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or len(labels) == 0 or labels.is_floating_point() or labels.is_complex():
        raise ValueError(f"labels must be a non-empty 1-D sequence of class indices, got "
                         f"{labels.dtype} of shape {tuple(labels.shape)}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k (labels per class) must be a positive integer, got {k!r}")
    k, labels = int(k), labels.long()
    if labels.min() < 0:
        raise ValueError(f"labels must be class indices >= 0, got {labels.min().item()}")
    counts = torch.bincount(labels)
    if counts.min() < k:
        short = [f"{label} ({count})" for label, count in enumerate(counts.tolist()) if count < k]
        raise ValueError(f"k={k} labels per class, but some classes have fewer examples: "
                         f"{', '.join(short)}. Use k <= {counts.min().item()} or more data.")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    chosen = [order[labels[order] == label][:k] for label in range(len(counts))]
    return torch.cat(chosen).sort().values


def split_labelled(dataset: ImageDataset, k: int, *,
                   seed: int) -> tuple[ImageDataset, ImageDataset]:
    """``(labelled, unlabelled)``: k images per class (:func:`labels_per_class`) and all the others.

    The unlabelled pool keeps its true labels so that a lesson can score pseudo-labels against
    them; a method learning "without labels" must not read them.
    """
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"split_labelled needs an ImageDataset (e.g. splits.train), got "
                        f"{type(dataset).__name__}")
    chosen = labels_per_class(dataset.labels, k, seed=seed)
    rest = torch.ones(len(dataset), dtype=torch.bool)
    rest[chosen] = False
    return dataset.subset(chosen), dataset.subset(rest.nonzero()[:, 0])


def _digits() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are counts 0..16; scale them to the full 0..255 range of uint8.
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    return torch.from_numpy(images), torch.from_numpy(bunch.target), [str(d) for d in range(10)]


def _faces() -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    import skimage.data

    # 100 faces then 100 non-faces, floats in [0, 1].
    images = np.round(skimage.data.lfw_subset() * 255).astype(np.uint8)[:, None]
    labels = np.repeat([1, 0], 100)
    return torch.from_numpy(images), torch.from_numpy(labels), ["non-face", "face"]


def _glyphs(num_images: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Glyph images (N, 3, 32, 32) uint8 and labels, from the cache in ``data/glyphs/`` or freshly
    generated. A missing cache is generated and saved; a damaged one is reported, regenerated and
    replaced."""
    path = data_dir() / "glyphs" / f"glyphs_v{_GLYPHS_FORMAT_VERSION}_n{num_images}_seed{seed}.npz"
    try:
        arrays = load_arrays(path)
        images, labels = arrays["images"], arrays["labels"]
    except (FileNotFoundError, CorruptCacheError) as error:
        if isinstance(error, CorruptCacheError):
            warnings.warn(f"{error} Regenerating it.", stacklevel=3)  # at load_dataset's caller
        images, labels = glyphs.generate_glyphs(num_images, seed=seed)
        save_arrays(path, images=images, labels=labels)
    images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return images, torch.from_numpy(labels), list(glyphs.LETTERS)


def _torchvision(name: str, download: bool, val_fraction: float, seed: int) -> DatasetSplits:
    import torchvision

    class_name, class_names = _TORCHVISION[name]
    dataset_class = getattr(torchvision.datasets, class_name)
    root = data_dir() / name
    parts = {}
    for train in (True, False):
        try:
            dataset = dataset_class(root=str(root), train=train, download=download)
        except (RuntimeError, OSError) as error:  # not on disk, or URLError/socket errors
            if download:
                raise DatasetNotAvailableError(
                    f"Downloading {name} into {root} failed ({type(error).__name__}: {error}). "
                    f"There seems to be no network connection. Run `python -m course_utils.data "
                    f"download {name}` where there is one and copy the folder {root} here, or "
                    f"use an offline dataset: {', '.join(OFFLINE_DATASETS)}.") from error
            raise DatasetNotAvailableError(
                f"{name} is not in {root}. It is downloaded on request: run "
                f"`python -m course_utils.data download {name}` on a machine with a network "
                f"connection, or call load_dataset({name!r}, download=True). The offline "
                f"datasets {', '.join(OFFLINE_DATASETS)} need no download.") from error
        images = torch.as_tensor(np.asarray(dataset.data))
        images = images[:, None] if images.ndim == 3 else images.permute(0, 3, 1, 2)
        parts[train] = (images.contiguous(), torch.as_tensor(np.asarray(dataset.targets)))
    splits = _split(name, *parts[True], class_names, val_fraction=val_fraction,
                    test_fraction=0.0, seed=seed)
    splits.test = ImageDataset(*parts[False])
    return splits


def load_dataset(name: str, *, val_fraction: float = 0.15, test_fraction: float = 0.15,
                 seed: int = 0, num_images: int | None = None,
                 download: bool = False) -> DatasetSplits:
    """Load a dataset by name and split it into train/val/test.

    Args:
        name: one of ``digits``, ``glyphs``, ``faces``, ``mnist``, ``fashion_mnist``, ``cifar10``.
        val_fraction, test_fraction: shares of the data held out. MNIST, Fashion-MNIST and
            CIFAR-10 keep their official test split: for them ``test_fraction`` must stay at
            its default.
        seed: fixes the split (and, for glyphs, the generated images).
        num_images: how many glyphs to generate (required for glyphs, refused otherwise).
        download: allow downloading a torchvision dataset into ``data/``.
    """
    if name not in OFFLINE_DATASETS + ONLINE_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Offline: {', '.join(OFFLINE_DATASETS)}; "
                         f"downloaded on request: {', '.join(ONLINE_DATASETS)}.")
    if name == "glyphs" and num_images is None:
        raise ValueError("Say how many glyphs to generate: load_dataset('glyphs', "
                         "num_images=cfg.pick(quick=..., full=...)).")
    if name != "glyphs" and num_images is not None:
        raise ValueError(f"num_images only applies to 'glyphs'; {name} has a fixed size.")
    if name in _TORCHVISION:
        if test_fraction != 0.15:
            raise ValueError(f"{name} has an official test split; do not set test_fraction.")
        return _torchvision(name, download, val_fraction, seed)
    if name == "glyphs":
        images, labels, class_names = _glyphs(num_images, seed)
    elif name == "digits":
        images, labels, class_names = _digits()
    else:
        images, labels, class_names = _faces()
    return _split(name, images, labels, class_names, val_fraction=val_fraction,
                  test_fraction=test_fraction, seed=seed)


def main(argv: list[str] | None = None) -> None:
    """``python -m course_utils.data download NAME [NAME ...]``: fetch torchvision datasets
    into ``data/`` and, as ``imagenet-resnet18``, lesson 06's ImageNet weights into torch's
    cache."""
    import argparse

    from course_utils import few_labels

    parser = argparse.ArgumentParser(prog="python -m course_utils.data")
    commands = parser.add_subparsers(dest="command", required=True)
    download = commands.add_parser("download", help="download datasets into data/ (and "
                                   "torchvision's ImageNet ResNet-18 into torch's cache)")
    download.add_argument("names", nargs="+",
                          choices=[*ONLINE_DATASETS, few_labels.IMAGENET_WEIGHTS])
    arguments = parser.parse_args(argv)
    for name in arguments.names:
        try:
            if name == few_labels.IMAGENET_WEIGHTS:
                state = few_labels.imagenet_resnet18_state()
                print(f"{name}: {sum(value.numel() for value in state.values()):,} weights in "
                      f"torch's cache ({torch.hub.get_dir()})")
            else:
                print(load_dataset(name, download=True).summary())
        except DatasetNotAvailableError as error:
            parser.exit(1, f"{name}: {error}\n")


if __name__ == "__main__":
    # The package's module, not this __main__ copy: its DatasetNotAvailableError is the one
    # the other modules raise.
    from course_utils.data import main as package_main

    package_main()
