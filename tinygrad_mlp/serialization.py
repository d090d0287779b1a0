"""Floor 4 (serialization): ``save(obj, path)`` and ``load(path)`` of nested dicts of arrays, without
pickle.

The file is an ordinary ``.npz`` (a zip of ``.npy`` arrays) that ``numpy.load`` can open too:

* every array is stored under its path in the nested dict, keys joined with ``/``, each key
  percent-encoded first (``%`` -> ``%25``, ``/`` -> ``%2F``), so keys that contain dots
  (``0.weight``) or slashes round-trip and two different paths never share a name:
  ``{"model": {"0.weight": w}}`` is stored as ``model/0.weight``;
* the entry ``%meta`` (a name no encoded path can take: an encoded ``%`` is always followed by
  ``25`` or ``2F``) holds a JSON string with the format version and the tree: dict keys in order,
  and Python numbers, strings, booleans, None and lists/tuples of them as they were (Python's
  ``json`` writes ``NaN``/``Infinity`` for non-finite floats and reads them back).

Writing goes to a temporary file in the destination's directory, is flushed to disk and then
renamed over the destination (``os.replace``), so a crash never leaves a half-written file where
a good one stood. Reading uses ``allow_pickle=False`` and refuses object arrays.
"""
from __future__ import annotations

import json
import os
import zipfile
import zlib

import numpy as np

from ._atomic import atomic_write, remove_stale_temporaries
from .tensor import Tensor

# The atomic writer behind save() is public here too, for programs that write files of their own
# (a run's config.json, metrics) with the same guarantee: the old file or the new one, never half.
__all__ = ["save", "load", "SerializationError", "atomic_write", "remove_stale_temporaries"]

META_KEY = "%meta"
FORMAT = "tinygrad_mlp.save"
VERSION = 1
_ARRAY_KINDS = "biufcU"  # numeric, bool and unicode: everything .npy stores without pickle


class SerializationError(ValueError):
    """A file cannot be loaded (corrupt, truncated, pickled content) or an object cannot be saved."""


def _encode_key(key: str) -> str:
    return key.replace("%", "%25").replace("/", "%2F")


def _is_plain_value(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _flatten(obj, path: list, arrays: dict):
    """The JSON tree of ``obj``; arrays are collected into ``arrays`` under their encoded path."""
    where = "/".join(path) or "<top level>"
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in _ARRAY_KINDS:
            raise SerializationError(f"save: {where}: arrays of dtype {obj.dtype} cannot be "
                                     f"stored without pickle")
        name = "/".join(_encode_key(k) for k in path)
        arrays[name] = obj
        return {"array": name}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if not isinstance(k, str):
                raise SerializationError(f"save: {where}: dict keys must be strings; got "
                                         f"{type(k).__name__} {k!r}")
            items.append([k, _flatten(v, path + [k], arrays)])
        return {"dict": items}
    if _is_plain_value(obj):
        return {"value": obj}
    if isinstance(obj, (list, tuple)):
        bad = [v for v in obj if not _is_plain_value(v)]
        if bad:
            raise SerializationError(f"save: {where}: lists may hold only numbers, "
                                     f"strings, booleans and None (use an array for the rest); "
                                     f"got {type(bad[0]).__name__} {bad[0]!r}")
        return {"tuple" if isinstance(obj, tuple) else "list": list(obj)}
    raise SerializationError(f"save: {where}: cannot store a {type(obj).__name__}; expected "
                             f"dicts of arrays, Tensors, numbers, strings or lists of numbers")


def save(obj, path, compress: bool = False):
    """Write ``obj`` (a nested dict of arrays, Tensors, numbers, strings, lists of numbers) to
    ``path`` as ``.npz``, atomically. Tensors are stored as their arrays."""
    arrays = {}
    tree = _flatten(obj, [], arrays)  # every problem is found before the file is touched
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: {path}: the directory {directory} does not exist")
    with atomic_write(path, "wb") as f:
        compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        with zipfile.ZipFile(f, "w", compression=compression, allowZip64=True) as zf:
            for name, arr in arrays.items():
                with zf.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
            with zf.open(META_KEY + ".npy", "w") as member:
                np.lib.format.write_array(member, np.array(meta), allow_pickle=False)
    _fsync_directory(directory)


def _fsync_directory(directory: str):
    """Make the rename itself durable where the platform allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path) -> dict:
    """Read a file written by ``save``: the nested dict with ndarrays where arrays and Tensors
    were, and Python numbers, strings and lists back as they were.

    A plain ``.npz`` without tinygrad_mlp's metadata loads as a flat ``{name: ndarray}``. Pickled
    content is refused; a missing, truncated or corrupted file raises an error naming the path.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: {path}: no such file")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path} is a directory, not a saved file")
    arrays = _read_arrays(path)
    if META_KEY not in arrays:
        return arrays
    try:
        meta = json.loads(str(arrays.pop(META_KEY)[()]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        if meta.get("version") != VERSION:
            raise ValueError(f"format version {meta.get('version')!r}, this reader knows "
                             f"{VERSION}")
        used = set()
        obj = _unflatten(meta["tree"], arrays, used)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SerializationError(f"load: {path}: the metadata is damaged or not understood "
                                 f"({e})") from None
    extra = sorted(set(arrays) - used)
    if extra:
        raise SerializationError(f"load: {path}: arrays {extra} are not in the metadata; the file "
                                 f"was modified after it was saved")
    return obj


def _read_arrays(path: str) -> dict:
    try:
        archive = np.load(path, allow_pickle=False)
    except ValueError:
        # numpy falls back to unpickling anything that is neither .npy nor .npz; its message
        # then suggests allow_pickle=True, the opposite of this library's rule. Say what it is.
        raise SerializationError(f"load: {path}: {_not_an_archive(path)}") from None
    except PermissionError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise SerializationError(f"load: {path}: cannot read the archive, it is truncated or "
                                 f"corrupted ({type(e).__name__}: {e})") from None
    if isinstance(archive, np.ndarray):
        raise SerializationError(f"load: {path}: this is a single .npy array, not a .npz archive "
                                 f"written by save(); use numpy.load for it")
    arrays = {}
    with archive:
        for name in archive.files:
            try:
                arrays[name] = archive[name]
            except ValueError as e:
                if "pickle" in str(e):
                    raise SerializationError(
                        f"load: {path}: entry {name!r} holds pickled Python objects; refusing "
                        f"to load it (unpickling can run arbitrary code)") from None
                raise SerializationError(f"load: {path}: entry {name!r} is corrupted: {e}") \
                    from None
            except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise SerializationError(f"load: {path}: entry {name!r} is truncated or "
                                         f"corrupted ({type(e).__name__}: {e})") from None
    return arrays


def _not_an_archive(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return "the file is empty, not a .npz archive written by save()"
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return ("this is a Python pickle, not a .npz archive written by save(); pickles are "
                "never loaded (unpickling can run arbitrary code)")
    return (f"not a .npz archive written by save(): it starts with {head!r}, not the zip "
            f"signature b'PK\\x03\\x04' (another format, or damaged)")


def _unflatten(node, arrays: dict, used: set):
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"bad tree node {node!r}")
    (kind, value), = node.items()
    if kind == "array":
        if value not in arrays:
            raise ValueError(f"array {value!r} is missing from the archive")
        used.add(value)
        return arrays[value]
    if kind == "dict":
        return {k: _unflatten(v, arrays, used) for k, v in value}
    if kind == "value":
        return value
    if kind == "list":
        return list(value)
    if kind == "tuple":
        return tuple(value)
    raise ValueError(f"unknown tree node kind {kind!r}")
