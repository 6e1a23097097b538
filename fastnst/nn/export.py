"""Export a trained style network to ONNX, and verify it against PyTorch.

The exported graph has dynamic batch, height and width, and one extra feature for
seam-free tiled inference of large images: every instance norm can take its
statistics from outside instead of computing them over the (tile) input.

Inputs
    ``image``           float32 ``(N, 3, H, W)``, RGB in [0, 1], H and W >= 8 (4 x (dilation + 1)
                        for a network with ``model.dilation``; 16 covers every dilation allowed).
    ``norm_stats``      float32 ``(1, K)``, optional: per-channel mean and variance of every
                        instance norm (K numbers in all), as returned in ``norm_stats_out`` by a previous run.
    ``use_norm_stats``  float32 ``(1,)``, optional: 1 to use ``norm_stats``, 0 (default) to
                        compute the statistics over ``image`` as usual.
    ``style_weights``   float32 ``(1, S)``, conditional networks only, optional: one weight per
                        style (metadata ``fastnst.style_names``), normalised in the graph; any
                        mixture blends the styles. Default: the first style. Exported with
                        ``--style-maps`` (metadata ``fastnst.style_maps``): ``(1, S, h, w)``, a map
                        of any size stretched over the image, normalised at every pixel.
    ``strength``        float32 ``(1,)``, conditional networks only, optional: the trained-in
                        strength in [0, 1] (0: the photo back). Default: 1.
Outputs
    ``stylized``        float32 ``(N, 3, H, W)``, RGB in [0, 1].
    ``norm_stats_out``  float32 ``(N, K)``: the statistics computed over ``image``.

Every input but ``image`` has a default value (a graph initializer), so a plain
``session.run(None, {"image": x})`` works. Metadata properties (``fastnst.*``) record
the style, the training image size, the loss weights and fastnst's version.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastnst import __version__
from fastnst.atomic import new_folders
from fastnst.errors import FastNSTError, one_line
from fastnst.nn.checkpoint import read_checkpoint
from fastnst.nn.transformer_net import (
    STRENGTH_OUTPUT,
    ConditionalInstanceNorm2d,
    Conditioned,
    StyleNetwork,
    build_network,
    style_affine,
)
from fastnst.overwrite import refuse_overwrite
from fastnst.runtime.imageio import IMAGE_EXTENSIONS
from fastnst.runtime.onnx_contract import (
    FORMAT_KEY,
    MARGIN_KEY,
    OPSET,
    PRECISIONS,
    STYLE_MAPS_KEY,
    STYLE_NAMES_KEY,
    check_margin,
)
from fastnst.runtime.stylizer import open_session
from fastnst.runtime.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

# Sizes at which every export is checked against PyTorch (odd ones included).
VERIFY_SIZES = ((1, 64, 64), (2, 257, 383), (1, 9, 13), (1, 128, 96))
# Largest difference from the fp32 PyTorch output accepted per precision (pixel values in [0, 1]).
TOLERANCE = {"fp32": 1e-4, "fp16": 2e-2, "int8": 0.25}


class ExportError(FastNSTError):
    """An export that failed or did not verify."""


class _StatsContext:
    """Shared by the instance norms of one forward pass: external stats in, computed stats out."""

    def __init__(self, stats: torch.Tensor, use: torch.Tensor) -> None:
        self.stats, self.use, self.offset = stats, use, 0
        self.collected: list[torch.Tensor] = []


class StatsInstanceNorm(Conditioned):
    """Instance norm that can normalise with given statistics (same math as ``nn.InstanceNorm2d``,
    or as :class:`ConditionalInstanceNorm2d` with the mixing of the pass)."""

    def __init__(self, norm: nn.InstanceNorm2d | ConditionalInstanceNorm2d) -> None:
        super().__init__()
        self.num_features, self.eps = norm.num_features, norm.eps
        self.weight, self.bias = norm.weight, norm.bias
        self.conditional = isinstance(norm, ConditionalInstanceNorm2d)
        self.context: _StatsContext | None = None

    def forward(self, x: torch.Tensor, mixing: torch.Tensor | None = None) -> torch.Tensor:
        ctx = self.context
        assert ctx is not None, "StatsInstanceNorm runs inside StatsTransformerNet"
        c = self.num_features
        # Statistics in float32 whatever the precision of the convolutions.
        xf = x.float()
        mean = xf.mean(dim=(2, 3), keepdim=True)
        centred = xf - mean
        var = (centred * centred).mean(dim=(2, 3), keepdim=True)  # a Mul: onnxruntime's Pow is slower
        ctx.collected.append(torch.cat([mean.flatten(1), var.flatten(1)], dim=1))
        given = ctx.stats[:, ctx.offset : ctx.offset + 2 * c]
        ctx.offset += 2 * c
        use = ctx.use.reshape(1, 1, 1, 1) > 0.5
        mean = torch.where(use, given[:, :c].reshape(-1, c, 1, 1), mean)
        var = torch.where(use, given[:, c:].reshape(-1, c, 1, 1), var)
        if self.conditional:
            assert mixing is not None, "a conditional norm needs the mixing of the pass"
            scale, shift = style_affine(mixing, self.weight, self.bias, x.shape[-2:])
        else:
            scale, shift = self.weight.float().reshape(1, c, 1, 1), self.bias.float().reshape(1, c, 1, 1)
        if mixing is not None and mixing.ndim == 4:  # per pixel (style maps): normalised, then the maps
            return ((xf - mean) * torch.rsqrt(var + self.eps) * scale + shift).to(x.dtype)
        # Folded into one scale and shift per channel: two passes over the features instead of four
        # (the light network spends about a third of its time in these element-wise passes).
        scale = scale * torch.rsqrt(var + self.eps)
        return (xf * scale + (shift - mean * scale)).to(x.dtype)


class StatsTransformerNet(nn.Module):
    """A copy of a style network whose instance norms accept external statistics.

    With ``half=True`` the weights and convolutions are float16 while inputs, outputs and
    the instance-norm statistics stay float32 (fp16 reductions lose precision or overflow).
    With ``style_maps=True`` (a conditional network) the exported ``style_weights`` input is a
    per-pixel map ``(1, S, h, w)`` of any size instead of ``(1, S)``.
    """

    def __init__(self, net: StyleNetwork, half: bool = False, style_maps: bool = False) -> None:
        super().__init__()
        if style_maps and not net.num_styles:
            raise ExportError("--style-maps: this network has one style; style maps need a conditional network")
        self.half_precision, self.style_maps = half, style_maps
        self.net = copy.deepcopy(net).eval()
        if half:
            self.net.half()
        self.norms: list[StatsInstanceNorm] = []
        for module in list(self.net.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, (nn.InstanceNorm2d, ConditionalInstanceNorm2d)):
                    replacement = StatsInstanceNorm(child)
                    setattr(module, child_name, replacement)
                    self.norms.append(replacement)
        self.stats_size = sum(2 * n.num_features for n in self.norms)

    def forward(
        self,
        image: torch.Tensor,
        norm_stats: torch.Tensor,
        use_norm_stats: torch.Tensor,
        style_weights: torch.Tensor | None = None,
        strength: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx = _StatsContext(norm_stats, use_norm_stats)
        for norm in self.norms:
            norm.context = ctx
        try:
            mixing = self.net.mixing(style_weights, strength)
            out = self.net.stylize(image.half() if self.half_precision else image, mixing)
        finally:
            for norm in self.norms:
                norm.context = None
        return out.float(), torch.cat(ctx.collected, dim=1)


@dataclass
class ExportReport:
    """What an export wrote and how far it is from PyTorch."""

    path: Path
    precision: str
    size_bytes: int
    max_abs_error: float
    mean_abs_error: float
    errors_by_size: dict[str, float] = field(default_factory=dict)

    verified: bool = True

    def summary(self) -> str:
        head = f"{self.path} ({self.precision}, {self.size_bytes / 1e6:.2f} MB)"
        if not self.verified:
            return f"{head}: not checked against PyTorch (--no-verify)"
        return (
            f"{head}: |onnxruntime - torch| max {self.max_abs_error:.2e} on random images of sizes "
            f"{', '.join(self.errors_by_size)}, mean {self.mean_abs_error:.2e} on a photo"
        )


def load_network(checkpoint: str | Path, averaged: bool = True) -> tuple[StyleNetwork, dict]:
    """The style network and hyperparameters of a training checkpoint (torch only, no Lightning).

    A checkpoint holds the network's weights under ``net.`` and the run's settings under
    ``hyper_parameters``; the network is rebuilt from those settings and loaded strictly. A run with
    ``trainer.ema_decay`` keeps the moving average of the weights as the weights and the trained ones
    under ``current_model_state`` (Lightning's weight averaging): ``averaged=False`` takes those.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise ExportError(f"{path}: no such checkpoint")
    try:
        state = read_checkpoint(path, str(path))
    except FastNSTError as e:
        raise ExportError(str(e)) from e
    if not isinstance(state, dict) or not isinstance(state.get("hyper_parameters"), dict) or "state_dict" not in state:
        raise ExportError(f"{path}: not a fastnst training checkpoint (no state_dict and hyper_parameters)")
    hparams = dict(state["hyper_parameters"])
    try:
        net = build_network(
            hparams.get("architecture", "johnson"),
            width=hparams.get("width", 1.0),
            num_residual_blocks=hparams.get("num_residual_blocks", 5),
            num_styles=len(hparams.get("styles") or []),
            gated_strength=_strength_output(hparams, path),
            dilation=hparams.get("dilation", 1),
        )
        source = state["state_dict"] if averaged else state.get("current_model_state", state["state_dict"])
        weights = {k.removeprefix("net."): v for k, v in source.items() if k.startswith("net.")}
        net.load_state_dict(weights)
    except FastNSTError:
        raise
    except Exception as e:  # settings that build no network, or weights of another network
        raise ExportError(f"{path}: its weights do not fit the network its settings name ({one_line(e)})") from e
    return net.eval(), hparams


def _strength_output(hparams: dict[str, Any], path: Path) -> bool:
    """Whether a checkpoint's network has a trained strength's output (:func:`strength_output`)."""
    output = hparams.get("output")
    if output is None:  # no trained strength, or one from before the output was recorded (plain)
        return False
    if output == STRENGTH_OUTPUT:
        return True
    raise ExportError(
        f"{path}: output={output!r}, a trained-strength network with a retired output that this version does "
        f"not build; retrain it (model.strength=true)"
    )


# Metadata that an export adds about itself, not a training setting (see training_settings).
_EXPORT_FACTS = (
    FORMAT_KEY,
    STYLE_NAMES_KEY,
    STYLE_MAPS_KEY,
    "fastnst.version",
    "fastnst.precision",
    "fastnst.norm_stats_size",
    MARGIN_KEY,
)


def _metadata(hparams: dict, precision: str, stats_size: int) -> dict[str, str]:
    """``fastnst.<setting>`` for every training setting of the checkpoint (a new one needs no change
    here; mappings and lists as JSON), then the format, version and export facts."""
    meta = {f"fastnst.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in hparams.items()}
    meta.setdefault("fastnst.architecture", "johnson")  # checkpoints from before the light network
    meta.update(
        {
            FORMAT_KEY: "1",  # 2 only for --style-maps exports (see _export)
            "fastnst.version": __version__,
            "fastnst.precision": precision,
            "fastnst.norm_stats_size": str(stats_size),
        }
    )
    if hparams.get("styles"):  # a conditional network: its style_weights input, in order
        meta[STYLE_NAMES_KEY] = json.dumps([s["name"] for s in hparams["styles"]])
    return meta


def training_settings(metadata: dict[str, str]) -> dict[str, Any]:
    """The training settings an export's metadata holds (the inverse of the export's metadata, without
    the export's own facts): ``{"style_name": "wave", "width": 1.0, ...}``, JSON values decoded."""
    settings: dict[str, Any] = {}
    for key, value in metadata.items():
        if not key.startswith("fastnst.") or key in _EXPORT_FACTS:
            continue
        try:
            settings[key.removeprefix("fastnst.")] = json.loads(value)
        except json.JSONDecodeError:  # a plain string (style names, paths)
            settings[key.removeprefix("fastnst.")] = value
    return settings


def _torch_export(net: StatsTransformerNet, path: Path, opset: int) -> None:
    """Export through torch.export (dynamic shapes stay symbolic, incl. the pad-to-4 amounts)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter's dependency)
    except ImportError as e:
        raise ExportError("ONNX export needs onnxscript: pip install onnxscript") from e
    image = torch.rand(1, 3, 64, 64)
    stats = torch.zeros(1, net.stats_size)
    use = torch.zeros(1)
    names, args = ["image", "norm_stats", "use_norm_stats"], (image, stats, use)
    dynamic: dict[str, Any] = {}
    if net.net.num_styles:
        s = net.net.num_styles
        names += ["style_weights", "strength"]
        args += (torch.full((1, s, 16, 16) if net.style_maps else (1, s), 1.0 / s), torch.ones(1))
        if net.style_maps:  # a map of any size (1 x 1: one mixture everywhere), stretched over the image
            dynamic["style_weights"] = {2: torch.export.Dim("map_height"), 3: torch.export.Dim("map_width")}
    batch = torch.export.Dim("batch", max=4096)
    # H, W >= min_side (8 unless dilated): the network's tiny-image path is then statically excluded from the graph.
    side = net.net.min_side
    height, width = torch.export.Dim("height", min=side, max=32768), torch.export.Dim("width", min=side, max=32768)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("torch.onnx", "onnx_ir", "onnxscript"):
            logging.getLogger(name).setLevel(logging.WARNING)
        # "torchvision is not installed. Skipping torchvision::nms": true, and irrelevant here.
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
        torch.onnx.export(
            net,
            args,
            str(path),
            input_names=names,
            output_names=["stylized", "norm_stats_out"],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={
                "image": {0: batch, 2: height, 3: width},
                **{name: dynamic.get(name) for name in names[1:]},
            },
            verbose=False,
        )
    import onnx

    written = {
        i.version for i in onnx.load(str(path), load_external_data=False).opset_import if i.domain in ("", "ai.onnx")
    }
    if written != {opset}:  # the exporter falls back to its own opset when it cannot convert
        raise ExportError(f"opset={opset}: the exporter wrote opset {', '.join(map(str, sorted(written)))} instead")


def _finish_graph(
    path: Path, stats_size: int, metadata: dict[str, str], num_styles: int = 0, style_maps: bool = False
) -> None:
    """Give the optional inputs default values and add the metadata."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    defaults = {"norm_stats": np.zeros((1, stats_size), np.float32), "use_norm_stats": np.zeros((1,), np.float32)}
    if num_styles:  # the first style at full strength
        first = np.eye(1, num_styles, dtype=np.float32)
        defaults["style_weights"] = first[..., None, None] if style_maps else first
        defaults["strength"] = np.ones((1,), np.float32)
    # Inputs backed by an initializer of the same name are optional (ONNX IR >= 4).
    graph.initializer.extend([numpy_helper.from_array(value, name) for name, value in defaults.items()])
    del graph.value_info[:]  # intermediate shapes: onnxruntime infers them again
    for node in graph.node:  # the exporter's per-node stack traces: a third of a small model's bytes
        del node.metadata_props[:]
        node.doc_string = ""
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    model.doc_string = f"fastnst style network ({metadata.get('fastnst.style_name', '')})"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify(
    path: str | Path,
    net: StyleNetwork,
    sizes: Sequence[tuple[int, int, int]] = VERIFY_SIZES,
    source: str | Path | None = None,
) -> dict[str, float]:
    """Max |onnxruntime - PyTorch| per input size ``(batch, height, width)`` on random images.

    Raises:
        ExportError: naming ``source`` (default ``path``), if either output holds a NaN or an
            infinity (a NaN difference would compare as within any tolerance).
    """

    session = open_session(path)
    # Optional inputs (backed by a default) are listed among the overridable initializers.
    inputs = [*session.get_inputs(), *session.get_overridable_initializers()]
    maps = any(x.name == "style_weights" and len(x.shape) == 4 for x in inputs)
    gen = torch.Generator().manual_seed(0)
    errors: dict[str, float] = {}
    for i, (n, h, w) in enumerate(sizes):
        # No side below the graph's smallest (net.min_side); + 1 keeps the smallest check an odd size, as 9x13 is.
        h, w = max(h, net.min_side + 1), max(w, net.min_side + 1)
        image = torch.rand(n, 3, h, w, generator=gen)
        condition = verify_condition(net.num_styles, i, gen, maps)
        with torch.no_grad():
            expected = net(image, **condition).numpy()
        feed = {"image": image.numpy(), **{k: v.numpy() for k, v in condition.items()}}
        got = session.run(["stylized"], feed)[0].astype(np.float32)
        for who, output in (("PyTorch", expected), ("onnxruntime", got)):
            if not np.isfinite(output).all():
                raise ExportError(
                    f"{source or path}: the network's {who} output is not finite (NaN or inf) on a {n}x{h}x{w} "
                    "image; nothing written"
                )
        errors[f"{n}x{h}x{w}"] = float(np.abs(got - expected).max())
    return errors


def verify_condition(num_styles: int, i: int, gen: torch.Generator, maps: bool = False) -> dict[str, torch.Tensor]:
    """The conditional inputs of the ``i``-th verification: each style one-hot in turn at full strength,
    every third check a random mixture at a random strength (none for an unconditional network). With
    ``maps``, the weights are ``(1, S, 1, 1)`` maps, and the mixtures random ``(1, S, 5, 7)`` maps."""
    if num_styles == 0:
        return {}
    if i % 3 == 2:
        shape = (1, num_styles, 5, 7) if maps else (1, num_styles)
        return {"style_weights": torch.rand(*shape, generator=gen) + 0.1, "strength": torch.rand(1, generator=gen)}
    one_hot = torch.zeros(1, num_styles)
    one_hot[0, (i - i // 3) % num_styles] = 1.0
    return {"style_weights": one_hot[..., None, None] if maps else one_hot, "strength": torch.ones(1)}


def check_finite_weights(net: nn.Module, source: str | Path) -> None:
    """Refuse a network with a NaN or infinite weight (a diverged run), naming the first such tensor."""
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ExportError(
                f"{source}: weight {name} is not finite (NaN or inf): the run diverged; "
                "export an earlier checkpoint; nothing written"
            )


def check_output(output: str | Path, checkpoint: str | Path | None = None) -> None:
    """Refuse, before any work, an output that is the checkpoint, a folder, a photo, video or checkpoint name,
    or an existing file that is not ONNX."""
    output = Path(output)
    refuse_overwrite(output, [("checkpoint being exported", checkpoint)], error=ExportError)
    if output.is_dir():
        raise ExportError(f"-o {output}: is a folder; give the .onnx file to write")
    # Other names are allowed (model.bin), but not those infer and train read as something else.
    if output.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | {".ckpt", ".pth", ".pt"}:
        raise ExportError(f"-o {output}: a {output.suffix} name is not for a model; give a .onnx file to write")
    if output.exists() and output.suffix.lower() != ".onnx" and not _is_onnx(output):
        raise ExportError(
            f"-o {output}: exists and is not an ONNX model; it is not replaced, choose another -o (a .onnx file)"
        )


def _is_onnx(path: Path) -> bool:
    """Whether ``path`` holds an ONNX model (a protobuf starting with ir_version, with a graph of nodes)."""
    import onnx

    with path.open("rb") as f:
        if f.read(1) != b"\x08":  # field 1 (ir_version), varint: how every ONNX file starts; cheap on big files
            return False
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # any parse error: not ONNX
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _check_settings(precision: str, opset: int, margin: int | None = None) -> None:
    if margin is not None:
        try:
            check_margin(margin)
        except ValueError as e:
            raise ExportError(str(e)) from None
    if precision not in PRECISIONS:
        raise ExportError(f"precision={precision}: expected one of {', '.join(PRECISIONS)}")
    if opset < 17:
        raise ExportError(f"opset={opset}: fastnst exports opset 17 or newer")
    import onnx

    if opset > onnx.defs.onnx_opset_version():
        raise ExportError(f"opset={opset}: the installed onnx knows opsets up to {onnx.defs.onnx_opset_version()}")


def check_checkpoint(checkpoint: str | Path) -> None:
    """Refuse, before any work, a checkpoint that is missing, a folder or an exported model."""
    path = Path(checkpoint)
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; give the .ckpt file train.py wrote (its last.ckpt, for example)")
    if not path.is_file():
        raise ExportError(f"{path}: no such checkpoint")
    try:
        exported = _is_onnx(path)
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror or e})") from None
    if exported:
        raise ExportError(f"{path}: is an exported ONNX model, not a training checkpoint (a .ckpt train.py wrote)")


def export_onnx(
    checkpoint: str | Path,
    output: str | Path,
    precision: str = "fp32",
    opset: int = OPSET,
    check: bool = True,
    calibration_images: Sequence[str | Path] | None = None,
    averaged: bool = True,
    style_maps: bool = False,
    margin: int | None = None,
) -> ExportReport:
    """Export a checkpoint to ONNX, verify it against PyTorch, and write it atomically.

    Args:
        checkpoint: a training checkpoint (``.ckpt``).
        output: the ``.onnx`` file to write.
        precision: ``fp32``, ``fp16`` (half the size; instance-norm math kept in fp32) or
            ``int8`` (static quantization of the convolutions, calibrated on photos).
        opset: ONNX opset (>= 17).
        check: verify onnxruntime against PyTorch at several sizes; raise if beyond tolerance.
        calibration_images: photos for int8 calibration (default: the embedded sample photos).
        averaged: the moving average of the weights of a run with ``trainer.ema_decay`` (else the
            trained weights); without one, the weights.
        style_maps: a conditional network's ``style_weights`` input as a per-pixel map (masks: one
            style here, another there, in one pass), at some cost per pixel (docs/benchmarks.md).
        margin: the replicated border ``Stylizer`` adds around each pass for this network, recorded
            as ``fastnst.margin`` (``None``: none recorded, ``Stylizer`` uses 16).

    Raises:
        ExportError: unreadable checkpoint, bad settings, or a model that does not verify.
    """
    _check_settings(precision, opset, margin)  # before the checkpoint is read
    check_checkpoint(checkpoint)
    check_output(output, checkpoint)
    net, hparams = load_network(checkpoint, averaged)
    return export_network(
        net,
        hparams,
        output,
        precision,
        opset,
        check,
        calibration_images,
        source=checkpoint,
        style_maps=style_maps,
        margin=margin,
    )


def export_network(
    net: StyleNetwork,
    hparams: dict,
    output: str | Path,
    precision: str = "fp32",
    opset: int = OPSET,
    check: bool = True,
    calibration_images: Sequence[str | Path] | None = None,
    source: str | Path | None = None,
    style_maps: bool = False,
    margin: int | None = None,
) -> ExportReport:
    """Export a network (not a checkpoint) as :func:`export_onnx` does; ``hparams`` fill the metadata.

    ``source`` (default: ``output``) names the network in errors, e.g. the checkpoint it came from.
    """
    _check_settings(precision, opset, margin)
    if margin is not None:  # written as fastnst.margin by _metadata, and kept out of training_settings
        hparams = {**hparams, "margin": margin}
    output = Path(output)
    check_output(output)
    source = source if source is not None else output
    net = net.eval()
    check_finite_weights(net, source)  # even with check=False: such a network only outputs NaN
    stats_net = StatsTransformerNet(net, half=precision == "fp16", style_maps=style_maps)
    try:
        with new_folders(output.parent):  # a failed or interrupted export leaves no empty folders
            return _export(net, hparams, stats_net, output, precision, opset, check, calibration_images, source)
    except OSError as e:  # an unwritable folder or a full disk: nothing is left half-written
        raise ExportError(f"{output}: cannot write ({e})") from e


def _export(
    net: StyleNetwork,
    hparams: dict,
    stats_net: StatsTransformerNet,
    output: Path,
    precision: str,
    opset: int,
    check: bool,
    calibration_images: Sequence[str | Path] | None,
    source: str | Path,
) -> ExportReport:
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as tmp:
        fp32_path = Path(tmp) / "model.onnx"
        _torch_export(stats_net, fp32_path, opset)
        metadata = _metadata(hparams, precision, stats_net.stats_size)
        if stats_net.style_maps:  # a rank-4 style_weights: format 2, which older fastnst refuses by name
            metadata[STYLE_MAPS_KEY] = "true"
            metadata[FORMAT_KEY] = "2"
        _finish_graph(fp32_path, stats_net.stats_size, metadata, net.num_styles, stats_net.style_maps)
        final = fp32_path
        if precision == "int8":
            final = Path(tmp) / "int8.onnx"
            quantize_int8(fp32_path, final, calibration_images)
        errors = verify(final, net, source=source) if check else {}
        worst = max(errors.values(), default=0.0)
        if check and not worst <= TOLERANCE[precision]:
            raise ExportError(
                f"{output}: onnxruntime differs from PyTorch by {worst:.3g} (> {TOLERANCE[precision]} for "
                f"{precision}) at sizes {errors}; nothing written"
            )
        mean = _mean_error(final, net) if check else 0.0
        os.replace(final, output)
    return ExportReport(output, precision, output.stat().st_size, worst, mean, errors, verified=check)


def _mean_error(path: Path, net: StyleNetwork) -> float:
    """Mean |onnx - torch| on a real photo (random noise overstates quantization error)."""

    from fastnst.nn.images import load_image
    from fastnst.photos import sample_photos_dir

    image = load_image(sample_photos_dir() / "chelsea.jpg", size=256)
    with torch.no_grad():
        expected = net(image).numpy()
    session = open_session(path)
    got = session.run(["stylized"], {"image": image.numpy()})[0]
    return float(np.abs(got.astype(np.float32) - expected).mean())


def quantize_int8(src: Path, dst: Path, calibration_images: Sequence[str | Path] | None = None) -> None:
    """Static int8 quantization (QDQ) of the convolutions, calibrated on a few photos."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from fastnst.nn.images import load_image
    from fastnst.photos import find_images, sample_photos_dir

    files = [Path(p) for p in calibration_images] if calibration_images else find_images(sample_photos_dir())

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"image": load_image(f, size=256).numpy()} for f in files])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    quantize_static(
        str(src),
        str(dst),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv"],
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )
