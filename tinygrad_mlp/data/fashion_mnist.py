"""Floor 5 (data): find, verify, download and load Fashion-MNIST.

Imports numpy and ``idx`` only. ``load_fashion_mnist`` looks in a fixed order of places, verifies
each file by the SHA-256 of its decompressed content (so a recompressed copy, such as Debian's,
verifies too), and downloads into the cache only when no place has the data. It never overwrites
or deletes a file it did not create: a copy that fails verification is reported, not replaced.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.request
from typing import NamedTuple

import numpy as np

from .._atomic import atomic_write
from .idx import IDXError, parse_idx, read_decompressed

__all__ = ["load_fashion_mnist", "FashionMNIST", "FashionMNISTError", "ChecksumError",
           "DatasetNotFoundError", "DownloadTimeout", "DOWNLOAD_DEADLINE", "CLASSES", "FILES",
           "SHA256", "BASE_URL", "SYSTEM_DIR", "ENV_VAR", "cache_dir"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# SHA-256 of the decompressed files as published by Zalando Research.
SHA256 = {
    TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

BASE_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
ENV_VAR = "TINYGRAD_MLP_DATA"

HOW_TO_GET = (
    "To get the data, do one of:\n"
    "  - install the Debian package: sudo apt-get install dataset-fashion-mnist "
    f"(installs to {SYSTEM_DIR});\n"
    "  - put the four files (each as NAME.gz or raw NAME) in a directory and pass it as "
    "load_fashion_mnist(root=...) or the example's --data-dir option, or set the "
    f"{ENV_VAR} environment variable to it;\n"
    "  - allow download=True with network access to the download URL.\n"
    f"The files: {', '.join(FILES)}."
)

_CHUNK = 1 << 20
DOWNLOAD_DEADLINE = 600.0  # seconds for the whole download (all missing files), by default


class FashionMNISTError(RuntimeError):
    """Fashion-MNIST could not be found, verified or loaded."""


class ChecksumError(FashionMNISTError):
    """A file's decompressed content does not have the expected SHA-256."""


class DatasetNotFoundError(FashionMNISTError):
    """No place had the files and they could not be downloaded."""


class FashionMNIST(NamedTuple):
    train_images: np.ndarray  # uint8 (60000, 28, 28)
    train_labels: np.ndarray  # int64 (60000,)
    test_images: np.ndarray   # uint8 (10000, 28, 28)
    test_labels: np.ndarray   # int64 (10000,)
    classes: tuple

    def datasets(self, transform=None) -> tuple:
        """``(train, test)`` as datasets of ``(image, label)`` samples. Without ``transform`` a
        sample's image is float32 ``(784,)`` in [0, 1] (``to_float``) and the datasets are
        ``TensorDataset``s, which ``DataLoader`` gathers a batch at a time; with
        ``transform``, it is ``transform(uint8 (28, 28) image)``, computed per sample."""
        from .dataset import TensorDataset, TransformDataset
        from .loader import to_float

        if transform is None:
            return (TensorDataset(to_float(self.train_images), self.train_labels),
                    TensorDataset(to_float(self.test_images), self.test_labels))
        return (TransformDataset(TensorDataset(self.train_images, self.train_labels), transform),
                TransformDataset(TensorDataset(self.test_images, self.test_labels), transform))


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/tinygrad_mlp/fashion-mnist``, default ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tinygrad_mlp", "fashion-mnist")


