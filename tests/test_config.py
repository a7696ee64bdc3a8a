import pytest
import torch

from course_utils import config


def test_profile_defaults_to_quick_on_cpu(monkeypatch):
    monkeypatch.delenv(config.PROFILE_ENV_VAR, raising=False)
    assert config.choose_profile(device=torch.device("cpu")) == "quick"
    assert config.choose_profile(device=torch.device("cuda")) == "full"


def test_profile_environment_variable_overrides(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV_VAR, "FULL")
    assert config.choose_profile(device=torch.device("cpu")) == "full"
    assert config.choose_profile("quick", device=torch.device("cuda")) == "quick"


def test_unknown_profile_says_what_is_allowed(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV_VAR, "fast")
    with pytest.raises(ValueError, match="quick, full"):
        config.choose_profile(device=torch.device("cpu"))


def test_device_falls_back_to_cpu_and_refuses_missing_cuda(monkeypatch):
    monkeypatch.delenv(config.DEVICE_ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.choose_device() == torch.device("cpu")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        config.choose_device("cuda")


def test_seeding_repeats_random_numbers():
    config.seed_everything(3)
    first = torch.rand(4)
    config.seed_everything(3)
    assert torch.equal(first, torch.rand(4))
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(-1)


def test_setup_reports_one_line(capsys, monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV_VAR, "quick")
    monkeypatch.setenv(config.DEVICE_ENV_VAR, "cpu")
    cfg = config.setup(seed=5)
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert "profile=quick" in line and "device=cpu" in line and "seed=5" in line
    assert cfg.pick(quick=1, full=2) == 1 and cfg.quick


def test_importing_the_package_has_no_side_effects():
    """In a fresh interpreter, importing every module prints nothing and changes no global state."""
    import subprocess
    import sys

    script = """
import pkgutil, importlib, random, numpy, torch, matplotlib
import course_utils, course_utils.exercises
before = (random.getstate(), numpy.random.get_state()[1].tolist(), torch.random.get_rng_state(),
          dict(matplotlib.rcParams))
for package in (course_utils, course_utils.exercises):
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
after = (random.getstate(), numpy.random.get_state()[1].tolist(), torch.random.get_rng_state(),
         dict(matplotlib.rcParams))
assert before[0] == after[0] and before[1] == after[1], "a module seeded an RNG"
assert torch.equal(before[2], after[2]), "a module seeded torch"
assert before[3] == after[3], "a module changed matplotlib's rcParams"
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == ""


def test_capped_full_profile_keeps_shapes_and_caps_amounts(monkeypatch):
    monkeypatch.setenv(config.CAPPED_ENV_VAR, "1")
    cfg = config.setup(profile="full", verbose=False)
    assert cfg.capped and "(capped)" in config.describe(cfg)
    assert cfg.pick(quick=3, full=30, capped=2) == 2  # an amount: capped
    assert cfg.pick(quick=16, full=32) == 32  # a shape: the full profile's
    assert config.current() is cfg
    quick = config.setup(profile="quick", verbose=False)
    assert not quick.capped and quick.pick(quick=3, full=30, capped=2) == 3
    monkeypatch.setenv(config.CAPPED_ENV_VAR, "0")
    assert config.setup(profile="full", verbose=False).pick(quick=3, full=30, capped=2) == 30
    monkeypatch.setenv(config.CAPPED_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="COURSE_CAPPED"):
        config.setup(profile="full", verbose=False)
