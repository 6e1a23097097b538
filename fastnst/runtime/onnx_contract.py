"""What a fastnst ONNX file promises its readers, importable without torch.

The exporter (``fastnst.nn.export``, with torch) writes these metadata keys; the inference path
(``fastnst.runtime.stylizer``, without torch) reads them. Every value read from a file is data: the style
name becomes part of a file name only through :func:`safe_name`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

FORMAT_VERSION = 2  # the newest model format this fastnst reads (1, and 2 for --style-maps exports)
FORMAT_KEY = "fastnst.format"
STYLE_NAME_KEY = "fastnst.style_name"
STYLE_NAMES_KEY = "fastnst.style_names"  # conditional networks: a JSON list, one name per style_weights entry
STYLE_MAPS_KEY = "fastnst.style_maps"  # "true": style_weights is a per-pixel (1, S, h, w) map (export --style-maps)
STRENGTH_KEY = "fastnst.strength"  # "true": the strength input was trained (model.strength=true)
MARGIN_KEY = "fastnst.margin"  # pixels of replicated border Stylizer adds around each pass (export --margin)
DEFAULT_MARGIN = 16  # a model without MARGIN_KEY (every export before 2026-12-06)
PRECISIONS = ("fp32", "fp16", "int8")  # what fastnst export writes (the CLI lists them without torch)
OPSET = 18  # the exporter's default ONNX opset
_MAX_NAME = 64  # characters of a style name kept in output file names

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_VERSION = re.compile(r"[0-9]{1,9}")
_PIXELS = re.compile(r"[0-9]{1,4}")


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


def check_margin(margin: int, what: str = "margin") -> None:
    """A margin is a non-negative multiple of 4 pixels (the networks' sampling grid)."""
    if margin < 0 or margin % 4:
        raise ValueError(f"{what}={margin}: expected a multiple of 4 (0 for none)")


def model_margin(metadata: Mapping[str, str]) -> int:
    """The replicated margin a model asks for: its ``fastnst.margin``, else :data:`DEFAULT_MARGIN`.

    The margin keeps a network's own edge effects (a band it learned along one border) out of the
    picture, but it also enters every instance norm's statistics, which moves each network's results
    differently (docs/quality.md): so it is recorded per network.

    Raises:
        ValueError: if the value is not a multiple of 4 pixels.
    """
    text = metadata.get(MARGIN_KEY)
    if text is None:
        return DEFAULT_MARGIN
    if not _PIXELS.fullmatch(text):
        raise ValueError(f"{MARGIN_KEY}={_clean(text)!r}: expected a multiple of 4 pixels")
    check_margin(int(text), MARGIN_KEY)
    return int(text)


def style_names(metadata: Mapping[str, str]) -> list[str]:
    """The styles of a conditional network, in ``style_weights`` order ([] for a one-style network).

    Raises:
        ValueError: if the metadata is not a JSON list of distinct, non-empty strings.
    """
    text = metadata.get(STYLE_NAMES_KEY)
    if text is None:
        return []
    try:
        names = json.loads(text)
    except ValueError:
        names = None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"{STYLE_NAMES_KEY} is not a list of distinct style names: {text[:80]!r}")
    return names


def parse_style_mix(spec: str | Mapping[str, float], names: list[str]) -> dict[str, float]:
    """``{style: weight}`` from ``"wave"``, ``"wave=0.7,udnie=0.3"`` or a mapping, checked against ``names``.

    Weights must be finite, non-negative and not all zero; they are normalised to sum to 1.

    Raises:
        ValueError: naming the unknown style or the bad weight, and listing the model's styles.
    """
    if isinstance(spec, str):
        pairs = [part.partition("=") for part in spec.split(",") if part.strip()]
        given = [name.strip() for name, _, _ in pairs]
        twice = sorted({name for name in given if given.count(name) > 1})
        if twice:
            raise ValueError(f"style {', '.join(twice)} given twice in {spec!r}: give each style once")
        spec = {name.strip(): _weight(name.strip(), value) if eq else 1.0 for name, eq, value in pairs}
    elif not isinstance(spec, Mapping):
        raise ValueError(f"style {spec!r}: expected a name, 'a=0.7,b=0.3' or a mapping of names to weights")
    choices = ", ".join(names) if names else "none"
    spec = {name: _weight(name, weight) for name, weight in spec.items()}
    for name, weight in spec.items():
        if name not in names:
            raise ValueError(f"{name!r} is not a style of this model (its styles: {choices})")
        if not weight >= 0 or weight == float("inf"):
            raise ValueError(f"style weight {name}={weight}: expected a finite number >= 0")
    total = sum(spec.values())
    if not spec or total <= 0:
        raise ValueError(f"no style chosen, or all weights are 0 (the model's styles: {choices})")
    return {name: weight / total for name, weight in spec.items()}


def _weight(name: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"style weight {name}={value!r}: not a number") from None
