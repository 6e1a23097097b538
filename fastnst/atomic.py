"""Atomic file writes: a crash or a full disk never leaves a truncated file where a good one was."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: str | Path, fsync: bool = False) -> Iterator[BinaryIO]:
    """Write ``path`` through a temporary file in the same folder, renamed onto it on success.

    The file gets the permissions a plain ``open`` would (the umask), not ``mkstemp``'s 0600.
    On any error the temporary file is removed and an existing ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    try:  # mkstemp inside the try: a signal right after it still removes the temporary file
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with open(fd, "wb") as f:  # the builtin takes fd in C: no signal lands between
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def new_folders(folder: str | Path) -> Iterator[None]:
    """Make ``folder`` (and its missing parents) for the work inside, and remove the ones made here again if
    the work fails or is interrupted: a failed output leaves no empty folders behind."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in missing:  # deepest first; a folder something else wrote into meanwhile stays
            try:
                path.rmdir()
            except OSError:
                break
        raise
