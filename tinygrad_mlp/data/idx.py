"""Floor 5 (data): read and write IDX files, the array format of MNIST and Fashion-MNIST.

Imports numpy only. An IDX file is a 4-byte magic number (two zero bytes, a dtype code, the
number of dimensions), one big-endian uint32 per dimension, then the values, big-endian, in C
order. Files may be gzip-compressed. Every check names the file and says what was expected and
what was found, because a corrupt download is the usual way these files go wrong.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

__all__ = ["IDXError", "read_idx", "write_idx", "parse_idx", "read_decompressed",
           "IDX_DTYPES"]

# Big-endian, as the format stores them; parse_idx converts to native order.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {(dt.kind, dt.itemsize): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file that is not a well-formed IDX file, or an array IDX cannot store."""


def read_decompressed(path) -> bytes:
    """The file's bytes, gunzipped if the file is gzip data.

    Compression is recognised by content, not by name: an IDX file starts with two zero bytes and
    a gzip stream with 1f 8b, so the two cannot be confused, and a renamed file still reads.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise IDXError(f"{path}: corrupt or truncated gzip data ({e})") from None


def parse_idx(buf: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse the (decompressed) bytes of an IDX file into a native-endian, writable array.

    ``source`` names the data in error messages, usually the file path.
    """
    n = len(buf)
    if n < 4:
        raise IDXError(f"{source}: too short for an IDX header: expected at least 4 bytes, "
                       f"got {n}")
    if buf[0] != 0 or buf[1] != 0:
        raise IDXError(f"{source}: bad magic number: expected the first two bytes to be 00 00, "
                       f"got {buf[0]:02x} {buf[1]:02x} (not an IDX file?)")
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} ({IDX_DTYPES[c].name})" for c in IDX_DTYPES)
        raise IDXError(f"{source}: unknown dtype code 0x{code:02X}; expected one of {known}")
    if ndim == 0:
        raise IDXError(f"{source}: header declares 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if n < header:
        raise IDXError(f"{source}: truncated header: {ndim} dimensions need {header} bytes, "
                       f"got {n}")
    shape = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    # Python ints: a product of uint32 dimensions can overflow a fixed-width integer.
    count = 1
    for d in shape:
        count *= d
    expected = count * dtype.itemsize
    got = n - header
    if got != expected:
        problem = "truncated" if got < expected else "oversize"
        raise IDXError(f"{source}: {problem} payload: dimensions {shape} of {dtype.name} need "
                       f"{expected} bytes after the {header}-byte header, got {got}")
    values = np.frombuffer(buf, dtype=dtype, count=count, offset=header).reshape(shape)
    # astype copies, which gives an array that is native-endian and writable (frombuffer over
    # bytes is read-only) in one pass.
    return values.astype(dtype.newbyteorder("="))


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a numpy array.

    Raises ``IDXError`` naming the file and the problem for a bad magic number, an unknown dtype
    code, a truncated header, or a payload that is shorter or longer than the dimensions say.
    """
    path = os.fspath(path)
    return parse_idx(read_decompressed(path), path)


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if ``path`` ends with ``.gz``.

    Supported dtypes are the six IDX ones: uint8, int8, int16, int32, float32, float64.
    """
    path = os.fspath(path)
    arr = np.asarray(array)
    code = _CODE_OF.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None:
        raise IDXError(f"{path}: IDX cannot store dtype {arr.dtype}; expected uint8, int8, int16, "
                       f"int32, float32 or float64 (convert with .astype first)")
    if arr.ndim == 0 or arr.ndim > 255:
        raise IDXError(f"{path}: IDX stores 1 to 255 dimensions, got an array of shape "
                       f"{arr.shape}")
    if any(d >= 2**32 for d in arr.shape):
        raise IDXError(f"{path}: every dimension must fit in 32 bits, got shape {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    payload = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    if path.endswith(".gz"):
        # mtime=0 keeps the output byte-identical across runs.
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header)
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(header)
            f.write(payload)
