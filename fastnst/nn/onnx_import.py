"""The PyTorch network of a fastnst ONNX export: training starts from it (``init=<file.onnx or shipped model>``)
and ``scripts/reexport_onnx.py`` exports it again.

The convolution weights are read by name (``net.<parameter>``); the instance norms' scales and shifts, which
the exporter stores as ``(1, C, 1, 1)`` constants of its own, in the order of the network's norms. The
network's settings come from the file's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastnst.errors import FastNSTError, one_line
from fastnst.nn.transformer_net import StyleNetwork, build_network


def network_from_onnx(path: str | Path) -> tuple[StyleNetwork, dict[str, Any]]:
    """The network (float32, eval mode) and training settings of a one-style fastnst export.

    Raises:
        FastNSTError: naming ``path`` when it is no fastnst export, is a conditional one, or its
        weights do not fit the network its metadata names.
    """
    import onnx
    from onnx import numpy_helper

    from fastnst.nn.export import training_settings

    if not Path(path).is_file():
        raise FastNSTError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # onnx raises DecodeError and others for files that are not ONNX
        raise FastNSTError(f"{path}: not an ONNX file ({one_line(e)})") from None
    hparams = training_settings({p.key: p.value for p in model.metadata_props})
    if "architecture" not in hparams or "width" not in hparams:
        raise FastNSTError(f"{path}: not a fastnst export (its metadata names no network)")
    if hparams.get("styles"):
        raise FastNSTError(
            f"{path}: a network of several styles; only one-style exports are rebuilt (its .ckpt holds the network)"
        )
    net = build_network(
        hparams["architecture"], hparams["width"], hparams["num_residual_blocks"], dilation=hparams.get("dilation", 1)
    )
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}  # in the graph's order
    try:
        net.load_state_dict(_state(net, weights))
    except (RuntimeError, ValueError) as e:
        raise FastNSTError(f"{path}: its weights do not fit the network its metadata names ({one_line(e)})") from None
    return net.eval(), hparams


def _state(net: StyleNetwork, weights: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """``net``'s state from an export's initializers: by name, and the norms' scales and shifts in order."""
    affine = [n for n, v in weights.items() if not n.startswith("net.") and v.ndim == 4 and v.shape[::2] == (1, 1)]
    state = net.state_dict()
    norms = [k for k in state if f"net.{k}" not in weights]
    if len(norms) != len(affine):
        raise ValueError(f"{len(norms)} norm parameters, {len(affine)} stored (1, C, 1, 1) scales and shifts")
    values = {k: weights[f"net.{k}"] for k in state if f"net.{k}" in weights}
    values |= {k: weights[n] for k, n in zip(norms, affine, strict=True)}
    return {k: torch.from_numpy(v.astype(np.float32)).reshape(state[k].shape) for k, v in values.items()}
