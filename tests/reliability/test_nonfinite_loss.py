"""A NaN or infinite loss skips its step with a warning; several in a row stop the run, keeping the last checkpoint."""

from __future__ import annotations

import logging

import pytest
import torch

from fastnst.nn.losses import PerceptualLoss
from fastnst.training.nonfinite import NonFiniteLossError


def poison_losses(monkeypatch: pytest.MonkeyPatch, bad_calls: set[int]) -> None:
    """Make the loss NaN on the given training forward passes (a real NaN flowing through backward)."""
    real_forward = PerceptualLoss.forward
    calls = {"n": 0}

    def forward(self, output, content=None, **options):
        terms = real_forward(self, output, content, **options)
        if torch.is_grad_enabled():  # training steps, not validation
            calls["n"] += 1
            if calls["n"] in bad_calls:
                terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(PerceptualLoss, "forward", forward)


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_a_nan_step_is_skipped_and_training_goes_on(run_training, tmp_path, monkeypatch, caplog):
    poison_losses(monkeypatch, {3})
    with caplog.at_level(logging.WARNING, logger="fastnst.training.nonfinite"):
        run = run_training(tmp_path / "run", ["trainer.max_steps=5"])
    assert any("non-finite loss" in r.message for r in caplog.records)
    ckpt = load(run / "last.ckpt")
    assert ckpt["global_step"] == 5  # the skipped step counts: the data position stays tied to it
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert all(torch.isfinite(v).all() for s in ckpt["optimizer_states"][0]["state"].values() for v in s.values())


def test_nan_steps_in_a_row_stop_the_run_and_keep_the_last_checkpoint(run_training, tmp_path, monkeypatch):
    poison_losses(monkeypatch, set(range(5, 100)))
    with pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        run_training(
            tmp_path / "run",
            ["trainer.max_steps=20", "trainer.max_nonfinite_steps=3", "trainer.checkpoint_every_n_steps=2"],
        )
    good = load(tmp_path / "run" / "step=0000004.ckpt")
    assert good["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in good["state_dict"].values())
    # Steps after the NaNs began updated nothing: a later checkpoint holds the same weights.
    later = load(tmp_path / "run" / "step=0000006.ckpt")
    for key, value in good["state_dict"].items():
        assert torch.equal(later["state_dict"][key], value), key
    # ...and left the optimizer as it was: moments and step counts (an undone step, not a zero-gradient one).
    before, after = good["optimizer_states"][0]["state"], later["optimizer_states"][0]["state"]
    for index, state in before.items():
        for name, value in state.items():
            assert torch.equal(after[index][name], value), (index, name)


def adam_after_one_step() -> tuple[torch.nn.Parameter, torch.optim.Adam]:
    """A small weight and its Adam, one plain step taken (the state exists, as after a real first step)."""
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(4, 3))
    optimizer = torch.optim.Adam([weight], lr=0.1)
    weight.square().sum().backward()
    optimizer.step()
    optimizer.zero_grad()
    return weight, optimizer


def step_with(guard, weight, optimizer, scale: float) -> tuple[bool, list]:
    """One optimizer step under ``guard`` on the loss ``scale * sum(weight^2)``: after_step's answer and
    what before_step copied."""
    loss = weight.square().sum() * scale
    loss.backward()
    guard.observe(loss)
    guard.before_step([weight], optimizer)
    copied = list(guard.snapshot)
    optimizer.step()
    optimizer.zero_grad()
    return guard.after_step([weight], optimizer), copied


def test_the_guard_copies_nothing_for_a_finite_cpu_step_and_undoes_a_nan_one():
    from fastnst.training.nonfinite import NonFiniteGuard

    # A finite loss on a CPU: no copy of the weights, and the step is the optimizer's own.
    weight, optimizer = adam_after_one_step()
    guarded, copied = step_with(NonFiniteGuard(3), weight, optimizer, 1.0)
    plain, plain_optimizer = adam_after_one_step()
    plain.square().sum().backward()
    plain_optimizer.step()
    assert guarded and copied == []
    assert torch.equal(weight, plain)

    # A NaN loss: the weights and Adam's moments and step count are as before the step.
    weight, optimizer = adam_after_one_step()
    before = weight.detach().clone(), {k: v.clone() for k, v in optimizer.state[weight].items()}
    guard = NonFiniteGuard(3)
    guarded, copied = step_with(guard, weight, optimizer, float("nan"))
    assert guarded and copied
    assert torch.equal(weight, before[0])
    for key, value in before[1].items():
        assert torch.equal(optimizer.state[weight][key], value), key
    assert (int(guard.in_a_row), int(guard.total)) == (1, 1)
