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
    from fastnst.nn.vgg import load_vgg19_state_dict, save_caffe_weights_fp16

    if args.fp16:
        out = save_caffe_weights_fp16(args.fp16, up_to=args.up_to, weights=args.weights)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, fp16, up to {args.up_to})")
    else:
        state = load_vgg19_state_dict(args.weights)
        print(f"VGG19 weights ({args.weights}) ready: {len(state) // 2} conv layers")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Export a training checkpoint to ONNX (verified against PyTorch)."""
    from fastnst.nn.export import export_onnx

    output = args.output or Path(args.checkpoint).with_suffix(".onnx")
    report = export_onnx(args.checkpoint, output, precision=args.precision, opset=args.opset, check=not args.no_verify)
    print(report.summary())
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from fastnst.runtime.infer_cli import run_infer

    return run_infer(args)


def _optimize_arguments(p: argparse.ArgumentParser) -> None:
    """The ``fastnst optimize`` flags (shorthands for keys of conf/optimize.yaml)."""
    p.add_argument("--content", "-c", required=True, help="the photo")
    p.add_argument(
        "--style", "-s", action="append", required=True, help="a style image or built-in style; repeat to blend"
    )
    p.add_argument("--style-weight", type=float, action="append", help="blend weight per --style (default 1 each)")
    p.add_argument("--mask", action="append", help="mask per --style (white = where that style goes)")
    p.add_argument("-o", "--output", help="the result, .png or .jpg (default stylized.png)")
    p.add_argument("--size", type=int, help="long edge of the result in pixels (default 512)")
    p.add_argument("--steps", type=int, help="iterations in all (default 500)")
    p.add_argument("--preset", help="fastnst (default), gatys or jcjohnson")
    p.add_argument("--init", help="content (default), noise, or an image file")
    p.add_argument("--optimizer", choices=("lbfgs", "adam"))
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    colors = p.add_mutually_exclusive_group()
    colors.add_argument(
        "--preserve-color", dest="preserve_color", action="store_const", const="luminance",
        help="keep the photo's colours: luminance-only transfer",
    )  # fmt: skip
    colors.add_argument(
        "--match-color", dest="preserve_color", action="store_const", const="match",
        help="keep the photo's colours by recolouring the styles to its colour statistics",
    )  # fmt: skip
    p.add_argument("--style-scale", type=float, help="size at which the styles are seen, relative to the result")
    p.add_argument("--tensorboard", help="log losses and intermediate images to this folder")
    p.add_argument("--output-bits", type=int, choices=(8, 16), help="16: a 16-bit PNG")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value (see conf/optimize.yaml)")


def _cmd_optimize(args: argparse.Namespace) -> int:
    """Per-image optimization (Gatys et al.)."""
    from fastnst.training.optimize_cli import main as optimize_main

    return optimize_main(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    """Judge models or folders of stylized images with the fixed judge."""
    from fastnst.nn.eval_cli import run_eval

    return run_eval(args)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fastnst",
        description="Fast neural style transfer. Train with `python train.py style=starry_night`.",
    )
    parser.add_argument("--version", action="version", version=f"fastnst {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="a .ckpt written by train.py")
    p.add_argument("-o", "--output", type=Path, help="the .onnx file (default: next to the checkpoint)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32")
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="half precision")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8", help="int8 (quantized)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (>= 17, default 18)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("infer", help="stylize images, folders, globs or videos with an ONNX model")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or video files, folders, or globs")
    p.add_argument("--model", "-m", required=True, type=Path, help="a .onnx model from `fastnst export`")
    p.add_argument("-o", "--output", type=Path, help="output file (one input) or folder (default: next to inputs)")
    p.add_argument("--max-size", type=int, help="downscale images and video frames: long side at most this (px)")
    p.add_argument("--strength", type=float, default=1.0, help="0..1: blend of stylized (1) and photo (0)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours (luminance transfer)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto")
    p.add_argument("--batch-size", type=int, default=4, help="images or video frames per model call")
    p.add_argument("--tile-size", type=int, help="largest side per pass before tiling (default 1024 CPU / 2048 GPU)")
    p.add_argument(
        "--max-image-pixels",
        type=int,
        help="refuse larger images and video frames (decompression-bomb guard; 0: no limit)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_infer)

    p = sub.add_parser(
        "optimize",
        help="per-image style transfer by optimization (Gatys et al.)",
        description="Optimize an image to match a photo's content and paintings' style. "
        "Any key of conf/optimize.yaml can follow as key=value.",
    )
    _optimize_arguments(p)
    p.set_defaults(func=_cmd_optimize)

    p = sub.add_parser(
        "eval",
        help="judge ONNX models or folders of stylized images (fixed VGG19 judge)",
        description="Content loss (relu4_2), Gram and mean/covariance style distances (relu1_1..relu5_1) of "
        "results reloaded from 8-bit at a long edge of 512 px; scores.csv, summary.json, contact_sheet.png.",
    )
    from fastnst.nn.eval_cli import add_arguments as eval_arguments

    eval_arguments(p)
    p.set_defaults(func=_cmd_eval)

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
    except ValueError as e:  # bad option values from the inference API
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
