"""Per-image style transfer by optimization (Gatys et al. 2016), on fastnst's VGG19 and losses.

The image itself is optimized to minimise :class:`~fastnst.nn.losses.PerceptualLoss`
(content + Gram style + total variation), coarse to fine: a few hundred iterations at a
small size, then the result is upsampled and optimized further, up to the requested size.
L-BFGS by default, or Adam. The image is kept in [0, 1] by clamping between iterations, never
inside the L-BFGS closure (that breaks its line search).

Options: several style images with blend weights, the size at which the styles are seen
(``style_scale``), colour preservation (luminance-only transfer, or colour matching of the
styles to the photo), spatial masks that give each style its own region, layers and
weights by name, max or average pooling.
"""

# setting() (fastnst.schema) returns a dataclasses.field(); ruff sees only a call in a default:
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from fastnst.errors import FastNSTError
from fastnst.nn.images import load_image
from fastnst.nn.losses import PerceptualLoss
from fastnst.nn.precision import autocast_dtype
from fastnst.nn.vgg import vgg19
from fastnst.runtime.imageio import save_image as write_image
from fastnst.runtime.imageio import to_uint8, to_uint16
from fastnst.runtime.stylizer import RGB_TO_YCBCR, YCBCR_TO_RGB
from fastnst.schema import check_ranges, setting

log = logging.getLogger(__name__)

COLOR_MODES = ("none", "luminance", "match")


class OptimizeError(FastNSTError):
    """Bad settings or inputs for ``fastnst optimize``."""


@dataclass
class Style:
    """One style image, its blend weight and an optional mask (white = where it applies)."""

    image: str | Path
    weight: float = 1.0
    mask: str | Path | None = None


@dataclass
class Settings:
    """Everything :func:`optimize` needs: the schema of ``conf/optimize.yaml``'s algorithm keys (each
    one's type, default, doc and check; the YAML and its presets give values)."""

    size: int = setting(512, "long edge of the result", min=16, what="a whole number of pixels")
    steps: int = setting(500, "iterations in all, over all scales", min=1)
    scales: int = setting(3, "coarse-to-fine levels (1: single scale)", min=1)
    scale_factor: float = setting(2.0, "size ratio between levels", above=1)
    scale_steps: list[int] | None = setting(None, "iterations per level (default: 15% per coarse level, the rest last)")
    optimizer: str = setting("lbfgs", "the optimizer", choices=("lbfgs", "adam"))
    lr: float | None = setting(
        None, "default: 1.0 for L-BFGS; Adam: 0.02 ([0, 1] units) or 0.02 x 255 (0-255 units, raw losses)", above=0
    )
    lbfgs_history: int = setting(100, "L-BFGS history size", min=1)
    lbfgs_line_search: bool = setting(False, "Strong-Wolfe line search: steadier, about 2x the evaluations")
    bounds: str = setting(
        "project", "project: clamp to [0, 1] between iterations (never inside the closure)", choices=("project", "none")
    )
    init: str = setting("content", "content | noise | a path")
    seed: int = setting(0, "seed of the noise start", min=0)
    style_scale: float = setting(1.0, "styles are seen at style_scale x the current long edge", above=0)
    preserve_color: str = setting("none", "luminance-only transfer, or style colours matched", choices=COLOR_MODES)
    content_layers: dict[str, float] = setting({"relu4_2": 1.0}, "{vgg_layer: weight} of the content term")
    style_layers: dict[str, float] = setting(
        {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0},
        "{vgg_layer: weight} of the style term",
    )
    content_weight: float = setting(1.0, "weight of the content term", min=0)
    style_weight: float = setting(10.0, "weight of the style term", min=0)
    tv_weight: float = setting(0.0, "weight of the total-variation term", min=0)
    normalize: bool = setting(True, "relative losses (fastnst.nn.losses); false: raw Caffe-scale values")
    pooling: str = setting("max", "VGG's pooling", choices=("max", "avg"))
    vgg_weights: str = setting("caffe", "caffe | torchvision | /path/to/weights.pth")
    vgg_convention: str | None = setting(None, "input convention of a weights file (null: from the name)")
    device: str = setting("auto", "auto | cpu | cuda")
    precision: str = setting(
        "auto", "auto: bf16 VGG passes on GPUs and CPUs with native bf16", choices=("auto", "fp32", "bf16", "fp16")
    )

    def check(self) -> None:
        """Raise :class:`OptimizeError` naming the first bad setting."""
        check_ranges(Settings, dataclasses.asdict(self), error=OptimizeError)
        if self.scale_steps is not None and len(self.scale_steps) != self.scales:
            raise OptimizeError(f"scale_steps={self.scale_steps}: needs one number per scale ({self.scales})")


