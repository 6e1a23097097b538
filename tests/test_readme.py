"""The README's commands and snippets run as written (with tiny sizes appended where they train)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, TINY, asset

from fastnst.styles import shipped_models
from fastnst.training.config import quote_equals

README = (REPO / "README.md").read_text()


def readme_lines(prefix: str) -> list[str]:
    return [line.strip() for line in README.splitlines() if line.strip().startswith(prefix)]


def test_ci_runs_the_readme_test_command():
    (test_command,) = [line for line in readme_lines("pip install") if "pytest" in line]
    assert "-c scripts/constraints.txt" in test_command  # torch stays the local build
    ci = (REPO / ".ci" / "run").read_text()
    pattern = re.search(r"grep -m1 -E '(.+?)' README.md", ci).group(1)
    assert re.search(pattern, test_command), "CI must pick this line"
    assert "torch==" in (REPO / "scripts" / "constraints.txt").read_text()


def test_quickstart_training_command_runs(tmp_path, vgg_weights_file):
    (line,) = [line for line in readme_lines("pip install") if "train.py" in line]
    train_cmd = shlex.split(line.split("&&")[1])
    assert train_cmd[:2] == ["python", "train.py"]
    # The README's choices as written, its loss included; only sizes are shrunk (dotted keys, appended).
    tiny = [o for o in TINY if "." in o.split("=")[0] and not o.startswith(("trainer.max_steps", "loss."))]
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            *train_cmd[2:],
            *tiny,
            "trainer.max_steps=2",
            f"hydra.run.dir={tmp_path}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "last.ckpt").is_file()
    log = (tmp_path / "train.log").read_text()
    assert "step 2/2" in log  # the progress line


def test_readme_train_examples_compose(compose):
    examples = [line for line in readme_lines("python train.py") if "=" in line]
    assert len(examples) >= 8
    for line in examples:
        args = shlex.split(line.split("#")[0].replace("<run>", "2026-01-01_00-00-00"))[2:]
        # -m sweeps (a,b) compose as their first value; lists [a,b] and mappings {a: 1} as written
        overrides = [a.split(",")[0] if "," in a and not {"{", "["} & set(a) else a for a in args if a != "-m"]
        cfg = compose(quote_equals(["train.py", *overrides])[1:])  # as train.py passes them on
        for arg in overrides:
            key, value = arg.split("=", 1)
            if "." in key and key != "ckpt_path":
                node = cfg
                for part in key.split("."):
                    node = node[part]
                if value == "null":
                    assert node is None, line
                else:
                    assert str(node).lower() == value.lower() or float(node) == float(value), line


def test_readme_stability_resume_goes_on_from_the_first_command(compose):
    # "300 steps more on a 1,500-step run": the same recipe, with steps left after the run it resumes
    first, resume = (shlex.split(line)[2:] for line in readme_lines("python train.py") if "temporal_weight" in line)
    assert "ckpt_path=last" in resume and not any(a.startswith("ckpt_path") for a in first)
    assert set(first) - set(resume) == {"loss.temporal_weight=100", "trainer.max_steps=1500"}
    steps = [compose(args).trainer.max_steps for args in (first, [a for a in resume if a != "ckpt_path=last"])]
    assert steps == [1500, 1800]


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("kind", ["one style", "three styles with a strength"])
def test_python_snippet_loads_a_checkpoint_and_stylizes(
    tiny_checkpoint, tiny_conditional_checkpoint, tmp_path, monkeypatch, kind
):
    (snippet,) = [s for s in python_snippets() if "load_from_checkpoint" in s]
    photo = REPO / "fastnst" / "assets" / "sample_photos" / "chelsea.jpg"
    checkpoint = tiny_checkpoint if kind == "one style" else tiny_conditional_checkpoint
    code = snippet.replace("checkpoints/starry_night/<run>/last.ckpt", str(checkpoint))
    code = code.replace('"photo.jpg"', repr(str(photo))).replace('"stylized.png"', repr(str(tmp_path / "out.png")))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    from PIL import Image

    assert Image.open(tmp_path / "out.png").size == (770, 512)  # chelsea.jpg is 451x300; short side -> 512


def test_python_snippet_stylizer(tmp_path, monkeypatch):
    (snippet,) = [s for s in python_snippets() if "Stylizer" in s]
    monkeypatch.chdir(tmp_path)  # no starry_night.onnx here: the name is the shipped style's
    (tmp_path / "photo.jpg").write_bytes((REPO / "fastnst" / "assets" / "sample_photos" / "coffee.jpg").read_bytes())
    exec(compile(snippet, "README.md", "exec"), {})
    from PIL import Image

    assert Image.open(tmp_path / "stylized.jpg").size == (600, 400)


def _make_clip(path: Path, frames: int = 6) -> None:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_readme_fastnst_commands_run(tiny_checkpoint, tiny_conditional_checkpoint, tmp_path, monkeypatch):
    """Every `fastnst export` / `fastnst infer` line of the README, in order, in a folder with its inputs."""
    from fastnst.cli import main

    sample = REPO / "fastnst" / "assets" / "sample_photos"
    (tmp_path / "photos").mkdir()
    for name in ("coffee.jpg", "rocket.jpg"):
        (tmp_path / "photos" / name).write_bytes((sample / name).read_bytes())
    (tmp_path / "photo.jpg").write_bytes((sample / "chelsea.jpg").read_bytes())
    _make_clip(tmp_path / "clip.mp4")
    from PIL import Image

    sky = np.zeros((400, 600), np.uint8)  # stretched over the photo: white on its top third
    sky[:130] = 255
    Image.fromarray(sky).save(tmp_path / "sky.png")
    monkeypatch.chdir(tmp_path)
    lines = [line for line in readme_lines("fastnst ") if line.split()[1] in ("export", "infer")]
    assert len(lines) >= 7
    for line in lines:
        line = line.replace("checkpoints/starry_night/<run>/last.ckpt", str(tiny_checkpoint))
        line = line.replace("checkpoints/starry_night+wave+udnie/<run>/last.ckpt", str(tiny_conditional_checkpoint))
        args = shlex.split(line)[1:]
        assert main(args) == 0, line
    expected = ["photo_starry_night.jpg", "photo_the_scream.jpg", "photo_udnie.jpg", "photo_udnie_fast.jpg"]
    expected += ["starry_night.onnx", "starry_night_fp16.onnx", "starry_night_int8.onnx"]
    expected += ["stylized.jpg"]
    expected += ["stylized/coffee_starry_night.jpg", "photos/rocket_starry_night.jpg", "clip_starry_night.mp4"]
    expected += ["clip_starry_night.first75.mp4"]
    expected += ["clip_smooth.mp4", "three_styles_maps.onnx", "photo_masked.jpg"]
    expected += ["three_styles.onnx", "photo_wave.jpg", "photo_mix.jpg", "photo_three_styles_sheet.jpg"]
    for name in expected:
        assert (tmp_path / name).is_file(), name


@pytest.mark.parametrize("args", [["styles"], ["--version"]])
def test_fastnst_command(args):
    result = subprocess.run([sys.executable, "-m", "fastnst", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("starry_night" in result.stdout) if args == ["styles"] else result.stdout.startswith("fastnst ")


def test_fastnst_vgg_fp16_copy(tmp_path, vgg_weights_file):
    out = tmp_path / "vgg19_fp16.pth"
    result = subprocess.run(
        [sys.executable, "-m", "fastnst", "vgg", "--weights", str(vgg_weights_file), "--fp16", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    state = torch.load(out, weights_only=True)
    assert {v.dtype for v in state.values()} == {torch.float16} and "features.28.weight" in state
    assert "features.30.weight" not in state
    assert 20e6 < out.stat().st_size < 30e6


def test_fastnst_error_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fastnst", "vgg", "--weights", str(tmp_path / "none.pth")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "none.pth: no such file" in result.stderr
    assert Path(tmp_path / "none.pth").exists() is False


def test_readme_optimize_commands_run(tmp_path, monkeypatch, vgg_weights_file):
    """Every `fastnst optimize` line of the README, shrunk to 64 px and 3 steps (flags given last win)."""
    from PIL import Image

    from fastnst.cli import main

    sample = REPO / "fastnst" / "assets" / "sample_photos"
    (tmp_path / "photo.jpg").write_bytes((sample / "rocket.jpg").read_bytes())
    (tmp_path / "painting.jpg").write_bytes((REPO / "fastnst" / "assets" / "styles" / "udnie.jpg").read_bytes())
    w, h = Image.open(tmp_path / "photo.jpg").size
    sky = np.zeros((h, w), np.uint8)
    sky[: h // 2] = 255
    Image.fromarray(sky).save(tmp_path / "sky.png")
    Image.fromarray(255 - sky).save(tmp_path / "ground.png")
    monkeypatch.chdir(tmp_path)
    lines = [line for line in readme_lines("fastnst optimize")]
    assert len(lines) >= 7
    for line in lines:
        args = shlex.split(line)[1:]
        flags = [a for a in args if not ("=" in a and not a.startswith("-"))]
        overrides = [a for a in args if "=" in a and not a.startswith("-")]
        assert main([*flags, "--size", "64", "--steps", "3", "-q", *overrides]) == 0, line
        output = args[args.index("-o") + 1]
        assert max(Image.open(tmp_path / output).size) == 64, line


def test_readme_eval_commands_run(tiny_onnx, tmp_path, monkeypatch, vgg_weights_file):
    """Every `fastnst eval` line of the README, in a folder with its inputs (two photos, tiny models)."""
    from fastnst.cli import main

    sample = REPO / "fastnst" / "assets" / "sample_photos"
    for folder in ("photos", "optimized"):
        (tmp_path / folder).mkdir()
        for name in ("coffee.jpg", "rocket.jpg"):
            (tmp_path / folder / name).write_bytes((sample / name).read_bytes())
    for name in ("starry_night.onnx", "starry_night_light.onnx"):
        (tmp_path / name).write_bytes(tiny_onnx.read_bytes())
    (tmp_path / "clip.mp4").symlink_to(asset("videos/bikes.mp4"))
    monkeypatch.chdir(tmp_path)
    lines = readme_lines("fastnst eval")
    assert len(lines) >= 4
    for line in lines:
        args = shlex.split(line)[1:]
        video = "--video" in args  # on 3 small frames, one judged: the last --frames/--max-size/--judge-frames wins
        small = ["--frames", "3", "--max-size", "64", "--judge-frames", "1"] if video else []
        assert main([*args, "-q", *small]) == 0, line
        out = tmp_path / args[args.index("-o") + 1]
        for name in ("flicker.json",) if video else ("scores.csv", "summary.json", "contact_sheet.png"):
            assert (out / name).is_file(), (line, name)


def test_readme_gallery_command_runs(tmp_path):
    """The README's gallery command as written, with the output moved to a temporary folder and small cells."""
    from PIL import Image

    (line,) = readme_lines("python scripts/make_gallery.py")
    args = []
    for arg in shlex.split(line)[2:]:  # the shell's glob expansion
        args += sorted(str(p.relative_to(REPO)) for p in REPO.glob(arg)) if "*" in arg else [arg]
    gallery = REPO / args[args.index("-o") + 1]
    assert gallery.is_file() and f"]({gallery.relative_to(REPO)})" in README  # committed and shown
    args[args.index("-o") + 1] = str(tmp_path / "gallery.jpg")
    proc = subprocess.run(  # in the repository: the README's paths are relative to it
        [sys.executable, "scripts/make_gallery.py", *args, "--size", "64", "--cell", "48"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "gallery.jpg").is_file()
    # Every shipped model is in the gallery: one column each (the photos' column, then the models).
    width = Image.open(tmp_path / "gallery.jpg").width
    assert width == (len(shipped_models()) + 1) * (48 + 4) + 4
