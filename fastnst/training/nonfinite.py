"""The non-finite guard of training: a step whose loss is NaN or infinite changes nothing.

The verdict, the counters and the undo all stay on the training device: no step waits for the GPU
to say whether its loss was finite. The step still counts, so the data position stays tied to the
global step (exact resume). The counters are read on the host every step on a CPU (free there) and
at log intervals on a GPU, so a stop there can come up to ``log_every_n_steps`` steps late.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

import torch

from fastnst.errors import FastNSTError

log = logging.getLogger(__name__)


class NonFiniteLossError(FastNSTError):
    """Training stopped: the loss was NaN or infinite too many steps in a row."""


def step_tensors(params: Iterable[torch.Tensor], optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors an optimizer step changes: the weights and, once created, the optimizer state."""
    tensors = []
    for p in params:
        tensors.append(p)
        tensors += [v for v in optimizer.state.get(p, {}).values() if isinstance(v, torch.Tensor)]
    return tensors


class NonFiniteGuard:
    """``observe`` each loss, ``before_step`` and ``after_step`` around the optimizer step, then ``check``.

    ``max_in_a_row`` non-finite losses in a row raise :class:`NonFiniteLossError`; each one before that
    is a warning, and its update is undone (weights and optimizer state as they were).
    """

    def __init__(self, max_in_a_row: int) -> None:
        self.max_in_a_row = max_in_a_row
        self.finite: torch.Tensor | None = None  # this step's verdict, a bool tensor (None: not observed)
        self.in_a_row: torch.Tensor | None = None
        self.total: torch.Tensor | None = None
        self.reported = 0  # non-finite steps already warned about
        self.snapshot: list[tuple[torch.Tensor, torch.Tensor]] = []

    def observe(self, loss: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Record whether ``loss`` is finite; ``reduce`` sums the verdict over processes (DDP: any
        non-finite loss undoes the step everywhere). With gradient accumulation one non-finite
        micro-batch poisons the whole update."""
        bad = (~torch.isfinite(loss.detach())).float()
        if reduce is not None:
            bad = reduce(bad)
        finite = bad == 0
        self.finite = finite if self.finite is None else self.finite & finite
        if self.in_a_row is None or self.total is None:
            self.in_a_row = torch.zeros((), device=loss.device, dtype=torch.long)
            self.total = torch.zeros((), device=loss.device, dtype=torch.long)
        self.in_a_row = torch.where(finite, 0, self.in_a_row + 1)
        self.total = self.total + (~finite).long()

    def before_step(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
        """Keep a copy of what the step changes, and zero the gradients of ``params`` when the loss was
        not finite (so no NaN reaches the optimizer's state)."""
        if self.finite is None:
            return
        if self.finite.device.type == "cpu" and bool(self.finite):
            return  # on a CPU the verdict costs nothing to read: a finite step needs no copy to undo
        self.snapshot = [(t, t.detach().clone()) for t in step_tensors(params, optimizer)]
        for p in params:
            if p.grad is not None:
                p.grad.copy_(torch.where(self.finite, p.grad, 0.0))

    def after_step(self, params: list[torch.Tensor], optimizer: torch.optim.Optimizer) -> bool:
        """Put back what the step changed if the loss was not finite; True when a step was guarded."""
        if self.finite is None:
            return False
        if not self.snapshot:  # a finite step on a CPU (before_step kept nothing): nothing to undo
            self.finite = None
            return True
        before = {id(t): saved for t, saved in self.snapshot}
        with torch.no_grad():
            for t in step_tensors(params, optimizer):
                saved = before.get(id(t))  # state first created by this step goes back to zeros
                t.copy_(torch.where(self.finite, t, saved if saved is not None else torch.zeros_like(t)))
        self.snapshot, self.finite = [], None
        return True

    def check(self, step: int) -> None:
        """Warn about new non-finite steps; raise after ``max_in_a_row`` in a row (a host sync)."""
        if self.total is None or self.in_a_row is None:
            return
        total, in_a_row = int(self.total), int(self.in_a_row)
        if total > self.reported:
            log.warning(
                "step %d: %d non-finite loss(es) so far, %d in a row; their updates were undone", step, total, in_a_row
            )
            self.reported = total
        if in_a_row >= self.max_in_a_row:
            raise NonFiniteLossError(
                f"the loss was NaN or infinite {in_a_row} steps in a row at step {step}: "
                "lower trainer.lr or loss weights, or try trainer.precision=32-true; the last checkpoint is kept"
            )
