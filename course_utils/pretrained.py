"""Ahead-of-time runs: experiments too long to run live on a laptop CPU, run once and committed.

Some experiments of lessons 05-07 honestly need minutes on a CPU (a grid of trainings, a
self-supervised pretraining). Each is a :class:`Recipe` here: its settings and the function
that runs them. ``python3 course.py pretrain [NAME ...]`` runs recipes and writes their small
outputs under ``data/pretrained/NAME/``:

* ``weights.pt``: the trained model's weights (loaded weights-only), when the recipe has a model;
* ``results.json``: curves and tables, always with ``step_loss``, the loss of every training step;
* ``provenance.json``: the command, the recipe's settings and hash, the code version, the seed,
  the wall time and the machine, and the checksums of the two files above.

They are committed, so a first run of a lesson and a live class load them at once. A lesson
that shows one says so, plots its recorded curve, and can run the recipe live (``run_recipe``).
:func:`load_pretrained` refuses outputs whose recipe changed since they were written, and
``tests/test_pretrained.py`` retrains the first steps of each and matches the recorded losses.
"""

import argparse
import datetime
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from course_utils import config
from course_utils.cache import package_version, source_of
from course_utils.storage import CorruptCacheError, atomic_write_bytes, sha256_of

REPLAY_STEPS = 8  # how many first steps the test retrains and compares
# In the repository (committed), wherever COURSE_DATA_DIR puts the downloaded data.
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "data" / "pretrained"


@dataclass
class Outputs:
    """What a recipe's run returns: the trained model (or None) and JSON-able results, which
    must include ``step_loss`` (the loss of every training step, in order)."""

    model: nn.Module | None
    results: dict


@dataclass(frozen=True)
class Recipe:
    """An ahead-of-time experiment: ``run(settings, max_steps=None) -> Outputs``.

    ``max_steps`` stops training early with everything else unchanged (same data order, same
    learning-rate schedule), so that a test can retrain the first steps and compare.
    ``build(settings)`` makes the untrained model that the weights load into.
    """

    name: str
    summary: str
    settings: dict
    run: Callable[..., Outputs]
    build: Callable[[dict], nn.Module] | None = None
    lessons: tuple[str, ...] = field(default_factory=tuple)

    def hash(self) -> str:
        """Changes when the settings or the code of ``run`` or ``build`` change."""
        identity = {"name": self.name, "settings": self.settings, "run": source_of(self.run),
                    "build": source_of(self.build) if self.build else None}
        return sha256_of(json.dumps(identity, sort_keys=True).encode())[:16]


# ---------------------------------------------------------------------------------------------
# The recipes.

def _glyph_tensors(num_images: int, seed: int):
    from course_utils.data import load_dataset

    splits = load_dataset("glyphs", num_images=num_images, seed=seed)
    return {name: getattr(splits, name).tensors() for name in ("train", "val", "test")}


def _build_vit_glyphs(settings: dict) -> nn.Module:
    from course_utils.vit import VisionTransformer

    return VisionTransformer(image_size=32, patch_size=settings["patch_size"], in_channels=3,
                             num_classes=26, dim=settings["dim"], depth=settings["depth"],
                             num_heads=settings["num_heads"], mlp_ratio=settings["mlp_ratio"])


def _build_resnet_glyphs(settings: dict) -> nn.Module:
    from course_utils.cnn import ResNet

    return ResNet(num_classes=26, widths=tuple(settings["widths"]), depths=tuple(settings["depths"]))


def _train_glyph_classifier(settings: dict, build: Callable[[dict], nn.Module],
                            max_steps: int | None) -> Outputs:
    """Train ``build(settings)`` on glyphs with AdamW and a one-cycle schedule, then test it."""
    from course_utils.data import tensor_batches
    from course_utils.training import evaluate, fit

    device = config.current().device
    config.seed_everything(settings["seed"])
    data = _glyph_tensors(settings["num_images"], settings["seed"])
    mean = data["train"][0].mean(dim=(0, 2, 3), keepdim=True)
    std = data["train"][0].std(dim=(0, 2, 3), keepdim=True)

    def loader(split, shuffle):
        images, labels = data[split]
        return tensor_batches(((images - mean) / std).to(device), labels.to(device),
                              batch_size=settings["batch_size"], shuffle=shuffle, seed=settings["seed"])

    train_loader = loader("train", shuffle=True)
    model = build(settings).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["lr"],
                                  weight_decay=settings["weight_decay"])
    total_steps = settings["epochs"] * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings["lr"],
                                                    total_steps=total_steps, pct_start=0.1)
    history = fit(model, train_loader, loader("val", shuffle=False), optimizer=optimizer,
                  steps=max_steps or total_steps, scheduler=scheduler, scheduler_interval="step",
                  clip_grad_norm=1.0, progress=True)
    results = {"history": history, "step_loss": history["step_loss"],
               "normalisation": {"mean": mean.flatten().tolist(), "std": std.flatten().tolist()}}
    if max_steps is None:
        results["test"] = evaluate(model, loader("test", shuffle=False))
    return Outputs(model=model, results=results)


