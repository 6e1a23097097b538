"""Inputs are never overwritten: an output path that names an input, by any route, is refused.

No torch here: the inference path may use it too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from fastnst.errors import FastNSTError


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if ``a`` and ``b`` name one file: equal once resolved (symlinks, ``..``), or the same inode (hard links)."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def refuse_overwrite(
    output: str | Path,
    inputs: Iterable[tuple[str, str | Path | None]],
    flag: str = "-o",
    error: type[FastNSTError] = FastNSTError,
) -> None:
    """Raise a one-line ``error`` if ``output`` is one of ``inputs`` (``(what, path)`` pairs), before any work."""
    for what, path in inputs:
        if path is not None and same_file(output, path):
            raise error(
                f"{flag} {output}: that is the {what} {path}; inputs are never overwritten, choose another {flag}"
            )


def _stat(path: str | Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class InputSet:
    """The inputs of a run, by real path and by ``(device, inode)``: :meth:`holds` says whether an output
    would write over one of them (links, ``..``, hard links), without comparing every pair."""

    def __init__(self, paths: Iterable[str | Path]) -> None:
        paths = list(paths)
        self.real = {os.path.realpath(p) for p in paths}
        self.ids = {(st.st_dev, st.st_ino) for p in paths if (st := _stat(p)) is not None}

    def holds(self, path: str | Path) -> bool:
        st = _stat(path)
        return os.path.realpath(path) in self.real or (st is not None and (st.st_dev, st.st_ino) in self.ids)


def blocking_file(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists, when it is not a folder (nothing can then be
    written under ``folder``); None when writing there can work."""
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            return None if path.is_dir() else path
    return None


def cannot_write(output: str | Path) -> str | None:
    """Why the file ``output`` could not be written (a folder there, a file where a folder should be, a
    folder that takes no new files), or None: asked before any work, so that no work is lost at the end."""
    output = Path(output).expanduser()
    if output.is_dir():
        return "is a folder; give the file to write"
    blocking = blocking_file(output.parent)
    if blocking is not None:
        return f"{blocking} is a file, not a folder"
    base = next(p for p in (output.parent, *output.parent.parents) if os.path.lexists(p))
    try:  # the one sure test: make a file there (and remove it); the missing folders are made only at the end
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as e:
        return f"cannot write in {base} ({e.strerror or e})"
    return None
