#!/usr/bin/env python3
"""Judge shipped models against ``fastnst optimize`` (the quality ceiling) on the same photos.

For each ONNX model: its painting comes from the model's metadata; ``fastnst optimize`` stylizes
each photo with that painting, once per ``--steps`` value (results kept in
``OUT/<style>/optimize_<steps>/``, so a rerun reuses them and an interrupted run continues); then
``fastnst eval`` judges the model and the optimization results side by side
(``OUT/<style>/scores.csv``, ``summary.json``, ``contact_sheet.png``). A last table gives, per
style, each method's figures and their ratios to those of the longest optimization (the ceiling):

    python scripts/compare_optimize.py --models fastnst/assets/models/*.onnx \\
        --content ../shared/assets/content/{tubingen,golden_gate,chicago}.jpg --steps 20 250 -o quality/

``--extra STYLE=FOLDER`` adds a folder of other results (a peer model's) to that style's judging.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.nn.eval_cli import find_photos
from fastnst.nn.evaluate import METRICS
from fastnst.runtime.stylizer import Stylizer


def run(command: list[str]) -> None:
    """Run a ``fastnst`` command (this Python's), echoed first; stop on failure."""
    print("+ " + " ".join(command), flush=True)
    if subprocess.run([sys.executable, "-m", *command]).returncode != 0:
        raise SystemExit(f"error: `{' '.join(command[:2])}` failed (its message is above); finished results are kept")


def optimize_photos(style: str, photos: list[Path], folder: Path, steps: int, size: int) -> None:
    """``fastnst optimize`` for each photo that has no result in ``folder`` yet."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        target = folder / f"{photo.stem}.png"
        if target.exists():
            print(f"{target}: exists, reused", flush=True)
            continue
        start = time.perf_counter()
        run(["fastnst", "optimize", "--content", str(photo), "--style", style, "--steps", str(steps),
             "--size", str(size), "--quiet", "-o", str(target)])  # fmt: skip
        print(f"{target}: {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", type=Path, required=True, help="fastnst ONNX models")
    p.add_argument("--content", nargs="+", required=True, help="photos: files or folders")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder for results and scores")
    p.add_argument("--steps", type=int, nargs="+", default=[250], help="fastnst optimize iterations (one run each)")
    p.add_argument("--size", type=int, default=512, help="long edge of the optimization results (the judge's)")
    p.add_argument("--extra", action="append", default=[], help="STYLE=FOLDER: more results to judge")
    args = p.parse_args()

    extras: dict[str, list[Path]] = {}
    for item in args.extra:
        style, _, folder = item.partition("=")
        if not style or not folder or not Path(folder).is_dir():
            p.error(f"--extra {item}: expected STYLE=FOLDER with an existing folder")
        extras.setdefault(style, []).append(Path(folder))
    try:
        photos = find_photos(args.content)
        styles = [Stylizer(model, device="cpu").style for model in args.models]
    except FastNSTError as e:
        raise SystemExit(f"error: {e}") from None

    table = []
    for model, style in zip(args.models, styles, strict=True):
        out = args.output / style
        command = ["fastnst", "eval", "--style", style, "--content", *map(str, photos), "--quiet", "-o", str(out)]
        command += ["--model", str(model), "--label", "model"]
        for steps in sorted(args.steps):
            optimize_photos(style, photos, out / f"optimize_{steps}", steps, args.size)
            command += ["--images", str(out / f"optimize_{steps}"), "--label", f"optimize_{steps}"]
        for folder in extras.get(style, []):
            command += ["--images", str(folder), "--label", folder.name]
        run(command)
        summary = json.loads((out / "summary.json").read_text())["summary"]
        table.append((style, summary))

    names = ", ".join(p.stem for p in photos)
    ceiling = f"optimize_{max(args.steps)}"
    print(f"\n{len(photos)} photos ({names}), optimize at {args.size} px; ratios to {ceiling}")
    print("| style | method | " + " | ".join(METRICS) + f" | x {ceiling} |")
    print("|---|---|" + "---|" * len(METRICS) + "---|")
    for style, summary in table:
        for name, s in summary.items():
            ratios = " / ".join(f"{s[m] / summary[ceiling][m]:.2f}" for m in METRICS)
            print(f"| {style} | {name} | " + " | ".join(f"{s[m]:.3f}" for m in METRICS) + f" | {ratios} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