def _run_vit_glyphs(settings: dict, max_steps: int | None = None) -> Outputs:
    """A small ViT trained on glyphs for lesson 05's attention maps and position embeddings."""
    return _train_glyph_classifier(settings, _build_vit_glyphs, max_steps)


def _run_resnet_glyphs(settings: dict, max_steps: int | None = None) -> Outputs:
    """A small ResNet trained exactly like the ViT of ``vit-glyphs``, for lesson 05's comparisons."""
    return _train_glyph_classifier(settings, _build_resnet_glyphs, max_steps)


def _run_data_hunger(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 05's grid: test accuracy of a ViT and a ResNet against the training-set size."""
    from course_utils.data_hunger import run_grid

    runs = run_grid(settings, max_steps)
    return Outputs(model=None, results={"runs": runs, "step_loss": runs[0]["step_loss"]})


def _build_small_resnet(settings: dict) -> nn.Module:
    from course_utils.few_labels import build_resnet

    return build_resnet(settings["num_classes"])


def _train_small_resnet(settings: dict, train: tuple, tests: dict, normalisation: dict,
                        max_steps: int | None) -> Outputs:
    """Lesson 06's ResNet trained on ``train`` (the way few_labels trains), tested on ``tests``;
    ``normalisation`` (the mean and std the images were normalised with) goes in the results."""
    from course_utils import few_labels

    model = _build_small_resnet(settings).to(config.current().device)
    history = few_labels.train_network(model, *train, few_labels.Method(lr=settings["lr"]),
                                       steps=settings["steps"], batch_size=settings["batch_size"],
                                       seed=settings["seed"], max_steps=max_steps)
    results = {"step_loss": history["step_loss"], "train_loss": history["train_loss"],
               "normalisation": normalisation}
    if max_steps is None:
        results["test_accuracy"] = {name: few_labels.accuracy(model, *test)
                                    for name, test in tests.items()}
    return Outputs(model=model, results=results)


def _run_resnet_glyphs_a_m(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 06's source network: the small ResNet trained on 16x16 glyphs of A to M only
    (N to Z are kept for the target task)."""
    from course_utils.few_labels import glyph_letters

    config.seed_everything(settings["seed"])
    train = glyph_letters(settings["per_class"], settings["letters"], seed=settings["seed"] + 1)
    test = glyph_letters(settings["test_per_class"], settings["letters"], seed=settings["seed"] + 2,
                         mean=train["mean"], std=train["std"])
    normalisation = {"mean": train["mean"].flatten().tolist(), "std": train["std"].flatten().tolist()}
    return _train_small_resnet(settings, train["pool"], {"glyphs": test["pool"]}, normalisation,
                               max_steps)


def _run_resnet_font_digits(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 06's synthetic-to-real network: trained on font-rendered digits only, tested on
    other font digits and on the real handwritten test set of the few-labels protocol."""
    from course_utils import few_labels

    config.seed_everything(settings["seed"])
    train = few_labels.font_digit_data(settings["num_images"], seed=settings["seed"] + 1)
    test = few_labels.font_digit_data(settings["test_images"], seed=settings["seed"] + 2)
    tests = {"font digits": test["pool"], "real digits": few_labels.target_data("digits")["test"]}
    normalisation = {"mean": train["mean"].flatten().tolist(), "std": train["std"].flatten().tolist()}
    return _train_small_resnet(settings, train["pool"], tests, normalisation, max_steps)


def _run_few_labels(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 06's grid: every method at every label budget, on letters, digits and faces."""
    from course_utils.few_labels import run_grid

    runs = run_grid(settings, max_steps)
    return Outputs(model=None, results={"runs": runs, "step_loss": runs[0]["step_loss"]})


def _run_pretext(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 07: a pretext or generative pretraining on the unlabelled glyphs (``method``)."""
    from course_utils import pretext, ssl_protocol

    runs = {"jigsaw": pretext.run_jigsaw, "autoencoder": pretext.run_autoencoder,
            "mae": pretext.run_mae, "mae ratios": pretext.run_mae_ratios,
            "supervised cnn": lambda s, m: pretext.run_supervised(s, ssl_protocol.build_cnn, m),
            "supervised vit": lambda s, m: pretext.run_supervised(s, ssl_protocol.build_vit, m)}
    return runs[settings["method"]](settings, max_steps)


def _run_joint_embedding(settings: dict, max_steps: int | None = None) -> Outputs:
    """Lesson 07: SimCLR or DINO on the unlabelled glyphs (``method``)."""
    from course_utils import joint_embedding

    runs = {"simclr": joint_embedding.run_simclr, "simclr grid": joint_embedding.run_simclr_grid,
            "dino": joint_embedding.run_dino, "dino collapse": joint_embedding.run_dino_collapse}
    return runs[settings["method"]](settings, max_steps)


def _build_joint_embedding(settings: dict) -> nn.Module:
    from course_utils import joint_embedding

    if settings["method"] == "simclr":
        return joint_embedding.SimCLRNetwork(settings["architecture"])
    return joint_embedding.DINONetwork(settings["architecture"], prototypes=settings["prototypes"])


def _build_pretext(settings: dict) -> nn.Module:
    from course_utils import pretext, ssl_protocol

    builders = {"jigsaw": lambda: pretext.JigsawNetwork(settings["permutations"]),
                "autoencoder": pretext.AutoEncoder, "mae": pretext.MaskedAutoEncoder,
                "supervised cnn": ssl_protocol.build_cnn, "supervised vit": ssl_protocol.build_vit}
    return builders[settings["method"]]()


_GLYPH_TRAINING = {"num_images": 12_000, "seed": 0, "batch_size": 128, "epochs": 25, "lr": 2e-3,
                   "weight_decay": 0.05}
_DATA_HUNGER = {"seed": 0, "per_class": [20, 40, 80, 160, 320, 640], "test_per_class": 100,
                "repeats": 3, "steps": 1_000, "batch_size": 64, "lr": 2e-3, "weight_decay": 0.05,
                "patch_sizes": [2, 8], "patch_per_class": [80, 640]}

_SMALL_RESNET = {"seed": 0, "batch_size": 64, "lr": 2e-3}
_SCRATCH = ["from scratch", "from scratch + augmentation"]
_TRANSFER = ["linear probe", "fine-tune top", "fine-tune all, low lr", "fine-tune all, high lr"]
_FEW_LABELS = {"repeats": 3, "steps": 200, "targets": {
    "letters": _SCRATCH + _TRANSFER,
    "digits": _SCRATCH + ["from scratch + augmentation + half turns", "font digits, fine-tuned"]
              + _TRANSFER,
    "faces": _SCRATCH + _TRANSFER},
    "pseudo_labels": {"target": "letters", "teacher": "fine-tune top", "threshold": 0.9,
                      "rounds": 2, "sweep_k": 5, "thresholds": [0.0, 0.5, 0.8, 0.95, 0.99]}}

_SSL = {"seed": 0, "steps": 1_000, "lr": 2e-3}  # lesson 07's pretraining on unlabelled glyphs


RECIPES = {recipe.name: recipe for recipe in [
    Recipe(name="vit-glyphs",
           summary="a small Vision Transformer (patches of 4x4, 4 layers) trained on glyphs",
           settings={**_GLYPH_TRAINING, "patch_size": 4, "dim": 64, "depth": 4, "num_heads": 4,
                     "mlp_ratio": 2.0},
           run=_run_vit_glyphs, build=_build_vit_glyphs, lessons=("05",)),
    Recipe(name="resnet-glyphs",
           summary="a small ResNet (20-40-80 channels) trained on glyphs exactly like vit-glyphs",
           settings={**_GLYPH_TRAINING, "widths": [20, 40, 80], "depths": [1, 1, 1]},
           run=_run_resnet_glyphs, build=_build_resnet_glyphs, lessons=("05",)),
    Recipe(name="data-hunger",
           summary="a ViT and a ResNet on 16x16 glyphs, 520 to 16,640 training images, 3 repeats",
           settings=_DATA_HUNGER, run=_run_data_hunger, lessons=("05",)),
    Recipe(name="resnet-glyphs-a-m",
           summary="lesson 06's source network: the small ResNet trained on 16x16 glyphs A to M",
           settings={**_SMALL_RESNET, "num_classes": 13, "letters": "ABCDEFGHIJKLM",
                     "per_class": 800, "test_per_class": 100, "steps": 3_000},
           run=_run_resnet_glyphs_a_m, build=_build_small_resnet, lessons=("06",)),
    Recipe(name="resnet-font-digits",
           summary="the small ResNet trained on 16x16 digits rendered from fonts only",
           settings={**_SMALL_RESNET, "num_classes": 10, "num_images": 10_000, "test_images": 2_000,
                     "steps": 1_500},
           run=_run_resnet_font_digits, build=_build_small_resnet, lessons=("06",)),
    Recipe(name="ssl-supervised-cnn",
           summary="lesson 07's baseline: the small ResNet trained with the labels of the "
                   "10,400 pretraining glyphs",
           settings={**_SSL, "method": "supervised cnn", "batch_size": 256},
           run=_run_pretext, build=_build_pretext, lessons=("07",)),
    Recipe(name="ssl-supervised-vit",
           summary="lesson 07's baseline: the small ViT (2 x 2 patches) trained with labels",
           settings={**_SSL, "method": "supervised vit", "batch_size": 128},
           run=_run_pretext, build=_build_pretext, lessons=("07",)),
    Recipe(name="ssl-jigsaw",
           summary="the small ResNet pretrained on 3 x 3 jigsaw puzzles of unlabelled glyphs",
           settings={**_SSL, "method": "jigsaw", "batch_size": 128, "permutations": 64},
           run=_run_pretext, build=_build_pretext, lessons=("07",)),
    Recipe(name="ssl-autoencoder",
           summary="the small ResNet as the encoder of an auto-encoder of unlabelled glyphs",
           settings={**_SSL, "method": "autoencoder", "batch_size": 256},
           run=_run_pretext, build=_build_pretext, lessons=("07",)),
    Recipe(name="ssl-mae",
           summary="the small ViT pretrained as a masked auto-encoder (75% of patches removed)",
           settings={**_SSL, "method": "mae", "batch_size": 256, "mask_ratio": 0.75,
                     "shown_ratios": [0.25, 0.5, 0.75, 0.9], "fine_tune_steps": 300},
           run=_run_pretext, build=_build_pretext, lessons=("07",)),
    Recipe(name="ssl-mae-ratios",
           summary="MAE pretrained at mask ratios 0.25 to 0.9 (400 steps each), the ratio's effect",
           settings={**_SSL, "method": "mae ratios", "batch_size": 256, "steps": 400,
                     "ratios": [0.25, 0.5, 0.75, 0.9]},
           run=_run_pretext, lessons=("07",)),
    Recipe(name="ssl-simclr",
           summary="the small ResNet pretrained with SimCLR (NT-Xent, temperature 0.2, batch 256)",
           settings={**_SSL, "method": "simclr", "architecture": "cnn", "batch_size": 256,
                     "temperature": 0.2, "steps": 500},
           run=_run_joint_embedding, build=_build_joint_embedding, lessons=("07",)),
    Recipe(name="ssl-simclr-grid",
           summary="SimCLR at temperatures 0.05 to 1 and batch sizes 16 to 256, same images seen",
           settings={**_SSL, "method": "simclr grid", "architecture": "cnn", "batch_size": 256,
                     "temperature": 0.2, "images_seen": 32_000,
                     "temperatures": [0.05, 0.2, 1.0], "batch_sizes": [16, 64, 256]},
           run=_run_joint_embedding, lessons=("07",)),
    Recipe(name="ssl-dino",
           summary="the small ViT pretrained with DINO (teacher EMA, centering, sharpening)",
           settings={**_SSL, "method": "dino", "architecture": "vit", "batch_size": 64,
                     "lr": 1e-3, "prototypes": 256, "teacher_temperature": 0.04,
                     "student_temperature": 0.1, "centering": True},
           run=_run_joint_embedding, build=_build_joint_embedding, lessons=("07",)),
    Recipe(name="ssl-dino-collapse",
           summary="DINO (small ResNet) with centering and sharpening, without each, 400 steps",
           settings={**_SSL, "method": "dino collapse", "architecture": "cnn", "batch_size": 64,
                     "lr": 1e-3, "prototypes": 256, "teacher_temperature": 0.04,
                     "student_temperature": 0.1, "centering": True, "steps": 400, "every": 20},
           run=_run_joint_embedding, lessons=("07",)),
    Recipe(name="few-labels",
           summary="lesson 06's methods at 1 to 100 labels per class on letters, digits, faces",
           settings=_FEW_LABELS, run=_run_few_labels, lessons=("06",)),
]}


# ---------------------------------------------------------------------------------------------
# Running, writing and loading.

def output_dir(name: str) -> Path:
    return PRETRAINED_DIR / name


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"No recipe named {name!r}; the recipes are: {', '.join(RECIPES)}.")
    return RECIPES[name]


def _git_commit() -> str:
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def run_recipe(name: str, *, write: bool = True) -> Outputs:
    """Run a recipe in full (minutes) and, with ``write``, save its outputs with provenance."""
    recipe = get_recipe(name)
    # The hash reads the code's source from disk: take it now, before minutes of training
    # during which someone may edit the files.
    recipe_hash = recipe.hash()
    start = time.perf_counter()
    outputs = recipe.run(dict(recipe.settings))
    seconds = time.perf_counter() - start
    if not write:
        return outputs
    folder = output_dir(name)
    files = {}
    if outputs.model is not None:
        buffer = io.BytesIO()
        torch.save({name: tensor.cpu() for name, tensor in outputs.model.state_dict().items()}, buffer)
        files["weights.pt"] = buffer.getvalue()
    files["results.json"] = json.dumps(outputs.results, indent=1).encode()
    provenance = {
        "command": " ".join(["python3 course.py pretrain", name]),
        "recipe": name, "settings": recipe.settings, "recipe_hash": recipe_hash,
        "code_version": {"git_commit": _git_commit(), "package": package_version()},
        "seed": recipe.settings.get("seed"), "wall_seconds": round(seconds, 1),
        "machine": config.machine(),
        "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sha256": {file: sha256_of(payload) for file, payload in files.items()},
    }
    for file, payload in files.items():
        atomic_write_bytes(folder / file, payload)
    atomic_write_bytes(folder / "provenance.json", json.dumps(provenance, indent=1).encode())
    return outputs


def _read_verified(folder: Path, file: str, provenance: dict) -> bytes:
    payload = (folder / file).read_bytes()
    if sha256_of(payload) != provenance["sha256"].get(file):
        raise CorruptCacheError(f"{folder / file} does not match the checksum in its provenance: "
                                f"it is damaged or was edited. Run `python3 course.py pretrain "
                                f"{folder.name}` to write it again.")
    return payload


def load_pretrained(name: str, *, device: torch.device | str | None = None):
    """The outputs of recipe ``name`` as written by ``course.py pretrain``, verified.

    Returns ``(model, results, provenance)``; ``model`` is None for a recipe without one, else
    built by the recipe, loaded weights-only and moved to ``device`` (default ``cfg.device``),
    in eval mode. Refuses outputs whose recipe changed since they were written.
    """
    recipe = get_recipe(name)
    folder = output_dir(name)
    command = f"python3 course.py pretrain {name}"
    if not (folder / "provenance.json").exists():
        raise FileNotFoundError(f"No outputs of the recipe {name!r} in {folder}: run `{command}` "
                                f"(it takes minutes) or run the experiment live.")
    provenance = json.loads((folder / "provenance.json").read_text())
    if provenance.get("recipe_hash") != recipe.hash():
        raise CorruptCacheError(f"The recipe {name!r} changed since its outputs in {folder} were "
                                f"written (hash {provenance.get('recipe_hash')} on disk, "
                                f"{recipe.hash()} now): run `{command}` to write them again.")
    results = json.loads(_read_verified(folder, "results.json", provenance))
    model = None
    if recipe.build is not None:
        payload = _read_verified(folder, "weights.pt", provenance)
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        device = torch.device(device) if device is not None else config.current().device
        with torch.random.fork_rng(devices=[]):  # building must not move the lesson's random stream
            model = recipe.build(recipe.settings)
        model.load_state_dict(state)
        model = model.to(device).eval()
    return model, results, provenance


def replay_losses(name: str, steps: int = REPLAY_STEPS) -> list[float]:
    """Retrain the first ``steps`` steps of a recipe and return their losses."""
    recipe = get_recipe(name)
    return recipe.run(dict(recipe.settings), max_steps=steps).results["step_loss"][:steps]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python3 course.py pretrain",
                                     description="Run ahead-of-time recipes and write their "
                                                 "outputs under data/pretrained/.")
    parser.add_argument("names", nargs="*", help="recipes to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the recipes and stop")
    arguments = parser.parse_args(argv)
    if arguments.list:
        for recipe in RECIPES.values():
            print(f"{recipe.name:14s} lesson {', '.join(recipe.lessons)}: {recipe.summary}")
        return
    names = arguments.names or list(RECIPES)
    for name in names:
        get_recipe(name)  # fail before any long run on a misspelt name
    config.setup(seed=0, verbose=True)
    for number, name in enumerate(names, start=1):
        print(f"[{number}/{len(names)}] {name}: {RECIPES[name].summary}", flush=True)
        start = time.perf_counter()
        run_recipe(name)
        print(f"    written to {output_dir(name)} in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
