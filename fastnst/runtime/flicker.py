"""Video flicker: the warping error of Lai et al. 2018 ("Learning Blind Video Temporal Consistency").

For each pair of consecutive frames t-1 -> t, optical flow between the *input* frames (OpenCV's DIS)
warps the stylized frame t-1 into frame t; the error is the mean squared RGB difference (values in
[0, 1], averaged over channels and the pixels that are visible in both frames) between the stylized
frame t and that warped frame, averaged over all pairs, as in Lai et al.'s evaluation code. The same
measure on the input frames themselves is the floor: what flow errors and lighting changes leave
even for a perfectly stable "model".

No torch; OpenCV (``opencv-python-headless``) and PyAV are imported only when used (``fastnst[video]``).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.runtime.imageio import fit_size
from fastnst.runtime.video import check_frame_pixels, expected_frames, ffmpeg_reason

FLOW = "OpenCV DIS optical flow (PRESET_MEDIUM) on the input frames"
JUDGED = ("content", "style_gram", "style_stats")  # the judge's figures, as fastnst.nn.evaluate names them
METRIC = "mean squared RGB difference in [0, 1] over pixels visible in both frames (Lai et al. 2018)"


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise FastNSTError('flicker measure needs OpenCV: pip install "fastnst[video]"') from None
    return cv2


def _gray(rgb: np.ndarray) -> np.ndarray:
    """8-bit grayscale of an ``(H, W, 3)`` RGB frame (uint8, or float in [0, 1])."""
    cv2 = _cv2()
    frame = np.asarray(rgb)
    if frame.dtype != np.uint8:
        frame = (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def optical_flow(prev_rgb: np.ndarray, next_rgb: np.ndarray) -> np.ndarray:
    """Dense flow ``(H, W, 2)`` (x, y) from ``prev_rgb`` to ``next_rgb``: ``prev(p) ~ next(p + flow(p))``.

    OpenCV's DIS (Kroeger et al. 2016, medium preset) on 8-bit grayscale.
    """
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(prev_rgb), _gray(next_rgb), None).astype(np.float32)


def _sample_grid(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The source coordinates ``p + flow(p)`` of every pixel, as remap's two float32 maps."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs + flow[..., 0], ys + flow[..., 1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward warp: ``out(p) = image(p + flow(p))``, bilinear, borders replicated (``cv2.remap``).

    With ``flow = optical_flow(a, b)``, ``warp(b, flow)`` brings ``b`` onto ``a``'s pixels. Any number
    of channels; float32 out.
    """
    cv2 = _cv2()
    map_x, map_y = _sample_grid(flow)
    src = np.ascontiguousarray(np.asarray(image, dtype=np.float32))
    return cv2.remap(src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def occlusion_mask(flow_fw: np.ndarray, flow_bw: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32: 1 where ``flow_fw`` is trusted, 0 at occlusions and where it leaves the frame.

    ``flow_fw`` goes from frame a to frame b, ``flow_bw`` from b to a. Forward-backward consistency of
    Sundaram et al. 2010: ``|fw + bw(p + fw)|^2 < 0.01 (|fw|^2 + |bw(p + fw)|^2) + 0.5``. Pixels whose
    flow points outside frame b have nothing to be compared with, so they are masked too.
    """
    h, w = flow_fw.shape[:2]
    bw = warp(flow_bw, flow_fw)
    total = np.sum((flow_fw + bw) ** 2, axis=-1)
    scale = np.sum(flow_fw**2, axis=-1) + np.sum(bw**2, axis=-1)
    consistent = total < 0.01 * scale + 0.5
    map_x, map_y = _sample_grid(flow_fw)
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return (consistent & inside).astype(np.float32)


def _to_float(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)


def pair_flows(frames_in: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each pair t-1 -> t of the input frames: the flow from t to t-1 and its validity mask."""
    pairs = []
    for prev, cur in itertools.pairwise(frames_in):
        to_prev, to_cur = optical_flow(cur, prev), optical_flow(prev, cur)
        pairs.append((to_prev, occlusion_mask(to_prev, to_cur)))
    return pairs


def warping_error(
    frames_in: Sequence[np.ndarray],
    frames_out: Sequence[np.ndarray],
    flows: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> float:
    """Lai et al.'s warping error of ``frames_out`` (stylized ``frames_in``); lower is steadier.

    The mean over pairs t-1 -> t of the mean squared difference (RGB in [0, 1], averaged over channels
    and valid pixels) between ``frames_out[t]`` and ``frames_out[t-1]`` warped into t with the flow of
    the *input* frames. ``frames_out = frames_in`` gives the floor. ``flows``: :func:`pair_flows` of
    ``frames_in``, to share it between several outputs.
    """
    if len(frames_in) != len(frames_out) or len(frames_in) < 2:
        raise ValueError(f"need as many outputs as inputs, at least 2: got {len(frames_in)} and {len(frames_out)}")
    flows = pair_flows(frames_in) if flows is None else flows
    errors = []
    for t, (flow, mask) in enumerate(flows, start=1):
        cur, prev = _to_float(frames_out[t]), _to_float(frames_out[t - 1])
        if cur.shape[:2] != flow.shape[:2] or prev.shape != cur.shape:
            raise ValueError(f"frame {t}: output size {cur.shape[:2]} differs from the input's {flow.shape[:2]}")
        squared = np.mean((cur - warp(prev, flow)) ** 2, axis=-1)
        errors.append(float(np.sum(squared * mask) / max(float(mask.sum()), 1.0)))
    return float(np.mean(errors))


def shift_errors(
    stylize: Callable[[np.ndarray], np.ndarray], image: np.ndarray, shifts: Sequence[int], border: int = 16
) -> list[float]:
    """How far ``stylize`` is from following a pan of each of ``shifts`` pixels: the mean squared difference
    (RGB in [0, 1]) between stylizing the image moved right by the shift and moving the stylized image, away
    from a ``border`` on each side. 0 for a shift-equivariant model; a network that subsamples by 4 is
    equivariant to shifts of 4 only, and what it does at 1 and 2 is texture swimming under slow camera motion
    (flicker)."""
    for shift in shifts:
        if not 0 < shift <= border:
            raise ValueError(f"shift {shift}: expected 1 to the border ({border})")
    image = np.asarray(image)
    width = image.shape[1] - 2 * border
    if width <= 2 * border or image.shape[0] <= 2 * border:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]}: too small for a border of {border}")
    still = _to_float(stylize(image[:, border : border + width]))  # once for every shift
    inner = slice(border, -border)
    errors = []
    for shift in shifts:
        moved = _to_float(stylize(image[:, border - shift : border - shift + width]))  # moved(x) = still(x - shift)
        errors.append(
            float(np.mean((moved[inner, border + shift : -border] - still[inner, border : -border - shift]) ** 2))
        )
    return errors


def shift_error(stylize: Callable[[np.ndarray], np.ndarray], image: np.ndarray, shift: int, border: int = 16) -> float:
    """:func:`shift_errors` for one shift."""
    return shift_errors(stylize, image, [shift], border)[0]


def read_frames(path: Path, limit: int | None = None, max_size: int | None = None) -> list[np.ndarray]:
    """The first ``limit`` frames of a video as uint8 RGB arrays, long side at most ``max_size``; every frame
    at the first one's size (a clip whose frame size changes is scaled as ``fastnst infer`` scales it)."""
    try:
        import av
    except ImportError:
        raise FastNSTError('video support needs PyAV: pip install "fastnst[video]"') from None
    cv2 = _cv2()
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            _check_planned_size(path, container, limit, max_size)
            size = None
            for frame in container.decode(video=0):
                check_frame_pixels(f"{path}: frame {len(frames)}", frame.width, frame.height)
                rgb = frame.to_ndarray(format="rgb24")
                size = size or fit_size(rgb.shape[1], rgb.shape[0], max_size)
                if size != (rgb.shape[1], rgb.shape[0]):
                    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                frames.append(rgb)
                if limit is not None and len(frames) >= limit:
                    break
    except (av.FFmpegError, OSError, ValueError) as e:
        if len(frames) < 2:
            raise FastNSTError(f"{path}: not a readable video ({ffmpeg_reason(e)})") from None
        # A file cut short is measured on the frames it has, as infer writes them, with a warning.
        print(f"warning: {path}: {len(frames)} frames read, then: {ffmpeg_reason(e)}", file=sys.stderr)
    if len(frames) < 2:
        raise FastNSTError(f"{path}: {len(frames)} frame(s) read; the warping error needs at least 2")
    return frames


# Bytes a measured clip holds per pixel of each frame: the frame (3), one model's stylized frame (3), the
# flow to the previous frame (2 float32) and its occlusion mask (float32).
BYTES_PER_PIXEL = 18


def _check_planned_size(path: Path, container: Any, limit: int | None, max_size: int | None) -> None:
    """Refuse a clip before decoding when its header's frame size is over the pixel limit, or when all the
    frames measured at that size would not fit in this machine's memory."""
    if not container.streams.video:
        raise FastNSTError(f"{path}: not a readable video (no video stream)")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    check_frame_pixels(f"{path}: video frames", width, height)
    size = fit_size(width, height, max_size)
    declared = expected_frames(container, stream, stream.average_rate or stream.guessed_rate or Fraction(30)) or 0
    count = min(declared, limit) if limit is not None and declared else declared
    need, memory = count * size[0] * size[1] * BYTES_PER_PIXEL, physical_memory()
    if memory is not None and need > memory:
        raise FastNSTError(
            f"{path}: measuring {count} frames at {size[0]}x{size[1]} takes about {need / 1e9:.0f} GB "
            f"(each frame, its flow and mask are kept), more than this machine's {memory / 1e9:.0f} GB: "
            "measure fewer with --frames or smaller with --max-size"
        )


def physical_memory() -> int | None:
    """This machine's memory in bytes; None where the system does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def sampled(count: int, samples: int) -> list[int]:
    """``samples`` frame indices spread evenly over ``count`` frames, first and last included."""
    if samples >= count:
        return list(range(count))
    return sorted({round(i * (count - 1) / max(samples - 1, 1)) for i in range(samples)})


def flicker_report(
    video: Path, frames: list[np.ndarray], outputs: Iterable[tuple[str, Sequence[np.ndarray]]]
) -> dict[str, Any]:
    """The warping error of each model's stylized ``frames`` and the floor. ``outputs`` gives
    ``(model name, its frames)`` one model at a time (a generator keeps one model's frames in memory)."""
    flows = pair_flows(frames)
    floor = warping_error(frames, frames, flows)
    report: dict[str, Any] = {
        "video": str(video),
        "frames": len(frames),
        "pairs": len(flows),
        "size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        "flow": FLOW,
        "metric": METRIC,
        "input_warping_error": floor,
        "models": {},
    }
    for name, stylized in outputs:
        error = warping_error(frames, stylized, flows)
        report["models"][name] = {"warping_error": error, "x_input": error / floor if floor else None}
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a table: each model's warping error beside the input frames' own, and the judge's
    figures on the sampled frames where they were measured."""
    w, h = report["size"]
    judged = report.get("judged_frames")
    lines = [
        f"{report['video']}: {report['frames']} frames ({report['pairs']} pairs) at {w}x{h}; warping error = {METRIC}",
        f"{'model':28s} {'pairs':>5s} {'warping_error':>14s} {'input_own':>12s} {'x_input':>8s}"
        + ("".join(f" {m:>11s}" for m in JUDGED) if judged else ""),
    ]
    floor = report["input_warping_error"]
    for name, m in report["models"].items():
        ratio = f"{m['x_input']:8.2f}" if m["x_input"] is not None else f"{'-':>8s}"
        figures = "".join(f" {m[k]:11.4f}" for k in JUDGED) if judged else ""
        lines.append(f"{name:28s} {report['pairs']:5d} {m['warping_error']:14.6f} {floor:12.6f} {ratio}{figures}")
    if judged:
        lines.append(f"judge figures: means over frames {', '.join(map(str, judged))} (fastnst eval's fixed judge)")
    return "\n".join(lines)
