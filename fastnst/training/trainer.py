"""Building the Lightning ``Trainer`` for a run: devices, precision, logs, checkpoints, resume."""

from __future__ import annotations

import errno
import importlib.util
import logging
import math
import shutil
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EMAWeightAveraging,
    LearningRateMonitor,
    ModelCheckpoint,
    Timer,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.nn.checkpoint import read_checkpoint
from fastnst.nn.precision import lightning_precision

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


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto`` -> ``bf16-mixed`` on GPUs and CPUs with native bf16, ``16-mixed`` on older GPUs, else ``32-true``."""
    return lightning_precision(precision, resolve_accelerator(accelerator))


def find_last_checkpoint(style_dir: str | Path) -> Path:
    """The newest ``last.ckpt`` among the runs of a style (``checkpoints/<style>/*/last.ckpt``)."""
    runs = sorted(Path(style_dir).glob("*/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FastNSTError(f"ckpt_path=last: no earlier run with a last.ckpt in {style_dir}/")
    return runs[-1]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file in the same folder, fsync, then rename.

    A crash or a full disk in the middle of a save leaves the previous checkpoint of that
    name untouched (Lightning's own local save writes in place and can leave a truncated file).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        path = Path(path)
        try:
            with atomic_write(path, fsync=True) as f:
                torch.save(checkpoint, f)
        except RuntimeError as e:  # torch.save reports a full disk as "unexpected pos ..."
            full = shutil.disk_usage(path.parent).free < (1 << 20)
            reason = "No space left on device" if full else " ".join(str(e).split())
            raise OSError(errno.ENOSPC if full else errno.EIO, f"{reason} while writing {path.name}") from e


class MovingAverage(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights, made after the module has built its loss
    network: the module builds it in ``setup``, which Lightning calls after the callbacks', and the
    average must match the module parameter for parameter (its swaps pair them in order).

    The module keeps its trained weights when training ends (Lightning's callback would put the average
    in their place): the end state that ``train.py`` saves as ``last.ckpt`` after ``fit`` must hold
    both, the average as the weights and the trained ones to resume from.
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            pl_module.setup(stage)  # idempotent: Lightning's own call finds it done
        super().setup(trainer, pl_module, stage)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass


class SkippedImages(Callback):
    """Report unreadable training images as they are met, and a summary at the end."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.skipped: dict[str, None] = {}

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        for entry in batch.get("skipped", []):
            if entry not in self.skipped:
                self.skipped[entry] = None
                log.warning("skipped unreadable image %s", entry)
        if self.skipped:
            pl_module.log("data/skipped_images", float(len(self.skipped)), on_step=True)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.skipped and trainer.is_global_zero:
            report = self.run_dir / "skipped_images.txt"
            report.write_text("".join(f"{entry}\n" for entry in self.skipped))
            log.warning("%d unreadable image(s) were skipped; list in %s", len(self.skipped), report)


def format_duration(seconds: float) -> str:
    """``H:MM:SS``, hours not wrapped at a day (a long CPU run's ETA can be days: ``57:03:12``)."""
    total = max(0, round(seconds))
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


class ResumedProgressBar(TQDMProgressBar):
    """Lightning's progress bar, its rate and time left counted from where a resumed epoch starts.

    Lightning's bar starts each epoch at 0 and counts the batches a resumed run skips as done in the
    time since it started ("508/600 [00:50, 10 it/s]" at a real 0.2 steps/s), with a total that counts
    the steps left from batch 0: here the first batch of a resumed epoch becomes the bar's starting
    point, as tqdm's ``initial``, and the total counts from it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._epoch_started = False

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._epoch_started = True

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._epoch_started:  # the epoch's first batch only: later ones may leave n at 0 (refresh rate > 1)
            self._epoch_started = False
            bar = self.train_progress_bar
            bar.n = bar.initial = batch_idx
            if batch_idx and trainer.max_steps > 0:  # Lightning's total counts the steps left from batch 0
                bar.total = min(trainer.num_training_batches, batch_idx + trainer.max_steps - trainer.global_step)


class ProgressLog(Callback):
    """One log line every ``every`` steps (for log files and terminals without a progress bar)."""

    def __init__(self, every: int) -> None:
        self.every = max(1, every)
        self._start: float | None = None
        self._start_step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._start_step = time.monotonic(), trainer.global_step

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if (step % self.every and step != trainer.max_steps) or not trainer.is_global_zero or self._start is None:
            return
        rate = (step - self._start_step) / max(time.monotonic() - self._start, 1e-9)
        eta = (trainer.max_steps - step) / max(rate, 1e-9)
        metrics = trainer.callback_metrics
        terms = ", ".join(
            f"{k} {metrics[f'train/{k}']:.3g}" for k in ("content", "style", "tv") if f"train/{k}" in metrics
        )
        loss = metrics.get("train/loss")
        log.info(
            "step %d/%d | loss %s (%s) | %.2f steps/s | ETA %s",
            step,
            trainer.max_steps,
            f"{float(loss):.4g}" if loss is not None else "-",
            terms,
            rate,
            format_duration(eta),
        )


def build_trainer(
    run_dir: str | Path,
    *,
    accelerator: str = "auto",
    devices: int | str = "auto",
    num_nodes: int = 1,
    strategy: str = "auto",
    precision: str = "auto",
    max_steps: int = 40_000,
    log_every_n_steps: int = 50,
    val_every_n_steps: int = 500,
    checkpoint_every_n_steps: int = 1000,
    gradient_clip_val: float | None = None,
    ema_decay: float | None = None,
    accumulate_grad_batches: int = 1,
    deterministic: bool = False,
    enable_progress_bar: bool = True,
    logger: bool = True,
) -> pl.Trainer:
    """A Trainer writing TensorBoard logs, checkpoints and previews into ``run_dir``.

    Its :class:`~fastnst.training.interrupt.GracefulInterrupt` callback stops training after the current
    step on SIGINT or SIGTERM (see ``train.py``, which then saves ``last.ckpt``).
    """
    run_dir = Path(run_dir)
    accelerator = resolve_accelerator(accelerator)
    callbacks = _callbacks(run_dir, checkpoint_every_n_steps, log_every_n_steps, logger, ema_decay, enable_progress_bar)
    return pl.Trainer(
        default_root_dir=str(run_dir),
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=resolve_precision(precision, accelerator),  # type: ignore[arg-type]
        max_steps=max_steps,
        log_every_n_steps=log_every_n_steps,
        val_check_interval=val_every_n_steps,
        check_val_every_n_epoch=None,  # validate every val_every_n_steps, counted across the run
        num_sanity_val_steps=0,
        gradient_clip_val=gradient_clip_val,
        accumulate_grad_batches=accumulate_grad_batches,
        deterministic=deterministic,
        use_distributed_sampler=False,  # our sampler shards the stream by rank itself
        enable_progress_bar=enable_progress_bar,
        logger=_tensorboard_logger(run_dir) if logger else False,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
    )


def _tensorboard_logger(run_dir: Path) -> TensorBoardLogger:
    """TensorBoard logs in ``run_dir/tensorboard`` (no version subfolder)."""
    # default_hp_metric off: the module declares hp_metric (the validation loss) instead of Lightning's -1.
    return TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False)


def _callbacks(
    run_dir: Path,
    checkpoint_every_n_steps: int,
    log_every_n_steps: int,
    logger: bool,
    ema_decay: float | None,
    enable_progress_bar: bool,
) -> list[Callback]:
    """Stop on a signal, keep checkpoints, report skipped images, log progress lines, time the training
    (and show a progress bar, log the learning rate with a logger, keep the moving average of the weights
    with ``ema_decay``)."""
    from fastnst.training.interrupt import GracefulInterrupt

    extra: list[Callback] = [LearningRateMonitor(logging_interval="step")] if logger else []
    if ema_decay is not None:
        # Lightning's moving average: checkpoints hold it as the weights (the trained ones under
        # current_model_state, from which a resumed run goes on), and validation runs it.
        extra.append(MovingAverage(decay=ema_decay))
    bar: list[Callback] = [ResumedProgressBar()] if enable_progress_bar else []
    return [
        GracefulInterrupt(),
        # every_n_train_steps checkpoints keep the full training state; last.ckpt is the one to resume.
        ModelCheckpoint(
            dirpath=run_dir,
            filename="step={step:07d}",
            auto_insert_metric_name=False,
            every_n_train_steps=checkpoint_every_n_steps,
            save_top_k=-1,
            save_last=True,
        ),
        SkippedImages(run_dir),
        ProgressLog(log_every_n_steps),
        # The training time so far, kept in every checkpoint and carried over on resume: what a
        # learning curve plots (scripts/learning_curve.py), pauses between sessions left out.
        Timer(),
        *bar,
        *extra,
    ]


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


def warn_if_slow(trainer: pl.Trainer, max_steps: int) -> None:
    """On a CPU, say that a full-size run will be slow and point at the quick preset."""
    # A CPU step takes 0.3 s (light network, 192 px) to 3 s (Johnson's, 256 px): hours from here on.
    if trainer.accelerator.__class__.__name__ == "CPUAccelerator" and max_steps > 5000:
        log.warning(
            "training on the CPU: %d steps will take hours (a GPU does a step in milliseconds). "
            "For a quick CPU run: `%s %s`",
            max_steps,
            training_command(),
            QUICK_CPU_SETTINGS,
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
    _warn_about_schedule(cfg.trainer)
    _check_hardware(cfg.trainer)
    _check_vgg_weights(cfg.loss)
    if cfg.ckpt_path:
        check_checkpoint(cfg.ckpt_path, _wanted_network(cfg), run_dir, cfg.trainer.max_steps)


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
    if settings.get("strength"):
        text += ", strength=true"
    styles = settings.get("styles") or []
    return text + (f", styles=[{','.join(styles)}]" if styles else "")
