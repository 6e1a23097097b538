"""The ``fastnst`` command line.

``fastnst train`` is Hydra's command line (the same as ``python train.py`` in a checkout); the other
subcommands are argparse. Heavy imports happen inside each subcommand: ``infer`` and ``styles`` need
only the base install, the others the ``[train]`` extra.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastnst import __version__
from fastnst.errors import FastNSTError
from fastnst.runtime.onnx_contract import OPSET, PRECISIONS

# Packages of the [train] extra: a subcommand that needs one of them, run on the base install, says so in one line.
TRAIN_EXTRA = {"torch", "lightning", "hydra", "omegaconf", "tensorboard", "onnx", "onnxscript", "h5py"}


def _cmd_styles(args: argparse.Namespace) -> int:
    """List the shipped style models (judge figures, file sizes) and the built-in paintings."""
    from fastnst.styles import (
        builtin_styles,
        shipped_bases,
        shipped_model_figures,
        shipped_models,
        shipped_multi_models,
        shipped_quality_models,
        shipped_video_models,
    )

    figures = shipped_model_figures()
    print("shipped models (fastnst infer --model NAME; train init=NAME fine-tunes one), judged on ten photos:")
    print(f"  {'name':20s} {'content':>8s} {'style_gram':>10s} {'style_stats':>11s} {'size':>7s}  painting")
    _print_models(shipped_models(), figures)
    quality = shipped_quality_models()
    if quality:
        print("quality tier for photos (infer uses NAME_hq for a photo of NAME; about 3x to 5x the time; --fast: not):")
        _print_models(quality, figures)
    video = shipped_video_models()
    if video:
        print("stability-trained for video (infer uses NAME_stable for a video of NAME; flicker: docs/quality.md):")
        _print_models(video, figures)
    multi = shipped_multi_models()
    if multi:
        print("several styles in one network (infer --model NAME --style STYLE, a mixture a=0.7,b=0.3, --strength):")
        _print_multi_models(multi, figures)
    print("built-in paintings (train style=NAME, fastnst optimize --style NAME):")
    for name, path in builtin_styles().items():
        print(f"  {name:16s} {path}")
    bases = shipped_bases()
    print("base networks (a new style: train style.image=painting.jpg init=NAME):" if bases else "no base networks")
    for name, path in bases.items():
        print(f"  {name:16s} {path}")
    return 0


def _print_models(models: dict[str, Path], figures: dict[str, dict[str, Any]]) -> None:
    """One line per model: judge figures, file size and painting (models.json)."""
    for name, path in models.items():
        f = {"content": float("nan"), "style_gram": float("nan"), "style_stats": float("nan"), **figures.get(name, {})}
        print(
            f"  {name:20s} {f['content']:8.3f} {f['style_gram']:10.3f} {f['style_stats']:11.3f} "
            f"{path.stat().st_size / 1e3:4.0f} kB  {f.get('painting', '')}{_flicker(f)}"
        )


def _print_multi_models(models: dict[str, Path], figures: dict[str, dict[str, Any]]) -> None:
    """A line per network (size, styles), then one line of judge figures per style (models.json)."""
    for name, path in models.items():
        styles = figures.get(name, {}).get("styles", {})
        print(f"  {name:20s} {path.stat().st_size / 1e3:.0f} kB, {len(styles)} styles")
        for style, f in styles.items():
            print(f"    {style:18s} {f['content']:8.3f} {f['style_gram']:10.3f} {f['style_stats']:11.3f}")


def _flicker(figures: dict[str, Any]) -> str:
    """``; flicker 0.477x bikes, 0.392x bigbuckbunny`` for a stability-trained model, else nothing (three
    decimals: 0.501 is not 0.5, the target)."""
    ratios = figures.get("flicker", {})
    return "; flicker " + ", ".join(f"{r:.3f}x {clip}" for clip, r in ratios.items()) if ratios else ""


def _cmd_train(overrides: list[str]) -> int:
    """Train a style network: Hydra overrides, as for ``python train.py``."""
    from fastnst.training.train import run_cli

    return run_cli(overrides)


def _cmd_vgg(args: argparse.Namespace) -> int:
    """Fetch the VGG weights into the torch hub cache (or write a compact fp16 copy)."""
    from fastnst.nn.vgg import load_vgg_state_dict, save_caffe_weights_fp16, state_architecture

    if args.fp16:
        out = save_caffe_weights_fp16(args.fp16, up_to=args.up_to, weights=args.weights)
        print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, fp16, up to {args.up_to})")
    else:
        state = load_vgg_state_dict(args.weights)
        print(f"{state_architecture(state).upper()} weights ({args.weights}) ready: {len(state) // 2} conv layers")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    """Export a training checkpoint to ONNX (verified against PyTorch)."""
    from fastnst.nn.export import export_onnx
    from fastnst.runtime.infer_cli import Interrupted, stop_on_signals
    from fastnst.styles import shipped_bases

    output = args.output or Path(args.checkpoint).with_suffix(".onnx")
    replacing = Path(output).is_file()  # an earlier export (anything else is refused): say it went
    bases = shipped_bases()
    if not Path(args.checkpoint).exists() and args.checkpoint in bases:  # a base by name, as init= takes
        args.checkpoint = str(bases[args.checkpoint])
    if sys.stderr.isatty():  # it takes a while (verification at several sizes): say what is going on
        checked = ", then checking onnxruntime against PyTorch" if not args.no_verify else ""
        print(f"exporting {args.checkpoint} to {output} ({args.precision}{checked})...", file=sys.stderr)
    with stop_on_signals():  # SIGTERM as Ctrl-C: the temporary files go, nothing is half-written
        try:
            report = export_onnx(
                args.checkpoint,
                output,
                precision=args.precision,
                opset=args.opset,
                check=not args.no_verify,
                averaged=not args.no_ema,
                style_maps=args.style_maps,
                margin=args.margin,
            )
        except Interrupted as e:
            print(f"interrupted by {e}; {output} not written", file=sys.stderr)
            return 128 + e.signum
    print(report.summary() + ("; it replaced the earlier file" if replacing else ""))
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    if args.sheet:
        from fastnst.runtime.sheet import run_sheet

        return run_sheet(args)
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
    p.add_argument("--optimizer", choices=("lbfgs", "adam"), help="lbfgs (default) or adam")
    p.add_argument("--seed", type=int, help="seed of the noise start, --init noise (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto (default): CUDA if there is a GPU")
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing output (default: refuse it)")
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


def _add_export(sub: Any) -> None:
    """The ``fastnst export`` sub-parser."""
    p = sub.add_parser("export", help="export a training checkpoint to ONNX")
    p.add_argument("checkpoint", help="a .ckpt written by train.py, or a shipped base by name (six_styles)")
    p.add_argument("-o", "--output", type=Path, help="the .onnx file (default: next to the checkpoint)")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument(
        "--precision", choices=PRECISIONS, default="fp32", help="the weights' precision (default fp32)"
    )
    precision.add_argument("--fp16", dest="precision", action="store_const", const="fp16", help="half precision")
    precision.add_argument("--int8", dest="precision", action="store_const", const="int8", help="int8 (quantized)")
    p.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (>= 17, default {OPSET})")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    p.add_argument(
        "--style-maps",
        action="store_true",
        help="a model of several styles: take per-pixel style weights (infer --mask), at some cost per pixel",
    )
    p.add_argument(
        "--no-ema",
        action="store_true",
        help="a run with trainer.ema_decay: export the trained weights, not their moving average (the default)",
    )
    p.add_argument(
        "--margin",
        type=int,
        metavar="PX",
        help="the replicated border infer adds around each pass for this network, a multiple of 4 "
        "(default: none recorded, infer uses 16)",
    )
    p.set_defaults(func=_cmd_export)


def _add_tools(sub: Any) -> None:
    """The ``optimize``, ``eval``, ``styles`` and ``vgg`` sub-parsers."""
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

    p = sub.add_parser(
        "styles",
        help="list the shipped style models and the built-in paintings",
        description="The shipped style models (--model NAME in infer and eval: real-time, _hq quality tier, "
        "_stable for video, several-style models), the built-in paintings (style=NAME, --style NAME) and bases.",
    )
    p.set_defaults(func=_cmd_styles)

    p = sub.add_parser("vgg", help="download/convert the VGG loss-network weights, or write an fp16 copy")
    p.add_argument(
        "--weights", default="caffe", help="caffe (default, VGG19), torchvision (VGG19), vgg16, or a file path"
    )
    p.add_argument("--fp16", type=Path, metavar="OUT", help="write an fp16 copy truncated after --up-to")
    p.add_argument("--up-to", default="relu5_1", help="deepest layer kept in the fp16 copy (default relu5_1)")
    p.set_defaults(func=_cmd_vgg)


def build_parser() -> argparse.ArgumentParser:
    """The ``fastnst`` argument parser (``fastnst train ...`` is parsed by Hydra, see :func:`main`)."""
    parser = _Parser(
        prog="fastnst",
        description="Fast neural style transfer. Train with `fastnst train style=starry_night` "
        "(Hydra overrides, as `python train.py` in a checkout).",
    )
    parser.add_argument("--version", action="version", version=f"fastnst {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    # Listed for --help only: main() hands `fastnst train ...` to Hydra before argparse sees it.
    sub.add_parser("train", help="train a style network (Hydra overrides: fastnst train style=wave --help)")

    _add_export(sub)
    _add_infer(sub)
    _add_tools(sub)
    return parser


def _add_style_options(p: argparse.ArgumentParser) -> None:
    """``fastnst infer``'s choice of style, strength, masks, colours and video smoothing."""
    from fastnst.runtime.temporal import MOMENTUM

    p.add_argument(
        "--style",
        help="a style of a several-style model, or a mixture: wave=0.7,udnie=0.3"
        " (default: the painting added to a base, else its first)",
    )
    p.add_argument(
        "--strength",
        type=float,
        default=1.0,
        help="0..1: a model's trained-in strength (lighter strokes) if it has one, else a blend with the photo",
    )
    p.add_argument(
        "--mask",
        action="append",
        metavar="FILE:STYLE",
        help="a model exported with --style-maps: STYLE where FILE is white, over --style (repeatable, in order)",
    )
    p.add_argument(
        "--sheet",
        action="store_true",
        help="write one picture of every style (or strength) per photo (-o: a folder, or the file for one photo)",
    )
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours (luminance transfer)")
    p.add_argument(
        "--smooth-stats",
        action="store_true",
        help="videos: normalise each frame with instance-norm statistics averaged over the frames before it",
    )
    p.add_argument(
        "--fast",
        action="store_true",
        help="photos: use a shipped style's real-time network, not its quality-tier one (STYLE_hq)",
    )
    p.add_argument(
        "--no-stable",
        action="store_true",
        help="videos: use a shipped style's per-frame network, not its stability-trained one (STYLE_stable)",
    )
    p.add_argument(
        "--smooth-momentum",
        type=float,
        help=f"with --smooth-stats: weight of the average per frame, in [0, 1) (default {MOMENTUM})",
    )


