"""Lesson 06's protocol: learning a task from 1 to 100 labels per class, one method at a time.

The source task is glyphs of the letters A to M. The three target tasks go from close to far:

* **letters**: glyphs of the other 13 letters, N to Z (same generator, new classes), 200 each;
* **digits**: scikit-learn's 1,797 real handwritten 8 x 8 digits, 10 classes;
* **faces**: scikit-image's LFW subset, 100 faces and 100 other patches, 2 classes.

Each is cut once, with a fixed seed, into a test set, a validation set and a *pool* (the rest).
A method gets ``k`` labelled images per class drawn from the pool (nested draws: the images for
a smaller ``k`` are among those for a larger one; a repeat draws others) and may use the rest of
the pool without its labels. Every method trains the same small ResNet (lesson 02's, 20-40-80
channels, about 120 k parameters) on 16 x 16 images for the same number of steps, and is scored
on the same test set. The source network of transfer learning is that ResNet trained on glyphs
of A to M at 16 x 16: the recipe ``resnet-glyphs-a-m`` of :mod:`course_utils.pretrained`.

:func:`run_method` trains and tests one method on one budget; :func:`run_grid` runs them all
(minutes: ``python3 course.py pretrain few-labels`` records it).
"""

import contextlib
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import augment, config, finetune
from course_utils.cache import train_once
from course_utils.cnn import ResNet
from course_utils.data import labels_per_class, load_dataset, tensor_batches
from course_utils.pseudo_labels import pseudo_label_accuracy, select_pseudo_labels
from course_utils.training import classification_step, evaluate, fit

IMAGE_SIZE = 16
BUDGETS = {"letters": (1, 5, 20, 100), "digits": (1, 5, 20, 100), "faces": (1, 5, 20, 50)}
# Held-out images per class: letters has 200 per class, digits 174 to 183, faces 100.
HELD_OUT = {"letters": {"test": 50, "val": 20}, "digits": {"test": 50, "val": 20},
            "faces": {"test": 25, "val": 10}}
TARGET_LETTERS = "NOPQRSTUVWXYZ"  # the source network learned A to M
LETTERS_PER_CLASS = 200
LETTERS_SEED = 3  # the source network was trained on seed 1 and tested on seed 2
SPLIT_SEED = 0  # the protocol's cut; repeats only change the labelled draw and the training


