"""The train-once checkpoint cache: a second run loads, any change to the recipe trains again."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import cache, config


@pytest.fixture(autouse=True)
def fresh_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(cache.RETRAIN_ENV_VAR, raising=False)
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    return tmp_path


class Trainer:
    """Counts how often it trains; training moves every random generator, as real training does."""

    def __init__(self):
        self.calls = 0

    def build(self):
        return nn.Linear(3, 2)

    def train(self, model):
        self.calls += 1
        random.random(), np.random.rand(), torch.rand(5)
        with torch.no_grad():
            model.weight.add_(torch.randn_like(model.weight))
        return {"train_loss": [0.5, 0.25]}


def test_the_second_call_loads_instead_of_training(fresh_data_dir, capsys):
    trainer = Trainer()
    first, record = cache.train_once("toy", recipe={"lr": 0.1}, build=trainer.build, train=trainer.train)
    assert record["cached"] is False and record["train_loss"] == [0.5, 0.25] and record["seconds"] >= 0
    second, again = cache.train_once("toy", recipe={"lr": 0.1}, build=trainer.build, train=trainer.train)
    assert trainer.calls == 1
    assert again["cached"] is True and again["train_loss"] == [0.5, 0.25]
    assert torch.equal(first.weight, second.weight) and not second.training
    assert "loaded from" in capsys.readouterr().out
    assert list((fresh_data_dir / "checkpoints").glob("toy-*.pt"))


def test_the_lessons_random_numbers_are_the_same_after_a_hit_or_a_miss():
    trainer = Trainer()
    after = []
    for _ in range(2):  # a miss, then a hit
        config.seed_everything(7)
        cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train, verbose=False)
        after.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert trainer.calls == 1
    assert after[0] == after[1]
    config.seed_everything(7)
    assert after[0] == (random.random(), np.random.rand(), torch.rand(1).item())  # untouched


@pytest.mark.parametrize("change", ["recipe", "profile", "seed", "code"])
def test_anything_that_decides_the_result_trains_again(change):
    trainer = Trainer()
    cache.train_once("toy", recipe={"lr": 0.1}, build=trainer.build, train=trainer.train, verbose=False)
    recipe, build = {"lr": 0.1}, trainer.build
    if change == "recipe":
        recipe = {"lr": 0.2}
    elif change == "profile":
        config.setup(seed=0, profile="full", device="cpu", verbose=False)
    elif change == "seed":
        config.setup(seed=1, profile="quick", device="cpu", verbose=False)
    else:
        def build():
            return nn.Linear(3, 2, bias=True)
    cache.train_once("toy", recipe=recipe, build=build, train=trainer.train, verbose=False)
    assert trainer.calls == 2


def test_a_damaged_checkpoint_is_trained_again_not_loaded(fresh_data_dir, capsys):
    trainer = Trainer()
    cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train, verbose=False)
    checkpoint = next((fresh_data_dir / "checkpoints").glob("toy-*.pt"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:-10])
    _, record = cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train)
    assert trainer.calls == 2 and record["cached"] is False
    assert "damaged" in capsys.readouterr().out
    # A checkpoint whose checksum file is missing is incomplete: it is trained again too.
    checkpoint.with_suffix(".json").unlink()
    cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train, verbose=False)
    assert trainer.calls == 3


def test_retrain_on_request(monkeypatch):
    trainer = Trainer()
    cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train, verbose=False)
    monkeypatch.setenv(cache.RETRAIN_ENV_VAR, "1")
    cache.train_once("toy", recipe={}, build=trainer.build, train=trainer.train, verbose=False)
    assert trainer.calls == 2


def test_bad_recipes_names_and_records_are_refused():
    trainer = Trainer()
    with pytest.raises(TypeError, match="recipe must hold only"):
        cache.train_once("toy", recipe={"model": nn.Linear(1, 1)}, build=trainer.build,
                         train=trainer.train)
    with pytest.raises(ValueError, match="without spaces or slashes"):
        cache.train_once("a/b", recipe={}, build=trainer.build, train=trainer.train)
    with pytest.raises(TypeError, match="must return a dict"):
        cache.train_once("toy", recipe={}, build=trainer.build, train=lambda model: [1.0])
    with pytest.raises(TypeError, match="only numbers, strings"):
        cache.train_once("toy", recipe={}, build=trainer.build,
                         train=lambda model: {"loss": torch.tensor(1.0)})
