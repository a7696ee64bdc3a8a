"""Train once, load afterwards: a checkpoint cache keyed by the training recipe.

A lesson that trains a model wraps the training in :func:`train_once`::

    model, record = train_once("resnet-glyphs", recipe={"epochs": 5, "lr": 3e-3},
                               build=make_resnet, train=train_resnet)

The first run builds the model, trains it and writes its weights with the record ``train``
returned (e.g. the history of ``fit``). Every later run with the same recipe builds the model
and loads the weights instead: a second run of a lesson, or a live class, trains nothing.

The key is a hash of everything that decides the result: the recipe, the profile (and capped
run), the device type, the seed, the source code of ``build`` and ``train`` and the course
package's own source. Change any of them and the model is trained again; nothing stale is
loaded. Files are written atomically with a SHA-256 checksum, and loaded weights-only.

Training runs on its own random numbers, seeded from the recipe: the lesson's random stream is
the same afterwards whether the model was trained or loaded, so the cells that follow print the
same numbers on a first and a second run. ``COURSE_RETRAIN=1`` trains again regardless.
"""

import hashlib
import inspect
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from course_utils import config
from course_utils.storage import CorruptCacheError, atomic_write_bytes, data_dir, sha256_of

RETRAIN_ENV_VAR = "COURSE_RETRAIN"
PACKAGE_DIR = Path(__file__).resolve().parent


def package_version() -> str:
    """A hash of the course package's source files: any change to its code changes it."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_of(function: Callable) -> str:
    """The source code of ``function`` (a notebook cell's function too); its bytecode if the
    source cannot be found, so that a change to it still changes the key."""
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        return repr(code.co_code) if code is not None else repr(function)


def recipe_key(name: str, recipe: dict, code: tuple[Callable, ...] = ()) -> str:
    """The hash that names a trained model: recipe, profile, device type, seed and code."""
    cfg = config.current()
    if not name or any(character in name for character in "/\\ "):
        raise ValueError(f"name must be a short word without spaces or slashes, got {name!r}")
    try:
        described = json.dumps(recipe, sort_keys=True)
    except TypeError as error:
        raise TypeError(f"the recipe must hold only numbers, strings, booleans, lists and dicts "
                        f"(it is written to disk next to the weights): {error}") from error
    identity = {"name": name, "recipe": described, "profile": cfg.profile, "capped": cfg.capped,
                "device": cfg.device.type, "seed": cfg.seed, "package": package_version(),
                "code": [source_of(function) for function in code]}
    return sha256_of(json.dumps(identity, sort_keys=True).encode())[:16]


def checkpoint_path(name: str, key: str) -> Path:
    return data_dir() / "checkpoints" / f"{name}-{key}.pt"


def _save(path: Path, model: nn.Module, record: dict, recipe: dict) -> None:
    payload = {"model": model.state_dict(), "record": json.dumps(record), "recipe": json.dumps(recipe)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    # The checksum file is written last: a checkpoint without one is never trusted.
    atomic_write_bytes(path, data)
    atomic_write_bytes(path.with_suffix(".json"),
                       json.dumps({"file": path.name, "sha256": sha256_of(data),
                                   "record": record, "recipe": recipe}, indent=1).encode())


def _load(path: Path, device: torch.device) -> tuple[dict, dict]:
    """(state_dict, record) of a complete, verified checkpoint; FileNotFoundError if incomplete."""
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise FileNotFoundError(path)
    data = path.read_bytes()
    try:
        expected = json.loads(meta_path.read_text())["sha256"]
    except (ValueError, KeyError) as error:
        raise CorruptCacheError(f"{meta_path} is unreadable ({error})") from error
    if sha256_of(data) != expected:
        raise CorruptCacheError(f"{path} does not match its checksum")
    try:
        payload = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        return payload["model"], json.loads(payload["record"])
    except Exception as error:
        raise CorruptCacheError(f"{path} could not be read ({type(error).__name__}: {error})") from error


def train_once(name: str, *, recipe: dict, build: Callable[[], nn.Module],
               train: Callable[[nn.Module], dict], verbose: bool = True) -> tuple[nn.Module, dict]:
    """The model ``build()`` makes, trained by ``train(model)``, or loaded if trained before.

    Args:
        name: a short name for the file, e.g. ``"resnet-glyphs"``.
        recipe: every setting that decides the result and is not in ``build``'s or ``train``'s
            source (sizes, epochs, learning rate, data size ...), as JSON-able values.
        build: makes the untrained model (it is moved to ``cfg.device``).
        train: trains it in place and returns a JSON-able record (e.g. ``fit``'s history).

    Returns:
        The model (in eval mode) and the record, with ``"seconds"`` (training time) and
        ``"cached"`` (whether it was loaded) added.
    """
    cfg = config.current()
    key = recipe_key(name, recipe, (build, train))
    path = checkpoint_path(name, key)
    retrain = os.environ.get(RETRAIN_ENV_VAR, "").strip() not in ("", "0")
    with config.seeded(cfg.seed):
        model = build().to(cfg.device)
        if not retrain:
            try:
                state, record = _load(path, cfg.device)
                model.load_state_dict(state)
                model.eval()
                if verbose:
                    print(f"{name}: loaded from {_shown(path)} (trained once in "
                          f"{record['seconds']:.1f} s{_rate(record)}; {RETRAIN_ENV_VAR}=1 "
                          f"trains again)")
                return model, {**record, "cached": True}
            except FileNotFoundError:
                pass
            except CorruptCacheError as error:
                print(f"{name}: the cached checkpoint is damaged ({error}); training again.")
        start = time.perf_counter()
        record = train(model)
        seconds = time.perf_counter() - start
    if not isinstance(record, dict):
        raise TypeError(f"train must return a dict (e.g. fit's history), got {type(record).__name__}")
    record = {**record, "seconds": seconds}
    try:
        _save(path, model, record, recipe)
    except TypeError as error:
        raise TypeError(f"the record train returned must hold only numbers, strings, lists and "
                        f"dicts: {error}") from error
    model.eval()
    if verbose:
        print(f"{name}: trained in {seconds:.1f} s{_rate(record)}, saved to {_shown(path)}")
    return model, {**record, "cached": False}


def throughput(record: dict) -> float | None:
    """Training samples per second of a record: ``fit``'s ``samples_per_second`` (per epoch,
    averaged) or a pretraining's ``items_per_second``, also inside its ``"history"`` or
    ``"results"`` (lesson 07's live pretrainings); None if it holds neither."""
    for place in (record, record.get("history"), record.get("results")):
        if not isinstance(place, dict):
            continue
        rate = place.get("samples_per_second", place.get("items_per_second"))
        if isinstance(rate, list) and rate:
            return sum(rate) / len(rate)
        if isinstance(rate, (int, float)):
            return float(rate)
    return None


def _rate(record: dict) -> str:
    rate = throughput(record)
    return "" if rate is None else f" at {rate:,.0f} samples/s"


def _shown(path: Path) -> str:
    """The path relative to the repository when it is inside it (shorter to read)."""
    try:
        return str(path.relative_to(PACKAGE_DIR.parent))
    except ValueError:
        return str(path)
