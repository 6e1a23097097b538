"""Holes in `fastnst infer` on videos, each closed and tested with real videos and real processes.

Concurrent writers of one output, signals in the middle of a video, frames declared huge in a tiny file,
--max-size, and files cut short. The videos are the shared bikes.mp4 and clips made here with PyAV.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, asset, remux

av = pytest.importorskip("av")

SHIPPED = REPO / "fastnst" / "assets" / "models" / "starry_night.onnx"
BIKES_FRAMES = 250  # bikes.mp4: 640x272, 25 fps, 10 s


def infer_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "fastnst", "infer", "--model", str(SHIPPED), "-q", *map(str, args)]


def infer(*args: object, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        infer_cmd(*args), capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def nonblank(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def probe(path: Path) -> tuple[int, tuple[int, int]]:
    """Frames that decode, and the coded size, of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames, (stream.codec_context.width, stream.codec_context.height)


def flat_clip(path: Path, width: int, height: int, frames: int, fps: int = 25) -> Path:
    """An H.264 clip of flat grey frames (fast to encode at any size)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "40"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        frame = av.VideoFrame(width, height, "yuv420p")
        for plane in frame.planes:
            plane.update(np.full(plane.buffer_size, 100, np.uint8).tobytes())
        for i in range(frames):
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def bikes() -> Path:
    return asset("videos/bikes.mp4")


# -- 4. two runs writing the same output ----------------------------------------------------------


def test_two_runs_writing_the_same_video_both_succeed_with_a_complete_file(bikes, tmp_path):
    out = tmp_path / "out" / "bikes_styled.mp4"
    out.parent.mkdir()
    procs = [subprocess.Popen(infer_cmd(bikes, "-o", out, "--max-size", "96"), stderr=subprocess.PIPE, text=True)]
    time.sleep(0.3)  # the second starts while the first is writing
    procs.append(subprocess.Popen(infer_cmd(bikes, "-o", out, "--max-size", "96"), stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    assert probe(out) == (BIKES_FRAMES, (96, 40))
    assert sorted(p.name for p in out.parent.iterdir()) == ["bikes_styled.mp4"]  # no temporary file left


# -- 5. a signal in the middle of a video ----------------------------------------------------------


@pytest.mark.parametrize(
    ("sig", "status", "preview"), [(signal.SIGTERM, 143, []), (signal.SIGINT, 130, ["--frames", "200"])]
)
def test_a_signal_during_a_video_keeps_the_frames_done_and_no_temporary_file(bikes, tmp_path, sig, status, preview):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        infer_cmd(bikes, "-o", out / "bikes.mp4", *preview), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (out.is_dir() and any(p.stat().st_size > 0 for p in out.iterdir())):  # the encoder has written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    (line,) = [line for line in nonblank(stderr) if "interrupted" in line]
    assert signal.Signals(sig).name in line and "0 of 1" in line and "bikes.mp4" in line
    assert " -> " not in stdout
    # the frames stylized before the signal, as a playable video named as such; no temporary file, no bikes.mp4
    (kept,) = [line for line in nonblank(stderr) if "frames kept in" in line]
    of = "of 200" if preview else "of about 250"  # a preview's --frames is exact, the video's own count an estimate
    pattern = rf"{re.escape(str(bikes))}: the first (\d+) {of} frames kept in {re.escape(str(out))}/"
    frames = int(re.fullmatch(pattern + r"bikes\.partial\.mp4", kept)[1])
    assert sorted(p.name for p in out.iterdir()) == ["bikes.partial.mp4"]
    assert 0 < frames < BIKES_FRAMES and probe(out / "bikes.partial.mp4") == (frames, (640, 272))


# -- 10. the pixel limit applies to video frames -----------------------------------------------------


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200 kB file of two 8192x8192 frames."""
    return flat_clip(tmp_path_factory.mktemp("huge") / "huge.mp4", 8192, 8192, 2)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_frames_over_the_pixel_limit_are_refused_before_decoding(huge, tmp_path, how):
    limit = 50_000_000
    flag = ["--max-image-pixels", limit] if how == "flag" else []
    env = {"FASTNST_MAX_IMAGE_PIXELS": str(limit)} if how == "env" else {}
    start = time.monotonic()
    proc = infer(huge, "-o", tmp_path / "out.mp4", *flag, env=env, timeout=20)
    assert time.monotonic() - start < 15
    assert proc.returncode == 1, proc.stderr
    (line, *_) = nonblank(proc.stderr)
    assert line.startswith("error:") and "huge.mp4" in line and "8192x8192" in line and "limit" in line
    assert "--max-image-pixels 0" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_frames_under_the_limit_are_stylized(tmp_path):
    clip = flat_clip(tmp_path / "small.mp4", 64, 48, 3)
    proc = infer(clip, "-o", tmp_path / "out.mp4", "--max-image-pixels", 64 * 48)
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "out.mp4") == (3, (64, 48))


