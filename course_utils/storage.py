"""Files on disk: atomic writes, checksummed array caches and weights-only checkpoints.

A cache is only useful if a half-written or damaged file can never be mistaken for a good one:
every file here is written to a temporary name in the same folder and renamed into place
(an atomic step on POSIX and Windows), and every array cache carries a SHA-256 checksum that
is verified when it is read back.
"""

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

DATA_DIR_ENV_VAR = "COURSE_DATA_DIR"


class CorruptCacheError(RuntimeError):
    """A cache file exists but cannot be trusted (bad checksum, truncated, unreadable)."""


def data_dir() -> Path:
    """Where datasets and checkpoints live: ``COURSE_DATA_DIR`` or the repository's ``data/``."""
    override = os.environ.get(DATA_DIR_ENV_VAR)
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parent.parent / "data"


def atomic_write_bytes(path: str | Path, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; caches are shared like any data file
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def sha256_of(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def save_arrays(path: str | Path, **arrays: np.ndarray) -> Path:
    """Save NumPy arrays to an ``.npz`` file plus a ``.sha256.json`` file holding its checksum."""
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = buffer.getvalue()
    atomic_write_bytes(path, payload)
    record = {"file": path.name, "sha256": sha256_of(payload), "bytes": len(payload)}
    atomic_write_bytes(_checksum_path(path), json.dumps(record, indent=1).encode())
    return path


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Load arrays saved by :func:`save_arrays`, verifying the checksum first.

    Raises:
        FileNotFoundError: the cache (or its checksum file) does not exist.
        CorruptCacheError: the file does not match its checksum or cannot be parsed.
    """
    path = Path(path)
    checksum_file = _checksum_path(path)
    if not path.exists() or not checksum_file.exists():
        raise FileNotFoundError(f"No complete cache at {path}")
    payload = path.read_bytes()
    try:
        record = json.loads(checksum_file.read_text())
        expected = record["sha256"]
    except (ValueError, KeyError) as error:
        raise CorruptCacheError(f"The checksum file {checksum_file} is unreadable ({error}).") from error
    if sha256_of(payload) != expected:
        raise CorruptCacheError(f"The cache {path} does not match its checksum: it is damaged or "
                                f"was changed by hand. Delete it and it will be rebuilt.")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, OSError) as error:
        raise CorruptCacheError(f"The cache {path} could not be read ({error}).") from error


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Save a checkpoint (e.g. ``{"model": model.state_dict(), "epoch": 3}``) atomically."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    ``weights_only`` refuses arbitrary pickled objects, so a checkpoint from elsewhere cannot run
    code on this machine; it holds tensors, numbers, strings and containers of them.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No checkpoint at {path}: train the model first (the notebook "
                                f"does this when the checkpoint is missing).")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CorruptCacheError(f"The checkpoint {path} could not be loaded ({type(error).__name__}: "
                                f"{error}). Delete it and run the training cell again.") from error
