"""Below floor 1 (a stdlib-only helper every floor may use): write a file whole or not at all.

Saving a model, a checkpoint, a metrics file, a plot or a downloaded data file all follow one rule:
nothing a user already has is lost, and no half-written file ever stands under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets

__all__ = ["atomic_write", "remove_stale_temporaries"]

# Errors of the disk itself: re-raised naming the file being written, since the OSError raised by
# a write, flush or fsync names none ("No space left on device" alone does not say where).
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES,
                errno.EPERM}


def _temporary_name(path: str) -> str:
    return f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp"


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", **open_kwargs):
    """Yield a file open on a fresh temporary file beside ``path``; when the block ends normally
    the file is synced and renamed over ``path``, when it raises the temporary file is removed and
    ``path`` is left as it was.

    The temporary file sits in the same directory because ``os.replace`` is atomic only within one
    filesystem; ``f.name`` is its path, so the block may read back what it wrote (to verify a
    download) before it is published. It is created like ``open`` would (the umask decides its
    permissions), not owner-only as ``tempfile`` makes them.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write: mode must be a write mode ('w' or 'wb'); got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    for _ in range(100):
        tmp = os.path.join(directory, _temporary_name(path))
        try:
            f = open(tmp, mode.replace("w", "x"), **open_kwargs)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a hundred random collisions
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno in _DISK_ERRORS:
            raise type(e)(e.errno, e.strerror, path) from e
        raise


def remove_stale_temporaries(directory, names) -> list:
    """Remove the temporary files ``atomic_write`` left in ``directory`` for the files ``names``
    (a process killed while writing leaves its ``.NAME.<random>.tmp``); return their paths.

    Only call this while no other process can be writing those files (under a lock on the
    directory): a live writer's temporary file looks exactly like a stale one.
    """
    pattern = re.compile(r"\.(%s)\.[0-9a-f]{12}\.tmp\Z" % "|".join(re.escape(n) for n in names))
    removed = []
    for entry in sorted(os.listdir(directory)):
        if pattern.match(entry):
            path = os.path.join(directory, entry)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed
