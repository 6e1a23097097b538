"""Settings declared once: a dataclass field with its default, one-line doc, range or choices.

:func:`setting` makes such a field; :func:`check_ranges` checks plain values against a dataclass
of them, with one-line errors naming the key. Used by the training schema
(:mod:`fastnst.training.config`) and by ``fastnst optimize``'s :class:`fastnst.nn.optimize.Settings`;
plain Python, so any layer can use it.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from collections.abc import Mapping
from dataclasses import MISSING, field
from typing import Any

from fastnst.errors import FastNSTError

AUTO_OR_BOOL = ("auto", True, False)
KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def setting(
    default: Any = MISSING,
    doc: str = "",
    *,
    to: Mapping[str, str] | None = None,
    min: float | None = None,
    above: float | None = None,
    max: float | None = None,
    choices: tuple[Any, ...] | None = None,
    what: str | None = None,
) -> Any:
    """A dataclass field with its doc, range (``min`` <= v <= ``max``, ``above`` < v), ``choices``, and
    ``to``: ``{"module" | "data" | "trainer": argument name}``, the objects built with it.

    ``what`` names the value in range errors (default: "a whole number" or "a number").
    """
    meta = {"doc": doc, "to": dict(to or {}), "min": min, "above": above, "max": max, "choices": choices}
    meta["what"] = what
    if isinstance(default, dict | list):  # a mutable default: each config gets its own copy
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def check_ranges(
    schema: Any,
    values: Mapping[str, Any],
    prefix: str = "",
    error: type[Exception] = FastNSTError,
    given: Mapping | None = None,
) -> None:
    """Raise ``error`` (one line) for a value outside its field's range or choices; ``values`` are plain.

    ``given``: the values as written (``-1`` rather than the schema's ``-1.0``), for the message.
    """
    hints, given = typing.get_type_hints(schema), values if given is None else given
    for f in dataclasses.fields(schema):
        if f.name not in values:
            continue
        value, key = values[f.name], f"{prefix}{f.name}"
        shown = given.get(f.name, value) if isinstance(given, Mapping) else value
        if dataclasses.is_dataclass(hints[f.name]):
            check_ranges(hints[f.name], value, f"{key}.", error, shown)
        elif value is not None:
            problem = _range_problem(value, f.metadata, hints[f.name])
            if problem:
                raise error(f"{key}={shown}: {problem}")


def _range_problem(value: Any, meta: Mapping[str, Any], kind: Any) -> str | None:
    """What is wrong with ``value`` for a field with ``meta`` (None if nothing)."""
    choices = meta.get("choices")
    if choices is not None and not any(value == c and type(value) is type(c) for c in choices):
        return f"expected {_choice_words(choices)}"
    low, above, high = meta.get("min"), meta.get("above"), meta.get("max")
    if (low, above, high) == (None, None, None) or not isinstance(value, int | float):
        return None
    if math.isfinite(value) and all(
        ok for ok in (low is None or value >= low, above is None or value > above, high is None or value <= high)
    ):
        return None
    args = typing.get_args(kind)
    base = next((a for a in args if a is not type(None)), kind) if args else kind
    what = meta.get("what")
    what = KINDS.get(base, "a number") if what is None else what
    if type(None) in args:
        what = f"null or {what}"
    return " ".join(p for p in ("must be", what, _bound_words(low, above, high)) if p)


def _bound_words(low: Any, above: Any, high: Any) -> str:
    """``from 0 to 1``, ``> 0 and <= 0.99999``, ``>= 1`` or ``> 0``: the bounds a field has."""
    lower = f">= {low}" if low is not None else (f"> {above}" if above is not None else "")
    if high is None:
        return lower
    if low is not None:
        return f"from {low} to {high}"
    return f"{lower} and <= {high}" if lower else f"<= {high}"


def _choice_words(choices: tuple[Any, ...]) -> str:
    """``("johnson", "light")`` -> "one of johnson, light"; ``("auto", True, False)`` -> "auto, true or false"."""
    words = [str(c).lower() if isinstance(c, bool) else str(c) for c in choices]
    if all(isinstance(c, str) for c in choices):
        return f"one of {', '.join(words)}"
    return f"{', '.join(words[:-1])} or {words[-1]}"
