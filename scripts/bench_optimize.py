"""``bench.py optimize``: time to a fixed loss, fastnst.nn.optimize vs the PyTorch tutorial's single-scale L-BFGS loop.

Both methods minimise the same objective (fastnst's defaults: :class:`~fastnst.nn.losses.PerceptualLoss`
with content relu4_2, style relu1_1..relu5_1, relative losses, content weight 1, style weight 10,
Caffe VGG19 with max pooling) for the same photo and painting, in the same process. One judge scores
both: that loss, evaluated without gradients on the current image clamped to [0, 1] at the full
target size (fastnst's coarse levels are first upsampled to it with the bicubic resize fastnst uses
between levels). The judge runs every ``--judge-every`` iterations; its time is left out of the
methods' times.

* reference: the image in [0, 1] initialised from the photo at the target size,
  ``torch.optim.LBFGS([img])`` with its defaults (lr 1, 20 iterations per ``step()``, no line
  search), the tutorial's closure and clamping; ``--reference-iterations`` iterations or its budget.
* fastnst: :func:`fastnst.nn.optimize.optimize` with its defaults (coarse to fine, L-BFGS, the image kept
  in [0, 1] between iterations), ``--steps`` iterations over ``--scales`` levels, or its budget.

The methods take turns on the CPU (``--turn-seconds`` of their own time each, in two threads of which
only one runs at a time), so that load from other processes on a shared machine falls on both alike;
``--turn-seconds 0`` runs them one after the other. Each method's time counts only its own turns.

The target loss is the judged loss of the reference's final image (unless ``--target`` is given);
the table gives, for each method, the time (wall and CPU), the iterations and the work (in
full-size iterations: an iteration at a coarse level counts its share of the pixels) to the first
judged loss at or below it. Traces go to ``OUT/traces.csv``, the final images to
``OUT/reference.png`` and ``OUT/fastnst.png``.

    python scripts/bench.py optimize --quick        # 256 px, a few minutes on a 2-core CPU
    python scripts/bench.py optimize                # 512 px, about 25 minutes on a 2-core CPU
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from benchlib import REPO, SHARED_ASSETS, load_average, machine_lines

from fastnst.nn.images import load_image
from fastnst.nn.losses import PerceptualLoss
from fastnst.nn.optimize import Progress, Settings, optimize, resize_long, save_image, scale_sizes, scale_step_counts
from fastnst.nn.vgg import WEIGHTS_ENV, hub_checkpoint_dir, vgg19

DEFAULTS = Settings()  # the objective both methods minimise: fastnst's default layers, weights and VGG


class _Stop(Exception):
    """Raised inside a method's loop when its budget (or iteration count) is spent."""


@dataclass
class Point:
    """One judged image along a method's run."""

    iteration: int
    level: str  # HxW the method was optimizing at
    work: float  # full-size iterations so far (an iteration at h x w counts h*w / (H*W))
    seconds: float  # the method's wall time (judging and waiting excluded)
    cpu_seconds: float  # the process's CPU time, all threads, during the method's turns (judging excluded)
    loss: float
    content: float
    style: float


@dataclass
class Trace:
    """The judged points of one method, its final image and its end state."""

    method: str
    points: list[Point] = field(default_factory=list)
    image: torch.Tensor | None = None
    iterations: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    stopped_by: str = ""

    def best(self) -> Point:
        """The point with the lowest judged loss."""
        return min(self.points, key=lambda p: p.loss)

    def first_at_or_below(self, target: float) -> Point | None:
        """The first judged point with a loss at or below ``target`` (``None`` if none)."""
        return next((p for p in self.points if p.loss <= target), None)


class Clock:
    """A method's own time: wall and CPU time since it started, less the blocks run under :meth:`paused`."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._sync()
        self.start, self.cpu_start = time.perf_counter(), time.process_time()
        self.excluded, self.excluded_cpu = 0.0, 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self) -> float:
        """Wall seconds of the method so far."""
        self._sync()
        return time.perf_counter() - self.start - self.excluded

    def cpu(self) -> float:
        """CPU seconds of the process during the method's own time so far."""
        self._sync()
        return time.process_time() - self.cpu_start - self.excluded_cpu

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Leave the time of the block (judging, waiting for a turn) out of the method's time."""
        self._sync()
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self._sync()
            self.excluded += time.perf_counter() - wall
            self.excluded_cpu += time.process_time() - cpu


