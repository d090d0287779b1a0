"""Floor 6 (viz): the one rule every picture writer follows (``render_graph`` and ``plot_*``).

The directory must already exist (as ``tinygrad_mlp.save`` requires): a typo in a path is reported,
not turned into a new directory tree. The file is written whole or not at all, through a hidden
temporary file beside it whose name never reaches the user: errors name the path asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

from .._atomic import atomic_write


def check_directory(path: Path, who: str):
    """Raise a clear error unless ``path`` can be created in an existing, writable directory."""
    directory = Path(os.path.abspath(path)).parent
    if not directory.is_dir():
        for ancestor in (directory, *directory.parents):
            if ancestor.exists():
                if not ancestor.is_dir():
                    raise NotADirectoryError(f"{who}: cannot write {str(path)!r}: {str(ancestor)!r} "
                                             f"is a file, not a directory")
                break
        raise FileNotFoundError(f"{who}: cannot write {str(path)!r}: the directory "
                                f"{str(directory)!r} does not exist (create it first)")
    if path.is_dir():
        raise IsADirectoryError(f"{who}: cannot write {str(path)!r}: it is a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PermissionError(f"{who}: cannot write {str(path)!r}: no permission to create files "
                              f"in {str(directory)!r}")


def write_file(path: Path, write, who: str):
    """Check ``path`` as ``check_directory`` does, then call ``write(f)`` on a binary file that
    replaces ``path`` only once it is complete."""
    check_directory(path, who)
    try:
        with atomic_write(path, "wb") as f:
            write(f)
    except OSError as exc:
        if exc.filename is None or os.path.abspath(exc.filename) == os.path.abspath(path):
            raise
        # the error is about the hidden temporary file: say it about the file asked for
        raise type(exc)(exc.errno, f"{who}: cannot write {str(path)!r}: {exc.strerror}") from None
