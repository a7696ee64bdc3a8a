"""Lesson 05's experiment: a small ViT and a small ResNet as the training set grows.

"Attention-based architectures require more data" [Dosovitskiy et al., 2021]. To test it at a
laptop's scale, both models get the same optimisation budget (the same number of steps of the
same batch size, AdamW with a one-cycle schedule) on training sets of growing size drawn from
the glyph generator at 16 x 16 pixels, and are scored on one fixed test set. Only the amount of
data changes along a curve; a repeat draws another training set and another initialisation.

:func:`run_grid` runs the whole grid (minutes: ``python3 course.py pretrain data-hunger``
records it); a lesson runs a reduced grid live with smaller settings.
"""

import time

import torch
from torch import nn

from course_utils import config, glyphs
from course_utils.cache import train_once
from course_utils.cnn import ResNet
from course_utils.data import labels_per_class, tensor_batches
from course_utils.training import evaluate, fit
from course_utils.vit import VisionTransformer

IMAGE_SIZE = 16
NUM_CLASSES = len(glyphs.LETTERS)
MODELS = ("ViT", "ResNet")


def build_model(kind: str, *, patch_size: int = 4, image_size: int = IMAGE_SIZE,
                num_classes: int = NUM_CLASSES) -> nn.Module:
    """The two contenders, of comparable size (about 140 k and 120 k parameters).

    ViT: patches of ``patch_size`` (16 tokens of 4 x 4 pixels on 16 x 16 images), width 64, 4
    pre-norm layers of 4 heads, MLP width 128. ResNet: lesson 02's, one basic block per stage,
    20-40-80 channels.
    """
    if kind == "ViT":
        return VisionTransformer(image_size=image_size, patch_size=patch_size, in_channels=3,
                                 num_classes=num_classes, dim=64, depth=4, num_heads=4,
                                 mlp_ratio=2.0, fused=True)
    if kind == "ResNet":
        return ResNet(num_classes=num_classes, widths=(20, 40, 80), depths=(1, 1, 1))
    raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")


def _normalised(tensors: dict, source: dict) -> dict:
    """Float images in [0, 1] -> normalised with the training pool's per-channel mean and
    standard deviation, on ``cfg.device``, with ``source`` (what the data is) alongside."""
    device = config.current().device
    mean = tensors["train"][0].mean(dim=(0, 2, 3), keepdim=True)
    std = tensors["train"][0].std(dim=(0, 2, 3), keepdim=True)
    data = {split: (((images - mean) / std).to(device), labels.to(device))
            for split, (images, labels) in tensors.items()}
    data.update(source=source, mean=mean, std=std)
    return data


def glyph_data(pool_per_class: int, test_per_class: int, *, seed: int = 0) -> dict:
    """A pool of training glyphs and a test set (different generator seeds), 16 x 16, as float
    tensors normalised with the pool's per-channel mean and standard deviation, on ``cfg.device``.
    Returns ``{"train": (images, labels), "test": (images, labels), "source": settings}``; the
    training pool has ``pool_per_class`` images of each letter (the generator balances them up
    to one)."""
    arrays = {"train": glyphs.generate_glyphs(pool_per_class * NUM_CLASSES, seed=2 * seed + 1,
                                              image_size=IMAGE_SIZE),
              "test": glyphs.generate_glyphs(test_per_class * NUM_CLASSES, seed=2 * seed + 2,
                                             image_size=IMAGE_SIZE)}
    tensors = {split: (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255,
                       torch.from_numpy(labels)) for split, (images, labels) in arrays.items()}
    return _normalised(tensors, {"dataset": "glyphs", "pool_per_class": pool_per_class,
                                 "test_per_class": test_per_class, "seed": seed,
                                 "image_size": IMAGE_SIZE, "num_classes": NUM_CLASSES})


def cifar10_data(pool_per_class: int, test_per_class: int, *, seed: int = 0,
                 download: bool = False) -> dict:
    """The same as :func:`glyph_data` for CIFAR-10's photos (32 x 32, 10 classes): a pool drawn
    from its training set and a test set from its official test split, ``k`` per class.
    Needs the dataset on disk (``python -m course_utils.data download cifar10``) or
    ``download=True`` and a network; raises DatasetNotAvailableError with what to do otherwise."""
    from course_utils.data import load_dataset

    splits = load_dataset("cifar10", download=download, seed=seed)
    tensors = {}
    for split, dataset, per_class in (("train", splits.train, pool_per_class),
                                      ("test", splits.test, test_per_class)):
        chosen = labels_per_class(dataset.labels, per_class, seed=seed)
        tensors[split] = dataset.subset(chosen).tensors()
    return _normalised(tensors, {"dataset": "cifar10", "pool_per_class": pool_per_class,
                                 "test_per_class": test_per_class, "seed": seed,
                                 "image_size": 32, "num_classes": splits.num_classes})