def scale_sizes(settings: Settings) -> list[int]:
    """Long edges of the coarse-to-fine levels, smallest first, ending at ``size``.

    Levels below 64 px are dropped: at that size VGG's deeper layers (after 4-5 poolings) see
    only a few positions, and the style statistics mean little.
    """
    sizes = [round(settings.size / settings.scale_factor**k) for k in range(settings.scales - 1, -1, -1)]
    return [s for s in sizes[:-1] if s >= 64] + [settings.size]


def scale_step_counts(settings: Settings, levels: int) -> list[int]:
    """Iterations per level: ``scale_steps``, or 15% of ``steps`` for each coarse level and the rest
    for the last. Coarse levels only need to lay out the large-scale structure: with more of the
    budget they cost more than they save (measured at 256 and 512 px, python scripts/bench.py optimize)."""
    if settings.scale_steps is not None:
        return list(settings.scale_steps)[-levels:]
    coarse = [max(1, round(0.15 * settings.steps))] * (levels - 1)
    return [*coarse, max(1, settings.steps - sum(coarse))]


def total_iterations(settings: Settings) -> int:
    """The iterations :func:`optimize` runs in all, over every level (at least one per level, so it can
    be more than ``steps``; ``scale_steps`` instead of ``steps`` when set)."""
    return sum(scale_step_counts(settings, len(scale_sizes(settings))))


# -- colour ----------------------------------------------------------------------


def _ycbcr(image: torch.Tensor) -> torch.Tensor:
    m = torch.from_numpy(RGB_TO_YCBCR).to(image)
    return torch.einsum("ij,njhw->nihw", m, image)


