"""Opening images safely, for training and inference alike (numpy and Pillow only, no torch).

* EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit images become 8-bit RGB
  (16-bit values are scaled, not clipped).
* Images with more pixels than a limit are refused before they are decoded: a small file can
  claim gigapixels (a "decompression bomb"). The limit is Pillow's own hard limit (about 179
  megapixels) unless raised with :func:`set_max_image_pixels`, ``--max-image-pixels`` or the
  environment variable ``FASTNST_MAX_IMAGE_PIXELS`` (``0``: no limit). Video frames get the same limit.
* Only regular files are opened: a FIFO or a device named ``x.jpg`` would block or never end.
* Outputs keep their input's EXIF (orientation reset to 1: it is applied to the pixels) and RGB ICC
  profile, and are marked as fastnst's in EXIF ``Software`` (``fastnst (style wave)``), so that a
  rerun on a folder knows its own outputs.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from struct import error as struct_error
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from fastnst.errors import FastNSTError

MAX_PIXELS_ENV = "FASTNST_MAX_IMAGE_PIXELS"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_ORIENTATION, _SOFTWARE = 0x0112, 0x0131  # EXIF tags
_MARK = "fastnst (style {})"
DEFAULT_MAX_PIXELS = 2 * 89_478_485  # where Pillow raises DecompressionBombError by default


class ImageError(FastNSTError):
    """An image file that cannot be used (one line naming the file)."""


def _limit_from_env() -> int | None:
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(value)
    except ValueError:
        raise FastNSTError(f"{MAX_PIXELS_ENV}={value}: expected a whole number of pixels (0: no limit)") from None
    return limit if limit > 0 else None


_max_pixels: int | None = None
_configured = False


def set_max_image_pixels(limit: int | None) -> None:
    """Refuse images with more pixels than ``limit``; ``None`` or ``0`` allows any size."""
    global _max_pixels, _configured
    if limit is not None and limit < 0:
        raise FastNSTError(f"--max-image-pixels {limit}: expected a number of pixels >= 0 (0: no limit)")
    _max_pixels = limit if limit else None
    _configured = True


def max_image_pixels() -> int | None:
    """The current limit (``None``: no limit)."""
    return _max_pixels if _configured else _limit_from_env()


def pixel_limit_message(what: str, width: int, height: int, limit: int) -> str:
    """The one-line refusal of ``width`` x ``height`` pixels over ``limit``, with the way to allow it."""
    return (
        f"{what}: {width}x{height} = {width * height:,} pixels, over the limit of {limit:,} that guards against "
        f"decompression bombs; allow it with {MAX_PIXELS_ENV}=0 (fastnst infer: --max-image-pixels 0)"
    )


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def require_regular_file(path: str | Path) -> None:
    """Raise ImageError unless ``path`` is a regular file (after symbolic links): nothing else is ever opened.

    A FIFO would block the open until a writer comes, a device could be read forever; a symbolic-link
    loop or a missing file is one line too.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as e:
        raise ImageError(f"{path}: cannot open ({e.strerror or e})") from None
    if not stat.S_ISREG(mode):
        raise ImageError(f"{path}: {_kind(mode)}, not a regular file; only regular files are read")


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading, never blocking on a FIFO swapped in after the check."""
    require_regular_file(path)
    nonblock = getattr(os, "O_NONBLOCK", 0)  # POSIX: opening a FIFO does not wait for a writer
    try:
        fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ImageError(f"{path}: cannot open ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode  # what was opened, not what the name pointed at a moment ago
        if not stat.S_ISREG(mode):
            raise ImageError(f"{path}: {_kind(mode)}, not a regular file; only regular files are read")
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_rgb(path: str | Path, min_size: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied.

    ``min_size`` lets JPEG decoding skip resolution that a later resize to that short side
    would discard.

    Raises:
        ImageError: missing, unreadable or too large, naming the file.
    """
    limit = max_image_pixels()
    with open_regular(path) as f:
        return _decode_rgb(f, path, limit, min_size)


def decode_rgb(data: bytes, name: str) -> Image.Image:
    """:func:`open_rgb` for bytes already read (standard input); ``name`` names them in errors."""
    return _decode_rgb(io.BytesIO(data), name, max_image_pixels(), None)


def _decode_rgb(f: BinaryIO, path: str | Path, limit: int | None, min_size: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # Pillow's check is replaced by the one below
            try:
                img = Image.open(f)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
        with img:
            w, h = img.size
            if limit is not None and w * h > limit:
                raise ImageError(pixel_limit_message(str(path), w, h, limit))
            if min_size is not None and img.format == "JPEG":
                scale = min(w, h) / min_size
                if scale >= 2:
                    img.draft("RGB", (max(1, int(w / scale)), max(1, int(h / scale))))
            img = ImageOps.exif_transpose(img)
            if img.mode.startswith("I;16") or (img.mode == "I" and img.getextrema()[1] > 255):
                # 16-bit grayscale: convert("RGB") would clip at 255; scale to 8 bits instead.
                array = np.asarray(img.convert("I"), dtype=np.float64) / 257.0
                img = Image.fromarray(np.clip(array, 0, 255).round().astype(np.uint8), "L")
            return img.convert("RGB")
    except ImageError:
        raise
    except FileNotFoundError as e:
        raise ImageError(f"{path}: no such file") from e
    except Image.UnidentifiedImageError as e:  # its message names the file object, not the file
        raise ImageError(f"{path}: not a readable image (cannot identify image file)") from e
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split()) or e.__class__.__name__
        raise ImageError(f"{path}: not a readable image ({reason})") from e


def _exif_of(image: Image.Image) -> Image.Exif:
    """A copy of ``image``'s EXIF (an empty one if it has none or it does not parse)."""
    exif = Image.Exif()
    raw = image.info.get("exif")
    if isinstance(raw, bytes) and raw:
        try:
            exif.load(raw)
        except (OSError, ValueError, SyntaxError, struct_error):  # damaged EXIF: the pixels still count
            return Image.Exif()
    return exif


def output_metadata(image: Image.Image, style: str) -> dict[str, bytes]:
    """Save options carrying ``image``'s EXIF and ICC profile into its stylized output, marked as fastnst's.

    ``image`` comes from :func:`open_rgb`: its orientation is already applied, so the tag is set to 1. Only
    an RGB ICC profile is kept; a CMYK or gray one does not describe the converted pixels.
    """
    exif = _exif_of(image)
    exif[_ORIENTATION] = 1
    exif[_SOFTWARE] = _MARK.format(style)
    options = {"exif": exif.tobytes()}
    icc = image.info.get("icc_profile")
    if isinstance(icc, bytes) and icc[16:20] == b"RGB ":  # the profile header's colour space
        options["icc_profile"] = icc
    return options


def made_by_fastnst(path: str | Path, style: str) -> bool:
    """Whether the image file at ``path`` is a fastnst output of ``style``, by its EXIF mark (header only).

    Any failure to read it is False: the file is then read as an input, and fails there in one line.
    """
    try:
        with open_regular(path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(f) as img:
                return _exif_of(img).get(_SOFTWARE) == _MARK.format(style)
    except Exception:  # Pillow raises many types on damaged headers; none of them matters here
        return False
