"""The trained styles shipped in checkpoints/ load and stylize, with the metadata their README states."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from fastnst.data import sample_photos_dir
from fastnst.infer import Stylizer

MODELS = sorted((REPO / "checkpoints").glob("*.onnx"))


def test_at_least_one_style_is_shipped():
    assert "starry_night" in [m.stem for m in MODELS]


@pytest.mark.parametrize("model", MODELS, ids=[m.stem for m in MODELS])
def test_shipped_model_stylizes(model):
    stylizer = Stylizer(model, device="cpu")
    assert stylizer.style == model.stem
    assert stylizer.metadata["fastnst.precision"] == "fp16"
    photo = Image.open(sample_photos_dir() / "chelsea.jpg").convert("RGB")
    out = np.asarray(stylizer(photo), np.float32) / 255
    assert out.shape == np.asarray(photo).shape and np.isfinite(out).all()
    # Really stylized: far from the photo, but its structure is there (edges correlate).
    src = np.asarray(photo, np.float32) / 255
    assert np.abs(out - src).mean() > 0.1
    gx_out, gx_src = np.abs(np.diff(out.mean(2), axis=1)), np.abs(np.diff(src.mean(2), axis=1))
    assert np.corrcoef(gx_out.ravel(), gx_src.ravel())[0, 1] > 0.2
    assert (model.parent / "README.md").read_text().count(model.name) >= 1  # documented, with its command