class Turns:
    """Methods in separate threads take turns: one runs, for ``seconds`` of its own time, the others wait.

    ``seconds <= 0``: each runs to its end before the next begins (in the order given).
    """

    def __init__(self, names: list[str], seconds: float) -> None:
        self.order, self.active, self.seconds = list(names), set(names), seconds
        self.turn = names[0]
        self.cond = threading.Condition()
        self.turn_start: dict[str, float] = {}

    def wait(self, name: str) -> None:
        """Block until it is ``name``'s turn."""
        with self.cond:
            self.cond.wait_for(lambda: self.turn == name)

    def start(self, name: str, clock: Clock) -> None:
        """``name``'s first turn begins (call after :meth:`wait`, with its new clock)."""
        self.turn_start[name] = clock()

    def maybe_pass(self, name: str, clock: Clock) -> None:
        """Hand over to the next method if ``name`` has used up its turn; return when its turn comes again."""
        if self.seconds <= 0 or clock() - self.turn_start[name] < self.seconds:
            return
        with clock.paused(), self.cond:
            i, n = self.order.index(name), len(self.order)
            others = [self.order[(i + k) % n] for k in range(1, n) if self.order[(i + k) % n] in self.active]
            if others:  # the next one after `name`, round robin
                self.turn = others[0]
                self.cond.notify_all()
                self.cond.wait_for(lambda: self.turn == name)
        self.turn_start[name] = clock()

    def finish(self, name: str) -> None:
        """``name`` is done: the next method runs to its end, unhindered."""
        with self.cond:
            self.active.discard(name)
            if self.turn == name and self.active:
                self.turn = next(n for n in self.order if n in self.active)
            self.cond.notify_all()


class Judge:
    """The one loss both methods are scored with: PerceptualLoss on the clamped image at the target size."""

    def __init__(self, loss_fn: PerceptualLoss, size: tuple[int, int]) -> None:
        self.loss_fn, self.size = loss_fn, size

    @torch.no_grad()
    def __call__(self, image: torch.Tensor) -> dict[str, float]:
        """``loss``, ``content`` and ``style`` of ``image`` (any size, RGB [0, 1], not necessarily clamped)."""
        image = image.detach().float()
        if tuple(image.shape[-2:]) != self.size:  # as fastnst upsamples between levels
            image = F.interpolate(image, size=self.size, mode="bicubic", align_corners=False)
        terms = self.loss_fn(image.clamp(0, 1))
        return {k: terms[k].item() for k in ("loss", "content", "style")}

    def record(self, trace: Trace, clock: Clock, iteration: int, work: float, image: torch.Tensor, echo: bool) -> None:
        """Judge ``image`` (its time left out of ``clock``) and add the point to ``trace``."""
        seconds, cpu_seconds = clock(), clock.cpu()
        with clock.paused():
            terms = self(image)
        level = "x".join(str(s) for s in image.shape[-2:])
        point = Point(iteration, level, work, seconds, cpu_seconds, terms["loss"], terms["content"], terms["style"])
        trace.points.append(point)
        if echo:
            print(
                f"  {trace.method:9s} it {iteration:4d} @ {level:8s} {seconds:7.1f} s ({cpu_seconds:7.1f} CPU s)  "
                f"loss {terms['loss']:.5g} (content {terms['content']:.4g}, style {terms['style']:.4g})",
                flush=True,
            )


def make_loss(weights: str, device: torch.device) -> PerceptualLoss:
    """fastnst's default objective (built as inside :func:`fastnst.nn.optimize.optimize`)."""
    vgg = vgg19([*DEFAULTS.content_layers, *DEFAULTS.style_layers], weights=weights, pooling=DEFAULTS.pooling)
    return PerceptualLoss(
        vgg.to(device),
        DEFAULTS.content_layers,
        DEFAULTS.style_layers,
        DEFAULTS.content_weight,
        DEFAULTS.style_weight,
        DEFAULTS.tv_weight,
        DEFAULTS.normalize,
    )


@dataclass
class Run:
    """What both methods share: inputs, judge, turns, limits."""

    content: torch.Tensor  # the photo at its own size
    style: torch.Tensor
    size: int
    judge: Judge
    turns: Turns
    budget: float
    every: int
    weights: str
    device: torch.device
    stop_below: float | None = None  # stop a method once its judged loss is at or below this


