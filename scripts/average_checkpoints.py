#!/usr/bin/env python3
"""Average the weights of training checkpoints of one network (a "model soup"), for `fastnst export`.

    python scripts/average_checkpoints.py a.ckpt b.ckpt --weights 0.4 0.6 -o soup.ckpt
    fastnst export soup.ckpt -o soup.onnx

Two checkpoints of one run, or of two legs from one start (say at two style weights), often lie on one
basin of the loss, where their weighted average is a network too, between the two in what it does
(Wortsman et al. 2022, "Model soups"). The checkpoints must be of one network and one style
(architecture, width, blocks, dilation, strength and styles); the weights are normalised to sum to 1.
The output keeps the training settings of the last checkpoint given, with the sources and weights under
``averaged_from``. It holds no optimizer or data position, so it is not for ``ckpt_path=`` (training
refuses it in one line); export it, or start a new run from it with ``init=``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import torch

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.checkpoint import average_state_dicts, read_checkpoint
from fastnst.overwrite import refuse_overwrite

# The settings that make two checkpoints the same network and style; the rest may differ.
SAME_NETWORK = (
    "style_name",
    "architecture",
    "width",
    "num_residual_blocks",
    "dilation",
    "strength",
    "output",
    "styles",
)


def load(path: Path) -> dict[str, Any]:
    """A fastnst training checkpoint, or a one-line error naming the file."""
    if not path.is_file():
        raise FastNSTError(f"{path}: no such checkpoint")
    state = read_checkpoint(path, str(path))
    if not isinstance(state, dict) or not isinstance(state.get("hyper_parameters"), dict) or "state_dict" not in state:
        raise FastNSTError(f"{path}: not a fastnst training checkpoint (no state_dict and hyper_parameters)")
    return state


def check_same_network(states: list[dict[str, Any]], paths: list[Path]) -> None:
    """A one-line error naming the file and the setting where a checkpoint is not the first one's network."""
    first = states[0]["hyper_parameters"]
    for state, path in zip(states[1:], paths[1:], strict=True):
        hparams = state["hyper_parameters"]
        for key in SAME_NETWORK:
            if hparams.get(key) != first.get(key):
                raise FastNSTError(
                    f"{path}: {key}={hparams.get(key)!r}, but {paths[0]} has {key}={first.get(key)!r}; "
                    "only checkpoints of one network and style can be averaged"
                )


def average(paths: list[Path], weights: list[float]) -> dict[str, Any]:
    """The averaged checkpoint: the last one's settings and step, the weighted average of the weights."""
    states = [load(p) for p in paths]
    check_same_network(states, paths)
    try:
        state_dict = average_state_dicts([s["state_dict"] for s in states], weights)
    except ValueError as e:
        raise FastNSTError(f"{', '.join(map(str, paths))}: {e}") from e
    last = states[-1]
    total = sum(weights)
    return {
        "state_dict": state_dict,
        "hyper_parameters": dict(last["hyper_parameters"]),
        "global_step": last.get("global_step"),
        "averaged_from": [
            {"path": str(p), "weight": w / total, "global_step": s.get("global_step")}
            for p, w, s in zip(paths, weights, states, strict=True)
        ],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", type=Path, nargs="+", help="training checkpoints (.ckpt) of one network")
    p.add_argument("--weights", type=float, nargs="+", help="one per checkpoint (default: equal)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the averaged checkpoint (.ckpt)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    args = p.parse_args(argv)
    weights = args.weights or [1.0] * len(args.checkpoints)
    try:
        if len(args.checkpoints) < 2:
            raise FastNSTError("give two or more checkpoints to average")
        if len(weights) != len(args.checkpoints):
            raise FastNSTError(f"--weights: {len(weights)} values for {len(args.checkpoints)} checkpoints")
        if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
            raise FastNSTError(f"--weights {' '.join(map(str, weights))}: non-negative, and not all zero")
        refuse_overwrite(args.output, [("checkpoint", c) for c in args.checkpoints])
        if args.output.exists() and not args.force:
            raise FastNSTError(f"-o {args.output}: the file exists; choose another -o, or --force to replace it")
        soup = average(args.checkpoints, weights)
    except FastNSTError as e:
        sys.exit(f"error: {e}")
    with atomic_write(args.output) as f:
        torch.save(soup, f)
    parts = ", ".join(f"{a['weight']:.3g} x {a['path']} (step {a['global_step']})" for a in soup["averaged_from"])
    print(f"{args.output}: {parts}")


if __name__ == "__main__":
    main()
