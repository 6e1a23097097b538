"""The ``train`` entry, shared by ``fastnst train ...`` (any install) and ``python train.py ...`` (a checkout).

Hydra composes ``train.yaml`` of the packaged configs (``pkg://fastnst.conf``: the repository's ``conf/``,
shipped in the wheel) from one group per axis (``style/``, ``model/``, ``loss/``, ``data/``, ``trainer/``);
any value is an override (``loss.style_weight=5``, ``data.root=/data/coco/train2017``,
``trainer.max_steps=2000``). Each run writes its checkpoints, TensorBoard logs, previews and resolved
config into ``checkpoints/<style>/<timestamp>/`` under the current folder (``<timestamp>_2``, ... if that
folder is taken: see :mod:`fastnst.training.run_dir`). Resume with ``ckpt_path=/path/to/last.ckpt`` or
``ckpt_path=last`` (the newest run of the style). Ctrl-C or SIGTERM stops after the current step, saves
``last.ckpt``, prints the command that resumes, and exits with 130 or 143.

The module is named ``train`` because Hydra names the job, and so the log file (``train.log``), after it.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from fastnst.training.run_dir import register_resolver

register_resolver()  # ${fastnst_unique_dir:...} in conf/train.yaml's sweep folders, needed before hydra.main

if TYPE_CHECKING:
    from fastnst.training.interrupt import Stopped

log = logging.getLogger("fastnst.train")
CLI_NAME = "fastnst"  # sys.argv[0] of `fastnst train` runs (see run_cli)

# Known, intentional situations that Lightning warns about: the VGG loss network is kept
# in eval mode, and the run folder holds the config and log next to the checkpoints.
for message in (
    r"Found \d+ module\(s\) in eval mode",
    r"Checkpoint directory .* exists and is not empty",
    r"Precision bf16-mixed is not supported by the model summary",  # only its size estimate is fp32
    r"You're resuming from a checkpoint that ended before the epoch ended",  # our sampler resumes by step
    r"The dirpath has changed from",  # a resumed run writes into a folder of its own, by design
    # A resumed run with another trainer.checkpoint_every_n_steps: Lightning asks for the checkpoint's callback
    # settings, whose state is only the file names it kept. (A missing callback of any other kind still warns.)
    r'Be aware that when using `ckpt_path`, callbacks used to create the checkpoint .*\["ModelCheckpoint\{[^"]*\}"\]',
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # inside Lightning, about a torch API it calls
):
    warnings.filterwarnings("ignore", message=message)


class _NoAdverts(logging.Filter):
    """Lightning's log line advertising a cloud logger: not about this run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def train(cfg: DictConfig, run_dir: Path) -> Stopped | None:
    """Train one style network as configured, writing everything into ``run_dir``.

    Returns None when the run finished, or how it stopped on SIGINT/SIGTERM (its state saved in
    ``run_dir/last.ckpt``; no ONNX export then).
    """
    from fastnst.training.checks import find_last_checkpoint, validate_config

    validate_config(cfg, run_dir)  # one-line errors before any heavy work (run_dir: for ckpt_path=last)
    # Lightning only now: its import alone takes seconds, which a bad setting should not wait for.
    import lightning.pytorch as pl

    from fastnst.training.config import datamodule_arguments, module_arguments, trainer_arguments
    from fastnst.training.data import PhotoDataModule
    from fastnst.training.module import StyleTransferModule
    from fastnst.training.trainer import build_trainer, warn_if_slow

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    log.info("run folder: %s (previews/, and TensorBoard: tensorboard --logdir %s)", run_dir, run_dir)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()  # Hydra's handlers print and write train.log (once each)
    pl.seed_everything(cfg.seed, workers=True)
    # Each object's arguments come from the schema (fastnst.training.config), not listed here.
    datamodule = PhotoDataModule(**datamodule_arguments(cfg))
    trainer = build_trainer(run_dir, **trainer_arguments(cfg))
    on_gpu = trainer.accelerator.__class__.__name__ == "CUDAAccelerator"
    module = StyleTransferModule(**module_arguments(cfg, on_gpu))

    ckpt_path = cfg.ckpt_path
    if ckpt_path == "last":
        ckpt_path = str(find_last_checkpoint(run_dir.parent))
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    warn_if_slow(trainer, cfg.trainer.max_steps)
    stopped = fit(trainer, module, datamodule, ckpt_path, run_dir)
    if stopped is not None:  # an interrupted run is not exported: its network is not the finished one
        return stopped
    if cfg.export.onnx and trainer.is_global_zero and (run_dir / "last.ckpt").is_file():
        export_run(cfg, run_dir)
    log.info("run folder: %s", run_dir)
    return None


def export_run(cfg: DictConfig, run_dir: Path) -> None:
    """Write ``<style>.onnx`` next to the checkpoints of a finished run (verified against PyTorch)."""
    from fastnst.nn.export import export_onnx

    onnx = run_dir / f"{cfg.style.name}.onnx"
    report = export_onnx(run_dir / "last.ckpt", onnx, precision=cfg.export.precision)
    log.info("exported %s", report.summary())
    log.info("stylize with it: fastnst infer --model %s photo.jpg", onnx)


