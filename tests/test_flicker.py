"""The flicker measure: warp operator, optical flow and warping error on a pan of known motion, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO, asset, remux
from PIL import Image

from fastnst.runtime.flicker import occlusion_mask, optical_flow, warp, warping_error

pytest.importorskip("cv2", reason="the flicker measure needs OpenCV: pip install -e '.[video]'")

SHIFT = 3  # pixels per frame of the synthetic pan


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(Image.open(REPO / "fastnst" / "assets" / "sample_photos" / "chelsea.jpg").convert("RGB"))


@pytest.fixture(scope="module")
def pan(photo: np.ndarray) -> list[np.ndarray]:
    """A camera panning right over a real photo by SHIFT px a frame: frame t (x) = frame t-1 (x + SHIFT)."""
    h, w = 200, 240
    return [photo[50 : 50 + h, 20 + t * SHIFT : 20 + t * SHIFT + w].copy() for t in range(6)]


def test_warp_by_a_constant_flow_undoes_a_known_shift(photo):
    image = photo.astype(np.float32) / 255
    shifted = image[:, SHIFT:]  # shifted(x) = image(x + 3)
    flow = np.zeros((*image.shape[:2], 2), np.float32)
    flow[..., 0] = SHIFT
    warped = warp(image, flow)
    np.testing.assert_allclose(warped[:, :-SHIFT], shifted, atol=1e-6)  # exact at whole pixels
    assert np.abs(warp(image, np.zeros_like(flow)) - image).max() < 1e-6
    assert np.abs(warped[:, :-SHIFT] - image[:, :-SHIFT]).mean() > 0.01  # the shift did move it


def test_optical_flow_recovers_the_pan(pan):
    flow = optical_flow(pan[1], pan[0])  # frame 1 (x) = frame 0 (x + SHIFT)
    interior = flow[16:-16, 16:-16]
    assert np.abs(interior[..., 0] - SHIFT).max() < 0.5
    assert np.abs(interior[..., 1]).max() < 0.5


def test_occlusion_mask_drops_pixels_that_leave_the_frame(pan):
    flow = optical_flow(pan[1], pan[0])
    mask = occlusion_mask(flow, optical_flow(pan[0], pan[1]))
    assert mask[16:-16, 16:-16].min() == 1.0  # the consistent interior
    assert mask[:, -1].max() == 0.0  # x + 3 is outside the frame


def test_warping_error_is_zero_for_the_identity_and_grows_with_flicker(pan):
    assert warping_error(pan, pan) < 1e-3
    rng = np.random.default_rng(0)
    noisy = [np.clip(f / 255 + rng.normal(0, 0.05, f.shape), 0, 1) for f in pan]
    assert warping_error(pan, noisy) > 0.003  # about 2 x 0.05^2, far above the identity's
    static = [pan[0]] * len(pan)  # a "model" that ignores the motion is wrong wherever the photo has texture
    assert warping_error(pan, static) > 10 * warping_error(pan, pan)


def test_eval_video_prints_both_figures_and_writes_json(tmp_path, capsys):
    from fastnst.cli import main

    clip = asset("videos/bikes.mp4")
    out = tmp_path / "flicker"
    args = ["eval", "--video", str(clip), "--model", "wave", "--frames", "6", "--max-size", "160", "-o", str(out)]
    assert main(args) == 0
    report = json.loads((out / "flicker.json").read_text())
    assert report["frames"] == 6 and report["pairs"] == 5 and max(report["size"]) == 160
    wave = report["models"]["wave"]["warping_error"]
    floor = report["input_warping_error"]
    assert 0 < floor < wave  # per-frame stylization flickers more than the clip itself
    printed = capsys.readouterr().out
    assert f"{wave:.6f}" in printed and f"{floor:.6f}" in printed and "5 pairs" in printed


def test_eval_without_video_still_needs_style_and_content(capsys):
    from fastnst.cli import main

    assert main(["eval", "--model", "wave"]) != 0
    assert "--style and --content are required" in capsys.readouterr().err


def test_eval_video_without_the_judges_weights_fails_before_any_frame_is_stylized(tmp_path, capsys, monkeypatch):
    from fastnst.cli import main
    from fastnst.runtime import stylizer

    calls = []
    real = stylizer.Stylizer.__call__
    monkeypatch.setattr(stylizer.Stylizer, "__call__", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(tmp_path / "no_such_weights"))
    clip = asset("videos/bikes.mp4")
    out = tmp_path / "flicker"
    args = ["eval", "--video", str(clip), "--model", "wave", "--style", "wave", "--frames", "3", "--max-size", "64"]
    assert main([*args, "-o", str(out), "-q"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: FASTNST_VGG_WEIGHTS=") and "no such file" in line
    assert calls == [] and not out.exists()  # once: every frame stylized, then this error, nothing written


def test_eval_video_measures_a_file_cut_short_on_the_frames_it_has(tmp_path, capsys):
    pytest.importorskip("av")
    from fastnst.cli import main

    whole = remux(asset("videos/bikes.mp4"), tmp_path / "whole.mp4", movflags="faststart")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 10])  # the header first, then a tenth
    out = tmp_path / "flicker"
    assert main(["eval", "--video", str(cut), "--model", "wave", "--max-size", "64", "-o", str(out), "-q"]) == 0
    report = json.loads((out / "flicker.json").read_text())
    (warning,) = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith(f"warning: {cut}: {report['frames']} frames read, then: ")
    assert 2 <= report["frames"] < 250 and "Errno" not in warning
