"""Untrusted files: checkpoints and weights load with weights_only=True; ONNX models are checked before use.

A pickle that would run code when loaded is refused with a one-line message, and its code
never runs (proved by a marker file it would create). A file that is not a fastnst ONNX
model gets a clear ModelError (CLI: exit 2, one line), not a crash inside onnxruntime.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import REPO, TINY, cli
from onnx import TensorProto, helper, numpy_helper

from fastnst.nn.vgg import VGGWeightsError, load_vgg19_state_dict
from fastnst.photos import sample_photos_dir
from fastnst.runtime.stylizer import ModelError, Stylizer


class TouchOnUnpickle:
    """Unpickling this runs ``Path(marker).touch()``: arbitrary code, as a malicious file would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def write_malicious(path: Path, payload: dict, marker: Path) -> Path:
    torch.save({**payload, "payload": TouchOnUnpickle(marker)}, path)
    assert not marker.exists()  # saving does not run it
    return path


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _train_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def malicious_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A real training checkpoint with one extra entry that runs code when unpickled."""
    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    marker = tmp_path / "PWNED"
    return write_malicious(tmp_path / "evil.ckpt", ckpt, marker), marker


# -- pickles ----------------------------------------------------------------------


def test_the_payload_really_runs_code_when_loaded_unsafely(tmp_path):
    """Control: without weights_only the payload runs, so its absence below means it was refused."""
    marker = tmp_path / "RAN"
    path = write_malicious(tmp_path / "x.pt", {"w": torch.zeros(2)}, marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_export_refuses_a_checkpoint_that_needs_code(malicious_checkpoint, tiny_checkpoint, tmp_path, monkeypatch):
    import fastnst.nn.export as export

    # The step of load_network that builds the network from the loaded dict.
    constructed = []
    real_build = export.build_network

    def spy(*args, **kwargs):
        constructed.append(args)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(export, "build_network", spy)
    export.load_network(tiny_checkpoint)  # control: the spy sees a real load
    assert len(constructed) == 1
    constructed.clear()

    path, marker = malicious_checkpoint
    rc, out, err = cli("export", path, "-o", tmp_path / "evil.onnx")
    assert rc == 2
    msg = lines(err)
    assert len(msg) == 1, err
    assert msg[0].startswith("error: ") and str(path) in msg[0]
    assert "refused, it needs code to load" in msg[0]
    assert "Traceback" not in err and not out.strip()
    assert not marker.exists()
    assert not constructed
    assert not (tmp_path / "evil.onnx").exists()


def test_train_resume_refuses_a_checkpoint_that_needs_code(malicious_checkpoint, tmp_path, vgg_weights_file):
    path, marker = malicious_checkpoint
    result = _train_cli(*TINY, f"ckpt_path={path}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if "error:" in line]
    assert len(errors) == 1, output[-3000:]
    assert f"ckpt_path={path}" in errors[0] and "refused" in errors[0]
    assert "Traceback" not in output
    assert not marker.exists()
    assert not list((tmp_path / "run").glob("*.ckpt"))


@pytest.fixture
def malicious_vgg(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    state = {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}
    return write_malicious(tmp_path / "vgg19_evil.pth", state, marker), marker


def test_vgg_weights_that_need_code_are_refused(malicious_vgg):
    path, marker = malicious_vgg
    with pytest.raises(VGGWeightsError) as e:
        load_vgg19_state_dict(str(path))
    assert str(path) in str(e.value) and "cannot be read" in str(e.value)
    assert not marker.exists()


def test_vgg_weights_refusal_is_one_line(malicious_vgg):
    path, marker = malicious_vgg
    rc, _, err = cli("vgg", "--weights", path)
    assert rc == 2 and not marker.exists()
    assert len(lines(err)) == 1, err


# -- ONNX models ------------------------------------------------------------------


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def foreign_model(path: Path) -> Path:
    """A valid ONNX model that is not fastnst's: Identity image -> stylized, no metadata."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])
    out = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["N", 3, "H", "W"])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["stylized"])], "foreign", [image], [out])
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def int64_model(path: Path) -> Path:
    """fastnst's names and metadata, but an int64 'image' input."""
    image = helper.make_tensor_value_info("image", TensorProto.INT64, ["N", 3, "H", "W"])
    stats = helper.make_tensor_value_info("norm_stats", TensorProto.FLOAT, [1, 4])
    out = helper.make_tensor_value_info("stylized", TensorProto.FLOAT, ["N", 3, "H", "W"])
    stats_out = helper.make_tensor_value_info("norm_stats_out", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Cast", ["image"], ["stylized"], to=TensorProto.FLOAT),
        helper.make_node("Identity", ["norm_stats"], ["norm_stats_out"]),
    ]
    init = [numpy_helper.from_array(np.zeros((1, 4), np.float32), "norm_stats")]
    graph = helper.make_graph(nodes, "int64_image", [image, stats], [out, stats_out], initializer=init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for key, value in {"fastnst.format": "1", "fastnst.style_name": "impostor"}.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return _save(model, path)


def bad_model(kind: str, folder: Path, tiny_onnx: Path) -> tuple[Path, str]:
    """A model file that must be refused, and the words its message must contain."""
    if kind == "truncated":
        path = folder / "truncated.onnx"
        data = tiny_onnx.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path, "not a readable ONNX model"
    if kind == "empty":
        path = folder / "empty.onnx"
        path.write_bytes(b"")
        return path, "not a readable ONNX model"
    if kind == "jpeg":
        path = folder / "photo.onnx"
        path.write_bytes((sample_photos_dir() / "coffee.jpg").read_bytes())
        return path, "not a readable ONNX model"
    if kind == "foreign":
        return foreign_model(folder / "foreign.onnx"), "not a fastnst model"
    if kind == "int64":
        return int64_model(folder / "int64.onnx"), "tensor(int64)"
    raise AssertionError(kind)


KINDS = ("truncated", "empty", "jpeg", "foreign", "int64")


def test_a_real_model_passes_the_checks(tiny_onnx):
    stylizer = Stylizer(tiny_onnx, device="cpu")
    assert stylizer.metadata["fastnst.format"] and stylizer.style == "starry_night"


@pytest.mark.parametrize("kind", KINDS)
def test_stylizer_refuses_a_file_that_is_not_a_fastnst_model(kind, tiny_onnx, tmp_path):
    path, words = bad_model(kind, tmp_path, tiny_onnx)
    with pytest.raises(ModelError) as e:
        Stylizer(path, device="cpu")
    message = str(e.value)
    assert message.startswith(str(path)) and words in message and "\n" not in message, message
    if kind == "int64":
        assert "'image'" in message and "float32 (N, 3, H, W)" in message


@pytest.mark.parametrize("kind", KINDS)
def test_infer_cli_refuses_a_file_that_is_not_a_fastnst_model(kind, tiny_onnx, tmp_path):
    path, words = bad_model(kind, tmp_path, tiny_onnx)
    photo = sample_photos_dir() / "coffee.jpg"
    rc, out, err = cli("infer", photo, "--model", path, "-o", tmp_path / "out.jpg", "-q")
    assert rc == 2
    msg = lines(err)
    assert len(msg) == 1, err
    assert msg[0].startswith(f"error: {path}") and words in msg[0]
    assert "Traceback" not in err and not out.strip()
    assert not (tmp_path / "out.jpg").exists()
