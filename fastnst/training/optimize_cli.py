"""``fastnst optimize``: flags and Hydra overrides -> :func:`fastnst.nn.optimize.optimize` -> an image file."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from fastnst.errors import FastNSTError
from fastnst.nn.images import load_image
from fastnst.nn.optimize import (
    OptimizeError,
    Progress,
    Settings,
    largest_size_that_fits,
    load_mask,
    optimize,
    save_image,
    scale_sizes,
    total_iterations,
)
from fastnst.overwrite import cannot_write, refuse_overwrite
from fastnst.progress import Progress as Bar
from fastnst.runtime.infer_cli import Interrupted, stop_on_signals
from fastnst.styles import resolve_style_image

log = logging.getLogger(__name__)


class OptimizeInterrupted(FastNSTError):
    """Ctrl-C or SIGTERM (``signum``) during the optimization: nothing was written."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


# Flags that are shorthands for config keys.
FLAG_KEYS = {
    "size": "size",
    "steps": "steps",
    "optimizer": "optimizer",
    "seed": "seed",
    "device": "device",
    "preserve_color": "preserve_color",
    "style_scale": "style_scale",
    "output_bits": "output_bits",
}


def conf_dir() -> Path:
    """The packaged configs (``fastnst.conf``: the repository's ``conf/``, shipped in the wheel)."""
    from importlib import resources

    path = Path(str(resources.files("fastnst.conf")))
    if not (path / "optimize.yaml").is_file():  # a broken install: the wheel always has it
        raise FastNSTError(f"{path}/optimize.yaml not found: reinstall fastnst")
    return path


def compose(args: argparse.Namespace) -> DictConfig:
    """The configuration: conf/optimize.yaml, the preset, the flags, then the key=value overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from fastnst.training.config import OptimizeConfig, check_override_keys

    overrides = [f"preset={args.preset}"] if args.preset else []
    overrides += [f"{key}={getattr(args, flag)}" for flag, key in FLAG_KEYS.items() if getattr(args, flag) is not None]
    overrides += list(args.overrides)
    check_override_keys(overrides, OptimizeConfig, groups=("preset",))
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose("optimize", overrides=overrides)
    except HydraException as e:
        raise FastNSTError(f"bad setting: {' '.join(str(e).split())}") from e
    # Paths go in as values, not override strings: no quoting rules to learn.
    cfg.content = args.content
    if args.init is not None:
        cfg.init = args.init
    if args.tensorboard is not None:
        cfg.tensorboard = args.tensorboard
    if args.output:
        cfg.output = args.output
    weights = args.style_weight or [1.0] * len(args.style)
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not sum(weights) > 0:
        raise FastNSTError(f"--style-weight {args.style_weight}: expected finite weights >= 0, one of them above 0")
    masks = args.mask or [None] * len(args.style)
    for flag, given in (("--style-weight", args.style_weight), ("--mask", args.mask)):
        if given and len(given) != len(args.style):
            raise FastNSTError(f"{flag} given {len(given)} times for {len(args.style)} --style: one for each style")
    cfg.styles = [{"image": s, "weight": w, "mask": m} for s, w, m in zip(args.style, weights, masks, strict=True)]
    return cfg


def settings_from(cfg: DictConfig) -> Settings:
    """The algorithm's settings, checked against the schema (unknown keys, types, ranges: one line)."""
    from fastnst.training.config import optimize_settings

    return optimize_settings(cfg)


def _inputs(cfg: DictConfig, settings: Settings) -> list[tuple[str, str | Path | None]]:
    """Every file the run reads, as ``(what, path)``: the photo, the styles, the masks, the --init image."""
    inputs: list[tuple[str, str | Path | None]] = [("--content photo", cfg.content)]
    for s in cfg.styles:
        inputs += [("--style image", resolve_style_image(s["image"], "--style")), ("--mask", s.get("mask"))]
    if settings.init not in ("content", "noise"):
        inputs.append(("--init image", settings.init))
    return inputs


def _load_inputs(cfg: DictConfig, settings: Settings) -> tuple[Any, list, list[float], list | None, Any]:
    """The photo, the styles, their weights and masks (or None), and the --init image (or None)."""
    content = load_image(cfg.content)
    styles = [load_image(resolve_style_image(s["image"], "--style")) for s in cfg.styles]
    weights = [float(s.get("weight", 1.0)) for s in cfg.styles]
    masks = None
    if any(s.get("mask") for s in cfg.styles):
        if not all(s.get("mask") for s in cfg.styles):
            raise OptimizeError("styles: give a mask for every style, or for none")
        masks = [load_mask(s["mask"]) for s in cfg.styles]
    init_image = None
    if settings.init not in ("content", "noise"):
        if not Path(settings.init).expanduser().is_file():
            raise OptimizeError(f"--init {settings.init}: no such file (or content, or noise)")
        init_image = load_image(settings.init)
    return content, styles, weights, masks, init_image


