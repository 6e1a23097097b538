"""``fastnst infer --sheet``: one picture of every style of a model on a photo (torch-free).

A several-style model gives the photo and each of its styles side by side; a one-style model
gives the photo and the style at strengths 0.25, 0.5, 0.75 and 1 (trained-in where the model has a
strength input, else pixel blends). Each cell is labelled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.runtime.imageio import fit_long_side, open_rgb, to_float, to_uint8
from fastnst.runtime.stylizer import Stylizer

SHEET_SIZE = 512  # long side of each cell unless --max-size says otherwise
STRENGTHS = (0.25, 0.5, 0.75, 1.0)  # the columns of a one-style model's sheet
_LABEL = 22  # pixels of label strip under each cell


def sheet_stylizers(stylizer: Stylizer) -> list[tuple[str, Stylizer, float | None]]:
    """``(label, stylizer, strength)`` per cell after the photo: every style of a several-style model
    (at the sheet's strength: None), else the one style at each of :data:`STRENGTHS`."""
    if len(stylizer.style_names) > 1:
        return [(name, stylizer.with_style(name), None) for name in stylizer.style_names]
    return [(f"{stylizer.style} {s:g}", stylizer, s) for s in STRENGTHS]


def sheet_cells(
    cells: list[tuple[str, Stylizer, float | None]], photo: Image.Image, strength: float = 1.0
) -> list[tuple[str, Image.Image]]:
    """``(label, image)`` cells: the photo, then each of ``cells`` (from :func:`sheet_stylizers`)."""
    photo = photo.convert("RGB")
    out = [("photo", photo)]
    for label, stylizer, fixed in cells:
        s = strength if fixed is None else fixed
        out.append((label if fixed is not None or s == 1 else f"{label} {s:g}", stylizer(photo, strength=s)))
    return out


def compose_sheet(cells: list[tuple[str, Image.Image]]) -> Image.Image:
    """The cells in one row, each resized to the photo's size, with its label below."""
    width, height = cells[0][1].size
    sheet = Image.new("RGB", (len(cells) * width, height + _LABEL), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(cells):
        sheet.paste(image.resize((width, height)), (i * width, 0))
        draw.text((i * width + 6, height + 4), label, fill="black")
    return sheet


SHEET_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}


def names_a_file(output: Path | None) -> bool:
    """Whether ``-o`` names the sheet file itself: it has a suffix and is not an existing folder."""
    return output is not None and bool(output.suffix) and not output.is_dir()


def sheet_path(src: Path, output: Path | None, model: Path) -> Path:
    """``<photo>_<model>_sheet.jpg`` next to the photo or in the ``-o`` folder, or ``-o`` itself when it
    names an image file (one photo)."""
    if names_a_file(output):
        return output
    folder = output if output is not None else src.parent
    return folder / f"{src.stem}_{Path(model).stem}_sheet.jpg"


def run_sheet(args: argparse.Namespace) -> int:
    """Write one sheet per input photo; 0 when all were written."""
    if names_a_file(args.output):
        if args.output.suffix.lower() not in SHEET_FORMATS:
            raise FastNSTError(f"-o {args.output}: a sheet is written as .jpg or .png (or give a folder)")
        if len(args.inputs) > 1:
            raise FastNSTError(f"-o {args.output}: --sheet writes one sheet per photo; give a folder for several")
    cells = sheet_stylizers(Stylizer(args.model, device=args.device, tile_size=args.tile_size))  # one session
    size = args.max_size or SHEET_SIZE
    for name in args.inputs:
        src = Path(name)
        dst = sheet_path(src, args.output, args.model)
        if dst.exists() and not args.overwrite:
            print(f"{dst}: exists, skipped (--overwrite replaces it)")
            continue
        photo = Image.fromarray(to_uint8(fit_long_side(to_float(open_rgb(src)), size)), "RGB")
        sheet = compose_sheet(sheet_cells(cells, photo, args.strength))
        with atomic_write(dst) as f:
            sheet.save(f, format=SHEET_FORMATS.get(dst.suffix.lower(), "JPEG"), quality=92)
        if not args.quiet:
            print(dst)
    return 0
