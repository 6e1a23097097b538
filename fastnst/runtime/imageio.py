"""The one image module (numpy and Pillow only, no torch): opening, converting, resizing and saving.

* Opening safely, for training and inference alike (:func:`open_rgb`); conversions between PIL images,
  uint8 and float32 [0, 1] arrays (:func:`to_float`, :func:`to_uint8`, :func:`to_8bit_image`); one resize
  rule and one resampler per purpose (see "resizing" below); saving 8- and 16-bit files with their
  metadata (:func:`save_image`).
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

from fastnst.atomic import atomic_write
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
    except BaseException:
        os.close(fd)
        raise
    # The builtin open is C code, so no signal handler runs between the file taking ``fd`` and its
    # return. os.fdopen is Python: a Ctrl-C inside it, after the file object took ``fd``, closed the
    # descriptor twice, and the second close's EBADF replaced the KeyboardInterrupt.
    return open(fd, "rb")


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


def fastnst_mark(style: str) -> str:
    """What marks a file as a fastnst output of ``style``: images in their EXIF ``Software`` tag, videos in
    their container's comment tag; a rerun on a folder skips them instead of stylizing them again."""
    return _MARK.format(style)


def output_metadata(image: Image.Image, style: str) -> dict[str, bytes]:
    """Save options carrying ``image``'s EXIF and ICC profile into its stylized output, marked as fastnst's.

    ``image`` comes from :func:`open_rgb`: its orientation is already applied, so the tag is set to 1. Only
    an RGB ICC profile is kept; a CMYK or gray one does not describe the converted pixels.
    """
    exif = _exif_of(image)
    exif[_ORIENTATION] = 1
    exif[_SOFTWARE] = fastnst_mark(style)
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
                return _exif_of(img).get(_SOFTWARE) == fastnst_mark(style)
    except Exception:  # Pillow raises many types on damaged headers; none of them matters here
        return False


# -- conversions: PIL <-> uint8 <-> float32 [0, 1] --------------------------------


