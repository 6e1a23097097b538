"""The stability term for video (issue 16): the warp operator, the loss, and exact resume of a run with it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import TINY, load_train_script

from fastnst.nn.losses import layered_warp, object_masks, object_warps, random_warps, stability_loss, warp


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


def test_object_masks_are_ellipses_of_the_set_sizes_and_reproducible():
    a = object_masks(64, 40, 60, torch.Generator().manual_seed(2))
    assert a.shape == (64, 1, 40, 60) and torch.equal(a, object_masks(64, 40, 60, torch.Generator().manual_seed(2)))
    assert set(a.unique().tolist()) == {0.0, 1.0}
    area = a.mean(dim=(1, 2, 3))  # pi * half-axes, clipped by the border where the ellipse reaches it
    assert area.min() > 0.5 * math.pi * 0.15**2 and area.max() < math.pi * 0.35**2
    assert area.std() > 0.03  # sizes vary


def test_object_warps_add_a_bounded_shift_to_the_background_motion():
    background = random_warps(64, torch.Generator().manual_seed(1))
    objects = object_warps(background, torch.Generator().manual_seed(1))
    torch.testing.assert_close(objects[:, :, :2], background[:, :, :2], rtol=0, atol=0)  # same rotation and zoom
    extra = (objects - background)[:, :, 2]
    assert (extra.abs() <= 0.08 + 1e-6).all() and extra.abs().max() > 0.04  # up to 4% of the size


def test_layered_warp_moves_the_object_over_the_still_background():
    image = torch.rand(1, 3, 16, 32)
    mask = torch.zeros(1, 1, 16, 32)
    mask[..., 4:12, 10:20] = 1  # the object, moved 3 px left: at columns 7..16 in the view
    still = torch.eye(2, 3)[None]
    moved, valid = layered_warp(image, still, _shift(3, 32), mask)
    torch.testing.assert_close(moved[..., 4:12, 7:17], image[..., 4:12, 10:20], rtol=0, atol=1e-6)
    torch.testing.assert_close(moved[..., :4, :], image[..., :4, :], rtol=0, atol=1e-6)  # above it: the background
    torch.testing.assert_close(moved[..., 4:12, 17:], image[..., 4:12, 17:], rtol=0, atol=1e-6)  # uncovered: unchanged
    assert valid.min() == 1  # nothing came from beyond the border
    plain, plain_valid = layered_warp(image, _shift(3, 32), _shift(3, 32), mask)  # object moving with the camera
    torch.testing.assert_close(plain, warp(image, _shift(3, 32))[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(plain_valid, warp(image, _shift(3, 32))[1], rtol=0, atol=1e-6)


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


def test_training_with_layered_motion_logs_the_stability_term(compose, tmp_path, vgg_weights_file):
    run = _train(compose, tmp_path / "layered", [*TINY, "loss.temporal_weight=1", "loss.stability_motion=layered"])
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and b"train/stability" in b"".join(e.read_bytes() for e in events)
    hparams = torch.load(run / "last.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["stability_motion"] == "layered"


def test_a_per_frame_run_goes_on_with_the_stability_term(compose, tmp_path, vgg_weights_file):
    """Making a trained network stable (README): resume its run with loss.temporal_weight set."""
    per_frame = _train(compose, tmp_path / "per_frame", [*TINY, "trainer.max_steps=2"])
    settings = [*TINY, "loss.temporal_weight=1", "trainer.max_steps=4", f"ckpt_path={per_frame / 'last.ckpt'}"]
    stable = _train(compose, tmp_path / "stable", settings)
    saved = torch.load(stable / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 4 and saved["hyper_parameters"]["temporal_weight"] == 1
    events = list((stable / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and b"train/stability" in b"".join(e.read_bytes() for e in events)
