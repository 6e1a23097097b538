"""Training from a one-style network (``init=<checkpoint, .onnx or shipped model>``): a fine-tune.

The network rebuilt from an ONNX export against the export itself (every shipped one-style model) and
against the checkpoint it came from; real runs that start from a checkpoint, from its export and from a
shipped model by name; exact resume; one-line errors for what a one-style network cannot do.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, load_train_script

from fastnst.errors import FastNSTError
from fastnst.nn.export import load_network
from fastnst.nn.onnx_import import network_from_onnx
from fastnst.styles import shipped_models, shipped_quality_models, shipped_video_models


def _train(compose, run_dir: Path, overrides: list[str]) -> Path:
    """A real training run in-process, the way train.py's main does it (expand_styles, then train)."""
    from fastnst.training.style_set import expand_styles

    load_train_script().train(expand_styles(compose(overrides), overrides), run_dir)
    return run_dir


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


ONE_STYLE = {**shipped_models(), **shipped_quality_models(), **shipped_video_models()}


@pytest.mark.parametrize("name", sorted(ONE_STYLE))
def test_network_from_onnx_computes_what_the_shipped_export_computes(name):
    import onnxruntime as ort

    net, settings = network_from_onnx(ONE_STYLE[name])
    assert settings["style_name"] == name.removesuffix("_hq").removesuffix("_stable")
    image = np.random.default_rng(0).uniform(0, 255, (1, 3, 40, 56)).astype(np.float32)
    session = ort.InferenceSession(str(ONE_STYLE[name]), providers=["CPUExecutionProvider"])
    (expected,) = session.run(["stylized"], {"image": image})
    with torch.no_grad():
        got = net(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5)


def test_network_from_onnx_gives_the_checkpoints_weights(tiny_checkpoint, tiny_onnx):
    rebuilt, settings = network_from_onnx(tiny_onnx)
    trained, hparams = load_network(tiny_checkpoint)
    assert {k: settings[k] for k in ("architecture", "width", "num_residual_blocks")} == {
        k: hparams[k] for k in ("architecture", "width", "num_residual_blocks")
    }
    expected = trained.state_dict()
    for key, value in rebuilt.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-7, msg=key)


def test_network_from_onnx_names_the_file_in_one_line(tmp_path, tiny_conditional_checkpoint):
    from fastnst.nn.export import export_onnx

    with pytest.raises(FastNSTError, match=f"^{tmp_path / 'gone.onnx'}: no such file$"):
        network_from_onnx(tmp_path / "gone.onnx")
    notes = tmp_path / "notes.onnx"
    notes.write_text("my notes")
    with pytest.raises(FastNSTError, match=f"^{notes}: not an ONNX file"):
        network_from_onnx(notes)
    several = export_onnx(tiny_conditional_checkpoint, tmp_path / "three.onnx").path
    with pytest.raises(FastNSTError, match=f"^{several}: a network of several styles; only one-style exports"):
        network_from_onnx(several)


SEED1 = [*TINY, "seed=1"]  # another start than the tiny checkpoint's (seed 0): only init= brings its weights


def test_init_fine_tunes_every_weight_of_a_checkpoint_or_its_export(compose, tmp_path, tiny_checkpoint, tiny_onnx):
    base = {k.removeprefix("net."): v for k, v in _state(tiny_checkpoint).items() if k.startswith("net.")}
    from_ckpt = _train(compose, tmp_path / "ckpt", [*SEED1, f"init={tiny_checkpoint}", "trainer.max_steps=2"])
    state = _state(from_ckpt / "last.ckpt")
    moved = {k: float((state[f"net.{k}"] - v).abs().max()) for k, v in base.items() if v.dtype.is_floating_point}
    assert all(0 < d < 0.05 for d in moved.values()), moved  # every weight trained, two small steps from the base
    scratch = _state(_train(compose, tmp_path / "scratch", [*SEED1, "trainer.max_steps=2"]) / "last.ckpt")
    assert max(float((scratch[f"net.{k}"] - v).abs().max()) for k, v in base.items()) > 0.1
    from_onnx = _state(
        _train(compose, tmp_path / "onnx", [*SEED1, f"init={tiny_onnx}", "trainer.max_steps=2"]) / "last.ckpt"
    )
    for key, value in state.items():
        torch.testing.assert_close(from_onnx[key], value, rtol=0, atol=1e-6, msg=key)
    hparams = torch.load(from_ckpt / "last.ckpt", map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["init"] == str(tiny_checkpoint) and not hparams["styles"]


def test_fine_tune_resumes_exactly(compose, tmp_path, tiny_checkpoint):
    overrides = [*SEED1, f"init={tiny_checkpoint}"]
    full = _train(compose, tmp_path / "full", overrides)
    half = _train(compose, tmp_path / "half", [*overrides, "trainer.max_steps=2"])
    resumed = _train(compose, tmp_path / "resumed", [*overrides, f"ckpt_path={half / 'last.ckpt'}"])
    a, b = _state(full / "last.ckpt"), _state(resumed / "last.ckpt")
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=0, atol=1e-6, msg=key)


def test_init_takes_a_shipped_model_by_name_and_tells_its_loss(compose, tmp_path, caplog):
    """TINY's network is small at width 0.25 and its loss is shallow: the shipped light wave network is
    trained, at full width, and the log says where its recorded loss differs from the run's."""
    with caplog.at_level(logging.INFO, logger="fastnst.training.module"):
        run = _train(compose, tmp_path / "wave", [*TINY, "style=wave", "init=wave", "trainer.max_steps=1"])
    _, hparams = load_network(run / "last.ckpt")
    assert (hparams["architecture"], hparams["width"]) == ("light", 1.0)
    log = caplog.text
    assert "init=wave: the base's network shape is used" in log and "init=wave was trained with {" in log
    assert "'style_size': 256" in log and "this run's loss differs there" in log


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("style=[wave,udnie]", "a network of one style, fine-tuned by a run of one style without model.strength"),
        ("model.strength=true", "a network of one style, fine-tuned by a run of one style without model.strength"),
        ("init_style=wave", "init_style=wave: for a conditional base; init="),
    ],
)
def test_what_a_one_style_init_cannot_do_is_one_line(compose, tmp_path, tiny_checkpoint, change, message):
    with pytest.raises(FastNSTError, match=message) as err:
        _train(compose, tmp_path / "run", [*TINY, f"init={tiny_checkpoint}", change])
    assert "\n" not in str(err.value) and not (tmp_path / "run" / "last.ckpt").exists()


def test_an_unknown_init_lists_the_shipped_names(compose, tmp_path):
    with pytest.raises(FastNSTError) as err:
        _train(compose, tmp_path / "run", [*TINY, "init=nothing"])
    message = str(err.value)
    assert message.startswith("init=nothing: nothing: no such checkpoint or ONNX file, and not a shipped base or style")
    assert "six_styles" in message and "wave_hq" in message and "udnie," in message and "\n" not in message
