#!/usr/bin/env python3
"""A picture of flicker: consecutive frames of a clip, stylized by each model, above their
frame-difference images (the stylized frame t minus the stylized frame t-1 warped onto it with the
input's optical flow, amplified, occlusions black), the very differences the warping error averages.

    python scripts/flicker_strip.py --video ../shared/assets/videos/bikes.mp4 --start 60 --count 4 --max-size 320 \\
        --model wave --model wave_stable -o docs/flicker_bikes_wave.jpg

Rows: the input frames, then per model its frames and, under them, their differences (the first
column's difference is left blank: it has no frame before it in the strip).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fastnst.errors import FastNSTError
from fastnst.overwrite import cannot_write
from fastnst.runtime.flicker import pair_flows, read_frames, warp
from fastnst.runtime.imageio import save_image, to_uint8
from fastnst.runtime.stylizer import Stylizer
from fastnst.runtime.temporal import SmoothedStats

GAIN = 4.0  # differences are small: |difference| x GAIN, so 0.25 (64 of 255) already shows white
LABEL_WIDTH = 200


def differences(frames_in: list[np.ndarray], frames_out: list[np.ndarray]) -> list[np.ndarray]:
    """``|out[t] - warp(out[t-1])|`` x GAIN per pair, masked where the flow is not trusted; uint8 RGB."""
    images = [np.zeros_like(frames_out[0])]
    for t, (flow, mask) in enumerate(pair_flows(frames_in), start=1):
        cur, prev = frames_out[t] / 255.0, frames_out[t - 1] / 255.0
        diff = np.abs(cur - warp(prev, flow)) * mask[..., None] * GAIN
        images.append(to_uint8(np.clip(diff, 0.0, 1.0)))
    return images


def stylized(model: str, frames: list[np.ndarray], start: int, momentum: float | None) -> list[np.ndarray]:
    """The model's frames from ``start`` on: per frame, or with smoothed statistics (these run over the
    frames before the strip too, as they would in the video)."""
    stylizer = Stylizer(model)
    if momentum is None:
        return [stylizer(f) for f in frames[start:]]
    smoothed = SmoothedStats(stylizer, momentum)
    return [smoothed(f) for f in frames][start:]


def strip(rows: list[tuple[str, list[np.ndarray]]]) -> Image.Image:
    """A grid: one labelled row per entry, its frames side by side."""
    h, w = rows[0][1][0].shape[:2]
    count = len(rows[0][1])
    sheet = Image.new("RGB", (LABEL_WIDTH + count * (w + 4), len(rows) * (h + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, images) in enumerate(rows):
        y = r * (h + 4)
        draw.text((6, y + h // 2 - 6), label, fill="black")
        for c, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (LABEL_WIDTH + c * (w + 4), y))
    return sheet


def checked_inputs(args: argparse.Namespace) -> tuple[list[np.ndarray], list[str]]:
    """The frames (up to the strip's last) and a label per model, after checking the settings."""
    if args.start < 0 or args.count < 2:
        raise FastNSTError(f"--start {args.start} --count {args.count}: expected a start >= 0 and at least 2 frames")
    if args.output.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        raise FastNSTError(f"-o {args.output}: give a .jpg or .png file")
    if (why := cannot_write(args.output)) is not None:
        raise FastNSTError(f"-o {args.output}: {why}")
    if len(args.label or []) > len(args.model):
        raise FastNSTError(f"--label given {len(args.label)} times for {len(args.model)} --model")
    frames = read_frames(args.video, args.start + args.count, args.max_size)
    if len(frames) < args.start + 2:
        raise FastNSTError(f"--start {args.start}: {args.video} has {len(frames)} frames")
    return frames, (args.label or []) + args.model[len(args.label or []) :]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--model", action="append", required=True, help="a model per pair of rows (repeatable)")
    p.add_argument("--label", action="append", help="a name per --model (default: the model)")
    p.add_argument("--smooth-stats", type=float, help="also the first model with statistics smoothed at this momentum")
    p.add_argument("--start", type=int, default=0, help="first frame of the strip")
    p.add_argument("--count", type=int, default=5, help="consecutive frames in the strip")
    p.add_argument("--max-size", type=int, default=320, help="long side of the frames")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        write_strip(args)
    except FastNSTError as e:
        raise SystemExit(f"error: {e}") from None


def write_strip(args: argparse.Namespace) -> None:
    """The strip of ``args`` (main's flags), written to ``args.output``."""
    frames, labels = checked_inputs(args)
    shown = frames[args.start :]
    runs = [(label, model, None) for label, model in zip(labels, args.model, strict=True)]
    if args.smooth_stats is not None:
        runs.append((f"{labels[0]} smoothed {args.smooth_stats:g}", args.model[0], args.smooth_stats))
    rows: list[tuple[str, list[np.ndarray]]] = [("input", shown)]
    for label, model, momentum in runs:
        out = stylized(model, frames, args.start, momentum)
        rows += [(label, out), (f"{label}: difference x{GAIN:g}", differences(shown, out))]
    save_image(np.asarray(strip(rows)), args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
