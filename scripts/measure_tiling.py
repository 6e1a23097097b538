#!/usr/bin/env python3
"""Stylize a large photo in tiles and measure seams: ``python scripts/measure_tiling.py --model x.onnx``.

Prints the time, the peak memory and a seam score for fastnst's tiling (whole-image
instance-norm statistics + feathered overlaps) and for naive tiling (each tile
normalised on its own, hard borders). The seam score is the mean absolute jump between
neighbouring pixels across the tile borders, divided by the same jump averaged over
every pixel pair of the image: about 1 means the borders are invisible among the
image's own edges. Writes side-by-side crops around a border junction to ``--crops``.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.runtime.stylizer import Stylizer, tile_spans, to_float, to_uint8


def seam_score(image: np.ndarray, rows: list[int], cols: list[int]) -> float:
    """Mean jump across the given borders / mean jump between all neighbouring pixels.

    A border at ``c`` lies between columns ``c - 1`` and ``c`` (rows likewise).
    """
    img = image.astype(np.float32)
    dx = np.abs(np.diff(img, axis=1)).mean(axis=(0, 2))  # dx[c - 1]: between columns c - 1 and c
    dy = np.abs(np.diff(img, axis=0)).mean(axis=(1, 2))
    border = np.concatenate([dx[[c - 1 for c in cols]], dy[[r - 1 for r in rows]]])
    return float(border.mean() / np.concatenate([dx, dy]).mean())


def tile_borders(spans: list[tuple[int, int]]) -> list[int]:
    """Where blended tiles begin and end (their weights have kinks there)."""
    size = spans[-1][1]
    return sorted({start for start, _ in spans[1:]} | {end for _, end in spans[:-1] if end < size})


def naive_tiles(stylizer: Stylizer, image: np.ndarray) -> np.ndarray:
    """Tiles side by side, no overlap, each normalised with its own statistics."""
    tile = stylizer.tile_size
    out = np.zeros_like(image)
    for y in range(0, image.shape[0], tile):
        for x in range(0, image.shape[1], tile):
            out[y : y + tile, x : x + tile] = stylizer._run(image[None, y : y + tile, x : x + tile])[0][0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--image", type=Path, help="a photo (default: fastnst's coffee.jpg), resized to --size")
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT of the test image")
    parser.add_argument("--tile-size", type=int, default=1024)
    parser.add_argument("--crops", type=Path, default=Path("tiling_crops.png"))
    args = parser.parse_args()

    w, h = (int(v) for v in args.size.split("x"))
    src = args.image or Path(__file__).resolve().parents[1] / "fastnst" / "assets" / "sample_photos" / "coffee.jpg"
    photo = to_float(Image.open(src).convert("RGB").resize((w, h), Image.Resampling.BICUBIC))
    stylizer = Stylizer(args.model, device="cpu", tile_size=args.tile_size)

    t0 = time.perf_counter()
    ours = stylizer.stylize_arrays([photo])[0]
    seconds = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t = stylizer.tile_size
    rows = tile_borders(tile_spans(h, t, stylizer.overlap))
    cols = tile_borders(tile_spans(w, t, stylizer.overlap))
    print(f"{w}x{h}: {ours.tiles} tiles of {t}px in {seconds:.1f} s, peak memory {peak_gb:.2f} GB")
    print(f"seam score, fastnst tiling (global stats + feathering): {seam_score(ours.image, rows, cols):.3f}")

    naive = naive_tiles(stylizer, photo)
    naive_score = seam_score(naive, list(range(t, h, t)), list(range(t, w, t)))
    print(f"seam score, naive tiling (per-tile stats, hard borders):    {naive_score:.3f}")

    # Crops around the first junction of naive tile borders, naive (left) and fastnst (right).
    cy, cx, r = t, t, 192
    crop = np.concatenate(
        [naive[cy - r : cy + r, cx - r : cx + r], ours.image[cy - r : cy + r, cx - r : cx + r]], axis=1
    )
    Image.fromarray(to_uint8(crop)).save(args.crops)
    print(f"crops around a tile junction (naive | fastnst): {args.crops}")


if __name__ == "__main__":
    main()
