"""Finding photos: a folder scanned recursively, or the files a COCO annotations JSON lists (no torch)."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.runtime.imageio import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)


class DataError(FastNSTError):
    """A dataset setting or folder that cannot be used (one-line message)."""


def sample_photos_dir() -> Path:
    """The small set of public-domain / CC0 photos embedded in the package."""
    return Path(str(resources.files("fastnst") / "assets" / "sample_photos"))


def find_images(root: str | Path, annotations: str | Path | None = None, *, key: str = "data.root") -> list[Path]:
    """List the training images: recursive scan of ``root``, or the files a COCO JSON names.

    ``key`` is the setting that ``root`` comes from, named in the error messages.

    Raises:
        DataError: when the folder or JSON is missing, malformed or lists no usable images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{key}={root}: {'not a folder' if root.exists() else 'no such folder'}")
    if annotations:
        return annotated_images(root, Path(annotations).expanduser())
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{key}={root}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _annotation_names(ann: Path) -> list[str]:
    """The ``images[].file_name`` entries of a COCO annotations JSON."""
    try:
        names = [entry["file_name"] for entry in json.loads(ann.read_text())["images"]]
    except FileNotFoundError as e:
        raise DataError(f"data.annotations={ann}: no such file") from e
    except OSError as e:
        raise DataError(f"data.annotations={ann}: cannot be read ({e})") from e
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"data.annotations={ann}: not a COCO annotations file with images[].file_name ({e})") from e
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise DataError(f"data.annotations={ann}: images[{i}].file_name is not a string ({name!r})")
    if not names:
        raise DataError(f"data.annotations={ann}: lists no images")
    return names


def annotated_images(root: Path, ann: Path) -> list[Path]:
    """The files an annotations JSON lists under ``root``, as resolved paths.

    An entry that resolves outside ``root`` (an absolute path, ``../``, a symlink whose target
    is elsewhere) is skipped and never read: an annotations file must not make training read
    files its user did not give it. Entries whose file is missing are skipped too. Both are
    reported in one warning each; an error when nothing is left.
    """
    base = root.resolve()
    files: list[Path] = []
    outside: list[str] = []
    missing: list[str] = []
    for name in _annotation_names(ann):
        path = (base / name).resolve()  # follows '..' and symlinks: where the file really is
        if not path.is_relative_to(base):
            outside.append(name)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(name)
    not_found = f"data.annotations={ann} lists {len(missing)} files not found under data.root={root}"
    if outside and (files or missing):
        log.warning(
            "data.annotations=%s: %d entries point outside data.root=%s; skipped, never read (first: %s)",
            ann,
            len(outside),
            root,
            outside[0],
        )
    if missing and files:
        log.warning("%s (first: %s); skipped", not_found, missing[0])
    if not files and missing:
        raise DataError(f"{not_found} (first: {missing[0]})")
    if not files:
        raise DataError(
            f"data.annotations={ann}: all {len(outside)} entries point outside data.root={root} "
            f"(first: {outside[0]}); nothing to train on"
        )
    return files
