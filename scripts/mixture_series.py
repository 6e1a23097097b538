#!/usr/bin/env python3
"""Judge figures and pictures of a two-style mixture of a conditional model, from one style to the other.

    python scripts/mixture_series.py --model six_styles.onnx --styles wave udnie --content photos/ -o mix/

For each weight w in 0, 0.25, 0.5, 0.75, 1, every photo is stylized with ``A=1-w,B=w`` (one pass,
``style_weights`` input) and judged against both paintings. Prints the mean content figure and the
style_gram distance to each painting per weight: the distance to A should rise and the distance to B
fall as w goes from 0 to 1. Writes ``<output>/<A>+<B>.png`` (one row per photo: the photo, then the
series) and ``<output>/mixture.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from strength_series import photos_of, sheet

from fastnst.nn.evaluate import Judge
from fastnst.runtime.imageio import open_rgb, to_float
from fastnst.runtime.stylizer import Stylizer
from fastnst.styles import resolve_style_image

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a model of several styles")
    p.add_argument("--styles", nargs=2, required=True, metavar=("A", "B"), help="the two styles mixed")
    p.add_argument("--content", nargs="+", required=True, help="photos (files or folders)")
    p.add_argument("--strength", type=float, default=1.0, help="the trained-in strength, if the model has one")
    p.add_argument("-o", "--output", type=Path, default=Path("mixture"))
    return p.parse_args(argv)


def mix(a: str, b: str, w: float) -> str:
    """The ``--style`` text of ``1 - w`` of a and ``w`` of b."""
    return f"{a}={1 - w:g},{b}={w:g}"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    a, b = args.styles
    stylizer = Stylizer(args.model)
    photos = [to_float(open_rgb(p)) for p in photos_of(args.content)]
    judges = {name: Judge(resolve_style_image(name)) for name in (a, b)}
    rows = [[p] for p in photos]
    report = {}
    print(f"{a} -> {b}: weight of {b} | content | style_gram to {a} | style_gram to {b}")
    for w in WEIGHTS:
        mixed = stylizer.with_style(mix(a, b, w))
        results = [mixed(p, strength=args.strength) for p in photos]
        scores = {name: [j.score(r, p) for r, p in zip(results, photos, strict=True)] for name, j in judges.items()}
        figures = {
            "content": statistics.fmean(s.content for s in scores[a]),
            **{f"style_gram_{name}": statistics.fmean(s.style_gram for s in scores[name]) for name in (a, b)},
        }
        report[f"{w:g}"] = figures
        to_a, to_b = figures[f"style_gram_{a}"], figures[f"style_gram_{b}"]
        print(f"  {w:4g} | {figures['content']:.3f} | {to_a:.3f} | {to_b:.3f}")
        for row, r in zip(rows, results, strict=True):
            row.append(r)
    args.output.mkdir(parents=True, exist_ok=True)
    sheet(rows).save(args.output / f"{a}+{b}.png")
    (args.output / "mixture.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
