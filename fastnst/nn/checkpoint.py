"""Reading a training checkpoint safely: plain tensors and numbers only, and a one-line error otherwise."""

from __future__ import annotations

import math
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


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted average of state dicts with the same keys and shapes (a "model soup").

    Floating-point tensors are averaged with ``weights`` (normalised to sum to 1); any other tensor (a
    counter) must be equal in all of them and is kept. The inputs are not changed. Raises ``ValueError``
    naming the first key that differs.
    """
    if not state_dicts or len(state_dicts) != len(weights):
        raise ValueError(f"{len(state_dicts)} state dicts and {len(weights)} weights; give one weight per state dict")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights {weights}: they must be non-negative numbers, not all zero")
    total = float(sum(weights))
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], start=1):
        if sd.keys() != first.keys():
            key = sorted(sd.keys() ^ first.keys())[0]
            raise ValueError(f"state dict {i} and state dict 0 differ in their keys ({key!r} is in one only)")
    averaged = {}
    for key, ref in first.items():
        tensors = [sd[key] for sd in state_dicts]
        if any(t.shape != ref.shape for t in tensors):
            raise ValueError(f"{key!r}: shapes {[tuple(t.shape) for t in tensors]} differ")
        if ref.is_floating_point():
            # Accumulate in float64 so that the order of the inputs does not change the last bit.
            acc = sum(t.double() * (w / total) for t, w in zip(tensors, weights, strict=True))
            averaged[key] = acc.to(ref.dtype)
        elif all(torch.equal(t, ref) for t in tensors):
            averaged[key] = ref.clone()
        else:
            raise ValueError(f"{key!r}: a {ref.dtype} tensor that differs between the state dicts: cannot be averaged")
    return averaged
