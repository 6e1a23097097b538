"""Stylize a video frame by frame, keeping its frame rate, timing and audio.

Part of the light inference path: it imports no torch, and PyAV (``av``) only when a video is processed,
so that images can be stylized without it installed.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import signal
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.progress import Progress
from fastnst.runtime.imageio import fit_size, max_image_pixels, pixel_limit_message, require_regular_file

Stylize = Callable[[list[np.ndarray]], list[np.ndarray]]  # a batch of uint8 RGB frames -> as many, same shape
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})

# FFmpeg's AVCOL_* value for BT.709 (primaries, transfer, matrix) and AVCOL_RANGE_MPEG (limited range).
_BT709 = 1
_LIMITED_RANGE = 1
# How far behind its video a file may store its audio (fragmented MP4 stores about a second): a preview
# reads on that far past its last frame for the audio that goes with it.
_AUDIO_LAG = 5.0


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file, judged by its extension (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class VideoReport:
    """What :func:`stylize_video` wrote."""

    frames: int  # frames encoded (the same as decoded)
    seconds: float  # duration of the output video, from the first frame's timestamp to the end of the last
    fps: float  # the frame rate written to the output (the source's average rate)
    width: int  # encoded size: the source (or max_size) size, plus one row/column when that was odd (yuv420p)
    height: int
    audio: bool  # an audio stream was carried over (copied or re-encoded)
    declared: int | None = None  # frames the source's header declares; None: not stored (Matroska, WebM)
    declared_end: float | None = None  # where the header says the video ends, in seconds; None: unknown
    declared_start: float = 0.0  # where the header says the video starts, in seconds
    end: float = 0.0  # where the last frame written ends, in seconds on the source's clock
    stopped: str | None = None  # why reading ended before the end of the file (a truncated or damaged file)
    limit: int | None = None  # the frames asked for (a preview of the first ones); None: all of them

    def shortfall(self) -> str | None:
        """One line saying that the video ends before its header says it does (a cut file), or None.

        Judged by time, with two frames and 2% of slack: durations are rounded by muxers, and frame counts
        are not always decoded frames (AVI counts the empty slots of a variable frame rate).
        """
        if self.limit is not None and self.frames >= self.limit:  # ended where asked to
            return None
        cut = self.declared_end is not None and self.end < 0.98 * self.declared_end - 2 / self.fps
        if not cut and self.stopped is None:
            return None
        if self.declared is not None:
            written = f"{self.frames} of {self.declared} declared frames written"
        elif self.declared_end is not None:
            about = round((self.declared_end - self.declared_start) * self.fps)
            written = f"{self.frames} of about {about} frames written"
        else:
            written = f"{self.frames} frames written"
        if self.declared_end is not None:
            written += f" ({self.end:.2f} s of {self.declared_end:.2f} s)"
        why = f" ({self.stopped})" if self.stopped else ""
        return f"the video ends early: {written}; the file looks truncated{why}"


def video_mark(path: str | os.PathLike[str]) -> str | None:
    """The comment tag of the video at ``path`` (where fastnst marks its outputs), or None; any failure to
    read it is None: the file is then read as an input, and fails there in one line."""
    try:
        require_regular_file(path)  # never a FIFO
        with _import_av().open(str(path)) as container:
            tags = {key.lower(): value for key, value in container.metadata.items()}
    except Exception:  # FFmpeg and the file system raise many types; none of them matters here
        return None
    return tags.get("comment")


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise FastNSTError("video support needs PyAV: pip install av") from None
    return av


def ffmpeg_reason(exc: BaseException) -> str:
    """A one-line reason from a PyAV/OS error, without the file name PyAV repeats at its end."""
    text = str(getattr(exc, "strerror", None) or exc or type(exc).__name__)
    log = getattr(exc, "log", None)  # PyAV: (level, component, message) of FFmpeg's last log line, the real cause
    if isinstance(log, tuple) and len(log) == 3 and log[2]:
        text = f"{text}: {log[2]}"
    return " ".join(text.split())


def _unreadable(src: Path, why: str) -> FastNSTError:
    return FastNSTError(f"{src}: not a readable video ({why})")


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)  # hard links, case-insensitive file systems
    except OSError:
        return False


def _even_pad(frame: np.ndarray) -> np.ndarray:
    """Pad an odd height/width by one edge-replicated row/column: yuv420p needs even sizes."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class _Reader:
    """Decoded video frames, and audio packets (or decoded audio frames), in demux order.

    An FFmpeg error before the first video frame is a one-line FastNSTError naming ``src``. After it, the
    rest of the file is taken to be missing (a truncated download or copy): reading stops and ``stopped``
    says why, so that the frames read so far are still written and the shortfall is reported.
    """

    def __init__(self, av: Any, container: Any, vin: Any, ain: Any, decode_audio: bool, src: Path):
        self.av, self.container, self.vin, self.ain = av, container, vin, ain
        self.decode_audio, self.src = decode_audio, src
        self.frames = 0
        self.stopped: str | None = None

    def __iter__(self) -> Any:
        errors = (self.av.FFmpegError, OSError, ValueError)
        packets = self.container.demux(*([self.vin] if self.ain is None else [self.vin, self.ain]))
        while True:
            try:
                packet = next(packets)
                items = self._items(packet)
            except StopIteration:
                return
            except errors as exc:
                self._stop(ffmpeg_reason(exc))
                return
            for item in items:
                self.frames += isinstance(item, self.av.VideoFrame)
                yield item

    def _items(self, packet: Any) -> list[Any]:
        if packet.stream.index == self.vin.index:
            # Flush packets (no dts) at the end of the file are decoded too: they drain the decoder.
            return packet.decode()
        if self.decode_audio:
            return packet.decode()
        # Skip the empty flush packet at the end, and any packet without a timestamp that a muxer could use.
        return [packet] if packet.size and (packet.dts is not None or packet.pts is not None) else []

    def _stop(self, why: str) -> None:
        if not self.frames:
            raise _unreadable(self.src, why)
        self.stopped = why


