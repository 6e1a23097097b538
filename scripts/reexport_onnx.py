#!/usr/bin/env python3
"""Rebuild the network of a fastnst ONNX export and export it again with today's exporter.

    python scripts/reexport_onnx.py fastnst/assets/models/udnie.onnx -o udnie_fp32.onnx
    python scripts/reexport_onnx.py fastnst/assets/models/the_scream.onnx -o the_scream.onnx --margin 8

For the shipped real-time networks, whose training checkpoints were not kept: they were exported in
fp16, which is the slower precision on CPUs, and before the exporter folded the instance-norm
statistics into one scale and shift. The network is rebuilt by :func:`fastnst.nn.onnx_import.network_from_onnx`
(the weights by name, the norms' scales and shifts in order, the settings from the file's metadata). The new file
is checked against PyTorch by the exporter, and against the old file on a photo: the difference must stay
within what fp16 weights explain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.errors import FastNSTError
from fastnst.nn.export import TOLERANCE, export_network
from fastnst.nn.onnx_import import network_from_onnx
from fastnst.photos import sample_photos_dir
from fastnst.runtime.onnx_contract import MARGIN_KEY
from fastnst.runtime.stylizer import Stylizer


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a fastnst ONNX export (single style)")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    p.add_argument(
        "--margin",
        type=int,
        help="record this border for Stylizer (fastnst export --margin); default: the file's own, if it has one",
    )
    args = p.parse_args(argv)
    try:
        net, hparams = network_from_onnx(args.model)
        # The old file at the new file's margin, so that the comparison below is of the weights alone.
        before = Stylizer(args.model, margin=args.margin)
    except (FastNSTError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    # Recorded in the new file: the one asked for, else the old file's own (parsed and checked by Stylizer), if any.
    margin = before.margin if args.margin is not None or MARGIN_KEY in before.metadata else None
    photo = np.asarray(Image.open(sample_photos_dir() / "chelsea.jpg").convert("RGB"))
    old = before(photo)  # before the export, which may write over the file
    report = export_network(net, hparams, args.output, args.precision, margin=margin)
    print(report.summary())
    new = Stylizer(args.output)(photo)
    diff = float(np.abs(old.astype(np.float32) - new.astype(np.float32)).mean() / 255)
    print(f"{args.output}: mean |new - old| on chelsea.jpg {diff:.2e} (8-bit, fraction of full scale)")
    if diff > TOLERANCE["fp16"]:
        raise SystemExit(f"{args.output}: differs from {args.model} by {diff:.2e}; the weights were not mapped right")


if __name__ == "__main__":
    main()
