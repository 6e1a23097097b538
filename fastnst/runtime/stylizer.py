"""Stylize images with an exported fastnst ONNX model: numpy, Pillow and onnxruntime only (no torch).

    from fastnst import Stylizer
    stylized = Stylizer("starry_night.onnx")(Image.open("photo.jpg"))

Images whose estimated memory exceeds a budget are stylized in overlapping tiles with
feathered blending (see ``Stylizer``'s ``tile_size`` and ``memory_budget``). Instance norm
would normalise each tile with its own statistics and leave visible seams; instead the
statistics of every instance norm are computed once from the whole image at a lower
resolution and given to every tile (the model's ``norm_stats`` input), so all tiles are
normalised alike.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fastnst.errors import FastNSTError, one_line
from fastnst.runtime.imageio import fit_long_side, to_float, to_uint8
from fastnst.runtime.masks import crop_map, load_mask, map_size, pad_map, parse_mask_spec, style_map
from fastnst.runtime.onnx_contract import (
    FORMAT_KEY,
    STRENGTH_KEY,
    STYLE_MAPS_KEY,
    STYLE_NAME_KEY,
    check_margin,
    format_problem,
    model_margin,
    parse_style_mix,
    safe_name,
    style_names,
)

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
MIN_SIDE = 16  # the exported graph accepts H, W >= 4 x (dilation + 1): 8, or up to 16 for model.dilation <= 3
GIB = 2**30
# Peak memory of one onnxruntime pass per input pixel at width 1.0, rounded up from CPU measurements at
# 512-2048 px (fp32 and fp16 alike: 1164-1345 B/px for Johnson's network, 181-199 for the light one),
# numpy buffers included; see docs/benchmarks.md. A width scales the channels, hence the memory.
BYTES_PER_PIXEL = {"johnson": 1400, "light": 210, "light_aa": 230}  # light_aa: estimated, light + 10%
MEMORY_BUDGET = {"cpu": 2 * GIB, "gpu": 6 * GIB}  # default peak memory of one pass


class ModelError(FastNSTError):
    """A model file that cannot be used, or a device that cannot run it."""


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for ``device``; an explicit device that is missing is an error.

    ``auto`` prefers CUDA, then CPU. TensorRT builds an engine for every new input size,
    so it is used only when asked for.
    """
    import onnxruntime as ort

    if device not in DEVICES:
        raise ModelError(f"--device {device}: expected one of {', '.join(DEVICES)}")
    available = ort.get_available_providers()
    if device == "auto":
        return [p for p in (_PROVIDERS["cuda"], _PROVIDERS["cpu"]) if p in available]
    wanted = _PROVIDERS[device]
    if wanted not in available:
        hint = " (install onnxruntime-gpu in place of onnxruntime: see the README)" if device != "cpu" else ""
        raise ModelError(
            f"--device {device}: onnxruntime has no {wanted} here{hint}; available: {', '.join(available)}"
        )
    # TensorRT and CUDA fall back to CUDA/CPU for the few nodes they do not take.
    chain = {"tensorrt": ["tensorrt", "cuda", "cpu"], "cuda": ["cuda", "cpu"], "cpu": ["cpu"]}[device]
    return [_PROVIDERS[d] for d in chain if _PROVIDERS[d] in available]


# -- colour and blending ---------------------------------------------------------

RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR).astype(np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` RGB in [0, 1] -> YCbCr (BT.601, Cb/Cr centred on 0)."""
    return rgb @ RGB_TO_YCBCR.T


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`."""
    return ycc @ YCBCR_TO_RGB.T


def preserve_color(stylized: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """The luminance of ``stylized`` with the chroma (Cb, Cr) of ``photo`` (Gatys et al. 2016)."""
    y = rgb_to_ycbcr(stylized)[..., :1]
    cbcr = rgb_to_ycbcr(photo)[..., 1:]
    return np.clip(ycbcr_to_rgb(np.concatenate([y, cbcr], axis=-1)), 0.0, 1.0)


def blend(stylized: np.ndarray, photo: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` 1 = fully stylized, 0 = the photo."""
    strength = float(strength)  # a numpy scalar or 0-d array would change the result's dtype
    if strength >= 1.0:
        return stylized
    return strength * stylized + (1.0 - strength) * photo


def _feather(spans: list[tuple[int, int]], i: int) -> np.ndarray:
    """1-D blending weights of tile ``i``: linear ramps over the parts it shares with its neighbours."""
    start, end = spans[i]
    w = np.ones(end - start, np.float32)
    head = spans[i - 1][1] - start if i > 0 else 0  # overlap with the previous tile
    tail = end - spans[i + 1][0] if i + 1 < len(spans) else 0  # overlap with the next tile
    if head > 0:
        w[:head] = (np.arange(head, dtype=np.float32) + 0.5) / head
    if tail > 0:
        w[-tail:] = np.minimum(w[-tail:], ((np.arange(tail, dtype=np.float32) + 0.5) / tail)[::-1])
    return w


def tile_spans(size: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, end)`` of tiles covering ``size`` px, about ``tile`` px each, overlapping >= ``overlap`` px.

    Starts are multiples of 4: the network downsamples twice by 2, so a tile cut elsewhere
    would see a shifted sampling grid and stylize its overlap differently from its neighbour.
    The last tile ends at ``size`` (up to 3 px longer than ``tile``).
    """
    if size <= tile + 3:
        return [(0, size)]
    n = math.ceil((size - overlap) / (tile - overlap - 4))
    starts = list(dict.fromkeys(i * (size - tile) // (n - 1) // 4 * 4 for i in range(n)))  # integers: exact
    return [(s, min(s + tile, size)) for s in starts[:-1]] + [(starts[-1], size)]


# -- the model -------------------------------------------------------------------


def bytes_per_pixel(metadata: dict[str, str]) -> float:
    """Estimated peak memory of one pass per input pixel, from the model's architecture and width metadata.

    A model of unknown architecture counts as the largest known network; the width (data from the file)
    is clamped to [1/8, 8] so that no value makes the estimate meaningless.
    """
    base = BYTES_PER_PIXEL.get(metadata.get("fastnst.architecture", ""), max(BYTES_PER_PIXEL.values()))
    try:
        width = float(metadata.get("fastnst.width", "1"))
    except ValueError:
        width = 1.0
    return base * (min(max(width, 0.125), 8.0) if math.isfinite(width) else 1.0)


def check_sizes(max_size: int | None, tile_size: int | None, overlap: int, margin: int | None) -> None:
    """Refuse sizes that make no sense (a non-positive max_size would shrink every image to 1x1)."""
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size={max_size}: expected a positive number of pixels (None: keep the size)")
    if overlap < 0:
        raise ValueError(f"overlap={overlap}: expected a number of pixels >= 0")
    if tile_size is not None and tile_size < max(4 * overlap, MIN_SIDE):
        raise ValueError(f"tile_size={tile_size} must be at least 4 x overlap ({overlap}) and {MIN_SIDE}")
    if margin is not None:  # None: the model's own (read once the model is open)
        check_margin(margin)


def open_session(path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """An onnxruntime session on ``device`` (``threads``: its CPU threads, ``None``: onnxruntime's choice,
    one per core); a file onnxruntime cannot load is a one-line ModelError."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the optional inputs are initializers by design: no warning
    if threads is not None:
        options.intra_op_num_threads = threads
    providers = providers_for(device)
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0][:200]})") from e
    if device != "auto" and session.get_providers()[0] != providers[0]:
        # onnxruntime silently falls back when a provider fails to load (e.g. missing CUDA libraries).
        raise ModelError(f"--device {device}: {providers[0]} failed to load; onnxruntime fell back to CPU")
    return session


def _check_contract(path: Path, session: Any, metadata: dict[str, str]) -> None:
    """A fastnst model of a format this fastnst reads: metadata, input and output names, element types."""
    # Inputs with a default value are listed by onnxruntime as overridable initializers.
    inputs = {i.name for i in [*session.get_inputs(), *session.get_overridable_initializers()]}
    outputs = {o.name for o in session.get_outputs()}
    if FORMAT_KEY not in metadata or not {"image", "norm_stats"} <= inputs or "stylized" not in outputs:
        raise ModelError(
            f"{path}: not a fastnst model (expected fastnst.* metadata, inputs image/norm_stats and output "
            f"stylized; found inputs {sorted(inputs)}, outputs {sorted(outputs)})"
        )
    problem = format_problem(metadata[FORMAT_KEY])
    if problem is not None:
        raise ModelError(f"{path}: {problem}")
    image_input = next(i for i in session.get_inputs() if i.name == "image")
    if image_input.type != "tensor(float)" or len(image_input.shape) != 4 or image_input.shape[1] != 3:
        raise ModelError(
            f"{path}: input 'image' is {image_input.type} {image_input.shape}; "
            "a fastnst model takes float32 (N, 3, H, W)"
        )


