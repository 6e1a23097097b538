#!/usr/bin/env python3
"""Judge figures against training minutes: what an hour of this machine buys, per recipe.

    python scripts/learning_curve.py --name light_default --steps 1200 --every 300 \\
        --content ../shared/assets/content -o curves/ -- style=udnie model=light data.root=...

Trains one recipe (the overrides after ``--``, as for ``train.py``) in a subprocess limited to
``--threads`` CPU threads, keeping a checkpoint every ``--every`` steps. Each checkpoint is
exported to ONNX and judged by ``fastnst eval`` on the ``--content`` photos as soon as it is written
(a minute's polling), while the run goes on; each style of a several-style run is judged apart. The training minutes
of a checkpoint are the training time it records (Lightning's ``Timer``: carried over when resumed,
the pauses between sessions left out; run nothing heavy beside it). Checkpoints from before the
timer fall back to their file time since the run first started. Prints one row per checkpoint and
appends them to ``<output>/curves.csv``; rerunning a name resumes its training (``ckpt_path=last``)
and judges only checkpoints not judged yet (a new run under the name of a deleted one whose rows are
still in the table is refused: they would stand for its checkpoints). ``--judge-only`` judges what a run has kept so far
(for instance a ``--judge-at-end`` run still training on another core) and trains nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from fastnst.errors import FastNSTError
from fastnst.nn.eval_cli import find_photos

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 60  # how often a running training is checked for new checkpoints
SETTLE_SECONDS = 30  # a checkpoint this fresh may still be being written: judged on the next look
FIELDS = ("name", "step", "minutes", "content", "style_gram", "style_stats", "overrides")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="recipe name (folder under --output)")
    p.add_argument("--steps", type=int, help="training steps in all (not needed with --judge-only)")
    p.add_argument("--every", type=int, help="judge a checkpoint every N steps (not needed with --judge-only)")
    p.add_argument("--content", nargs="+", required=True, help="photos to judge on (files or folders)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for training and judging")
    p.add_argument("--judge-at-end", action="store_true", help="judge only after training ends (no CPU taken from it)")
    p.add_argument("--judge-only", action="store_true", help="judge the checkpoints kept so far; train nothing")
    p.add_argument(
        "--judge-style",
        action="append",
        metavar="STYLE",
        help="judge only this style of a several-style run (repeatable): an init= run's new style",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("curves"))
    p.add_argument("overrides", nargs="*", help="train.py overrides (after --)")
    args = p.parse_args(argv)
    for flag in ("steps", "every"):
        value = getattr(args, flag)
        if value is None and not args.judge_only:
            p.error(f"--{flag} is required unless --judge-only is given")
        if value is not None and value < 1:
            p.error(f"--{flag} {value}: must be at least 1")
    return args


def train(args: argparse.Namespace, run_dir: Path, env: dict[str, str]) -> subprocess.Popen | None:
    """Run (or resume, from the newest last.ckpt) training under run_dir; the first start time is kept
    in run_dir/started, the fallback clock for checkpoints written before the training timer. None: the
    run is already at ``--steps`` (train.py refuses a resume with nothing to train)."""
    started = run_dir / "started"
    lasts = sorted(run_dir.glob("run*/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if lasts and torch.load(lasts[-1], map_location="cpu", weights_only=True)["global_step"] >= args.steps:
        print(f"{run_dir.name}: trained to step {args.steps} already; judging", file=sys.stderr)
        return None
    resume = [f"ckpt_path={lasts[-1]}"] if lasts else []
    if not started.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        started.write_text(str(time.time()))
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        *args.overrides,
        *resume,
        f"trainer.max_steps={args.steps}",
        f"trainer.checkpoint_every_n_steps={args.every}",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.enable_progress_bar=false",
        "export.onnx=false",
        f"hydra.run.dir={run_dir / 'run'}",
    ]
    with (run_dir / "train.out").open("w") as out:  # this training's output only: the reason of its failure
        return subprocess.Popen(command, env=env, stdout=out)


def run_quiet(*command: str, env: dict[str, str], about: Path) -> None:
    """``fastnst <command>`` on ``about``, its output hidden; a failure (its error is printed above) ends the
    script in one line."""
    done = subprocess.run([sys.executable, "-m", "fastnst", *command], env=env, stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"error: fastnst {command[0]} of {about} stopped with exit status {done.returncode}")


def styles_of(run: Path, only: list[str] | None = None) -> list[tuple[str | None, str]]:
    """``(model style, painting)`` to judge: each style of a conditional run (those in ``only`` if given),
    else ``(None, painting)``."""
    cfg = OmegaConf.load(run / "config.yaml")
    if not cfg.get("styles"):
        return [(None, str(cfg.style.image))]
    styles = [(str(s.name), str(s.image)) for s in cfg.styles]
    unknown = set(only or ()) - {name for name, _ in styles}
    if unknown:
        names = ", ".join(name for name, _ in styles)
        raise SystemExit(f"--judge-style {', '.join(sorted(unknown))}: not a style of {run} ({names})")
    return [(name, image) for name, image in styles if not only or name in only]


def training_minutes(ckpt: Path, state: dict, started: float) -> float:
    """The training minutes a checkpoint records (its ``Timer`` state), else its file time since ``started``."""
    timer = state.get("callbacks", {}).get("Timer")
    if timer is not None:
        return timer["time_elapsed"]["train"] / 60
    return (ckpt.stat().st_mtime - started) / 60


def judge(args: argparse.Namespace, ckpt: Path, state: dict, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Export one checkpoint and judge it: the summary figures, by label (``<name>@<style>`` for each
    style of a conditional run). A run with ``trainer.ema_decay`` is judged twice: its moving average
    (``<name>``, what export and the shipped models take) and its trained weights (``<name>~raw``)."""
    figures = {}
    for suffix, flags in [("", [])] + ([("~raw", ["--no-ema"])] if "current_model_state" in state else []):
        onnx = ckpt.with_name(f"{ckpt.stem}{suffix}.onnx")
        run_quiet("export", str(ckpt), "-o", str(onnx), *flags, env=env, about=ckpt)
        for style, painting in styles_of(ckpt.parent, args.judge_style):
            out = ckpt.with_suffix("") / f"{style or ''}{suffix}"
            pick = ["--model-style", style] if style else []
            run_quiet("eval", "--style", painting, "--content", *args.content, "--model", str(onnx), *pick,
                      "-o", str(out), "-q", "--device", "cpu", env=env, about=onnx)  # fmt: skip
            summary = json.loads((out / "summary.json").read_text())["summary"]
            label = f"{args.name}{suffix}"
            figures[f"{label}@{style}" if style else label] = next(iter(summary.values()))
    return figures


