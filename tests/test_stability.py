"""The stability term for video (issue 16): the warp operator, the loss, and exact resume of a run with it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY, load_train_script

from fastnst.nn.losses import random_warps, stability_loss, warp


def _shift(pixels: float, width: int) -> torch.Tensor:
    """The affine matrix that samples each output pixel ``pixels`` to the right in the input."""
    return torch.tensor([[[1.0, 0.0, 2 * pixels / width], [0.0, 1.0, 0.0]]])


def test_warp_by_a_known_shift_moves_the_image_and_masks_what_came_from_outside():
    image = torch.rand(1, 3, 16, 32)
    warped, valid = warp(image, _shift(3, 32))
    torch.testing.assert_close(warped[..., :29], image[..., 3:], rtol=0, atol=1e-6)
    assert valid[..., :29].min() == 1 and valid[..., 29:].max() == 0


def test_warp_leaves_the_caller_tensor_alone_and_identity_gives_it_back():
    image = torch.rand(2, 3, 8, 8)
    before = image.clone()
    warped, valid = warp(image, torch.eye(2, 3).expand(2, 2, 3))
    torch.testing.assert_close(warped, image, rtol=0, atol=1e-6)
    assert valid.min() == 1 and torch.equal(image, before)


def test_random_warps_are_small_and_reproducible():
    a = random_warps(64, torch.Generator().manual_seed(1))
    b = random_warps(64, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert (a[:, :, 2].abs() <= 0.04 + 1e-6).all()  # shifts: at most 2% of the size (normalised span 2)
    linear = a[:, :, :2]
    assert ((linear - torch.eye(2)).abs() <= 0.05).all()  # within 1 degree and 2% zoom of the identity


def test_stability_loss_known_values():
    second = torch.zeros(1, 3, 2, 2)
    first = torch.ones(1, 3, 2, 2)
    valid = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert stability_loss(second, first, valid).item() == pytest.approx(1.0)  # masked pixels do not count
    assert stability_loss(first, first, valid).item() == 0.0


def _train(compose, run_dir: Path, overrides: list[str]) -> Path:
    load_train_script().train(compose(overrides), run_dir)
    return run_dir


def test_training_with_the_stability_term_logs_it_and_resumes_exactly(compose, tmp_path, vgg_weights_file):
    settings = [*TINY, "loss.temporal_weight=1", "trainer.max_steps=4"]
    full = _train(compose, tmp_path / "full", settings)
    half = _train(compose, tmp_path / "half", [*settings, "trainer.max_steps=2"])
    resumed = _train(compose, tmp_path / "resumed", [*settings, f"ckpt_path={half / 'last.ckpt'}"])

    def state(run: Path) -> dict[str, torch.Tensor]:
        return torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]

    for key, value in state(full).items():
        torch.testing.assert_close(state(resumed)[key], value, rtol=0, atol=1e-6, msg=key)
    assert any(not torch.allclose(v, state(full)[k]) for k, v in state(half).items())
    events = list((full / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and b"train/stability" in b"".join(e.read_bytes() for e in events)