@dataclass
class Result:
    """One stylized image and how it was made."""

    image: np.ndarray  # float32 (H, W, 3) in [0, 1]
    seconds: float
    tiles: int


def _mix_name(mix: Mapping[str, float]) -> str:
    """A style, or a mixture by its styles in name order with their percentages: another mixture of the same
    styles gets another name (``wave=0.7,udnie=0.3`` -> ``udnie30+wave70``)."""
    if len(mix) == 1:
        return next(iter(mix))
    return "+".join(f"{name}{round(100 * weight)}" for name, weight in sorted(mix.items()))


class Stylizer:
    """Stylize images with a fastnst ONNX model.

    Args:
        model: path of a ``.onnx`` file written by ``fastnst export`` or by training, or a shipped style's name.
        style: for a model of several styles (:attr:`style_names`): one of them (``"wave"``), a
            mixture (``"wave=0.7,udnie=0.3"`` or ``{"wave": 0.7, "udnie": 0.3}``, normalised to sum
            to 1); ``None``: the model's own style (``init=`` runs: the painting added to the base), else the
            first.
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``tensorrt``.
        max_size: downscale inputs so their long side is at most this (``None``: keep the size).
        tile_size: largest side processed in one pass; larger images are tiled. ``None`` (the
            default): an image, or a batch of equal-size images, goes through in one pass whenever
            its estimated peak memory (:func:`bytes_per_pixel` of the model x pixels) fits
            ``memory_budget``; only larger ones are tiled, in the largest tiles that fit. One pass
            is faster than tiles (no overlaps, no statistics pass: 1080x1080 with the light network,
            0.33 s against 1.71 s in 1024-px tiles on a 2-core CPU; docs/benchmarks.md), so
            tiling is kept for what would not fit in memory.
        memory_budget: peak bytes of one pass when ``tile_size`` is ``None``; ``None``: 2 GiB on
            CPU (the light network untiled up to about 10 megapixels, Johnson's up to 1.5),
            6 GiB on GPU.
        overlap: overlap between tiles, in pixels (blended with linear feathering).
        stats_size: long side of the low-resolution copy whose instance-norm statistics are
            given to every tile.
        margin: pixels of replicated border added around every pass and cropped off after, so
            the network's own edge effects (a model can learn a band a few pixels wide along
            one border) fall outside the picture (a mirrored border leaves a line at the mirror
            axis instead). A multiple of 4 keeps the sampling grid. ``None``: the model's own
            (``fastnst export --margin``), else 16.
        masks: for a model exported with ``--style-maps``: ``(mask, style)`` pairs laid over ``style``
            in order, each mask (an image file, PIL image or array; white = its style) stretched
            over the image; ``"sky.png:wave"`` strings are accepted too. One pass, whatever the count.
        threads: CPU threads of the session (``None``: one per core, onnxruntime's default).

    Call it with a PIL image (returns a PIL image) or an ``(H, W, 3)`` array (returns the
    same dtype: uint8, or float in [0, 1]).
    """

    def __init__(
        self,
        model: str | Path,
        style: str | Mapping[str, float] | None = None,
        device: str = "auto",
        max_size: int | None = None,
        tile_size: int | None = None,
        overlap: int = 128,
        stats_size: int = 1024,
        margin: int | None = None,
        memory_budget: int | None = None,
        masks: Sequence[str | tuple[Any, str | Mapping[str, float]]] | None = None,
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        from fastnst.styles import resolve_model

        check_sizes(max_size, tile_size, overlap, margin)
        self.path = resolve_model(model)  # a file that exists, else a shipped style's name (starry_night)
        if not self.path.is_file():
            raise ModelError(f"{self.path}: no such model file")
        self.session = open_session(self.path, device, threads)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        _check_contract(self.path, self.session, self.metadata)
        try:
            self.style_names = style_names(self.metadata)  # [] for a one-style model
            self.style_mix = self._choose(style)
            self.mask_layers = self._masks(masks or [])
            self.margin = model_margin(self.metadata) if margin is None else margin
        except ValueError as e:
            raise ModelError(f"{self.path}: {e}") from None
        self.providers = self.session.get_providers()
        on_gpu = self.providers[0] != "CPUExecutionProvider"
        self.max_size = max_size
        self.overlap = overlap
        self.stats_size = stats_size
        if memory_budget is not None and memory_budget < 1:
            raise ValueError(f"memory_budget={memory_budget}: expected a positive number of bytes")
        self.memory_budget = memory_budget or MEMORY_BUDGET["gpu" if on_gpu else "cpu"]
        self.bytes_per_pixel = bytes_per_pixel(self.metadata)
        self.fixed_tiles = tile_size is not None  # an explicit tile size: tile by side, as asked
        self.tile_size = tile_size if tile_size is not None else self._budget_tile()
        check_sizes(max_size, self.tile_size, overlap, self.margin)
        # onnxruntime logs a failed run on stderr besides raising; the exception is reported instead.
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4

    def _budget_tile(self) -> int:
        """The side of the largest square pass (margins included) that fits the memory budget."""
        side = int(math.sqrt(self.memory_budget / self.bytes_per_pixel)) - 2 * self.margin
        return max(side // 4 * 4, 4 * self.overlap, MIN_SIDE)

    def fits(self, height: int, width: int, count: int = 1) -> bool:
        """Whether ``count`` images of ``height`` x ``width`` go through in one pass, untiled."""
        if self.fixed_tiles:
            return max(height, width) <= self.tile_size
        pixels = count * (height + 2 * self.margin) * (width + 2 * self.margin)
        return pixels * self.bytes_per_pixel <= self.memory_budget

    def with_style(self, style: str | Mapping[str, float]) -> Stylizer:
        """The same model with another style or mixture chosen; shares this one's onnxruntime session."""
        other = copy.copy(self)
        try:
            other.style_mix = self._choose(style)
        except ValueError as e:
            raise ModelError(f"{self.path}: {e}") from None
        return other

    def _choose(self, style: str | Mapping[str, float] | None) -> dict[str, float]:
        """The chosen ``{style: weight}`` ({} for a one-style model, which has nothing to choose)."""
        if not self.style_names:
            own = self.metadata.get(STYLE_NAME_KEY, "")
            if style is not None and style != own:
                raise ValueError(
                    f"style {style!r}: this model has one style ({own or self.path.stem}), so there is none to choose"
                )
            return {}
        if style is None:  # the model's own style when it names one of its styles (a painting added to a base)
            own = self.metadata.get(STYLE_NAME_KEY, "")
            style = own if own in self.style_names else self.style_names[0]
        return parse_style_mix(style, self.style_names)

    def _masks(self, masks: Sequence[str | tuple[Any, str | Mapping[str, float]]]) -> list[tuple[np.ndarray, dict]]:
        """``(mask array, {style: weight})`` per mask, checked: the model must take style maps."""
        if masks and not self.style_maps:
            raise ValueError(
                "this model takes no style maps (masks); export its checkpoint with fastnst export --style-maps "
                "(the shipped base by name: fastnst export six_styles --style-maps)"
            )
        layers = []
        for item in masks:
            mask, style = parse_mask_spec(item) if isinstance(item, str) else item
            layers.append((load_mask(mask), parse_style_mix(style, self.style_names)))
        return layers

    @property
    def style_maps(self) -> bool:
        """Whether the model takes per-pixel style weights (exported with ``--style-maps``), for masks."""
        return self.conditional and self.metadata.get(STYLE_MAPS_KEY) == "true"

    def _map(self, height: int, width: int) -> np.ndarray | None:
        """The style map of an image of this size (``None`` without masks)."""
        if not self.mask_layers:
            return None
        return style_map(self.style_mix, self.mask_layers, self.style_names, map_size(height, width))

    @property
    def conditional(self) -> bool:
        """Whether the model takes ``style_weights`` (a model of several styles, or trained with a strength)."""
        return bool(self.style_names)

    @property
    def trained_strength(self) -> bool:
        """Whether the model was trained with a strength input (``model.strength=true``); else
        ``strength`` is a blend of the stylized pixels with the photo's."""
        return self.conditional and self.metadata.get(STRENGTH_KEY) == "true"

    @property
    def style(self) -> str:
        """The style name, made safe to use in a file name: the chosen style of a several-style model
        (``udnie30_wave70`` for a mixture: names in order, percentages), else the name recorded in the model
        (else the model's file name).

        The metadata is data from a file that anyone can write: it never becomes a path as it is.
        """
        name = _mix_name(self.style_mix) if self.style_mix else self.metadata.get(STYLE_NAME_KEY, "")
        for _, mix in self.mask_layers:  # masks: their styles too (udnie_wave: wave over udnie)
            name += "_" + _mix_name(mix)
        return safe_name(name, fallback=self.path.stem)

    def _conditions(self, strength: float, weights_map: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The conditional inputs of a pass ({} for a one-style model); ``weights_map``: the pass's
        style map (masks), as its image is padded by the margin."""
        if not self.conditional:
            return {}
        if weights_map is not None:
            weights = pad_map(weights_map, self.margin).astype(np.float32)
        else:
            weights = np.array([[self.style_mix.get(n, 0.0) for n in self.style_names]], np.float32)
            weights = weights[..., None, None] if self.style_maps else weights
        return {"style_weights": weights, "strength": np.array([strength], np.float32)}

    # -- running the graph --

    def _run(
        self,
        batch: np.ndarray,
        stats: np.ndarray | None = None,
        strength: float = 1.0,
        weights_map: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(N, H, W, 3)`` float -> stylized ``(N, H, W, 3)`` and the instance-norm statistics."""
        h, w = batch.shape[1:3]
        x = batch.transpose(0, 3, 1, 2)
        m = self.margin
        if m:  # replicated border, cropped off below: edge effects land outside the picture
            x = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)), mode="edge")
        x = np.ascontiguousarray(x, dtype=np.float32)
        pad_h, pad_w = max(0, MIN_SIDE - h - 2 * m), max(0, MIN_SIDE - w - 2 * m)
        if pad_h or pad_w:  # the graph needs H, W >= MIN_SIDE
            x = np.pad(x, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)), mode="edge")
        feeds: dict[str, Any] = {"image": x, **self._conditions(strength, weights_map)}
        if stats is not None:
            feeds["norm_stats"] = stats.astype(np.float32)
            feeds["use_norm_stats"] = np.ones(1, np.float32)
        try:
            out, out_stats = self.session.run(["stylized", "norm_stats_out"], feeds, self._run_options)
        except Exception as e:  # onnxruntime's exception types have no common base; only the run is inside
            raise ModelError(f"{self.path}: onnxruntime failed on a {w}x{h} image ({one_line(e)})") from e
        out = out[:, :, m : m + h, m : m + w]
        if not np.isfinite(out).all():  # NaN weights or an overflow: black pixels are not a result
            raise ModelError(
                f"{self.path}: the model's output holds NaN or infinite values (on a {w}x{h} image); "
                "its weights are broken"
            )
        return out.transpose(0, 2, 3, 1), out_stats

    def _stylize_tiled(
        self, image: np.ndarray, strength: float, stats: np.ndarray | None = None
    ) -> tuple[np.ndarray, int, np.ndarray]:
        """Tiles normalised alike: with ``stats`` if given, else with the statistics of the whole image
        computed at a lower resolution (returned either way, as :meth:`stylize_frame` returns them)."""
        h, w = image.shape[:2]
        whole = self._map(h, w)  # masks: each tile gets its part of the map
        low = fit_long_side(image, self.stats_size)
        _, computed = self._run(low[None], stats, strength, self._map(*low.shape[:2]))
        shared = computed if stats is None else stats
        tile, overlap = self.tile_size, self.overlap
        rows, cols = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
        out = np.zeros((h, w, 3), np.float32)
        weight = np.zeros((h, w, 1), np.float32)
        for i, (y0, y1) in enumerate(rows):
            for j, (x0, x1) in enumerate(cols):
                part = None if whole is None else crop_map(whole, y0, y1, x0, x1)
                piece, _ = self._run(image[None, y0:y1, x0:x1], shared, strength, part)
                # Ramps only where a neighbour overlaps: the length of the actual overlap.
                wy = _feather(rows, i)
                wx = _feather(cols, j)
                wt = (wy[:, None] * wx[None, :])[..., None]
                out[y0:y1, x0:x1] += piece[0] * wt
                weight[y0:y1, x0:x1] += wt
        return out / weight, len(rows) * len(cols), computed

    def _finish(self, stylized: np.ndarray, photo: np.ndarray, strength: float, preserve_colors: bool) -> np.ndarray:
        """Colours kept if asked, and the pixel blend for a model without a trained-in strength."""
        if preserve_colors:
            stylized = preserve_color(stylized, photo)
        return stylized if self.trained_strength else blend(stylized, photo, strength)

    def _trained(self, strength: float) -> float:
        """The strength given to the graph: the value asked for when trained in, else 1 (blended after)."""
        if isinstance(strength, np.ndarray) and strength.ndim == 0:  # np.array(0.5), as numpy code gives
            strength = strength.item()
        if isinstance(strength, bool) or not isinstance(strength, numbers.Real):
            raise TypeError(f"strength={strength!r}: expected a number from 0 to 1, not {type(strength).__name__}")
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength={strength}: expected a value from 0 to 1")
        return strength if self.trained_strength else 1.0

    def stylize_frame(
        self,
        image: Image.Image | np.ndarray,
        norm_stats: np.ndarray | None = None,
        strength: float = 1.0,
        preserve_colors: bool = False,
    ) -> tuple[Result, np.ndarray]:
        """Stylize one image normalised with the given instance-norm statistics (``None``: its own), and
        return the statistics computed over it, ``(1, S)``: the means and variances of every instance
        norm, as the graph's ``norm_stats_out`` gives them (a tiled image's from its low-resolution copy).
        Video uses it to smooth the statistics across frames (:mod:`fastnst.runtime.temporal`)."""
        trained = self._trained(strength)
        photo = fit_long_side(to_float(image), self.max_size)
        start = time.perf_counter()
        if self.fits(*photo.shape[:2]):
            out, computed = self._run(photo[None], norm_stats, trained, self._map(*photo.shape[:2]))
            stylized, tiles = out[0], 1
        else:
            stylized, tiles, computed = self._stylize_tiled(photo, trained, norm_stats)
        result = self._finish(stylized, photo, strength, preserve_colors)
        return Result(result, time.perf_counter() - start, tiles), computed[:1]

    def stylize_arrays(
        self, images: Sequence[Image.Image | np.ndarray], strength: float = 1.0, preserve_colors: bool = False
    ) -> list[Result]:
        """Stylize PIL images or ``(H, W, 3)`` arrays (uint8, or float in [0, 1]); equal-size small
        images run as one batch. Results are float ``(H, W, 3)`` in [0, 1].

        ``strength`` (0..1) is the model's trained-in strength when it has one (:attr:`trained_strength`:
        lighter strokes on an intact photo), else a blend of the stylized pixels with the photo's.
        """
        trained = self._trained(strength)
        photos = [fit_long_side(to_float(im), self.max_size) for im in images]
        if len({p.shape for p in photos}) == 1 and self.fits(*photos[0].shape[:2], count=len(photos)):
            start = time.perf_counter()
            stylized, _ = self._run(np.stack(photos), strength=trained, weights_map=self._map(*photos[0].shape[:2]))
            per = (time.perf_counter() - start) / len(photos)
            return [
                Result(self._finish(s, p, strength, preserve_colors), per, 1)
                for s, p in zip(stylized, photos, strict=True)
            ]
        return [self.stylize_frame(p, None, strength, preserve_colors)[0] for p in photos]

    def __call__(
        self, image: Image.Image | np.ndarray, strength: float = 1.0, preserve_colors: bool = False
    ) -> Image.Image | np.ndarray:
        """Stylize one image; returns the same kind of image it was given."""
        result = self.stylize_arrays([image], strength, preserve_colors)[0].image
        if isinstance(image, Image.Image):
            return Image.fromarray(to_uint8(result), "RGB")
        return to_uint8(result) if np.asarray(image).dtype == np.uint8 else result
