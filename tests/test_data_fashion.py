"""Tests for floor 5 (data): finding, verifying, downloading and loading Fashion-MNIST.

Every test runs with HOME, XDG_CACHE_HOME and TINYGRAD_MLP_DATA pointed into tmp_path, the system
directory pointed at a missing path and the download URL pointed at a closed local port, so no
test reads the machine's real data or touches the network, except the one test meant to read
Debian's copy. Downloads are tested against a local http.server. The small IDX files and their
checksums are built here with struct/gzip/hashlib, independently of the code under test.
"""
import gzip
import hashlib
import http.server
import os
import socket
import struct
import threading

import numpy as np
import pytest

from tinygrad_mlp.data import fashion_mnist as fm
from tinygrad_mlp.data import (CLASSES, ChecksumError, DatasetNotFoundError, FashionMNISTError,
                               load_fashion_mnist)

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
OFFICIAL_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                    "Sneaker", "Bag", "Ankle boot")
REAL_DIR = "/usr/share/datasets/fashion-mnist"


def uint8_idx(arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return (bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.tobytes())


class FakeSet:
    """A tiny Fashion-MNIST look-alike: arrays, IDX bytes and SHA-256 per file name."""

    def __init__(self, seed, n_train=30, n_test=20, **override):
        r = np.random.default_rng(seed)
        self.arrays = {
            NAMES[0]: r.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            NAMES[1]: r.integers(0, 10, n_train, dtype=np.uint8),
            NAMES[2]: r.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            NAMES[3]: r.integers(0, 10, n_test, dtype=np.uint8),
        }
        self.arrays.update(override)
        self.raw = {name: uint8_idx(a) for name, a in self.arrays.items()}
        self.checksums = {name: hashlib.sha256(b).hexdigest() for name, b in self.raw.items()}

    def write(self, directory, compress=True, names=NAMES):
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            if compress:
                (directory / (name + ".gz")).write_bytes(gzip.compress(self.raw[name]))
            else:
                (directory / name).write_bytes(self.raw[name])
        return directory

    def check(self, result):
        np.testing.assert_array_equal(result.train_images, self.arrays[NAMES[0]])
        np.testing.assert_array_equal(result.train_labels, self.arrays[NAMES[1]])
        np.testing.assert_array_equal(result.test_images, self.arrays[NAMES[2]])
        np.testing.assert_array_equal(result.test_labels, self.arrays[NAMES[3]])
        assert result.train_images.dtype == np.uint8 and result.test_images.dtype == np.uint8
        assert result.train_labels.dtype == np.int64 and result.test_labels.dtype == np.int64
        assert tuple(result.classes) == OFFICIAL_CLASSES


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("TINYGRAD_MLP_DATA", raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIR", str(tmp_path / "no-system-dir"))
    monkeypatch.setattr(fm, "BASE_URL", closed_port_url())
    return home


def default_cache(home):
    return home / ".cache" / "tinygrad_mlp" / "fashion-mnist"


@pytest.fixture
def server():
    """A local HTTP server; tests fill ``files`` (url path -> bytes) and read ``requests``."""
    files, requests = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/data/", files, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve(files, fake, overrides=None):
    for name in NAMES:
        files[f"/data/{name}.gz"] = gzip.compress(fake.raw[name])
    files.update(overrides or {})


# ------------------------------------------------------------------ finding and loading

def test_root_with_gz_files(tmp_path):
    fake = FakeSet(1)
    result = load_fashion_mnist(fake.write(tmp_path / "d"), checksums=fake.checksums)
    fake.check(result)
    assert result.train_images.shape == (30, 28, 28) and result.test_labels.shape == (20,)


def test_raw_and_gz_files_mixed(tmp_path):
    fake = FakeSet(2)
    d = fake.write(tmp_path / "d", compress=False, names=NAMES[:2])
    fake.write(d, compress=True, names=NAMES[2:])
    fake.check(load_fashion_mnist(str(d), download=False, checksums=fake.checksums))


def test_class_names_are_the_official_ones():
    assert tuple(CLASSES) == OFFICIAL_CLASSES


@pytest.mark.parametrize("present,winner", [
    (("root", "env", "cache", "system"), "root"),
    (("env", "cache", "system"), "env"),
    (("cache", "system"), "cache"),
    (("system",), "system"),
])
def test_search_order(tmp_path, monkeypatch, isolated, present, winner):
    # Each place holds a different data set and only the winner's checksums are given, so
    # loading from any other place fails verification.
    dirs = {"root": tmp_path / "root", "env": tmp_path / "env",
            "cache": default_cache(isolated), "system": tmp_path / "system"}
    fakes = {place: FakeSet(seed) for seed, place in enumerate(dirs, start=10)}
    for place in present:
        fakes[place].write(dirs[place])
    monkeypatch.setenv("TINYGRAD_MLP_DATA", str(dirs["env"]))
    root = dirs["root"] if "root" in present else None
    result = load_fashion_mnist(root, download=False, checksums=fakes[winner].checksums,
                                system_dir=dirs["system"])
    fakes[winner].check(result)


def test_system_dir_module_constant_is_used(tmp_path, monkeypatch):
    fake = FakeSet(3)
    monkeypatch.setattr(fm, "SYSTEM_DIR", str(fake.write(tmp_path / "sys")))
    fake.check(load_fashion_mnist(download=False, checksums=fake.checksums))


def test_xdg_cache_home_is_the_cache(tmp_path, monkeypatch, isolated):
    fake = FakeSet(4)
    fake.write(tmp_path / "xdg" / "tinygrad_mlp" / "fashion-mnist")
    FakeSet(5).write(default_cache(isolated))  # must not be used when XDG_CACHE_HOME is set
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    fake.check(load_fashion_mnist(download=False, checksums=fake.checksums))


def test_incomplete_directory_is_skipped_and_reported(tmp_path, monkeypatch):
    fake, other = FakeSet(6), FakeSet(7)
    root = fake.write(tmp_path / "root", names=NAMES[:3])
    other.write(tmp_path / "env")
    monkeypatch.setenv("TINYGRAD_MLP_DATA", str(tmp_path / "env"))
    other.check(load_fashion_mnist(root, download=False, checksums=other.checksums))
    monkeypatch.delenv("TINYGRAD_MLP_DATA")
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(root, download=False, checksums=fake.checksums)
    assert f"{root}: missing t10k-labels-idx1-ubyte" in str(e.value)


def test_nothing_found_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch, isolated):
    monkeypatch.setenv("TINYGRAD_MLP_DATA", str(tmp_path / "env-dir"))
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(tmp_path / "root-dir", download=False,
                           system_dir=tmp_path / "sys-dir")
    msg = str(e.value)
    for place in (tmp_path / "root-dir", tmp_path / "env-dir", default_cache(isolated),
                  tmp_path / "sys-dir"):
        assert f"{place}: does not exist" in msg
    for hint in ("apt-get install dataset-fashion-mnist", "TINYGRAD_MLP_DATA", "root=",
                 "--data-dir", "download=False"):
        assert hint in msg
    assert not default_cache(isolated).exists()  # download=False creates nothing


def test_unset_places_are_listed_as_such():
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(download=False)
    assert "root=: not given" in str(e.value)
    assert "$TINYGRAD_MLP_DATA: not set" in str(e.value)


# ------------------------------------------------------------------ verification

def test_checksum_mismatch_names_file_hashes_and_leaves_it(tmp_path, server):
    url, files, requests = server
    good, bad = FakeSet(8), FakeSet(9)
    root = bad.write(tmp_path / "root")
    good.write(tmp_path / "system")  # a valid copy further down must not be used instead
    serve(files, good)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    with pytest.raises(ChecksumError) as e:
        load_fashion_mnist(root, checksums=good.checksums, base_url=url,
                           system_dir=tmp_path / "system")
    msg = str(e.value)
    assert str(root / (NAMES[0] + ".gz")) in msg
    assert good.checksums[NAMES[0]] in msg
    assert hashlib.sha256(bad.raw[NAMES[0]]).hexdigest() in msg
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before
    assert requests == []


def test_recompressed_copy_verifies(tmp_path):
    fake = FakeSet(10)
    d = tmp_path / "d"
    d.mkdir()
    for name in NAMES:  # different compression level and header than gzip.compress's default
        with gzip.GzipFile(d / (name + ".gz"), "wb", compresslevel=1, mtime=12345) as f:
            f.write(fake.raw[name])
    fake.check(load_fashion_mnist(d, download=False, checksums=fake.checksums))


def test_corrupt_gzip_is_reported_with_the_path(tmp_path):
    fake = FakeSet(11)
    d = fake.write(tmp_path / "d")
    target = d / (NAMES[2] + ".gz")
    target.write_bytes(target.read_bytes()[:40])
    with pytest.raises(ChecksumError) as e:
        load_fashion_mnist(d, download=False, checksums=fake.checksums)
    assert str(target) in str(e.value) and "gzip" in str(e.value)


def test_checksums_must_cover_every_file(tmp_path):
    fake = FakeSet(12)
    partial = dict(fake.checksums)
    del partial[NAMES[3]]
    with pytest.raises(ValueError, match=NAMES[3]):
        load_fashion_mnist(fake.write(tmp_path / "d"), checksums=partial)


@pytest.mark.parametrize("override,words", [
    ({NAMES[1]: np.array([0, 1, 10] + [2] * 27, dtype=np.uint8)}, ["labels must be in 0..9",
                                                                    "10"]),
    ({NAMES[3]: np.zeros(19, dtype=np.uint8)}, ["20 images", "19 labels"]),
    ({NAMES[0]: np.zeros((30, 28, 27), dtype=np.uint8)}, ["(N, 28, 28)", "(30, 28, 27)"]),
    ({NAMES[1]: np.zeros((30, 1), dtype=np.uint8)}, ["(N,)", "(30, 1)"]),
])
def test_loaded_arrays_are_checked(tmp_path, override, words):
    fake = FakeSet(13, **override)
    with pytest.raises(FashionMNISTError) as e:
        load_fashion_mnist(fake.write(tmp_path / "d"), download=False, checksums=fake.checksums)
    for w in words:
        assert w in str(e.value)


# ------------------------------------------------------------------ download

def test_download_into_cache_then_reuse(server, isolated):
    url, files, requests = server
    fake = FakeSet(14)
    serve(files, fake)
    fake.check(load_fashion_mnist(checksums=fake.checksums, base_url=url))
    assert sorted(requests) == sorted(f"/data/{n}.gz" for n in NAMES)
    cache = default_cache(isolated)
    assert sorted(os.listdir(cache)) == sorted(n + ".gz" for n in NAMES)  # no temp files left
    requests.clear()
    fake.check(load_fashion_mnist(checksums=fake.checksums, base_url=url))
    assert requests == []


def test_download_fetches_only_missing_files(server, isolated):
    url, files, requests = server
    fake = FakeSet(15)
    fake.write(default_cache(isolated), names=NAMES[:2])
    serve(files, fake)
    fake.check(load_fashion_mnist(checksums=fake.checksums, base_url=url))
    assert sorted(requests) == sorted(f"/data/{n}.gz" for n in NAMES[2:])


@pytest.mark.parametrize("bad_index", [0, 3])
def test_download_with_wrong_checksum_leaves_nothing_that_looks_valid(server, isolated,
                                                                      bad_index):
    url, files, requests = server
    fake = FakeSet(16)
    bad_name = NAMES[bad_index]
    serve(files, fake, {f"/data/{bad_name}.gz": gzip.compress(FakeSet(17).raw[bad_name])})
    with pytest.raises(ChecksumError) as e:
        load_fashion_mnist(checksums=fake.checksums, base_url=url)
    msg = str(e.value)
    assert f"{url}{bad_name}.gz" in msg
    assert fake.checksums[bad_name] in msg
    assert hashlib.sha256(FakeSet(17).raw[bad_name]).hexdigest() in msg
    # Only the files that verified before the bad one may be in the cache; no temp files.
    cache = default_cache(isolated)
    assert sorted(os.listdir(cache)) == sorted(n + ".gz" for n in NAMES[:bad_index])
    with pytest.raises(DatasetNotFoundError):
        load_fashion_mnist(download=False, checksums=fake.checksums)


def test_download_of_non_gzip_data_is_rejected(server, isolated):
    url, files, requests = server
    fake = FakeSet(18)
    serve(files, fake, {f"/data/{NAMES[0]}.gz": b"<html>not found</html>"})
    with pytest.raises(ChecksumError):
        load_fashion_mnist(checksums=fake.checksums, base_url=url)
    assert os.listdir(default_cache(isolated)) == []


def test_download_http_error_reports_places(server, isolated):
    url, files, requests = server
    fake = FakeSet(19)
    serve(files, fake)
    del files[f"/data/{NAMES[1]}.gz"]
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(checksums=fake.checksums, base_url=url)
    assert "404" in str(e.value)
    assert sorted(os.listdir(default_cache(isolated))) == [NAMES[0] + ".gz"]


def test_unreachable_server_lists_places_and_apt_command(tmp_path, isolated):
    url = closed_port_url()
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(system_dir=tmp_path / "sys", base_url=url, timeout=5)
    msg = str(e.value)
    cache = default_cache(isolated)
    for fragment in ("root=: not given", "$TINYGRAD_MLP_DATA: not set", f"{cache}: does not exist",
                     f"{tmp_path / 'sys'}: does not exist", f"download from {url}",
                     "apt-get install dataset-fashion-mnist", "TINYGRAD_MLP_DATA", "--data-dir"):
        assert fragment in msg, fragment
    assert os.listdir(cache) == []


@pytest.fixture
def trickling_server():
    """A local server (loopback only) that answers every request with headers promising 10,000
    bytes, then sends one byte every 0.1 s: each read arrives well within any per-read timeout,
    the whole never. Bounded: it stops after 200 bytes or when the client hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    stop = threading.Event()

    def serve_one():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n")
            for _ in range(200):
                if stop.wait(0.1):
                    return
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/data/"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=30)


def test_a_trickling_download_stops_at_its_deadline_and_leaves_nothing(trickling_server,
                                                                        isolated):
    fake = FakeSet(20)
    with pytest.raises(DatasetNotFoundError) as e:
        load_fashion_mnist(checksums=fake.checksums, base_url=trickling_server, timeout=5,
                           deadline=1)
    msg = str(e.value)
    assert f"{trickling_server}{NAMES[0]}.gz: the download did not finish within its deadline " \
           f"of 1 s" in msg and "nothing was saved" in msg
    assert os.listdir(default_cache(isolated)) == []


@pytest.mark.parametrize("kw", [dict(deadline=0), dict(timeout=-1), dict(deadline="10")])
def test_timeout_and_deadline_must_be_positive(kw):
    with pytest.raises(ValueError, match="must be a positive number of seconds"):
        load_fashion_mnist(**kw)


def test_the_default_deadline_is_the_documented_one():
    import inspect
    from pathlib import Path
    assert inspect.signature(load_fashion_mnist).parameters["deadline"].default == 600
    docs = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    assert "deadline of 10 minutes" in " ".join(docs.split())


# ------------------------------------------------------------------ the real data

def test_real_debian_data(monkeypatch):
    if not os.path.isdir(REAL_DIR):
        if os.environ.get("TINYGRAD_MLP_REQUIRE_DATA"):
            pytest.fail(f"TINYGRAD_MLP_REQUIRE_DATA is set but {REAL_DIR} is missing "
                        f"(apt-get install dataset-fashion-mnist)")
        pytest.skip(f"{REAL_DIR} is missing: apt-get install dataset-fashion-mnist to run this "
                    f"test (set TINYGRAD_MLP_REQUIRE_DATA=1 to make it fail instead)")
    # Official checksums (the default) and the real system directory; no download.
    d = load_fashion_mnist(download=False, system_dir=REAL_DIR)
    assert d.train_images.shape == (60000, 28, 28) and d.train_images.dtype == np.uint8
    assert d.test_images.shape == (10000, 28, 28) and d.test_images.dtype == np.uint8
    assert d.train_labels.shape == (60000,) and d.train_labels.dtype == np.int64
    assert d.test_labels.shape == (10000,) and d.test_labels.dtype == np.int64
    assert np.bincount(d.train_labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(d.test_labels, minlength=10).tolist() == [1000] * 10
    assert d.train_images.max() == 255 and d.train_images.min() == 0
    assert tuple(d.classes) == OFFICIAL_CLASSES