def fit(trainer: Any, module: Any, datamodule: Any, ckpt_path: str | None, run_dir: Path) -> Stopped | None:
    """Train, then save the end state as ``last.ckpt``; a first SIGINT/SIGTERM stops after the current step.

    The signal handlers cover the final save too: a Ctrl-C while it is written cannot lose the steps
    since the last periodic checkpoint. (A second signal ends the process at once.)
    """
    from fastnst.training.interrupt import GracefulInterrupt, Stopped

    interrupt = next(c for c in trainer.callbacks if isinstance(c, GracefulInterrupt))
    with interrupt.installed():  # before fit(): data-loader workers are forked with it, and ignore signals
        # weights_only: a checkpoint holds tensors and numbers; one that needs code to load is refused.
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        # The end state, whatever the checkpoint interval (Lightning writes last.ckpt only at intervals).
        # Lightning's own last.ckpt saves happen inside fit(), in this process: this one comes after them.
        trainer.save_checkpoint(run_dir / "last.ckpt", weights_only=False)
        if interrupt.signum is None and trainer.global_step % trainer.val_check_interval:
            trainer.validate(module, datamodule=datamodule, verbose=False)  # the finished network's preview
    if interrupt.signum is None:
        return None
    return Stopped(interrupt.signum, trainer.global_step, run_dir / "last.ckpt")


def main() -> None:
    """``python train.py`` and ``fastnst train``: the overrides in ``sys.argv`` checked, then the run."""
    from fastnst.training.config import ConfigError, check_group_options, check_override_keys, quote_equals
    from fastnst.training.style_set import check_style_overrides, list_loss

    sys.argv = quote_equals(sys.argv)  # ckpt_path=run/step=0000500.ckpt: Hydra's grammar wants it quoted
    try:
        check_override_keys(sys.argv[1:])
        check_group_options(sys.argv[1:])
        check_style_overrides(sys.argv[1:])
        loss = list_loss(sys.argv[1:])
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if loss is not None:  # on the command line: the run folder's overrides and the resume command show it
        print(f"note: {loss[1]}", file=sys.stderr)
        sys.argv = with_override(sys.argv, f"loss={loss[0]}")
    _hydra_main()


def with_override(argv: list[str], override: str) -> list[str]:
    """``argv`` with ``override`` before its first override: Hydra's parser takes the overrides as one run
    of words, before or after its flags (``-m a=1 b=2``, ``a=1 b=2 --cfg job``), not on both sides."""
    first = next((i for i, word in enumerate(argv) if i and "=" in word and not word.startswith("-")), len(argv))
    return [*argv[:first], override, *argv[first:]]


@hydra.main(version_base="1.3", config_path="pkg://fastnst.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> None:
    """Run one training job (Hydra reads the overrides from ``sys.argv``)."""
    from fastnst.errors import FastNSTError, one_line
    from fastnst.training.style_set import expand_styles

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        stopped = train(expand_styles(cfg, hydra_cfg.overrides.task), run_dir)
    except FastNSTError as e:
        log.error("error: %s", e)
        _remove_if_unstarted(run_dir)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C outside the training steps (start-up, export): no step is lost
        last = run_dir / "last.ckpt"
        log.error("interrupted%s", f"; {last} is the end state (fastnst export {last})" if last.is_file() else "")
        _remove_if_unstarted(run_dir)
        sys.exit(130)
    except pickle.UnpicklingError as e:  # weights_only refused it
        log.error("error: ckpt_path=%s: refused, it needs code to load (%s)", cfg.ckpt_path, one_line(e))
        sys.exit(2)
    except OSError as e:  # a full disk or an unwritable folder: checkpoints are written atomically
        log.error("error: cannot write in %s (%s); checkpoints written before are intact", run_dir, e)
        sys.exit(1)
    if stopped is not None:
        log.warning("%s", _resume_message(stopped, sys.argv[0], hydra_cfg.overrides.task))
        sys.exit(stopped.exit_code)


def _remove_if_unstarted(run_dir: Path) -> None:
    """A run that never started (no checkpoint) leaves no folder behind: nor, in the default layout
    (``checkpoints/<style>/<time>``), an empty style folder made for it."""
    if not any(run_dir.glob("*.ckpt")):
        logging.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)
        if run_dir.parent.parent.name == "checkpoints":
            with contextlib.suppress(OSError):  # only when empty: another run's folder stays
                run_dir.parent.rmdir()


def _resume_message(stopped: Stopped, script: str, overrides: list[str]) -> str:
    """The stop message with the command that resumes: ``python train.py ...`` or ``fastnst train ...``."""
    message = stopped.message(script, overrides)
    # Stopped.message writes `python <script> ...`; `fastnst train` (see run_cli) is a command, not a script.
    return message.replace(f"python {script} ", "fastnst train ", 1) if script == CLI_NAME else message


def run_cli(overrides: list[str]) -> int:
    """``fastnst train OVERRIDES...``: the same Hydra command line as ``python train.py OVERRIDES...``."""
    saved = sys.argv
    sys.argv = [CLI_NAME, *overrides]  # Hydra parses sys.argv: what follows `train` is its command line
    try:
        main()
    finally:
        sys.argv = saved
    return 0