def _checked_output(cfg: DictConfig) -> Path:
    """The output path, after checking that there is a photo, a style, and a usable output file name that
    can be written."""
    if not cfg.content:
        raise OptimizeError("content: no photo given (--content photo.jpg)")
    if not cfg.styles:
        raise OptimizeError("styles: no style image given (--style painting.jpg)")
    output = Path(cfg.output)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise OptimizeError(f"output={output}: expected a .png or .jpg file")
    if cfg.output_bits == 16 and output.suffix.lower() != ".png":
        raise OptimizeError(f"output={output}: 16-bit output needs a .png file")
    if (why := cannot_write(output)) is not None:
        raise OptimizeError(f"output={output}: {why}")
    if cfg.tensorboard and (why := cannot_write(Path(cfg.tensorboard) / "events")) is not None:
        raise OptimizeError(f"tensorboard={cfg.tensorboard}: {why}")
    return output


def _summary_writer(cfg: DictConfig) -> Any:
    """A TensorBoard writer when ``tensorboard`` names a folder, else None."""
    if not cfg.tensorboard:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(cfg.tensorboard))


def _progress_callback(bar: Bar, writer: Any, log_every: int) -> Callable[[Progress], None]:
    """Per iteration: the bar's note (size and losses) and, with a writer, the losses and every
    ``log_every``-th image (and each level's last) in TensorBoard."""

    def callback(p: Progress) -> None:
        t = p.terms
        bar.update(
            note=f"{p.size[1]}x{p.size[0]} loss {t['loss']:.4g} "
            f"(content {t['content']:.3g}, style {t['style']:.3g}, tv {t['tv']:.3g})"
        )
        if writer is not None:
            for key, value in t.items():
                writer.add_scalar(f"optimize/{key}", value, p.total_iteration)
            if p.total_iteration % log_every == 0 or p.iteration == p.iterations:
                writer.add_image("optimize/image", p.image[0].clamp(0, 1), p.total_iteration)

    return callback


def _optimize_fitting(
    cfg: DictConfig, settings: Settings, inputs: tuple, callback: Callable[[Progress], None]
) -> torch.Tensor:
    """:func:`optimize` at ``settings.size``; out of GPU memory, find the largest size that fits and
    continue at it (``auto_size_down``) or say which size to ask for."""

    content, styles, weights, masks, init_image = inputs  # as _load_inputs returns them

    def attempt(size: int, steps: int | None = None, cb: Any = callback) -> torch.Tensor:
        run_settings = dataclasses.replace(settings, size=size, **({"steps": steps, "scales": 1} if steps else {}))
        return optimize(content, styles, run_settings, weights, masks, init_image, cb)

    try:
        return attempt(settings.size)
    except torch.cuda.OutOfMemoryError:
        fits = largest_size_that_fits(lambda s: attempt(s, steps=1, cb=None), settings.size)
    except RuntimeError as e:  # the CPU's allocator: not probed for a size (that could swap the machine)
        if "can't allocate memory" not in str(e) and "not enough memory" not in str(e):  # Linux/macOS, Windows
            raise
        asked = re.search(r"allocate (\d+) bytes", str(e))
        amount = f" (one tensor of {int(asked[1]) / 1e9:.1f} GB)" if asked else ""
        raise OptimizeError(
            f"size={settings.size}, style_scale={settings.style_scale}: out of memory{amount}; "
            "ask for a smaller --size or --style-scale"
        ) from e
    if fits is None:
        raise OptimizeError("out of GPU memory even at 64 px; use device=cpu")
    if not cfg.auto_size_down:
        raise OptimizeError(
            f"size={settings.size}: out of GPU memory; the largest size that fits is about {fits} px "
            f"(--size {fits}, or auto_size_down=true)"
        )
    log.warning("size=%d does not fit in GPU memory: continuing at %d px", settings.size, fits)
    return attempt(fits)


def run(cfg: DictConfig, quiet: bool = False, overwrite: bool = False) -> Path:
    """Load the images, optimize, write the result; returns its path."""
    settings = settings_from(cfg)
    output = _checked_output(cfg)
    refuse_overwrite(output, _inputs(cfg, settings), error=OptimizeError)  # before any work
    if output.exists() and not overwrite:
        raise OptimizeError(f"output={output}: exists; choose another -o, or --overwrite to replace it")
    inputs = _load_inputs(cfg, settings)
    writer = _summary_writer(cfg)
    start = time.perf_counter()
    total = total_iterations(settings)
    levels = len(scale_sizes(settings))
    if settings.scale_steps is not None and levels < len(settings.scale_steps):
        log.warning(
            "scale_steps=%s: %d of its levels are below 64 px at size=%d and dropped; %d iterations in all",
            list(settings.scale_steps), len(settings.scale_steps) - levels, settings.size, total,
        )  # fmt: skip
    bar = Bar(total, "optimize", enabled=not quiet)
    try:
        with stop_on_signals(), bar:
            result = _optimize_fitting(cfg, settings, inputs, _progress_callback(bar, writer, cfg.log_every))
    except Interrupted as e:
        message = f"interrupted by {e} at iteration {bar.count} of {total}; {output} not written"
        raise OptimizeInterrupted(message, e.signum) from e
    finally:
        if writer is not None:
            writer.close()
    save_image(result, output, bits=cfg.output_bits)
    log.info("wrote %s (%dx%d) in %.1f s", output, result.shape[-1], result.shape[-2], time.perf_counter() - start)
    return output


def main(args: argparse.Namespace) -> int:
    """Entry point of ``fastnst optimize``."""
    try:
        output = run(compose(args), quiet=args.quiet, overwrite=args.overwrite)
    except OptimizeInterrupted as e:
        print(e, file=sys.stderr)
        return 128 + e.signum
    print(output)
    return 0