def to_float(image: Image.Image | np.ndarray) -> np.ndarray:
    """PIL image or ``(H, W, 3)`` array (uint8 or float in [0, 1]) -> float32 ``(H, W, 3)`` in [0, 1]."""
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    if not np.isfinite(array).all():  # else a NaN pixel would pass as the model's fault
        raise ValueError("the image holds NaN or infinite values")
    return np.clip(array, 0.0, 1.0)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float ``(H, W, 3)`` in [0, 1] -> uint8, clipped, rounded half up."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(array: np.ndarray) -> np.ndarray:
    """Float ``(H, W, 3)`` in [0, 1] -> uint16 (for 16-bit PNG), clipped, rounded half up."""
    return (np.clip(array, 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)


def to_8bit_image(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL RGB image, round-tripped through 8 bits as a saved PNG or JPEG would be (float arrays in [0, 1])."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    return Image.fromarray(array if array.dtype == np.uint8 else to_uint8(array), "RGB")


# -- resizing: one size rule and one resampler per purpose -------------------------
# Training photos and style images: bicubic with reducing_gap, because thousands of large photos are shrunk
# per epoch in data workers and reducing_gap makes that several times faster; a random crop hides the rest.
TRAIN_RESAMPLE = Image.Resampling.BICUBIC
# The judge's size and contact-sheet thumbnails (8-bit): Lanczos, the sharpest of Pillow's filters when
# shrinking; fixed once, because the judge's figures are only comparable if its resize never changes.
JUDGE_RESAMPLE = Image.Resampling.LANCZOS
# --max-size and the Stylizer's statistics copy: Lanczos too (what a person sees), on float32 channels so a
# float input keeps its precision; video frames get FFmpeg's Lanczos in the decoder (fastnst.runtime.video).
FIT_RESAMPLE = Image.Resampling.LANCZOS


def short_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(width, height)`` with the short side ``size``, up or down, aspect kept; both sides at least ``size``."""
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def long_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """``(width, height)`` with the long side ``size``, up or down, aspect kept (the judge's size)."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_size(width: int, height: int, max_size: int | None, multiple: int = 1) -> tuple[int, int]:
    """``(width, height)`` shrunk so the long side is at most ``max_size``, never enlarged (``--max-size``).

    ``multiple``: each side a multiple of it (video: 2, as yuv420p needs), never over ``max_size``.
    """
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)

    def side(length: int) -> int:
        new = max(multiple, multiple * round(length * scale / multiple))
        return new - multiple if new > max(max_size, multiple) else new

    return side(width), side(height)


def resize_short_side(image: Image.Image, size: int) -> Image.Image:
    """Training photos and style images: the short side becomes ``size`` (up or down), aspect kept."""
    new = short_side_size(*image.size, size)
    return image if new == image.size else image.resize(new, TRAIN_RESAMPLE, reducing_gap=3.0)


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An 8-bit image resized to exactly ``size`` (w, h) with the judge's Lanczos; unchanged if already that size."""
    return image if image.size == size else image.resize(size, JUDGE_RESAMPLE)


def thumbnail(image: Image.Image, height: int) -> Image.Image:
    """A contact-sheet thumbnail ``height`` pixels high, aspect kept, with the judge's Lanczos."""
    w, h = image.size
    return resize_to(image, (max(1, round(w * height / h)), height))


def fit_long_side(image: np.ndarray, max_size: int | None) -> np.ndarray:
    """Float ``(H, W, 3)`` in [0, 1] shrunk so its long side is at most ``max_size`` (never enlarged)."""
    h, w = image.shape[:2]
    size = fit_size(w, h, max_size)
    if size == (w, h):
        return image
    channels = [Image.fromarray(image[..., c], mode="F").resize(size, FIT_RESAMPLE) for c in range(3)]
    return np.clip(np.stack([np.asarray(c) for c in channels], axis=-1), 0.0, 1.0)


# -- saving --------------------------------------------------------------------------


def save_image(image: np.ndarray, path: str | Path, metadata: dict[str, bytes] | None = None) -> None:
    """Write an RGB ``(H, W, 3)`` array atomically in the format of the extension (PNG if unknown).

    uint8: PNG, JPEG or WebP (quality 95) and the rest of Pillow's formats; ``metadata`` (``exif``,
    ``icc_profile`` bytes) goes into PNG, JPEG and WebP. uint16: 16-bit PNG only.

    A temporary file in the same folder is renamed onto ``path`` only once complete, so a crash or a
    full disk never leaves a truncated file where a good one was.

    Raises:
        ImageError: the array or extension does not fit, pypng is missing, or the write failed, naming the file.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    if image.dtype == np.uint16 and fmt != "PNG":
        raise ImageError(f"{path}: 16-bit output needs a .png file")
    try:
        with atomic_write(path) as f:
            encode_image(image, f, fmt, metadata)
    except (OSError, ValueError) as e:
        raise ImageError(f"{path}: cannot write ({' '.join(str(e).split())})") from e


def encode_image(image: np.ndarray, f: BinaryIO, fmt: str, metadata: dict[str, bytes] | None = None) -> None:
    """Write a uint8 (or, as PNG, uint16) RGB array to the binary file ``f`` as ``fmt`` (a Pillow format name)."""
    if image.dtype == np.uint16:
        if fmt != "PNG":
            raise ValueError(f"16-bit output is PNG only, not {fmt}")
        _write_png16(image, f)
        return
    options: dict[str, object] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if fmt in ("JPEG", "PNG", "WEBP"):
        options.update(metadata or {})
    Image.fromarray(image, "RGB").save(f, format=fmt, **options)


def _write_png16(image: np.ndarray, f: BinaryIO) -> None:
    """16-bit RGB PNG through pypng (Pillow writes 8-bit RGB only).

    pypng is imported here, not at the top: it comes with ``fastnst[train]`` (``fastnst optimize``
    writes 16 bits), and the base install, which only writes 8 bits, does not have it.
    """
    try:
        import png
    except ImportError as e:
        raise ImageError("16-bit PNG output needs pypng: pip install pypng (or fastnst[train])") from e
    h, w, _ = image.shape
    png.Writer(w, h, greyscale=False, bitdepth=16).write(f, image.reshape(h, w * 3))
