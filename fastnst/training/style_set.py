"""Several styles in one run: ``python train.py style=[starry_night,wave,udnie]``.

Hydra merges the options of a list-valued group into one node (the last one wins), so the list is
read from the command line instead: each named preset of ``conf/style/`` is loaded on its own,
the ``style.size=`` and ``style.style_weight=`` overrides of the command line apply to every style,
and ``styles`` gets one entry per style. ``style.name`` names the model (run folder, export): given
on the command line, or made from the styles' names, or for a painting of one's own
(``style.image=``) from its file name (:func:`model_name`). ``loss.style_weight``
scales every style's weight (it is ``style.style_weight`` unless set).

A one-style run with ``model.strength=true`` or ``init=<checkpoint>`` is conditional too: its
``styles`` is the one style.

A style preset may choose the loss its painting's recipe won with (``override /loss`` in its defaults).
A network has one loss, so a list trains with the loss its presets share; where they choose different
ones, with the default loss, the several-style networks' recipe (:func:`list_loss`), unless ``loss=`` is
given.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf

from fastnst.training.config import ConfigError, check_schema, override_words, presets

STYLE_KEYS = ("image", "size", "style_weight")  # what each entry of `styles` holds besides its name
SHARED_KEYS = ("size", "style_weight")  # style.<key>= overrides that apply to every style of a list
_JOINED = 3  # up to this many styles, the model is named after all of them (wave+udnie)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # style.name: a run folder's and a file's name


def _parsed(overrides: Sequence[str]) -> list[Any]:
    return OverridesParser.create().parse_overrides(override_words(overrides))


def style_list(overrides: Sequence[str]) -> list[str] | None:
    """The style names of ``style=[a,b,...]`` among the command-line overrides (None: one style)."""
    for override in _parsed(overrides):
        if override.key_or_group == "style" and isinstance(override.value(), list):
            names = [str(n) for n in override.value()]
            if len(set(names)) != len(names) or not names:
                raise ConfigError(f"style={override.value()}: expected distinct style names")
            return names
    return None


def style_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of the ``style.<key>=value`` overrides."""
    return {
        o.key_or_group.removeprefix("style."): o.value()
        for o in _parsed(overrides)
        if o.key_or_group.startswith("style.")
    }


def model_name(style_name: str, overrides: Sequence[str]) -> str:
    """The model's name: ``style.name`` when given; for one style, the painting's file name when only
    ``style.image`` is given (else the preset's name); for several, ``wave+udnie`` or ``6_styles``."""
    names, given = style_list(overrides), style_overrides(overrides)
    if "name" in given:
        return style_name
    if names is None:
        return painting_name(str(given["image"])) if "image" in given else style_name
    return "+".join(names) if len(names) <= _JOINED else f"{len(names)}_styles"


def painting_name(image: str) -> str:
    """A model name from a painting's file name: its stem, any run of other characters than letters,
    digits, ``.``, ``_`` and ``-`` made one ``_`` (``My Painting (2).jpg`` -> ``My_Painting_2``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(image).stem).strip("._-") or "my_style"


def check_style_overrides(overrides: Sequence[str]) -> None:
    """Before Hydra composes: ``style.name`` is a name, not a path (it names the run folder and the
    exported file), and ``style.image`` is not given with ``style=[...]`` (each preset has its painting)."""
    try:
        given = style_overrides(overrides)
    except OverrideParseException:
        return  # a syntax error: Hydra names it
    if "name" in given and not _NAME.fullmatch(str(given["name"])):
        raise ConfigError(
            f"style.name={given['name']}: a name, not a path (letters, digits, '.', '_' and '-', "
            "starting with a letter or digit)"
        )
    names = style_list(overrides)
    if names is not None and "image" in given:
        raise ConfigError(
            f"style.image={given['image']}: style=[{','.join(names)}] takes each preset's own painting; "
            "a painting of your own is one style (or a new style on a base: init=)"
        )


def preset_loss(name: str) -> str:
    """The loss preset that ``conf/style/<name>.yaml`` chooses (``override /loss...`` in its defaults), else
    the default loss of ``conf/train.yaml``."""
    for entry in load_preset(name).get("defaults") or []:
        for key, value in entry.items() if isinstance(entry, DictConfig) else []:
            if str(key).startswith("override /loss"):
                return str(value)
    return _default_choice("loss")


def _default_choice(group: str) -> str:
    """The option of ``group`` in ``conf/train.yaml``'s defaults."""
    train = OmegaConf.create(importlib.resources.files("fastnst.conf").joinpath("train.yaml").read_text())
    return next(str(entry[group]) for entry in train.defaults if isinstance(entry, DictConfig) and group in entry)


