"""Real write faults: a read-only folder and a full disk (tmpfs mounts) give clear errors and lose nothing."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY
from PIL import Image

SAMPLES = REPO / "fastnst" / "assets" / "sample_photos"


@contextmanager
def tmpfs(path: Path, size: str = "64m", read_only: bool = False) -> Iterator[Path]:
    """A real file system of ``size`` bytes at ``path`` (root only), read-only if asked."""
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}): these tests need root")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error" in line.lower() or "cannot write" in line]


def photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, src in enumerate(sorted(SAMPLES.glob("*.jpg"))[:n]):
        files.append(folder / f"{i}_{src.name}")
        shutil.copy(src, files[-1])
    return files


def test_infer_into_a_read_only_folder(tiny_onnx, tmp_path):
    inputs = photos(tmp_path / "in", 2)
    with tmpfs(tmp_path / "ro", read_only=True) as out:
        result = run("-m", "fastnst", "infer", "--model", tiny_onnx, *inputs, "-o", out, "-q", cwd=tmp_path)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        for src in inputs:
            (line,) = [x for x in result.stderr.splitlines() if f"{src.stem}_starry_night.jpg: cannot write" in x]
            assert "Read-only file system" in line
        assert list(out.iterdir()) == []


def test_infer_on_a_full_disk_keeps_earlier_outputs(tiny_onnx, tmp_path):
    inputs = photos(tmp_path / "in", 4)
    with tmpfs(tmp_path / "small", size="400k") as out:
        # Fill the disk so that only about one output still fits.
        (out / "ballast").write_bytes(b"\0" * (400_000 - 160_000))
        result = run("-m", "fastnst", "infer", "--model", tiny_onnx, *inputs, "-o", out, "--batch-size", "1", "-q",
                     cwd=tmp_path)  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        failed = [line for line in result.stderr.splitlines() if line.startswith("error:") and "cannot write" in line]
        assert failed and all("No space left on device" in line for line in failed)
        written = [p for p in out.iterdir() if p.name != "ballast"]
        assert written, "at least the first output fits"
        for path in written:  # what was written is whole, and no temporary file is left behind
            assert not path.name.startswith(".")
            Image.open(path).load()
        assert len(written) + len(failed) == len(inputs)


def test_export_into_a_read_only_folder(tiny_checkpoint, tmp_path):
    with tmpfs(tmp_path / "ro", read_only=True) as out:
        result = run("-m", "fastnst", "export", tiny_checkpoint, "-o", out / "x.onnx", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "x.onnx: cannot write" in result.stderr and "Read-only file system" in result.stderr


def test_training_on_a_full_disk_stops_clearly_and_keeps_its_checkpoints(tmp_path, vgg_weights_file):
    with tmpfs(tmp_path / "small", size="1400k") as disk:
        run_dir = disk / "run"
        result = run(
            REPO / "train.py",
            *TINY,
            "trainer.max_steps=40",
            "trainer.checkpoint_every_n_steps=1",
            "trainer.val_every_n_steps=1000",
            "trainer.logger=false",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
        assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
        out = result.stdout + result.stderr
        (line,) = [x for x in out.splitlines() if "error: cannot write" in x]
        assert "No space left on device" in line and "checkpoints written before are intact" in line
        assert "Traceback" not in out
        checkpoints = list(run_dir.glob("*.ckpt"))
        assert checkpoints
        digests = {}
        for path in checkpoints:  # every checkpoint on disk is whole
            state = torch.load(path, map_location="cpu", weights_only=True)
            assert state["global_step"] >= 1
            digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
