"""Instance-norm statistics smoothed across video frames (fastnst.runtime.temporal) and its CLI options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import asset, models_with_variant

from fastnst.runtime.stylizer import Stylizer
from fastnst.runtime.temporal import SmoothedStats, smooth_stats, stats_change

CLIP = "videos/bikes.mp4"
OTHER_CLIP = "videos/bigbuckbunny.mp4"


def test_smooth_stats_known_values() -> None:
    running = np.array([[1.0, 2.0, 4.0]], np.float32)
    frame = np.array([[3.0, 2.0, 0.0]], np.float32)
    before = running.copy()
    np.testing.assert_allclose(smooth_stats(running, frame, 0.75), [[1.5, 2.0, 3.0]])
    np.testing.assert_allclose(smooth_stats(running, frame, 0.0), frame)
    first = smooth_stats(None, frame, 0.9)
    np.testing.assert_array_equal(first, frame)
    first[0, 0] = 99  # a copy: the caller's array is never the running average
    assert frame[0, 0] == 3.0 and np.array_equal(running, before)


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_momentum_out_of_range_is_refused(momentum: float) -> None:
    with pytest.raises(ValueError, match=f"momentum={momentum}: expected a momentum"):
        smooth_stats(None, np.zeros(3, np.float32), momentum)
    with pytest.raises(ValueError, match="momentum"):
        SmoothedStats(Stylizer("wave"), momentum)


def test_stats_change_known_values() -> None:
    running = np.array([3.0, 4.0], np.float32)  # norm 5
    assert stats_change(running, running) == 0.0
    assert stats_change(running, np.array([3.0, 9.0], np.float32)) == pytest.approx(1.0)
    assert stats_change(running, np.array([0.0, 0.0], np.float32)) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    pytest.importorskip("av", reason="reading the clips needs PyAV: pip install -e '.[video]'")
    pytest.importorskip("cv2", reason="resizing the clips needs OpenCV: pip install -e '.[video]'")
    from fastnst.runtime.flicker import read_frames

    return read_frames(asset(CLIP), limit=4, max_size=96)


def test_a_frame_given_its_own_statistics_is_stylized_as_without(frames: list[np.ndarray]) -> None:
    stylizer = Stylizer("wave")
    own, stats = stylizer.stylize_frame(frames[0])
    again, stats_again = stylizer.stylize_frame(frames[0], stats)
    assert stats.shape == (1, int(stylizer.metadata["fastnst.norm_stats_size"]))
    np.testing.assert_allclose(again.image, own.image, atol=2e-4)
    np.testing.assert_allclose(stats_again, stats, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(own.image, stylizer.stylize_arrays([frames[0]])[0].image, atol=1e-6)


def test_a_still_clip_is_stylized_as_each_frame_alone(frames: list[np.ndarray]) -> None:
    """Every frame of a still clip has the same statistics, so the average is those statistics."""
    stylizer = Stylizer("wave")
    smoothed = SmoothedStats(stylizer, momentum=0.9)
    alone = stylizer(frames[0])
    for _ in range(4):
        out = smoothed(frames[0])
        assert out.dtype == np.uint8 and out.shape == frames[0].shape
        assert np.abs(out.astype(int) - alone.astype(int)).max() <= 1
    assert smoothed.cuts == 0


def test_frames_use_the_average_of_the_frames_before(frames: list[np.ndarray]) -> None:
    stylizer = Stylizer("wave")
    smoothed = SmoothedStats(stylizer, momentum=0.5, cut=None)
    smoothed(frames[0])
    _, own0 = stylizer.stylize_frame(frames[0])
    expected = stylizer.stylize_frame(frames[1], own0)[0].image
    assert np.abs(smoothed(frames[1]).astype(int) - np.round(expected * 255).astype(int)).max() <= 1
    assert not np.array_equal(smoothed(frames[2]), stylizer(frames[2]))  # not per-frame statistics


def test_a_scene_cut_restarts_the_average(frames: list[np.ndarray]) -> None:
    from fastnst.runtime.flicker import read_frames

    other = read_frames(asset(OTHER_CLIP), limit=2, max_size=96)[0]
    other = np.ascontiguousarray(other[: frames[0].shape[0], : frames[0].shape[1]])
    stylizer = Stylizer("wave")
    smoothed = SmoothedStats(stylizer)
    for f in frames:
        smoothed(f)
    assert smoothed.cuts == 0  # the frames of one shot
    out = smoothed(other)
    assert smoothed.cuts == 1
    assert np.abs(out.astype(int) - stylizer(other).astype(int)).max() <= 1  # the new scene's own statistics
    smoothed.reset()
    assert smoothed.running is None


def test_a_fade_from_black_restarts_instead_of_overflowing() -> None:
    """A black frame's near-zero variances would blow up the next frame's activations (the shipped fp16
    models overflow to NaN): the pass that fails counts as a cut and the frame gets its own statistics."""
    stylizer = Stylizer("starry_night")
    fade = [np.full((48, 64, 3), level, np.uint8) for level in (0, 20, 40)]
    smoothed = SmoothedStats(stylizer)
    outputs = [smoothed(f) for f in fade]
    assert smoothed.cuts >= 1
    for out, frame in zip(outputs, fade, strict=True):
        assert np.abs(out.astype(int) - stylizer(frame).astype(int)).max() <= 1


def test_eval_video_measures_smoothed_statistics_and_judges_frames(tmp_path: Path, capsys) -> None:
    pytest.importorskip("cv2", reason="the flicker measure needs OpenCV: pip install -e '.[video]'")
    from fastnst.cli import main

    out = tmp_path / "flicker"
    args = ["eval", "--video", str(asset(CLIP)), "--model", "wave", "--frames", "4", "--max-size", "96"]
    args += ["--smooth-stats", "0.9", "--style", "wave", "--judge-frames", "2", "-q", "-o", str(out)]
    assert main(args) == 0
    report = json.loads((out / "flicker.json").read_text())
    assert set(report["models"]) == {"wave", "wave~smooth0.9"}
    assert report["judged_frames"] == [0, 3]
    for figures in report["models"].values():
        assert figures["warping_error"] > report["input_warping_error"] > 0
        assert all(figures[m] > 0 for m in ("content", "style_gram", "style_stats"))
    printed = capsys.readouterr().out
    assert "wave~smooth0.9" in printed and "style_gram" in printed and "frames 0, 3" in printed


def test_eval_names_shipped_models_as_given(tmp_path: Path) -> None:
    """wave and wave_stable (file video/wave.onnx) side by side need no --label; a file keeps its stem."""
    pytest.importorskip("cv2", reason="the flicker measure needs OpenCV: pip install -e '.[video]'")
    import shutil

    from fastnst.cli import main
    from fastnst.styles import resolve_model

    shutil.copy(resolve_model("wave"), tmp_path / "mine.onnx")
    out = tmp_path / "flicker"
    args = ["eval", "--video", str(asset(CLIP)), "--frames", "2", "--max-size", "64", "-q", "-o", str(out)]
    assert main([*args, "--model", "wave", "--model", "wave_stable", "--model", str(tmp_path / "mine.onnx")]) == 0
    assert list(json.loads((out / "flicker.json").read_text())["models"]) == ["wave", "wave_stable", "mine"]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--smooth-stats", "1", "--smooth-stats=1.0: expected a momentum"), ("--judge-frames", "0", "--judge-frames 0")],
)
def test_eval_video_bad_settings_are_one_line(flag: str, value: str, message: str, capsys) -> None:
    from fastnst.cli import main

    assert main(["eval", "--video", str(asset(CLIP)), "--model", "wave", flag, value]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_infer_video_with_smoothed_statistics(tmp_path: Path) -> None:
    from conftest import cli
    from test_video import make_clip, mean_abs_diff, read_video

    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    code, _, err = cli("infer", clip, "--model", "wave", "--smooth-stats", "--quiet", "-o", tmp_path / "out.mp4")
    assert code == 0, err
    source, written = read_video(clip)["frames"], read_video(tmp_path / "out.mp4")["frames"]
    stylizer = Stylizer("wave_stable")  # videos of a shipped style go through its stability-trained network
    smoothed = SmoothedStats(stylizer)
    # The H.264 round trip of wave's fine texture leaves about 4.7 (0-255) against the smoothed frames,
    # against 9.4 for per-frame statistics (measured): the output is the smoothed one.
    to_smoothed = mean_abs_diff(written, [smoothed(f) for f in source])
    assert to_smoothed < 0.7 * mean_abs_diff(written, [stylizer(f) for f in source])
    args = ["--smooth-stats", "--smooth-momentum", "1.5", "-o", tmp_path / "x.mp4"]
    code, _, err = cli("infer", clip, "--model", "wave", *args)
    assert code != 0 and "--smooth-momentum=1.5" in err and not (tmp_path / "x.mp4").exists()


@pytest.fixture
def video_variant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A models folder whose wave has a stability-trained network for video (udnie's file)."""
    return models_with_variant(tmp_path, monkeypatch, "video")


