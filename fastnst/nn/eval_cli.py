"""``fastnst eval``: judge ONNX models or folders of stylized images with the fixed judge."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fastnst.atomic import atomic_write
from fastnst.errors import FastNSTError
from fastnst.overwrite import InputSet, blocking_file
from fastnst.progress import Progress
from fastnst.runtime.imageio import IMAGE_EXTENSIONS, ImageError, open_rgb

WRITTEN = ("scores.csv", "summary.json", "contact_sheet.png")  # eval's own files in -o


class EvalError(FastNSTError):
    """Inputs that cannot be judged: missing results, unreadable files, bad settings."""


class AddMethod(argparse.Action):
    """``--model`` and ``--images`` append to one ordered list of methods to judge."""

    def __call__(self, parser: Any, namespace: argparse.Namespace, value: Any, option: str | None = None) -> None:
        methods = list(getattr(namespace, "methods", None) or [])
        methods.append((self.dest, Path(value)))
        namespace.methods = methods


def add_arguments(p: argparse.ArgumentParser) -> None:
    # --style and --content are required for the image judge only; run_eval checks them (not --video).
    p.add_argument("--style", "-s", help="the style image (a file or a built-in style name)")
    p.add_argument("--content", "-c", nargs="+", help="photos: files or folders")
    p.add_argument(
        "--model",
        "-m",
        action=AddMethod,
        dest="model",
        help="a .onnx file, or a shipped style name (`fastnst styles`), to judge (repeatable)",
    )
    p.add_argument(
        "--images", action=AddMethod, dest="images",
        help="a folder of already-stylized images named like the photos (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--model-style",
        help="for models of several styles: the style (or mixture) to judge"
        " (default: the painting added to a base, else the first)",
    )
    p.add_argument(
        "--label", action="append", help="a name (not a path) per --model/--images, in order (default: file names)"
    )
    p.add_argument("-o", "--output", type=Path, default=Path("eval"), help="folder for scores, summary, sheet")
    p.add_argument("--limit", type=int, help="judge only the first N photos")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="cpu",
        help="where models run (default: cpu, so that figures compare across machines)",
    )
    p.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument("--video", type=Path, help="measure flicker on this clip instead: warping error of each --model")
    p.add_argument("--frames", type=int, help="with --video: only the first N frames (default: all)")
    p.add_argument("--max-size", type=int, help="with --video: shrink frames to this long side (default: keep)")
    p.add_argument(
        "--smooth-stats", type=float, nargs="*", metavar="MOMENTUM",
        help="with --video: also measure each model with instance-norm statistics smoothed over frames "
        "(infer --smooth-stats), at these momenta (default 0.9)",
    )  # fmt: skip
    p.add_argument(
        "--judge-frames", type=int, default=8,
        help="with --video and --style: judge this many frames spread over the clip (default 8)",
    )  # fmt: skip


def find_photos(items: list[str]) -> list[Path]:
    photos: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                raise EvalError(f"--content {item}: folder holds no images")
            photos += found
        elif path.is_file():
            photos.append(path)
        else:
            raise EvalError(f"--content {item}: no such file or folder")
    stems = [p.stem for p in photos]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise EvalError(f"--content: several photos named {duplicates[0]}; results are matched by name")
    return photos


def result_in_folder(folder: Path, photo: Path) -> Path:
    """The stylized image of ``photo`` in ``folder``: the same file name stem exactly (``amber.png`` for
    ``amber.jpg``, never ``amber.old.png``), any image extension, and only one such file."""
    matches = sorted(
        p for p in folder.iterdir() if p.stem == photo.stem and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    if not matches:
        raise EvalError(f"--images {folder}: no result for {photo.name} (expected {photo.stem}.png or .jpg)")
    if len(matches) > 1:
        raise EvalError(
            f"--images {folder}: {len(matches)} results for {photo.name} ({', '.join(p.name for p in matches)})"
        )
    return matches[0]


def _open(path: Path) -> Image.Image:
    try:
        return open_rgb(path)
    except ImageError as e:
        raise EvalError(str(e)) from e


def _stylize(stylizer: Any, photo: Image.Image, photo_path: Path) -> Image.Image:
    """The model's result for one photo; a model that fails on it (NaN output, say) is an error, never a score."""
    try:
        return stylizer(photo.copy())
    except FastNSTError as e:
        raise EvalError(f"{photo_path}: {e}") from e


def _default_name(kind: str, given: str, path: Path) -> str:
    """A method's name without --label: a shipped model's name as given (``the_scream_stable``, whose file
    is ``video/the_scream.onnx``), else the file's stem or the folder's name."""
    if kind != "model":
        return path.name
    return path.stem if Path(given).expanduser().is_file() else given  # no file: resolve_model found the name


