"""What a fastnst ONNX file promises its readers, importable without torch.

The exporter (``fastnst.nn.export``, with torch) writes these metadata keys; the inference path
(``fastnst.runtime.stylizer``, without torch) reads them. Every value read from a file is data: the style
name becomes part of a file name only through :func:`safe_name`.
"""

from __future__ import annotations

import re

FORMAT_VERSION = 1  # the newest model format this fastnst reads (fastnst.nn.export writes it)
FORMAT_KEY = "fastnst.format"
STYLE_NAME_KEY = "fastnst.style_name"
_MAX_NAME = 64  # characters of a style name kept in output file names

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_VERSION = re.compile(r"[0-9]{1,9}")


def format_problem(value: str | None) -> str | None:
    """Why a model with ``fastnst.format`` = ``value`` cannot be read here, or None if it can."""
    if value is None:
        return "no fastnst.format metadata"
    text = value.strip()
    if not _VERSION.fullmatch(text) or int(text) < 1:  # ASCII digits only: no sign, point, exponent or '²'
        return f"fastnst model format {value[:40]!r} is not a format version (a whole number from 1)"
    if int(text) > FORMAT_VERSION:
        return f"fastnst model format {int(text)}, this fastnst reads up to {FORMAT_VERSION}; upgrade fastnst"
    return None


def safe_name(text: str, fallback: str = "stylized") -> str:
    """``text`` as one safe file-name part: runs of characters other than ``[A-Za-z0-9._-]`` become ``_``.

    Leading and trailing dots, underscores and dashes are removed, so the result is never ``..``, never
    hidden and never taken for an option; an empty result gives the cleaned ``fallback`` (or ``stylized``).
    """
    return _clean(text) or _clean(fallback) or "stylized"


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._-")[:_MAX_NAME].rstrip("._-")
