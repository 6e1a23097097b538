"""Stylize a video frame by frame, keeping its frame rate, timing and audio.

Part of the light inference path: it imports no torch, and PyAV (``av``) only when a video is processed,
so that images can be stylized without it installed.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.progress import Progress

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})

# FFmpeg's AVCOL_* value for BT.709 (primaries, transfer, matrix) and AVCOL_RANGE_MPEG (limited range).
_BT709 = 1
_LIMITED_RANGE = 1


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file, judged by its extension (case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class VideoReport:
    """What :func:`stylize_video` wrote."""

    frames: int  # frames encoded (the same as decoded)
    seconds: float  # duration of the output video, from the first frame's timestamp to the end of the last
    fps: float  # the frame rate written to the output (the source's average rate)
    width: int  # encoded size: the source size, plus one row/column when that was odd (yuv420p)
    height: int
    audio: bool  # an audio stream was carried over (copied or re-encoded)


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise FastNSTError("video support needs PyAV: pip install av") from None
    return av


def _reason(exc: BaseException) -> str:
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


def _read(av: Any, container: Any, vin: Any, ain: Any, decode_audio: bool, src: Path) -> Any:
    """Yield decoded video frames, and audio packets (or decoded audio frames), in demux order.

    Every FFmpeg error raised while reading is turned into a one-line FastNSTError naming ``src``.
    """
    streams = [vin] if ain is None else [vin, ain]
    packets = container.demux(*streams)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise _unreadable(src, _reason(exc)) from None
        if packet.stream.index == vin.index:
            try:
                # Flush packets (no dts) at the end of the file are decoded too: they drain the decoder.
                items = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                raise _unreadable(src, _reason(exc)) from None
        elif decode_audio:
            try:
                items = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                raise _unreadable(src, f"audio: {_reason(exc)}") from None
        else:
            # Skip the empty flush packet at the end, and any packet without a timestamp that a muxer could use.
            items = [packet] if packet.size and (packet.dts is not None or packet.pts is not None) else []
        yield from items


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

    def seconds(self) -> float:
        """Duration from the first frame to the end of the last one."""
        if self.first is None or self.last is None:
            return 0.0
        return float((self.last - self.first) * self.time_base + 1 / self.fps)


class _Writer:
    """The output container: one H.264/VP9 video stream and, optionally, the source's audio.

    Every FFmpeg error raised while writing is turned into a one-line FastNSTError naming ``dst``.
    """

    def __init__(self, av: Any, tmp: Path, dst: Path, vin: Any, ain: Any, fps: Fraction, time_base: Fraction, crf: int):
        self.av, self.dst, self.time_base = av, dst, time_base
        self.width = vin.codec_context.width + vin.codec_context.width % 2
        self.height = vin.codec_context.height + vin.codec_context.height % 2
        self.out = None
        self.audio_queue: deque[Any] = deque()  # audio packets not yet muxed, in order
        self.video_seconds: Fraction | None = None  # the latest video timestamp muxed
        with self._errors():
            self.out = av.open(str(tmp), "w")
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
            raise FastNSTError(f"{self.dst}: could not write video ({_reason(exc)})") from None

    def _add_audio(self, ain: Any) -> None:
        with contextlib.suppress(ValueError):
            # Copy the packets as they are when the container accepts the codec (PyAV raises ValueError if not).
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

    def finish(self) -> None:
        """Drain the encoders, mux the remaining audio and write the trailer."""
        with self._errors():
            self._mux_video(self.vout.encode(None))
            if self.aout is not None and not self.copy_audio:
                self.audio_queue.extend(self.aout.encode(None))
            self._release(None)
            self.out.close()

    def abort(self) -> None:
        if self.out is not None:
            # Called while another error propagates: a failure to close must not hide it.
            with contextlib.suppress(Exception):
                self.out.close()


def stylize_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    stylize: Callable[[list[np.ndarray]], list[np.ndarray]],
    batch_size: int = 4,
    progress: bool = True,
    crf: int = 18,
) -> VideoReport:
    """Stylize every frame of the video ``src`` with ``stylize`` and write ``dst``, keeping timing and audio.

    ``stylize`` takes a list of up to ``batch_size`` HxWx3 uint8 RGB frames, in order, and returns as many
    frames of the same shape. The video is encoded with H.264 (libx264, yuv420p, ``crf``; VP9 for ``.webm``);
    an odd width/height is padded by one edge-replicated column/row. The first audio stream is copied when the
    output container accepts its codec, else re-encoded (AAC; Opus for ``.webm``). ``dst`` is written through
    a temporary file in its folder and replaced only on success. Raises FastNSTError for a missing or
    unreadable ``src``, a ``dst`` that is ``src`` or not a video name, or a write failure.
    """
    src, dst = Path(src), Path(dst)
    if batch_size < 1:
        raise FastNSTError(f"batch_size must be at least 1, got {batch_size}")
    if not src.is_file():
        raise FastNSTError(f"{src}: no such file")
    if not is_video(dst):
        raise FastNSTError(f"{dst}: output must be a video file ({', '.join(sorted(VIDEO_EXTENSIONS))})")
    if _same_file(src, dst):
        raise FastNSTError(f"{dst}: the output would overwrite the input video")
    if dst.is_dir():
        raise FastNSTError(f"{dst}: is a folder")
    if not dst.parent.is_dir():
        raise FastNSTError(f"{dst.parent}: no such folder")
    av = _import_av()

    try:
        container = av.open(str(src))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _unreadable(src, _reason(exc)) from None
    # Same extension, so the muxer is chosen the same way; hidden, so a half-written file is not mistaken for output.
    tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
    writer = None
    try:
        with container:
            # Cover art in an MP4/MKV is a one-frame "video" stream: take the first real one.
            videos = [v for v in container.streams.video if not v.disposition & av.stream.Disposition.attached_pic]
            if not videos:
                raise _unreadable(src, "no video stream")
            vin = videos[0]
            if not vin.codec_context.width or not vin.codec_context.height:
                raise _unreadable(src, "unknown frame size")
            vin.thread_type = "AUTO"  # frame and slice threads for decoding
            ain = container.streams.audio[0] if container.streams.audio else None
            fps = vin.average_rate or vin.guessed_rate or Fraction(30)
            clock = _Clock(fps, vin.time_base, cfr=dst.suffix.lower() == ".avi")
            writer = _Writer(av, tmp, dst, vin, ain, fps, clock.time_base, crf)
            width, height = vin.codec_context.width, vin.codec_context.height
            batch: list[np.ndarray] = []
            stamps: list[int] = []

            def flush() -> None:
                out = stylize(list(batch))
                if len(out) != len(batch):
                    raise FastNSTError(f"stylize returned {len(out)} frames for a batch of {len(batch)}")
                for frame, pts in zip(out, stamps, strict=True):
                    frame = np.asarray(frame)
                    if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                        raise FastNSTError(
                            f"stylize returned a {frame.dtype} frame of shape {frame.shape}, "
                            f"expected uint8 {(height, width, 3)}"
                        )
                    writer.video(frame, pts)
                bar.update(len(batch))
                batch.clear()
                stamps.clear()

            with Progress(vin.frames or None, f"stylize {src.name}", enabled=progress) as bar:
                for item in _read(av, container, vin, ain, ain is not None and not writer.copy_audio, src):
                    if not isinstance(item, av.VideoFrame):
                        writer.audio(item)
                        continue
                    if clock.first is None:
                        writer.start(item)
                    pts = clock(item.pts)
                    # Decoded frames are converted with the source's own colour matrix; a mid-stream size
                    # change is scaled back to the first frame's size.
                    batch.append(item.to_ndarray(format="rgb24", width=width, height=height))
                    stamps.append(pts)
                    if len(batch) >= batch_size:
                        flush()
                if batch:
                    flush()
            if clock.first is None:
                raise _unreadable(src, "no frames could be decoded")
            writer.finish()
            report = VideoReport(
                frames=bar.count,
                seconds=clock.seconds(),
                fps=float(fps),
                width=writer.width,
                height=writer.height,
                audio=writer.aout is not None,
            )
        os.replace(tmp, dst)
    except BaseException:
        if writer is not None:
            writer.abort()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return report
