"""Style maps from masks: one style of a several-style model here, another there, in one pass (no torch).

A model exported with ``--style-maps`` takes its ``style_weights`` as a per-pixel map ``(1, S, h, w)``
of any size, stretched over the image. A map is built from a background style (or mixture) and masks
laid over it in order: where a mask is white its style replaces what is below, where it is grey the two
blend, so feathered mask edges give soft transitions between the styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.runtime.imageio import ImageError

MASK_SCALE = 4  # maps are made at a quarter of the image size: the network's coarsest layers' resolution


def parse_mask_spec(spec: str) -> tuple[str, str]:
    """``"sky.png:wave"`` -> ``("sky.png", "wave")`` (the style may be a mixture: ``sky.png:wave=0.5,udnie=0.5``).

    Raises:
        ValueError: no ``:STYLE`` part.
    """
    path, sep, style = spec.rpartition(":")
    if not sep or not path or not style.strip():
        raise ValueError(f"--mask {spec}: expected FILE:STYLE, e.g. sky.png:wave")
    return path, style.strip()


def load_mask(mask: str | Path | Image.Image | np.ndarray) -> np.ndarray:
    """A mask as float32 ``(H, W)`` in [0, 1], white 1: an image file, a PIL image, or an array (uint8,
    or float in [0, 1]). Colour counts by its luminance; a transparent pixel counts as black (an
    alpha channel multiplies the luminance), so a cut-out drawn as transparency works too.

    Raises:
        ImageError: an unreadable file, or an array that is not ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.
    """
    if isinstance(mask, (str, Path)):
        path = Path(mask).expanduser()
        try:
            with Image.open(path) as opened:
                mask = opened.copy()
        except (OSError, ValueError) as e:
            raise ImageError(f"mask {path}: not a readable image ({' '.join(str(e).split())})") from None
    if isinstance(mask, Image.Image):
        alpha = np.asarray(mask.getchannel("A"), np.float32) / 255.0 if "A" in mask.getbands() else 1.0
        return np.asarray(mask.convert("L"), np.float32) / 255.0 * alpha
    array = np.asarray(mask)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        alpha = array[..., 3] if array.shape[-1] == 4 else None
        scale = 255.0 if array.dtype == np.uint8 else 1.0
        luma = (array[..., :3].astype(np.float32) / scale) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(luma * (1.0 if alpha is None else alpha.astype(np.float32) / scale), 0.0, 1.0)
    if array.ndim != 2:
        raise ImageError(f"mask of shape {array.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    return np.clip(array.astype(np.float32) / scale, 0.0, 1.0)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` stretched to ``(height, width)``, bilinear (a mask's edges stay as soft as drawn)."""
    h, w = size
    image = Image.fromarray(mask.astype(np.float32), mode="F")
    return np.asarray(image.resize((w, h), Image.Resampling.BILINEAR), np.float32)


def style_map(
    background: Mapping[str, float],
    layers: Sequence[tuple[np.ndarray, Mapping[str, float]]],
    names: Sequence[str],
    size: tuple[int, int],
) -> np.ndarray:
    """The ``(1, S, height, width)`` style weights: ``background`` everywhere, then each ``(mask, style)``
    of ``layers`` laid over it in order (``weights = (1 - mask) * weights + mask * style``).

    Styles are ``{name: weight}`` mixtures over ``names`` (the model's styles, in its order), each
    summing to 1, so the map sums to 1 at every pixel.
    """

    def column(mix: Mapping[str, float]) -> np.ndarray:
        return np.array([mix.get(n, 0.0) for n in names], np.float32)[:, None, None]

    h, w = size
    weights = np.broadcast_to(column(background), (len(names), h, w)).copy()
    for mask, mix in layers:
        m = _resized(mask, size)[None]
        weights = (1.0 - m) * weights + m * column(mix)
    return weights[None]


def map_size(height: int, width: int) -> tuple[int, int]:
    """The map size for an image: a quarter of it, rounded up (at least 1 x 1)."""
    return max(1, -(-height // MASK_SCALE)), max(1, -(-width // MASK_SCALE))


def pad_map(weights: np.ndarray, image_margin: int) -> np.ndarray:
    """A map padded (edge values) as the image is padded by ``image_margin`` pixels."""
    m = -(-image_margin // MASK_SCALE)
    return np.pad(weights, ((0, 0), (0, 0), (m, m), (m, m)), mode="edge") if m else weights


def crop_map(weights: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """The part of an image's map (:func:`map_size`) under the image pixels ``[y0:y1, x0:x1]`` (a tile)."""
    k = MASK_SCALE
    return weights[..., y0 // k : -(-y1 // k), x0 // k : -(-x1 // k)]
