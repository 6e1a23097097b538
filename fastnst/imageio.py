"""Opening images safely, for training and inference alike (numpy and Pillow only, no torch).

* EXIF orientation is applied; grayscale, palette, RGBA, CMYK and 16-bit images become 8-bit RGB
  (16-bit values are scaled, not clipped).
* Images with more pixels than a limit are refused before they are decoded: a small file can
  claim gigapixels (a "decompression bomb"). The limit is Pillow's own hard limit (about 179
  megapixels) unless raised with :func:`set_max_image_pixels`, ``--max-image-pixels`` or the
  environment variable ``FASTNST_MAX_IMAGE_PIXELS`` (``0``: no limit).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fastnst.errors import FastNSTError

MAX_PIXELS_ENV = "FASTNST_MAX_IMAGE_PIXELS"
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


def open_rgb(path: str | Path, min_size: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB with its EXIF orientation applied.

    ``min_size`` lets JPEG decoding skip resolution that a later resize to that short side
    would discard.

    Raises:
        ImageError: missing, unreadable or too large, naming the file.
    """
    limit = max_image_pixels()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # Pillow's check is replaced by the one below
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
        with img:
            w, h = img.size
            if limit is not None and w * h > limit:
                raise ImageError(
                    f"{path}: {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} that guards against "
                    f"decompression bombs; allow it with {MAX_PIXELS_ENV}=0 (fastnst infer: --max-image-pixels 0)"
                )
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
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split()) or e.__class__.__name__
        raise ImageError(f"{path}: not a readable image ({reason})") from e
