"""Profile, device and seeding: the first cell of every notebook calls :func:`setup`.

The *profile* sizes every notebook: ``quick`` (small data, few epochs, about 90 s per notebook
on a 2-core CPU) or ``full`` (more data and epochs, real datasets where a lesson offers them).
Without a GPU the default is ``quick``; with one it is ``full``. The environment variable
``COURSE_PROFILE`` overrides the default.

``COURSE_CAPPED=1`` with the full profile runs every full-profile code path with its amounts
capped (``cfg.pick(..., capped=...)``): the shapes, models and branches of the full profile, with
the data and epochs of a CPU test run. CI uses it so that a GPU runner never meets code that
nothing has run.
"""

import os
import platform
import random
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

PROFILES = ("quick", "full")
PROFILE_ENV_VAR = "COURSE_PROFILE"
DEVICE_ENV_VAR = "COURSE_DEVICE"
CAPPED_ENV_VAR = "COURSE_CAPPED"


@dataclass(frozen=True)
class CourseConfig:
    """What a notebook needs to know about where and how it runs."""

    profile: str
    device: torch.device
    seed: int
    capped: bool = False

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    def pick(self, *, quick, full, capped=None):
        """Return ``quick`` or ``full`` depending on the profile, e.g. ``cfg.pick(quick=3, full=30)``.

        ``capped`` replaces ``full`` in a capped test run of the full profile (``COURSE_CAPPED=1``):
        give it for amounts (epochs, numbers of images) that would make that run slow on a CPU,
        never for shapes (image size, model width), which must stay the full profile's.
        """
        if self.quick:
            return quick
        return full if capped is None or not self.capped else capped


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(requested: str | None = None) -> torch.device:
    """Pick CUDA, then Apple's MPS, then the CPU; ``requested`` (or ``COURSE_DEVICE``) forces one."""
    requested = requested or os.environ.get(DEVICE_ENV_VAR)
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"Device {requested!r} was requested but no CUDA GPU is available. "
                               f"Unset {DEVICE_ENV_VAR} or ask for 'cpu'.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"Device {requested!r} was requested but Apple's MPS is not available. "
                               f"Unset {DEVICE_ENV_VAR} or ask for 'cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def choose_profile(requested: str | None = None, device: torch.device | None = None) -> str:
    """``requested`` or ``COURSE_PROFILE`` if set; otherwise ``full`` on a CUDA GPU, else ``quick``."""
    requested = requested or os.environ.get(PROFILE_ENV_VAR)
    if requested:
        profile = requested.strip().lower()
        if profile not in PROFILES:
            raise ValueError(f"Unknown profile {requested!r}: choose one of {', '.join(PROFILES)} "
                             f"(e.g. `export {PROFILE_ENV_VAR}=quick`).")
        return profile
    device = device if device is not None else choose_device()
    return "full" if device.type == "cuda" else "quick"


def choose_capped() -> bool:
    """True when ``COURSE_CAPPED`` is set to 1 (or true/yes): a capped test run."""
    value = os.environ.get(CAPPED_ENV_VAR, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{CAPPED_ENV_VAR}={value!r}: use 1 for a capped test run, or leave it unset.")


_current: CourseConfig | None = None


def current() -> CourseConfig:
    """The configuration chosen by the last :func:`setup` call (the notebook's ``cfg``).

    Before any call it is chosen from the environment without seeding or printing, so package
    code (e.g. ``fit``) always knows the lesson's device.
    """
    if _current is not None:
        return _current
    device = choose_device()
    return CourseConfig(profile=choose_profile(None, device), device=device, seed=0,
                        capped=choose_capped())


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and GPU) so that a notebook repeats its numbers."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextmanager
def seeded(seed: int | None):
    """Run the block with Python's, NumPy's and PyTorch's random numbers seeded with ``seed``,
    then give them back the states they had, so that the caller's random numbers go on as if
    the block had not run. With ``None`` the block runs as it is."""
    if seed is None:
        yield
        return
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng():  # PyTorch's CPU and CUDA generators
            seed_everything(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)



def setup(seed: int = 0, profile: str | None = None, device: str | None = None,
          verbose: bool = True, presenter: bool | None = None) -> CourseConfig:
    """Choose device and profile, seed everything, and report them in one line.

    Call it once, in the first code cell of a notebook::

        cfg = setup(seed=0)
        epochs = cfg.pick(quick=5, full=30)

    ``presenter=True`` (or ``COURSE_PRESENTER=1``) switches the presenter style on for a
    projector: larger text in figures, long printed outputs trimmed (see
    :mod:`course_utils.presenter`); off by default.
    """
    from course_utils import presenter as presenter_style

    global _current
    presenter_style.apply(presenter_style.wanted(presenter))
    chosen_device = choose_device(device)
    chosen_profile = choose_profile(profile, chosen_device)
    seed_everything(seed)
    cfg = CourseConfig(profile=chosen_profile, device=chosen_device, seed=seed,
                       capped=chosen_profile == "full" and choose_capped())
    _current = cfg
    if verbose:
        print(describe(cfg) + (" | presenter style" if presenter_style.is_on() else ""))
    return cfg


def machine() -> dict:
    """What a recorded result ran on: platform, processor, CPU threads, Python, torch, the
    device type of the current configuration, and the GPU's name on CUDA."""
    device = current().device
    described = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                 "cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                 "torch": torch.__version__, "device": device.type}
    if device.type == "cuda":
        described["gpu"] = torch.cuda.get_device_name(device)
    return described


def describe(cfg: CourseConfig) -> str:
    """The one-line report printed by :func:`setup`."""
    threads = torch.get_num_threads()
    profile = f"{cfg.profile} (capped)" if cfg.capped else cfg.profile
    return (f"profile={profile} | device={cfg.device.type} | seed={cfg.seed} | "
            f"torch {torch.__version__} | python {platform.python_version()} | "
            f"{threads} CPU thread{'s' if threads != 1 else ''}")