def test_a_shipped_style_uses_its_stable_network_for_videos(tmp_path: Path, video_variant: Path) -> None:
    from conftest import cli
    from test_video import make_clip, mean_abs_diff, read_video

    from fastnst.styles import resolve_model, video_model

    assert video_model("wave") == video_variant / "video" / "wave.onnx"
    assert resolve_model("wave_stable") == video_variant / "video" / "wave.onnx"
    assert video_model("udnie") is None and video_model(video_variant / "wave.onnx") is None  # files as given
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    photo = Path(asset("content/chicago.jpg"))
    code, out, err = cli("infer", clip, photo, "--model", "wave", "--max-size", "256", "-o", tmp_path / "out", "--json")
    assert code == 0, err
    assert "videos: wave_stable" in err
    source, written = read_video(clip)["frames"], read_video(tmp_path / "out" / "clip_wave.mp4")["frames"]
    stable, per_frame = Stylizer(video_variant / "video" / "wave.onnx"), Stylizer(video_variant / "wave.onnx")
    assert mean_abs_diff(written, [stable(f) for f in source]) < 0.5 * mean_abs_diff(
        written, [per_frame(f) for f in source]
    )
    report = json.loads(out)
    (video,) = [r for r in report["outputs"] if r["input"] == str(clip)]
    (image,) = [r for r in report["outputs"] if r["input"] == str(photo)]
    assert video["model"] == str(video_variant / "video" / "wave.onnx") and "model" not in image
    code, _, err = cli("infer", clip, "--model", "wave", "--no-stable", "-o", tmp_path / "plain.mp4")
    assert code == 0 and "wave_stable" not in err
    written = read_video(tmp_path / "plain.mp4")["frames"]
    assert mean_abs_diff(written, [per_frame(f) for f in source]) < 0.5 * mean_abs_diff(
        written, [stable(f) for f in source]
    )
