"""Work that must never be lost: run folders of simultaneous runs, inputs of export and optimize,
training interrupted by Ctrl-C or SIGTERM, and exports of checkpoints with non-finite weights.

Real processes, real signals, real checkpoints.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY, cli
from PIL import Image

from fastnst.photos import sample_photos_dir

TRAIN = str(REPO / "train.py")


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "error" in line.lower()]


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path -> sha256)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def train_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, TRAIN, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    out, _ = process.communicate(timeout=timeout)
    return process.returncode, out


# -- 1. every run gets a folder of its own ------------------------------------------------


def occupy_timestamps(style_dir: Path, suffix: str = "", seconds: int = 120) -> dict[str, str]:
    """Folders of an earlier run for every timestamp of the next ``seconds``: any new run collides."""
    now = datetime.now()
    for s in range(-2, seconds):
        folder = style_dir / f"{(now + timedelta(seconds=s)):%Y-%m-%d_%H-%M-%S}{suffix}"
        folder.mkdir(parents=True)
        (folder / "other_run.txt").write_text(folder.name)
    return digest(style_dir)


@pytest.mark.usefixtures("vgg_weights_file")
def test_two_runs_with_the_same_run_dir_keep_their_own_folders(tmp_path):
    # The same explicit hydra.run.dir in two simultaneous processes: the strongest collision.
    settings = [*TINY, "trainer.max_steps=2", f"hydra.run.dir={tmp_path / 'run'}"]
    runs = [train_cli(*settings, f"loss.style_weight={w}", cwd=tmp_path) for w in (1, 3)]
    for process in runs:
        rc, out = finish(process)
        assert rc == 0, out[-3000:]
    folders = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert [p.name for p in folders] == ["run", "run_2"]
    weights = set()
    for folder in folders:
        assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt", "step=0000002.ckpt"]
        weight = load(folder / "last.ckpt")["hyper_parameters"]["style_weight"]
        weights.add(weight)
        log = (folder / "train.log").read_text()
        assert log.count("step 2/2") == 1, log  # the log of one run only
        assert f"run folder: {folder}" in log
        assert f"loss.style_weight={weight:g}" in (folder / ".hydra" / "overrides.yaml").read_text()
    assert weights == {1.0, 3.0}


def test_a_new_run_never_writes_into_the_folder_of_an_earlier_one(tmp_path):
    # Same second as an earlier run (every timestamp of the next two minutes is taken): a failed
    # start removes its own folder, and must not remove, or write into, the earlier run's.
    before = occupy_timestamps(tmp_path / "checkpoints" / "starry_night")
    rc, out = finish(train_cli("data.root=missing", cwd=tmp_path))
    assert rc == 2, out[-3000:]
    assert digest(tmp_path / "checkpoints" / "starry_night") == before


def test_sweep_jobs_never_write_into_the_folder_of_an_earlier_run(tmp_path):
    sweep = tmp_path / "sweep"
    before = occupy_timestamps(sweep / "starry_night", suffix="_0")
    rc, out = finish(train_cli("-m", "data.root=missing", "seed=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path))
    assert rc == 2, out[-3000:]
    after = digest(sweep / "starry_night")
    assert {k: after.get(k) for k in before} == before


# -- 2. inputs are never overwritten: export and optimize ----------------------------------


def alias(target: Path, how: str, folder: Path) -> Path:
    """Another name for ``target``: the same path, a symlink, a hard link, or a path through ``..``."""
    if how == "same":
        return target
    if how == "dotdot":
        return target.parent / ".." / target.parent.name / target.name
    link = folder / f"{how}{target.suffix}"
    (link.symlink_to if how == "symlink" else link.hardlink_to)(target)
    return link


def assert_refused(rc: int, err: str, before: dict[str, str], folder: Path, *names: str) -> None:
    """Exit status 2, one error line naming the files, and not a byte changed or added."""
    lines = error_lines(err)
    assert rc == 2 and len(lines) == 1, err
    assert all(name in lines[0] for name in names), lines[0]
    assert digest(folder) == before


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "dotdot"])
def test_export_refuses_to_write_over_its_checkpoint(tiny_checkpoint, tmp_path, how):
    ckpt = tmp_path / "run.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)
    output = alias(ckpt, how, tmp_path)
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt, "-o", output)
    assert_refused(rc, err, before, tmp_path, str(output), "checkpoint")


def test_export_default_output_that_is_the_checkpoint_is_refused(tiny_checkpoint, tmp_path):
    ckpt = tmp_path / "model.onnx"  # a checkpoint under an .onnx name: the default -o is itself
    shutil.copy(tiny_checkpoint, ckpt)
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt)
    assert_refused(rc, err, before, tmp_path, str(ckpt))


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg", "other.ckpt"])
def test_export_refuses_to_replace_a_file_that_is_not_onnx(tiny_checkpoint, tmp_path, name):
    ckpt = tmp_path / "run.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)
    other = tmp_path / name
    if name == "other.ckpt":
        shutil.copy(tiny_checkpoint, other)
    elif name == "photo.jpg":
        shutil.copy(sample_photos_dir() / "coffee.jpg", other)
    else:
        other.write_text("my notes\n")
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt, "-o", other)
    assert_refused(rc, err, before, tmp_path, str(other))


@pytest.mark.parametrize("name", ["stylized.png", "clip.MP4", "model.ckpt"])
def test_export_refuses_a_new_output_named_as_a_photo_video_or_checkpoint(tiny_checkpoint, tmp_path, name):
    ckpt = tmp_path / "run.ckpt"
    shutil.copy(tiny_checkpoint, ckpt)
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt, "-o", tmp_path / name)
    assert_refused(rc, err, before, tmp_path, name, ".onnx")


def test_export_may_replace_an_earlier_export(tiny_checkpoint, tiny_onnx, tmp_path):
    ckpt, output = tmp_path / "run.ckpt", tmp_path / "model.bin"  # an ONNX file under another name
    shutil.copy(tiny_checkpoint, ckpt)
    shutil.copy(tiny_onnx, output)
    rc, out, err = cli("export", ckpt, "-o", output, "--no-verify")
    assert rc == 0, err
    assert out.strip().endswith("it replaced the earlier file"), out
    import onnx

    assert onnx.load(str(output)).graph.node


@pytest.fixture
def optimize_inputs(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    files = {
        "content": folder / "photo.jpg",
        "style": folder / "painting.jpg",
        "mask": folder / "mask.png",
        "init": folder / "start.png",
    }
    shutil.copy(sample_photos_dir() / "coffee.jpg", files["content"])
    shutil.copy(sample_photos_dir() / "rocket.jpg", files["style"])
    Image.new("L", (64, 48), 255).save(files["mask"])
    Image.open(files["content"]).save(files["init"])
    return files


@pytest.mark.parametrize(("target", "how"), [("content", "same"), ("style", "same"), ("mask", "symlink"),
                                             ("init", "hardlink"), ("content", "dotdot")])  # fmt: skip
def test_optimize_refuses_to_write_over_an_input(optimize_inputs, tmp_path, target, how):
    files = optimize_inputs
    output = alias(files[target], how, files[target].parent)
    before = digest(tmp_path)
    rc, _, err = cli(
        "optimize", "--content", files["content"], "--style", files["style"], "--mask", files["mask"],
        "--init", files["init"], "--size", "32", "--steps", "1", "-q", "-o", output,
    )  # fmt: skip
    assert_refused(rc, err, before, tmp_path, str(output), str(files[target].name))


# -- 3. Ctrl-C and SIGTERM: finish the step, save, say how to resume -----------------------

# A run that would go on for hours: only the interrupt saves its state (no periodic checkpoint).
ENDLESS = [*TINY, "trainer.max_steps=10000", "trainer.checkpoint_every_n_steps=10000",
           "trainer.val_every_n_steps=10000", "trainer.log_every_n_steps=1"]  # fmt: skip


def start_training(run_dir: Path, *extra: str) -> subprocess.Popen:
    """``python train.py`` in a session of its own (a terminal's Ctrl-C reaches its whole process group)."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    out = (run_dir.parent / f"{run_dir.name}.out").open("w")
    return subprocess.Popen(
        [sys.executable, TRAIN, *ENDLESS, *extra, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for_log(run_dir: Path, pattern: str, process: subprocess.Popen, timeout: float = 240) -> str:
    """Wait until train.log matches ``pattern``; returns the log."""
    end = time.monotonic() + timeout
    log = run_dir / "train.log"
    while True:
        text = log.read_text() if log.exists() else ""
        if re.search(pattern, text):
            return text
        if process.poll() is not None or time.monotonic() > end:
            process.kill()
            output = (run_dir.parent / f"{run_dir.name}.out").read_text()
            raise AssertionError(f"no {pattern!r} in train.log (rc {process.returncode}): {output[-3000:]}")
        time.sleep(0.02)


def resume_line(run_dir: Path) -> str:
    """The one line of the log that says how to resume."""
    lines = [line for line in (run_dir / "train.log").read_text().splitlines() if "ckpt_path=" in line]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.usefixtures("vgg_weights_file")
def test_ctrl_c_saves_a_checkpoint_that_resumes_where_it_stopped(tmp_path):
    run_dir = tmp_path / "run"
    # A data-loader worker process gets the Ctrl-C too; an interrupted run is not exported.
    process = start_training(run_dir, "data.num_workers=1", "export.onnx=true")
    wait_for_log(run_dir, r"step 3/10000", process)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert process.wait(timeout=120) == 130, (tmp_path / "run.out").read_text()[-3000:]
    step = load(run_dir / "last.ckpt")["global_step"]
    assert step >= 3
    line = resume_line(run_dir)
    assert f"ckpt_path={run_dir / 'last.ckpt'}" in line and f"step {step}" in line
    assert not list(run_dir.glob("*.onnx"))

    # The command of that line, as a user would paste it (a shorter run, in a folder of our choice).
    command = shlex.split(line[line.index("python ") :])
    assert command[0] == "python" and Path(command[1]).name == "train.py"
    resumed_dir = tmp_path / "resumed"
    result = subprocess.run(
        [sys.executable, TRAIN, *command[2:], f"trainer.max_steps={step + 2}", "export.onnx=false",
         f"hydra.run.dir={resumed_dir}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert load(resumed_dir / "last.ckpt")["global_step"] == step + 2
    progress = re.findall(r"step (\d+)/", (resumed_dir / "train.log").read_text())
    assert progress[0] == str(step + 1), progress  # continued from the saved step, not from 0


@pytest.mark.usefixtures("vgg_weights_file")
def test_sigterm_saves_the_state_after_a_whole_step(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir)
    wait_for_log(run_dir, r"step 3/10000", process)
    process.send_signal(signal.SIGTERM)  # what a scheduler or `kill` does
    assert process.wait(timeout=120) == 143, (tmp_path / "run.out").read_text()[-3000:]
    saved = load(run_dir / "last.ckpt")
    step = saved["global_step"]
    assert step >= 3 and f"ckpt_path={run_dir / 'last.ckpt'}" in resume_line(run_dir)

    # The saved state is that of a run stopped after exactly that many whole steps.
    reference = tmp_path / "reference"
    result = subprocess.run(
        [sys.executable, TRAIN, *ENDLESS, f"trainer.max_steps={step}", f"hydra.run.dir={reference}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    expected = load(reference / "last.ckpt")
    for key, value in expected["state_dict"].items():
        torch.testing.assert_close(saved["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)


@pytest.mark.usefixtures("vgg_weights_file")
def test_a_second_ctrl_c_aborts_at_once(tmp_path):
    run_dir = tmp_path / "run"
    # Steps and the closing validation of a second or so: the second Ctrl-C comes well before the end.
    process = start_training(run_dir, "data.image_size=192", "model.width=1", "data.batch_size=4")
    wait_for_log(run_dir, r"step 1/10000", process)
    os.killpg(process.pid, signal.SIGINT)
    wait_for_log(run_dir, r"SIGINT", process)  # the first one is taken: the run is finishing its step
    os.killpg(process.pid, signal.SIGINT)
    start = time.monotonic()
    assert process.wait(timeout=60) == -signal.SIGINT, (tmp_path / "run.out").read_text()[-3000:]
    assert time.monotonic() - start < 5


# -- 4. a checkpoint whose network gives non-finite outputs is not exported -----------------


def damaged(checkpoint: Path, folder: Path, value: float, scale: bool = False) -> Path:
    """A copy of ``checkpoint`` with one weight of the first convolution set to (or scaled by) ``value``."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith(".weight") and state["state_dict"][k].ndim == 4)
    weight = state["state_dict"][key].clone()
    if scale:
        weight *= value
    else:
        weight[0, 0, 0, 0] = value
    state["state_dict"] = {**state["state_dict"], key: weight}
    path = folder / "damaged.ckpt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize("extra", [[], ["--no-verify"]])
def test_export_of_nan_weights_fails_and_writes_nothing(tiny_checkpoint, tmp_path, extra):
    ckpt = damaged(tiny_checkpoint, tmp_path, float("nan"))
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt, "-o", tmp_path / "model.onnx", *extra)
    assert_refused(rc, err, before, tmp_path, str(ckpt))
    assert "nan" in err.lower() or "finite" in err.lower()


def test_export_whose_onnx_output_is_not_finite_fails_and_writes_nothing(tiny_checkpoint, tmp_path):
    # Finite weights (PyTorch's fp32 output is fine), but past fp16's range (65504): the fp16 graph gives NaN.
    ckpt = damaged(tiny_checkpoint, tmp_path, 1e6, scale=True)
    before = digest(tmp_path)
    rc, _, err = cli("export", ckpt, "--fp16", "-o", tmp_path / "model.onnx")
    assert_refused(rc, err, before, tmp_path, str(ckpt))
    assert "finite" in err.lower()


def test_checkpoints_hold_the_network_once(tiny_checkpoint):
    keys = load(tiny_checkpoint)["state_dict"]
    assert keys and all(k.startswith("net.") for k in keys), sorted(keys)


def test_checkpoint_of_a_compiled_run_still_exports(tiny_checkpoint, tmp_path):
    # Before, a run with trainer.compile (the default on GPUs) also saved its network as
    # _train_net._orig_mod.*, and such a checkpoint could not be loaded again.
    state = load(tiny_checkpoint)
    net = {k: v for k, v in state["state_dict"].items() if k.startswith("net.")}
    state["state_dict"] = {**net, **{f"_train_net._orig_mod.{k[4:]}": v for k, v in net.items()}}
    torch.save(state, tmp_path / "compiled.ckpt")
    rc, out, err = cli("export", tmp_path / "compiled.ckpt", "-o", tmp_path / "compiled.onnx", "--no-verify")
    assert rc == 0, err
    assert "replaced" not in out, out  # a new file: nothing was replaced (test_export_may_replace_...)
    assert (tmp_path / "compiled.onnx").is_file()
