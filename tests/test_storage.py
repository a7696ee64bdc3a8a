import numpy as np
import pytest
import torch

from course_utils import storage


def test_arrays_round_trip_with_checksum(tmp_path):
    path = storage.save_arrays(tmp_path / "a.npz", x=np.arange(10), y=np.ones((2, 3)))
    loaded = storage.load_arrays(path)
    assert np.array_equal(loaded["x"], np.arange(10)) and loaded["y"].shape == (2, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "a.npz.sha256.json"]


def test_corrupt_cache_is_detected(tmp_path):
    path = storage.save_arrays(tmp_path / "a.npz", x=np.arange(1000))
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    with pytest.raises(storage.CorruptCacheError, match="does not match its checksum"):
        storage.load_arrays(path)


def test_truncated_cache_and_missing_checksum(tmp_path):
    path = storage.save_arrays(tmp_path / "a.npz", x=np.arange(1000))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(storage.CorruptCacheError):
        storage.load_arrays(path)
    (tmp_path / "a.npz.sha256.json").unlink()
    with pytest.raises(FileNotFoundError):
        storage.load_arrays(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    storage.atomic_write_bytes(tmp_path / "sub" / "f.bin", b"abc")
    storage.atomic_write_bytes(tmp_path / "sub" / "f.bin", b"defg")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["f.bin"]
    assert (tmp_path / "sub" / "f.bin").read_bytes() == b"defg"


class NotAWeight:
    pass


def test_checkpoints_load_weights_only(tmp_path):
    state = {"model": torch.nn.Linear(3, 2).state_dict(), "epoch": 4}
    path = storage.save_checkpoint(state, tmp_path / "ckpt.pt")
    loaded = storage.load_checkpoint(path)
    assert loaded["epoch"] == 4 and torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    torch.save({"payload": NotAWeight()}, tmp_path / "unsafe.pt")
    with pytest.raises(storage.CorruptCacheError, match="could not be loaded"):
        storage.load_checkpoint(tmp_path / "unsafe.pt")
    with pytest.raises(FileNotFoundError, match="train the model first"):
        storage.load_checkpoint(tmp_path / "missing.pt")


def test_data_dir_can_be_overridden(monkeypatch, tmp_path):
    monkeypatch.setenv(storage.DATA_DIR_ENV_VAR, str(tmp_path))
    assert storage.data_dir() == tmp_path
