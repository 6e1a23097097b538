#!/usr/bin/env python3
"""fastnst benchmarks, each side by side with a straightforward reference in the same process.

    python scripts/bench.py train [--quick]     # training images/s vs a pytorch/examples-style loop
    python scripts/bench.py infer [--quick]     # ONNX Runtime fp32/fp16/int8 vs PyTorch eager, and a peer model
    python scripts/bench.py optimize [--quick]  # time to a fixed loss vs the PyTorch tutorial's L-BFGS loop
    python scripts/bench.py video [--quick]     # per-frame time of the stable video paths vs per frame

Common flags: ``--device cpu|cuda``, ``--quick`` (about a minute on a 2-core CPU for train and
infer, a few minutes for optimize), ``--json PATH`` (the results as JSON too). Each part prints a
table; its last line is the ratio to its reference. docs/benchmarks.md has the figures measured so far.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bench_infer
import bench_optimize
import bench_train
import bench_video
import torch


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per part (the README's bench lines are checked against it)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parts = p.add_subparsers(dest="part", required=True)
    parts_ = (("train", bench_train), ("infer", bench_infer), ("optimize", bench_optimize), ("video", bench_video))
    for name, module in parts_:
        sub = parts.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__)
        sub.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
        sub.add_argument(
            "--quick",
            action="store_true",
            help="a short run (about a minute on a 2-core CPU; a few minutes for optimize)",
        )
        sub.add_argument("--json", type=Path, help="also write the results to this JSON file")
        module.add_arguments(sub)
        sub.set_defaults(func=module.run)
    return p


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA GPU is visible to PyTorch")
    results = args.func(args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    sys.exit(main())
