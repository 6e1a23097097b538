"""Built-in style paintings, the shipped style models, and looking either up by name (no torch)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from fastnst.errors import FastNSTError


class StyleError(FastNSTError):
    """A style image or model that cannot be found."""


def styles_dir() -> Path:
    """Folder of the public-domain paintings shipped with fastnst (see assets/SOURCES.md)."""
    return Path(str(resources.files("fastnst") / "assets" / "styles"))


def models_dir() -> Path:
    """Folder of the trained style networks shipped with fastnst (ONNX, see checkpoints/README.md)."""
    return Path(str(resources.files("fastnst") / "assets" / "models"))


def bases_dir() -> Path:
    """Folder of the conditional base networks shipped with fastnst (``init=<name>``; checkpoints/README.md)."""
    return Path(str(resources.files("fastnst") / "assets" / "bases"))


def shipped_bases() -> dict[str, Path]:
    """``{name: path}`` of the shipped base networks that a new style is added to (``init=<name>``)."""
    folder = bases_dir()
    return {p.stem: p for p in sorted(folder.glob("*.ckpt"))} if folder.is_dir() else {}


def resolve_base(value: str | Path) -> Path:
    """What training starts from (``init=``): a path to an existing checkpoint or ONNX export, the name of a
    shipped base network (``six_styles``), or the name of a shipped style network (``wave``, ``udnie_hq``).

    Raises:
        StyleError: naming the value and the shipped bases when nothing matches.
    """
    shipped = {**shipped_models(), **shipped_variant_models(), **shipped_bases()}
    return _file_or_shipped(value, shipped, "checkpoint or ONNX file", "a shipped base or style network")


def _file_or_shipped(value: str | Path, shipped: dict[str, Path], file_kind: str, shipped_kind: str) -> Path:
    """An existing file (it wins over a name, so one's own file can always be given by path), else the
    shipped item of that name; else a one-line StyleError listing the shipped names."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    if str(value) in shipped:
        return shipped[str(value)]
    if path.is_dir():
        raise StyleError(f"{value}: a folder, not a {file_kind}")
    names = ", ".join(shipped) or "none in this version"
    raise StyleError(f"{value}: no such {file_kind}, and not {shipped_kind} ({names})")


def builtin_styles() -> dict[str, Path]:
    """``{name: path}`` of the shipped paintings, e.g. ``{"starry_night": .../starry_night.jpg}``."""
    return {p.stem: p for p in sorted(styles_dir().glob("*.jpg"))}


def shipped_models() -> dict[str, Path]:
    """``{name: path}`` of the shipped style networks, e.g. ``{"starry_night": .../starry_night.onnx}``."""
    return {p.stem: p for p in sorted(models_dir().glob("*.onnx"))}


# A shipped style's other networks live in folders of their own and are addressed as <style><suffix>:
# video/ holds the stability-trained ones (``wave_stable``), which infer uses for videos, and quality/
# the quality tier (``udnie_hq``: a larger network, 3x to 5x the time), which infer uses for photos.
STABLE_SUFFIX = "_stable"
QUALITY_SUFFIX = "_hq"
_VARIANT_FOLDERS = {STABLE_SUFFIX: "video", QUALITY_SUFFIX: "quality"}


def _variant_models(suffix: str) -> dict[str, Path]:
    folder = models_dir() / _VARIANT_FOLDERS[suffix]
    return {p.stem + suffix: p for p in sorted(folder.glob("*.onnx"))} if folder.is_dir() else {}


def shipped_video_models() -> dict[str, Path]:
    """``{"wave_stable": .../video/wave.onnx, ...}``: the shipped styles' stability-trained networks, which
    ``fastnst infer`` uses for videos in place of the per-frame photo network of the same style."""
    return _variant_models(STABLE_SUFFIX)


def shipped_quality_models() -> dict[str, Path]:
    """``{"udnie_hq": .../quality/udnie.onnx, ...}``: the shipped styles' quality-tier networks, which
    ``fastnst infer`` uses for photos in place of the real-time network of the same style."""
    return _variant_models(QUALITY_SUFFIX)


MULTI_FOLDER = "multi"  # networks of several styles, addressed by their own name (``six_styles``)


def shipped_multi_models() -> dict[str, Path]:
    """``{"six_styles": .../multi/six_styles.onnx}``: the shipped networks of several styles, whose
    ``--style`` picks one style or a mixture, with a trained strength."""
    folder = models_dir() / MULTI_FOLDER
    return {p.stem: p for p in sorted(folder.glob("*.onnx"))} if folder.is_dir() else {}


def shipped_variant_models() -> dict[str, Path]:
    """Every shipped network outside the real-time ones, by name: the video, quality-tier and several-style ones."""
    return {**shipped_video_models(), **shipped_quality_models(), **shipped_multi_models()}


def _variant(value: str | Path, suffix: str) -> Path | None:
    if Path(value).expanduser().is_file():
        return None  # one's own file is used as it is
    return _variant_models(suffix).get(f"{value}{suffix}")


def video_model(value: str | Path) -> Path | None:
    """The stability-trained network to use for videos when ``value`` names a shipped style that has one
    (``wave`` -> ``wave_stable``); None for files, other names, and styles without one."""
    return _variant(value, STABLE_SUFFIX)


def quality_model(value: str | Path) -> Path | None:
    """The quality-tier network to use for photos when ``value`` names a shipped style that has one
    (``udnie`` -> ``udnie_hq``); None for files, other names, and styles without one."""
    return _variant(value, QUALITY_SUFFIX)


def shipped_model_figures() -> dict[str, dict[str, Any]]:
    """``{name: {"painting": ..., "content": ..., "style_gram": ..., "style_stats": ...}}`` from models.json;
    a network of several styles has ``{"styles": {style: {"content": ..., ...}}}`` in place of the figures."""
    figures = json.loads((models_dir() / "models.json").read_text())
    return {name: dict(values) for name, values in figures.items() if not name.startswith("_")}


def resolve_model(value: str | Path) -> Path:
    """A path to an existing model file, or the name of a shipped style (``starry_night``).

    A file that exists wins over a name, so a model of one's own can always be given by path.

    Raises:
        StyleError: naming the value and the shipped styles when nothing matches.
    """
    return _file_or_shipped(value, {**shipped_models(), **shipped_variant_models()}, "model file", "a shipped style")


def resolve_style_image(value: str | Path, key: str = "style.image") -> Path:
    """A path to an existing image file, or the name (or file name) of a built-in painting; ``key`` is
    the setting or flag that errors name (``--style`` on a command line).

    Raises:
        StyleError: naming the value and the built-in styles when nothing matches.
    """
    path = Path(value).expanduser()
    if path.is_file():
        return path
    builtin = builtin_styles()
    name = Path(str(value)).stem
    if str(value) in (name, f"{name}.jpg") and name in builtin:
        return builtin[name]
    sep = " " if key.startswith("-") else "="
    raise StyleError(f"{key}{sep}{value}: no such file, and not a built-in style ({', '.join(builtin)})")
