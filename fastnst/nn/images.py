"""Images as torch tensors: loading and converting (RGB in [0, 1], ``(1, 3, H, W)``).

Opening, resizing and the 8-bit rounding are :mod:`fastnst.runtime.imageio`'s, the one image module.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from fastnst.photos import DataError
from fastnst.runtime.imageio import ImageError, open_rgb, resize_short_side, to_float, to_uint8


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float ``(3, H, W)`` tensor in [0, 1]."""
    return torch.from_numpy(to_float(img)).permute(2, 0, 1)


def to_pil(image: torch.Tensor) -> Image.Image:
    """Float ``(3, H, W)`` or ``(1, 3, H, W)`` tensor in [0, 1] -> PIL RGB image."""
    if image.ndim == 4:
        image = image[0]
    return Image.fromarray(to_uint8(image.detach().float().permute(1, 2, 0).cpu().numpy()), "RGB")


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Load an image file as a ``(1, 3, H, W)`` RGB [0, 1] tensor, short side resized to ``size``."""
    try:
        img = open_rgb(path, min_size=size)
    except ImageError as e:
        raise DataError(str(e)) from e
    if size is not None:
        img = resize_short_side(img, size)
    return to_tensor(img).unsqueeze(0)
