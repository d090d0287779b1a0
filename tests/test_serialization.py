"""Tests for floor 4 (serialization): round trips, the on-disk names, refusal of pickle, damaged
files and atomic writes."""
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

import tinygrad_mlp as tg
from tinygrad_mlp import Tensor, nn
from tinygrad_mlp.serialization import SerializationError


def sample():
    return {
        "model": {"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "0.bias": Tensor(np.array([1.5, -2.0])),
                  "bn.num_batches_tracked": np.array(3, dtype=np.int64)},
        "a/b": {"%meta": np.array([True, False]), "": np.zeros((0, 2))},
        "epoch": 7, "loss": 0.125, "best": float("inf"), "name": "run/1", "done": False,
        "none": None, "history": [0.5, 0.25, 1], "betas": (0.9, 0.999), "empty": {},
        "labels": np.array(["a", "bc"]),
    }


def test_round_trip_keeps_structure_values_dtypes_and_order(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save(sample(), path)
    got = tg.load(path)
    want = sample()
    assert list(got) == list(want) and list(got["model"]) == list(want["model"])
    np.testing.assert_array_equal(got["model"]["0.weight"], want["model"]["0.weight"])
    assert got["model"]["0.weight"].dtype == np.float32
    assert isinstance(got["model"]["0.bias"], np.ndarray)
    np.testing.assert_array_equal(got["model"]["0.bias"], [1.5, -2.0])
    assert got["model"]["bn.num_batches_tracked"].dtype == np.int64
    np.testing.assert_array_equal(got["a/b"]["%meta"], [True, False])
    assert got["a/b"][""].shape == (0, 2)
    for key in ("epoch", "loss", "best", "name", "done", "none", "history", "betas", "empty"):
        assert got[key] == want[key] and type(got[key]) is type(want[key]), key
    np.testing.assert_array_equal(got["labels"], ["a", "bc"])


def test_the_file_is_a_plain_npz_with_readable_unambiguous_names(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save(sample(), path)
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        np.testing.assert_array_equal(z["model/0.weight"], np.arange(6).reshape(2, 3))
    assert {"model/0.weight", "model/0.bias", "a%2Fb/%25meta", "a%2Fb/", "%meta"} <= names
    # "a/b" -> {"c"} and "a" -> {"b/c"} and "a" -> {"b" -> {"c"}} are three different files.
    tg.save({"a/b": {"c": np.ones(1)}, "a": {"b/c": np.zeros(1), "b": {"c": np.full(1, 2.0)}}},
            path)
    got = tg.load(path)
    assert got["a/b"]["c"][0] == 1 and got["a"]["b/c"][0] == 0 and got["a"]["b"]["c"][0] == 2


def test_model_state_dict_round_trip_restores_outputs(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=1))
    tg.save(model.state_dict(), tmp_path / "m.npz")
    other = nn.Sequential(nn.Linear(3, 4, rng=5), nn.ReLU(), nn.Linear(4, 2, rng=6))
    other.load_state_dict(tg.load(tmp_path / "m.npz"))
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(other(x).data, model(x).data)


def test_a_plain_npz_without_metadata_loads_flat(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.ones(2), b=np.zeros(1))
    got = tg.load(tmp_path / "plain.npz")
    assert sorted(got) == ["b", "w"]


# ---------------------------------------------------------------- never pickle

class Payload:
    """Unpickling this would create a file: proof that it ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_an_npz_holding_a_pickled_object_is_refused_and_not_run(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.ones(2), obj=np.array([Payload(marker)], dtype=object))
    with pytest.raises(SerializationError, match=r"evil\.npz.*'obj'.*pickled"):
        tg.load(path)
    assert not os.path.exists(marker)


def test_a_raw_pickle_is_refused(tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(SerializationError, match=r"evil\.pt: this is a Python pickle, not a \.npz") \
            as info:
        tg.load(path)
    assert not os.path.exists(marker)
    assert "allow_pickle" not in str(info.value)  # never a hint at loading it unsafely


def test_a_file_of_another_format_is_named_as_such_without_a_pickle_hint(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world")
    with pytest.raises(SerializationError, match=r"notes\.txt: not a \.npz archive .*b'hello wo'") \
            as info:
        tg.load(path)
    assert "allow_pickle" not in str(info.value) and "pickle" not in str(info.value)


def test_unsavable_objects_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "x.npz"
    cases = [({"a": {"b": object()}}, r"a/b: cannot store a object"),
             ({"a": np.array([{}], dtype=object)}, r"a: arrays of dtype object"),
             ({1: np.ones(1)}, r"keys must be strings"),
             ({"a": [np.ones(2)]}, r"a: lists may hold only")]
    for obj, match in cases:
        with pytest.raises(SerializationError, match=match):
            tg.save(obj, path)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- damaged files

def test_missing_file_or_directory_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npz: no such file"):
        tg.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match=r"the directory .*nodir does not exist"):
        tg.save({"w": np.ones(1)}, tmp_path / "nodir" / "x.npz")


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_a_truncated_file_gives_a_clear_error(tmp_path, cut):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.arange(1000.0), "meta": "x"}, path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(SerializationError, match=r"ckpt\.npz.*(truncated|corrupted)"):
        tg.load(path)


def test_an_empty_file_and_a_flipped_byte_give_clear_errors(tmp_path):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(b"")
    with pytest.raises(SerializationError, match=r"ckpt\.npz"):
        tg.load(path)
    tg.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the array's bytes: the zip's CRC catches it
    path.write_bytes(bytes(data))
    with pytest.raises(SerializationError, match=r"ckpt\.npz: entry 'w'.*corrupted"):
        tg.load(path)


def test_damaged_metadata_or_extra_arrays_are_reported(tmp_path):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.ones(2)}, path)
    with zipfile.ZipFile(path, "a") as zf:
        with zf.open("sneaky.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(1))
    with pytest.raises(SerializationError, match=r"\['sneaky'\] are not in the metadata"):
        tg.load(path)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array("{not json"))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("%meta.npy", buf.getvalue())
    with pytest.raises(SerializationError, match="metadata is damaged"):
        tg.load(path)


def test_a_single_npy_is_not_a_checkpoint(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(SerializationError, match=r"a\.npy: this is a single \.npy array"):
        tg.load(tmp_path / "a.npy")


# ---------------------------------------------------------------- atomic writes

def test_a_failed_write_leaves_the_old_file_intact_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    tg.save({"w": np.ones(3), "step": 1}, path)
    good = path.read_bytes()

    real_write = np.lib.format.write_array
    calls = []

    def failing_write(f, arr, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first array is already in the new file
            raise OSError("disk full")
        return real_write(f, arr, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"w": np.zeros(3), "v": np.zeros(3), "step": 2}, path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert tg.load(path)["step"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_interrupt_during_write_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tg.save({"w": np.zeros(3)}, path)
    assert os.listdir(tmp_path) == []
