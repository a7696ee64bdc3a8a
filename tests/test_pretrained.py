"""Ahead-of-time outputs: written with provenance, loaded weights-only, tied to their recipe.

The last tests run over every output committed under data/pretrained/: each must belong to a
recipe that has not changed since, match its checksums, load, and its recipe, retrained for its
first steps, must reproduce the recorded losses.
"""

import dataclasses
import json

import pytest
import torch
from torch import nn

from course_utils import config, pretrained
from course_utils.pretrained import Outputs, Recipe
from course_utils.storage import CorruptCacheError

COMMITTED = sorted(path.parent.name for path in pretrained.PRETRAINED_DIR.glob("*/provenance.json"))


def _build_toy(settings):
    return nn.Linear(2, 1)


def _run_toy(settings, max_steps=None):
    torch.manual_seed(settings["seed"])
    model = _build_toy(settings)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"])
    inputs, targets = torch.randn(64, 2), torch.randn(64, 1)
    losses = []
    for _ in range(max_steps or settings["steps"]):
        loss = nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return Outputs(model=model, results={"step_loss": losses})


@pytest.fixture
def toy(tmp_path, monkeypatch):
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    recipe = Recipe(name="toy", summary="a linear regression", settings={"seed": 0, "lr": 0.1, "steps": 20},
                    run=_run_toy, build=_build_toy)
    monkeypatch.setitem(pretrained.RECIPES, "toy", recipe)
    return recipe


def test_outputs_are_written_with_provenance_and_load_back(toy, tmp_path):
    outputs = pretrained.run_recipe("toy")
    provenance = json.loads((tmp_path / "toy" / "provenance.json").read_text())
    for key in ("command", "settings", "recipe_hash", "code_version", "seed", "wall_seconds",
                "machine", "sha256"):
        assert key in provenance
    assert provenance["recipe_hash"] == toy.hash() and provenance["command"].endswith("pretrain toy")
    model, results, _ = pretrained.load_pretrained("toy")
    assert torch.equal(model.weight, outputs.model.weight) and not model.training
    assert results["step_loss"] == outputs.results["step_loss"]
    assert pretrained.replay_losses("toy", 5) == results["step_loss"][:5]


def test_outputs_of_a_changed_recipe_are_refused(toy, monkeypatch):
    pretrained.run_recipe("toy")
    changed = Recipe(name="toy", summary=toy.summary, settings={**toy.settings, "lr": 0.2},
                     run=_run_toy, build=_build_toy)
    monkeypatch.setitem(pretrained.RECIPES, "toy", changed)
    with pytest.raises(CorruptCacheError, match="changed since"):
        pretrained.load_pretrained("toy")


def test_damaged_or_missing_outputs_are_refused(toy, tmp_path):
    with pytest.raises(FileNotFoundError, match="course.py pretrain toy"):
        pretrained.load_pretrained("toy")
    pretrained.run_recipe("toy")
    weights = tmp_path / "toy" / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-4])
    with pytest.raises(CorruptCacheError, match="checksum"):
        pretrained.load_pretrained("toy")
    with pytest.raises(KeyError, match="No recipe named 'tyo'"):
        pretrained.load_pretrained("tyo")


def test_unsafe_pickles_are_never_loaded(toy, tmp_path):
    """weights-only loading: a file that would run code is refused even with a right checksum."""
    pretrained.run_recipe("toy")
    folder = tmp_path / "toy"
    torch.save({"weight": torch.zeros(1, 2), "bias": Recipe}, folder / "weights.pt")
    provenance = json.loads((folder / "provenance.json").read_text())
    provenance["sha256"]["weights.pt"] = pretrained.sha256_of((folder / "weights.pt").read_bytes())
    (folder / "provenance.json").write_text(json.dumps(provenance))
    with pytest.raises(Exception, match="[Ww]eights only|weights_only|Unsupported"):
        pretrained.load_pretrained("toy")


def test_a_live_pretraining_runs_once_then_loads(toy, tmp_path, monkeypatch, capsys):
    from course_utils import ssl_protocol

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("COURSE_RETRAIN", raising=False)
    calls = []
    counted = dataclasses.replace(toy, run=lambda settings, max_steps=None: calls.append(settings)
                                  or _run_toy(settings, max_steps))
    monkeypatch.setitem(pretrained.RECIPES, "toy", counted)
    first, first_results = ssl_protocol.pretrained_network("toy", live=True, factor=0.5)
    second, second_results = ssl_protocol.pretrained_network("toy", live=True, factor=0.5)
    assert len(calls) == 1 and calls[0]["steps"] == 10  # half the recipe's 20 steps, run once
    assert "loaded from" in capsys.readouterr().out
    assert torch.equal(first.weight, second.weight) and not second.training
    assert first_results == second_results and len(second_results["step_loss"]) == 10
    ssl_protocol.pretrained_network("toy", live=True, factor=1.0)  # other settings: trains again
    assert len(calls) == 2 and calls[1]["steps"] == 20


def test_every_recipe_has_a_committed_output():
    assert sorted(pretrained.RECIPES) == COMMITTED, (
        "run `python3 course.py pretrain NAME` for each recipe and commit data/pretrained/NAME")


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_outputs_match_their_recipe(name):
    config.setup(seed=0, profile="quick", device="cpu", verbose=False)
    model, results, provenance = pretrained.load_pretrained(name)  # refuses a changed recipe
    assert provenance["recipe_hash"] == pretrained.get_recipe(name).hash()
    recorded = results["step_loss"][:pretrained.REPLAY_STEPS]
    replayed = pretrained.replay_losses(name)
    # The first loss involves no update: any change to the data, the model or the loss shows
    # at once. Later losses compound rounding differences between processors (another CPU's
    # vector units round differently, and a contrastive loss at temperature 0.05 multiplies
    # its logits by 20): measured up to 8e-4 relative at step 8 between two x86 machines.
    # A change to the optimiser or the schedule moves them by far more.
    first, later = (1e-4, 5e-3) if provenance["machine"]["device"] == "cpu" else (5e-2, 5e-2)
    message = (f"{name}: retraining its first steps no longer gives the recorded losses; the code "
               f"it runs changed. Run `python3 course.py pretrain {name}` and commit the outputs.")
    assert replayed[:1] == pytest.approx(recorded[:1], rel=first), message
    assert replayed == pytest.approx(recorded, rel=later), message