def _plan_methods(args: argparse.Namespace) -> tuple[list[str], list[tuple[str, Path]]]:
    """The methods to judge, in order, as ``(kind, path)``, and their names; checked before any work."""
    from fastnst.styles import resolve_model

    # --model takes a file or a shipped style's name, as fastnst infer does.
    given = getattr(args, "methods", None) or []
    methods = [(kind, resolve_model(p) if kind == "model" else p) for kind, p in given]
    if not methods:
        raise EvalError("nothing to judge: give --model x.onnx or --images folder (or several)")
    labels = args.label or []
    if len(labels) > len(methods):
        raise EvalError(f"--label given {len(labels)} times for {len(methods)} --model/--images")
    defaults = [_default_name(kind, str(p), path) for (kind, p), (_, path) in zip(given, methods, strict=True)]
    for label in labels:  # a model's results go to -o/<label>/: a name, not a path
        if not label.strip() or label.startswith(".") or "/" in label or "\\" in label or label in WRITTEN:
            raise EvalError(
                f"--label {label!r}: a name, without / or a leading dot and not one of eval's files "
                "(it names a folder in -o)"
            )
    names = labels + defaults[len(labels) :]
    if len(set(names)) != len(names):
        raise EvalError(f"two methods share the name {names}: name them with --label")
    for kind, path in methods:
        if kind == "images" and not path.is_dir():
            raise EvalError(f"--images {path}: no such folder")
    return names, methods


def _stylizers(
    names: list[str],
    methods: list[tuple[str, Path]],
    device: str,
    max_size: int,
    style: str | None = None,
    painting: str | None = None,
) -> dict[str, Any]:
    """A :class:`~fastnst.runtime.stylizer.Stylizer` per ``--model`` method, by name (``style``: ``--model-style``).
    Without ``style``, a model of several styles is judged on the one named like ``painting`` (``--style``), if
    it has it, and a note says which style it was judged on otherwise."""
    from fastnst.runtime.stylizer import Stylizer

    stylizers = {}
    for name, (kind, path) in zip(names, methods, strict=True):
        if kind != "model":
            continue
        stylizer = Stylizer(path, style=style, device=device, max_size=max_size)
        if style is None and stylizer.style_names:
            if painting in stylizer.style_names:
                stylizer = stylizer.with_style(painting)
            else:
                print(
                    f"note: {name} has styles {', '.join(stylizer.style_names)}; judged on "
                    f"{', '.join(stylizer.style_mix)} (--model-style picks another)",
                    file=sys.stderr,
                )
        stylizers[name] = stylizer
    return stylizers


def _stylize_and_save(stylizer: Any, photo: Image.Image, photo_path: Path, folder: Path) -> Image.Image:
    """A model's result for one photo, also written to ``folder`` as ``<photo stem>.png``."""
    result = _stylize(stylizer, photo, photo_path)
    with atomic_write(folder / f"{photo_path.stem}.png") as f:
        result.save(f, format="PNG")
    return result


def _judge_all(
    args: argparse.Namespace, names: list[str], methods: list[tuple[str, Path]], photos: list[Path], judge: Any
) -> tuple[list[Any], list[Image.Image], dict[str, list[Image.Image]]]:
    """Score every method on every photo: the rows, the photos and each method's results (for the sheet)."""
    from dataclasses import asdict

    from fastnst.nn.evaluate import JUDGE_SIZE, Row

    stylizers = _stylizers(names, methods, args.device, JUDGE_SIZE, args.model_style, str(args.style))
    rows: list[Row] = []
    thumbs_photos: list[Image.Image] = []
    thumbs: dict[str, list[Image.Image]] = {name: [] for name in names}
    with Progress(len(photos) * len(names), "judging", enabled=not args.quiet) as bar:
        for photo_path in photos:
            photo = _open(photo_path)
            thumbs_photos.append(photo)
            for name, (kind, path) in zip(names, methods, strict=True):
                if kind == "model":
                    result = _stylize_and_save(stylizers[name], photo, photo_path, args.output / name)
                else:
                    result = _open(result_in_folder(path, photo_path))
                scores = judge.score(result, photo)
                rows.append(Row(name, photo_path.name, **asdict(scores)))
                thumbs[name].append(result)
                bar.update(note=f"{name}: {photo_path.name}")
    return rows, thumbs_photos, thumbs


