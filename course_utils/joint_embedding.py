"""Lesson 07's joint-embedding methods: SimCLR (contrastive) and DINO (self-distillation).

Both see two random views of each unlabelled glyph (:func:`course_utils.augment.simclr_views`)
and learn to give them matching outputs. SimCLR [Chen et al., 2020] keeps different images
apart with its NT-Xent loss; DINO [Caron et al., 2021] matches a student to a teacher that is
a moving average of the student, with the teacher's output centred and sharpened to avoid the
two collapses. The losses are :mod:`course_utils.self_supervised`'s; this module trains with
them and records what the lesson plots. Each network exposes ``features(images)``.
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils import augment, config, self_supervised, ssl_protocol
from course_utils.pretrained import Outputs


def projection_head(in_dim: int, hidden: int = 256, out: int = 64) -> nn.Sequential:
    """SimCLR's g: a two-layer MLP from the features to the space where the loss compares."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, out))


class SimCLRNetwork(nn.Module):
    """An encoder f (lesson 06's ResNet or the lesson's ViT, without its head) and a projection
    head g; the loss sees g(f(x)), the evaluation f(x)."""

    def __init__(self, architecture: str = "cnn", out: int = 64):
        super().__init__()
        self.encoder = _encoder(architecture)
        self.projector = projection_head(_width(architecture), out=out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.projector(self.encoder.features(images))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(images)


class DINONetwork(nn.Module):
    """A backbone and DINO's head: a small MLP, an L2-normalised bottleneck and a weight-
    normalised linear layer to ``prototypes`` outputs, the dimensions over which the teacher's
    softmax is a distribution."""

    def __init__(self, architecture: str = "vit", prototypes: int = 256, bottleneck: int = 64):
        super().__init__()
        self.encoder = _encoder(architecture)
        self.mlp = nn.Sequential(nn.Linear(_width(architecture), 256), nn.GELU(),
                                 nn.Linear(256, bottleneck))
        self.last = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, prototypes,
                                                                    bias=False))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.last(F.normalize(self.mlp(self.encoder.features(images)), dim=1))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(images)


def _encoder(architecture: str) -> nn.Module:
    if architecture not in ("cnn", "vit"):
        raise ValueError(f"architecture must be 'cnn' or 'vit', got {architecture!r}")
    encoder = ssl_protocol.build_cnn() if architecture == "cnn" else ssl_protocol.build_vit()
    encoder.head = nn.Identity()
    return encoder


def _width(architecture: str) -> int:
    return 80 if architecture == "cnn" else ssl_protocol.VIT["dim"]


def two_views(raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, crop_scale=(0.2, 1.0)):
    """Two random views of a batch of raw glyphs in [0, 1], normalised like the protocol's."""
    mean, std = mean.to(raw.device, non_blocking=True), std.to(raw.device, non_blocking=True)
    return [(augment.simclr_views(raw, crop_scale=crop_scale) - mean) / std for _ in range(2)]


# ---- SimCLR ----------------------------------------------------------------------------------

def train_simclr(settings: dict, unlabelled: dict, data: dict, *, max_steps: int | None = None,
                 with_curve: bool = True):
    """SimCLR with ``settings`` (``batch_size``, ``temperature``, ``steps``, ``lr``, ``seed``,
    ``architecture``): ``(model, history, knn curve)``; ``with_curve=False`` records no curve
    (the grid's runs, which keep only their final scores)."""
    device = config.current().device
    raw = unlabelled["raw"].to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        model = SimCLRNetwork(settings.get("architecture", "cnn")).to(device)
    record, curve = ssl_protocol.knn_recorder(data)

    def loss_of_batch(indices):
        view_1, view_2 = two_views(raw[indices.to(device)], unlabelled["mean"], unlabelled["std"])
        return self_supervised.nt_xent_loss(model(view_1), model(view_2), settings["temperature"])

    history = ssl_protocol.pretrain_recipe(model, loss_of_batch, len(raw), settings,
                                           max_steps=max_steps,
                                           on_step=record if with_curve else None)
    return model, history, curve