def _rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    m = torch.from_numpy(YCBCR_TO_RGB).to(ycbcr)
    return torch.einsum("ij,njhw->nihw", m, ycbcr)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The Y channel of an RGB batch, repeated into 3 channels (a gray RGB image)."""
    return _ycbcr(image)[:, :1].expand(-1, 3, -1, -1).clone()


def with_chroma(image: torch.Tensor, colors: torch.Tensor) -> torch.Tensor:
    """The luminance of ``image`` with the chroma (Cb, Cr) of ``colors`` (same size)."""
    y = _ycbcr(image)[:, :1]
    cbcr = _ycbcr(colors)[:, 1:]
    return _rgb(torch.cat([y, cbcr], dim=1)).clamp(0, 1)


def match_color(style: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Recolour ``style`` so that its pixel mean and covariance equal those of ``target``.

    A linear map ``x -> A (x - mu_s) + mu_t`` with ``A = C_t^(1/2) C_s^(-1/2)`` (Gatys et al. 2017).
    """

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.reshape(3, -1).double()
        mu = flat.mean(1, keepdim=True)
        centred = flat - mu
        return mu, centred @ centred.T / flat.shape[1] + eps * torch.eye(3, dtype=torch.float64)

    def sqrtm(c: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        values, vectors = torch.linalg.eigh(c)
        values = values.clamp_min(eps) ** (-0.5 if inverse else 0.5)
        return vectors @ torch.diag(values) @ vectors.T

    mu_s, cov_s = stats(style[0])
    mu_t, cov_t = stats(target[0])
    a = sqrtm(cov_t) @ sqrtm(cov_s, inverse=True)
    flat = style[0].reshape(3, -1).double()
    out = a @ (flat - mu_s) + mu_t
    return out.reshape_as(style[0]).unsqueeze(0).float().clamp(0, 1)


# -- images ----------------------------------------------------------------------


def resize_long(image: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a ``(N, C, H, W)`` batch so its long edge is ``size`` (bicubic, antialiased when shrinking).

    A tensor-domain resize on purpose, not one of :mod:`fastnst.runtime.imageio`'s rules: it resizes the
    image being optimized and its targets between pyramid levels (float, on the device, upsampling too).
    """
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    if new == (h, w):
        return image
    return F.interpolate(image, size=new, mode="bicubic", align_corners=False, antialias=scale < 1).clamp(0, 1)


def load_mask(path: str | Path) -> torch.Tensor:
    """A mask image as a ``(1, 1, H, W)`` tensor in [0, 1] (white = 1, by luminance)."""
    return luminance(load_image(path))[:, :1]


# -- the loop --------------------------------------------------------------------


@dataclass
class Progress:
    """Passed to the ``callback`` after every iteration."""

    level: int
    levels: int
    size: tuple[int, int]
    iteration: int  # within the level
    iterations: int
    total_iteration: int
    terms: dict[str, float]
    image: torch.Tensor  # the current image (in [0, 1] with bounds=project; do not modify)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise OptimizeError("device=cuda: no CUDA GPU is visible to PyTorch")
    return torch.device(device)


def optimize(
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    settings: Settings,
    style_weights: Sequence[float] | None = None,
    masks: Sequence[torch.Tensor] | None = None,
    init_image: torch.Tensor | None = None,
    callback: Callable[[Progress], None] | None = None,
) -> torch.Tensor:
    """Stylize ``content`` (``(1, 3, H, W)`` RGB [0, 1]) with ``styles``; returns the image in [0, 1].

    Args:
        content: the photo; its aspect ratio is kept, its long edge becomes ``settings.size``.
        styles: style images, any sizes.
        settings: see :class:`Settings`.
        style_weights: blend weights, one per style.
        masks: ``(1, 1, h, w)`` masks, one per style (resized to the photo).
        init_image: the starting image when ``settings.init`` is a path (already loaded).
        callback: called after every iteration with a :class:`Progress`.
    """
    settings.check()
    device = _resolve_device(settings.device)
    amp = autocast_dtype(settings.precision, device)
    torch.manual_seed(settings.seed)
    photo = content.to(device)
    styles = _recoloured_styles([s.to(device) for s in styles], photo, settings.preserve_color)
    loss_fn = _perceptual_loss(settings, device)

    sizes = scale_sizes(settings)
    counts = scale_step_counts(settings, len(sizes))
    image: torch.Tensor | None = None
    done = 0
    for level, (size, iterations) in enumerate(zip(sizes, counts, strict=True)):
        target = _set_level_targets(loss_fn, photo, styles, style_weights, masks, size, settings, amp)
        if image is None:
            image = _initial_image(settings, target, init_image)
        else:  # coarse to fine: continue from the previous level's result
            image = F.interpolate(image, size=target.shape[-2:], mode="bicubic", align_corners=False)
        image = _run_level(image, loss_fn, settings, iterations, amp, device, level, len(sizes), done, callback)
        done += iterations

    assert image is not None
    result = image.detach().clamp(0, 1)
    if settings.preserve_color == "luminance":
        result = with_chroma(result, resize_long(photo, settings.size))
    return result


def _recoloured_styles(styles: list[torch.Tensor], photo: torch.Tensor, preserve_color: str) -> list[torch.Tensor]:
    """The styles as the style term sees them: as given, matched to the photo's colours, or gray."""
    if preserve_color == "match":
        return [match_color(s, photo) for s in styles]
    if preserve_color == "luminance":
        return [luminance(s) for s in styles]
    return styles


def _perceptual_loss(settings: Settings, device: torch.device) -> PerceptualLoss:
    """The objective on a VGG19 holding only the layers with a non-zero weight."""
    content_layers = {k: v for k, v in settings.content_layers.items() if v}
    style_layers = {k: v for k, v in settings.style_layers.items() if v}
    if not style_layers:
        raise OptimizeError("style_layers: every layer weight is 0; at least one style layer is needed")
    vgg = vgg19(
        [*content_layers, *style_layers],
        weights=settings.vgg_weights,
        convention=settings.vgg_convention,
        pooling=settings.pooling,
    ).to(device)
    if device.type == "cuda":
        vgg = vgg.to(memory_format=torch.channels_last)
    return PerceptualLoss(
        vgg,
        content_layers,
        style_layers,
        settings.content_weight,
        settings.style_weight,
        settings.tv_weight,
        settings.normalize,
    )


def _set_level_targets(
    loss_fn: PerceptualLoss,
    photo: torch.Tensor,
    styles: list[torch.Tensor],
    style_weights: Sequence[float] | None,
    masks: Sequence[torch.Tensor] | None,
    size: int,
    settings: Settings,
    amp: torch.dtype | None,
) -> torch.Tensor:
    """Give ``loss_fn`` the content and style targets of the level whose long edge is ``size``;
    returns the content target (the photo at that size, gray with ``preserve_color=luminance``)."""
    target = resize_long(photo, size)
    if settings.preserve_color == "luminance":
        target = luminance(target)
    h, w = target.shape[-2:]
    with torch.autocast(photo.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        loss_fn.set_content(target)
        style_size = max(16, round(size * settings.style_scale))
        loss_fn.set_style(
            [resize_long(s, style_size) for s in styles],
            style_weights,
            None if masks is None else [F.interpolate(m.to(photo.device), size=(h, w), mode="area") for m in masks],
        )
    return target


def _initial_image(settings: Settings, target: torch.Tensor, init_image: torch.Tensor | None) -> torch.Tensor:
    if settings.init == "content":
        return target.clone()
    if settings.init == "noise":
        gen = torch.Generator(device="cpu").manual_seed(settings.seed)
        return torch.rand(target.shape, generator=gen).to(target)
    if init_image is None:
        raise OptimizeError(f"init={settings.init}: expected content, noise, or an image file")
    image = init_image.to(target)
    if settings.preserve_color == "luminance":
        image = luminance(image)
    return F.interpolate(image, size=target.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def _run_level(
    image: torch.Tensor,
    loss_fn: PerceptualLoss,
    settings: Settings,
    iterations: int,
    amp: torch.dtype | None,
    device: torch.device,
    level: int,
    levels: int,
    done: int,
    callback: Callable[[Progress], None] | None,
) -> torch.Tensor:
    """Optimize ``image`` for ``iterations`` iterations at its current size; returns the result."""
    # The variable is the image in [0, 1] units, or in 0-255 units for the raw (unnormalized) losses
    # of the classic presets: with those, L-BFGS without line search diverges on the [0, 1] scale and
    # converges on the 0-255 one (as in jcjohnson/neural-style).
    unit = 1.0 if settings.normalize else 255.0
    pixels = (image.detach() * unit).requires_grad_(True)
    optimizer = _optimizer(pixels, settings, unit)
    closure = _Closure(optimizer, loss_fn, pixels, unit, amp, device)
    h, w = image.shape[-2:]
    for i in range(iterations):
        optimizer.step(closure)
        if settings.bounds == "project":
            # Between iterations, not in the closure: the image stays a valid picture (what is saved
            # is what was scored), and the line search still sees the losses of the points it tried.
            with torch.no_grad():
                pixels.clamp_(0, unit)
        terms = {k: v.item() for k, v in closure.last.items()}
        if not math.isfinite(terms["loss"]):
            raise OptimizeError(f"the loss became {terms['loss']} at iteration {done + i + 1}; lower lr")
        if callback is not None:
            callback(Progress(level, levels, (h, w), i + 1, iterations, done + i + 1, terms, pixels.detach() / unit))
    return pixels.detach() / unit


def _optimizer(pixels: torch.Tensor, settings: Settings, unit: float) -> torch.optim.Optimizer:
    """L-BFGS (one iteration per ``step()``) or Adam on ``pixels``."""
    if settings.optimizer != "lbfgs":  # "adam", the only other choice
        return torch.optim.Adam([pixels], lr=settings.lr or 0.02 * unit)
    return torch.optim.LBFGS(
        [pixels],
        lr=settings.lr or 1.0,
        max_iter=1,  # one iteration per step() call: progress per iteration, history kept across calls
        # The default max_eval (max_iter * 5 // 4 = 1) would leave a line search no evaluation at all.
        max_eval=26,
        history_size=settings.lbfgs_history,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        # Fixed steps (as jcjohnson/neural-style): the same loss per iteration as a Strong-Wolfe
        # search at half the VGG evaluations, measured at 128 px.
        line_search_fn="strong_wolfe" if settings.lbfgs_line_search else None,
    )


@dataclass
class _Closure:
    """The optimizer's closure: one evaluation of the loss and its gradient; ``last`` holds the terms
    of the latest evaluation (an L-BFGS step may evaluate several times)."""

    optimizer: torch.optim.Optimizer
    loss_fn: PerceptualLoss
    pixels: torch.Tensor
    unit: float
    amp: torch.dtype | None
    device: torch.device
    last: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)

    def __call__(self) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        # No clamping here: L-BFGS's line search needs the loss of the image it proposed.
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            terms = self.loss_fn(self.pixels / self.unit)
        terms["loss"].backward()
        self.last = dict(terms)
        return terms["loss"]


# -- memory ----------------------------------------------------------------------


def largest_size_that_fits(
    try_size: Callable[[int], None], size: int, minimum: int = 64, factor: float = 0.85
) -> int | None:
    """The largest long edge, stepping down from ``size`` by ``factor``, for which ``try_size`` does
    not raise ``torch.cuda.OutOfMemoryError``; ``None`` if not even ``minimum`` fits."""
    s = size
    while s >= minimum:
        try:
            try_size(s)
            return s
        except torch.cuda.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            s = int(s * factor) // 8 * 8
    return None


# -- output ----------------------------------------------------------------------


def save_image(image: torch.Tensor, path: str | Path, bits: int = 8) -> None:
    """Write an RGB [0, 1] image atomically: 8-bit in the format of the extension, or 16-bit PNG.

    The writing is :func:`fastnst.runtime.imageio.save_image`'s (16 bits through pypng).
    """
    path = Path(path)
    if bits not in (8, 16):
        raise OptimizeError(f"output_bits={bits}: expected 8 or 16")
    if bits == 16 and path.suffix.lower() != ".png":
        raise OptimizeError(f"{path}: 16-bit output needs a .png file")
    array = image[0].detach().float().permute(1, 2, 0).cpu().numpy()
    write_image(to_uint8(array) if bits == 8 else to_uint16(array), path)