def _add_infer(sub: Any) -> None:
    """``fastnst infer``."""
    p = sub.add_parser("infer", help="stylize images, folders, globs or videos with an ONNX model")
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image or video files, folders, globs, or - (one image on stdin)"
    )
    p.add_argument(
        "--model", "-m", required=True, type=Path, help="a .onnx file, or a shipped style name (`fastnst styles`)"
    )
    p.add_argument(
        "-o", "--output", type=Path, help="output file (one input), folder, or - for stdout (default: next to inputs)"
    )
    p.add_argument("--max-size", type=int, help="downscale images and video frames: long side at most this (px)")
    _add_style_options(p)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "tensorrt"),
        default="auto",
        help="auto (default): CUDA if onnxruntime-gpu is installed, else CPU",
    )
    p.add_argument("--batch-size", type=int, default=4, help="images or video frames per model call")
    p.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help="videos: the first N frames only, a preview (written as clip_STYLE.firstN.mp4 unless -o names the file)",
    )
    p.add_argument(
        "--tile-size",
        type=int,
        help="tile images larger than this side (default: tile only what does not fit 2 GiB on CPU, 6 GiB on GPU)",
    )
    p.add_argument(
        "--max-image-pixels",
        type=int,
        help="refuse larger images and video frames (decompression-bomb guard; 0: no limit)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument(
        "--again",
        action="store_true",
        help="stylize fastnst's own outputs of this style too (default: skip them, so a rerun on a folder "
        "makes no photo_wave_wave.jpg)",
    )
    p.add_argument("--format", choices=("png", "jpeg", "webp"), help="image format for -o - (default png)")
    p.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_infer)


def missing_extra_hint(error: ModuleNotFoundError, command: str) -> str | None:
    """The one-line hint for ``command`` run without the [train] extra (None: another module is missing)."""
    top = (error.name or "").split(".")[0]
    if top not in TRAIN_EXTRA:
        return None
    return f"{command} needs the training extra ({top} is not installed): pip install 'fastnst[train]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    is_train = argv[:1] == ["train"]
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        args = None if is_train else build_parser().parse_args(argv)  # Ctrl-C may come while it imports
        return _cmd_train(argv[1:]) if args is None else args.func(args)
    except ModuleNotFoundError as e:
        hint = missing_extra_hint(e, f"fastnst {argv[0]}")
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        return 2
    except FastNSTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # bad option values from the inference API
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
