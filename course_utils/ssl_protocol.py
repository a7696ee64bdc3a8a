"""Lesson 07's protocol: pretrain without labels, then judge the frozen features with few labels.

Every self-supervised method of the lesson pretrains on the same **unlabelled set**: 10,400
glyphs (400 of each letter, 16 x 16; their labels exist, since we generate them, but only the
supervised baseline reads them). Every method is then judged the same way, on an **evaluation
set** of other glyphs (generated with another seed): the encoder is frozen, its features are
computed for a labelled training part (up to 100 per class) and a test part (50 per class), and
two simple classifiers are fitted on them, as in the SimCLR and DINO papers:

* a **k-NN** vote (the 20 most similar training images by cosine similarity, weighted), which
  trains nothing, so it measures the geometry of the features themselves;
* a **linear probe** (a linear layer trained on the frozen features).

Both at two label budgets, 10 and 100 labels per class (:data:`BUDGETS`). Every encoder is one
of two small networks of about the same size: lesson 06's ResNet (an encoder of 120,580
parameters) or a ViT with 2 x 2 patches (139,072), each exposing ``features(images)``.
"""

import contextlib

import torch
from torch import nn

from course_utils import config, self_supervised
from course_utils.cnn import ResNet
from course_utils.data import labels_per_class
from course_utils.glyphs import LETTERS

IMAGE_SIZE = 16
PRETRAIN_PER_CLASS = 400
PRETRAIN_SEED = 20
EVAL_SEED = 21
EVAL_TRAIN_PER_CLASS = 100
EVAL_TEST_PER_CLASS = 50
BUDGETS = (10, 100)  # labelled images per class given to the k-NN and the linear probe
KNN_K = 20
VIT = dict(image_size=IMAGE_SIZE, patch_size=2, in_channels=3, dim=64, depth=4, num_heads=4,
           mlp_ratio=2.0)


def unlabelled_glyphs(per_class: int = PRETRAIN_PER_CLASS, *, seed: int = PRETRAIN_SEED) -> dict:
    """The pretraining set: ``{"images": normalised (N, 3, 16, 16) on cfg.device, "raw": in
    [0, 1] on the CPU, "labels": ..., "mean": ..., "std": ...}``. Only the supervised baseline
    may read ``labels``; mean and std are the set's own per-channel statistics."""
    from course_utils.few_labels import glyph_letters

    glyphs = glyph_letters(per_class, LETTERS, seed=seed)
    images, labels = glyphs["pool"]
    return {"images": images, "raw": glyphs["raw"]["pool"], "labels": labels,
            "mean": glyphs["mean"], "std": glyphs["std"]}


def evaluation_glyphs(mean: torch.Tensor, std: torch.Tensor) -> dict:
    """The evaluation set, normalised like the pretraining set (``mean``, ``std``): ``{"train":
    (images, labels), "test": (images, labels), "raw_test": ...}`` on cfg.device, with 100
    training and 50 test glyphs of each of the 26 letters."""
    from course_utils.few_labels import glyph_letters

    glyphs = glyph_letters(EVAL_TRAIN_PER_CLASS + EVAL_TEST_PER_CLASS, LETTERS, seed=EVAL_SEED,
                           mean=mean, std=std)
    images, labels = glyphs["pool"]
    test = labels_per_class(labels.cpu(), EVAL_TEST_PER_CLASS, seed=0).to(images.device)
    is_train = torch.ones(len(labels), dtype=torch.bool, device=images.device)
    is_train[test] = False
    return {"train": (images[is_train], labels[is_train]), "test": (images[test], labels[test]),
            "raw_test": glyphs["raw"]["pool"][test.cpu()], "class_names": list(LETTERS)}


