"""Lesson 06 exercises of part 2: the features a pretrained network gives before its head
(exercise 1) and an optimiser for fine-tuning with two learning rates (exercise 3).

Per-class accuracy is checked on its values; its slips are each the reference with one common
mistake (see course_utils.checks.Slip). The optimiser and the features are checked on a small
course ResNet built afresh for every call, and their mistakes are named by the property each
breaks (which parameters train at which learning rate; the model's BatchNorm statistics, the
answer's gradient) or, for the features' values, by the slip that reproduces them.
"""

import inspect
import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from course_utils import cnn, finetune
from course_utils.checks import (Case, Slip, WrongResult, check_outcome, describe_value,
                                 diagnose_wrong_result, first_names)

# ---- reference solutions ---------------------------------------------------------------------


def fine_tuning_optimizer(model: nn.Module, *, backbone_lr: float,
                          head_lr: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model``: the head's at ``head_lr``, all others
    (the backbone's) at ``backbone_lr``; frozen parameters are left out."""
    return torch.optim.AdamW(finetune.parameter_groups(model, lr=head_lr, head_lr=head_lr,
                                                       backbone_lr=backbone_lr))


def extract_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The course ResNet's features of ``images`` (N, C_in, H, W): what its head reads, the
    last stage's maps averaged over the positions, (N, C). Computed in eval mode (BatchNorm uses
    its running statistics and leaves them as they are) and without gradient."""
    model.eval()
    with torch.no_grad():
        return model.stages(model.stem(images)).mean(dim=(2, 3))  # (N, C, H', W') -> (N, C)


# ---- what the checks share: a small ResNet, and answers that are not what was asked ----------

WARM_UP_BATCHES = 3


@dataclass(frozen=True)
class _SmallResNet:
    """The course ResNet of a case, rebuilt with the same weights at every call.

    ``train``: the prefixes that stay trainable (finetune.freeze), or None for all of them.
    ``warmed_up``: after a few forward passes in train mode on random images, so that the
    BatchNorm running statistics are not the defaults (0 and 1) and the model is left in train
    mode, as it is during training.
    """

    settings: dict
    train: tuple | None = None
    warmed_up: bool = False

    def build(self) -> nn.Module:
        torch.manual_seed(0)  # the caller forks the random numbers
        model = cnn.ResNet(**self.settings)
        if self.train is not None:
            finetune.freeze(model, train=self.train)
        if self.warmed_up:
            with torch.no_grad():
                for _ in range(WARM_UP_BATCHES):
                    model(torch.rand(4, self.settings.get("in_channels", 3), 8, 8) * 2 + 0.5)
        return model

    def __repr__(self) -> str:
        text = f"ResNet({', '.join(f'{key}={value!r}' for key, value in self.settings.items())})"
        if self.train is not None:
            text += f" with only {', '.join(self.train)} trainable"
        if self.warmed_up:
            text += f" in train mode after {WARM_UP_BATCHES} batches"
        return text




# ---- part 2, exercise 3: an optimiser for fine-tuning ----------------------------------------

ADAMW_WEIGHT_DECAY = inspect.signature(torch.optim.AdamW).parameters["weight_decay"].default

GROUPS_NOT_OPTIMIZER = ("you built the parameter groups but returned them as they are: pass them "
                        "to the optimiser, torch.optim.AdamW(groups), and return the optimiser.")
NOT_AN_OPTIMIZER = ("return the optimiser: torch.optim.AdamW([{'params': ..., 'lr': "
                    "backbone_lr}, {'params': ..., 'lr': head_lr}]).")
NOT_ADAMW = ("the lesson fine-tunes with AdamW, whose step adapts to each weight's gradients and "
             "whose weight decay is kept apart from them; another optimiser with the same two "
             "learning rates takes steps of another size. Use torch.optim.AdamW.")
NOT_THE_MODELS = ("the optimiser must hold the parameters of the model it is given: take them "
                  "from model.named_parameters(), not from a copy or a new model.")
FROZEN_INCLUDED = ("a frozen parameter (requires_grad False) gets no gradient, so it has no place "
                   "in the optimiser: keep only the parameters whose requires_grad is True.")
MISSING = ("every trainable parameter must be in one of the two groups: the head's parameters "
           "(names that start with 'head.') in the head's group, all the others in the "
           "backbone's.")
ONE_GROUP_BACKBONE_LR = ("the whole model trains at backbone_lr in one group: the new head "
                         "starts from random weights and needs larger steps than the pretrained "
                         "layers. Make two groups, the head's parameters at head_lr and all the "
                         "others at backbone_lr.")
ONE_GROUP_HEAD_LR = ("the whole model trains at head_lr in one group: steps that large wreck the "
                     "pretrained weights in the first updates, while the new head is still "
                     "random. Make two groups, the head's parameters at head_lr and all the "
                     "others at backbone_lr.")
MIXED = ("a group holds parameters of the head and of the backbone, so both learn at the same "
         "rate: put the head's parameters (names that start with 'head.') in one group and all "
         "the others in the other.")
SWAPPED = ("the learning rates are swapped: the head, new and random, gets head_lr (the larger "
           "one here), and the pretrained backbone gets backbone_lr.")
WRONG_LR = ("give each group its learning rate: {'params': backbone_parameters, 'lr': "
            "backbone_lr} and {'params': head_parameters, 'lr': head_lr}.")
COUNTED_TWICE = ("the head's parameters are in both groups (AdamW refuses a parameter that "
                 "appears twice): the backbone is everything but the head, so leave out of the "
                 "backbone's group every parameter whose name starts with 'head.'.")
WEIGHT_DECAY = (f"leave weight_decay at AdamW's default ({ADAMW_WEIGHT_DECAY}): do not pass it, "
                f"neither to AdamW nor in the groups.")


def _check_optimizer(optimizer, model: nn.Module, backbone_lr: float, head_lr: float) -> dict:
    """``{parameter name: learning rate}`` of what ``optimizer`` trains, once checked to be the
    optimiser asked for; else raise a WrongResult that says what is wrong."""
    if isinstance(optimizer, (list, tuple)) and optimizer and all(
            isinstance(group, dict) for group in optimizer):
        raise WrongResult(f"fine_tuning_optimizer returned a {type(optimizer).__name__} of "
                          f"{len(optimizer)} parameter groups, not an optimiser",
                          GROUPS_NOT_OPTIMIZER)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise WrongResult(f"fine_tuning_optimizer returned {describe_value(optimizer)}, not an "
                          f"optimiser", NOT_AN_OPTIMIZER)
    if not isinstance(optimizer, torch.optim.AdamW):
        raise WrongResult(f"it is torch.optim.{type(optimizer).__name__}, not torch.optim.AdamW",
                          NOT_ADAMW)
    names = {id(parameter): name for name, parameter in model.named_parameters()}
    groups = [group for group in optimizer.param_groups if group["params"]]  # empty: no effect
    held = [parameter for group in groups for parameter in group["params"]]
    if any(id(parameter) not in names for parameter in held):
        raise WrongResult("it holds parameters that are not the model's", NOT_THE_MODELS)
    frozen = [names[id(parameter)] for parameter in held if not parameter.requires_grad]
    if frozen:
        raise WrongResult(f"it holds {len(frozen)} frozen parameters: {first_names(frozen)}",
                          FROZEN_INCLUDED)
    held_ids = {id(parameter) for parameter in held}
    missing = [name for name, parameter in model.named_parameters()
               if parameter.requires_grad and id(parameter) not in held_ids]
    if missing:
        raise WrongResult(f"{len(missing)} trainable parameters are in no group: "
                          f"{first_names(missing)}", MISSING)
    head = finetune.head_name(model) + "."
    kinds = []  # "head" or "backbone", one per group
    for group in groups:
        in_head = {names[id(parameter)].startswith(head) for parameter in group["params"]}
        if len(in_head) > 1:
            lr = group["lr"]
            hint = MIXED
            if len(groups) == 1:
                hint = (ONE_GROUP_BACKBONE_LR if math.isclose(lr, backbone_lr) else
                        ONE_GROUP_HEAD_LR if math.isclose(lr, head_lr) else MIXED)
            raise WrongResult(f"one group, at lr {lr:g}, holds the parameters of the head and of "
                              f"the backbone", hint)
        kinds.append("head" if in_head == {True} else "backbone")
    right = {"head": head_lr, "backbone": backbone_lr}
    other = {"head": backbone_lr, "backbone": head_lr}
    wrong = [(kind, group["lr"]) for kind, group in zip(kinds, groups)
             if not math.isclose(group["lr"], right[kind])]
    if wrong:
        kind, lr = wrong[0]
        swapped = all(math.isclose(group["lr"], other[group_kind])
                      for group_kind, group in zip(kinds, groups))
        raise WrongResult(f"the {kind}'s group has lr {lr:g} instead of {kind}_lr = "
                          f"{right[kind]:g}", SWAPPED if swapped else WRONG_LR)
    for group in groups:
        if group["weight_decay"] != ADAMW_WEIGHT_DECAY:
            raise WrongResult(f"a group has weight_decay {group['weight_decay']:g} instead of "
                              f"AdamW's default {ADAMW_WEIGHT_DECAY:g}", WEIGHT_DECAY)
    return {names[id(parameter)]: float(group["lr"])
            for group in groups for parameter in group["params"]}


def _optimizer_outcome(make):
    """What ``make`` (called like fine_tuning_optimizer) trains on a case's model, at which
    learning rate, once the optimiser is checked to be the one asked for."""
    def run(model: _SmallResNet, *, backbone_lr, head_lr):
        with torch.random.fork_rng():  # the notebook's random numbers go on as they were
            network = model.build()
            optimizer = make(network, backbone_lr=backbone_lr, head_lr=head_lr)
        return _check_optimizer(optimizer, network, backbone_lr, head_lr)
    return run


def _diagnose_optimizer(case, expected, got):
    """A WrongResult found by the check, or AdamW refusing a parameter that is in two groups."""
    if isinstance(got, ValueError) and "more than one parameter group" in str(got):
        return COUNTED_TWICE
    return diagnose_wrong_result(case, expected, got)


OPTIMIZER_PASSED = (" The new head learns fast while the pretrained layers move slowly, and "
                    "frozen layers stay out.")


def check_fine_tuning_optimizer(student):
    """Exercise 3 of part 2: ``fine_tuning_optimizer(model, *, backbone_lr, head_lr)`` -> a
    torch.optim.AdamW with two parameter groups: the trainable parameters of everything but
    ``model.head`` at ``backbone_lr``, and the head's at ``head_lr``; frozen parameters
    (requires_grad False) left out, weight_decay left at AdamW's default. The groups may come
    in either order. Returns the function the notebook should use next."""
    settings = {"num_classes": 5, "widths": (4, 8, 8), "depths": (1, 1, 1)}
    cases = [Case("a ResNet for 5 classes, every parameter trainable", (_SmallResNet(settings),),
                  {"backbone_lr": 1e-4, "head_lr": 1e-2},
                  hint="two groups: the head's two parameters (head.weight, head.bias) at "
                       "head_lr, and every other parameter at backbone_lr."),
             Case("the same ResNet, only its last stage and head trainable",
                  (_SmallResNet(settings, train=("stages.2", "head")),),
                  {"backbone_lr": 3e-4, "head_lr": 3e-3},
                  hint="stages.0, stages.1 and the stem are frozen: leave them out; the "
                       "backbone's group holds the trainable parameters of stages.2 only."),
             Case("a linear probe of a grey ResNet: only the head trainable",
                  (_SmallResNet({**settings, "in_channels": 1}, train=("head",)),),
                  {"backbone_lr": 1e-4, "head_lr": 1e-3},
                  hint="the backbone is all frozen, so its group is empty (AdamW accepts an "
                       "empty group) or left out; the head's group holds head.weight and "
                       "head.bias at head_lr.")]
    return check_outcome(student, fine_tuning_optimizer, _optimizer_outcome, cases,
                         exercise="Exercise 3 of part 2 (fine-tuning optimiser)",
                         what="the optimiser is not the one asked for",
                         diagnose=_diagnose_optimizer, passed=OPTIMIZER_PASSED)


def _optimizer_variant(model, *, backbone_lr, head_lr, one_group=None, swapped=False,
                       head_in_backbone=False, frozen_too=False, returns="AdamW"):
    """fine_tuning_optimizer by hand with one thing changed (the defaults give a right answer:
    two groups, the backbone's empty when it is all frozen)."""
    head, backbone = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad or frozen_too:
            (head if name.startswith("head.") else backbone).append(parameter)
    if head_in_backbone:
        backbone = backbone + head
    if swapped:
        backbone_lr, head_lr = head_lr, backbone_lr
    groups = [{"params": backbone, "lr": backbone_lr}, {"params": head, "lr": head_lr}]
    if one_group is not None:
        lr = {"backbone_lr": backbone_lr, "head_lr": head_lr}[one_group]
        groups = [{"params": list(model.parameters()), "lr": lr}]
    if returns == "groups":
        return groups
    return (torch.optim.SGD if returns == "SGD" else torch.optim.AdamW)(groups)


# Not passed to the check, which names these mistakes by the property each breaks (which
# parameters are in which group, at which rate; the optimiser's type); the tests run them.
OPTIMIZER_SLIPS = [
    Slip("one group at backbone_lr", ONE_GROUP_BACKBONE_LR,
         partial(_optimizer_variant, one_group="backbone_lr")),
    Slip("one group at head_lr", ONE_GROUP_HEAD_LR,
         partial(_optimizer_variant, one_group="head_lr")),
    Slip("learning rates swapped", SWAPPED, partial(_optimizer_variant, swapped=True)),
    Slip("head in the backbone's group too", COUNTED_TWICE,
         partial(_optimizer_variant, head_in_backbone=True)),
    Slip("frozen parameters included", FROZEN_INCLUDED,
         partial(_optimizer_variant, frozen_too=True)),
    Slip("the groups, not an optimiser", GROUPS_NOT_OPTIMIZER,
         partial(_optimizer_variant, returns="groups")),
    Slip("SGD", NOT_ADAMW, partial(_optimizer_variant, returns="SGD")),
]


# ---- part 2, exercise 1: features before the head --------------------------------------------

TRAIN_MODE = ("the model ran in train mode: there BatchNorm normalises with the batch's own "
              "statistics (so an image's features depend on the other images of its batch) and "
              "moves its running statistics towards them, which changes the model. Call "
              "model.eval() first, so that BatchNorm uses the statistics it learned and leaves "
              "them alone.")
GRADIENT_KEPT = ("the features keep the graph back to every weight that made them, and its "
                 "memory, which nothing will use: features are computed once and stored. Compute "
                 "them under `with torch.no_grad():`, so that the answer has requires_grad "
                 "False.")


def _features_outcome(extract):
    """The features ``extract`` (called like extract_features) gives on a case's warmed-up
    model, once checked to leave the model's BatchNorm statistics alone and to carry no
    gradient."""
    def run(model: _SmallResNet, images):
        with torch.random.fork_rng():  # the notebook's random numbers go on as they were
            network = model.build()
            before = {name: buffer.clone() for name, buffer in network.named_buffers()}
            features = extract(network, images)
        changed = [name for name, buffer in network.named_buffers()
                   if name in before and not torch.equal(buffer, before[name])]
        if changed:
            raise WrongResult(f"the model's BatchNorm statistics changed: {first_names(changed)} "
                              f"({len(changed)} of its {len(before)} buffers)", TRAIN_MODE)
        if isinstance(features, torch.Tensor) and features.requires_grad:
            raise WrongResult("they require gradients (requires_grad True)", GRADIENT_KEPT)
        return features
    return run


def _features_cases():
    rgb = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    grey = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    wide = torch.rand(3, 3, 8, 16, generator=torch.Generator().manual_seed(2))
    return [Case("2 RGB images of 8 x 8, a ResNet of widths (4, 8, 8)",
                 (_SmallResNet({"num_classes": 5, "widths": (4, 8, 8), "depths": (1, 1, 1)},
                               warmed_up=True), rgb),
                 hint="model.eval(), then inside torch.no_grad(): "
                      "model.stages(model.stem(images)) is (2, 8, 2, 2); its mean over the "
                      "positions, dims 2 and 3, is (2, 8)."),
            Case("one grey image of 12 x 12, a ResNet of widths (4, 6)",
                 (_SmallResNet({"num_classes": 3, "in_channels": 1, "widths": (4, 6),
                                "depths": (1, 1)}, warmed_up=True), grey),
                 hint="one image: the answer is (1, 6), the last stage's 6 channels; avoid "
                      "squeeze(), which would drop the batch axis."),
            Case("3 RGB images of 8 x 16, a ResNet of widths (4, 8, 8)",
                 (_SmallResNet({"num_classes": 5, "widths": (4, 8, 8), "depths": (1, 1, 1)},
                               warmed_up=True), wide),
                 hint="the maps are 2 x 4 here: average over both spatial axes, "
                      "mean(dim=(2, 3)), to get (3, 8).")]


FEATURES_PASSED = (" These vectors are what a linear probe's head learns from: compute them once, "
                   "and train the head on them.")


def check_extract_features(student):
    """Exercise 1 of part 2: ``extract_features(model, images)`` -> (N, C): the course ResNet's features
    before its head, ``model.stages(model.stem(images)).mean(dim=(2, 3))``, computed in eval
    mode (the model's BatchNorm running statistics stay as they are; the model may be left in
    eval mode) and without gradient (the answer has requires_grad False). Returns the function
    the notebook should use next."""
    return check_outcome(student, extract_features, _features_outcome, _features_cases(),
                         exercise="Exercise 1 of part 2 (features before the head)",
                         what="these are not the features asked for", slips=FEATURES_SLIPS,
                         passed=FEATURES_PASSED)


def _features_variant(model, images, *, mode="eval", gradient=False, pooling="mean",
                      head=False):
    """extract_features with one thing changed (the defaults give the reference)."""
    if mode == "eval":
        model.eval()
    with torch.set_grad_enabled(gradient):
        maps = model.stages(model.stem(images))          # (N, C, H', W')
        if pooling == "mean":
            features = maps.mean(dim=(2, 3))             # (N, C)
        elif pooling == "max":
            features = maps.amax(dim=(2, 3))             # (N, C)
        elif pooling == "flatten":
            features = maps.flatten(start_dim=1)         # (N, C * H' * W')
        else:
            features = maps
        return model.head(features) if head else features


def _head_hint(model, images):
    num_classes = model.settings["num_classes"]
    return (f"your answer has {num_classes} columns, one per class: those are the head's scores "
            f"(the logits) for the old task. The features are what the head reads, before it: "
            f"model.stages(model.stem(images)).mean(dim=(2, 3)), without model.head.")


FEATURES_SLIPS = [
    Slip("the head applied", _head_hint, partial(_features_variant, head=True)),
    Slip("no pooling",
         "your features are the last stage's maps, (N, C, H', W'): one vector of C at every "
         "position. Average them over the positions, mean(dim=(2, 3)), to get one vector of C "
         "per image, as the ResNet does before its head.",
         partial(_features_variant, pooling="none")),
    Slip("max pooling",
         "you took each channel's largest value over the positions: the ResNet's head was "
         "trained on their average, mean(dim=(2, 3)), so the features are the average.",
         partial(_features_variant, pooling="max")),
    Slip("flattened",
         "you flattened the maps into (N, C * H' * W'): that vector's length depends on the "
         "image size, and it keeps where each value was. The head reads one number per "
         "channel, the average over the positions, mean(dim=(2, 3)).",
         partial(_features_variant, pooling="flatten")),
    Slip("train mode", TRAIN_MODE, partial(_features_variant, mode="as given")),
    Slip("gradient kept", GRADIENT_KEPT, partial(_features_variant, gradient=True)),
]