def _print_report(report: dict[str, Any], names: list[str], output: Path, sheet: Any) -> None:
    """The summary table, each method's ratios to the first, and the files written."""
    from fastnst.nn.evaluate import METRICS

    print(f"{'method':24s} {'photos':>6s} " + " ".join(f"{m:>12s}" for m in METRICS))
    for name, s in report["summary"].items():
        print(f"{name:24s} {int(s['photos']):6d} " + " ".join(f"{s[m]:12.5g}" for m in METRICS))
    if len(names) > 1:
        base = report["summary"][names[0]]
        for name in names[1:]:
            other = report["summary"][name]
            ratios = (f"{m} {other[m] / base[m]:.3f}x" if base[m] else f"{m} {other[m]:.4g} vs 0" for m in METRICS)
            print(f"{name} / {names[0]}: " + ", ".join(ratios))
    for name, s in report["summary"].items():
        if "style_gram_layers" in s:
            layers = " ".join(f"{k} {v:.4g}" for k, v in s["style_gram_layers"].items())
            print(f"{name}: style_gram by layer: {layers}")
    written = ["scores.csv", "summary.json"] + ([] if sheet is None else ["contact_sheet.png"])
    print(f"wrote {', '.join(str(output / w) for w in written)}")


def check_writes(output: Path, names: list[str], methods: list[tuple[str, Path]], photos: list[Path]) -> None:
    """Refuse, before any work, results that would be written over an input (a photo, or a result in an
    ``--images`` folder) or where a file or folder is in the way; and find every ``--images`` result."""
    folders = [path for kind, path in methods if kind == "images"]
    inputs = InputSet([*photos, *folders, *(result_in_folder(f, photo) for f in folders for photo in photos)])
    for name, (kind, _) in zip(names, methods, strict=True):
        if kind != "model":
            continue
        folder = output / name
        if (blocking := blocking_file(folder)) is not None:
            raise EvalError(f"-o {output}: {blocking} is a file; {name}'s results go into the folder {folder}")
        for target in [folder, *(folder / f"{photo.stem}.png" for photo in photos)]:
            if inputs.holds(target):
                raise EvalError(
                    f"-o {output}: {name}'s results would be written over the input {target}; choose another -o"
                )
    for written in WRITTEN:
        if (output / written).is_dir() or inputs.holds(output / written):
            raise EvalError(
                f"-o {output}: eval writes {output / written}, which is a folder or an input; choose another -o"
            )


def check_output_folder(output: Path) -> None:
    """Refuse, before any work, an ``-o`` that is a file or lies under one (eval writes a folder)."""
    blocking = blocking_file(output)
    if blocking is not None:
        raise EvalError(f"-o {output}: {blocking} is a file; eval writes its results into a folder")


def run_eval(args: argparse.Namespace) -> int:
    """Entry point of ``fastnst eval``: plan the methods, judge them on every photo, report."""
    from fastnst.styles import resolve_style_image

    check_output_folder(args.output)
    if getattr(args, "video", None) is not None:
        return run_flicker(args)
    if args.style is None or args.content is None:
        raise EvalError("--style and --content are required (or --video clip.mp4 to measure flicker)")
    if args.limit is not None and args.limit < 1:
        raise EvalError(f"--limit {args.limit}: expected at least 1 photo")
    names, methods = _plan_methods(args)
    photos = find_photos(args.content)[: args.limit]
    check_writes(args.output, names, methods, photos)
    _note_infer_variants(args, video=False)

    # torch is imported here, not at start-up: `fastnst infer` stays torch-free.
    from fastnst.nn.evaluate import Judge, contact_sheet, write_outputs

    judge = Judge(resolve_style_image(args.style, "--style"))
    try:
        rows, thumbs_photos, thumbs = _judge_all(args, names, methods, photos, judge)
    except KeyboardInterrupt:
        print(f"interrupted: no scores written to {args.output}", file=sys.stderr)
        raise
    sheet = None if args.no_sheet else contact_sheet(thumbs_photos, judge.style_image, thumbs)
    settings = {
        "style": str(args.style),
        "photos": [str(p) for p in photos],
        "methods": {name: str(path) for name, (_, path) in zip(names, methods, strict=True)},
    }
    report = write_outputs(args.output, rows, sheet, settings)
    _print_report(report, names, args.output, sheet)
    return 0


def _video_models(args: argparse.Namespace) -> dict[str, Any]:
    """A uint8-frame -> uint8-frame function per ``--model``, by name (``--images`` has no frames to judge)."""
    from fastnst.runtime.stylizer import Stylizer

    names, methods = _plan_methods(args)
    if any(kind != "model" for kind, _ in methods):
        raise EvalError("--video judges --model only: --images holds no video frames")
    return {
        name: Stylizer(path, style=args.model_style, device=args.device)
        for name, (_, path) in zip(names, methods, strict=True)
    }