def _fraction_gcd(a: Fraction, b: Fraction) -> Fraction:
    """The largest time unit that both ``a`` and ``b`` are whole multiples of."""
    return Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator), a.denominator * b.denominator)


class _Clock:
    """Maps source frame timestamps to output timestamps (in ``time_base``), always increasing.

    A source time base often cannot hold the frame period exactly (Matroska counts milliseconds: 24 fps is
    0, 42, 83, ... ms), so the timestamps drift around the frame grid and the output's average rate would read
    76800/3199 instead of 24. Timestamps within the source's rounding of the grid are snapped to it; others
    (variable frame rate) are kept as they are. The output time base divides both the frame period and the
    source time base, so either is exact. AVI cannot store variable timing: there every frame is put on the grid.
    """

    def __init__(self, fps: Fraction, source_time_base: Fraction | None, cfr: bool):
        self.fps, self.source_time_base = fps, source_time_base or 1 / fps
        self.time_base = 1 / fps if cfr else _fraction_gcd(self.source_time_base, 1 / fps)
        if self.time_base.denominator >= 2**31:  # AVRational holds ints; keep the source's own time base then
            self.time_base = self.source_time_base
        self.cfr = cfr
        self.first: int | None = None
        self.last: int | None = None

    def __call__(self, pts: int | None) -> int:
        period = max(1, round(1 / (self.fps * self.time_base)))
        if pts is None:
            out = 0 if self.last is None else self.last + period
        else:
            seconds = pts * self.source_time_base
            on_grid = Fraction(round(seconds * self.fps)) / self.fps
            if self.cfr or abs(on_grid - seconds) <= self.source_time_base / 2:
                seconds = on_grid
            out = round(seconds / self.time_base)
        if self.last is not None and out <= self.last:  # repeated or missing timestamps: one frame period on
            out = self.last + period
        self.first = out if self.first is None else self.first
        self.last = out
        return out

    def end(self) -> float:
        """Where the last frame ends, in seconds on the source's clock."""
        return 0.0 if self.last is None else float(self.last * self.time_base + 1 / self.fps)

    def seconds(self) -> float:
        """Duration from the first frame to the end of the last one."""
        if self.first is None or self.last is None:
            return 0.0
        return float((self.last - self.first) * self.time_base + 1 / self.fps)


