"""``fastnst infer --sheet``: one picture of every style of a model on a photo (torch-free).

A several-style model gives the photo and each of its styles side by side; a one-style model
gives the photo and the style at strengths 0.25, 0.5, 0.75 and 1 (trained-in where the model has a
strength input, else pixel blends). Each cell is labelled.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image, ImageDraw

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.runtime.imageio import fit_long_side, open_rgb, to_float, to_uint8
from fastnst.runtime.infer_cli import STREAM, check_outputs, check_settings, expand_inputs
from fastnst.runtime.stylizer import Stylizer
from fastnst.runtime.video import is_video
from fastnst.styles import QUALITY_SUFFIX, quality_model

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
_NOT_FOR_SHEETS = {"style": "--style", "preserve_color": "--preserve-color", "json": "--json"}


def names_a_file(output: Path | None) -> bool:
    """Whether ``-o`` names the sheet file itself: it has a suffix and is not an existing folder."""
    return output is not None and bool(output.suffix) and not output.is_dir()


def sheet_path(src: Path, base: Path, output: Path | None, model: Path) -> Path:
    """``<photo>_<model>_sheet.jpg`` next to the photo or at its place under the ``-o`` folder (``base``:
    the folder input it came from), or ``-o`` itself when it names an image file (one photo)."""
    if names_a_file(output):
        return output
    folder = output / src.parent.relative_to(base) if output is not None else src.parent
    return folder / f"{src.stem}_{Path(model).stem}_sheet.jpg"


def _check_sheet_settings(args: argparse.Namespace) -> None:
    """infer's settings checks, and the options a sheet cannot honour: one line each, before any work."""
    check_settings(args)
    for key, flag in _NOT_FOR_SHEETS.items():
        if getattr(args, key, None):
            raise FastNSTError(f"{flag} and --sheet: a sheet shows every style of the model as it is; leave one out")
    if STREAM in args.inputs or str(args.output) == STREAM:
        raise FastNSTError("--sheet writes sheet files: not - (standard input or output)")


def plan_sheets(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """``(photo, sheet)`` for every photo among the inputs (folders and globs as infer takes them; videos
    left out), distinct, none of them an input or anything but a file."""
    mark = f"_{Path(args.model).stem}_sheet"  # a rerun on a folder makes no sheets of its sheets
    found = expand_inputs(args.inputs)
    for src, _ in found:
        if is_video(src) and not args.quiet:
            print(f"{src}: a video, skipped (--sheet makes sheets of photos)", file=sys.stderr)
    jobs = [(src, base) for src, base in found if not (is_video(src) or src.stem.endswith(mark))]
    if not jobs:
        raise FastNSTError(f"--sheet: no photo among {' '.join(args.inputs)} (a sheet is made of a photo)")
    if names_a_file(args.output):
        if args.output.suffix.lower() not in SHEET_FORMATS:
            raise FastNSTError(f"-o {args.output}: a sheet is written as .jpg or .png (or give a folder)")
        if len(jobs) > 1:
            raise FastNSTError(f"-o {args.output}: --sheet writes one sheet per photo; give a folder for several")
    sheets: list[Path] = []
    taken: set[str] = set()
    for src, base in jobs:
        dst = sheet_path(src, base, args.output, args.model)
        if str(dst).casefold() in taken:  # photo.jpg and photo.png in one folder
            dst = dst.with_name(f"{src.stem}_{src.suffix.lstrip('.')}_{Path(args.model).stem}_sheet.jpg")
        taken.add(str(dst).casefold())
        sheets.append(dst)
    check_outputs(jobs, sheets, args.output, "sheet")  # infer's: inside -o, not under a file, not an input
    return [(src, dst) for (src, _), dst in zip(jobs, sheets, strict=True)]


def _sheet_model(args: argparse.Namespace) -> Path:
    """``--model``, or for a shipped style its quality-tier network (as infer uses for photos) unless --fast."""
    quality = None if args.fast else quality_model(args.model)
    if quality is None:
        return args.model
    if not args.quiet:
        note = "the quality-tier network (--fast: the real-time one)"
        print(f"photos: {args.model}{QUALITY_SUFFIX}, {note}", file=sys.stderr)
    return quality


def write_sheet(
    cells: list[tuple[str, Stylizer, float | None]], src: Path, dst: Path, args: argparse.Namespace
) -> None:
    """One photo's sheet, written atomically (an existing file is replaced only with ``--overwrite``)."""
    photo = Image.fromarray(to_uint8(fit_long_side(to_float(open_rgb(src)), args.max_size or SHEET_SIZE)), "RGB")
    sheet = compose_sheet(sheet_cells(cells, photo, args.strength))
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dst) as f:
        sheet.save(f, format=SHEET_FORMATS[dst.suffix.lower()], quality=92)


def run_sheet(args: argparse.Namespace) -> int:
    """Write one sheet per input photo; 0 when all were written (or kept), 1 when any photo failed."""
    _check_sheet_settings(args)
    planned = plan_sheets(args)
    model = _sheet_model(args)
    cells = sheet_stylizers(Stylizer(model, device=args.device, tile_size=args.tile_size))  # one session
    failed = 0
    for src, dst in planned:
        if dst.exists() and not args.overwrite:
            print(f"{dst}: exists, skipped (--overwrite replaces it)", file=sys.stderr)
            continue
        try:
            write_sheet(cells, src, dst, args)
        except (FastNSTError, OSError) as e:  # a bad photo fails alone
            text = str(e)
            print(f"error: {text if str(src) in text else f'{src}: {text}'}", file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            print(dst)
    return 1 if failed else 0