def run_reference(run: Run, iterations: int) -> Trace:
    """Single-scale L-BFGS on the [0, 1] image, as ``run_style_transfer`` in the PyTorch tutorial.

    Iterations are counted as the tutorial counts them (``run[0]``: one per closure call; an
    L-BFGS ``step()`` without line search makes 20 calls for its 20 iterations).
    """
    trace, name = Trace("reference"), "reference"
    run.turns.wait(name)
    clock = Clock(run.device)
    run.turns.start(name, clock)
    # Setup is timed, as for fastnst (whose optimize() loads the VGG and computes the targets itself).
    loss_fn = make_loss(run.weights, run.device)
    content_img = resize_long(run.content.to(run.device), run.size)
    loss_fn.set_content(content_img)
    loss_fn.set_style(resize_long(run.style.to(run.device), run.size))
    input_img = content_img.clone()
    optimizer = torch.optim.LBFGS([input_img.requires_grad_()])  # the tutorial's: all defaults
    closure = _TutorialClosure(run, trace, clock, iterations, loss_fn, input_img, optimizer)
    try:
        while True:  # the tutorial loops `while run[0] <= num_steps`; here the closure stops it exactly
            optimizer.step(closure)
    except _Stop:
        pass
    with torch.no_grad():  # the tutorial's "last correction"
        input_img.clamp_(0, 1)
    trace.iterations, trace.seconds, trace.cpu_seconds = closure.count, clock(), clock.cpu()
    if not trace.points or trace.points[-1].iteration != closure.count:
        run.judge.record(trace, clock, closure.count, closure.count, input_img, echo=True)
    trace.image = input_img.detach().clone()
    return trace


@dataclass
class _TutorialClosure:
    """The reference's L-BFGS closure: the tutorial's, plus the judging and the stops of this benchmark.

    ``count`` is the tutorial's ``run[0]``: closure calls so far, that is, iterations done.
    """

    run: Run
    trace: Trace
    clock: Clock
    iterations: int
    loss_fn: PerceptualLoss
    image: torch.Tensor
    optimizer: torch.optim.Optimizer
    count: int = 0

    def __call__(self) -> torch.Tensor:
        # As the tutorial: clamp the image to [0, 1] at the start of every closure call (so inside
        # L-BFGS's step(), before each evaluation), under no_grad; and once more after the loop.
        with torch.no_grad():
            self.image.clamp_(0, 1)
        self._judge_or_stop()
        self.run.turns.maybe_pass(self.trace.method, self.clock)
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.image)["loss"]
        loss.backward()
        self.count += 1
        return loss

    def _judge_or_stop(self) -> None:
        """Raise :class:`_Stop` (saying why in the trace) once the iterations, the budget or the target
        is reached; judge the image every ``run.every`` iterations."""
        done, run, trace = self.count, self.run, self.trace
        if done >= self.iterations:
            trace.stopped_by = f"{self.iterations} iterations"
            raise _Stop
        if self.clock() > run.budget:
            trace.stopped_by = "budget"
            raise _Stop
        if done % run.every == 0:
            run.judge.record(trace, self.clock, done, done, self.image, echo=done % (run.every * 10) == 0)
            if run.stop_below is not None and trace.points[-1].loss <= run.stop_below:
                trace.stopped_by = "target reached"
                raise _Stop


def run_fastnst(run: Run, settings: Settings) -> Trace:
    """:func:`fastnst.nn.optimize.optimize` with a callback that judges every ``run.every`` iterations."""
    trace, name = Trace("fastnst"), "fastnst"
    total = sum(scale_step_counts(settings, len(scale_sizes(settings))))
    full = resize_long(run.content, run.size).shape[-2:]
    run.turns.wait(name)
    clock = Clock(run.device)
    run.turns.start(name, clock)
    callback = _FastnstCallback(run, trace, clock, total, (int(full[0]), int(full[1])))
    try:
        result = optimize(run.content, [run.style], settings, callback=callback)
        trace.stopped_by = f"{total} iterations"
    except _Stop:
        assert callback.image is not None
        result = callback.image.clamp(0, 1)
    trace.iterations = callback.iteration
    trace.seconds, trace.cpu_seconds = clock(), clock.cpu()
    trace.image = result.detach().clone()
    return trace