def to_network_input(images: torch.Tensor) -> torch.Tensor:
    """Grey images (N, 1, H, W), uint8 0..255 or float in [0, 1] -> float (N, 3, 16, 16) in
    [0, 1]: resized (with antialiasing when shrinking) and repeated on three channels, the
    shape the glyph network was trained on."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"expected grey images (N, 1, H, W), got shape {tuple(images.shape)}")
    images = images.float() / 255 if not images.is_floating_point() else images.float()
    resized = F.interpolate(images, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear",
                            antialias=images.shape[-1] > IMAGE_SIZE, align_corners=False)
    return resized.clamp(0, 1).repeat(1, 3, 1, 1)


def _held_out_split(labels: torch.Tensor, per_class: dict) -> dict:
    """Indices of the test, val and pool parts: ``per_class["test"]`` and ``["val"]`` images of
    every class, the pool all the others. Disjoint by construction."""
    test = labels_per_class(labels, per_class["test"], seed=SPLIT_SEED)
    rest = torch.ones(len(labels), dtype=torch.bool)
    rest[test] = False
    rest_indices = rest.nonzero()[:, 0]
    val = rest_indices[labels_per_class(labels[rest_indices], per_class["val"], seed=SPLIT_SEED)]
    rest[val] = False
    return {"test": test, "val": val, "pool": rest.nonzero()[:, 0]}


def target_data(name: str) -> dict:
    """The protocol's data for ``"letters"`` (glyphs N to Z), ``"digits"`` or ``"faces"``, on
    ``cfg.device``.

    Returns ``{"pool": (images, labels), "val": ..., "test": ..., "raw": {part: images in
    [0, 1]}, "mean": ..., "std": ..., "class_names": [...], "source": {...}}``. Network images
    are normalised with the pool's per-channel mean and standard deviation (the pool is
    unlabelled data, so using its statistics is fair); ``raw`` keeps them in [0, 1] for figures
    and augmentation. The pool's labels are there for scoring pseudo-labels and for drawing the
    labelled subset; a method learning without labels must not read them.
    """
    if name not in BUDGETS:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(BUDGETS)}")
    if name == "letters":
        letters = glyph_letters(LETTERS_PER_CLASS, TARGET_LETTERS, seed=LETTERS_SEED)
        images, labels = letters["raw"]["pool"], letters["pool"][1].cpu()
        class_names = list(TARGET_LETTERS)
    else:
        splits = load_dataset(name, val_fraction=0.0, test_fraction=0.0)
        images, labels = splits.train.tensors()
        images, class_names = to_network_input(images), splits.class_names
    parts = _held_out_split(labels, HELD_OUT[name])
    raw = {part: images[indices] for part, indices in parts.items()}
    return _normalised(raw, {part: labels[indices] for part, indices in parts.items()},
                       class_names=class_names,
                       source={"dataset": name, **HELD_OUT[name], "split_seed": SPLIT_SEED,
                               "image_size": IMAGE_SIZE, "num_classes": len(class_names)})


def _normalised(raw: dict, labels: dict, *, class_names, source: dict, mean=None,
                std=None) -> dict:
    device = config.current().device
    mean = raw["pool"].mean(dim=(0, 2, 3), keepdim=True) if mean is None else mean.cpu()
    std = raw["pool"].std(dim=(0, 2, 3), keepdim=True) if std is None else std.cpu()
    data = {part: (((images - mean) / std).to(device), labels[part].to(device))
            for part, images in raw.items()}
    data.update(raw=raw, mean=mean, std=std, class_names=list(class_names), source=source)
    return data


def font_digit_data(num_images: int, *, seed: int = 1) -> dict:
    """Digits rendered from fonts (:mod:`course_utils.font_digits`) in the same format as
    :func:`target_data`'s: ``{"pool": ..., "raw": ..., ...}``, normalised with their own
    statistics. Everything is synthetic: ``pool`` is the training set."""
    from course_utils.font_digits import generate_font_digits

    images, labels = generate_font_digits(num_images, seed=seed)
    raw = {"pool": to_network_input(torch.from_numpy(images / 16).float()[:, None])}
    return _normalised(raw, {"pool": torch.from_numpy(labels)}, class_names=[str(d) for d in range(10)],
                       source={"dataset": "font digits", "num_images": num_images, "seed": seed,
                               "image_size": IMAGE_SIZE, "num_classes": 10})


def glyph_letters(per_class: int, letters: str, *, seed: int, mean=None, std=None) -> dict:
    """``per_class`` 16 x 16 glyphs of each of ``letters`` (labels 0.. in that order), in
    :func:`target_data`'s format with everything in ``pool``; normalised with their own statistics
    unless ``mean`` and ``std`` are given."""
    from course_utils.glyphs import LETTERS, generate_glyphs

    if not letters or any(letter not in LETTERS for letter in letters):
        raise ValueError(f"letters must be capital letters from {LETTERS}, got {letters!r}")
    pictures, labels = generate_glyphs(per_class * len(LETTERS), seed=seed, image_size=IMAGE_SIZE)
    codes = torch.tensor([LETTERS.index(letter) for letter in letters])
    wanted = torch.from_numpy(labels)[:, None] == codes[None]            # (N, len(letters))
    keep = wanted.any(dim=1)
    images = torch.from_numpy(pictures[keep.numpy()]).permute(0, 3, 1, 2).float() / 255
    return _normalised({"pool": images}, {"pool": wanted[keep].int().argmax(dim=1)},
                       class_names=list(letters), mean=mean, std=std,
                       source={"dataset": f"glyphs {letters}", "per_class": per_class,
                               "seed": seed, "image_size": IMAGE_SIZE,
                               "num_classes": len(letters)})


# ---------------------------------------------------------------------------------------------
# The methods.

@dataclass(frozen=True)
class Method:
    """How to learn from the labelled subset.

    init: ``"random"``, ``"glyphs"`` (recipe ``resnet-glyphs-a-m``) or ``"font digits"``
        (recipe ``resnet-font-digits``); the head is always replaced by a new one.
    train: ``"all"``, ``"top"`` (the last block and the head) or ``"head"`` (a linear probe).
    lr: the learning rate of the backbone's trainable part; head_lr: of the new head (default lr).
    augment: random rotations, zooms and shifts of every image at every step.
    half_turns: also turn a random half of the images upside down (a deformation that changes
        some digits' labels: the lesson's counter-example).
    """

    init: str = "random"
    train: str = "all"
    lr: float = 2e-3
    head_lr: float | None = None
    augment: bool = False
    half_turns: bool = False


METHODS = {
    "from scratch": Method(),
    "from scratch + augmentation": Method(augment=True),
    "font digits, fine-tuned": Method(init="font digits", lr=2e-4, head_lr=2e-3),
    "linear probe": Method(init="glyphs", train="head", lr=1e-2),
    "fine-tune top": Method(init="glyphs", train="top", lr=2e-3),
    "fine-tune all, low lr": Method(init="glyphs", lr=2e-4, head_lr=2e-3),
    "fine-tune all, high lr": Method(init="glyphs", lr=2e-3),
    "from scratch + augmentation + half turns": Method(augment=True, half_turns=True),
}
SOURCE_RECIPES = {"glyphs": "resnet-glyphs-a-m", "font digits": "resnet-font-digits"}
TOP = ("stages.2", "head")  # the course ResNet with depths (1, 1, 1): stages.2 is the last block
AUGMENTATION = {"degrees": 15.0, "translate": 0.1, "scale": (0.9, 1.1)}


def build_resnet(num_classes: int) -> nn.Module:
    """The lesson's network: lesson 02's ResNet, one basic block of 20, 40, 80 channels."""
    return ResNet(num_classes=num_classes, widths=(20, 40, 80), depths=(1, 1, 1))


def source_network(init: str, num_classes: int) -> nn.Module:
    """A network to start from: random, or a recorded pretrained one, with a new head of
    ``num_classes`` outputs (a randomly initialised ``nn.Linear``) and every parameter trainable."""
    if init == "random":
        return build_resnet(num_classes)
    if init not in SOURCE_RECIPES:
        raise ValueError(f"unknown init {init!r}; choose 'random' or one of "
                         f"{', '.join(map(repr, SOURCE_RECIPES))}")
    from course_utils.pretrained import load_pretrained

    model, _, _ = load_pretrained(SOURCE_RECIPES[init])
    return finetune.replace_head(model, num_classes).train()


def prepare(model: nn.Module, method: Method) -> None:
    """Freeze what ``method`` does not train (nothing, all but the top, or all but the head)."""
    if method.train == "head":
        finetune.freeze(model)
    elif method.train == "top":
        finetune.freeze(model, train=TOP)
    elif method.train != "all":
        raise ValueError(f"unknown train={method.train!r}; choose 'all', 'top' or 'head'")


def train_network(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, method: Method, *,
                  steps: int, batch_size: int = 64, weight_decay: float = 0.05, seed: int = 0,
                  max_steps: int | None = None) -> dict:
    """Train ``model`` (prepared for ``method``) on the labelled images for ``steps`` steps of
    AdamW with a one-cycle schedule; frozen parts keep their BatchNorm statistics. Returns fit's
    history."""
    loader = tensor_batches(images, labels, batch_size=min(batch_size, len(labels)), shuffle=True,
                            seed=seed)
    groups = finetune.parameter_groups(model, lr=method.lr, head_lr=method.head_lr)
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[group["lr"] for group in groups], total_steps=steps,
        pct_start=min(0.5, max(0.1, 2 / steps)))  # warm up for a tenth, at least 2 steps

    def step(model, batch):
        finetune.freeze_batchnorm_statistics(model)
        inputs, targets = batch
        if method.augment:
            inputs = augment.random_affine(inputs, **AUGMENTATION)
        if method.half_turns:
            inputs = augment.random_half_turns(inputs)
        return classification_step(model, (inputs, targets))

    return fit(model, loader, optimizer=optimizer, steps=max_steps or steps, step=step,
               scheduler=scheduler, scheduler_interval="step", clip_grad_norm=1.0, progress=False)


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return evaluate(model, tensor_batches(images, labels, batch_size=512, shuffle=False))["accuracy"]


@torch.no_grad()
def predict_probabilities(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities (N, num_classes) of ``model`` in eval mode, by batches of 512."""
    model.eval()
    return torch.cat([model(chunk).float().softmax(dim=1) for chunk in images.split(512)])


