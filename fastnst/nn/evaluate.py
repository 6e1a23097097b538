"""A fixed, reproducible quality judge for stylized images (``fastnst eval``).

The judge is deliberately *not* any training objective: no fastnst setting changes it, so every
change to losses, networks or speed can be checked against it. For a result, its content photo
and the style image, all reloaded from 8-bit files and resized so the long edge is
:data:`JUDGE_SIZE` (the result to the photo's exact judged size), it computes on the Caffe VGG19
in float32 (no autocast):

* ``content``: content loss at ``relu4_2``: ``|F_result - F_photo|^2 / |F_photo|^2``.
* ``style_gram``: Gram style loss over ``relu1_1 .. relu5_1``, each Gram normalised by the number
  of positions (``F F^T / HW``, so sizes compare), relative error ``|G_r - G_s|^2 / |G_s|^2``,
  averaged over the five layers (each layer's figure is kept too: ``style_gram_layers``).
* ``style_stats``: a second style distance that is not Gram-based: the per-layer channel means and
  covariances, ``|mu_r - mu_s|^2 / |mu_s|^2 + |S_r - S_s|^2 / |S_s|^2``, averaged over the layers.

Lower is better for all three; content and style pull against each other, so read them together.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.images import to_tensor
from fastnst.nn.vgg import vgg19
from fastnst.runtime.imageio import ImageError, long_side_size, open_rgb, resize_to, thumbnail, to_8bit_image

JUDGE_SIZE = 512
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
METRICS = ("content", "style_gram", "style_stats")


def judged_size(width: int, height: int, size: int = JUDGE_SIZE) -> tuple[int, int]:
    """``(width, height)`` with the long edge ``size``, aspect ratio kept (:func:`long_side_size`)."""
    return long_side_size(width, height, size)


def to_judge_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """An 8-bit image resized to ``size`` (w, h) with the judge's Lanczos, as a ``(1, 3, H, W)`` float tensor."""
    return to_tensor(resize_to(to_8bit_image(image), size)).unsqueeze(0).contiguous()  # the layout it always had


def gram(features: torch.Tensor) -> torch.Tensor:
    """``F F^T / HW`` of one ``(1, C, H, W)`` feature map: normalised by positions, not channels."""
    f = features[0].flatten(1).double()
    return f @ f.T / f.shape[1]


