"""``fastnst infer``: stylize files, folders, globs and videos (torch-free, like fastnst.runtime.stylizer).

Every output is planned, and checked, before any work: its extension says what it holds (an image for an
image, a video for a video), it lies inside the folder the user named (or beside its input), and no two
outputs share a name, even on a file system that ignores case. Each input then succeeds or fails on its own.
SIGINT and SIGTERM stop the run cleanly: no temporary file is left, what was written is listed, and the
exit status is 128 + the signal number (130, 143).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import io
import json
import os
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from fastnst.atomic import new_folders
from fastnst.errors import FastNSTError
from fastnst.overwrite import InputSet, blocking_file
from fastnst.progress import Progress
from fastnst.runtime.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    decode_rgb,
    encode_image,
    fastnst_mark,
    made_by_fastnst,
    max_image_pixels,
    open_rgb,
    output_metadata,
    save_image,
    set_max_image_pixels,
    to_uint8,
)
from fastnst.runtime.masks import parse_mask_spec
from fastnst.runtime.stylizer import Stylizer
from fastnst.runtime.temporal import MOMENTUM, SmoothedStats, check_momentum
from fastnst.runtime.video import VIDEO_EXTENSIONS, VideoInterrupted, is_video, stylize_video, video_mark
from fastnst.styles import QUALITY_SUFFIX, STABLE_SUFFIX, quality_model, video_model

_KEEP_FORMAT = frozenset({".jpg", ".jpeg", ".png", ".webp"})  # other image inputs are written as PNG
_OVERLAP = 128  # Stylizer's default overlap between tiles: a tile must be at least 4 times larger
_SHOWN = 5  # not-written inputs named on the interruption line (--json lists them all)

STREAM = "-"  # an input of "-" is standard input, -o - is standard output
STREAM_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}  # --format, for -o -
Job = tuple[Path, Path]  # (input file, the folder its output path is made relative to)
Pending = tuple[Path, Path, np.ndarray, dict[str, bytes]]  # (input, output, pixels, save options)


# -- inputs and output names ------------------------------------------------------------------


def expand_inputs(inputs: list[str]) -> list[Job]:
    """``(file, base)`` pairs: files as given, folders scanned recursively, globs expanded.

    ``base`` is the folder a file's output path is made relative to. Anything that is not a folder is
    kept, FIFOs and broken or looping links included: each fails on its own, in one line, when read.
    """
    found: list[Job] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            media = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in media and not p.is_dir())
            if not files:
                raise FastNSTError(f"{item}: folder holds no images or videos")
            found += [(p, path) for p in files]
        elif os.path.lexists(path):
            found.append((path, path.parent))
        else:
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if not Path(p).is_dir())
            if not matches:
                raise FastNSTError(f"{item}: no such file or folder, and no file matches it as a glob")
            found += [(p, p.parent) for p in matches]
    return list(dict.fromkeys(found))  # a file named twice is done once


def output_path(src: Path, base: Path, output: Path | None, single: bool, style: str) -> Path:
    """Where the result of ``src`` goes: ``-o FILE`` for one input, else ``<stem>_<style><ext>`` in a folder."""
    suffix = src.suffix.lower()
    if output is not None and single and not output.is_dir() and output.suffix:
        return output
    ext = suffix if suffix in _KEEP_FORMAT | VIDEO_EXTENSIONS else ".png"
    folder = (output / src.parent.relative_to(base)) if output is not None else src.parent
    return folder / f"{src.stem}_{style}{ext}"


def _fold(path: Path) -> str:
    """The key two paths collide on: case-insensitive file systems (macOS, Windows) see a.JPG as a.jpg."""
    return str(path).casefold()


def _distinct(src: Path, dst: Path, style: str, taken: set[str]) -> Path:
    """A name for ``src`` that no other output has: the source extension added, then a number if needed."""
    tag = src.suffix.lstrip(".") or "noext"
    candidate = dst.with_name(f"{src.stem}_{tag}_{style}{dst.suffix}")
    n = 2
    while _fold(candidate) in taken:
        candidate = dst.with_name(f"{src.stem}_{tag}_{style}_{n}{dst.suffix}")
        n += 1
    return candidate


def plan_outputs(jobs: list[Job], output: Path | None, style: str) -> list[Path]:
    """Output paths for all inputs, distinct even where case is ignored; deterministic for the same inputs.

    Names that would collide (a.png and a.bmp, a.jpg and a.JPG) get the source extension
    (``a_png_<style>.png``), and a number when that still collides (``a_jpg_<style>_2.jpg``).
    """
    single = len(jobs) == 1
    first = [output_path(src, base, output, single, style) for src, base in jobs]
    counts = Counter(_fold(p) for p in first)
    taken = {_fold(p) for p in first if counts[_fold(p)] == 1}  # names no one else wants are kept as they are
    planned: list[Path] = []
    for (src, _), dst in zip(jobs, first, strict=True):
        if counts[_fold(dst)] > 1:
            dst = _distinct(src, dst, style, taken)
            taken.add(_fold(dst))
        planned.append(dst)
    return planned


def preview_names(jobs: list[Job], outputs: list[Path], output: Path | None, frames: int) -> list[Path]:
    """``--frames N``: a video's output named ``clip_wave.firstN.mp4``, so that a preview is never taken for
    (or skips) the whole clip's ``clip_wave.mp4``; a file named by ``-o`` keeps its name."""
    named = output is not None and len(jobs) == 1 and outputs[0] == output
    return [
        dst.with_name(f"{dst.stem}.first{frames}{dst.suffix}") if is_video(src) and not named else dst
        for (src, _), dst in zip(jobs, outputs, strict=True)
    ]


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (its folder's real path, then its own name) lies inside ``folder``."""
    root = os.path.realpath(folder)
    real = os.path.join(os.path.realpath(path.parent), path.name)  # the name itself is replaced, not followed
    try:
        return real != root and os.path.commonpath([root, real]) == root
    except ValueError:  # Windows: different drives
        return False


def check_output(src: Path, dst: Path, root: Path) -> None:
    """Refuse, before any work, an output whose extension does not fit its input, that is not inside
    ``root``, or that exists and is not a file (a folder, a FIFO): such a thing is never replaced."""
    kind, extensions = ("video", VIDEO_EXTENSIONS) if is_video(src) else ("image", IMAGE_EXTENSIONS)
    if dst.suffix.lower() not in extensions:
        article = "an" if kind == "image" else "a"
        raise FastNSTError(
            f"-o {dst}: {src} is {article} {kind} ({kind} names end in {', '.join(sorted(extensions))}); "
            "name one of those, or an existing folder"
        )
    if not _inside(dst, root):
        raise FastNSTError(f"{src}: its output {dst} would be outside {root}; refused")
    blocking = blocking_file(dst.parent)  # else the write would fail after the work
    if blocking is not None:
        raise FastNSTError(f"-o {dst}: {blocking} is a file, not a folder")
    with contextlib.suppress(OSError):
        mode = os.lstat(dst).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise FastNSTError(f"-o {dst}: exists and is not a file; it is never replaced")


def check_outputs(jobs: list[Job], outputs: list[Path], output: Path | None, what: str = "output") -> None:
    """:func:`check_output` for every planned output, and none of them an input (by any route: links,
    hard links, case); the root is ``-o`` (a folder), or the input's folder."""
    single_file = output is not None and len(jobs) == 1 and outputs[0] == output
    inputs = InputSet(src for src, _ in jobs)
    for (src, _), dst in zip(jobs, outputs, strict=True):
        root = dst.parent if single_file else (output if output is not None else src.parent)
        check_output(src, dst, root)
        if inputs.holds(dst):
            fix = "choose another -o" if output is not None else "name an output folder with -o"
            raise FastNSTError(f"{src}: its {what} {dst} would overwrite an input; {fix}")


def check_settings(args: argparse.Namespace) -> None:
    """Settings errors, once, before the model or any input is read."""
    if args.batch_size < 1:
        raise FastNSTError(f"--batch-size {args.batch_size}: must be at least 1")
    if args.frames is not None and args.frames < 1:
        raise FastNSTError(f"--frames {args.frames}: expected at least 1 (the first frames of each video)")
    if not 0.0 <= args.strength <= 1.0:
        raise FastNSTError(f"--strength {args.strength}: expected a value from 0 to 1")
    if args.max_size is not None and args.max_size < 1:
        raise FastNSTError(f"--max-size {args.max_size}: expected a positive number of pixels (the long side)")
    for spec in args.mask or []:
        try:
            path, _ = parse_mask_spec(spec)
        except ValueError as e:
            raise FastNSTError(str(e)) from None
        if not Path(path).expanduser().is_file():
            raise FastNSTError(f"--mask {spec}: {path}: no such file")
    if args.mask and args.sheet:
        raise FastNSTError("--mask and --sheet: a sheet shows each style on its own; leave one out")
    if args.smooth_momentum is not None:
        if not args.smooth_stats:
            raise FastNSTError(f"--smooth-momentum {args.smooth_momentum}: only with --smooth-stats (its momentum)")
        try:
            check_momentum(args.smooth_momentum, "--smooth-momentum")
        except ValueError as e:
            raise FastNSTError(str(e)) from None
    if args.tile_size is not None and args.tile_size < 4 * _OVERLAP:
        raise FastNSTError(
            f"--tile-size {args.tile_size}: must be at least {4 * _OVERLAP} px (4 x the {_OVERLAP}-px tile overlap)"
        )
    if args.max_image_pixels is not None:
        set_max_image_pixels(args.max_image_pixels)
    max_image_pixels()  # a bad FASTNST_MAX_IMAGE_PIXELS is a settings error, once, before any work


def _media_flags(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """The flags given that act on videos only (True) or on photos only (False)."""
    flags = (
        ("--smooth-stats", args.smooth_stats, True),
        ("--no-stable", args.no_stable, True),
        ("--frames", args.frames is not None, True),
        ("--fast", args.fast, False),
    )
    return [(flag, for_videos) for flag, given, for_videos in flags if given]


def check_media_settings(args: argparse.Namespace, jobs: list[Job]) -> None:
    """Settings that depend on what the inputs are: refused where they cannot work, and a note where a
    flag has nothing to act on (instead of being silently ignored)."""
    videos = sum(is_video(src) for src, _ in jobs)
    photos = len(jobs) - videos
    if videos and args.max_size is not None and args.max_size < 2:
        raise FastNSTError(f"--max-size {args.max_size}: a video frame needs at least 2 px a side")
    flags = _media_flags(args)
    unused = [f"{flag} ({'videos' if v else 'photos'} only)" for flag, v in flags if not (videos if v else photos)]
    if unused and not args.quiet:
        print(f"note: {', '.join(unused)}: no such input here, not used", file=sys.stderr)


# -- signals ------------------------------------------------------------------------------------


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Make SIGTERM stop the run as Ctrl-C does: both raise :class:`Interrupted` where the run is.

    Only the first signal raises; later ones are ignored while the run cleans up and reports (a second
    Ctrl-C must not leave a temporary file behind). The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not received:
            received.append(signum)
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _stamp(path: Path) -> tuple[int, ...] | None:
    """Identity and version of the file at ``path`` (None if absent): a rename onto it changes it."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


# -- the run ---------------------------------------------------------------------------------------


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C or SIGTERM during whose handling ``error`` was raised, if any.

    A library's cleanup can fail while a KeyboardInterrupt unwinds (a file closed twice gives EBADF);
    its error then replaces the interrupt, which must still stop the run, not fail one input.
    """
    seen = error.__context__
    while seen is not None and not isinstance(seen, KeyboardInterrupt):
        seen = seen.__context__
    return seen


def _for_input(src: Path, error: BaseException) -> FastNSTError:
    """A one-line error that names the input (model errors name only the model)."""
    text = str(error)
    return FastNSTError(text if str(src) in text else f"{src}: {text}")


class InferRun:
    """One ``fastnst infer`` run: stylizes and writes each input, and records what became of it."""

    def __init__(
        self,
        stylizer: Stylizer,
        args: argparse.Namespace,
        jobs: list[Job],
        outputs: list[Path],
        skipped: list[dict[str, str]] | None = None,
        video_stylizer: Stylizer | None = None,
        photo_stylizer: Stylizer | None = None,
    ):
        self.stylizer, self.args, self.jobs, self.outputs = stylizer, args, jobs, outputs
        self.video_stylizer = video_stylizer or stylizer  # a shipped style's stability-trained network
        self.photo_stylizer = photo_stylizer or stylizer  # a shipped style's quality-tier network
        self.records: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []
        self.skipped: list[dict[str, str]] = list(skipped or [])  # not stylized, on purpose
        self.pending: list[Pending] = []
        self.partial: dict[str, Any] | None = None  # the frames an interrupted video kept
        self.bar: Progress | None = None  # counts inputs as they are finished: written or failed
        # After a signal, an output whose file changed was written, even if its record was not made yet.
        self.stamps = {dst: _stamp(dst) for dst in outputs}

    def fail(self, src: Path, error: BaseException) -> None:
        """Record that ``src`` failed; an interrupt hidden behind ``error`` stops the run instead."""
        interrupt = _interrupt_behind(error)
        if interrupt is not None:
            raise interrupt
        error = _for_input(src, error)
        self.errors.append({"input": str(src), "error": str(error)})
        tqdm.write(f"error: {error}", file=sys.stderr)  # one line per failed input, above any progress bar
        self._finished(src)

    def _finished(self, src: Path) -> None:
        if self.bar is not None:
            self.bar.update(note=src.name)

    def run(self, bar: Progress) -> None:
        """Every input in turn; an error fails that input alone. ``bar`` counts finished inputs."""
        self.bar = bar
        for (src, _), dst in zip(self.jobs, self.outputs, strict=True):
            try:
                if not self.args.overwrite and os.path.lexists(dst):
                    self.skip(src, f"{dst} exists (--overwrite replaces it)", dst)
                elif is_video(src):
                    self.video(src, dst)
                else:
                    self.image(src, dst)
            except (FastNSTError, OSError) as e:
                self.fail(src, e)
        self.flush()

    def skip(self, src: Path, reason: str, dst: Path | None = None) -> None:
        self.skipped.append({"input": str(src), **({"output": str(dst)} if dst else {}), "reason": reason})
        self._finished(src)

    def image(self, src: Path, dst: Path) -> None:
        opened = open_rgb(src)
        image = np.asarray(opened)
        if self.pending and self.pending[0][2].shape != image.shape:
            self.flush()
        self.pending.append((src, dst, image, output_metadata(opened, self.stylizer.style)))
        if len(self.pending) >= self.args.batch_size:
            self.flush()

    def _stylize(self, batch: list[Pending]) -> list[tuple[Path, Path, Any, dict[str, bytes]]]:
        """Results of a batch; if the batch fails, each input is tried alone, so a bad one fails alone."""
        try:
            results = self.photo_stylizer.stylize_arrays(
                [b[2] for b in batch], self.args.strength, self.args.preserve_color
            )
        except FastNSTError as e:
            if len(batch) == 1:
                self.fail(batch[0][0], e)
                return []
            return [r for item in batch for r in self._stylize([item])]
        return [(src, dst, result, meta) for (src, dst, _, meta), result in zip(batch, results, strict=True)]

    def flush(self) -> None:
        """Stylize and write the pending batch; each input succeeds or fails on its own."""
        batch, self.pending = self.pending, []
        for src, dst, result, meta in self._stylize(batch) if batch else []:
            try:
                save_image(to_uint8(result.image), dst, meta)
            except FastNSTError as e:
                self.fail(src, e)
                continue
            h, w = result.image.shape[:2]
            record = {"input": str(src), "output": str(dst), "width": w, "height": h}
            if self.photo_stylizer is not self.stylizer:
                record["model"] = str(self.photo_stylizer.path)
            self.records.append({**record, "seconds": round(result.seconds, 4), "tiles": result.tiles})
            self._finished(src)

    def _frames(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        results = self.video_stylizer.stylize_arrays(frames, self.args.strength, self.args.preserve_color)
        return [to_uint8(r.image) for r in results]

    def _frame_function(self) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        """Batches of frames in, stylized frames out: per frame, or with smoothed statistics (one per clip)."""
        if not self.args.smooth_stats:
            return self._frames
        smoothed = SmoothedStats(
            self.video_stylizer,
            MOMENTUM if self.args.smooth_momentum is None else self.args.smooth_momentum,
            strength=self.args.strength,
            preserve_colors=self.args.preserve_color,
        )
        return lambda frames: [smoothed(f) for f in frames]

    def video(self, src: Path, dst: Path) -> None:
        self.flush()
        t0 = time.perf_counter()
        with new_folders(dst.parent), _keeping(self, src):  # the temporary file is written beside the output
            report = stylize_video(
                src,
                dst,
                self._frame_function(),
                self.args.batch_size,
                progress=not self.args.quiet,
                max_size=self.args.max_size,
                mark=fastnst_mark(self.stylizer.style),
                max_frames=self.args.frames,
            )
        record = {"input": str(src), "output": str(dst), "width": report.width, "height": report.height}
        record.update(frames=report.frames, seconds=round(time.perf_counter() - t0, 4))
        if report.limit is not None:
            record["limit"] = report.limit  # a preview (--frames)
        if self.video_stylizer is not self.stylizer:
            record["model"] = str(self.video_stylizer.path)
        shortfall = report.shortfall()
        if shortfall is not None:
            record["warning"] = shortfall
            tqdm.write(f"warning: {src}: {shortfall}", file=sys.stderr)
        self.records.append(record)
        self._finished(src)

    def written_unrecorded(self) -> list[dict[str, Any]]:
        """Outputs renamed into place just before a signal, before their record was made."""
        recorded = {r["output"] for r in self.records}
        failed = {e["input"] for e in self.errors}
        return [
            {"input": str(src), "output": str(dst)}
            for (src, _), dst in zip(self.jobs, self.outputs, strict=True)
            if str(dst) not in recorded and str(src) not in failed and _stamp(dst) != self.stamps[dst]
        ]


@contextlib.contextmanager
def _keeping(run: InferRun, src: Path) -> Iterator[None]:
    """Record where an interrupted video kept the frames it finished (the interrupt goes on)."""
    try:
        yield
    except VideoInterrupted as stop:
        total = f" of {'' if stop.exact else 'about '}{stop.total}" if stop.total else ""
        run.partial = {"input": str(src), "frames": stop.frames, "of": stop.total, "output": str(stop.kept)}
        run.partial["note"] = (
            f"{src}: the first {stop.frames}{total} frames kept in {stop.kept}"
            if stop.kept is not None
            else f"{src}: the {stop.frames}{total} frames stylized could not be kept"
        )
        raise


# -- reporting ---------------------------------------------------------------------------------------


def _interruption(run: InferRun, signum: int) -> tuple[str, list[str]]:
    """The one line saying what a signal stopped, and the inputs whose output was not written."""
    done = {r["input"] for r in [*run.records, *run.skipped]}
    missing = [str(src) for src, _ in run.jobs if str(src) not in done]
    shown = ", ".join(missing[:_SHOWN]) + (f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else "")
    line = (
        f"interrupted by {signal.Signals(signum).name}: {len(done)} of {len(run.jobs)} outputs written "
        f"(listed on stdout), {len(missing)} not written" + (f": {shown}" if missing else "")
    )
    return line, missing


def _report(run: InferRun, args: argparse.Namespace, seconds: float, signum: int | None) -> int:
    """Print the outcome (text or --json) and return the exit status."""
    if signum is not None:
        run.records += run.written_unrecorded()
    line, missing = _interruption(run, signum) if signum is not None else ("", [])
    report = {
        "model": str(args.model),
        "style": run.stylizer.style,
        "providers": run.stylizer.providers,
        "outputs": run.records,
        "errors": run.errors,
        "skipped": run.skipped,
        "seconds": round(seconds, 4),
    }
    if signum is not None:
        report.update(interrupted=signal.Signals(signum).name, not_written=missing)
        if run.partial is not None:
            report["partial"] = run.partial
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in run.records:
            frames = f"{r['frames']} frames, " if "frames" in r else ""
            size = f" ({r['width']}x{r['height']}, {frames}{r['seconds']:.3f} s)" if "seconds" in r else ""
            print(f"{r['input']} -> {r['output']}{size}")
        for r in run.skipped:
            print(f"skipped {r['input']}: {r['reason']}")
    if run.errors:
        print(f"{len(run.errors)} of {len(run.jobs)} input(s) failed (listed above)", file=sys.stderr)
    if signum is not None:
        print(line, file=sys.stderr)
        if run.partial is not None:
            print(run.partial["note"], file=sys.stderr)
        return 128 + signum
    return 1 if run.errors else 0


def _stylizer(args: argparse.Namespace, model: Path | None = None) -> Stylizer:
    """The model (``--model``, unless another is given) with the command line's style, masks, device and sizes."""
    return Stylizer(
        model or args.model,
        style=args.style,
        device=args.device,
        max_size=args.max_size,
        tile_size=args.tile_size,
        masks=args.mask,
    )


def _prepare(args: argparse.Namespace) -> InferRun:
    """Settings, model, inputs and planned outputs, all checked before any work."""
    check_settings(args)
    stylizer = _stylizer(args)
    jobs, skipped = expand_inputs(args.inputs), []
    if not args.again:
        jobs, skipped = _earlier_outputs(jobs, stylizer.style)
    if not jobs:
        return InferRun(stylizer, args, [], [], skipped)
    if len(jobs) > 1 and args.output is not None and (args.output.is_file() or args.output.suffix):
        raise FastNSTError(f"-o {args.output}: {len(jobs)} inputs need an output folder, not a file name")
    check_media_settings(args, jobs)
    outputs = plan_outputs(jobs, args.output, stylizer.style)
    if args.frames is not None:
        outputs = preview_names(jobs, outputs, args.output, args.frames)
    check_outputs(jobs, outputs, args.output)
    return InferRun(stylizer, args, jobs, outputs, skipped, _video_stylizer(args, jobs), _photo_stylizer(args, jobs))


def _photo_stylizer(args: argparse.Namespace, jobs: list[Job] | None = None) -> Stylizer | None:
    """For photos, a shipped style's quality-tier network (``udnie`` -> ``udnie_hq``), unless ``--fast``;
    None when there is no photo among the inputs (``jobs``; None: one image, a stream) or no such network."""
    quality = None if args.fast else quality_model(args.model)
    if quality is None or (jobs is not None and all(is_video(src) for src, _ in jobs)):
        return None
    if not args.quiet:
        note = f"the quality-tier network of {args.model} (--fast: the real-time one)"
        print(f"photos: {args.model}{QUALITY_SUFFIX}, {note}", file=sys.stderr)
    return _stylizer(args, quality)


def _video_stylizer(args: argparse.Namespace, jobs: list[Job]) -> Stylizer | None:
    """For videos, a shipped style's stability-trained network (``wave`` -> ``wave_stable``), unless
    ``--no-stable``; None when there is no video among the inputs or no such network."""
    stable = None if args.no_stable else video_model(args.model)
    if stable is None or not any(is_video(src) for src, _ in jobs):
        return None
    if not args.quiet:
        note = f"the stability-trained network of {args.model} (--no-stable: per frame)"
        print(f"videos: {args.model}{STABLE_SUFFIX}, {note}", file=sys.stderr)
    return _stylizer(args, stable)


def _earlier_outputs(jobs: list[Job], style: str) -> tuple[list[Job], list[dict[str, str]]]:
    """Inputs that are fastnst outputs of this style (marked in an image's EXIF, a video's comment tag) are
    not stylized again: a rerun on a folder does not make ``photo_wave_wave.jpg``. Returns the jobs left, and
    the skipped."""
    kept: list[Job] = []
    skipped: list[dict[str, str]] = []
    for src, base in jobs:
        if video_mark(src) == fastnst_mark(style) if is_video(src) else made_by_fastnst(src, style):
            reason = f"an output of fastnst with style {style} (--again stylizes it)"
            skipped.append({"input": str(src), "reason": reason})
        else:
            kept.append((src, base))
    return kept, skipped


def _signum(interrupt: KeyboardInterrupt) -> int:
    return getattr(interrupt, "signum", signal.SIGINT)  # a plain KeyboardInterrupt is Ctrl-C


def run_infer(args: argparse.Namespace) -> int:
    """Run ``fastnst infer``; returns the exit status (1 if any input failed, 128 + N after signal N)."""
    if STREAM in args.inputs or str(args.output) == STREAM:
        return run_stream(args)
    if args.format is not None:
        raise FastNSTError(f"--format {args.format}: only for -o - (a file's extension gives its format)")
    with stop_on_signals():
        try:
            run = _prepare(args)
        except BaseException as e:
            # A signal while onnxruntime is imported surfaces as its ImportError, the interrupt as its context.
            interrupt = e if isinstance(e, KeyboardInterrupt) else _interrupt_behind(e)
            if interrupt is None:
                raise
            signum = _signum(interrupt)
            print(f"interrupted by {signal.Signals(signum).name} before any input was read", file=sys.stderr)
            return 128 + signum
        start = time.perf_counter()
        signum = None
        try:
            with Progress(len(run.jobs), "stylize", enabled=not args.quiet, unit="file") as bar:
                run.run(bar)
        except KeyboardInterrupt as e:
            signum = _signum(e)
        return _report(run, args, time.perf_counter() - start, signum)


# -- standard input and output ---------------------------------------------------------------------


def _stream_source(args: argparse.Namespace) -> tuple[str, Image.Image]:
    """The one image of a stream run: standard input for ``-``, else the one image file named."""
    if args.inputs == [STREAM]:
        return "<stdin>", decode_rgb(sys.stdin.buffer.read(), "<stdin>")
    if STREAM in args.inputs:
        raise FastNSTError("-: standard input holds one image; name no other input with it")
    jobs = expand_inputs(args.inputs)
    if len(jobs) != 1 or is_video(jobs[0][0]):
        raise FastNSTError(f"-o -: standard output takes one image, not {len(jobs)} input(s) or a video")
    return str(jobs[0][0]), open_rgb(jobs[0][0])


def _stream_target(args: argparse.Namespace) -> Path | None:
    """Where a stream run writes: None for standard output (``-o -``, or ``-`` in without ``-o``)."""
    if args.output is None or str(args.output) == STREAM:
        return None
    if args.format is not None:
        raise FastNSTError(f"--format {args.format}: only for -o - (a file's extension gives its format)")
    check_output(Path(STREAM), args.output, args.output.parent)
    return args.output


def run_stream(args: argparse.Namespace) -> int:
    """``fastnst infer -`` (standard input) and ``-o -`` (standard output): one image.

    With the image on standard output, the report goes to standard error.
    """
    check_settings(args)
    target = _stream_target(args)
    if target is not None and not args.overwrite and os.path.lexists(target):
        print(f"skipped <stdin>: {target} exists (--overwrite replaces it)")
        return 0
    stylizer = _photo_stylizer(args) or _stylizer(args)
    try:
        name, opened = _stream_source(args)
    except ImageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result = stylizer.stylize_arrays([np.asarray(opened)], args.strength, args.preserve_color)[0]
    pixels, metadata = to_uint8(result.image), output_metadata(opened, stylizer.style)
    if target is None:
        buffer = io.BytesIO()
        encode_image(pixels, buffer, STREAM_FORMATS[args.format or "png"], metadata)
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        save_image(pixels, target, metadata)
    h, w = pixels.shape[:2]
    record = {"input": name, "output": str(target or "<stdout>"), "width": w, "height": h}
    record.update(seconds=round(result.seconds, 4), tiles=result.tiles)
    text = json.dumps({"style": stylizer.style, "outputs": [record]}, indent=2) if args.json else None
    print(text or f"{name} -> {record['output']} ({w}x{h}, {result.seconds:.3f} s)",
          file=sys.stderr if target is None else sys.stdout)  # fmt: skip
    return 0
