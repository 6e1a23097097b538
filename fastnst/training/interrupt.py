"""Ctrl-C and SIGTERM during training: finish the step, save a resumable checkpoint, then exit.

Without this, a Ctrl-C (KeyboardInterrupt) or a SIGTERM (Lightning stops the loop with an
exception) ends the run without a checkpoint: up to ``trainer.checkpoint_every_n_steps``
steps are lost. Here the first signal only asks the training loop to stop
(``trainer.should_stop``) after the current step; ``train.py`` then writes ``last.ckpt``,
says how to resume and exits with 128 + the signal number (130, 143). A second signal ends
the process at once (checkpoints are written atomically, so none is left half-written).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Stopped:
    """A run stopped by a signal, with its state saved in ``checkpoint`` after ``step`` steps."""

    signum: int
    step: int
    checkpoint: Path

    @property
    def exit_code(self) -> int:
        """The shell's status for death by this signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum

    def message(self, script: str, overrides: Sequence[str]) -> str:
        """One line: what happened and the command that resumes (``overrides`` as given, without ckpt_path)."""
        kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "ckpt_path"]
        command = shlex.join(["python", script, *kept, f"ckpt_path={self.checkpoint}"])
        name = signal.Signals(self.signum).name
        return f"stopped by {name} at step {self.step}, the state is saved; resume with: {command}"


class GracefulInterrupt(Callback):
    """Turn the first SIGINT/SIGTERM into a stop after the current step; the second one aborts.

    ``signum`` is the signal that asked for the stop (None if none came). Lightning installs
    its own SIGTERM handler when training starts; ours replaces it in :meth:`on_train_start`.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only); :meth:`restore` undoes it."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._pid = os.getpid()
        for signum in SIGNALS:
            previous = signal.signal(signum, self._handle)
            self._previous.setdefault(signum, previous)  # the first install keeps the original

    def restore(self) -> None:
        """Put back the handlers that were there before :meth:`install`."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}

    @contextmanager
    def installed(self) -> Iterator[GracefulInterrupt]:
        """``with interrupt.installed():`` handle the signals inside the block only."""
        self.install()
        try:
            yield self
        finally:
            self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # Data-loader workers are forked with this handler: only the training process acts on a signal.
        if os.getpid() != self._pid:
            return
        if self.signum is not None:  # the second signal: end now, as if there were no handler
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        log.warning(
            "%s received: finishing this step and saving a checkpoint (a second Ctrl-C aborts at once)",
            signal.Signals(signum).name,
        )

    # -- Lightning hooks --------------------------------------------------------------

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        installed_by_caller = bool(self._previous)
        self.install()  # over Lightning's SIGTERM handler, which would end fit() with an exception
        if not installed_by_caller:
            self._previous = {}  # Lightning puts back the handlers of before fit() when fit() ends
        self._stop_if_asked(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._stop_if_asked(trainer)

    def _stop_if_asked(self, trainer: pl.Trainer) -> None:
        asked = self.signum is not None
        if trainer.world_size > 1:
            # Every process must stop at the same step; the vote is a collective, so it is held at
            # steps every process reaches (a host sync: not every step on GPUs).
            if trainer.global_step % trainer.log_every_n_steps:
                return
            asked = trainer.strategy.reduce_boolean_decision(asked, all=False)
        if asked:
            trainer.should_stop = True
