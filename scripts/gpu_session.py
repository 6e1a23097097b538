"""Train several runs side by side on one lent GPU inside a fixed wall-clock budget (stdlib only).

The device machine of a development session gives about ten minutes of one command: this script
runs every training run of ``RUNS`` at the same time on the one GPU (a small network leaves most of
an H200 idle), in two legs each:

1. a constant learning rate until ``--phase1`` seconds, then Ctrl-C (SIGINT: ``last.ckpt``, resumable);
2. a resume of that checkpoint with a cosine decay to 2e-5 (``trainer.decay_steps``), its length set
   from the run's measured steps/s so that it ends by ``--deadline``; a run still going then gets
   SIGINT too (its ``last.ckpt`` resumes anywhere).

A run that fails to start with ``torch.compile`` is started again with ``trainer.compile=false``.
The run folders (checkpoints, logs, TensorBoard, previews) are packed into ``--out`` as a tar in
15 MiB parts (the device tool brings back at most 8 files of 16 MiB). Expects the carried inputs
under ``.carry/``: ``site/`` (Hydra, OmegaConf, ANTLR), ``vgg/`` (fp16 VGG19 to relu5_1,
:func:`fastnst.nn.vgg.save_caffe_weights_fp16`) and ``photos/`` (the training photos).

    python3 scripts/gpu_session.py --out $OUT

``--prepare ../shared/assets`` makes ``.carry/`` here first (it needs fastnst's training install):
the photos shrunk to a short side of 256 (JPEG quality 90), the fp16 VGG and the carried packages.
The device tool sends at most 64 MiB of working tree: the checkpoints tracked in ``checkpoints/long/``
(about 43 MB) have to stay behind for the call (``git rm -r -q --cached checkpoints/long``, and
``git reset -q checkpoints/long`` after it), and ``carry`` names ``.carry``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARRY = ROOT / ".carry"
COMMON = [
    f"data.root={CARRY / 'photos'}",
    "data.image_size=256",
    "data.num_workers=3",
    "export.onnx=false",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=100",
    "trainer.val_every_n_steps=1000",
    "trainer.checkpoint_every_n_steps=1000",
    "trainer.max_steps=1000000",
    "trainer.lr_final=null",
]
SMALL = ["model=small", "trainer.lr=2e-3", "data.batch_size=8"]
# name -> overrides (besides COMMON)
RUNS = {
    "udnie_johnson": ["style=udnie"],  # the GPU default: Johnson's network, batch 4, lr 1e-3
    "udnie_small": ["style=udnie", *SMALL],
    "udnie_small5": ["style=udnie", *SMALL, "model.num_residual_blocks=5"],
    "udnie_small_s256": ["style=udnie", *SMALL, "style.size=256"],
    "woman_small_s256": ["style=woman_with_hat", *SMALL, "loss=fastnst", "style.size=256"],  # its preset: perceptual
}
EXTRA: list[str] = []  # --set: replaces these keys in every run (a dry run on a CPU)
START = time.monotonic()


def say(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", flush=True)


def environment() -> dict[str, str]:
    """The child processes' environment: carried packages, the fp16 VGG, few CPU threads each."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(CARRY / "site"), env.get("PYTHONPATH", "")])
    env["FASTNST_VGG_WEIGHTS"] = str(CARRY / "vgg")
    env["OMP_NUM_THREADS"] = "2"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(name: str, overrides: list[str], run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    log = open(run_dir.with_suffix(".out"), "ab")  # noqa: SIM115 (kept open for the child)
    merged = dict(o.split("=", 1) for o in [*COMMON, *overrides, *EXTRA, f"hydra.run.dir={run_dir}"])
    cmd = [sys.executable, str(ROOT / "train.py"), *(f"{k}={v}" for k, v in merged.items())]
    say(f"start {name}: {' '.join(cmd[2:])}")
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def last_rate(run_dir: Path) -> tuple[int, float]:
    """The newest (step, steps/s) of a run's progress lines; (0, 0.0) before the first."""
    log = run_dir.with_suffix(".out")
    text = log.read_text(errors="replace") if log.exists() else ""
    found = re.findall(r"step (\d+)/\d+ \| .*? \| ([\d.]+) steps/s", text)
    stopped = re.findall(r"stopped by SIG\w+ at step (\d+)", text)
    if not found:
        return 0, 0.0
    return int(stopped[-1] if stopped else found[-1][0]), float(found[-1][1])


def run_leg(legs: dict[str, tuple[list[str], Path]], until: float, env: dict[str, str]) -> None:
    """Run every leg side by side until each ends or ``until`` (seconds since start), then SIGINT.
    A leg that dies early with torch.compile on is started once more without it."""
    procs = {n: launch(n, o, d, env) for n, (o, d) in legs.items()}
    retried: set[str] = set()
    while any(p.poll() is None for p in procs.values()) and time.monotonic() - START < until:
        time.sleep(5)
        for n, p in procs.items():
            if p.poll() not in (None, 0) and n not in retried and time.monotonic() - START < until - 60:
                retried.add(n)
                overrides, run_dir = legs[n]
                say(f"{n} exited {p.returncode}; again without torch.compile")
                legs[n] = ([*overrides, "trainer.compile=false"], run_dir.with_name(run_dir.name + "_nocompile"))
                procs[n] = launch(n, *legs[n], env)
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for n, p in procs.items():
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
        say(f"{n}: exit {p.returncode}, {last_rate(legs[n][1])}")


def pack(runs: Path, out: Path, limit: int = 56 << 20) -> None:
    """Tar the run folders into 15 MiB parts: logs, then each leg's ``last.ckpt`` (the decay legs'
    first), then the newest preview and the TensorBoard logs of each folder while under ``limit``."""
    files = sorted(p for p in runs.rglob("*") if p.is_file())
    logs = [p for p in files if p.suffix in (".out", ".yaml") or p.name.endswith("-profile.txt")]  # trainer.profiler
    ckpts = sorted((p for p in files if p.name == "last.ckpt"), key=lambda p: not p.parent.name.endswith("decay"))
    newest_preview = {p.parent: p for p in files if p.parent.name == "previews"}  # sorted: the last step's
    extras = [*newest_preview.values(), *(p for p in files if p.parent.name == "tensorboard")]
    chosen, total = [], 0
    for p in [*logs, *ckpts, *extras]:
        if total + p.stat().st_size < limit:
            chosen.append(p)
            total += p.stat().st_size
    tar_path = out / "runs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for p in chosen:
            tar.add(p, arcname=str(p.relative_to(runs.parent)))
    data = tar_path.read_bytes()
    tar_path.unlink()
    part = 15 << 20
    for i in range(0, len(data), part):
        (out / f"runs.tar.{i // part:02d}").write_bytes(data[i : i + part])
    left = [str(p.relative_to(runs)) for p in ckpts if p not in chosen]
    say(f"packed {len(chosen)} files, {len(data) / 2**20:.1f} MiB; checkpoints left out: {left or 'none'}")


def prepare(assets: Path, short_side: int = 256) -> None:
    """Fill ``.carry/`` from this machine's install and the development assets (run here, not there)."""
    import shutil

    import hydra
    from PIL import Image

    from fastnst.nn.vgg import save_caffe_weights_fp16

    site, skip = Path(hydra.__file__).parent.parent, shutil.ignore_patterns("__pycache__")
    for pattern in ("hydra", "hydra_core-*.dist-info", "omegaconf", "omegaconf-*.dist-info", "antlr4", "antlr4_*"):
        for src in site.glob(pattern):
            shutil.copytree(src, CARRY / "site" / src.name, dirs_exist_ok=True, ignore=skip)
    (CARRY / "vgg").mkdir(parents=True, exist_ok=True)
    save_caffe_weights_fp16(CARRY / "vgg" / "vgg19_features_caffe_fp16-relu5_1.pth", up_to="relu5_1")
    photos = sorted((assets / "photos").rglob("*.jpg"))
    for src in photos:
        image = Image.open(src).convert("RGB")
        scale = short_side / min(image.size)
        size = tuple(max(short_side, round(n * scale)) for n in image.size)
        out = CARRY / "photos" / src.relative_to(assets / "photos")
        out.parent.mkdir(parents=True, exist_ok=True)
        image.resize(size, Image.LANCZOS).save(out, quality=90)
    total = sum(f.stat().st_size for f in CARRY.rglob("*") if f.is_file())
    say(f"{CARRY}: {len(photos)} photos, the fp16 VGG, Hydra; {total / 2**20:.1f} MiB to carry")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the packed runs go (the device's $OUT)")
    parser.add_argument("--prepare", type=Path, metavar="ASSETS", help="make .carry/ from this assets folder, here")
    parser.add_argument("--phase1", type=float, default=300, help="seconds (from start) at the constant rate")
    parser.add_argument("--deadline", type=float, default=480, help="seconds (from start) when training ends")
    parser.add_argument("--startup", type=float, default=50, help="assumed seconds to start a resumed leg")
    parser.add_argument("--end", type=float, default=560, help="seconds (from start) when everything ends")
    parser.add_argument("--bench", default="", help="scripts/bench.py train's options, run after the packing")
    parser.add_argument("--only", nargs="*", help="run only these of RUNS")
    parser.add_argument("--run", nargs="*", default=[], help="NAME:key=value,key=value ... in place of RUNS")
    parser.add_argument("--set", nargs="*", default=[], help="key=value for every run (replacing the script's)")
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.prepare)
    if args.out is None:
        parser.error("--out is required (or --prepare)")
    EXTRA.extend(args.set)
    if args.run:
        RUNS.clear()
        RUNS.update((name, overrides.split(",")) for name, overrides in (r.split(":", 1) for r in args.run))
    conf = ROOT / "fastnst" / "conf"
    made = not conf.exists()
    if made:  # pkg://fastnst.conf from a plain checkout (no pip install on the device)
        conf.symlink_to("../conf")
    try:
        train_all(args)
    finally:
        if made:
            conf.unlink()


def train_all(args: argparse.Namespace) -> None:
    """Both legs of every run, then the packing."""
    env, runs = environment(), ROOT / "checkpoints" / "gpu"
    runs.mkdir(parents=True, exist_ok=True)
    names = args.only or list(RUNS)
    run_leg({n: (RUNS[n], runs / n) for n in names}, args.phase1, env)
    legs = {}
    for n in names:
        first = next((d for d in (runs / f"{n}_nocompile", runs / n) if (d / "last.ckpt").exists()), None)
        step, rate = last_rate(first) if first else (0, 0.0)
        decay = int(0.9 * rate * (args.deadline - (time.monotonic() - START) - args.startup))
        if first is None or decay < 100:
            say(f"{n}: no decay leg (checkpoint {first}, rate {rate})")
            continue
        extra = [f"ckpt_path={first / 'last.ckpt'}", f"trainer.max_steps={step + decay}", "trainer.lr_final=2e-5"]
        compiled = ["trainer.compile=false"] if first.name.endswith("nocompile") else []
        legs[n] = ([*RUNS[n], *compiled, *extra, f"trainer.decay_steps={decay}"], runs / f"{n}_decay")
    if legs:
        run_leg(legs, args.deadline, env)
    pack(runs, args.out)
    left = args.end - (time.monotonic() - START)
    if args.bench and left > 40:  # one process alone: steps/s of the real training path
        bench = [sys.executable, str(ROOT / "scripts" / "bench.py"), "train", *args.bench.split()]
        bench += ["--data", str(CARRY / "photos"), "--json", str(args.out / "bench_train.json")]
        say(f"bench ({left:.0f} s left): {' '.join(bench[2:])}")
        try:
            subprocess.run(bench, cwd=ROOT, env=env, timeout=left - 5, check=False)
        except subprocess.TimeoutExpired:
            say("bench: out of time")


if __name__ == "__main__":
    main()
