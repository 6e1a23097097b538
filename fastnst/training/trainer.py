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
from lightning.pytorch.callbacks import (
    Callback,
    LearningRateMonitor,
    ModelCheckpoint,
    Timer,
    TQDMProgressBar,
    WeightAveraging,
)
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.profilers import AdvancedProfiler, Profiler, PyTorchProfiler, SimpleProfiler

from fastnst.atomic import atomic_write
from fastnst.nn.precision import lightning_precision
from fastnst.training.checks import QUICK_CPU_SETTINGS, resolve_accelerator, training_command

log = logging.getLogger(__name__)

# The loss terms a progress line shows (unweighted), where the run has them.
LOGGED_TERMS = ("content", "style", "tv", "stability", "identity", "teacher")


def resolve_precision(precision: str, accelerator: str) -> str:
    """``auto`` -> ``bf16-mixed`` on GPUs and CPUs with native bf16, ``16-mixed`` on older GPUs, else ``32-true``."""
    return lightning_precision(precision, resolve_accelerator(accelerator))


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


def ema_decay_at(decay: float, num_averaged: torch.Tensor | int) -> torch.Tensor:
    """The decay of the moving average's update after ``num_averaged`` earlier ones: ``min(decay, (1 + n) /
    (10 + n))``, the warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``.

    A fixed 0.999 from the first step keeps 0.999^1000 = 37% of the untrained network after 1,000 steps
    (judged far worse than the trained weights on a CPU run, docs/quality.md); with the warm-up the
    average covers about the last tenth of the steps until it reaches ``decay`` (at 9,000 for 0.999)."""
    n = torch.as_tensor(num_averaged, dtype=torch.float32)
    return torch.clamp((1 + n) / (10 + n), max=decay)


def ema_update(decay: float) -> Any:
    """An ``avg_fn`` for :class:`torch.optim.swa_utils.AveragedModel`: the moving average with
    :func:`ema_decay_at`'s warm-up, as tensors on the parameter's device (no host sync per parameter)."""

    @torch.no_grad()
    def update(averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor | int) -> torch.Tensor:
        weight = 1 - ema_decay_at(decay, num_averaged).to(averaged.device, averaged.dtype)
        return averaged + weight * (current - averaged)

    return update


class MovingAverage(WeightAveraging):
    """An exponential moving average of the weights, updated after every optimizer step with
    :func:`ema_update`, made after the module has built its loss network: the module builds it in ``setup``,
    which Lightning calls after the callbacks', and the average must match the module parameter for
    parameter (its swaps pair them in order).

    The module keeps its trained weights when training ends (Lightning's callback would put the average
    in their place): the end state that ``train.py`` saves as ``last.ckpt`` after ``fit`` must hold
    both, the average as the weights and the trained ones to resume from.
    """

    def __init__(self, decay: float) -> None:
        super().__init__(avg_fn=ema_update(decay))

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
        terms = ", ".join(f"{k} {metrics[f'train/{k}']:.3g}" for k in LOGGED_TERMS if f"train/{k}" in metrics)
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
    profiler: str | None = None,
) -> pl.Trainer:
    """A Trainer writing TensorBoard logs, checkpoints and previews into ``run_dir``.

    Its :class:`~fastnst.training.interrupt.GracefulInterrupt` callback stops training after the current
    step on SIGINT or SIGTERM (see ``train.py``, which then saves ``last.ckpt``). ``profiler``: see :func:`_profiler`.
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
        profiler=_profiler(profiler, run_dir),
    )


def _profiler(name: str | None, run_dir: Path) -> Profiler | None:
    """Lightning's profiler ``name`` reporting to ``run_dir/fit-profile.txt`` (None: no profiling)."""
    if name is None:
        return None
    kinds = {"simple": SimpleProfiler, "advanced": AdvancedProfiler, "pytorch": PyTorchProfiler}
    return kinds[name](dirpath=run_dir, filename="profile")


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