def labelled_subset(data: dict, k: int, repeat: int) -> torch.Tensor:
    """Pool indices of the ``k``-per-class labelled draw of ``repeat`` (on the pool's device)."""
    pool_labels = data["pool"][1]
    return labels_per_class(pool_labels.cpu(), k, seed=repeat).to(pool_labels.device)


def run_method(name: str, data: dict, k: int, *, repeat: int = 0, steps: int = 300,
               method: Method | None = None, extra: tuple | None = None, cache: bool = True,
               max_steps: int | None = None) -> tuple[nn.Module, dict]:
    """Train method ``name`` (a key of METHODS, or any name with ``method=``) on ``k`` labels per
    class of ``data`` (draw ``repeat``) and test it.

    ``extra = (images, labels)`` is added to the labelled images (pseudo-labels). Returns the
    trained model and a record: the method, ``k``, ``repeat``, ``labelled`` (how many images it
    trained on), ``test_accuracy``, ``val_accuracy``, ``train_accuracy``, ``seconds``,
    ``trainable`` (parameters), ``step_loss`` and ``cached``. ``cache=True`` trains once through
    :func:`course_utils.cache.train_once` and loads after, with the same numbers.
    """
    method = method or METHODS[name]
    chosen = labelled_subset(data, k, repeat)
    images, labels = data["pool"][0][chosen], data["pool"][1][chosen]
    if extra is not None:
        images, labels = torch.cat([images, extra[0]]), torch.cat([labels, extra[1]])
    num_classes = data["source"]["num_classes"]
    seed = 1_000 * repeat + k

    # Both run on random numbers of their own (seeded), so a cached and a fresh run are equal
    # and the caller's random numbers are untouched.
    def build():
        with config.seeded(seed):
            model = source_network(method.init, num_classes)
        prepare(model, method)
        return model

    def train(model):
        with config.seeded(seed):  # (data loaders draw random numbers too)
            history = train_network(model, images, labels, method, steps=steps, seed=seed,
                                    max_steps=max_steps)
            return {"step_loss": history["step_loss"],
                    "samples_per_second": history["samples_per_second"],
                    "train_accuracy": accuracy(model, images, labels),
                    "val_accuracy": accuracy(model, *data["val"]),
                    "test_accuracy": accuracy(model, *data["test"])}

    settings = {"method": asdict(method), "k": k, "repeat": repeat, "steps": steps,
                "max_steps": max_steps, "data": data["source"], "extra": _fingerprint(extra)}
    if cache:
        model, record = train_once(f"few-labels-{data['source']['dataset'].replace(' ', '-')}",
                                   recipe=settings, build=build, train=train, verbose=False)
    else:
        model = build().to(data["pool"][0].device)
        start = time.perf_counter()
        record = {**train(model), "seconds": time.perf_counter() - start, "cached": False}
    prepare(model, method)  # a loaded model comes back with every parameter trainable
    return model, {"method": name, "k": k, "repeat": repeat, "labelled": len(labels),
                   "trainable": finetune.count_trainable(model), **record}