@dataclass
class _FastnstCallback:
    """fastnst's per-iteration callback: counts the work, judges every ``run.every`` iterations (and at
    the end), stops the run (raises :class:`_Stop`) at the budget or the target, takes turns."""

    run: Run
    trace: Trace
    clock: Clock
    total: int  # iterations over all levels
    full: tuple[int, int]  # (H, W) of the target size
    work: float = 0.0  # full-size iterations so far
    iteration: int = 0
    image: torch.Tensor | None = None  # the latest image

    def __call__(self, p: Progress) -> None:
        run, trace = self.run, self.trace
        self.work += p.size[0] * p.size[1] / (self.full[0] * self.full[1])
        self.image, self.iteration = p.image, p.total_iteration
        over = self.clock() > run.budget
        if p.total_iteration % run.every == 0 or over or p.total_iteration == self.total:
            echo = p.total_iteration % (run.every * 10) == 0
            run.judge.record(trace, self.clock, p.total_iteration, self.work, p.image, echo)
            if run.stop_below is not None and trace.points[-1].loss <= run.stop_below:
                trace.stopped_by = "target reached"
                raise _Stop
        if over:
            trace.stopped_by = "budget"
            raise _Stop
        run.turns.maybe_pass(trace.method, self.clock)


def run_both(run: Run, methods: dict[str, Callable[[], Trace]]) -> dict[str, Trace]:
    """Each method in its own thread, taking turns (see :class:`Turns`); re-raises a method's error."""
    results: dict[str, Trace] = {}
    errors: list[BaseException] = []

    def body(name: str, method: Callable[[], Trace]) -> None:
        try:
            results[name] = method()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            run.turns.finish(name)

    threads = [threading.Thread(target=body, args=item, name=item[0], daemon=True) for item in methods.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def default_weights() -> str:
    """``caffe`` when fastnst finds the weights itself; else the project's shared copy, if there is one."""
    if os.environ.get(WEIGHTS_ENV) or any(hub_checkpoint_dir().glob("vgg19_features_caffe*.pth")):
        return "caffe"
    shared = sorted((SHARED_ASSETS / "weights").glob("vgg19_features_caffe*.pth"))
    return str(shared[0]) if shared else "caffe"


def write_csv(path: Path, traces: list[Trace]) -> None:
    """All judged points of all methods, one row each."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "iteration", "level", "work", "seconds", "cpu_seconds", "loss", "content", "style"])
        for t in traces:
            for p in t.points:
                times = [f"{p.work:.3f}", f"{p.seconds:.3f}", f"{p.cpu_seconds:.3f}"]
                terms = [f"{p.loss:.6g}", f"{p.content:.6g}", f"{p.style:.6g}"]
                writer.writerow([t.method, p.iteration, p.level, *times, *terms])


def print_table(traces: list[Trace], target: float, paths: dict[str, Path], budget: float) -> None:
    """Per method: wall and CPU time, iterations and work to the target; best and final loss; what ran."""
    header = (
        f"{'method':9s} {'time to target (s)':>18s} {'CPU s to target':>15s} {'iters to target':>15s} "
        f"{'work to target':>14s} {'best loss':>9s} {'final loss':>10s} {'iters run':>9s} {'time run (s)':>12s} "
        f"{'CPU s run':>9s}  {'stopped by':16s} final image"
    )
    print(header)
    print("-" * len(header))
    for t in traces:
        hit = t.first_at_or_below(target)
        when = f"{hit.seconds:.1f}" if hit else f"not in {budget:.0f}"
        cpu, iters, work = (f"{hit.cpu_seconds:.1f}", str(hit.iteration), f"{hit.work:.1f}") if hit else ("-",) * 3
        print(
            f"{t.method:9s} {when:>18s} {cpu:>15s} {iters:>15s} {work:>14s} {t.best().loss:9.5g} "
            f"{t.points[-1].loss:10.5g} {t.iterations:9d} {t.seconds:12.1f} {t.cpu_seconds:9.1f}  "
            f"{t.stopped_by:16s} {paths[t.method]}"
        )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Flags of this part (``--device`` and ``--quick`` come from bench.py); ``--quick`` changes the defaults."""
    content = SHARED_ASSETS / "content" / "tubingen.jpg"
    if not content.is_file():
        content = REPO / "fastnst" / "assets" / "sample_photos" / "coffee.jpg"
    p.add_argument("--content", type=Path, default=content, help=f"the photo (default: {content})")
    p.add_argument("--style", type=Path, default=REPO / "fastnst" / "assets" / "styles" / "starry_night.jpg")
    p.add_argument("--size", type=int, help="long edge in pixels (default 512; --quick: 256)")
    p.add_argument("--budget-seconds", type=float, help="time limit per method (default 600; --quick: 120)")
    p.add_argument("--reference-iterations", type=int, help="reference iterations (default 200; --quick: 60)")
    p.add_argument("--target", type=float, help="target loss (default: the reference's final judged loss)")
    p.add_argument("--steps", type=int, help="fastnst iterations over all levels (default 600; --quick: 300)")
    p.add_argument("--scales", type=int, default=DEFAULTS.scales, help="fastnst coarse-to-fine levels")
    p.add_argument("--precision", default="auto", help="fastnst's precision (auto: bf16 where native, else fp32)")
    p.add_argument("--judge-every", type=int, default=5, help="judge every this many iterations")
    p.add_argument("--turn-seconds", type=float, default=5.0, help="turn length (0: one method after the other)")
    p.add_argument("--stop-at-target", action="store_true", help="stop a method once it reaches --target")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--vgg-weights", default=None, help="caffe, or a .pth file (default: found automatically)")
    p.add_argument("--out-dir", type=Path, default=Path("/tmp/bench_optimize"))


def _apply_defaults(args: argparse.Namespace) -> None:
    quick = {"size": 256, "budget_seconds": 120.0, "reference_iterations": 60, "steps": 300}
    full = {"size": 512, "budget_seconds": 600.0, "reference_iterations": 200, "steps": 600}
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.stop_at_target and args.target is None:
        raise SystemExit("bench optimize: --stop-at-target needs --target")
    if args.judge_every < 1:
        raise SystemExit("bench optimize: --judge-every must be at least 1")


def fastnst_settings(args: argparse.Namespace, weights: str) -> Settings:
    """fastnst's settings for this run: its defaults with the flags' size, iterations, levels and precision."""
    settings = Settings(
        size=args.size,
        steps=args.steps,
        scales=args.scales,
        vgg_weights=weights,
        device=args.device,
        precision=args.precision,
    )
    settings.check()
    return settings


def make_judge(
    content_target: torch.Tensor, style: torch.Tensor, size: int, weights: str, device: torch.device
) -> Judge:
    """The judge: the default objective with the photo (already at long edge ``size``) and the painting
    at that size as targets."""
    judge_loss = make_loss(weights, device)
    judge_loss.set_content(content_target)
    judge_loss.set_style(resize_long(style, size))
    return Judge(judge_loss, (int(content_target.shape[-2]), int(content_target.shape[-1])))


def print_plan(args: argparse.Namespace, size: tuple[int, int], weights: str, settings: Settings) -> None:
    """The machine, the inputs, the objective and what each method will do."""
    sizes = scale_sizes(settings)
    counts = scale_step_counts(settings, len(sizes))
    for line in machine_lines(torch.device(args.device)):
        print(line)
    print(f"content: {args.content}  style: {args.style}  target size: {size[0]}x{size[1]} (HxW)")
    print(
        f"objective (the judge): relu4_2 content, relu1_1..relu5_1 style, content weight {DEFAULTS.content_weight}, "
        f"style weight {DEFAULTS.style_weight}, normalize={DEFAULTS.normalize}, {DEFAULTS.pooling} pooling, "
        f"VGG19 {weights}; scored on the clamped image at {size[0]}x{size[1]} every {args.judge_every} iterations "
        "(judging time excluded)"
    )
    print(
        f"reference: single scale {size[0]}x{size[1]}, image in [0, 1], torch.optim.LBFGS defaults (lr 1, "
        f"max_iter 20, history 100, no line search), clamped as in the PyTorch tutorial; "
        f"{args.reference_iterations} iterations or {args.budget_seconds:.0f} s"
    )
    print(
        f"fastnst: levels {sizes} px x {counts} iterations, L-BFGS lr {settings.lr or 1.0}, bounds {settings.bounds}, "
        f"history {settings.lbfgs_history}, line search {settings.lbfgs_line_search}; "
        f"{sum(counts)} iterations or {args.budget_seconds:.0f} s"
    )
    turns = "one after the other" if args.turn_seconds <= 0 else f"taking turns of {args.turn_seconds:g} s"
    print(f"methods run {turns}; a method's time counts its own turns only")


def warm_up(judge: Judge, content_target: torch.Tensor) -> None:
    """One untimed forward and backward at the target size; prints the photo's own judged loss."""
    warm = content_target.clone().requires_grad_(True)
    judge.loss_fn(warm)["loss"].backward()
    print(f"judged loss of the photo itself: {judge(content_target)['loss']:.5g}\n", flush=True)


def save_traces(out_dir: Path, traces: list[Trace]) -> dict[str, Path]:
    """Each method's final image and the traces CSV in ``out_dir``; returns the images' paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {t.method: out_dir / f"{t.method}.png" for t in traces}
    for t in traces:
        assert t.image is not None
        save_image(t.image, paths[t.method])
    write_csv(out_dir / "traces.csv", traces)
    return paths


def print_outcome(
    args: argparse.Namespace,
    traces: list[Trace],
    target: float,
    size: tuple[int, int],
    paths: dict[str, Path],
    wall: float,
) -> None:
    """The target, the table, how far a method that missed the target stayed from it, where the traces are."""
    source = "given" if args.target is not None else "the reference's final loss"
    print(
        f"\ntarget loss {target:.6g} ({source}) at {size[0]}x{size[1]}; budget {args.budget_seconds:.0f} s per method"
    )
    print(
        f"times exclude judging and waiting (resolution: {args.judge_every} iterations); work in full-size "
        f"iterations; whole run {wall:.0f} s wall\n"
    )
    print_table(traces, target, paths, args.budget_seconds)
    for t in traces:
        if t.first_at_or_below(target) is None:
            gap = (t.best().loss - target) / target
            print(f"{t.method} did not reach the target; its best loss {t.best().loss:.5g} is {gap:.1%} above it")
    print(f"traces: {args.out_dir / 'traces.csv'}; load average at the end: {load_average()}")
    if not all(math.isfinite(p.loss) for t in traces for p in t.points):
        print("warning: some judged losses are not finite")


def summarize(traces: list[Trace], target: float, size: tuple[int, int]) -> dict:
    """The results as JSON, and the last line printed: the speed-up to the target (or why there is none)."""
    hits = [t.first_at_or_below(target) for t in traces]
    results: dict = {
        "target": target,
        "size": list(size),
        "methods": {
            t.method: {
                "seconds_to_target": hit.seconds if hit else None,
                "cpu_seconds_to_target": hit.cpu_seconds if hit else None,
                "iterations_to_target": hit.iteration if hit else None,
                "best_loss": t.best().loss,
                "final_loss": t.points[-1].loss,
            }
            for t, hit in zip(traces, hits, strict=True)
        },
    }
    if hits[0] and hits[1] and min(hits[1].seconds, hits[1].cpu_seconds, hits[1].work) > 0:
        ratios = [hits[0].seconds / hits[1].seconds, hits[0].cpu_seconds / hits[1].cpu_seconds]
        ratios.append(hits[0].work / hits[1].work)
        results["speedup_wall"], results["speedup_cpu"] = ratios[0], ratios[1]
        print(
            f"optimize: speed-up to the target (reference / fastnst): {ratios[0]:.2f}x wall time, "
            f"{ratios[1]:.2f}x CPU time, {ratios[2]:.2f}x work"
        )
    else:
        print("optimize: no speed-up figure: a method did not reach the target")
    return results


def run(args: argparse.Namespace) -> dict:
    """Run both methods, print the comparison (its last line: the speed-up) and return it."""
    _apply_defaults(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    weights = args.vgg_weights or default_weights()
    settings = fastnst_settings(args, weights)
    content, style = load_image(args.content).to(device), load_image(args.style).to(device)
    content_target = resize_long(content, args.size)
    judge = make_judge(content_target, style, args.size, weights, device)
    print_plan(args, judge.size, weights, settings)
    warm_up(judge, content_target)

    turns = Turns(["reference", "fastnst"], args.turn_seconds)
    stop_below = args.target if args.stop_at_target else None
    run = Run(
        content, style, args.size, judge, turns, args.budget_seconds, args.judge_every, weights, device, stop_below
    )
    started = time.perf_counter()
    results = run_both(
        run,
        {
            "reference": lambda: run_reference(run, args.reference_iterations),
            "fastnst": lambda: run_fastnst(run, settings),
        },
    )
    traces = [results["reference"], results["fastnst"]]
    target = args.target if args.target is not None else traces[0].points[-1].loss
    paths = save_traces(args.out_dir, traces)
    print_outcome(args, traces, target, judge.size, paths, time.perf_counter() - started)
    return summarize(traces, target, judge.size)
