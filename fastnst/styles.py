"""Built-in style paintings and style-image lookup."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastnst.errors import FastNSTError


class StyleError(FastNSTError):
    """A style image that cannot be found."""


def styles_dir() -> Path:
    """Folder of the public-domain paintings shipped with fastnst (see assets/SOURCES.md)."""
    return Path(str(resources.files("fastnst") / "assets" / "styles"))


def builtin_styles() -> dict[str, Path]:
    """``{name: path}`` of the shipped paintings, e.g. ``{"starry_night": .../starry_night.jpg}``."""
    return {p.stem: p for p in sorted(styles_dir().glob("*.jpg"))}


def resolve_style_image(value: str | Path) -> Path:
    """A path to an existing image file, or the name (or file name) of a built-in painting.

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
    raise StyleError(f"style.image={value}: no such file, and not a built-in style ({', '.join(builtin)})")
