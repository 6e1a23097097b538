"""The ``fastnst`` command line.

Training has its own entry point, ``python train.py`` (Hydra, see ``conf/``). This
command holds the tools around it; heavy imports happen inside each subcommand.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from fastnst import __version__
from fastnst.errors import FastNSTError


def _cmd_styles(args: argparse.Namespace) -> int:
    """List the built-in style paintings."""
    from fastnst.styles import builtin_styles

    for name, path in builtin_styles().items():
        print(f"{name:16s} {path}")
    return 0


def _cmd_vgg(args: argparse.Namespace) -> int:
    """Fetch the VGG19 weights into the torch hub cache (or write a compact fp16 copy)."""
    from fastnst.vgg import load_vgg19_state_dict, save_caffe_weights_fp16

    if args.fp16:
        out = save_caffe_weights_fp16(args.fp16, up_to=args.up_to, weights=args.weights)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, fp16, up to {args.up_to})")
    else:
        state = load_vgg19_state_dict(args.weights)
        print(f"VGG19 weights ({args.weights}) ready: {len(state) // 2} conv layers")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastnst",
        description="Fast neural style transfer. Train with `python train.py style=starry_night`.",
    )
    parser.add_argument("--version", action="version", version=f"fastnst {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("styles", help="list the built-in style paintings")
    p.set_defaults(func=_cmd_styles)

    p = sub.add_parser("vgg", help="download/convert the VGG19 loss-network weights, or write an fp16 copy")
    p.add_argument("--weights", default="caffe", help="caffe (default), torchvision, or a file path")
    p.add_argument("--fp16", type=Path, metavar="OUT", help="write an fp16 copy truncated after --up-to")
    p.add_argument("--up-to", default="relu5_1", help="deepest layer kept in the fp16 copy (default relu5_1)")
    p.set_defaults(func=_cmd_vgg)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return args.func(args)
    except FastNSTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
