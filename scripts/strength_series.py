#!/usr/bin/env python3
"""Judge figures of a model's trained-in strength against the pixel blend, style by style.

    python scripts/strength_series.py --model wave+udnie.onnx --content ../shared/assets/content -o strength/

For each style of the model (or ``--style``) and each strength (0, 0.25, 0.5, 0.75, 1), every photo
is stylized through :class:`fastnst.Stylizer` at that trained-in strength, and, for comparison, the
strength-1 result is blended with the photo by the same factor (today's ``--strength`` of a model
without the input). Prints one table per style (mean judge figures over the photos: content,
style_gram, style_stats), writes ``<output>/<style>.png`` (one row per photo: the trained series,
then the blend series) and ``<output>/series.json``. Read the two series at equal style distance:
the trained strength should keep more of the photo (lower content) for the same style_gram.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.nn.evaluate import Judge
from fastnst.photos import find_images
from fastnst.runtime.imageio import fit_long_side, open_rgb, to_float, to_uint8
from fastnst.runtime.stylizer import Stylizer, blend
from fastnst.styles import resolve_style_image

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
CELL = 160  # px, long side of each picture in the sheets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a model with a trained strength (model.strength=true)")
    p.add_argument("--content", nargs="+", required=True, help="photos (files or folders)")
    p.add_argument("--style", action="append", help="styles to judge (default: all of the model's)")
    p.add_argument(
        "--style-image", action="append", help="the painting per --style (default: the built-in of that name)"
    )
    p.add_argument("-o", "--output", type=Path, default=Path("strength"))
    return p.parse_args(argv)


def photos_of(content: list[str]) -> list[Path]:
    files: list[Path] = []
    for item in content:
        path = Path(item)
        files += find_images(path) if path.is_dir() else [path]
    return files


def series(model: str, style: str, photos: list[np.ndarray], judge: Judge) -> tuple[dict, list[list[np.ndarray]]]:
    """Mean figures per strength for the trained strength and the pixel blend; the pictures, per photo."""
    stylizer = Stylizer(model, style=style)
    figures: dict[str, dict[str, dict[str, float]]] = {"trained": {}, "blend": {}}
    pictures = [[] for _ in photos]
    full = [stylizer(p, strength=1.0) for p in photos]
    for kind in ("trained", "blend"):
        for s in STRENGTHS:
            results = [
                stylizer(p, strength=s) if kind == "trained" else blend(f, p, s)
                for p, f in zip(photos, full, strict=True)
            ]
            scores = [judge.score(r, p) for r, p in zip(results, photos, strict=True)]
            figures[kind][f"{s:g}"] = {
                m: statistics.fmean(getattr(x, m) for x in scores) for m in ("content", "style_gram", "style_stats")
            }
            for row, r in zip(pictures, results, strict=True):
                row.append(r)
    return figures, pictures


def sheet(pictures: list[list[np.ndarray]]) -> Image.Image:
    """One row per photo: the trained series, then the blend series (strengths left to right)."""
    rows = [np.concatenate([fit_long_side(p, CELL) for p in row], axis=1) for row in pictures]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 2), (0, width - r.shape[1]), (0, 0)), constant_values=1.0) for r in rows]
    return Image.fromarray(to_uint8(np.concatenate(rows, axis=0)), "RGB")


def print_table(style: str, figures: dict) -> None:
    print(
        f"\n{style}: strength | trained content / style_gram / style_stats | blend content / style_gram / style_stats"
    )
    for s in STRENGTHS:
        t, b = figures["trained"][f"{s:g}"], figures["blend"][f"{s:g}"]
        print(
            f"  {s:4g} | {t['content']:.3f} / {t['style_gram']:.3f} / {t['style_stats']:.3f}"
            f" | {b['content']:.3f} / {b['style_gram']:.3f} / {b['style_stats']:.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    names = args.style or Stylizer(args.model).style_names
    images = args.style_image or names
    photos = [to_float(open_rgb(p)) for p in photos_of(args.content)]
    args.output.mkdir(parents=True, exist_ok=True)
    report = {}
    for name, image in zip(names, images, strict=True):
        judge = Judge(resolve_style_image(image))
        figures, pictures = series(args.model, name, photos, judge)
        report[name] = figures
        print_table(name, figures)
        sheet(pictures).save(args.output / f"{name}.png")
    (args.output / "series.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