def list_loss(overrides: Sequence[str]) -> tuple[str, str] | None:
    """For ``style=[a,b,...]`` whose presets choose different losses and no ``loss=``: the loss the run
    trains with instead of Hydra's merge (which keeps the last preset's choice), the default one (the
    several-style networks were measured with it), and a line that says so. None otherwise (the list's
    shared loss, or ``loss=``)."""
    try:
        names = style_list(overrides)
        if names is None or any(o.key_or_group == "loss" for o in _parsed(overrides)):
            return None
    except OverrideParseException:
        return None  # a syntax error: Hydra names it
    chosen = {n: preset_loss(n) for n in names}
    if len(set(chosen.values())) == 1:
        return None
    loss = _default_choice("loss")
    given = ", ".join(f"{n}: {v}" for n, v in chosen.items())
    note = f"style=[{','.join(names)}]: the presets choose different losses ({given}); one network has one"
    note += f": loss={loss} (set loss= to choose)"
    if "size" not in style_overrides(overrides):
        note += f", each painting at its preset's size ({', '.join(f'{n} {load_preset(n).size}' for n in names)} px)"
    return loss, note


def load_preset(name: str) -> DictConfig:
    """``conf/style/<name>.yaml`` (as shipped in the package)."""
    path = importlib.resources.files("fastnst.conf").joinpath("style", f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(f"style={name}: no such style preset; choose from {', '.join(presets('style'))}")
    return OmegaConf.create(path.read_text())


def expand_styles(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """``cfg`` with ``styles`` filled from ``style=[a,b,...]``, or with the one style of a conditional
    one-style run (unchanged otherwise, and when ``styles`` is given in the config)."""
    names = style_list(overrides)
    if cfg.get("styles") or (names is None and not (cfg.model.get("strength") or _adds_to_base(cfg.get("init")))):
        return _named(cfg, model_name(cfg.style.name, overrides))
    check_schema(cfg)  # the weights scaled below are numbers (a one-line error, not a TypeError)
    scale = cfg.loss.style_weight / cfg.style.style_weight if cfg.style.style_weight else 1.0
    if names is None:
        styles = [{"name": model_name(cfg.style.name, overrides), **{k: cfg.style[k] for k in STYLE_KEYS}}]
    else:
        given = {k: v for k, v in style_overrides(overrides).items() if k in SHARED_KEYS}
        styles = [{"name": str(p.name), **{k: given.get(k, p[k]) for k in STYLE_KEYS}} for p in map(load_preset, names)]
    for style in styles:
        style["style_weight"] = float(style["style_weight"]) * scale
    expanded = cfg.copy()
    OmegaConf.set_struct(expanded, False)
    expanded.styles = styles
    expanded.style.name = model_name(cfg.style.name, overrides)
    return expanded


def _adds_to_base(init: str | None) -> bool:
    """Whether ``init`` names a conditional base that this run's style is added to (not a one-style
    network that it fine-tunes, or none)."""
    if not init:
        return False
    from fastnst.nn.conditioning import load_base

    return bool(load_base(init)[1].get("styles"))


def _named(cfg: DictConfig, name: str) -> DictConfig:
    """``cfg`` with ``style.name`` set to ``name`` (a copy, when it changes)."""
    if cfg.style.name == name:
        return cfg
    named = cfg.copy()
    named.style.name = name
    return named