class _Writer:
    """The output container: one H.264/VP9 video stream and, optionally, the source's audio.

    Every FFmpeg error raised while writing is turned into a one-line FastNSTError naming ``dst``.
    """

    def __init__(
        self, av: Any, tmp: Path, dst: Path, size: tuple[int, int], ain: Any, clock: _Clock, crf: int, mark: str | None
    ):
        fps, time_base = clock.fps, clock.time_base
        self.av, self.dst, self.time_base = av, dst, time_base
        self.width, self.height = size[0] + size[0] % 2, size[1] + size[1] % 2
        self.out = None
        self.audio_queue: deque[Any] = deque()  # audio packets not yet muxed, in order
        self.video_seconds: Fraction | None = None  # the latest video timestamp muxed
        self.frames = 0  # stylized frames handed to the encoder
        self.period = 1 / fps  # a frame's length, in seconds
        self.end: Fraction | None = None  # where the last frame handed to the encoder ends, in seconds
        with self._errors():
            self.out = av.open(str(tmp), "w")
            if mark is not None:  # the container's comment tag: every supported container keeps it
                self.out.metadata["comment"] = mark
            if dst.suffix.lower() == ".webm":
                # WebM holds VP8/VP9/AV1 only. "b": "0" makes libvpx use constant quality (crf) mode.
                options = {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": "2", "row-mt": "1"}
                self.vout = self.out.add_stream("libvpx-vp9", rate=fps, options=options)
            else:
                options = {"crf": str(crf), "preset": "medium"}
                if dst.suffix.lower() == ".avi":
                    # AVI stores no presentation timestamps: with B-frames (out of order) the frames decode with
                    # scrambled times and start a frame late. Without them decode order is presentation order.
                    options["bf"] = "0"
                self.vout = self.out.add_stream("libx264", rate=fps, options=options)
            self.vout.width, self.vout.height, self.vout.pix_fmt = self.width, self.height, "yuv420p"
            # The clock's time base holds the source timestamps exactly (see _Clock): variable frame rates survive.
            self.vout.codec_context.time_base = time_base
            self.vout.time_base = time_base
            # The RGB -> YUV conversion below uses BT.709; tag the stream so players convert back the same way.
            cc = self.vout.codec_context
            cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
            cc.color_range = _LIMITED_RANGE
            self.aout, self.copy_audio = None, False
            if ain is not None:
                self._add_audio(ain)

    @contextlib.contextmanager
    def _errors(self) -> Any:
        try:
            yield
        except (self.av.FFmpegError, OSError, ValueError) as exc:
            raise FastNSTError(f"{self.dst}: could not write video ({ffmpeg_reason(exc)})") from None

    def _takes_as_is(self, ain: Any) -> bool:
        """Whether the output container can carry ``ain``'s packets as they are. Some muxers refuse a codec only
        when the header is written (MOV refuses Opus), after all the work: a header written to memory tells."""
        probe = None
        try:
            probe = self.av.open(io.BytesIO(), "w", format=self.out.format.name)
            probe.add_stream_from_template(ain)
            probe.start_encoding()
            return True
        except (self.av.FFmpegError, ValueError):
            return False
        finally:
            if probe is not None:
                with contextlib.suppress(Exception):
                    probe.close()

    def _add_audio(self, ain: Any) -> None:
        if self._takes_as_is(ain):
            self.aout = self.out.add_stream_from_template(ain)
            self.copy_audio = True
            return
        # Otherwise re-encode: Opus for WebM (it takes Opus/Vorbis only), AAC for the MP4 family, MKV and AVI.
        if ain.codec_context is None:  # FFmpeg has no decoder for it
            raise FastNSTError(
                f"{self.dst}: cannot carry over the audio: its codec does not fit in {self.dst.suffix} "
                "and FFmpeg cannot decode it"
            )
        codec_name = "libopus" if self.dst.suffix.lower() == ".webm" else "aac"
        codec = self.av.Codec(codec_name, "w")
        rate = ain.codec_context.sample_rate or 48000
        if codec.audio_rates and rate not in codec.audio_rates:
            rate = 48000
        # Mono stays mono, anything else becomes stereo: the encoders' multichannel layouts are codec-specific,
        # and a source may have an unnamed layout ("2 channels") that the encoders refuse.
        layout = "mono" if ain.codec_context.channels == 1 else "stereo"
        self.aout = self.out.add_stream(codec_name, rate=rate, layout=layout)
        self.aout.bit_rate = 192_000
        # The encoder resamples (format, layout, rate) and re-chunks decoded frames to its frame size itself.

    def start(self, first_frame: Any) -> None:
        """Copy the source's display matrix (rotation): it must be set before the header is written."""
        side_data = first_frame.side_data
        if "DISPLAYMATRIX" in [sd.type.name for sd in side_data]:
            matrix = np.frombuffer(bytes(side_data["DISPLAYMATRIX"]), dtype=np.int32)
            if matrix.size == 9:
                self.vout.set_display_matrix([int(v) for v in matrix])

    def video(self, rgb: np.ndarray, pts: int) -> None:
        """Encode one stylized frame, then mux the audio that it caught up with."""
        with self._errors():
            frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(_even_pad(rgb)), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG")
            frame.pts, frame.time_base = pts, self.time_base
            self._mux_video(self.vout.encode(frame))
        self.frames += 1
        self.end = pts * self.time_base + self.period

    def _mux_video(self, packets: list[Any]) -> None:
        for packet in packets:
            self.out.mux(packet)
            if packet.dts is not None:
                seconds = packet.dts * packet.time_base
                self.video_seconds = seconds if self.video_seconds is None else max(self.video_seconds, seconds)
        if self.video_seconds is not None:
            self._release(self.video_seconds)

    def audio(self, item: Any) -> None:
        """Take one source audio packet (copied) or decoded frame (re-encoded); it is muxed by _release()."""
        if self.copy_audio:
            item.stream = self.aout
            self.audio_queue.append(item)
        else:
            # Encoded at once, so the queue holds compressed packets even if the source put its audio far ahead.
            with self._errors():
                self.audio_queue.extend(self.aout.encode(item))

    def _release(self, until: Fraction | None) -> None:
        """Mux queued audio packets up to ``until`` seconds (all of them for None).

        Audio is held back until the video reaches it rather than muxed as it is demuxed: the video encoder
        holds frames back (x264's lookahead is 40 frames, 10 s at 4 fps) and FFmpeg's muxer reorders packets
        only up to 10 s apart. Holding the audio also delays the header (written at the first mux) until the
        first video frame came, after the display matrix was set.
        """
        while self.audio_queue:
            packet = self.audio_queue[0]
            stamp = packet.dts if packet.dts is not None else packet.pts
            if until is not None and stamp is not None and stamp * packet.time_base > until:
                return
            self.out.mux(self.audio_queue.popleft())

    def finish(self, audio_until: float | Fraction | None = None) -> None:
        """Drain the encoders, mux the remaining audio (up to ``audio_until`` seconds: the end of a video cut
        short on purpose) and write the trailer."""
        with self._errors():
            self._mux_video(self.vout.encode(None))
            if self.aout is not None and not self.copy_audio:
                self.audio_queue.extend(self.aout.encode(None))
            self._release(None if audio_until is None else Fraction(audio_until))
            self.audio_queue.clear()
            self.out.close()

    def abort(self) -> None:
        if self.out is not None:
            # Called while another error propagates: a failure to close must not hide it.
            with contextlib.suppress(Exception):
                self.out.close()


def _check_paths(src: Path, dst: Path, batch_size: int, max_frames: int | None = None) -> None:
    if batch_size < 1:
        raise FastNSTError(f"batch_size must be at least 1, got {batch_size}")
    if max_frames is not None and max_frames < 1:
        raise FastNSTError(f"max_frames must be at least 1, got {max_frames}")
    require_regular_file(src)  # a FIFO named clip.mp4 would block FFmpeg forever
    if not is_video(dst):
        raise FastNSTError(f"{dst}: output must be a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if _same_file(src, dst):
        raise FastNSTError(f"{dst}: the output would overwrite the input video")
    if dst.is_dir():
        raise FastNSTError(f"{dst}: is a folder")
    if not dst.parent.is_dir():
        raise FastNSTError(f"{dst.parent}: no such folder")


def _video_stream(av: Any, container: Any, src: Path) -> Any:
    """The first real video stream, its frame size checked against the pixel limit before any decoding."""
    # Cover art in an MP4/MKV is a one-frame "video" stream: take the first real one.
    videos = [v for v in container.streams.video if not v.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        raise _unreadable(src, "no video stream")
    vin = videos[0]
    width, height = vin.codec_context.width, vin.codec_context.height
    if not width or not height:
        raise _unreadable(src, "unknown frame size")
    check_frame_pixels(f"{src}: video frames", width, height)
    return vin


def check_frame_pixels(what: str, width: int, height: int) -> None:
    """Refuse frames over the pixel limit (``fastnst.runtime.imageio``) in one line naming ``what``. Frames are
    decoded at full size whatever --max-size says: a tiny file can declare gigapixel frames."""
    limit = max_image_pixels()
    if limit is not None and width * height > limit:
        raise FastNSTError(pixel_limit_message(what, width, height, limit))


def _declared_end(container: Any, vin: Any) -> float | None:
    """Where the header says the video ends, in seconds; None: unknown."""
    if vin.duration and vin.time_base:
        return float((vin.duration + (vin.start_time or 0)) * vin.time_base)
    match = re.fullmatch(r"(\d{1,9}):(\d\d):(\d\d(?:\.\d{1,9})?)", str(vin.metadata.get("DURATION", "")))
    if match:  # Matroska's per-stream tag
        return int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3])
    if not container.streams.audio and container.duration:  # the file's duration is the video's
        return (container.duration + (container.start_time or 0)) / 1_000_000
    return None


def _declared_start(vin: Any) -> float:
    """Where the video stream starts, in seconds (a remuxed clip's Matroska stream often starts after 0)."""
    return float(vin.start_time * vin.time_base) if vin.start_time and vin.time_base else 0.0


def expected_frames(container: Any, vin: Any, fps: Fraction) -> int | None:
    """The frame count for the progress bar: declared (MP4), else from the duration (Matroska, WebM)."""
    end = _declared_end(container, vin)
    return vin.frames or (round((end - _declared_start(vin)) * fps) if end else None)


def _report(container: Any, vin: Any, clock: _Clock, writer: _Writer, reader: _Reader, frames: int) -> VideoReport:
    return VideoReport(
        frames=frames,
        seconds=clock.seconds(),
        fps=float(clock.fps),
        width=writer.width,
        height=writer.height,
        audio=writer.aout is not None,
        declared=vin.frames or None,
        declared_end=_declared_end(container, vin),
        declared_start=_declared_start(vin),
        end=clock.end(),
        stopped=reader.stopped,
    )


class VideoInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped :func:`stylize_video`; the frames stylized by then are in ``kept`` (None: none
    could be kept), ``frames`` of about ``total`` (None: unknown; ``exact``: of exactly ``total``, the frames
    asked for by ``limit`` in a video that has them)."""

    def __init__(self, signum: int, frames: int, total: int | None, kept: Path | None, exact: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum, self.frames, self.total, self.kept, self.exact = signum, frames, total, kept, exact


def _frames_in(av: Any, path: Path) -> int:
    """The video frames of a file we wrote: its packets, read without decoding (one frame each)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def partial_name(dst: Path) -> Path:
    """Where an interrupted run keeps the frames it finished: ``clip_wave.partial.mp4`` beside ``dst``, or
    ``clip_wave.partial-2.mp4`` (and so on) when an earlier one is there."""
    path, n = dst.with_name(f"{dst.stem}.partial{dst.suffix}"), 1
    while os.path.lexists(path):
        n += 1
        path = dst.with_name(f"{dst.stem}.partial-{n}{dst.suffix}")
    return path


class _Partial:
    """The temporary output file and its writer: renamed onto ``dst`` on success, removed on any failure."""

    def __init__(self, dst: Path) -> None:
        self.dst = dst
        self.tmp: Path | None = None
        self.writer: _Writer | None = None
        self.total: int | None = None  # the frames expected, once known
        self.exact = False  # total is the frames asked for (a limit the video's own count reaches), not an estimate

    def open(self, av: Any, size: tuple[int, int], ain: Any, clock: _Clock, crf: int, mark: str | None) -> _Writer:
        self.tmp = _temp_for(self.dst)
        self.writer = _Writer(av, self.tmp, self.dst, size, ain, clock, crf, mark)
        return self.writer

    def publish(self) -> None:
        assert self.tmp is not None
        _publish(self.tmp, self.dst)

    def keep(self, path: Path) -> Path | None:
        """Finish the file with the frames encoded so far and name it ``path`` (never replacing a file there).
        None, and no file left, when there are no frames or finishing fails (a second signal, a full disk)."""
        if self.writer is None or self.writer.frames == 0 or os.path.lexists(path):  # lexists: a race
            self.discard()
            return None
        try:
            self.writer.finish(self.writer.end)  # the audio read ahead of the last frame is left out
            assert self.tmp is not None
            _publish(self.tmp, path)
        except BaseException:  # a second signal too: the interrupt that brought us here is raised by the caller
            self.discard()
            return None
        return path

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        if self.tmp is not None:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


def _temp_for(dst: Path) -> Path:
    """A new hidden file beside ``dst`` with its extension (so FFmpeg picks the same container).

    Unique per call: two runs writing the same output never write into one file; only the final rename is
    shared, and the last one wins with a complete video.
    """
    try:
        fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.stem}.", suffix=f".partial{dst.suffix}")
    except OSError as exc:  # named by the output the user gave, not by the hidden file's random name
        raise FastNSTError(f"{dst}: cannot write the video there ({exc.strerror or exc})") from None
    os.close(fd)
    return Path(name)