def _check_video_settings(args: argparse.Namespace) -> None:
    if args.frames is not None and args.frames < 2:
        raise EvalError(f"--frames {args.frames}: the warping error needs at least 2 frames")
    if args.max_size is not None and args.max_size < 16:
        raise EvalError(f"--max-size {args.max_size}: expected at least 16 pixels")
    from fastnst.runtime.temporal import MOMENTUM, check_momentum

    if args.smooth_stats == []:  # given alone
        args.smooth_stats = [MOMENTUM]
    for m in args.smooth_stats or []:
        try:
            check_momentum(m, "--smooth-stats")
        except ValueError as e:
            raise EvalError(str(e)) from None
    if args.judge_frames < 1:
        raise EvalError(f"--judge-frames {args.judge_frames}: expected at least 1")
    if not args.video.is_file():
        raise EvalError(f"--video {args.video}: no such file")
    if (args.output / "flicker.json").is_dir():
        raise EvalError(f"-o {args.output}: eval writes {args.output / 'flicker.json'}, which is a folder")


def _note_infer_variants(args: argparse.Namespace, video: bool) -> None:
    """Say when a --model name is not the network fastnst infer would use here: for photos a style's
    quality tier (``udnie`` -> ``udnie_hq``), for videos its stable network (``wave`` -> ``wave_stable``)."""
    from fastnst.styles import QUALITY_SUFFIX, STABLE_SUFFIX, quality_model, video_model

    variant, suffix = (video_model, STABLE_SUFFIX) if video else (quality_model, QUALITY_SUFFIX)
    which, what = ("per-frame", "stylizes videos") if video else ("real-time", "stylizes photos")
    for kind, given in getattr(args, "methods", None) or []:
        if kind == "model" and variant(given) is not None:
            print(
                f"note: --model {given} is the {which} network; fastnst infer {what} with "
                f"{given}{suffix} (name it to judge that too)",
                file=sys.stderr,
            )


def _video_outputs(
    args: argparse.Namespace, frames: list[np.ndarray], kept: dict[str, dict[int, np.ndarray]]
) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Each ``--model``'s stylized frames, per frame and with each ``--smooth-stats`` momentum, one
    variant at a time; the frames the judge samples are kept in ``kept`` (by variant, by index)."""
    from fastnst.runtime.flicker import sampled
    from fastnst.runtime.temporal import SmoothedStats

    stylizers = _video_models(args)
    variants = [(name, st, m) for name, st in stylizers.items() for m in [None, *(args.smooth_stats or [])]]
    picks = sampled(len(frames), args.judge_frames) if args.style is not None else []
    with Progress(len(variants) * len(frames), "stylizing frames", enabled=not args.quiet, unit="frame") as bar:
        for name, stylizer, momentum in variants:
            stylize = stylizer if momentum is None else SmoothedStats(stylizer, momentum)
            key = name if momentum is None else f"{name}~smooth{momentum:g}"
            out = []
            for frame in frames:
                out.append(stylize(frame))
                bar.update(note=key)
            kept[key] = {i: out[i] for i in picks}
            yield key, out


def _judge_frames(judge: Any, style: str, frames: list[np.ndarray], kept: dict, report: dict) -> None:
    """The judge's mean figures over the sampled frames (``kept``), added to each model's entry."""
    from fastnst.runtime.flicker import JUDGED

    for name, stylized in kept.items():
        scores = [judge.score(image, frames[i]) for i, image in stylized.items()]
        report["models"][name].update({m: float(np.mean([getattr(s, m) for s in scores])) for m in JUDGED})
    report["judged_frames"] = sorted(next(iter(kept.values())))
    report["style"] = str(style)


def run_flicker(args: argparse.Namespace) -> int:
    """``fastnst eval --video``: each model's warping error beside the input frames' own (and, with
    ``--style``, the judge's figures on sampled frames), printed and written to flicker.json."""
    import json

    from fastnst.runtime.flicker import flicker_report, format_report, read_frames

    _check_video_settings(args)
    judge = None
    if args.style is not None:  # the VGG weights and the painting before any frame is stylized
        from fastnst.nn.evaluate import Judge
        from fastnst.styles import resolve_style_image

        judge = Judge(resolve_style_image(args.style, "--style"))
    frames = read_frames(args.video, args.frames, args.max_size)
    kept: dict[str, dict[int, np.ndarray]] = {}
    report = flicker_report(args.video, frames, _video_outputs(args, frames, kept))
    if judge is not None:
        _judge_frames(judge, args.style, frames, kept, report)
    with atomic_write(args.output / "flicker.json") as f:
        f.write(json.dumps(report, indent=2).encode())
    print(format_report(report))
    print(f"wrote {args.output / 'flicker.json'}")
    _note_infer_variants(args, video=True)
    return 0
