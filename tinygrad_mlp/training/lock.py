"""Floor 5 (training.lock): one process at a time in a run directory.

Imports the standard library only. ``DirectoryLock(d)`` holds an exclusive ``fcntl.flock`` on
``d/.lock``, a file holding the owner's process id. The kernel drops the lock when its process
ends, however it ends, so a lock file left by a killed process is stale by construction: the
next process takes it over. On platforms without ``fcntl`` the lock does nothing.
"""
from __future__ import annotations

import os
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["DirectoryLock", "DirectoryLockedError", "lock_owner", "LOCK_FILE"]

LOCK_FILE = ".lock"


class DirectoryLockedError(RuntimeError):
    """Another live process holds the directory's lock; ``pid`` is its id (None if unknown)."""

    def __init__(self, directory, pid):
        self.directory, self.pid = directory, pid
        who = f"process {pid}" if pid is not None else "another process"
        lock = os.path.join(directory, LOCK_FILE)
        super().__init__(f"{directory} is in use by {who} (it holds {lock}); "
                         f"wait for it to finish or stop it first")


def _read_pid(fd: int):
    # The owner writes its pid right after locking; give it a moment if we looked in between.
    for _ in range(50):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.01)
    return None


def lock_owner(directory):
    """The pid of the live process holding ``directory``'s lock (0 if it has not written it),
    or None when nobody holds it. Creates nothing: the lock file is only looked at."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = os.open(os.path.join(os.fspath(directory), LOCK_FILE), os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        return 0 if pid is None else pid
    finally:
        os.close(fd)  # drops the shared lock too, if it was taken
    return None


class DirectoryLock:
    """``with DirectoryLock(directory):`` ... : refuse with ``DirectoryLockedError`` naming the
    owner's pid if another process holds it; released (and the lock file removed) on exit."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, LOCK_FILE)
        self._fd = None

    def acquire(self):
        if self._fd is not None:
            raise RuntimeError(f"DirectoryLock: {self.directory} is already locked by this object")
        if fcntl is None:  # pragma: no cover
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                raise DirectoryLockedError(self.directory, pid) from None
            except BaseException:
                os.close(fd)
                raise
            # The owner before us removes the file as it releases; if it did so between our
            # open and our flock, we hold a lock on a file nobody else will see: start again.
            try:
                if os.path.samestat(os.fstat(fd), os.stat(self.path)):
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding the lock, so no one else's file goes
        except FileNotFoundError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