def checkpoints(run_dir: Path, steps: int | None) -> list[tuple[int, Path]]:
    """``(step, checkpoint)`` in step order: the kept ones, and the end of the run when ``steps`` is not
    a multiple of ``--every`` (its ``last.ckpt``, copied to ``step=<steps>.ckpt`` so it is judged once)."""
    found = {int(c.stem.split("=")[1]): c for c in run_dir.glob("run*/step=*.ckpt")}
    lasts = sorted(run_dir.glob("run*/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if steps is not None and steps not in found and lasts:
        final = lasts[-1].with_name(f"step={steps:07d}.ckpt")
        shutil.copy2(lasts[-1], final)
        found[steps] = final
    return sorted(found.items())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    run_dir = (args.output / args.name).resolve()
    try:  # the photos before any training: a typo must not cost the minutes up to the first judgement
        find_photos(args.content)
    except FastNSTError as e:
        raise SystemExit(f"error: {e}") from None
    if args.judge_only:  # e.g. beside a --judge-at-end run that is still training
        if not (run_dir / "started").is_file():
            raise SystemExit(f"{run_dir}: no run of that name to judge")
        judge_new(args, run_dir, env, final=False)
        return
    if not (run_dir / "started").is_file() and judged_before(args.output / "curves.csv", args.name):
        raise SystemExit(
            f"error: {args.output / 'curves.csv'}: has rows of an earlier run named {args.name} whose folder "
            f"{run_dir} is gone (they would stand for this run's checkpoints); choose another --name or remove them"
        )
    training = train(args, run_dir, env)
    if training is None:
        judge_new(args, run_dir, env, final=True)
        return
    try:
        if args.judge_at_end:
            training.wait()
        while training.poll() is None:  # judge each kept checkpoint while the run goes on
            judge_new(args, run_dir, env, final=False)
            with contextlib.suppress(subprocess.TimeoutExpired):  # a look a minute; an end is seen at once
                training.wait(timeout=POLL_SECONDS)
    except KeyboardInterrupt:  # Ctrl-C reached the training too (one process group): let it save its last.ckpt
        training.wait()
        raise
    except BaseException:  # a failed judgement: stop the training too (SIGTERM; it saves its last.ckpt)
        training.terminate()
        training.wait()
        raise
    if training.returncode != 0:
        raise SystemExit(
            f"training stopped with exit status {training.returncode}{last_error(run_dir)}; "
            "rerun the same command to resume"
        )
    judge_new(args, run_dir, env, final=True)


def run_of(label: str) -> str:
    """The run a curves.csv row belongs to: ``name`` of ``name``, ``name@style`` and ``name~raw``."""
    return re.split("[@~]", label)[0]


def judged_before(table: Path, name: str) -> bool:
    """Whether ``table`` has rows of run ``name``."""
    return table.exists() and any(run_of(row["name"]) == name for row in csv.DictReader(table.open()))


def last_error(run_dir: Path) -> str:
    """The last error line of the training's output (kept in run_dir/train.out), as ``: <line>``, or ''."""
    out = run_dir / "train.out"
    errors = [line for line in out.read_text().splitlines() if "error" in line.lower()] if out.exists() else []
    return f": {errors[-1].split(' - ', 1)[-1]}" if errors else ""


def judge_new(args: argparse.Namespace, run_dir: Path, env: dict[str, str], final: bool) -> None:
    """Judge the checkpoints not in curves.csv yet; with ``final``, also the end of the run."""
    started = float((run_dir / "started").read_text())
    configs = sorted(run_dir.glob("run*/config.yaml"))
    if args.judge_style and configs:  # a style the run lacks: the one-line error before any judging
        styles_of(configs[-1].parent, args.judge_style)
    table = args.output / "curves.csv"
    done = set()
    if table.exists():
        done = {(run_of(r["name"]), int(r["step"])) for r in csv.DictReader(table.open())}
    for step, ckpt in checkpoints(run_dir, args.steps if final else None):
        if (args.name, step) in done or (not final and time.time() - ckpt.stat().st_mtime < SETTLE_SECONDS):
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        minutes = training_minutes(ckpt, state, started)
        for label, figures in judge(args, ckpt, state, env).items():
            row = {
                "name": label,
                "step": step,
                "minutes": round(minutes, 1),
                **{k: round(figures[k], 4) for k in ("content", "style_gram", "style_stats")},
                "overrides": " ".join(args.overrides),
            }
            append_row(table, row)
            print(*(row[k] for k in FIELDS[:-1]), sep="\t", flush=True)


def append_row(table: Path, row: dict) -> None:
    new = not table.exists()
    with table.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
