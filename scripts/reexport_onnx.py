#!/usr/bin/env python3
"""Rebuild the network of a fastnst ONNX export and export it again with today's exporter.

    python scripts/reexport_onnx.py fastnst/assets/models/udnie.onnx -o udnie_fp32.onnx

For the shipped real-time networks, whose training checkpoints were not kept: they were exported in
fp16, which is the slower precision on CPUs, and before the exporter folded the instance-norm
statistics into one scale and shift. The convolution weights are read by name (``net.<parameter>``);
the instance norms' scales and shifts, which the exporter stores as ``(1, C, 1, 1)`` constants of its
own, in the order of the network's norms. The training settings come from the file's metadata. The new file is
checked against PyTorch by the exporter, and against the old file on a photo: the difference must stay
within what fp16 weights explain.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from PIL import Image

from fastnst.nn.export import TOLERANCE, export_network, training_settings
from fastnst.nn.transformer_net import StyleNetwork, build_network
from fastnst.photos import sample_photos_dir
from fastnst.runtime.stylizer import Stylizer


def rebuild(path: Path) -> tuple[StyleNetwork, dict]:
    """The PyTorch network of a single-style fastnst export, and its training settings."""
    model = onnx.load(str(path))
    hparams = training_settings({p.key: p.value for p in model.metadata_props})
    if hparams.get("styles"):
        raise SystemExit(f"{path}: a conditional export; only single-style networks are rebuilt")
    net = build_network(
        hparams["architecture"], hparams["width"], hparams["num_residual_blocks"], dilation=hparams.get("dilation", 1)
    )
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}  # in the graph's order
    affine = [n for n, v in weights.items() if not n.startswith("net.") and v.ndim == 4 and v.shape[::2] == (1, 1)]
    state = net.state_dict()
    named = [k for k in state if f"net.{k}" in weights]
    norms = [k for k in state if f"net.{k}" not in weights]
    if len(norms) != len(affine):
        raise SystemExit(f"{path}: {len(norms)} norm parameters, {len(affine)} stored (1, C, 1, 1) scales and shifts")
    values = {k: weights[f"net.{k}"] for k in named} | {k: weights[n] for k, n in zip(norms, affine, strict=True)}
    net.load_state_dict({k: torch.from_numpy(v.astype(np.float32)).reshape(state[k].shape) for k, v in values.items()})
    return net.eval(), hparams


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help="a fastnst ONNX export (single style)")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    args = p.parse_args(argv)
    net, hparams = rebuild(args.model)
    photo = np.asarray(Image.open(sample_photos_dir() / "chelsea.jpg").convert("RGB"))
    old = Stylizer(args.model)(photo)  # before the export, which may write over the file
    report = export_network(net, hparams, args.output, args.precision)
    print(report.summary())
    new = Stylizer(args.output)(photo)
    diff = float(np.abs(old.astype(np.float32) - new.astype(np.float32)).mean() / 255)
    print(f"{args.output}: mean |new - old| on chelsea.jpg {diff:.2e} (8-bit, fraction of full scale)")
    if diff > TOLERANCE["fp16"]:
        raise SystemExit(f"{args.output}: differs from {args.model} by {diff:.2e}; the weights were not mapped right")


if __name__ == "__main__":
    main()