def mean_cov(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Channel means and covariance of one ``(1, C, H, W)`` feature map (float64)."""
    f = features[0].flatten(1).double()
    mu = f.mean(dim=1)
    centred = f - mu[:, None]
    return mu, centred @ centred.T / f.shape[1]


def relative(x: torch.Tensor, target: torch.Tensor) -> float:
    return float((x - target).square().sum() / target.square().sum().clamp_min(1e-30))


@dataclass
class Scores:
    """The judge's figures for one result."""

    content: float
    style_gram: float
    style_stats: float
    style_gram_layers: dict[str, float] = field(default_factory=dict)  # style_gram is their mean


class Judge:
    """The fixed judge for one style image (see the module docstring).

    Args:
        style: the style image (a PIL image or a path).
        vgg_weights: the VGG19 weights (``caffe`` by default; only change it to study the judge).
        size: long edge at which every image is judged.
    """

    def __init__(self, style: Image.Image | str | Path, vgg_weights: str = "caffe", size: int = JUDGE_SIZE) -> None:
        self.size = size
        self.vgg = vgg19([CONTENT_LAYER, *STYLE_LAYERS], weights=vgg_weights).float()
        style_image = style if isinstance(style, Image.Image) else _open(style)
        self.style_image = to_8bit_image(style_image)
        features = self._features(to_judge_tensor(self.style_image, judged_size(*self.style_image.size, size)))
        self.style_grams = {k: gram(features[k]) for k in STYLE_LAYERS}
        self.style_stats = {k: mean_cov(features[k]) for k in STYLE_LAYERS}

    @torch.no_grad()
    def _features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast("cpu", enabled=False):
            return self.vgg(image)

    def score(self, result: Image.Image | np.ndarray, photo: Image.Image | np.ndarray) -> Scores:
        """Judge a stylized ``result`` of ``photo`` (8-bit images, or float arrays in [0, 1])."""
        photo = to_8bit_image(photo)
        size = judged_size(*photo.size, self.size)
        photo_features = self._features(to_judge_tensor(photo, size))
        features = self._features(to_judge_tensor(to_8bit_image(result), size))
        content = relative(features[CONTENT_LAYER].double(), photo_features[CONTENT_LAYER].double())
        gram_layers = {k: relative(gram(features[k]), self.style_grams[k]) for k in STYLE_LAYERS}
        style_stats = []
        for k in STYLE_LAYERS:
            mu, cov = mean_cov(features[k])
            mu_s, cov_s = self.style_stats[k]
            style_stats.append(relative(mu, mu_s) + relative(cov, cov_s))
        return Scores(content, statistics.fmean(gram_layers.values()), statistics.fmean(style_stats), gram_layers)


def _open(path: str | Path) -> Image.Image:
    try:
        return open_rgb(path)
    except ImageError as e:
        raise FastNSTError(str(e)) from e


# -- whole evaluations: several photos, one or more methods -------------------------------------


@dataclass
class Row:
    """One judged result."""

    method: str
    photo: str
    content: float
    style_gram: float
    style_stats: float
    style_gram_layers: dict[str, float] = field(default_factory=dict)


def summarize(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    """Per method: the mean of each metric, the number of photos and the mean Gram distance per layer."""
    summary: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method]
        summary[method] = {m: statistics.fmean(getattr(r, m) for r in mine) for m in METRICS}
        summary[method]["photos"] = len(mine)
        if all(r.style_gram_layers for r in mine):
            layers = mine[0].style_gram_layers
            summary[method]["style_gram_layers"] = {
                k: statistics.fmean(r.style_gram_layers[k] for r in mine) for k in layers
            }
    return summary


def contact_sheet(
    photos: Sequence[Image.Image], style: Image.Image, results: dict[str, Sequence[Image.Image]], height: int = 192
) -> Image.Image:
    """One row per photo: photo | style | each method's result, with a header naming the columns."""
    from PIL import ImageDraw

    header, pad = 18, 4
    columns = ["photo", "style", *results]
    rows = [
        [thumbnail(p, height), thumbnail(style, height), *(thumbnail(r[i], height) for r in results.values())]
        for i, p in enumerate(photos)
    ]
    widths = [max(row[c].width for row in rows) for c in range(len(columns))]
    sheet = Image.new(
        "RGB", (sum(widths) + pad * (len(widths) + 1), header + len(rows) * (height + pad) + pad), "white"
    )
    draw = ImageDraw.Draw(sheet)
    x = pad
    for c, name in enumerate(columns):
        draw.text((x, 3), name, fill="black")
        for r, row in enumerate(rows):
            sheet.paste(row[c], (x, header + pad + r * (height + pad)))
        x += widths[c] + pad
    return sheet


def write_outputs(out_dir: Path, rows: Sequence[Row], sheet: Image.Image | None, settings: dict) -> dict:
    """``scores.csv`` (one row per result), ``summary.json`` and ``contact_sheet.png``, each written atomically."""
    summary = summarize(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["method", "photo", *METRICS])
    for r in rows:
        writer.writerow([r.method, r.photo, *(f"{getattr(r, m):.6g}" for m in METRICS)])
    with atomic_write(out_dir / "scores.csv") as f:
        f.write(buffer.getvalue().encode())
    report = {"judge": judge_description(), "settings": settings, "summary": summary, "rows": [asdict(r) for r in rows]}
    with atomic_write(out_dir / "summary.json") as f:
        f.write((json.dumps(report, indent=2) + "\n").encode())
    if sheet is not None:
        with atomic_write(out_dir / "contact_sheet.png") as f:
            sheet.save(f, format="PNG", optimize=True)
    else:  # an earlier run's sheet beside these scores would show other results as if they were these
        (out_dir / "contact_sheet.png").unlink(missing_ok=True)
    return report


def judge_description() -> dict:
    """What the figures mean, stored with them."""
    return {
        "size": JUDGE_SIZE,
        "vgg": "VGG19, Caffe weights, float32",
        "content": f"|F-F_photo|^2/|F_photo|^2 at {CONTENT_LAYER}",
        "style_gram": f"mean over {', '.join(STYLE_LAYERS)} of |G-G_style|^2/|G_style|^2, G = F F^T / positions",
        "style_stats": "mean over the same layers of relative errors of channel means and covariances",
    }
