"""The checks a training run makes before anything heavy starts: one-line errors naming the setting.

Kept apart from :mod:`fastnst.training.trainer` (which builds the Lightning ``Trainer``) so that a bad
setting, a missing ``data.root`` or painting is reported before Lightning is imported (its import alone takes
seconds). The checks of the hardware settings read Lightning's own registries, and so come last.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from fastnst.errors import FastNSTError
from fastnst.nn.checkpoint import read_checkpoint

log = logging.getLogger(__name__)

QUICK_CPU_SETTINGS = "data=sample model=small trainer=cpu"


def training_command() -> str:
    """The command this run was started with, for hints: ``fastnst train`` (whose sys.argv[0] is ``fastnst``,
    fastnst.training.train.run_cli) or ``python train.py`` in a checkout."""
    return "fastnst train" if sys.argv[:1] == ["fastnst"] else "python train.py"


def resolve_accelerator(accelerator: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``."""
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return accelerator


def find_last_checkpoint(style_dir: str | Path) -> Path:
    """The newest ``last.ckpt`` among the runs of a style (``checkpoints/<style>/*/last.ckpt``)."""
    runs = sorted(Path(style_dir).glob("*/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FastNSTError(f"ckpt_path=last: no earlier run with a last.ckpt in {style_dir}/")
    return runs[-1]


def check_data_root(root: str | None) -> None:
    """Fail early, and say how to get data, when ``data.root`` does not exist."""
    if root is None or Path(root).expanduser().is_dir():
        return
    cpu_note = "" if torch.cuda.is_available() else " (no GPU here: a full-size run would take days on this CPU)"
    raise FastNSTError(
        f"data.root={root}: no such folder. Get COCO with `python scripts/download_coco.py data/coco` "
        f"(train2017, 18 GB; the script is in fastnst's source tree) or point data.root at any folder of photos; "
        f"or train on the embedded sample photos{cpu_note}: `{training_command()} {QUICK_CPU_SETTINGS}`"
    )


def validate_config(cfg: Any, run_dir: str | Path | None = None) -> None:
    """Check the settings a run needs before anything heavy starts; one-line errors naming the key.

    Unknown keys, types and ranges are checked against the schema (:mod:`fastnst.training.config`);
    here: what depends on the machine or on files. ``run_dir`` (the new run's folder) lets
    ``ckpt_path=last`` be found and checked too.
    """
    from fastnst.training.config import check_schema

    check_schema(cfg)  # unknown keys, wrong types and ranges first: the checks below can trust the values
    _check_layers(cfg.loss)
    _check_files(cfg.data)
    _check_style(cfg.style)
    _check_teacher(cfg)
    _warn_about_schedule(cfg.trainer)
    _check_vgg_weights(cfg.loss)
    if cfg.ckpt_path:
        check_checkpoint(cfg.ckpt_path, _wanted_network(cfg), run_dir, cfg.trainer.max_steps)
    _check_hardware(cfg.trainer)  # last: it imports Lightning for its registries (seconds)


def _wanted_network(cfg: Any) -> dict[str, Any]:
    """The network settings a run builds: its ``model`` and styles, or with ``init`` the base's network
    with the base's styles and then the new ones (as :func:`fastnst.training.module._network` builds it)."""
    names = [s["name"] for s in cfg.get("styles") or []]
    if not cfg.get("init"):
        return {**cfg.model, "styles": names}
    from fastnst.nn.conditioning import load_base

    _, base = load_base(cfg.init)
    base_names = [s["name"] for s in base.get("styles") or []]
    return {**base, "styles": base_names + [n for n in names if n not in base_names]}


def _check_layers(loss: Any) -> None:
    """Layer weights; the names are the schema's (:func:`fastnst.training.config.check_loss_layers`)."""
    for group in ("content_layers", "style_layers"):
        for layer, weight in loss[group].items():
            if not (weight >= 0 and math.isfinite(weight)):
                raise FastNSTError(f"loss.{group}.{layer}={weight}: layer weights must be >= 0")
    if not any(loss.style_layers.values()):
        raise FastNSTError("loss.style_layers: every layer weight is 0; at least one style layer is needed")


def _check_files(data: Any) -> None:
    check_data_root(data.root)
    if data.annotations is not None and not Path(data.annotations).expanduser().is_file():
        raise FastNSTError(f"data.annotations={data.annotations}: no such file")
    _check_val_images(data.val_images)


def _check_val_images(val_images: Any) -> None:
    """A folder of photos, a list of photo files, or null (the embedded photos)."""
    if val_images is None:
        return
    if isinstance(val_images, str):
        folder = Path(val_images).expanduser()
        if not folder.is_dir():
            reason = "not a folder (give a folder, or a list: data.val_images=[a.jpg,b.jpg])"
            raise FastNSTError(f"data.val_images={val_images}: {reason if folder.exists() else 'no such folder'}")
        return
    if not isinstance(val_images, Sequence) or not val_images:
        raise FastNSTError(f"data.val_images={val_images}: expected a folder, a list of photos or null")
    for photo in val_images:
        if not Path(str(photo)).expanduser().is_file():
            raise FastNSTError(f"data.val_images: no such file {photo}")


def _check_style(style: Any) -> None:
    from fastnst.runtime.imageio import ImageError, open_rgb
    from fastnst.styles import resolve_style_image

    path = resolve_style_image(style.image)  # names the built-in styles when it is not found
    try:  # unreadable, or over the pixel limit (a decompression bomb): refused before the run starts
        painting = open_rgb(path)
    except ImageError as e:
        raise FastNSTError(f"style.image={style.image}: {e}") from None
    if max(painting.size) * 2 <= style.size:
        log.warning(
            "style.image=%s is %dx%d px, scaled up to style.size=%d: its strokes will be blurred",
            style.image,
            *painting.size,
            style.size,
        )


def _check_teacher(cfg: Any) -> None:
    """loss.teacher: a fastnst model that opens, for a network with one result per photo."""
    teacher = cfg.loss.get("teacher")
    if not teacher:
        return
    if cfg.get("styles") or cfg.model.get("strength"):
        raise FastNSTError(
            f"loss.teacher={teacher}: only for a network of one style without a trained strength "
            "(the teacher gives one result per photo)"
        )
    from fastnst.runtime.stylizer import Stylizer

    try:
        Stylizer(teacher, device="cpu", threads=1)
    except FastNSTError as e:
        raise FastNSTError(f"loss.teacher={teacher}: {e}") from None


def _warn_about_schedule(trainer: Any) -> None:
    """Schedule settings that run but do not do what they say: a warning each."""
    if trainer.decay_steps is not None and trainer.lr_final is None:
        log.warning("trainer.decay_steps=%s does nothing without trainer.lr_final: the rate stays constant",
                    trainer.decay_steps)  # fmt: skip
    if trainer.lr_final is not None and trainer.lr_final > trainer.lr:
        log.warning("trainer.lr_final=%s is above trainer.lr=%s: the rate rises over the run",
                    trainer.lr_final, trainer.lr)  # fmt: skip


def _check_hardware(trainer: Any) -> None:
    """Accelerator, devices, strategy and precision: the values Lightning accepts, on this machine."""
    check_accelerator(trainer.accelerator)
    check_devices(trainer.devices, resolve_accelerator(trainer.accelerator))
    check_strategy(trainer.strategy)
    check_precision(trainer.precision)


def check_accelerator(name: str) -> None:
    """``trainer.accelerator``: auto, gpu or one of Lightning's, and usable on this machine."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    valid = sorted({"auto", "gpu", *AcceleratorRegistry.available_accelerators()})
    if name not in valid:
        raise FastNSTError(f"trainer.accelerator={name}: expected one of {', '.join(valid)}")
    if name in ("auto", "cpu"):
        return
    usable = torch.cuda.is_available()
    if name == "gpu":  # Lightning's gpu: CUDA, or Apple's MPS
        usable = usable or AcceleratorRegistry["mps"]["accelerator"].is_available()
    elif name != "cuda":
        usable = AcceleratorRegistry[name]["accelerator"].is_available()
    if not usable:
        what = "CUDA GPU" if name in ("cuda", "gpu") else f"{name.upper()} device"
        raise FastNSTError(
            f"trainer.accelerator={name}: no {what} is visible here; use trainer.accelerator=cpu (or auto)"
        )


def check_devices(devices: Any, accelerator: str) -> None:
    """``trainer.devices``: auto or a count >= 1; on CUDA GPUs also -1 (all) or GPU indices that exist."""
    key = f"trainer.devices={devices}"
    if devices == "auto":
        return
    on_gpu = accelerator in ("cuda", "gpu") and torch.cuda.is_available()
    count = torch.cuda.device_count() if on_gpu else 0
    value = _parse_devices(devices)
    if isinstance(value, int) and not isinstance(value, bool) and (value >= 1 or (value == -1 and on_gpu)):
        if on_gpu and value > count:
            raise FastNSTError(f"{key}: only {count} CUDA GPU(s) are visible here")
        return
    if isinstance(value, list) and value and on_gpu and all(isinstance(i, int) and i >= 0 for i in value):
        if max(value) >= count:
            raise FastNSTError(f"{key}: no CUDA GPU {max(value)} here ({count} visible, numbered from 0)")
        return
    raise FastNSTError(f"{key}: expected auto or a whole number >= 1 (on CUDA GPUs also -1: all, or GPU indices)")


def _parse_devices(devices: Any) -> Any:
    """``"2"`` -> 2, ``"0,1"`` -> [0, 1], a list stays a list; anything else is returned as it is."""
    if isinstance(devices, str):
        parts = [p.strip() for p in devices.split(",") if p.strip()]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            return devices
        return numbers if "," in devices else (numbers[0] if numbers else devices)
    if isinstance(devices, Sequence):
        return list(devices)
    return devices


def check_strategy(strategy: str) -> None:
    """``trainer.strategy``: auto or a name in Lightning's StrategyRegistry."""
    from lightning.pytorch.strategies import StrategyRegistry

    valid = sorted(StrategyRegistry.available_strategies())
    if strategy != "auto" and strategy not in valid:
        names = ", ".join(valid)
        raise FastNSTError(f"trainer.strategy={strategy}: expected auto or one of Lightning's strategies ({names})")


def lightning_precisions() -> list[str]:
    """The precision values ``pl.Trainer`` accepts, read from its signature (``16-mixed``, ``bf16-mixed``, ...)."""

    def literals(hint: Any) -> list[Any]:
        if typing.get_origin(hint) is typing.Literal:
            return list(typing.get_args(hint))
        return [value for arg in typing.get_args(hint) for value in literals(arg)]

    import lightning.pytorch as pl

    return list(dict.fromkeys(str(v) for v in literals(typing.get_type_hints(pl.Trainer.__init__)["precision"])))


def check_precision(precision: Any) -> None:
    """``trainer.precision``: auto or one of Lightning's; transformer-engine only with its package."""
    valid = lightning_precisions()
    if str(precision) != "auto" and str(precision) not in valid:
        raise FastNSTError(f"trainer.precision={precision}: expected auto or one of {', '.join(valid)}")
    if str(precision).startswith("transformer-engine") and importlib.util.find_spec("transformer_engine") is None:
        raise FastNSTError(f"trainer.precision={precision}: needs the transformer_engine package, not installed here")


def _check_vgg_weights(loss: Any) -> None:
    """The convention of a weights file, and that the local weights hold every layer in use (a file's
    architecture comes from its keys; a truncated file lacks the deeper layers)."""
    from fastnst.nn.vgg import SOURCES, VGGWeightsError, check_weights_serve, guess_convention

    if loss.vgg_weights not in SOURCES and loss.vgg_convention is None:
        guess_convention(loss.vgg_weights)
    layers = [name for group in ("content_layers", "style_layers") for name, w in loss[group].items() if w]
    try:
        check_weights_serve(loss.vgg_weights, layers)
    except (ValueError, VGGWeightsError) as e:
        raise FastNSTError(f"loss.vgg_weights={loss.vgg_weights}: {e}") from None


def check_checkpoint(
    ckpt_path: str, model: Any, run_dir: str | Path | None = None, max_steps: int | None = None
) -> None:
    """Refuse a ``ckpt_path`` that cannot resume this run: missing, unreadable, needing code, not a
    fastnst training checkpoint, of another network than ``model`` (its settings, with ``styles``
    the style names of a conditional network), or already at ``max_steps``. ``last`` needs ``run_dir``."""
    if ckpt_path == "last":
        if run_dir is None:
            return
        path = find_last_checkpoint(Path(run_dir).parent)
        key = f"ckpt_path=last ({path})"
    else:
        path, key = Path(ckpt_path).expanduser(), f"ckpt_path={ckpt_path}"
    if path.is_dir():
        raise FastNSTError(f"{key}: a folder, not a checkpoint file (a run's checkpoint is its last.ckpt)")
    if not path.is_file():
        raise FastNSTError(f"{key}: no such file")
    checkpoint = read_checkpoint(path, key)
    hparams = _training_hparams(checkpoint, key)
    saved = _network({**hparams, "styles": [s["name"] for s in hparams.get("styles") or []]})
    wanted = _network(model)
    if saved != wanted:
        init = f" (it was trained with init={hparams['init']})" if hparams.get("init") else ""
        raise FastNSTError(
            f"{key}: the checkpoint's network is {saved}, the config's is {wanted}; "
            f"resume with the checkpoint's model and style settings{init}"
        )
    step = checkpoint.get("global_step")
    if max_steps is not None and isinstance(step, int) and step >= max_steps:
        raise FastNSTError(
            f"{key}: the checkpoint is at step {step}, trainer.max_steps={max_steps}: nothing to train; "
            "raise trainer.max_steps to go on"
        )


def _training_hparams(checkpoint: Any, key: str) -> dict[str, Any]:
    """The network settings of a fastnst training checkpoint that holds what resuming needs."""
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not isinstance(hparams, dict) or "state_dict" not in checkpoint or "width" not in hparams:
        raise FastNSTError(f"{key}: not a fastnst training checkpoint (no state_dict and network hyper_parameters)")
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise FastNSTError(
            f"{key}: holds the weights only, not the training state (optimizer, step, data position) "
            "that resuming needs"
        )
    return hparams


def _network(settings: Any) -> str:
    """What fixes a checkpoint's tensors: the architecture and its size, a trained strength, the styles."""
    text = (
        f"architecture={settings.get('architecture', 'johnson')}, width={float(settings['width'])}, "
        f"num_residual_blocks={int(settings['num_residual_blocks'])}"
    )
    if settings.get("dilation", 1) != 1:  # not in the tensors' shapes, but another network all the same
        text += f", dilation={int(settings['dilation'])}"
    if settings.get("strength"):
        text += ", strength=true"
    styles = settings.get("styles") or []
    return text + (f", styles=[{','.join(styles)}]" if styles else "")
