"""Tests for floor 5 (data): the IDX reader and writer.

Expected bytes and arrays are written out by hand here (struct and literal bytes), never produced by
the code under test.
"""
import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinygrad_mlp.data import IDXError, read_idx, write_idx

# code, big-endian struct format of one value, numpy dtype
CODES = [(0x08, "B", np.uint8), (0x09, "b", np.int8), (0x0B, "h", np.int16),
         (0x0C, "i", np.int32), (0x0D, "f", np.float32), (0x0E, "d", np.float64)]


def idx_bytes(code, fmt, shape, values):
    """An IDX file built with struct, independently of write_idx."""
    header = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{len(values)}{fmt}", *values)


def put(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


# ------------------------------------------------------------------ reading known bytes

@pytest.mark.parametrize("code,fmt,dtype", CODES)
@pytest.mark.parametrize("compress", [False, True])
def test_read_known_bytes_every_dtype(tmp_path, code, fmt, dtype, compress):
    values = [1, 2, 3, 4, 5, 6] if fmt in "Bbhi" else [0.5, -1.25, 3.0, 1e3, -0.0, 7.75]
    if fmt == "b":
        values = [-128, -1, 0, 1, 2, 127]
    if fmt == "h":
        values = [-32768, -300, 0, 258, 1000, 32767]
    if fmt == "i":
        values = [-2**31, -70000, 0, 65536, 1, 2**31 - 1]
    name = "a.idx.gz" if compress else "a.idx"
    path = put(tmp_path / name, idx_bytes(code, fmt, (2, 3), values), compress)
    got = read_idx(path)
    assert got.dtype == np.dtype(dtype)
    assert got.dtype.isnative
    assert got.shape == (2, 3)
    np.testing.assert_array_equal(got, np.array(values, dtype=dtype).reshape(2, 3))


def test_read_uint8_images_literal(tmp_path):
    # Two 2x2 images, written byte by byte as an MNIST image file would be.
    data = bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 16, 32, 1, 2, 3, 4])
    got = read_idx(put(tmp_path / "imgs", data))
    np.testing.assert_array_equal(got, [[[0, 255], [16, 32]], [[1, 2], [3, 4]]])
    assert got.flags.writeable


def test_gzip_detected_by_content_not_name(tmp_path):
    data = idx_bytes(0x08, "B", (3,), [7, 8, 9])
    np.testing.assert_array_equal(read_idx(put(tmp_path / "plain.gz", data)), [7, 8, 9])
    np.testing.assert_array_equal(read_idx(put(tmp_path / "packed", data, True)), [7, 8, 9])


def test_big_endian_is_honoured(tmp_path):
    # 0x0102 big-endian is 258; little-endian would read 513.
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 1, 0x01, 0x02])
    assert read_idx(put(tmp_path / "x", data))[0] == 258


# ------------------------------------------------------------------ writing

def test_write_exact_bytes(tmp_path):
    write_idx(tmp_path / "w", np.array([[1, 2, 3]], dtype=np.int16))
    assert (tmp_path / "w").read_bytes() == bytes(
        [0, 0, 0x0B, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0, 1, 0, 2, 0, 3])


def test_write_gz_is_gzip_of_the_same_bytes(tmp_path):
    write_idx(tmp_path / "w.gz", np.array([5, 6], dtype=np.uint8))
    raw = (tmp_path / "w.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    assert gzip.decompress(raw) == bytes([0, 0, 8, 1, 0, 0, 0, 2, 5, 6])


@settings(max_examples=40, deadline=None)
@given(arr=hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
    compress=st.booleans(), little=st.booleans())
def test_round_trip(tmp_path_factory, arr, compress, little):
    if little:
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    path = tmp_path_factory.mktemp("rt") / ("a.gz" if compress else "a")
    write_idx(path, arr)
    got = read_idx(path)
    assert got.shape == arr.shape
    assert got.dtype == arr.dtype.newbyteorder("=")
    # Bitwise comparison, so NaN payloads and -0.0 count too.
    assert got.tobytes() == arr.astype(arr.dtype.newbyteorder("=")).tobytes()


@pytest.mark.parametrize("arr,problem", [
    (np.zeros(3, dtype=np.int64), "int64"),
    (np.zeros(3, dtype=np.uint16), "uint16"),
    (np.zeros(3, dtype=bool), "bool"),
    (np.array(5, dtype=np.uint8), "shape ()"),
])
def test_write_rejects_what_idx_cannot_store(tmp_path, arr, problem):
    with pytest.raises(IDXError) as e:
        write_idx(tmp_path / "bad", arr)
    assert problem in str(e.value)
    assert str(tmp_path / "bad") in str(e.value)


# ------------------------------------------------------------------ malformed files

GOOD = idx_bytes(0x08, "B", (2, 3), [1, 2, 3, 4, 5, 6])  # 4 + 8 header bytes, 6 payload bytes


@pytest.mark.parametrize("data,words", [
    (b"", ["at least 4 bytes", "got 0"]),
    (b"\x00\x00\x08", ["at least 4 bytes", "got 3"]),
    (b"\x01\x00" + GOOD[2:], ["magic", "01 00"]),
    (b"PK\x03\x04" + GOOD[4:], ["magic", "50 4b"]),
    (GOOD[:2] + b"\x0a" + GOOD[3:], ["dtype code 0x0A"]),
    (GOOD[:3] + b"\x00", ["0 dimensions"]),
    (GOOD[:10], ["truncated header", "12 bytes", "got 10"]),
    (GOOD[:-1], ["truncated payload", "(2, 3)", "6 bytes", "got 5"]),
    (GOOD + b"\x00", ["oversize payload", "6 bytes", "got 7"]),
    (GOOD[:4] + struct.pack(">2I", 60000, 28) + GOOD[12:], ["truncated", "1680000", "got 6"]),
])
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_name_path_and_problem(tmp_path, data, words, compress):
    path = put(tmp_path / ("bad.gz" if compress else "bad"), data, compress)
    with pytest.raises(IDXError) as e:
        read_idx(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_idx_error_is_a_value_error():
    assert issubclass(IDXError, ValueError)


def test_truncated_gzip(tmp_path):
    packed = gzip.compress(GOOD)
    path = put(tmp_path / "cut.gz", packed[: len(packed) // 2])
    with pytest.raises(IDXError, match="gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
