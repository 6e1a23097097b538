"""Video stylization (fastnst.runtime.video) on tiny clips that the tests make with PyAV: fast, CPU only."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fastnst.errors import FastNSTError
from fastnst.runtime.video import (
    VIDEO_EXTENSIONS,
    VideoInterrupted,
    VideoReport,
    is_video,
    stylize_video,
    video_mark,
)

av = pytest.importorskip("av")

REPO = Path(__file__).resolve().parents[1]
FPS = 24
SAMPLE_RATE = 44100
# Mean absolute difference (0-255 scale) between the stylized output and the stylized decoded source, measured
# with these clips at crf 18: 2.4 (64x48, libx264), 2.5 (64x48 from Matroska into .mov), 3.4 (65x49, libx264),
# 3.1 (65x49, VP9). About half of it is the yuv420p round trip alone (1.3 at 64x48; 2.8 at 65x49, whose yuv444p
# source loses its chroma resolution). Compared with the frames it was NOT applied to (what a function that did
# nothing would give), the same output is 103 off, so the check can fail.
TOLERANCE = 5.0


def gradient(i: int, width: int, height: int) -> np.ndarray:
    """Frame ``i`` of a smooth colour gradient that moves, so consecutive frames differ."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    phase = 2 * np.pi * i / 24
    rgb = [
        128 + 100 * np.sin(2 * np.pi * x + phase),
        128 + 100 * np.cos(2 * np.pi * y + phase),
        40 + 170 * (x + y) / 2,
    ]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def make_clip(
    path: Path,
    width: int = 64,
    height: int = 48,
    frames: int = 24,
    audio: str | None = None,
    pix_fmt: str = "yuv420p",
    times: list[Fraction] | None = None,
    rotation: float | None = None,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write an H.264 clip at ``fps`` (or at ``times``, in seconds), with a 440 Hz mono ``audio`` track if given.

    libx264 refuses odd sizes in yuv420p, so an odd clip is written in yuv444p.
    """
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"crf": "12", "preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        time_base = Fraction(1, 1000) if times else Fraction(1, fps)
        video.codec_context.time_base = time_base
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=sample_rate, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(gradient(i, width, height), format="rgb24")
            frame.pts = round(times[i] / time_base) if times else i
            frame.time_base = time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            n = sample_rate * frames // fps
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / sample_rate)).astype(np.float32)
            for start in range(0, n, 1024):
                # The encoder converts to its own sample format and frame size.
                chunk = av.AudioFrame.from_ndarray(wave[None, start : start + 1024], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = sample_rate, start, Fraction(1, sample_rate)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path


def read_video(path: Path) -> dict:
    """Decoded RGB frames, their times in seconds, rate, size and rotation of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        return {
            "frames": [f.to_ndarray(format="rgb24") for f in decoded],
            "times": [float(f.pts * f.time_base) for f in decoded],
            "rate": stream.average_rate,
            "size": (stream.codec_context.width, stream.codec_context.height),
            "codec": stream.codec_context.name,
            "rotation": decoded[0].rotation,
        }


def read_audio(path: Path) -> dict | None:
    """Codec, decoded duration (seconds) and packet payloads of the first audio stream, or None without one."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        payloads = [bytes(p) for p in container.demux(stream) if p.size]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(stream))
        return {"codec": stream.codec.name, "seconds": samples / stream.codec_context.sample_rate, "packets": payloads}


def mean_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(x.astype(np.int16) - y.astype(np.int16)).mean() for x, y in zip(a, b, strict=True)]))


def invert(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [255 - f for f in frames]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Source clips, made once: they are only read."""
    d = tmp_path_factory.mktemp("clips")
    return {
        "aac": make_clip(d / "aac.mp4", frames=48, audio="aac"),
        # FFmpeg's muxer reorders packets up to 10 s apart by itself: writing all video before all audio would
        # only show in a longer clip. 12 s at 4 fps is still quick.
        "long": make_clip(d / "long.mp4", width=32, height=32, frames=48, fps=4, audio="aac"),
        "odd": make_clip(d / "odd.mkv", width=65, height=49, frames=12, pix_fmt="yuv444p"),
        "pcm": make_clip(d / "pcm.mkv", frames=12, audio="pcm_s16le"),
        "many": make_clip(d / "many.mp4", width=32, height=32, frames=80, audio="aac"),
    }


def test_is_video() -> None:
    assert is_video("a/b/clip.mp4") and is_video(Path("CLIP.MOV")) and is_video("x.webm")
    assert not is_video("photo.jpg") and not is_video("mp4") and not is_video("clip.mp4.txt")
    assert ".mkv" in VIDEO_EXTENSIONS


@pytest.mark.parametrize(
    ("clip", "suffix", "codec"),
    [
        ("aac", ".mp4", "h264"),
        ("odd", ".mp4", "h264"),
        ("odd", ".webm", "vp9"),
        ("pcm", ".mov", "h264"),
        ("aac", ".avi", "h264"),
    ],
)
def test_stylized_frames_match(clips: dict[str, Path], tmp_path: Path, clip: str, suffix: str, codec: str) -> None:
    src, dst = clips[clip], tmp_path / f"out{suffix}"
    report = stylize_video(src, dst, invert, progress=False)
    source, output = read_video(src), read_video(dst)
    width, height = source["size"]
    even = (width + width % 2, height + height % 2)  # yuv420p: odd sizes gain one edge-replicated row/column

    assert isinstance(report, VideoReport)
    assert (report.frames, report.width, report.height, report.fps) == (len(source["frames"]), *even, FPS)
    assert report.seconds == pytest.approx(len(source["frames"]) / FPS, abs=1e-3)
    assert len(output["frames"]) == len(source["frames"])
    assert output["rate"] == source["rate"] == FPS
    assert output["size"] == even
    assert output["codec"] == codec
    times = output["times"]
    if suffix == ".avi":
        # AVI stores no timestamps. FFmpeg's demuxer reads H.264 in AVI one frame late (its guess, also with
        # files it wrote itself), and the muxer moves everything later by the AAC priming (-1024 samples), which
        # rounds up to one more frame. The frame spacing is what the file holds.
        assert 0 <= times[0] - source["times"][0] <= 2 / FPS + 1e-3
        times = [t - times[0] + source["times"][0] for t in times]
    assert times == pytest.approx(source["times"], abs=1e-3)
    cropped = [f[:height, :width] for f in output["frames"]]
    error = mean_abs_diff(cropped, invert(source["frames"]))
    assert error < TOLERANCE, error
    # The check can fail: the output is nothing like the source frames it was not applied to.
    assert mean_abs_diff(cropped, source["frames"]) > 10 * TOLERANCE
    if even != (width, height):
        # The padding repeats the last row and column (up to compression noise).
        last = output["frames"][0].astype(np.int16)
        assert np.abs(last[height:, :width] - last[height - 1 : height, :width]).mean() < TOLERANCE
        assert np.abs(last[:height, width:] - last[:height, width - 1 : width]).mean() < TOLERANCE
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.parametrize("batch_size", [1, 5])
def test_batches_in_order(clips: dict[str, Path], tmp_path: Path, batch_size: int) -> None:
    source = read_video(clips["aac"])["frames"]
    seen: list[np.ndarray] = []
    sizes: list[int] = []

    def check(frames: list[np.ndarray]) -> list[np.ndarray]:
        assert all(f.dtype == np.uint8 and f.shape == (48, 64, 3) for f in frames)
        seen.extend(frames)
        sizes.append(len(frames))
        return [f.copy() for f in frames]

    stylize_video(clips["aac"], tmp_path / "out.mp4", check, batch_size=batch_size, progress=False)
    # Full batches, then the rest; the frames are the decoded source's, in order.
    assert sizes == [batch_size] * (48 // batch_size) + ([48 % batch_size] if 48 % batch_size else [])
    assert len(seen) == len(source)
    assert all(np.array_equal(a, b) for a, b in zip(seen, source, strict=True))


def test_audio_copied(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    assert stylize_video(clips["aac"], dst, invert, progress=False).audio
    source, output = read_audio(clips["aac"]), read_audio(dst)
    assert output is not None and output["codec"] == "aac"
    assert output["seconds"] == pytest.approx(source["seconds"], abs=0.1)
    assert output["packets"] == source["packets"]  # remuxed, not re-encoded


@pytest.mark.parametrize(("suffix", "codec"), [(".m4v", "aac"), (".webm", "opus"), (".mkv", "pcm_s16le")])
def test_audio_reencoded_when_container_refuses_it(
    clips: dict[str, Path], tmp_path: Path, suffix: str, codec: str
) -> None:
    # PCM cannot go into .m4v (AAC instead) nor .webm (Opus instead); Matroska takes it as it is.
    dst = tmp_path / f"out{suffix}"
    assert stylize_video(clips["pcm"], dst, invert, progress=False).audio
    source, output = read_audio(clips["pcm"]), read_audio(dst)
    assert output is not None and output["codec"] == codec
    assert output["seconds"] == pytest.approx(source["seconds"], abs=0.1)
    assert len(read_video(dst)["frames"]) == 12


def test_audio_a_muxer_refuses_only_at_its_header_is_reencoded(tmp_path: Path) -> None:
    # MOV takes an Opus stream when it is added and refuses it when the header is written: once after all
    # the frames were stylized ("could not write video (Invalid argument)"); now it is found out first.
    src = make_clip(tmp_path / "opus.mkv", frames=12, audio="libopus", sample_rate=48000)
    assert read_audio(src)["codec"] == "opus"
    dst = tmp_path / "out.mov"
    assert stylize_video(src, dst, invert, progress=False).audio
    output = read_audio(dst)
    assert output is not None and output["codec"] == "aac"
    assert output["seconds"] == pytest.approx(read_audio(src)["seconds"], abs=0.1)
    assert len(read_video(dst)["frames"]) == 12


@pytest.mark.parametrize("suffix", sorted(VIDEO_EXTENSIONS))
def test_the_mark_is_written_and_read_back(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    dst = tmp_path / f"out{suffix}"
    stylize_video(clips["odd"], dst, invert, progress=False, mark="fastnst (style wave)")
    assert video_mark(dst) == "fastnst (style wave)"
    stylize_video(clips["odd"], tmp_path / f"plain{suffix}", invert, progress=False)
    assert video_mark(tmp_path / f"plain{suffix}") is None
    assert video_mark(clips["odd"]) is None


def test_no_mark_on_what_is_not_a_readable_video(tmp_path: Path) -> None:
    (tmp_path / "notes.mp4").write_text("not a video")
    os.mkfifo(tmp_path / "fifo.mp4")  # would block a reader forever
    for name in ("notes.mp4", "fifo.mp4", "missing.mp4"):
        assert video_mark(tmp_path / name) is None


def test_no_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    assert not stylize_video(clips["odd"], dst, invert, progress=False).audio
    assert read_audio(dst) is None


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_audio_and_video_interleaved(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    dst = tmp_path / f"out{suffix}"
    stylize_video(clips["long"], dst, invert, batch_size=8, progress=False)
    with av.open(str(dst)) as container:
        packets = [(p.pos, float(p.dts * p.time_base), p.stream.type) for p in container.demux() if p.dts is not None]
    assert {kind for _, _, kind in packets} == {"audio", "video"}
    # In file order, no packet is far behind one already written (all video, then all audio, would be 10 s).
    latest = -1.0
    for _, seconds, _ in sorted(packets):
        assert seconds > latest - 0.6, (seconds, latest)
        latest = max(latest, seconds)


def test_variable_frame_rate_and_rotation_kept(tmp_path: Path) -> None:
    times = [Fraction(t, 1000) for t in (0, 40, 90, 100, 250, 290, 330, 500)]
    src = make_clip(tmp_path / "vfr.mkv", frames=len(times), times=times, rotation=90)
    stylize_video(src, tmp_path / "out.mp4", invert, progress=False)
    output = read_video(tmp_path / "out.mp4")
    assert output["times"] == pytest.approx([float(t) for t in times], abs=1e-3)
    assert output["rotation"] == read_video(src)["rotation"] == 90


@pytest.mark.parametrize("existing", [False, True])
def test_failure_leaves_nothing_behind(clips: dict[str, Path], tmp_path: Path, existing: bool) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dst = out_dir / "out.mp4"
    if existing:
        dst.write_bytes(b"an older result")
    calls = []

    def failing(frames: list[np.ndarray]) -> list[np.ndarray]:
        # Fail once the temporary file has data (x264 holds ~45 frames back first): the failure must remove it.
        (partial,) = out_dir.glob(".out.*.partial.mp4")  # one temporary file, named uniquely for this run
        calls.append(partial.stat().st_size > 0)
        if calls[-1]:
            raise RuntimeError("model crashed")
        return invert(frames)

    with pytest.raises(RuntimeError, match="model crashed"):
        stylize_video(clips["many"], dst, failing, batch_size=4, progress=False)
    assert len(calls) < 80 // 4
    assert sorted(p.name for p in out_dir.iterdir()) == (["out.mp4"] if existing else [])
    if existing:
        assert dst.read_bytes() == b"an older result"


def interrupted_after(batches: int) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """A stylize function that Ctrl-C stops in its batch number ``batches`` (0: the first)."""
    calls = []

    def stylize(frames: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(frames))
        if len(calls) > batches:
            raise KeyboardInterrupt
        return invert(frames)

    return stylize


@pytest.mark.parametrize("earlier", [False, True])
def test_an_interrupt_keeps_the_frames_done_as_a_playable_video(
    clips: dict[str, Path], tmp_path: Path, earlier: bool
) -> None:
    dst = tmp_path / "out.mp4"
    if earlier:  # an earlier interrupted run's frames are never replaced
        (tmp_path / "out.partial.mp4").write_bytes(b"earlier frames")
    with pytest.raises(VideoInterrupted) as stop:
        stylize_video(clips["aac"], dst, interrupted_after(3), batch_size=4, progress=False, mark="fastnst:test")
    kept = tmp_path / ("out.partial-2.mp4" if earlier else "out.partial.mp4")
    assert (stop.value.frames, stop.value.total, stop.value.kept, stop.value.signum) == (12, 48, kept, 2)
    names = ["out.partial-2.mp4", "out.partial.mp4"] if earlier else ["out.partial.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no out.mp4, no temporary file
    got, source = read_video(kept), read_video(clips["aac"])
    assert len(got["frames"]) == 12 and mean_abs_diff(got["frames"], invert(source["frames"][:12])) < 6
    audio = read_audio(kept)  # the audio read ahead of the last frame kept is left out
    assert audio is not None and audio["seconds"] == pytest.approx(12 / FPS, abs=0.05)
    assert video_mark(kept) == "fastnst:test"


@pytest.mark.parametrize(("clip", "suffix"), [("aac", ".mp4"), ("pcm", ".webm")])  # audio copied; re-encoded
def test_a_preview_keeps_the_first_frames_and_cuts_the_audio_there(
    clips: dict[str, Path], tmp_path: Path, clip: str, suffix: str
) -> None:
    dst = tmp_path / f"out{suffix}"
    report = stylize_video(clips[clip], dst, invert, batch_size=4, progress=False, max_frames=10)
    assert (report.frames, report.limit, report.shortfall()) == (10, 10, None)
    assert report.seconds == pytest.approx(10 / FPS)
    got, source = read_video(dst), read_video(clips[clip])
    assert len(got["frames"]) == 10 and mean_abs_diff(got["frames"], invert(source["frames"][:10])) < TOLERANCE
    audio = read_audio(dst)
    assert audio is not None and audio["seconds"] == pytest.approx(10 / FPS, abs=0.05)  # not the whole source


def test_a_preview_reads_on_for_audio_stored_behind_its_video(clips: dict[str, Path], tmp_path: Path) -> None:
    """Fragmented MP4 (DASH downloads, some recorders) stores a second of video, then its audio."""
    fragmented = tmp_path / "fragmented.mp4"
    with (
        av.open(str(clips["aac"])) as inp,
        av.open(str(fragmented), "w", options={"movflags": "empty_moov", "frag_duration": "1000000"}) as out,
    ):
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    with av.open(str(fragmented)) as container:  # the first 10 frames come before any audio in the file
        kinds = [p.stream.type for p in container.demux() if p.dts is not None]
    assert kinds[:24] == ["video"] * 24
    dst = tmp_path / "out.mp4"
    assert stylize_video(fragmented, dst, invert, progress=False, max_frames=10).frames == 10
    audio = read_audio(dst)
    assert audio is not None and audio["seconds"] == pytest.approx(10 / FPS, abs=0.05)


def test_a_preview_longer_than_the_clip_is_the_whole_clip(clips: dict[str, Path], tmp_path: Path) -> None:
    report = stylize_video(clips["aac"], tmp_path / "out.mp4", invert, progress=False, max_frames=1000)
    assert (report.frames, report.shortfall()) == (48, None)
    assert read_audio(tmp_path / "out.mp4")["seconds"] == pytest.approx(read_audio(clips["aac"])["seconds"], abs=0.1)


def test_a_preview_of_no_frames_is_refused(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FastNSTError, match="max_frames must be at least 1, got 0"):
        stylize_video(clips["aac"], tmp_path / "out.mp4", invert, progress=False, max_frames=0)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_before_any_frame_keeps_nothing(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(VideoInterrupted) as stop:
        stylize_video(clips["aac"], tmp_path / "out.mp4", interrupted_after(0), batch_size=4, progress=False)
    assert (stop.value.frames, stop.value.kept) == (0, None) and list(tmp_path.iterdir()) == []


def test_bad_stylize_output_is_an_error(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FastNSTError, match="shape"):
        stylize_video(clips["aac"], tmp_path / "out.mp4", lambda fs: [f[:10] for f in fs], progress=False)
    with pytest.raises(FastNSTError, match="returned 1 frames"):
        stylize_video(clips["aac"], tmp_path / "out.mp4", lambda fs: fs[:1], progress=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_source(tmp_path: Path) -> None:
    src = tmp_path / "nope.mp4"
    with pytest.raises(FastNSTError, match="no such file") as info:
        stylize_video(src, tmp_path / "out.mp4", invert, progress=False)
    assert str(src) in str(info.value) and "\n" not in str(info.value)


def test_not_a_video(tmp_path: Path) -> None:
    src = tmp_path / "noise.mp4"
    src.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(FastNSTError, match="not a readable video") as info:
        stylize_video(src, tmp_path / "out.mp4", invert, progress=False)
    assert str(src) in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noise.mp4"]


def test_audio_only_file(tmp_path: Path) -> None:
    src = tmp_path / "sound.mkv"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(FastNSTError, match=r"not a readable video \(no video stream\)") as info:
        stylize_video(src, tmp_path / "out.mp4", invert, progress=False)
    assert str(src) in str(info.value)


def test_source_is_never_overwritten(clips: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(clips["aac"].read_bytes())
    before = src.read_bytes()
    for dst in (src, tmp_path / "." / "clip.mp4", Path(os.path.relpath(src))):
        with pytest.raises(FastNSTError, match="overwrite"):
            stylize_video(src, dst, invert, progress=False)
    assert src.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_output_must_be_a_video_name(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FastNSTError, match="output must be a video"):
        stylize_video(clips["aac"], tmp_path / "out.png", invert, progress=False)


def test_progress_bar(clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stylize_video(clips["aac"], tmp_path / "a.mp4", invert, progress=True)
    err = capsys.readouterr().err
    assert "stylize aac.mp4: 48/48 done" in err  # MP4 stores the frame count: a bar with a total
    stylize_video(clips["odd"], tmp_path / "b.mp4", invert, progress=True)
    assert "stylize odd.mkv: 12/12 done" in capsys.readouterr().err  # Matroska does not: from its duration
    stylize_video(clips["aac"], tmp_path / "c.mp4", invert, progress=False)
    assert capsys.readouterr() == ("", "")
    # a Matroska stream that starts after 0 (a remuxed clip's often does): its duration counts from there
    late = tmp_path / "late.mkv"
    with av.open(str(clips["odd"])) as inp, av.open(str(late), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        shift = round(Fraction(1, 2) / vin.time_base)  # half a second: 12 frame periods
        for packet in inp.demux(vin):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts + shift, packet.dts + shift, vout
                out.mux(packet)
    stylize_video(late, tmp_path / "d.mp4", invert, progress=True)
    assert "stylize late.mkv: 12/12 done" in capsys.readouterr().err


def test_missing_pyav_is_one_line(clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` raise ImportError
    with pytest.raises(FastNSTError, match=r"^video support needs PyAV: pip install av$"):
        stylize_video(clips["aac"], tmp_path / "out.mp4", invert, progress=False)


def test_no_torch_on_the_video_path(clips: dict[str, Path], tmp_path: Path) -> None:
    # None in sys.modules makes `import torch` fail: the import and a whole run must not need it.
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import fastnst.runtime.video as v\n"
        "r = v.stylize_video(sys.argv[1], sys.argv[2], lambda fs: [255 - f for f in fs], progress=False)\n"
        "assert r.frames == 12, r\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code, str(clips["odd"]), str(tmp_path / "out.mp4")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc, a folder where no file can be made")
def test_a_folder_that_takes_no_file_is_named_by_the_output(clips: dict[str, Path]) -> None:
    with pytest.raises(FastNSTError) as info:
        stylize_video(clips["aac"], Path("/proc/out.mp4"), invert, progress=False)
    message = str(info.value)
    assert message.startswith("/proc/out.mp4: cannot write the video there (") and "partial" not in message