def _find_file(directory: str, name: str):
    # Raw first: someone who decompressed the files most likely means those.
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _scan(directory: str):
    """(paths by name, None) if the directory holds all four files, else (None, why not)."""
    if not os.path.isdir(directory):
        return None, "does not exist" if not os.path.exists(directory) else "is not a directory"
    found = {name: _find_file(directory, name) for name in FILES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        return None, "missing " + ", ".join(missing)
    return found, None


def _read_verified(path: str, name: str, checksums: dict) -> np.ndarray:
    try:
        buf = read_decompressed(path)
    except OSError as e:
        raise FashionMNISTError(f"{path}: cannot read: {e}") from None
    except IDXError as e:
        raise ChecksumError(f"{e}; delete or replace this file") from None
    expected = checksums[name]
    actual = hashlib.sha256(buf).hexdigest()
    if actual != expected:
        raise ChecksumError(
            f"{path}: SHA-256 of the decompressed content does not match: expected {expected}, "
            f"got {actual}. The file is corrupt or not the official {name}; it was left as is. "
            f"Delete or replace it, or point root= / {ENV_VAR} elsewhere.")
    return parse_idx(buf, path)


def _check_split(images, labels, image_path, label_path, num_classes) -> tuple:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise FashionMNISTError(f"{image_path}: expected uint8 images of shape (N, 28, 28), got "
                                f"{images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise FashionMNISTError(f"{label_path}: expected labels of shape (N,), got "
                                f"{labels.shape}")
    if len(images) != len(labels):
        raise FashionMNISTError(f"{image_path} has {len(images)} images but {label_path} has "
                                f"{len(labels)} labels; expected the same count")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise FashionMNISTError(f"{label_path}: labels must be in 0..{num_classes - 1}, got "
                                f"values from {labels.min()} to {labels.max()}")
    return images, labels


def _load_dir(paths: dict, checksums: dict) -> FashionMNIST:
    arrays = {name: _read_verified(paths[name], name, checksums) for name in FILES}
    train = _check_split(arrays[TRAIN_IMAGES], arrays[TRAIN_LABELS], paths[TRAIN_IMAGES],
                         paths[TRAIN_LABELS], len(CLASSES))
    test = _check_split(arrays[TEST_IMAGES], arrays[TEST_LABELS], paths[TEST_IMAGES],
                        paths[TEST_LABELS], len(CLASSES))
    return FashionMNIST(train[0], train[1], test[0], test[1], CLASSES)


class DownloadTimeout(TimeoutError):
    """The download did not finish before its overall deadline."""


def _download_file(url: str, directory: str, name: str, expected: str, timeout: float,
                   ends_at: float, deadline: float) -> None:
    """Fetch ``url`` into ``directory/name.gz``, visible under that name only once verified."""
    # Network errors, bad checksums, the deadline and Ctrl-C alike leave no partial file behind.
    with atomic_write(os.path.join(directory, name + ".gz"), "wb") as out, \
            urllib.request.urlopen(url, timeout=timeout) as resp:
        received = 0
        # read1 returns what one socket read brings, so the deadline is checked however slowly
        # the bytes trickle in (read(n) would wait for all n of them).
        while chunk := resp.read1(_CHUNK):
            out.write(chunk)
            received += len(chunk)
            if time.monotonic() > ends_at:
                raise DownloadTimeout(f"{url}: the download did not finish within its deadline "
                                      f"of {deadline:g} s ({received} bytes received); nothing "
                                      f"was saved")
        out.flush()
        try:
            actual = hashlib.sha256(read_decompressed(out.name)).hexdigest()
        except IDXError as e:
            raise ChecksumError(f"{url}: downloaded data is not valid gzip ({e}); nothing was "
                                f"saved") from None
        if actual != expected:
            raise ChecksumError(
                f"{url}: SHA-256 of the decompressed download does not match: expected "
                f"{expected}, got {actual}; nothing was saved")


def load_fashion_mnist(root=None, download: bool = True, *, checksums: dict | None = None,
                       base_url: str | None = None, system_dir=None,
                       timeout: float = 30.0,
                       deadline: float = DOWNLOAD_DEADLINE) -> FashionMNIST:
    """Load Fashion-MNIST: uint8 images ``(N, 28, 28)``, int64 labels, the 10 class names.

    Places, in order (the first that holds all four files is used):

    1. ``root``, if given;
    2. the directory in the environment variable ``TINYGRAD_MLP_DATA``;
    3. the cache, ``$XDG_CACHE_HOME/tinygrad_mlp/fashion-mnist`` (default ``~/.cache/...``);
    4. ``system_dir`` (default ``SYSTEM_DIR``, where Debian's ``dataset-fashion-mnist`` puts it);
    5. if ``download``, the files missing from the cache are fetched from ``base_url`` (default
       ``BASE_URL``) into it: ``timeout`` seconds at most for each network read, and
       ``deadline`` seconds (default ``DOWNLOAD_DEADLINE``, 10 minutes) for the whole download;
       past either, the download stops and nothing of the unfinished file is kept.

    A directory may hold each file as ``NAME.gz`` or raw ``NAME``. Every file is verified by the
    SHA-256 of its decompressed content against ``checksums`` (default ``SHA256``); a mismatch
    raises ``ChecksumError`` naming the file instead of looking further, so a user's file is
    never silently shadowed or overwritten. If nothing is found, ``DatasetNotFoundError`` lists
    every place looked and how to get the data.
    """
    checksums = dict(SHA256 if checksums is None else checksums)
    unknown = set(FILES) - set(checksums)
    if unknown:
        raise ValueError(f"checksums= must have an entry for each of {FILES}; missing "
                         f"{sorted(unknown)}")
    for label, value in (("timeout", timeout), ("deadline", deadline)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"load_fashion_mnist: {label} must be a positive number of "
                             f"seconds; got {value!r}")
    base_url = BASE_URL if base_url is None else base_url
    system_dir = SYSTEM_DIR if system_dir is None else os.fspath(system_dir)
    cache = cache_dir()
    env_dir = os.environ.get(ENV_VAR) or None

    places = [("root=", None if root is None else os.fspath(root)),
              (f"${ENV_VAR}", env_dir),
              ("cache", cache),
              ("system", system_dir)]
    looked = []
    for label, directory in places:
        if directory is None:
            looked.append(f"{label}: not given" if label == "root=" else f"{label}: not set")
            continue
        directory = os.path.expanduser(directory)
        paths, why_not = _scan(directory)
        if paths is not None:
            return _load_dir(paths, checksums)
        looked.append(f"{label} {directory}: {why_not}")

    if download:
        try:
            os.makedirs(cache, exist_ok=True)
            ends_at = time.monotonic() + deadline
            for name in FILES:
                if _find_file(cache, name) is None:
                    url = base_url.rstrip("/") + "/" + name + ".gz"
                    _download_file(url, cache, name, checksums[name], timeout, ends_at,
                                   deadline)
        except ChecksumError:
            raise
        except (OSError, http.client.HTTPException, ValueError) as e:
            # URLError and timeouts are OSErrors; ValueError is a malformed base_url.
            looked.append(f"download from {base_url} into {cache}: failed ({e})")
        else:
            paths, why_not = _scan(cache)
            if paths is not None:
                return _load_dir(paths, checksums)
            looked.append(f"cache {cache} after download: {why_not}")  # pragma: no cover
    else:
        looked.append("download: disabled (download=False)")

    raise DatasetNotFoundError("Fashion-MNIST not found. Looked in:\n  - " + "\n  - ".join(looked)
                               + "\n" + HOW_TO_GET)