def _fingerprint(extra) -> dict | None:
    """What identifies added (pseudo-labelled) images in a cache key: their count and sums."""
    if extra is None:
        return None
    images, labels = extra
    return {"count": len(labels), "image_sum": round(images.double().sum().item(), 4),
            "label_sum": int(labels.sum().item()),
            "weighted_label_sum": int((labels.cpu() * torch.arange(len(labels))).sum().item())}


def pseudo_label_rounds(data: dict, k: int, *, threshold: float, rounds: int, repeat: int = 0,
                        steps: int = 300, teacher: str = "fine-tune top",
                        cache: bool = True, max_steps: int | None = None) -> list[dict]:
    """Self-training: the teacher method is trained on the ``k`` labels; then, ``rounds`` times,
    the latest model labels the rest of the pool, the predictions with probability >=
    ``threshold`` are kept, and a new model of the same method is trained on labels +
    pseudo-labels. One record per model (round 0 is the teacher), with ``kept`` (pseudo-labels
    used) and ``pseudo_label_accuracy`` (their share that is right: the true labels are read
    only to score them)."""
    model, record = run_method(teacher, data, k, repeat=repeat, steps=steps, cache=cache,
                               max_steps=max_steps)
    records = [{**record, "round": 0, "kept": 0, "pseudo_label_accuracy": float("nan")}]
    chosen = labelled_subset(data, k, repeat)
    unlabelled = torch.ones(len(data["pool"][1]), dtype=torch.bool, device=chosen.device)
    unlabelled[chosen] = False
    pool_images, pool_labels = data["pool"][0][unlabelled], data["pool"][1][unlabelled]
    for round_number in range(1, rounds + 1):
        indices, labels = select_pseudo_labels(predict_probabilities(model, pool_images), threshold)
        indices, labels = indices.to(pool_images.device), labels.to(pool_images.device)
        model, record = run_method(teacher, data, k, repeat=repeat, steps=steps, cache=cache,
                                   extra=(pool_images[indices], labels), max_steps=max_steps)
        records.append({**record, "method": f"pseudo-labels (round {round_number})",
                        "round": round_number, "kept": len(indices), "threshold": threshold,
                        "pseudo_label_accuracy": pseudo_label_accuracy(labels, pool_labels[indices])})
    return records


