"""loss.teacher: a network trained to match another network's results too (distillation)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY

from fastnst.errors import FastNSTError
from fastnst.nn.images import load_image
from fastnst.photos import sample_photos_dir
from fastnst.runtime.stylizer import Stylizer
from fastnst.training.checks import validate_config
from fastnst.training.module import StyleTransferModule
from fastnst.training.style_set import expand_styles


def test_a_run_with_a_teacher_trains_on_its_results(run_training, tiny_onnx, tmp_path, caplog):
    """The teacher term is logged and shown in the progress line, the checkpoint records the teacher, and
    the module's targets are the teacher's results through Stylizer, photo by photo."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    overrides = [f"loss.teacher={tiny_onnx}", "loss.teacher_weight=2.5", "trainer.max_steps=2"]
    with caplog.at_level(logging.INFO, logger="fastnst.training.trainer"):
        run = run_training(tmp_path / "run", overrides)
    assert any("step 2/2 | loss" in m and ", teacher " in m for m in caplog.messages), caplog.messages
    tags = set(EventAccumulator(str(run / "tensorboard")).Reload().Tags()["scalars"])
    assert {"train/teacher", "val/teacher"} <= tags, tags
    module = StyleTransferModule.load_from_checkpoint(run / "last.ckpt", map_location="cpu")
    assert module.hparams.teacher == str(tiny_onnx) and module.hparams.teacher_weight == 2.5

    module.setup("fit")
    photos = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    targets = module._teacher_results(photos)
    expected = Stylizer(tiny_onnx, device="cpu").stylize_arrays(list(photos.permute(0, 2, 3, 1).numpy()))
    assert targets.shape == photos.shape
    np.testing.assert_allclose(targets.permute(0, 2, 3, 1).numpy(), np.stack([r.image for r in expected]), atol=1e-6)
    assert module.perceptual is not None and module.perceptual.teacher_weight == 2.5


def test_the_teacher_term_pulls_the_network_towards_the_teacher(run_training, tiny_onnx, tmp_path):
    """Trained on the teacher term alone, the network ends closer to the teacher's results than it began."""
    # seed=1: the teacher (TINY, seed 0) began from the weights seed 0 would give the student.
    alone = ["loss.content_weight=0", "loss.style_weight=0", "loss.tv_weight=0", f"loss.teacher={tiny_onnx}", "seed=1"]
    before = run_training(tmp_path / "before", [*alone, "trainer.max_steps=1"])
    after = run_training(tmp_path / "after", [*alone, "trainer.max_steps=12"])
    files = sorted(sample_photos_dir().iterdir())[:3]  # photos like those it trained on (TINY: data=sample)
    photos = torch.cat([F.interpolate(load_image(f, size=32), size=(32, 32)) for f in files])
    distances = []
    for run in (before, after):
        module = StyleTransferModule.load_from_checkpoint(run / "last.ckpt", map_location="cpu")
        module.setup("fit")
        with torch.no_grad():
            terms = module.perceptual(module(photos), photos, teacher=module._teacher_results(photos))
        distances.append(float(terms["teacher"]))
    assert distances[1] < 0.8 * distances[0], distances


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("loss.teacher=no_such_model", "loss.teacher=no_such_model: "),
        ("style=[wave,udnie]", "only for a network of one style without a trained strength"),
        ("model.strength=true", "only for a network of one style without a trained strength"),
    ],
)
def test_a_teacher_that_cannot_teach_is_a_one_line_error(compose, tiny_onnx, change, expected):
    teacher = [] if change.startswith("loss.teacher=") else [f"loss.teacher={tiny_onnx}"]
    overrides = [*TINY, *teacher, change]
    with pytest.raises(FastNSTError) as err:
        validate_config(expand_styles(compose(overrides), overrides))
    message = str(err.value)
    assert "\n" not in message and message.startswith("loss.teacher=") and expected in message, message