def _train_and_score(model: nn.Module, data: dict, chosen: torch.Tensor, *, steps: int,
                     repeat: int, batch_size: int, lr: float, weight_decay: float,
                     max_steps: int | None) -> dict:
    images, labels = data["train"]
    train = tensor_batches(images[chosen], labels[chosen], batch_size=batch_size, shuffle=True,
                           seed=repeat)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(0.1, 2 / steps)  # a tenth of the steps; at least two for very short runs
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                    pct_start=warmup)
    start = time.perf_counter()
    history = fit(model, train, optimizer=optimizer, steps=max_steps or steps, scheduler=scheduler,
                  scheduler_interval="step", clip_grad_norm=1.0, progress=False)
    seconds = time.perf_counter() - start
    fitted = tensor_batches(images[chosen], labels[chosen], batch_size=512, shuffle=False)
    test = tensor_batches(*data["test"], batch_size=512, shuffle=False)
    return {"train_accuracy": evaluate(model, fitted)["accuracy"],
            "test_accuracy": evaluate(model, test)["accuracy"], "seconds": seconds,
            "samples_per_second": history["samples_per_second"][-1],
            "step_loss": history["step_loss"]}


def train_and_test(kind: str, data: dict, per_class: int, *, steps: int, repeat: int,
                   batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 0.05,
                   patch_size: int = 4, max_steps: int | None = None,
                   cache: bool = False) -> tuple[nn.Module, dict]:
    """Train one model on ``per_class`` images of every letter from the pool (the draw of
    ``repeat``; nested: a smaller set is part of a larger one) for ``steps`` steps, then test it.

    Returns the trained model and a dict of the run (sizes, accuracies, seconds of training and
    testing, throughput, the loss of every step, and ``cached``: whether it was loaded). ``max_steps`` stops early with the same schedule (for the replay test).
    ``cache=True`` trains once through :func:`course_utils.cache.train_once` and loads after,
    with the same numbers as an uncached run.
    """
    if steps < 3:
        raise ValueError(f"steps must be at least 3 (the one-cycle schedule warms up, then "
                         f"anneals), got {steps}")
    chosen = labels_per_class(data["train"][1].cpu(), per_class, seed=repeat)
    chosen = chosen.to(data["train"][0].device)
    settings = dict(steps=steps, repeat=repeat, batch_size=batch_size, lr=lr,
                    weight_decay=weight_decay, max_steps=max_steps)
    seed = 1_000 * repeat + per_class

    def build():
        with config.seeded(seed):
            return build_model(kind, patch_size=patch_size, image_size=data["source"]["image_size"],
                               num_classes=data["source"]["num_classes"])

    def train(model):
        return _train_and_score(model, data, chosen, **settings)

    if cache:
        model, record = train_once(
            f"data-hunger-{kind.lower()}",
            recipe={"kind": kind, "patch_size": patch_size, "per_class": per_class,
                    "data": data["source"], **settings}, build=build, train=train, verbose=False)
    else:
        model = build().to(data["train"][0].device)
        with config.seeded(seed):  # the caller's random numbers are untouched
            record = train(model)
    run = {"model": kind, "patch_size": patch_size if kind == "ViT" else None,
           "per_class": per_class, "train_size": len(chosen), "repeat": repeat, "steps": steps,
           "parameters": sum(p.numel() for p in model.parameters()), **record}
    run.setdefault("cached", False)  # True: loaded, trained by an earlier run
    return model, run


def run_grid(settings: dict, max_steps: int | None = None, *, progress: bool = True,
             data: dict | None = None) -> list[dict]:
    """Every model at every size (``settings["per_class"]``) for ``settings["repeats"]``
    repeats, then the ViT with the other patch sizes (``settings["patch_sizes"]``) at the sizes
    ``settings["patch_per_class"]``, first repeat only. One result dict per run, in order.
    With ``max_steps``, only the first run, stopped after ``max_steps`` steps. ``data`` (e.g.
    :func:`cifar10_data`) replaces the glyphs."""
    if data is None:
        data = glyph_data(max(settings["per_class"]), settings["test_per_class"],
                          seed=settings["seed"])
    runs = [(kind, per_class, repeat, 4) for repeat in range(settings["repeats"])
            for per_class in settings["per_class"] for kind in MODELS]
    runs += [("ViT", per_class, 0, patch_size) for patch_size in settings["patch_sizes"]
             for per_class in settings["patch_per_class"]]
    if max_steps is not None:
        runs = runs[:1]
    results = []
    for number, (kind, per_class, repeat, patch_size) in enumerate(runs, start=1):
        _, result = train_and_test(kind, data, per_class, steps=settings["steps"], repeat=repeat,
                                batch_size=settings["batch_size"], lr=settings["lr"],
                                weight_decay=settings["weight_decay"], patch_size=patch_size,
                                max_steps=max_steps)
        results.append(result)
        if progress:
            print(f"  [{number}/{len(runs)}] {kind}{'' if kind != 'ViT' else f'/{patch_size}'} "
                  f"{result['train_size']:>6,} images, repeat {repeat}: test accuracy "
                  f"{result['test_accuracy']:.1%} (train {result['train_accuracy']:.1%}) in "
                  f"{result['seconds']:.0f} s", flush=True)
    return results
