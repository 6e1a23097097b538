"""``bench.py video``: per-frame time of the stable video paths against plain per-frame stylization.

The frames of a real clip (``bikes.mp4`` from the development assets by default) go through each
``--model`` three ways, taking turns frame by frame so background load falls on all alike: per frame
with ``Stylizer`` (the baseline), with instance-norm statistics smoothed across frames
(``SmoothedStats``, ``fastnst infer --smooth-stats``), and, for every further ``--model`` (a
stability-trained network, say), per frame with that model. The last line is the cost of each stable
path as a ratio to the first model's per-frame time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchlib import SHARED_ASSETS, Table, machine_lines

from fastnst.runtime.flicker import read_frames
from fastnst.runtime.stylizer import Stylizer
from fastnst.runtime.temporal import MOMENTUM, SmoothedStats

CLIP = SHARED_ASSETS / "videos" / "bikes.mp4"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", help="model(s) to time; the first is the baseline (default: wave)")
    p.add_argument("--clip", type=Path, default=CLIP, help="the video whose frames are stylized")
    p.add_argument("--frames", type=int, help="frames to time (default 100; --quick: 30)")
    p.add_argument("--max-size", type=int, default=640, help="long side of the frames (default 640)")
    p.add_argument("--momentum", type=float, default=MOMENTUM, help="of the smoothed statistics")


def video_methods(models: list[str], device: str, momentum: float) -> dict[str, Callable[[np.ndarray], Any]]:
    """The baseline, the smoothed statistics of the baseline model, and each further model per frame."""
    stylizers = [Stylizer(m, device=device) for m in models]
    methods: dict[str, Callable[[np.ndarray], Any]] = {f"{models[0]} per frame": stylizers[0]}
    methods[f"{models[0]} smoothed statistics ({momentum:g})"] = SmoothedStats(stylizers[0], momentum)
    for name, stylizer in zip(models[1:], stylizers[1:], strict=True):
        methods[f"{name} per frame"] = stylizer
    return methods


def time_frames(methods: dict[str, Callable[[np.ndarray], Any]], frames: list[np.ndarray]) -> dict[str, list[float]]:
    """Seconds per frame, by method; the methods take turns frame by frame (one untimed frame first)."""
    for fn in methods.values():
        fn(frames[0])
    times: dict[str, list[float]] = {m: [] for m in methods}
    for frame in frames:
        for method, fn in methods.items():
            start = time.perf_counter()
            fn(frame)
            times[method].append(time.perf_counter() - start)
    return times


def run(args: argparse.Namespace) -> dict[str, Any]:
    models = args.model or ["wave"]
    count = args.frames or (30 if args.quick else 100)
    for line in machine_lines(torch.device(args.device)):
        print(line)
    frames = read_frames(args.clip, count, args.max_size)
    h, w = frames[0].shape[:2]
    print(f"{args.clip.name}: {len(frames)} frames at {w}x{h}")
    times = time_frames(video_methods(models, args.device, args.momentum), frames)
    ms = {m: 1000 * statistics.median(t) for m, t in times.items()}
    table = Table(["method", "median ms/frame", "frames/s", "x baseline"])
    base = next(iter(ms.values()))
    for method, value in ms.items():
        table.add(method, f"{value:.2f}", f"{1000 / value:.1f}", f"{value / base:.3f}")
    table.print()
    ratios = {m: v / base for m, v in ms.items()}
    print("video: " + ", ".join(f"{m} {r:.3f}x" for m, r in list(ratios.items())[1:]) + " the per-frame time")
    return {"settings": {"clip": str(args.clip), "frames": len(frames), "size": [w, h]}, "ms": ms, "ratios": ratios}
