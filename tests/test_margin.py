"""The replicated margin is a property of each network: ``fastnst export --margin`` records it, ``Stylizer`` uses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import cli

from fastnst.runtime.onnx_contract import DEFAULT_MARGIN, MARGIN_KEY, model_margin
from fastnst.runtime.stylizer import ModelError, Stylizer


def field(width: int = 96, height: int = 64) -> np.ndarray:
    """A smooth colour field, float (H, W, 3) in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / width, y / height, 0.5 + 0 * x], axis=-1)


def direct_run(model: Path, image: np.ndarray, margin: int) -> np.ndarray:
    """The model on ``image`` padded by ``margin`` replicated pixels, cropped back: what Stylizer should do."""
    padded = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="edge")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (out,) = session.run(["stylized"], {"image": padded.transpose(2, 0, 1)[None].copy()})
    h, w = image.shape[:2]
    return out[0, :, margin : margin + h, margin : margin + w].transpose(1, 2, 0)


def with_metadata(model: Path, path: Path, key: str, value: str) -> Path:
    """A copy of ``model`` with one metadata property set."""
    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props}
    onnx.helper.set_model_props(proto, {**props, key: value})
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize(
    "metadata, margin", [({}, DEFAULT_MARGIN), ({MARGIN_KEY: "0"}, 0), ({MARGIN_KEY: "8"}, 8), ({MARGIN_KEY: "32"}, 32)]
)
def test_model_margin_reads_the_key_or_gives_the_default(metadata, margin):
    assert model_margin(metadata) == margin


@pytest.mark.parametrize("value", ["6", "-4", "8px", "", " 8", "1e3"])
def test_model_margin_refuses_what_is_not_a_multiple_of_4_pixels(value):
    with pytest.raises(ValueError, match=MARGIN_KEY):
        model_margin({MARGIN_KEY: value})


def test_export_records_the_margin_and_stylizer_uses_it(tiny_checkpoint, tiny_onnx, tmp_path):
    rc, _, err = cli("export", tiny_checkpoint, "-o", tmp_path / "m0.onnx", "--margin", "0")
    assert rc == 0, err
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m0.onnx")).metadata_props}
    assert meta[MARGIN_KEY] == "0"
    image = field()
    recorded = Stylizer(tmp_path / "m0.onnx", device="cpu")
    assert recorded.margin == 0
    np.testing.assert_allclose(recorded(image), direct_run(tmp_path / "m0.onnx", image, 0), atol=1e-5, rtol=0)
    # The caller's margin wins; a model without the key gets the default, as every model before it did.
    assert Stylizer(tmp_path / "m0.onnx", device="cpu", margin=16).margin == 16
    unrecorded = Stylizer(tiny_onnx, device="cpu")
    assert MARGIN_KEY not in unrecorded.metadata and unrecorded.margin == DEFAULT_MARGIN == 16
    np.testing.assert_allclose(unrecorded(image), direct_run(tiny_onnx, image, 16), atol=1e-5, rtol=0)


def test_a_bad_margin_in_a_model_is_one_line_naming_the_file(tiny_onnx, tmp_path):
    broken = with_metadata(tiny_onnx, tmp_path / "broken.onnx", MARGIN_KEY, "6")
    with pytest.raises(ModelError) as error:
        Stylizer(broken, device="cpu")
    message = str(error.value)
    assert str(broken) in message and MARGIN_KEY in message and "\n" not in message
    assert Stylizer(broken, device="cpu", margin=8).margin == 8  # a margin given is not the model's


@pytest.mark.parametrize("margin", ["6", "-4"])
def test_export_refuses_a_bad_margin_before_any_work(tiny_checkpoint, tmp_path, margin):
    output = tmp_path / "out" / "model.onnx"
    rc, _, err = cli("export", tiny_checkpoint, "-o", output, "--margin", margin)
    assert rc != 0 and f"margin={margin}" in err and "multiple of 4" in err
    assert len(err.strip().splitlines()) == 1 and not output.parent.exists()


def test_the_margin_is_not_a_training_setting():
    from fastnst.nn.export import _metadata, training_settings

    hparams = {"style_name": "wave", "width": 0.5}
    meta = _metadata({**hparams, "margin": 8}, "fp32", 768)
    assert meta[MARGIN_KEY] == "8"
    assert "margin" not in training_settings(meta)
