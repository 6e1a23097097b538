"""Inputs are never overwritten: an output path that names an input, by any route, is refused.

No torch here: the inference path may use it too.
"""

from __future__ import annotations

import os
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