def run_grid(settings: dict, max_steps: int | None = None, *, progress: bool = True) -> list[dict]:
    """Every method of ``settings["targets"][target]`` on each target at each of its budgets,
    ``settings["repeats"]`` times; then pseudo-labelling as ``settings["pseudo_labels"]`` says:
    ``rounds`` rounds at ``threshold`` for every budget, and one round at each of ``thresholds``
    for the budget ``sweep_k``. One record per trained model. With ``max_steps``, only the first
    run, stopped early (the replay test)."""
    runs = [(target, name, k, repeat) for target, names in settings["targets"].items()
            for repeat in range(settings["repeats"]) for k in BUDGETS[target] for name in names]
    if max_steps is not None:
        runs = runs[:1]
    datasets = {target: target_data(target) for target in settings["targets"]}
    results = []

    def report(record, text):
        results.append(record)
        if progress:
            print(f"  [{len(results)}] {text}: test {record['test_accuracy']:.1%} in "
                  f"{record['seconds']:.0f} s", flush=True)

    for target, name, k, repeat in runs:
        _, record = run_method(name, datasets[target], k, repeat=repeat, steps=settings["steps"],
                               cache=False, max_steps=max_steps)
        report({"target": target, **record}, f"{target}, {name}, k={k}, repeat {repeat}")
    if max_steps is not None:
        return results
    pseudo = settings["pseudo_labels"]
    data = datasets[pseudo["target"]]
    plan = [(k, pseudo["threshold"], pseudo["rounds"], "pseudo-labels")
            for k in BUDGETS[pseudo["target"]]]
    plan += [(pseudo["sweep_k"], threshold, 1, "pseudo-labels (threshold sweep)")
             for threshold in pseudo["thresholds"]]
    for repeat in range(settings["repeats"]):
        for k, threshold, rounds, label in plan:
            records = pseudo_label_rounds(data, k, threshold=threshold, rounds=rounds,
                                          repeat=repeat, steps=settings["steps"],
                                          teacher=pseudo["teacher"], cache=False)
            for record in records[1:]:
                report({"target": pseudo["target"], **record, "series": label},
                       f"{pseudo['target']}, {record['method']} at {threshold}, k={k}, repeat "
                       f"{repeat}: {record['kept']} pseudo-labels "
                       f"({record['pseudo_label_accuracy']:.1%} right)")
    return results


