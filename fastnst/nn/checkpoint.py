"""Reading a training checkpoint safely: plain tensors and numbers only, and a one-line error otherwise."""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from fastnst.errors import FastNSTError, one_line


def read_checkpoint(path: Path, key: str) -> Any:
    """``torch.load`` with ``weights_only=True`` (code is never run); ``key`` names the file in errors."""
    if path.stat().st_size == 0:
        raise FastNSTError(f"{key}: not a readable checkpoint (an empty file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # The weights-only unpickler refuses globals (code) and bytes that are no pickle at all alike.
        needs_code = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if needs_code:
            raise FastNSTError(f"{key}: refused, it needs code to load ({needs_code[1]})") from e
        raise FastNSTError(f"{key}: not a readable checkpoint (not a torch file)") from e
    except Exception as e:  # truncated or not a torch file: RuntimeError, EOFError, KeyError, ...
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a bare pickle fails above
            with path.open("rb") as f:
                what = "a damaged or truncated torch file" if f.read(4) == b"PK\x03\x04" else "not a torch file"
            raise FastNSTError(f"{key}: not a readable checkpoint ({what})") from e
        raise FastNSTError(f"{key}: not a readable checkpoint ({e.__class__.__name__}: {one_line(e)})") from e