def photo_protocol(splits, probe_per_class: int, test_per_class: int, *, seed: int = 0):
    """The same two sets from a dataset of RGB photos (a :class:`~course_utils.data.DatasetSplits`,
    e.g. CIFAR-10): every training photo, unlabelled, to pretrain on, and an evaluation set of
    ``probe_per_class`` labelled training photos and ``test_per_class`` test photos per class,
    normalised with the training photos' statistics. On cfg.device."""
    device = config.current().device
    if splits.train.images.shape[1] != 3:
        raise ValueError(f"the views need RGB photos; {splits.name} has "
                         f"{splits.train.images.shape[1]} channel(s)")
    raw = (splits.train.images.float() / 255).to(device)
    mean = raw.mean(dim=(0, 2, 3)).reshape(1, 3, 1, 1)
    std = raw.std(dim=(0, 2, 3)).reshape(1, 3, 1, 1)
    unlabelled = {"raw": raw, "images": (raw - mean) / std, "mean": mean, "std": std,
                  "labels": splits.train.labels.to(device)}
    data = {"class_names": list(splits.class_names)}
    for part, dataset, per_class in (("train", splits.train, probe_per_class),
                                     ("test", splits.test, test_per_class)):
        chosen = labels_per_class(dataset.labels, per_class, seed=seed)
        images, labels = dataset.subset(chosen).tensors()
        data[part] = ((images.to(device) - mean) / std, labels.to(device))
    return unlabelled, data


def build_cnn(num_outputs: int = len(LETTERS)) -> ResNet:
    """Lesson 06's ResNet (20-40-80 channels, one block each); ``features`` gives 80 numbers."""
    return ResNet(num_classes=num_outputs, widths=(20, 40, 80), depths=(1, 1, 1))


def build_vit(num_outputs: int = len(LETTERS)) -> nn.Module:
    """Lesson 05's ViT at 16 x 16 with 2 x 2 patches (64 tokens, width 64, 4 layers, 4 heads)."""
    from course_utils.vit import VisionTransformer

    return VisionTransformer(num_classes=num_outputs, **VIT)


class Pixels(nn.Module):
    """The floor that needs no network at all: an image's normalised pixels as its features."""

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)


class MeanOfPatches(nn.Module):
    """Another readout of a ViT: its patch tokens after the last layer, normalised and averaged
    (instead of the class token)."""

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.vit = vit

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit.encode(images)[:, 1:].mean(dim=1)


