"""A training process killed with SIGKILL resumes from its last checkpoint, exactly; no file is ever truncated."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY

pytestmark = pytest.mark.usefixtures("vgg_weights_file")

STEPS = 24
SETTINGS = [*TINY, f"trainer.max_steps={STEPS}", "trainer.val_every_n_steps=1000", "trainer.log_every_n_steps=5"]


def start(run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *SETTINGS, *extra, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"training ended before {path.name} appeared: {process.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            process.kill()
            raise AssertionError(f"{path} did not appear in {timeout} s")
        time.sleep(0.05)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_sigkill_then_resume_continues_exactly(tmp_path):
    # The reference (the same run, never interrupted) runs beside the one that gets killed.
    reference = start(tmp_path / "reference", "trainer.checkpoint_every_n_steps=4")
    victim = start(tmp_path / "killed", "trainer.checkpoint_every_n_steps=4")
    wait_for(tmp_path / "killed" / "step=0000008.ckpt", victim)
    victim.send_signal(signal.SIGKILL)  # no cleanup, no atexit, no flush: a real crash
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    # last.ckpt is written just after each step=N.ckpt: a kill in between leaves the one before.
    last = tmp_path / "killed" / "last.ckpt"
    killed_at = load(last)["global_step"]
    assert 4 <= killed_at < STEPS
    resumed = start(tmp_path / "resumed", "trainer.checkpoint_every_n_steps=4", f"ckpt_path={last}")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    assert reference.wait(timeout=300) == 0, reference.stderr.read()[-2000:]

    a, b = load(tmp_path / "reference" / "last.ckpt"), load(tmp_path / "resumed" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == STEPS
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    # The resumed run started where the killed one stopped, not at 0.
    first = min(int(p.stem.split("=")[1]) for p in (tmp_path / "resumed").glob("step=*.ckpt"))
    assert first > killed_at


def test_kills_at_random_moments_never_leave_a_truncated_checkpoint(tmp_path):
    """Checkpoint every step, kill at random times: every checkpoint file on disk loads."""
    rng = random.Random(0)
    for attempt in range(3):
        run_dir = tmp_path / f"run{attempt}"
        process = start(run_dir, "trainer.checkpoint_every_n_steps=1")
        wait_for(run_dir / "step=0000001.ckpt", process)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        files = list(run_dir.glob("*.ckpt"))
        assert files
        for path in files:
            checkpoint = load(path)  # raises on a truncated or partial file
            assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values())
        leftovers = [p.name for p in run_dir.iterdir() if p.name.endswith((".tmp", ".part"))]
        assert leftovers == [] or all(not p.endswith(".ckpt") for p in leftovers)
    assert os.path.exists(tmp_path / "run0" / "last.ckpt")
