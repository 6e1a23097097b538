#!/usr/bin/env python3
"""How well each model follows a slow pan, without a video: the shift error (fastnst.runtime.flicker.shift_errors)
of stylizing a photo moved right by 1, 2 and 4 pixels against moving its stylized image, averaged over photos.

    python scripts/shift_error.py --model wave --model wave_stable --photo ../shared/assets/content/chicago.jpg

A network that subsamples by 4 (all of fastnst's) is equivariant to shifts of 4 only; what it does at 1
and 2 pixels is the texture swimming that the warping error of `fastnst eval --video` sees on camera
footage. Prints one row per model: its error at each shift, in the warping error's units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.nn.eval_cli import find_photos
from fastnst.runtime.flicker import shift_errors
from fastnst.runtime.imageio import fit_size, open_rgb, to_uint8
from fastnst.runtime.stylizer import Stylizer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True, help="an ONNX file or a shipped name (repeatable)")
    p.add_argument("--photo", nargs="+", required=True, help="photos or folders of photos")
    p.add_argument("--shifts", type=int, nargs="+", default=[1, 2, 4], help="pixels to move the photo by")
    p.add_argument("--size", type=int, default=512, help="long edge the photos are scaled to (default 512)")
    args = p.parse_args(argv)
    if any(not 0 < s <= 16 for s in args.shifts):
        p.error(f"--shifts {' '.join(map(str, args.shifts))}: each from 1 to 16 pixels")
    if args.size < 96:
        p.error(f"--size {args.size}: expected at least 96 pixels")
    return args


def photo_array(path: Path, size: int) -> np.ndarray:
    image = open_rgb(path)
    return np.asarray(image.resize(fit_size(*image.size, size)))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        photos = [photo_array(p, args.size) for p in find_photos(args.photo)]
        models = {name: Stylizer(name, device="cpu") for name in args.model}
    except FastNSTError as e:
        raise SystemExit(f"error: {e}") from None
    print(f"shift error over {len(photos)} photo(s) at {args.size} px (mean squared RGB difference in [0, 1])")
    print(f"{'model':28s}" + "".join(f"{f'{s} px':>12s}" for s in args.shifts))
    for name, stylizer in models.items():

        def stylize(frame: np.ndarray, stylizer: Stylizer = stylizer) -> np.ndarray:
            return to_uint8(stylizer.stylize_arrays([frame])[0].image)

        errors = np.mean([shift_errors(stylize, photo, args.shifts) for photo in photos], axis=0)
        print(f"{name:28s}" + "".join(f"{e:12.5f}" for e in errors))


if __name__ == "__main__":
    main()