# -- 11. --max-size scales videos ------------------------------------------------------------------


@pytest.mark.parametrize(("max_size", "size"), [(64, (64, 48)), (75, (74, 56)), (200, (130, 98))])
def test_max_size_scales_video_frames_to_even_sizes(tmp_path, max_size, size):
    clip = flat_clip(tmp_path / "clip.mp4", 130, 98, 5)
    proc = infer(clip, "-o", tmp_path / "out.mkv", "--max-size", max_size, "--json")
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "out.mkv") == (5, size)
    assert '"width": %d' % size[0] in proc.stdout  # noqa: UP031 - a JSON fragment


# -- 12. a video cut short ----------------------------------------------------------------------------


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_a_truncated_video_is_written_as_far_as_it_goes_with_a_warning(bikes, tmp_path, container):
    whole = remux(bikes, tmp_path / f"whole.{container}", **({"movflags": "faststart"} if container == "mp4" else {}))
    cut = tmp_path / f"cut.{container}"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the header (and its frame count) first, half the frames
    out = tmp_path / "out.mp4"
    proc = infer(cut, "-o", out, "--max-size", "64")
    assert proc.returncode == 0, proc.stderr
    written, _ = probe(out)
    assert 0 < written < BIKES_FRAMES
    (line,) = nonblank(proc.stderr)
    assert line.startswith("warning:") and str(cut) in line
    # MP4 declares its frame count, Matroska only its duration: "N of 250 declared" or "N of about 250".
    assert re.search(rf"\b{written} of (about )?{BIKES_FRAMES}\b", line), line


def test_a_whole_video_gives_no_warning(bikes, tmp_path):
    whole = remux(bikes, tmp_path / "whole.mkv")
    proc = infer(whole, "-o", tmp_path / "out.mp4", "--max-size", "64")
    assert proc.returncode == 0, proc.stderr
    assert nonblank(proc.stderr) == []
    assert probe(tmp_path / "out.mp4")[0] == BIKES_FRAMES


# -- 13. reruns, failures and settings that depend on the inputs ------------------------------------------


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("into", [None, "out"])
def test_a_rerun_on_a_folder_skips_the_earlier_video_outputs(tmp_path, into):
    folder = tmp_path / "clips"
    folder.mkdir()
    flat_clip(folder / "clip.mp4", 32, 24, 3)
    target = [] if into is None else ["-o", folder / into]
    first = infer(folder, *target, "--max-size", "32")
    assert first.returncode == 0, first.stderr
    made = _listing(folder)
    style = "starry_night"
    assert (f"{into}/" if into else "") + f"clip_{style}.mp4" in made
    assert f"clip_{style}.mp4 (32x24, 3 frames, " in first.stdout  # the summary counts a video's frames
    for _ in range(2):  # once made clip_starry_night_starry_night.mp4, then failed as "would overwrite an input"
        again = infer(folder, *target, "--max-size", "32", "--json")
        assert again.returncode == 0, again.stderr
        assert _listing(folder) == made
        assert "an output of fastnst with style starry_night" in again.stdout and "exists" in again.stdout