def _publish(tmp: Path, dst: Path) -> None:
    """Give ``tmp`` the permissions a plain open would (mkstemp's are 0600) and rename it onto ``dst``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dst)


class _Frames:
    """Batches of decoded frames, stylized and handed to the writer in order."""

    def __init__(self, stylize: Stylize, writer: _Writer, size: tuple[int, int], batch_size: int):
        self.stylize, self.writer, self.size, self.batch_size = stylize, writer, size, batch_size
        self.batch: list[np.ndarray] = []
        self.stamps: list[int] = []

    def add(self, rgb: np.ndarray, pts: int) -> bool:
        """Queue one decoded frame; True when the batch is full."""
        self.batch.append(rgb)
        self.stamps.append(pts)
        return len(self.batch) >= self.batch_size

    def flush(self) -> int:
        """Stylize and encode the batch; returns how many frames it held."""
        width, height = self.size
        out = self.stylize(list(self.batch))
        if len(out) != len(self.batch):
            raise FastNSTError(f"stylize returned {len(out)} frames for a batch of {len(self.batch)}")
        for frame, pts in zip(out, self.stamps, strict=True):
            frame = np.asarray(frame)
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise FastNSTError(
                    f"stylize returned a {frame.dtype} frame of shape {frame.shape}, "
                    f"expected uint8 {(height, width, 3)}"
                )
            self.writer.video(frame, pts)
        count = len(self.batch)
        self.batch, self.stamps = [], []
        return count


def _starts_after(item: Any, seconds: float) -> bool:
    """Whether a decoded frame or an audio packet starts after ``seconds`` (False when it has no timestamp)."""
    return item.pts is not None and item.time_base is not None and item.pts * item.time_base > seconds


def _transcode(
    av: Any, reader: _Reader, writer: _Writer, frames: _Frames, clock: _Clock, bar: Progress, limit: int | None
) -> None:
    """Read, stylize and write every frame (the first ``limit`` ones: a preview); audio goes through as it comes."""
    width, height = frames.size
    cut: float | None = None  # a preview's end in seconds, once the frame after its last one is read
    for item in reader:
        if not isinstance(item, av.VideoFrame):
            writer.audio(item)
            if cut is not None and _starts_after(item, cut):
                break
            continue
        if limit is not None and reader.frames > limit:
            if cut is None:  # the next frame's start ends the preview
                cut = float(item.pts * item.time_base) if item.pts is not None else clock.end()
            # Audio stored behind the video is read on up to the cut.
            if writer.aout is None or _starts_after(item, cut + _AUDIO_LAG):
                break
            continue
        check_frame_pixels(f"{reader.src}: frame {reader.frames}", item.width, item.height)  # a mid-stream size change
        if clock.first is None:
            writer.start(item)
        # Decoded frames are converted with the source's own colour matrix, and scaled to the output size
        # (--max-size, or the first frame's size after a mid-stream size change) by FFmpeg, with Lanczos as
        # images get (fastnst.runtime.imageio.FIT_RESAMPLE), in the decoder where frames are converted anyway.
        scaling = {"interpolation": "LANCZOS"} if (item.width, item.height) != (width, height) else {}
        if frames.add(item.to_ndarray(format="rgb24", width=width, height=height, **scaling), clock(item.pts)):
            bar.update(frames.flush())
    if frames.batch:
        bar.update(frames.flush())
    if clock.first is None:
        raise _unreadable(reader.src, "no frames could be decoded")
    writer.finish(cut)


def stylize_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    stylize: Stylize,
    batch_size: int = 4,
    progress: bool = True,
    crf: int = 18,
    max_size: int | None = None,
    mark: str | None = None,
    max_frames: int | None = None,
) -> VideoReport:
    """Stylize every frame of the video ``src`` (or its first ``max_frames``: a preview, its audio cut there)
    with ``stylize`` and write ``dst``, keeping timing and audio.

    ``stylize`` takes a list of up to ``batch_size`` HxWx3 uint8 RGB frames, in order, and returns as many
    frames of the same shape. Frames are scaled so their long side is at most ``max_size`` (even sizes). The
    video is encoded with H.264 (libx264, yuv420p, ``crf``; VP9 for ``.webm``); an odd width/height is padded
    by one edge-replicated column/row. The first audio stream is copied when the output container accepts its
    codec, else re-encoded (AAC; Opus for ``.webm``). ``dst`` is written through a temporary file of its own
    in its folder and replaced only on success; on Ctrl-C or SIGTERM the frames done so far are kept in
    :func:`partial_name` (``VideoInterrupted`` says so). Frames over the pixel limit (``fastnst.runtime.imageio``) are
    refused before decoding. A file that ends early is written as far as it decodes (``VideoReport.shortfall``).
    ``mark`` is written as the container's comment (:func:`video_mark`). Raises FastNSTError for a missing,
    unreadable or too large ``src``, a ``dst`` that is ``src`` or not a video name, or a write failure.
    """
    src, dst = Path(src), Path(dst)
    _check_paths(src, dst, batch_size, max_frames)
    av = _import_av()
    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(src, ffmpeg_reason(exc)) from None
    partial = _Partial(dst)
    try:
        with container:
            settings = (batch_size, progress, crf, max_size, mark, max_frames)
            report = _stylize_container(av, container, src, partial, stylize, *settings)
        partial.publish()
    except KeyboardInterrupt as stop:  # Ctrl-C / SIGTERM: the frames done so far are a playable video
        done = 0 if partial.writer is None else partial.writer.frames
        kept = partial.keep(partial_name(dst))
        # Counted in the kept file: the signal can land after a frame went to the encoder and before the
        # writer counted it, and finishing the file flushes that frame in too.
        frames = _frames_in(av, kept) if kept is not None else done
        signum = getattr(stop, "signum", signal.SIGINT)
        raise VideoInterrupted(signum, frames, partial.total, kept, partial.exact) from stop
    except BaseException:  # errors: never leave the temporary file
        partial.discard()
        raise
    return report


def _stylize_container(
    av: Any, container: Any, src: Path, partial: _Partial, stylize: Stylize, *settings: Any
) -> VideoReport:
    """The work of :func:`stylize_video` on the opened ``container``, into ``partial``'s temporary file;
    ``settings``: its batch_size, progress, crf, max_size, mark and max_frames."""
    batch_size, progress, crf, max_size, mark, limit = settings
    vin = _video_stream(av, container, src)
    vin.thread_type = "AUTO"  # frame and slice threads for decoding
    ain = container.streams.audio[0] if container.streams.audio else None
    fps = vin.average_rate or vin.guessed_rate or Fraction(30)
    clock = _Clock(fps, vin.time_base, cfr=partial.dst.suffix.lower() == ".avi")
    # --max-size as for images, each side even: yuv420p needs it
    size = fit_size(vin.codec_context.width, vin.codec_context.height, max_size, multiple=2)
    writer = partial.open(av, size, ain, clock, crf, mark)
    reader = _Reader(av, container, vin, ain, ain is not None and not writer.copy_audio, src)
    total = expected_frames(container, vin, fps)
    partial.total = total if limit is None else min(total or limit, limit)
    partial.exact = limit is not None and total is not None and total >= limit
    with Progress(partial.total, f"stylize {src.name}", enabled=progress, unit="frame") as bar:
        _transcode(av, reader, writer, _Frames(stylize, writer, size, batch_size), clock, bar, limit)
    return replace(_report(container, vin, clock, writer, reader, bar.count), limit=limit)
