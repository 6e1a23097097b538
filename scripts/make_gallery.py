#!/usr/bin/env python3
"""A gallery grid of photos x styles made by ONNX models, written as a compressed JPEG.

Top row: each model's painting (from its metadata, found among the built-in styles); first column:
the photos; each cell: the photo stylized by that column's model at ``--size`` (long edge), then
shrunk to the cell. ``--shipped`` takes every shipped style through the network ``fastnst infer
--model <style>`` uses for a photo (the quality tier where one ships). Used for the README gallery:

    python scripts/make_gallery.py --shipped --photos fastnst/assets/sample_photos -o checkpoints/gallery.jpg
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.eval_cli import find_photos
from fastnst.overwrite import cannot_write, refuse_overwrite
from fastnst.runtime.imageio import open_rgb
from fastnst.runtime.stylizer import Stylizer
from fastnst.styles import QUALITY_SUFFIX, StyleError, quality_model, resolve_style_image, shipped_models


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale and center-crop to exactly ``width`` x ``height``."""
    scale = max(width / image.width, height / image.height)
    resized = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def style_thumbnail(stylizer: Stylizer, width: int, height: int) -> Image.Image:
    """The model's painting if fastnst knows it, else a gray cell."""
    try:
        return fit(open_rgb(resolve_style_image(stylizer.metadata.get("fastnst.style_image", ""))), width, height)
    except StyleError:
        return Image.new("RGB", (width, height), (200, 200, 200))


def photo_networks() -> dict[str, Path]:
    """``{label: model}``: each shipped style through the network infer uses for a photo of it."""
    networks = {}
    for name, path in shipped_models().items():
        quality = quality_model(name)
        networks[f"{name}{QUALITY_SUFFIX}" if quality else name] = quality or path
    return networks


def labelled(models: list[Path]) -> dict[str, Path]:
    """``{label: model}``: each model's style name, numbered where several share one (one column each)."""
    styles = [Stylizer(m, device="cpu").style for m in models]
    labels = [s if styles.count(s) == 1 else f"{s} ({styles[:i].count(s) + 1})" for i, s in enumerate(styles)]
    return dict(zip(labels, models, strict=True))


def gallery(models: dict[str, Path], photos: list[Path], size: int, cell: int) -> Image.Image:
    """The grid: a header row of paintings (labelled with the ``models`` keys), then one row per photo."""
    stylizers = [Stylizer(m, device="cpu", max_size=size) for m in models.values()]
    label, pad = 16, 4
    w, h = cell, round(cell * 3 / 4)
    columns, rows = len(models) + 1, len(photos) + 1
    grid = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad + label) + pad), "white")
    draw = ImageDraw.Draw(grid)

    def place(image: Image.Image, row: int, col: int, text: str) -> None:
        x, y = pad + col * (w + pad), pad + row * (h + pad + label)
        draw.text((x, y + 2), text, fill="black")
        grid.paste(image, (x, y + label))

    for c, (s, name) in enumerate(zip(stylizers, models, strict=True), start=1):
        place(style_thumbnail(s, w, h), 0, c, name)
    for r, photo_path in enumerate(photos, start=1):
        photo = open_rgb(photo_path)
        place(fit(photo, w, h), r, 0, photo_path.stem)
        for c, s in enumerate(stylizers, start=1):
            place(fit(s(photo.copy()), w, h), r, c, "")
        print(f"{photo_path.name}: done", flush=True)
    return grid


def check_gallery_output(output: Path, inputs: list[Path]) -> None:
    """Refuse, before any work, an output that is not a .jpg file that can be written, or is an input."""
    if output.suffix.lower() not in (".jpg", ".jpeg"):
        raise FastNSTError(f"-o {output}: the gallery is a JPEG; give a .jpg file")
    if (why := cannot_write(output)) is not None:
        raise FastNSTError(f"-o {output}: {why}")
    refuse_overwrite(output, [("input", path) for path in inputs])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--models", nargs="+", type=Path, help="fastnst ONNX models (one column each)")
    which.add_argument("--shipped", action="store_true", help="every shipped style, as infer stylizes a photo")
    p.add_argument("--photos", nargs="+", required=True, help="photos: files or folders (one row each)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the gallery image (.jpg)")
    p.add_argument("--size", type=int, default=512, help="long edge at which photos are stylized")
    p.add_argument("--cell", type=int, default=256, help="cell width in the grid")
    p.add_argument("--quality", type=int, default=82, help="JPEG quality")
    args = p.parse_args()
    try:
        models = photo_networks() if args.shipped else labelled(args.models)
        for item in args.photos:  # find_photos names eval's flag
            if not Path(item).expanduser().exists():
                raise FastNSTError(f"--photos {item}: no such file or folder")
        photos = find_photos(args.photos)
        check_gallery_output(args.output, photos + list(models.values()))
        image = gallery(models, photos, args.size, args.cell)
    except FastNSTError as e:  # find_photos names eval's flag
        raise SystemExit(f"error: {str(e).replace('--content', '--photos')}") from None
    with atomic_write(args.output) as f:
        image.save(f, format="JPEG", quality=args.quality, optimize=True, progressive=True)
    print(f"wrote {args.output} ({image.width}x{image.height}, {args.output.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
