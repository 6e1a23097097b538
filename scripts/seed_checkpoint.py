#!/usr/bin/env python3
"""Start training from a shipped network: its weights, rebuilt from its ONNX file, in a checkpoint of your recipe.

To fine-tune a shipped network, ``python train.py style=<style> <recipe> init=<model name or .onnx>`` does it
in one command, from step 0. This script is the way the_scream's video network was made before ``init``
took one-style networks (checkpoints/README.md), kept so that its commands run as written: make a
one-step checkpoint of the recipe, put the network's weights into it, and train from there:

    python train.py style=the_scream <recipe> trainer.max_steps=1
    python scripts/seed_checkpoint.py checkpoints/the_scream/<run>/last.ckpt \\
        fastnst/assets/models/the_scream.onnx -o seed.ckpt
    python train.py style=the_scream <recipe> trainer.max_steps=300 ckpt_path=seed.ckpt

The optimizer's state is emptied (Adam starts its moments afresh, as at step 0); the step count stays
the recipe checkpoint's. With ``trainer.ema_decay``, the average starts at the seeded weights too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.checkpoint import read_checkpoint
from fastnst.nn.onnx_import import network_from_onnx
from fastnst.overwrite import cannot_write, refuse_overwrite


def seed(checkpoint: dict, weights: dict[str, torch.Tensor], source: str) -> dict:
    """A copy of ``checkpoint`` whose network is ``weights`` (the network's own names) and whose optimizer is fresh."""
    seeded = dict(checkpoint)
    for key in ("state_dict", "current_model_state"):  # the latter: the trained weights beside an average
        if key not in checkpoint:
            continue
        state = dict(checkpoint[key])
        names = sorted(k.removeprefix("net.") for k in state if k.startswith("net."))
        if names != sorted(weights):
            raise FastNSTError(f"{source}: its network is not the checkpoint's (model= of the recipe differs)")
        for name, value in weights.items():
            if state[f"net.{name}"].shape != value.shape:
                raise FastNSTError(
                    f"{source}: {name} is {tuple(value.shape)}, the checkpoint's network has "
                    f"{tuple(state[f'net.{name}'].shape)} (model.width differs?)"
                )
            state[f"net.{name}"] = value.clone()
        seeded[key] = state
    seeded["optimizer_states"] = [dict(s, state={}) for s in checkpoint["optimizer_states"]]
    return seeded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint of the recipe to train with (trainer.max_steps=1)")
    p.add_argument("model", type=Path, help="a single-style fastnst ONNX export whose weights to start from")
    p.add_argument("-o", "--output", type=Path, required=True, help="the seeded checkpoint to write")
    args = p.parse_args(argv)
    try:
        for path in (args.checkpoint, args.model):
            if not path.is_file():
                raise FastNSTError(f"{path}: no such file")
        refuse_overwrite(args.output, [("recipe checkpoint", args.checkpoint), ("model", args.model)])
        if args.output.suffix != ".ckpt":  # train.py's ckpt_path= reads it; never replace a file of another kind
            raise FastNSTError(f"-o {args.output}: give a .ckpt file to write")
        if (why := cannot_write(args.output)) is not None:
            raise FastNSTError(f"-o {args.output}: {why}")
        checkpoint = read_checkpoint(args.checkpoint, str(args.checkpoint))
        if "state_dict" not in checkpoint or "optimizer_states" not in checkpoint:
            raise FastNSTError(f"{args.checkpoint}: not a training checkpoint (no state_dict and optimizer state)")
        net, _ = network_from_onnx(args.model)
        seeded = seed(checkpoint, net.state_dict(), str(args.model))
        with atomic_write(args.output) as f:  # a failed write leaves no half checkpoint to resume from
            torch.save(seeded, f)
    except FastNSTError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {args.model}'s weights at step {checkpoint.get('global_step')}, a fresh optimizer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
