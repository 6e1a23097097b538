"""Images as torch tensors: loading, resizing, converting (RGB in [0, 1], ``(1, 3, H, W)``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fastnst.photos import DataError
from fastnst.runtime.imageio import ImageError, open_rgb


def resize_short_side(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is ``size`` pixels (aspect ratio kept)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float ``(3, H, W)`` tensor in [0, 1]."""
    array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


def to_pil(image: torch.Tensor) -> Image.Image:
    """Float ``(3, H, W)`` or ``(1, 3, H, W)`` tensor in [0, 1] -> PIL RGB image."""
    if image.ndim == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Load an image file as a ``(1, 3, H, W)`` RGB [0, 1] tensor, short side resized to ``size``."""
    try:
        img = open_rgb(path, min_size=size)
    except ImageError as e:
        raise DataError(str(e)) from e
    if size is not None:
        img = resize_short_side(img, size)
    return to_tensor(img).unsqueeze(0)