def test_a_failed_video_leaves_no_folder_behind(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    proc = infer(bad, "-o", tmp_path / "made" / "by" / "typo" / "x.mp4")
    assert proc.returncode == 1
    error, summary = nonblank(proc.stderr)
    assert error.startswith(f"error: {bad}: not a readable video") and summary.startswith("1 of 1 input(s) failed")
    assert _listing(tmp_path) == ["bad.mp4"]  # no made/by/typo/


def test_settings_that_need_a_video_or_a_photo(tmp_path):
    clip = flat_clip(tmp_path / "clip.mp4", 32, 24, 3)
    photo = tmp_path / "photo.png"
    photo.write_bytes((REPO / "fastnst" / "assets" / "sample_photos" / "chelsea.jpg").read_bytes())
    cases = [
        ((clip, "--max-size", "1"), 2, "--max-size 1: a video frame needs at least 2 px a side"),
        ((clip, "--smooth-momentum", "0.5"), 2, "--smooth-momentum 0.5: only with --smooth-stats"),
    ]
    cases.append(((clip,), 2, f"-o {tmp_path / 'o.xyz'}: {clip} is a video (video names end in .avi, .m4v,"))
    for args, status, words in cases:
        proc = infer(*args, "-o", tmp_path / ("o.xyz" if len(args) == 1 else "o.mp4"))
        assert proc.returncode == status, proc.stderr
        (line,) = nonblank(proc.stderr)
        assert words in line, line
    assert _listing(tmp_path) == ["clip.mp4", "photo.png"]
    # A video-only flag on photos alone is not silently ignored (infer() passes -q: run without it).
    cmd = [c for c in infer_cmd(photo, "--smooth-stats", "--max-size", "32", "-o", tmp_path / "p.png") if c != "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "note: --smooth-stats (videos only): no such input here, not used" in proc.stderr
    # --sheet says which inputs it leaves out.
    cmd = [c for c in infer_cmd(clip, photo, "--sheet", "--max-size", "32", "-o", tmp_path / "sheets") if c != "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{clip}: a video, skipped (--sheet makes sheets of photos)" in proc.stderr


# -- 14. a preview of the first frames ------------------------------------------------------------------


def test_frames_previews_the_first_frames_under_a_name_of_its_own(bikes, tmp_path):
    clip = tmp_path / "bikes.mp4"
    os.symlink(bikes, clip)
    proc = infer(clip, "--frames", "12", "--max-size", "64")
    assert proc.returncode == 0, proc.stderr
    preview = tmp_path / "bikes_starry_night.first12.mp4"
    assert nonblank(proc.stderr) == []  # no "the video ends early" warning: it ended where asked
    assert probe(preview) == (12, (64, 28))
    assert f"{preview} (64x28, 12 frames, " in proc.stdout
    # The whole clip is not skipped as done, and a rerun of the preview skips its own output.
    again = infer(tmp_path, "--frames", "12", "--max-size", "64", "--json")
    assert again.returncode == 0 and "an output of fastnst with style starry_night" in again.stdout, again.stdout
    assert "exists" in again.stdout and sorted(p.name for p in tmp_path.iterdir()) == [clip.name, preview.name]


def test_frames_with_a_named_output_and_bad_values(tmp_path):
    clip = flat_clip(tmp_path / "clip.mp4", 32, 24, 6)
    proc = infer(clip, "--frames", "4", "-o", tmp_path / "named.mkv", "--json")
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "named.mkv") == (4, (32, 24))
    (record,) = json.loads(proc.stdout)["outputs"]
    assert (record["frames"], record["limit"]) == (4, 4)
    proc = infer(clip, "--frames", "0", "-o", tmp_path / "o.mp4")
    assert proc.returncode == 2
    (line,) = nonblank(proc.stderr)
    assert line == "error: --frames 0: expected at least 1 (the first frames of each video)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "named.mkv"]