# ---------------------------------------------------------------------------------------------
# The full profile: CIFAR-10 with torchvision's ImageNet weights (both downloaded on request).

IMAGENET_METHODS = ("from scratch", "linear probe", "fine-tune all, low lr")
IMAGENET_WEIGHTS = "imagenet-resnet18"  # its name for `python -m course_utils.data download`


@contextlib.contextmanager
def _network_timeout(seconds: float):
    """Downloads give up after ``seconds`` without an answer instead of waiting for ever (a
    firewall that drops packets never refuses)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def imagenet_resnet18_state(timeout: float = 60.0, *, download: bool = True) -> dict:
    """The weights of torchvision's ResNet-18 trained on ImageNet (IMAGENET1K_V1), downloaded
    into torch's cache the first time (with ``download``; without it, only if already there); a
    DatasetNotAvailableError says what to do offline."""
    import torchvision

    from course_utils.data import DatasetNotAvailableError

    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not download and not cached.exists():
        raise DatasetNotAvailableError(
            f"torchvision's ImageNet weights are not in {cached.parent}. They are downloaded on "
            f"request: run `python -m course_utils.data download {IMAGENET_WEIGHTS}` where "
            f"there is a network connection.")
    try:
        with _network_timeout(timeout):
            return weights.get_state_dict(progress=False)
    except OSError as error:  # no network: urllib's URLError and timeouts are OSErrors
        raise DatasetNotAvailableError(
            f"torchvision's ImageNet weights ({weights.url}) could not be downloaded ({error}). "
            f"Run once where there is a network connection; they are cached in "
            f"{torch.hub.get_dir()}.") from error


def load_cifar10(timeout: float = 60.0, *, download: bool = True):
    """CIFAR-10's splits (``load_dataset("cifar10")``), downloaded into ``data/`` the first time
    (with ``download``; without it, only if already there), giving up after ``timeout`` seconds
    without an answer; offline, a DatasetNotAvailableError."""
    with _network_timeout(timeout):
        return load_dataset("cifar10", download=download)


def imagenet_transfer(splits, state: dict, budgets, *, steps: int, test_size: int = 2_000,
                      image_size: int = 64, methods=IMAGENET_METHODS) -> list[dict]:
    """The protocol on a torchvision dataset (e.g. ``load_dataset("cifar10")``) with a ResNet-18:
    from random weights, or from ``state`` (ImageNet's) as a linear probe or fine-tuned, on
    ``k`` labels per class of the training split, scored on the first ``test_size`` test images.
    Images are resized to ``image_size`` and normalised with ImageNet's statistics. One record
    per run: ``k``, ``method``, ``test_accuracy``."""
    import torchvision

    device = config.current().device
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None]  # ImageNet's, as torchvision
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None]

    def prepared(images):  # uint8 (N, 3, H, W) -> normalised (N, 3, size, size) on the device
        images = F.interpolate(images.float() / 255, size=image_size, mode="bilinear",
                               align_corners=False)
        return ((images - mean) / std).to(device)

    test_images, test_labels = splits.test.tensors()
    test = (prepared(test_images[:test_size]), test_labels[:test_size].to(device))
    pool_images, pool_labels = splits.train.tensors()
    results = []
    for k in budgets:
        chosen = labels_per_class(pool_labels, k, seed=0)
        images, labels = prepared(pool_images[chosen]), pool_labels[chosen].to(device)
        for name in methods:
            method = METHODS[name]
            with config.seeded(k):
                model = torchvision.models.resnet18(num_classes=1000)
                if method.init != "random":
                    model.load_state_dict(state)
                model.fc = nn.Linear(model.fc.in_features, splits.num_classes)
                model = model.to(device)
                if method.train == "head":
                    finetune.freeze(model)
                train_network(model, images, labels, method, steps=steps, seed=k)
                results.append({"k": k, "method": name, "test_accuracy": accuracy(model, *test)})
    return results
