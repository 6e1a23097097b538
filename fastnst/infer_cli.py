"""``fastnst infer``: stylize files, folders, globs and videos (torch-free, like fastnst.infer)."""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.imageio import max_image_pixels, open_rgb, set_max_image_pixels
from fastnst.infer import IMAGE_EXTENSIONS, Stylizer, to_uint8
from fastnst.progress import Progress
from fastnst.video import VIDEO_EXTENSIONS, is_video, stylize_video

_KEEP_FORMAT = frozenset({".jpg", ".jpeg", ".png", ".webp"})  # other image inputs are written as PNG


def expand_inputs(inputs: list[str]) -> list[tuple[Path, Path]]:
    """``(file, base)`` pairs: files as given, folders scanned recursively, globs expanded.

    ``base`` is the folder a file's output path is made relative to.
    """
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS)
            if not files:
                raise FastNSTError(f"{item}: folder holds no images or videos")
            found += [(p, path) for p in files]
        elif path.is_file():
            found.append((path, path.parent))
        else:
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
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


def save_image(image: np.ndarray, path: Path) -> None:
    """Write a uint8 RGB array atomically, in the format of its extension (JPEG/WebP quality 95).

    A temporary file in the same folder is renamed onto ``path`` only once complete, so a
    crash or a full disk never leaves a truncated file where a good one was.
    """
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_write(path) as f:
            Image.fromarray(image, "RGB").save(f, format=fmt, **options)
    except (OSError, ValueError) as e:
        raise FastNSTError(f"{path}: cannot write ({e})") from e


def plan_outputs(jobs: list[tuple[Path, Path]], output: Path | None, style: str) -> list[Path]:
    """Output paths for all inputs; names that would collide (a.png, a.bmp) get the source extension."""
    single = len(jobs) == 1
    first = [output_path(src, base, output, single, style) for src, base in jobs]
    taken = Counter(first)
    planned: list[Path] = []
    for (src, _), dst in zip(jobs, first, strict=True):
        if taken[dst] > 1:
            dst = dst.with_name(f"{src.stem}_{src.suffix.lstrip('.').lower()}_{style}{dst.suffix}")
        if dst in planned:
            raise FastNSTError(
                f"{src}: its output name {dst} is also the output of another input; use separate -o folders"
            )
        planned.append(dst)
    return planned


def _load(path: Path) -> np.ndarray:
    return np.asarray(open_rgb(path))


def run_infer(args: argparse.Namespace) -> int:
    """Run ``fastnst infer``; returns the exit status (1 if any input failed)."""
    if args.batch_size < 1:
        raise FastNSTError(f"--batch-size {args.batch_size}: must be at least 1")
    if not 0.0 <= args.strength <= 1.0:
        raise FastNSTError(f"--strength {args.strength}: expected a value from 0 to 1")
    if args.max_image_pixels is not None:
        set_max_image_pixels(args.max_image_pixels)
    max_image_pixels()  # a bad FASTNST_MAX_IMAGE_PIXELS is a settings error, once, before any work
    stylizer = Stylizer(args.model, device=args.device, max_size=args.max_size, tile_size=args.tile_size)
    jobs = expand_inputs(args.inputs)
    if len(jobs) > 1 and args.output is not None and (args.output.is_file() or args.output.suffix):
        raise FastNSTError(f"-o {args.output}: {len(jobs)} inputs need an output folder, not a file name")
    style = stylizer.style
    outputs = plan_outputs(jobs, args.output, style)
    inputs = {src.resolve() for src, _ in jobs}
    records: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    start = time.perf_counter()

    def stylize(frames: list[np.ndarray]) -> list[np.ndarray]:
        results = stylizer.stylize_arrays(frames, args.strength, args.preserve_color)
        return [to_uint8(r.image) for r in results]

    pending: list[tuple[Path, Path, np.ndarray]] = []

    def fail(src: Path, error: FastNSTError) -> None:
        errors.append({"input": str(src), "error": str(error)})
        print(f"error: {error}", file=sys.stderr)  # one line per failed input, also with --quiet

    def flush() -> None:
        """Stylize and write the pending batch; each input succeeds or fails on its own."""
        batch = list(pending)
        pending.clear()
        if not batch:
            return
        try:
            results = stylizer.stylize_arrays([p[2] for p in batch], args.strength, args.preserve_color)
        except FastNSTError as e:
            for src, _, _ in batch:
                fail(src, e)
            return
        for (src, dst, _), result in zip(batch, results, strict=True):
            try:
                save_image(to_uint8(result.image), dst)
            except FastNSTError as e:
                fail(src, e)
                continue
            h, w = result.image.shape[:2]
            records.append(
                {
                    "input": str(src),
                    "output": str(dst),
                    "width": w,
                    "height": h,
                    "seconds": round(result.seconds, 4),
                    "tiles": result.tiles,
                }
            )

    with Progress(len(jobs), "stylize", enabled=not args.quiet) as bar:
        for (src, _), dst in zip(jobs, outputs, strict=True):
            try:
                if dst.resolve() in inputs:  # never write over an input, this one's or another's
                    raise FastNSTError(f"{src}: its output {dst} would overwrite an input; choose another -o")
                if is_video(src):
                    flush()
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    t0 = time.perf_counter()
                    report = stylize_video(src, dst, stylize, batch_size=args.batch_size, progress=not args.quiet)
                    records.append(
                        {
                            "input": str(src),
                            "output": str(dst),
                            "width": report.width,
                            "height": report.height,
                            "frames": report.frames,
                            "seconds": round(time.perf_counter() - t0, 4),
                        }
                    )
                else:
                    image = _load(src)
                    if pending and pending[0][2].shape != image.shape:
                        flush()
                    pending.append((src, dst, image))
                    if len(pending) >= args.batch_size:
                        flush()
            except (FastNSTError, OSError) as e:
                fail(src, e if isinstance(e, FastNSTError) else FastNSTError(f"{src}: {e}"))
            bar.update(note=f"{src.name}")
        flush()

    total = time.perf_counter() - start
    if args.json:
        report = {
            "model": str(args.model),
            "style": style,
            "providers": stylizer.providers,
            "outputs": records,
            "errors": errors,
            "seconds": round(total, 4),
        }
        print(json.dumps(report, indent=2))
    else:
        for r in records:
            print(f"{r['input']} -> {r['output']} ({r['width']}x{r['height']}, {r['seconds']:.3f} s)")
    if errors:
        print(f"{len(errors)} of {len(jobs)} input(s) failed (listed above)", file=sys.stderr)
    return 1 if errors else 0
