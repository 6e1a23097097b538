"""Building the Lightning ``Trainer`` for a run: devices, precision, logs, checkpoints, resume."""

from __future__ import annotations

import errno
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.precision import lightning_precision

log = logging.getLogger(__name__)

QUICK_CPU_COMMAND = "python train.py data=sample model=small trainer=cpu"


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
            time.strftime("%H:%M:%S", time.gmtime(eta)),
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
    accumulate_grad_batches: int = 1,
    deterministic: bool = False,
    enable_progress_bar: bool = True,
    logger: bool = True,
) -> pl.Trainer:
    """A Trainer writing TensorBoard logs, checkpoints and previews into ``run_dir``."""
    run_dir = Path(run_dir)
    accelerator = resolve_accelerator(accelerator)
    callbacks: list[Callback] = [
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
    ]
    tb_logger: TensorBoardLogger | bool = False
    if logger:
        tb_logger = TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version="")
        callbacks.append(LearningRateMonitor(logging_interval="step"))
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
        logger=tb_logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
    )


def check_data_root(root: str | None) -> None:
    """Fail early, and say how to get data, when ``data.root`` does not exist."""
    if root is None or Path(root).expanduser().is_dir():
        return
    cpu_note = "" if torch.cuda.is_available() else " (no GPU here: a full-size run would take days on this CPU)"
    raise FastNSTError(
        f"data.root={root}: no such folder. Get COCO with `python scripts/download_coco.py data/coco` "
        f"(train2017, 18 GB) or point data.root at any folder of photos; "
        f"or train on the embedded sample photos{cpu_note}: `{QUICK_CPU_COMMAND}`"
    )


def warn_if_slow(trainer: pl.Trainer, max_steps: int) -> None:
    """On a CPU, say that a full-size run will be slow and point at the quick preset."""
    # A CPU step takes 0.3 s (light network, 192 px) to 3 s (Johnson's, 256 px): hours from here on.
    if trainer.accelerator.__class__.__name__ == "CPUAccelerator" and max_steps > 5000:
        log.warning(
            "training on the CPU: %d steps will take hours (a GPU does a step in milliseconds). "
            "For a quick CPU run: `%s`",
            max_steps,
            QUICK_CPU_COMMAND,
        )


def validate_config(cfg: Any) -> None:
    """Check the settings a run needs before anything heavy starts; one-line errors naming the key."""
    from fastnst.styles import resolve_style_image
    from fastnst.vgg import LAYER_NAMES, guess_convention

    loss, data, trainer = cfg.loss, cfg.data, cfg.trainer
    for key in ("content_weight", "style_weight", "tv_weight"):
        if not loss[key] >= 0:
            raise FastNSTError(f"loss.{key}={loss[key]}: must be a number >= 0")
    for group in ("content_layers", "style_layers"):
        for layer, weight in loss[group].items():
            if layer not in LAYER_NAMES:
                raise FastNSTError(f"loss.{group}.{layer}: no such VGG19 layer; valid: {', '.join(LAYER_NAMES)}")
            if not weight >= 0:
                raise FastNSTError(f"loss.{group}.{layer}={weight}: layer weights must be >= 0")
    if not any(loss.style_layers.values()):
        raise FastNSTError("loss.style_layers: every layer weight is 0; at least one style layer is needed")
    if not isinstance(data.image_size, int) or data.image_size < 16:
        raise FastNSTError(f"data.image_size={data.image_size}: must be a whole number of pixels >= 16")
    if not isinstance(data.batch_size, int) or data.batch_size < 1:
        raise FastNSTError(f"data.batch_size={data.batch_size}: must be a whole number >= 1")
    if not isinstance(cfg.style.size, int) or cfg.style.size < 16:
        raise FastNSTError(f"style.size={cfg.style.size}: must be a whole number of pixels >= 16")
    if not isinstance(trainer.max_steps, int) or trainer.max_steps < 1:
        raise FastNSTError(f"trainer.max_steps={trainer.max_steps}: must be a whole number >= 1")
    if not trainer.lr > 0:
        raise FastNSTError(f"trainer.lr={trainer.lr}: must be > 0")
    resolve_style_image(cfg.style.image)  # names the built-in styles when it is not found
    if loss.vgg_weights not in ("caffe", "torchvision") and loss.vgg_convention is None:
        guess_convention(loss.vgg_weights)