@torch.no_grad()
def features_of(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``model.features(images)`` in eval mode, by batches of 512, as float (N, D)."""
    model.eval()
    return torch.cat([model.features(chunk).float() for chunk in images.split(512)])


def evaluate_frozen(model: nn.Module, data: dict, budgets=BUDGETS,
                    probes=("knn", "linear")) -> dict:
    """k-NN and linear-probe test accuracy of ``model``'s frozen features at each budget:
    ``{"knn": {k: accuracy}, "linear": {k: accuracy}}`` (k labelled images per class, the
    first k of a fixed draw, so a smaller budget's images are among a larger one's).
    ``probes=("knn",)`` skips the linear probe (a curve's points need only the vote)."""
    unknown = set(probes) - {"knn", "linear"}
    if unknown:
        raise ValueError(f"probes are 'knn' and 'linear', got {sorted(unknown)}")
    train_images, train_labels = data["train"]
    test_images, test_labels = data["test"]
    train_features = features_of(model, train_images)
    test_features = features_of(model, test_images)
    scores = {probe: {} for probe in probes}
    for k in budgets:
        chosen = labels_per_class(train_labels.cpu(), k, seed=0).to(train_labels.device)
        features, labels = train_features[chosen], train_labels[chosen]
        if "knn" in probes:
            scores["knn"][k] = self_supervised.knn_accuracy(features, labels, test_features,
                                                            test_labels, k=min(KNN_K, len(labels)))
        if "linear" in probes:
            scores["linear"][k] = self_supervised.linear_probe_accuracy(features, labels,
                                                                        test_features, test_labels)
    return scores


def knn_score(model: nn.Module, data: dict, k: int = BUDGETS[-1]) -> float:
    """The 20-NN test accuracy of ``model``'s frozen features with ``k`` labels per class."""
    return evaluate_frozen(model, data, budgets=(k,), probes=("knn",))["knn"][k]


def fine_tune_accuracy(encoder: nn.Module, width: int, data: dict, k: int, *, steps: int = 300,
                       lr: float = 1e-3, seed: int = 0) -> float:
    """Test accuracy of a copy of ``encoder`` with a new linear head (``width`` inputs) trained
    end to end on the first ``k`` labelled glyphs per letter of ``data`` (MAE's own protocol:
    fine-tuning rather than frozen features). AdamW, one-cycle, lesson 06's trainer."""
    import copy

    from course_utils.few_labels import Method, accuracy, train_network

    train_images, train_labels = data["train"]
    chosen = labels_per_class(train_labels.cpu(), k, seed=0).to(train_labels.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = copy.deepcopy(encoder)
        model.head = nn.Linear(width, len(LETTERS)).to(train_images.device)
        train_network(model, train_images[chosen], train_labels[chosen], Method(lr=lr),
                      steps=steps, seed=seed)
    return accuracy(model, *data["test"])


def random_batches(count: int, batch_size: int, steps: int, *, seed: int):
    """``steps`` batches of indices into ``count`` items: shuffled passes, seeded, on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch_size:
            order = torch.cat([order, torch.randperm(count, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def pretrain(model: nn.Module, loss_of_batch, count: int, *, steps: int, batch_size: int,
             lr: float, weight_decay: float = 0.05, seed: int = 0,
             max_steps: int | None = None, every: int = 0, on_step=None) -> dict:
    """Train ``model`` on ``steps`` batches of indices into ``count`` unlabelled items:
    ``loss_of_batch(indices)`` returns the loss (a scalar tensor). AdamW with a one-cycle
    schedule (a tenth warming up), gradients clipped at norm 1. ``on_step(step, model)``, if
    given, is called every ``every`` steps (and after the last) for a curve of its own.

    On a GPU it runs as :func:`course_utils.training.fit` does: in bfloat16 autocast where the
    GPU has it, the losses kept on the device and read once at the end (reading one each step
    would make the host wait for the GPU). Returns ``{"step_loss": [...], "seconds": ...,
    "items_per_second": ...}``: the seconds and the rate leave out the time spent in
    ``on_step``. ``max_steps`` stops early with the same data order and schedule."""
    import time

    device = next(model.parameters()).device
    bfloat16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bfloat16 else contextlib.nullcontext()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                    pct_start=0.1)
    losses, evaluating, start = [], 0.0, time.perf_counter()
    model.train()
    last = max_steps or steps
    for step, indices in enumerate(random_batches(count, batch_size, last, seed=seed), start=1):
        with autocast:  # the indices go to the device without waiting for it
            loss = loss_of_batch(indices.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.detach())
        if on_step is not None and every and (step % every == 0 or step == last):
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # the steps queued so far count as training
            started = time.perf_counter()
            on_step(step, model)
            model.train()
            evaluating += time.perf_counter() - started
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the clock stops when the GPU has finished
    seconds = time.perf_counter() - start - evaluating
    return {"step_loss": torch.stack(losses).float().tolist() if losses else [],
            "seconds": seconds, "items_per_second": len(losses) * batch_size / max(seconds, 1e-9)}


def setting_up(seed: int):
    """Seeded: the unlabelled set and the evaluation set normalised alike, as every lesson 07
    recipe starts."""
    config.seed_everything(seed)
    unlabelled = unlabelled_glyphs()
    return unlabelled, evaluation_glyphs(unlabelled["mean"], unlabelled["std"])


def knn_recorder(data: dict, k: int = BUDGETS[-1]):
    """``(record, curve)``: ``record(step, model)`` appends the 20-NN accuracy of ``model``'s
    frozen features at budget ``k`` to ``curve``, a list of ``{"step": ..., "knn": ...}``."""
    curve = []

    def record(step, model):
        curve.append({"step": step, "knn": knn_score(model, data, k)})
    return record, curve


def pretrain_recipe(model: nn.Module, loss_of_batch, count: int, settings: dict, *,
                    max_steps: int | None = None, on_step=None, weight_decay: float = 0.05,
                    every: int | None = None) -> dict:
    """:func:`pretrain` with a recipe's ``steps``, ``batch_size``, ``lr`` and ``seed``; ``on_step``
    runs every tenth of the run (or every ``every`` steps), and not at all when replaying the
    first ``max_steps``."""
    steps = settings["steps"]
    if every is None:
        every = 0 if max_steps else max(1, steps // 10)
    return pretrain(model, loss_of_batch, count, steps=steps, batch_size=settings["batch_size"],
                    lr=settings["lr"], weight_decay=weight_decay, seed=settings["seed"],
                    max_steps=max_steps, every=every, on_step=on_step)


def recipe_outputs(model: nn.Module | None, data: dict, history: dict, *, evaluate: bool,
                   **extra):
    """A lesson 07 recipe's :class:`~course_utils.pretrained.Outputs`: the pretraining's step
    losses, seconds and throughput, ``extra`` results (curves ...), and the frozen ``scores`` of ``model`` on
    ``data`` unless ``evaluate`` is False (a replay of the first steps, or a run without a
    network of its own)."""
    from course_utils.pretrained import Outputs

    results = {"step_loss": history["step_loss"], "seconds": history["seconds"],
               "items_per_second": history["items_per_second"], **extra}
    if evaluate:
        results["scores"] = evaluate_frozen(model, data)
    return Outputs(model=model, results=results)


def pretrained_network(name: str, *, live: bool = False, factor: float = 1.0):
    """A lesson 07 recipe's network (frozen, eval mode, or None) and results, as recorded by
    ``course.py pretrain``; with ``live``, the recipe is run here instead, ``factor`` times as
    many steps (the full profile, and briefly the capped test run), once: its network and
    results are cached by :func:`course_utils.cache.train_once`, so part 2 of the lesson (and
    a second run) loads what part 1 trained. Results go through JSON in every case, so their
    keys are strings. Prints where they came from."""
    import json

    from course_utils.cache import train_once
    from course_utils.pretrained import get_recipe, load_pretrained

    recipe = get_recipe(name)
    if not live:
        model, results, provenance = load_pretrained(name)
        machine = provenance["machine"]
        print(f"{name}: {recipe.settings['steps']:,} steps, recorded {provenance['written'][:10]} "
              f"in {provenance['wall_seconds']:.0f} s on {machine['cpu_threads']} CPU threads "
              f"({machine['device']}); `python3 course.py pretrain {name}` repeats it")
        return model, results
    settings = {**recipe.settings, **{key: max(4, int(recipe.settings[key] * factor))
                                      for key in ("steps", "fine_tune_steps")
                                      if key in recipe.settings}}
    if "images_seen" in settings:  # a grid whose runs all see this many images
        settings["images_seen"] = max(4 * max(settings["batch_sizes"]),
                                      int(settings["images_seen"] * factor))

    def build():  # a recipe without a network of its own (a grid) caches an empty module
        return recipe.build(settings) if recipe.build is not None else nn.Module()

    def train(model):
        outputs = recipe.run(settings)
        if outputs.model is not None:
            model.load_state_dict(outputs.model.state_dict())
        return {"results": json.loads(json.dumps(outputs.results))}

    model, record = train_once(f"live-{name}", recipe=settings, build=build, train=train)
    print(f"{name}: pretrained live, {settings['steps']:,} steps")
    return (model if recipe.build is not None else None), record["results"]