def run_simclr_photos(splits, settings: dict) -> dict:
    """SimCLR (``settings`` as for :func:`train_simclr`, plus ``probe_per_class``,
    ``test_per_class`` and ``budgets``) pretrained on every training photo of ``splits`` without
    its labels, then judged frozen against the same network at random initialisation. Returns
    the scores of both, the step losses, the k-NN curve, the seconds and the images per second."""
    unlabelled, data = ssl_protocol.photo_protocol(splits, settings["probe_per_class"],
                                                   settings["test_per_class"], seed=settings["seed"])
    budgets = tuple(settings["budgets"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        random_network = SimCLRNetwork(settings.get("architecture", "cnn")).to(unlabelled["raw"].device)
    random_scores = ssl_protocol.evaluate_frozen(random_network, data, budgets=budgets)
    model, history, curve = train_simclr(settings, unlabelled, data)
    return {"model": model, "scores": ssl_protocol.evaluate_frozen(model, data, budgets=budgets),
            "random_scores": random_scores, "step_loss": history["step_loss"], "knn_curve": curve,
            "seconds": history["seconds"],
            "views_per_second": 2 * history["items_per_second"],  # two views of each image
            "pretraining_photos": len(unlabelled["raw"]), "test_photos": len(data["test"][1])}


# ---- DINO ------------------------------------------------------------------------------------

def teacher_momentum(step: int, steps: int, start: float = 0.99) -> float:
    """DINO's schedule: the momentum rises from ``start`` to 1 along a cosine."""
    return 1 - (1 - start) * (math.cos(math.pi * step / steps) + 1) / 2


def train_dino(settings: dict, unlabelled: dict, data: dict, *, max_steps: int | None = None,
               every: int | None = None):
    """DINO with ``settings`` (``architecture``, ``batch_size``, ``steps``, ``lr``, ``seed``,
    ``centering`` and ``teacher_temperature``: switch centering off with ``centering=False``,
    sharpening with a teacher temperature equal to the student's). Returns ``(teacher, history,
    curve)``; the curve records, every ``every`` steps, the teacher's mean output entropy, the
    share of its most used dimension, and the 20-NN accuracy of the teacher's features."""
    device = config.current().device
    raw = unlabelled["raw"].to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        student = DINONetwork(settings.get("architecture", "vit"),
                              prototypes=settings.get("prototypes", 256)).to(device)
    teacher = copy.deepcopy(student)
    for parameter in teacher.parameters():
        parameter.requires_grad = False
    center = torch.zeros(1, settings.get("prototypes", 256), device=device)
    temperatures = {"teacher_temperature": settings["teacher_temperature"],
                    "student_temperature": settings.get("student_temperature", 0.1)}
    steps = settings["steps"]
    every = every or max(1, steps // 10)
    curve, state = [], {"step": 0, "center": center}

    def loss_of_batch(indices):
        view_1, view_2 = two_views(raw[indices.to(device)], unlabelled["mean"], unlabelled["std"],
                                   crop_scale=(0.3, 1.0))
        teacher.train()  # the teacher's BatchNorm-free ViT/head: train() only matters for a CNN
        with torch.no_grad():
            teacher_1, teacher_2 = teacher(view_1), teacher(view_2)
        loss = self_supervised.dino_loss(student(view_1), student(view_2), teacher_1, teacher_2,
                                         state["center"], **temperatures)
        if settings.get("centering", True):
            state["center"] = self_supervised.update_center(
                state["center"], torch.cat([teacher_1, teacher_2]))
        state["teacher_outputs"] = torch.cat([teacher_1, teacher_2])
        return loss

    def after_step(step, model):
        with torch.no_grad():
            self_supervised.ema_update(teacher, student, teacher_momentum(step, steps))
        if step % every == 0 or step == (max_steps or steps):
            probabilities = F.softmax((state["teacher_outputs"] - state["center"])
                                      / temperatures["teacher_temperature"], dim=1)
            point = {"step": step, "entropy": self_supervised.mean_entropy(probabilities),
                     "dominant_share": self_supervised.dominant_share(probabilities)}
            if not max_steps:
                point["knn"] = ssl_protocol.knn_score(teacher, data)
            curve.append(point)

    history = ssl_protocol.pretrain_recipe(student, loss_of_batch, len(raw), settings,
                                           max_steps=max_steps, on_step=after_step,
                                           weight_decay=0.04, every=1)
    return teacher.eval(), history, curve


# ---- the recipes' runs -----------------------------------------------------------------------

def run_simclr(settings: dict, max_steps: int | None = None) -> Outputs:
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    model, history, curve = train_simclr(settings, unlabelled, data, max_steps=max_steps)
    return ssl_protocol.recipe_outputs(model, data, history, evaluate=not max_steps,
                                       knn_curve=curve)


def run_simclr_grid(settings: dict, max_steps: int | None = None) -> Outputs:
    """SimCLR at each temperature (batch ``batch_size``) and each batch size (temperature
    ``temperature``), every run seeing the same number of images."""
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    plan = ([{"temperature": t, "batch_size": settings["batch_size"]} for t in settings["temperatures"]]
            + [{"temperature": settings["temperature"], "batch_size": b} for b in settings["batch_sizes"]
               if b != settings["batch_size"]])
    runs = []
    for change in plan:
        run_settings = {**settings, **change,
                        "steps": settings["images_seen"] // change["batch_size"]}
        model, history, _ = train_simclr(run_settings, unlabelled, data, max_steps=max_steps,
                                         with_curve=False)
        runs.append({**change, "steps": run_settings["steps"], "step_loss": history["step_loss"],
                     "seconds": history["seconds"],
                     "scores": None if max_steps else ssl_protocol.evaluate_frozen(model, data)})
        if max_steps:
            break
    return Outputs(model=None, results={"runs": runs, "step_loss": runs[0]["step_loss"]})


def run_dino(settings: dict, max_steps: int | None = None) -> Outputs:
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    teacher, history, curve = train_dino(settings, unlabelled, data, max_steps=max_steps)
    return ssl_protocol.recipe_outputs(teacher, data, history, evaluate=not max_steps, curve=curve)


COLLAPSE_VARIANTS = {"centering and sharpening": {}, "centering off": {"centering": False},
                     "sharpening off": {"teacher_temperature": "student"}}


def collapse_settings(settings: dict, variant: str) -> dict:
    """DINO's ``settings`` with one of :data:`COLLAPSE_VARIANTS` applied: centering switched off,
    or sharpening (the teacher at the student's temperature)."""
    change = dict(COLLAPSE_VARIANTS[variant])
    if change.get("teacher_temperature") == "student":
        change["teacher_temperature"] = settings["student_temperature"]
    return {**settings, **change}


def run_dino_collapse(settings: dict, max_steps: int | None = None) -> Outputs:
    """The full DINO recipe and its two ablations from the same start: curves for each."""
    unlabelled, data = ssl_protocol.setting_up(settings["seed"])
    runs = []
    for variant in COLLAPSE_VARIANTS:
        config.seed_everything(settings["seed"])
        _, history, curve = train_dino(collapse_settings(settings, variant), unlabelled, data,
                                       max_steps=max_steps, every=settings["every"])
        runs.append({"variant": variant, "step_loss": history["step_loss"], "curve": curve,
                     "seconds": history["seconds"]})
        if max_steps:
            break
    return Outputs(model=None, results={"runs": runs, "step_loss": runs[0]["step_loss"]})
